import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRng } from '../../src/core/rng.js';
import { buildDelta, withRescale, type BuildDeltaOptions, type WeightMap } from '../../src/compress/build-delta.js';
import { dareKeptIndices } from '../../src/compress/dare.js';
import { largestMagnitudeIndices } from '../../src/compress/magnitude.js';
import { DEFAULT_DENSE_PATTERNS } from '../../src/compress/tensor-selection.js';
import type { SparseTensorDelta } from '../../src/deltas/types.js';

function randomWeights(
  seed: number,
  shapes: Record<string, number[]>,
  scale = 1,
): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = new SeededRng(seed);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of Object.entries(shapes)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.nextNormal() * scale;
    out.set(name, { shape, data });
  }
  return out;
}

function fineTune(base: WeightMap, seed: number, scale: number): WeightMap {
  const rng = new SeededRng(seed);
  return new Map(
    [...base].map(([name, w]) => [name, { shape: w.shape, data: w.data.map((v) => v + rng.nextNormal() * scale) }]),
  );
}

const SHAPES = { 'layer.0.w': [200, 300], 'layer.1.w': [300, 100], 'classifier.weight': [100, 10] };
const base = randomWeights(1, SHAPES, 0.02);
const tuned = fineTune(base, 2, 0.002);
const options = (over: Partial<BuildDeltaOptions>): BuildDeltaOptions => ({
  method: 'dare',
  dropRate: 0.9,
  seed: 7,
  valueDtype: 'F32',
  selection: { include: [], exclude: [], dense: DEFAULT_DENSE_PATTERNS },
  baseFingerprint: 'f'.repeat(64),
  ...over,
});
const sparse = (delta: ReturnType<typeof buildDelta>, name: string) =>
  delta.tensors.find((t) => t.name === name) as SparseTensorDelta;

test('DARE keeps a fraction of entries within 4 sigma of 1 - p', () => {
  for (const p of [0.5, 0.9, 0.99]) {
    const n = 200_000;
    const kept = dareKeptIndices(n, p, new SeededRng(11)).length;
    const sigma = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(kept - n * (1 - p)) <= 4 * sigma, `p=${p}: kept ${kept} of ${n}`);
  }
});

test('DARE kept indices are strictly increasing and in range', () => {
  const indices = dareKeptIndices(10_000, 0.7, new SeededRng(3));
  for (let k = 1; k < indices.length; k++) assert.ok(indices[k]! > indices[k - 1]!);
  assert.ok(indices[indices.length - 1]! < 10_000);
});

test('DARE at p = 0 keeps everything', () => {
  assert.equal(dareKeptIndices(1234, 0, new SeededRng(1)).length, 1234);
});

test('DARE kept values equal delta / (1 - p)', () => {
  const delta = buildDelta(base, tuned, options({}));
  const tensor = sparse(delta, 'layer.0.w');
  const b = base.get('layer.0.w')!.data;
  const t = tuned.get('layer.0.w')!.data;
  assert.ok(tensor.indices.length > 0);
  for (let k = 0; k < tensor.indices.length; k++) {
    const i = tensor.indices[k]!;
    assert.equal(tensor.values[k], Math.fround((t[i]! - b[i]!) * (1 / (1 - 0.9))));
  }
  assert.equal(tensor.rescale, 1 / (1 - 0.9));
  assert.equal(delta.metadata.rescale, 1 / (1 - 0.9));
});

test('the classifier head is kept dense by default and equals the exact delta', () => {
  const delta = buildDelta(base, tuned, options({}));
  const head = delta.tensors.find((t) => t.name === 'classifier.weight');
  assert.equal(head?.kind, 'dense');
  const b = base.get('classifier.weight')!.data;
  const t = tuned.get('classifier.weight')!.data;
  head.values.forEach((v, i) => assert.equal(v, Math.fround(t[i]! - b[i]!)));
});

test('the same seed gives the same mask; a different seed a different one', () => {
  const a = sparse(buildDelta(base, tuned, options({ seed: 5 })), 'layer.1.w');
  const b = sparse(buildDelta(base, tuned, options({ seed: 5 })), 'layer.1.w');
  const c = sparse(buildDelta(base, tuned, options({ seed: 6 })), 'layer.1.w');
  assert.deepEqual(a.indices, b.indices);
  assert.deepEqual(a.values, b.values);
  assert.notDeepEqual(a.indices, c.indices);
});

test('the mask does not depend on the order weights are listed in', () => {
  const reversed = new Map([...base].reverse());
  const a = sparse(buildDelta(base, tuned, options({})), 'layer.1.w');
  const b = sparse(buildDelta(reversed, tuned, options({})), 'layer.1.w');
  assert.deepEqual(a.indices, b.indices);
});

