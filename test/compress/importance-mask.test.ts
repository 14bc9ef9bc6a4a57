import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRng } from '../../src/core/rng.js';
import { importanceKept, importanceOf, keepProbabilities } from '../../src/compress/importance-mask.js';
import { buildDelta, withTensorScales } from '../../src/compress/build-delta.js';
import { DEFAULT_DENSE_PATTERNS } from '../../src/compress/tensor-selection.js';
import type { SparseTensorDelta } from '../../src/deltas/types.js';

function heavyTailedDelta(seed: number, length: number): Float32Array {
  const rng = new SeededRng(seed);
  // A few large entries among many small ones, so some probabilities hit the cap of 1.
  return Float32Array.from({ length }, (_, k) => rng.nextNormal() * (k % 17 === 0 ? 0.05 : 0.002));
}

test('keep probabilities sum to the expected count, are capped at 1 and proportional below the cap', () => {
  const importance = Float32Array.from(heavyTailedDelta(1, 500), Math.abs);
  const expected = 500 * (1 - 0.9);
  const pi = keepProbabilities(importance, expected);
  const sum = pi.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - expected) < 1e-3, `sum ${sum}`);
  assert.ok(pi.every((p) => p >= 0 && p <= 1));
  const capped = [...pi].filter((p) => p === 1).length;
  assert.ok(capped > 0, 'the heavy tail reaches the cap');
  const ratios = [...pi]
    .map((p, k) => (p < 1 && importance[k]! > 0 ? p / importance[k]! : Number.NaN))
    .filter(Number.isFinite);
  assert.ok(Math.max(...ratios) / Math.min(...ratios) < 1 + 1e-4, 'π/w is one constant below the cap');
});

test('keep probabilities: nothing to spend on zero entries, everything kept when the budget covers them', () => {
  const pi = keepProbabilities(Float32Array.of(0, 2, 0, 1), 3);
  assert.deepEqual([...pi], [0, 1, 0, 1]);
});

test('the importance mask keeps the expected count on average and is unbiased over many seeds', () => {
  const delta = heavyTailedDelta(3, 240);
  const norms = { norms: Float32Array.from({ length: 12 }, (_, i) => 0.5 + i), rowLength: 20 };
  const dropRate = 0.9;
  const seeds = 4000;
  const sums = new Float64Array(delta.length);
  let kept = 0;
  for (let seed = 0; seed < seeds; seed++) {
    const sample = importanceKept(delta, norms, dropRate, new SeededRng(seed));
    kept += sample.indices.length;
    sample.indices.forEach((k, n) => (sums[k] = sums[k]! + sample.values[n]!));
  }
  const expected = delta.length * (1 - dropRate);
  assert.ok(Math.abs(kept / seeds - expected) < 0.2, `mean kept ${kept / seeds}, expected ${expected}`);
  // Mean of δ̂ over seeds ≈ δ: per entry, relative to the largest entry's size (the estimator's
  // variance grows as π shrinks, so compare in aggregate and with a loose per-entry bound).
  const pi = keepProbabilities(importanceOf(delta, norms), expected);
  let worstZ = 0;
  for (let k = 0; k < delta.length; k++) {
    const sd = Math.abs(delta[k]!) * Math.sqrt((1 - pi[k]!) / pi[k]! / seeds);
    if (sd > 0) worstZ = Math.max(worstZ, Math.abs(sums[k]! / seeds - delta[k]!) / sd);
  }
  assert.ok(worstZ < 5, `largest deviation ${worstZ.toFixed(2)} standard errors`);
});

test('rows with larger input norms are kept more often at equal |δ|', () => {
  const delta = new Float32Array(200).fill(0.01);
  const norms = { norms: Float32Array.of(1, 4), rowLength: 100 };
  const pi = keepProbabilities(importanceOf(delta, norms), 20);
  assert.ok(Math.abs(pi[150]! / pi[50]! - 4) < 1e-5);
});

test('buildDelta with an importance mask: nominal rescale, mask recorded, per-tensor factors scale values and rescale', () => {
  const base = new Map([['layer.w', { shape: [40, 30], data: new Float32Array(1200) }]]);
  const tuned = new Map([['layer.w', { shape: [40, 30], data: heavyTailedDelta(5, 1200) }]]);
  const options = {
    method: 'dare' as const,
    dropRate: 0.95,
    seed: 9,
    valueDtype: 'F32' as const,
    selection: { include: [], exclude: [], dense: DEFAULT_DENSE_PATTERNS },
    baseFingerprint: 'f'.repeat(64),
    mask: 'importance' as const,
  };
  const delta = buildDelta(base, tuned, options);
  assert.equal(delta.metadata.extra.mask, 'importance');
  const tensor = delta.tensors[0] as SparseTensorDelta;
  assert.ok(Math.abs(tensor.rescale - 20) < 1e-9);
  assert.deepEqual(buildDelta(base, tuned, options), delta, 'seeded: the same mask and values again');
  const scaled = withTensorScales(delta, new Map([['layer.w', 0.5]]));
  const other = scaled.tensors[0] as SparseTensorDelta;
  assert.ok(Math.abs(other.rescale - 10) < 1e-9);
  other.values.forEach((v, k) => assert.ok(Math.abs(v - tensor.values[k]! * 0.5) < 1e-9));
  assert.throws(() => buildDelta(base, tuned, { ...options, method: 'magnitude' }), /importance mask/);
});
