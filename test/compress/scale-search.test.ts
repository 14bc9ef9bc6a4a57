import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scaleSearchPasses, searchTensorScales } from '../../src/compress/scale-search.js';

test('coordinate descent moves each factor toward its own optimum and never ends above where it started', async () => {
  const optimum = new Map([
    ['a', 0.3],
    ['b', 1],
    ['c', 1.6],
  ]);
  let calls = 0;
  const loss = async (factors: ReadonlyMap<string, number>) => {
    calls++;
    let sum = 0;
    for (const [name, best] of optimum) sum += (Math.log(factors.get(name)!) - Math.log(best)) ** 2;
    return sum;
  };
  const result = await searchTensorScales(['a', 'b', 'c'], loss);
  assert.equal(calls, scaleSearchPasses(3));
  assert.equal(result.passes, calls);
  assert.ok(result.loss < result.initialLoss / 10, `${result.initialLoss} → ${result.loss}`);
  for (const [name, best] of optimum) {
    const found = result.factors.get(name)!;
    assert.ok(Math.abs(Math.log(found / best)) < 0.25, `${name}: ${found} vs ${best}`);
  }
});

test('non-finite losses count as worst; bad steps are refused', async () => {
  const result = await searchTensorScales(['a'], async (f) => (f.get('a')! < 1 ? Number.NaN : f.get('a')!), {
    steps: [0.5],
  });
  assert.equal(result.factors.get('a'), 1);
  await assert.rejects(
    searchTensorScales(['a'], async () => 0, { steps: [1.5] }),
    /steps/,
  );
});
