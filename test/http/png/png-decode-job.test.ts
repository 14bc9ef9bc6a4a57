import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePngJob, type PngDecodeResult } from '../../../src/http/png/png-decode-job.js';
import { HOSTILE_PNGS, png, rawPng } from './png-bytes.js';

const LIMIT = 1024 * 1024;
const grey = (bytes: Uint8Array, width: number, height: number, maxPixels = LIMIT): Float32Array => {
  const result = decodePngJob({ bytes, width, height, maxPixels });
  if (!result.ok) assert.fail(`expected a decoded image, got: ${result.reason}`);
  return result.grey;
};
const reason = (result: PngDecodeResult): string => (result.ok ? assert.fail('expected a refusal') : result.reason);

test('PNG → grey: BT.601 luma, transparency composited over black, greyscale PNGs', () => {
  assert.deepEqual(
    [
      ...grey(
        png(2, 2, () => [255, 255, 255, 255]),
        2,
        2,
      ),
    ].map(Math.round),
    [255, 255, 255, 255],
  );
  assert.ok(
    Math.abs(
      grey(
        png(1, 1, () => [255, 0, 0, 255]),
        1,
        1,
      )[0]! -
        0.299 * 255,
    ) < 1e-3,
  );
  assert.equal(
    grey(
      png(1, 1, () => [255, 255, 255, 0]),
      1,
      1,
    )[0],
    0,
  );
  assert.ok(
    [
      ...grey(
        png(3, 3, () => [100, 100, 100, 255], 0),
        3,
        3,
      ),
    ].every((v) => Math.abs(v - 100) < 1e-3),
  );
});

test('resized to the model size: a left/right split keeps its sides, 1×1 is upscaled', () => {
  const half = grey(
    png(56, 40, (x) => (x < 28 ? [0, 0, 0, 255] : [255, 255, 255, 255])),
    28,
    28,
  );
  assert.equal(half.length, 784);
  assert.ok(half[28 * 10 + 2]! < 1, 'left side dark');
  assert.ok(half[28 * 10 + 25]! > 254, 'right side bright');
  assert.equal(
    grey(
      png(1, 1, () => [9, 9, 9, 255]),
      28,
      28,
    ).length,
    784,
  );
});

test('refusals name the problem and never throw: not a PNG, no pixels, too many, short data, truncated', () => {
  const refuse = (bytes: Uint8Array, pattern: RegExp, maxPixels = LIMIT) =>
    assert.match(reason(decodePngJob({ bytes, width: 28, height: 28, maxPixels })), pattern);
  refuse(Buffer.from('hello, not an image at all, but long enough'), /not a PNG file/);
  refuse(HOSTILE_PNGS.zeroByZero(), /0×0: it has no pixels/);
  refuse(HOSTILE_PNGS.shortIdat(), /inflates to 100 bytes, short of the 812/);
  const huge = png(1, 1, () => [0, 0, 0, 255]);
  huge.writeUInt32BE(100_000, 16); // IHDR width and height: checked before decoding
  huge.writeUInt32BE(100_000, 20);
  refuse(huge, /10000000000 pixels, more than the limit of 1048576/);
  refuse(
    png(64, 64, () => [0, 0, 0, 255]),
    /4096 pixels, more than the limit of 1000/,
    1000,
  );
  refuse(png(10, 10, () => [0, 0, 0, 255]).subarray(0, 40), /cannot be decoded/);
  refuse(rawPng({ width: 4, height: 4, colorType: 5, raw: Buffer.alloc(20) }), /colour type 5/);
});

test('an interlaced PNG whose data inflates far past its size is refused before pngjs inflates it unbounded', () => {
  const bomb = rawPng({ width: 4, height: 4, interlace: 1, raw: Buffer.alloc(64 * 1024 * 1024) });
  assert.ok(bomb.length < 100_000, `the bomb is small on the wire (${bomb.length} bytes)`);
  assert.match(
    reason(decodePngJob({ bytes: bomb, width: 28, height: 28, maxPixels: LIMIT })),
    /inflates to more than the 23 bytes a 4×4 image holds/,
  );
});
