import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { greyToTensor, imageInputOf, jsonToGrey, pngToGrey, resizeBilinear } from '../../src/http/image.js';
import type { ModelIO } from '../../src/onnx/io-signature.js';

function png(width: number, height: number, pixel: (x: number, y: number) => [number, number, number, number], colorType?: 0 | 2 | 6): Buffer {
  const image = new PNG({ width, height, ...(colorType !== undefined && { colorType }) });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) image.data.set(pixel(x, y), (y * width + x) * 4);
  return PNG.sync.write(image, colorType === undefined ? {} : { colorType, inputHasAlpha: true });
}

test('PNG → grey: BT.601 luma, transparency composited over black', async () => {
  const white = await pngToGrey(png(2, 2, () => [255, 255, 255, 255]), 2, 2);
  assert.deepEqual([...white].map(Math.round), [255, 255, 255, 255]);
  const red = await pngToGrey(png(1, 1, () => [255, 0, 0, 255]), 1, 1);
  assert.ok(Math.abs(red[0]! - 0.299 * 255) < 1e-3);
  const transparent = await pngToGrey(png(1, 1, () => [255, 255, 255, 0]), 1, 1);
  assert.equal(transparent[0], 0);
  const greyscalePng = await pngToGrey(png(3, 3, () => [100, 100, 100, 255], 0), 3, 3);
  assert.ok([...greyscalePng].every((v) => Math.abs(v - 100) < 1e-3), 'greyscale PNGs decode too');
});

test('bilinear resize: constant stays constant, a left/right split keeps its sides, sizes any way', async () => {
  const half = png(56, 40, (x) => (x < 28 ? [0, 0, 0, 255] : [255, 255, 255, 255]));
  const grey = await pngToGrey(half, 28, 28);
  assert.equal(grey.length, 784);
  assert.ok(grey[28 * 10 + 2]! < 1, 'left side dark');
  assert.ok(grey[28 * 10 + 25]! > 254, 'right side bright');
  const up = resizeBilinear(Float32Array.of(0, 100), 2, 1, 4, 1);
  assert.deepEqual([...up], [0, 25, 75, 100]);
  assert.equal((await pngToGrey(png(1, 1, () => [9, 9, 9, 255]), 28, 28)).length, 784, 'a 1×1 image is upscaled');
});

test('not a PNG, or too many pixels, is DS_ERR_IMAGE_INVALID', async () => {
  await assert.rejects(pngToGrey(Buffer.from('hello, not an image at all'), 28, 28), /not a PNG file/);
  const huge = png(1, 1, () => [0, 0, 0, 255]);
  huge.writeUInt32BE(100_000, 16); // IHDR width and height: checked before decoding
  huge.writeUInt32BE(100_000, 20);
  await assert.rejects(pngToGrey(huge, 28, 28), /more than/);
  const truncated = png(10, 10, () => [0, 0, 0, 255]).subarray(0, 40);
  await assert.rejects(pngToGrey(truncated, 28, 28), (e: Error & { code?: string }) => e.code === 'DS_ERR_IMAGE_INVALID');
});

test('JSON images: 0..255 or 0..1, nested H×W or flat', () => {
  assert.deepEqual([...jsonToGrey([[0, 255], [128, 1]], 2, 2)], [0, 255, 128, 1]);
  assert.deepEqual([...jsonToGrey([[0, 1], [0.5, 1]], 2, 2)], [0, 255, 127.5, 255]);
  assert.deepEqual([...jsonToGrey([0, 10, 20, 30], 2, 2)], [0, 10, 20, 30]);
  assert.throws(() => jsonToGrey([[1, 2, 3]], 2, 2), /2 rows of 2/);
  assert.throws(() => jsonToGrey([0, 1, 2], 2, 2), /4 values/);
  assert.throws(() => jsonToGrey([0, -1, 2, 3], 2, 2), /value 1 is -1/);
  assert.throws(() => jsonToGrey('image', 2, 2), /array/);
});

test('the image input of a model; tensors are pixel/255 in the model layout', () => {
  const io: ModelIO = { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [-1, 1, 28, 28], dimNames: null }], outputs: [] };
  const input = imageInputOf(io, 'm');
  assert.deepEqual(input, { name: 'pixels', height: 28, width: 28, dims: [1, 1, 28, 28] });
  const tensor = greyToTensor(new Float32Array(784).fill(255), input);
  assert.deepEqual(tensor.dims, [1, 1, 28, 28]);
  assert.equal(tensor.data[0], 1);
  const text: ModelIO = { inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [-1, -1], dimNames: null }], outputs: [] };
  assert.throws(() => imageInputOf(text, 'encoder'), (e: Error & { code?: string }) => e.code === 'DS_ERR_NOT_IMAGE_MODEL' && /INT64/.test(e.message));
});
