import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fingerprintWeights, sha256File } from '../../src/onnx/fingerprint.js';
import { buildSyntheticEncoder, TINY_ENCODER } from '../../src/onnx/synthetic.js';
import { readFloatWeights } from '../../src/onnx/weights.js';
import { withTempDir } from './fixtures.js';

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

const small = (): Weights =>
  new Map([
    ['b', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['a', { shape: [1], data: Float32Array.from([-0.5]) }],
  ]);

test('the fingerprint is stable, independent of map order, and pinned', () => {
  const reversed: Weights = new Map([...small()].reverse());
  assert.equal(fingerprintWeights(small()), fingerprintWeights(reversed));
  assert.match(fingerprintWeights(small()), /^[0-9a-f]{64}$/);
  // Deltas in the wild record this value: changing the encoding must be a deliberate, versioned
  // act. Computed independently (Python hashlib + struct) from the encoding in fingerprint.ts.
  assert.equal(fingerprintWeights(small()), 'be34fc153ceea6dca3fbedbbda62c33fb6f9a6dab5f96fe6d23e1534bd02ee15');

  const model = buildSyntheticEncoder({ ...TINY_ENCODER, seed: 9 });
  assert.equal(
    fingerprintWeights(readFloatWeights(model)),
    fingerprintWeights(readFloatWeights(buildSyntheticEncoder({ ...TINY_ENCODER, seed: 9 }))),
  );
});

test('the fingerprint changes with any value, shape or name', () => {
  const base = fingerprintWeights(small());

  const oneValue = small();
  oneValue.get('b')!.data[4] = Math.fround(5 + 1e-6);
  assert.notEqual(fingerprintWeights(oneValue), base);

  const model = readFloatWeights(buildSyntheticEncoder({ ...TINY_ENCODER, seed: 9 }));
  const before = fingerprintWeights(model);
  model.get('layer.1.ffn.down.weight')!.data[100]! += 1e-7;
  assert.notEqual(fingerprintWeights(model), before);

  const reshaped = small();
  reshaped.set('b', { shape: [3, 2], data: reshaped.get('b')!.data });
  assert.notEqual(fingerprintWeights(reshaped), base);

  const renamed: Weights = new Map([...small()].map(([name, w]) => [name === 'a' ? 'c' : name, w]));
  assert.notEqual(fingerprintWeights(renamed), base);
});

test('boundaries between tensors are unambiguous', () => {
  const split = (left: string, right: string, cut: number): Weights => {
    const data = Float32Array.from([1, 2, 3, 4]);
    return new Map([
      [left, { shape: [cut], data: data.slice(0, cut) }],
      [right, { shape: [4 - cut], data: data.slice(cut) }],
    ]);
  };
  assert.notEqual(fingerprintWeights(split('a', 'b', 1)), fingerprintWeights(split('a', 'b', 3)));
  assert.notEqual(fingerprintWeights(split('ab', 'c', 2)), fingerprintWeights(split('a', 'bc', 2)));
});

test('a weight whose data does not fill its shape is refused', () => {
  assert.throws(() => fingerprintWeights(new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]])), {
    code: 'DS_ERR_ONNX_INVALID',
    message: /weight "w" has 3 values but its shape \[2, 2\] holds 4/,
  });
});

test('sha256File streams the file and reports missing files', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'blob.bin');
    const bytes = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff));
    await writeFile(path, bytes);
    assert.equal(await sha256File(path), createHash('sha256').update(bytes).digest('hex'));
    await assert.rejects(sha256File(join(dir, 'missing.bin')), { code: 'DS_ERR_FILE_READ', message: /missing\.bin/ });
  });
});