test('darex-q with a given q scales the DARE mask by 1/q', () => {
  const dare = sparse(buildDelta(base, tuned, options({})), 'layer.0.w');
  const darex = sparse(buildDelta(base, tuned, options({ method: 'darex-q', q: 0.25 })), 'layer.0.w');
  assert.deepEqual(darex.indices, dare.indices);
  const b = base.get('layer.0.w')!.data;
  const t = tuned.get('layer.0.w')!.data;
  for (let k = 0; k < darex.indices.length; k++) {
    const i = darex.indices[k]!;
    assert.equal(darex.values[k], Math.fround((t[i]! - b[i]!) * 4));
  }
  assert.equal(darex.rescale, 4);
});

test('darex-q refuses q outside (0, 1]', () => {
  assert.throws(() => buildDelta(base, tuned, options({ method: 'darex-q', q: 0 })), /q in \(0, 1\]/);
  assert.throws(() => buildDelta(base, tuned, options({ method: 'darex-q' })), /q in \(0, 1\]/);
});

test('withRescale re-scales a DARE delta to another q without changing its mask', () => {
  const dare = buildDelta(base, tuned, options({}));
  const rescaled = withRescale(dare, 'darex-q', 2);
  const a = sparse(dare, 'layer.0.w');
  const b = sparse(rescaled, 'layer.0.w');
  assert.deepEqual(b.indices, a.indices);
  b.values.forEach((v, k) => assert.ok(Math.abs(v - a.values[k]! * (2 / 10)) <= 1e-7 * Math.abs(v) + 1e-12));
});

test('magnitude keeps exactly the largest entries, no rescale', () => {
  const delta = buildDelta(base, tuned, options({ method: 'magnitude', dropRate: 0.95 }));
  const tensor = sparse(delta, 'layer.0.w');
  const b = base.get('layer.0.w')!.data;
  const t = tuned.get('layer.0.w')!.data;
  const diffs = Array.from(t, (v, i) => Math.fround(v - b[i]!));
  const expected = diffs
    .map((d, i) => ({ d: Math.abs(d), i }))
    .sort((x, y) => y.d - x.d || x.i - y.i)
    .slice(0, Math.round(diffs.length * 0.05))
    .map((x) => x.i)
    .sort((x, y) => x - y);
  assert.deepEqual(Array.from(tensor.indices), expected);
  tensor.values.forEach((v, k) => assert.equal(v, diffs[tensor.indices[k]!]));
  assert.equal(delta.metadata.seed, null);
  assert.equal(tensor.rescale, 1);
});

test('magnitude selection handles ties by keeping the lowest indices', () => {
  const delta = Float32Array.from([1, -3, 3, 2, 3, 0, -3]);
  assert.deepEqual(Array.from(largestMagnitudeIndices(delta, 2)), [1, 2]);
  assert.deepEqual(Array.from(largestMagnitudeIndices(delta, 4)), [1, 2, 4, 6]);
  assert.deepEqual(Array.from(largestMagnitudeIndices(delta, 0)), []);
  assert.equal(largestMagnitudeIndices(delta, 7).length, 7);
});

test('magnitude selection agrees with a sort on many random arrays', () => {
  const rng = new SeededRng(99);
  for (let trial = 0; trial < 50; trial++) {
    const n = 1 + rng.nextInt(500);
    // Few distinct values so ties are common.
    const data = Float32Array.from({ length: n }, () => rng.nextInt(9) - 4);
    const keep = rng.nextInt(n + 1);
    const expected = Array.from(data, (d, i) => ({ d: Math.abs(d), i }))
      .sort((x, y) => y.d - x.d || x.i - y.i)
      .slice(0, keep)
      .map((x) => x.i)
      .sort((x, y) => x - y);
    assert.deepEqual(Array.from(largestMagnitudeIndices(data, keep)), expected);
  }
});

test('weights whose delta is exactly zero are left out; excluded weights too', () => {
  const partly = new Map(tuned);
  partly.set('layer.1.w', base.get('layer.1.w')!);
  const delta = buildDelta(base, partly, options({ selection: { include: [], exclude: ['layer.0.*'], dense: [] } }));
  assert.deepEqual(
    delta.tensors.map((t) => t.name),
    ['classifier.weight'],
  );
  assert.equal(delta.tensors[0]!.kind, 'sparse');
});

test('mismatched models are refused naming the weight', () => {
  const wrong = new Map(tuned);
  wrong.set('layer.0.w', { shape: [300, 200], data: tuned.get('layer.0.w')!.data });
  assert.throws(
    () => buildDelta(base, wrong, options({})),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_ONNX_INCOMPATIBLE' && /layer\.0\.w/.test(e.message),
  );
  const extra = new Map(tuned);
  extra.set('new.w', { shape: [1], data: new Float32Array(1) });
  assert.throws(() => buildDelta(base, extra, options({})), /new\.w/);
  const missing = new Map(tuned);
  missing.delete('layer.1.w');
  assert.throws(() => buildDelta(base, missing, options({})), /layer\.1\.w/);
});

test('drop rate outside [0, 1) is refused', () => {
  assert.throws(() => buildDelta(base, tuned, options({ dropRate: 1 })), RangeError);
  assert.throws(() => buildDelta(base, tuned, options({ dropRate: -0.1 })), RangeError);
});
