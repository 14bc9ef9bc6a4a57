import { test } from 'node:test';
import assert from 'node:assert/strict';
import { greyToTensor, imageInputOf, jsonToGrey } from '../../src/http/image.js';
import { resizeBilinear } from '../../src/http/png/resize.js';
import type { ModelIO } from '../../src/onnx/io-signature.js';

test('bilinear resize: constant stays constant, sizes any way', () => {
  assert.deepEqual([...resizeBilinear(Float32Array.of(0, 100), 2, 1, 4, 1)], [0, 25, 75, 100]);
  assert.deepEqual([...resizeBilinear(new Float32Array(9).fill(7), 3, 3, 2, 2)], [7, 7, 7, 7]);
});

test('JSON images: 0..255 or 0..1, nested H×W or flat', () => {
  assert.deepEqual(
    [
      ...jsonToGrey(
        [
          [0, 255],
          [128, 1],
        ],
        2,
        2,
      ),
    ],
    [0, 255, 128, 1],
  );
  assert.deepEqual(
    [
      ...jsonToGrey(
        [
          [0, 1],
          [0.5, 1],
        ],
        2,
        2,
      ),
    ],
    [0, 255, 127.5, 255],
  );
  assert.deepEqual([...jsonToGrey([0, 10, 20, 30], 2, 2)], [0, 10, 20, 30]);
  assert.throws(() => jsonToGrey([[1, 2, 3]], 2, 2), /2 rows of 2/);
  assert.throws(() => jsonToGrey([0, 1, 2], 2, 2), /4 values/);
  assert.throws(() => jsonToGrey([0, -1, 2, 3], 2, 2), /value 1 is -1/);
  assert.throws(() => jsonToGrey('image', 2, 2), /array/);
});

test('the image input of a model; tensors are pixel/255 in the model layout', () => {
  const io: ModelIO = {
    inputs: [{ name: 'pixels', datatype: 'FP32', shape: [-1, 1, 28, 28], dimNames: null }],
    outputs: [],
  };
  const input = imageInputOf(io, 'm');
  assert.deepEqual(input, { name: 'pixels', height: 28, width: 28, dims: [1, 1, 28, 28] });
  const tensor = greyToTensor(new Float32Array(784).fill(255), input);
  assert.deepEqual(tensor.dims, [1, 1, 28, 28]);
  assert.equal(tensor.data[0], 1);
  const text: ModelIO = {
    inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [-1, -1], dimNames: null }],
    outputs: [],
  };
  assert.throws(
    () => imageInputOf(text, 'encoder'),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_NOT_IMAGE_MODEL' && /INT64/.test(e.message),
  );
});

test('a value nested far too deep is a 400 naming it, not a stack overflow (found by test/reliability/fuzz-http)', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.throws(
    () => jsonToGrey([0, deep, 2, 3], 2, 2),
    (e: Error & { code?: string }) =>
      e.code === 'DS_ERR_IMAGE_INVALID' && /value 1 is an array nested too deeply to show/.test(e.message),
  );
  assert.throws(
    () => jsonToGrey([0, 'x'.repeat(5_000), 2, 3], 2, 2),
    (e: Error) => e.message.length < 200 && /5002 characters/.test(e.message),
  );
});
