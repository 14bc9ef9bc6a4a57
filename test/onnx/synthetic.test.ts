import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprintWeights } from '../../src/onnx/fingerprint.js';
import { encodeOnnxModel } from '../../src/onnx/model-file.js';
import { buildSyntheticEncoder, syntheticFinetune, TINY_ENCODER } from '../../src/onnx/synthetic.js';
import { readFloatWeights } from '../../src/onnx/weights.js';
import { runLogits, tokenIds } from './fixtures.js';

test('the TINY encoder runs in onnxruntime-node with batch and seq chosen at run time', async () => {
  const bytes = encodeOnnxModel(buildSyntheticEncoder({ ...TINY_ENCODER, seed: 1 }));
  const first = await runLogits(bytes, tokenIds(2, 5, TINY_ENCODER.vocab));
  assert.deepEqual(first.dims, [2, 3]);
  assert.ok(first.data.every(Number.isFinite), `finite logits: ${first.data.join(',')}`);
  assert.notDeepEqual(first.data.subarray(0, 3), first.data.subarray(3, 6), 'different rows, different logits');

  const other = await runLogits(bytes, tokenIds(2, 5, TINY_ENCODER.vocab, 1));
  assert.notDeepEqual(other.data, first.data, 'the output depends on the input');

  const longest = await runLogits(bytes, tokenIds(1, TINY_ENCODER.maxSeq, TINY_ENCODER.vocab));
  assert.deepEqual(longest.dims, [1, 3]);
  assert.ok(longest.data.every(Number.isFinite));
});

test('generation is deterministic per seed and names weights readably', () => {
  const a = readFloatWeights(buildSyntheticEncoder({ ...TINY_ENCODER, seed: 4 }));
  const b = readFloatWeights(buildSyntheticEncoder({ ...TINY_ENCODER, seed: 4 }));
  const c = readFloatWeights(buildSyntheticEncoder({ ...TINY_ENCODER, seed: 5 }));
  assert.equal(fingerprintWeights(a), fingerprintWeights(b));
  assert.notEqual(fingerprintWeights(a), fingerprintWeights(c));
  for (const name of [
    'embeddings.token.weight',
    'embeddings.position.weight',
    'embeddings.norm.weight',
    'embeddings.norm.bias',
    'layer.1.attn.q.weight',
    'layer.1.attn.k.bias',
    'layer.1.attn.v.weight',
    'layer.1.attn.o.weight',
    'layer.1.attn.norm.weight',
    'layer.1.ffn.up.weight',
    'layer.1.ffn.down.bias',
    'layer.1.ffn.norm.bias',
    'classifier.weight',
    'classifier.bias',
  ]) {
    assert.ok(a.has(name), name);
  }

  const matrix = a.get('layer.0.ffn.up.weight')!.data;
  const std = Math.sqrt(matrix.reduce((s, x) => s + x * x, 0) / matrix.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `matrix std ${std} ≈ 0.02`);
  assert.ok(a.get('layer.0.ffn.up.bias')!.data.every((x) => x === 0));
  assert.ok(a.get('layer.0.ffn.norm.weight')!.data.every((x) => x === 1));
});

test('syntheticFinetune adds N(0, scale) noise to every weight, same graph', () => {
  const base = buildSyntheticEncoder({ ...TINY_ENCODER, seed: 2 });
  const baseWeights = readFloatWeights(base);
  for (const scale of [undefined, 0.01]) {
    const tuned = readFloatWeights(syntheticFinetune(base, { seed: 8, ...(scale === undefined ? {} : { scale }) }));
    let sum = 0;
    let sumSquares = 0;
    let count = 0;
    for (const [name, { data }] of baseWeights) {
      const other = tuned.get(name)!.data;
      let changed = 0;
      for (let i = 0; i < data.length; i++) {
        const delta = other[i]! - data[i]!;
        sum += delta;
        sumSquares += delta * delta;
        if (delta !== 0) changed++;
      }
      count += data.length;
      assert.ok(changed > data.length * 0.9, `${name} is perturbed`);
    }
    const expected = scale ?? 0.002;
    const mean = sum / count;
    const std = Math.sqrt(sumSquares / count - mean * mean);
    assert.ok(Math.abs(std - expected) < 0.1 * expected, `delta std ${std} within 10 % of ${expected}`);
    assert.ok(Math.abs(mean) < 0.05 * expected, `delta mean ${mean} ≈ 0`);
  }
  assert.equal(fingerprintWeights(readFloatWeights(base)), fingerprintWeights(baseWeights), 'the base is not modified');
});

test('a synthetic fine-tune runs and moves the logits a little', async () => {
  const base = buildSyntheticEncoder({ ...TINY_ENCODER, seed: 2 });
  const ids = tokenIds(2, 5, TINY_ENCODER.vocab);
  const before = await runLogits(encodeOnnxModel(base), ids);
  const after = await runLogits(encodeOnnxModel(syntheticFinetune(base, { seed: 8 })), ids);
  assert.deepEqual(after.dims, [2, 3]);
  const moved = after.data.map((x, i) => Math.abs(x - before.data[i]!));
  assert.ok(moved.some((d) => d > 0) && moved.every((d) => d < 0.5), `logit changes ${moved.join(',')}`);
});

test('invalid generator options are refused', () => {
  assert.throws(() => buildSyntheticEncoder({ ...TINY_ENCODER, heads: 5, seed: 1 }), {
    code: 'DS_ERR_CLI_USAGE',
    message: /hidden \(32\) must be divisible by heads \(5\)/,
  });
  assert.throws(() => buildSyntheticEncoder({ ...TINY_ENCODER, opset: 13, seed: 1 }), {
    code: 'DS_ERR_CLI_USAGE',
    message: /opset must be an integer from 17 to 23, got 13/,
  });
  assert.throws(() => buildSyntheticEncoder({ ...TINY_ENCODER, vocab: 0, seed: 1 }), {
    code: 'DS_ERR_CLI_USAGE',
    message: /vocab must be an integer ≥ 1, got 0/,
  });
});
