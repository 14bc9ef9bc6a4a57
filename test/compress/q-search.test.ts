import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearSpaced, logSpaced, meanSquaredDifference, searchQ } from '../../src/compress/q-search.js';

test('searchQ finds the minimum of a smooth loss between 1 - p and 1', async () => {
  const best = 0.037;
  const result = await searchQ(async (q) => (Math.log(q) - Math.log(best)) ** 2, { dropRate: 0.99 });
  assert.ok(Math.abs(result.q - best) / best < 0.08, `found q=${result.q}`);
  assert.ok(result.steps.some((s) => s.stage === 'fine'));
  assert.ok(result.steps.every((s) => s.q >= 0.01 - 1e-12 && s.q <= 1));
});

test('searchQ treats non-finite losses as worst', async () => {
  const result = await searchQ(async (q) => (q < 0.5 ? Number.NaN : q), { dropRate: 0.9 });
  assert.ok(result.q >= 0.5);
  assert.ok(Number.isFinite(result.loss));
});

test('searchQ includes the DARE point q = 1 - p on the coarse grid', async () => {
  const result = await searchQ(async (q) => Math.abs(q - 0.1), { dropRate: 0.9 });
  assert.ok(result.steps.some((s) => Math.abs(s.q - 0.1) < 1e-12));
  assert.ok(Math.abs(result.q - 0.1) < 1e-12);
});

test('grids and the loss', () => {
  const log = logSpaced(0.01, 1, 3);
  assert.ok(Math.abs(log[1]! - 0.1) < 1e-12);
  assert.equal(log[2], 1);
  assert.deepEqual(linearSpaced(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]);
  assert.equal(meanSquaredDifference(Float32Array.from([1, 2]), Float32Array.from([1, 4])), 2);
  assert.throws(() => meanSquaredDifference(new Float32Array(1), new Float32Array(2)), RangeError);
});
