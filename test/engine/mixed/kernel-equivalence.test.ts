import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelsUnderTest, makeBatch, reference, runKernel, type Case } from './kernel-cases.js';

const CASES: Case[] = [
  {
    name: 'one row, one sparse job with bias',
    inDim: 5,
    outDim: 7,
    jobs: [{ rows: 1, weight: 'sparse', bias: true, density: 0.5 }],
  },
  {
    name: 'dims not multiples of 4/8/16, every kind of job',
    inDim: 37,
    outDim: 53,
    jobs: [
      { rows: 1, weight: 'sparse', bias: false, density: 0.2 },
      { rows: 17, weight: 'dense', bias: true },
      { rows: 6, weight: 'none', bias: true },
      { rows: 5, weight: 'empty', bias: false },
      { rows: 3, weight: 'empty', bias: true },
      { rows: 40, weight: 'sparse', bias: true, density: 0.05 },
      { rows: 2, weight: 'none', bias: false },
    ],
  },
  {
    name: 'rows no job covers and an empty job',
    inDim: 16,
    outDim: 24,
    gap: 3,
    jobs: [
      { rows: 9, weight: 'sparse', bias: true, density: 0.3 },
      { rows: 0, weight: 'sparse', bias: true, density: 0.3 },
      { rows: 4, weight: 'dense', bias: false },
    ],
  },
  {
    name: 'many small jobs',
    inDim: 24,
    outDim: 40,
    jobs: Array.from({ length: 40 }, (_, k) => ({
      rows: 1 + (k % 9),
      weight: 'sparse' as const,
      bias: k % 2 === 0,
      density: 0.1,
    })),
  },
  {
    name: 'jobs longer than a token block (128), fewer jobs than threads',
    inDim: 130,
    outDim: 66,
    jobs: [
      { rows: 150, weight: 'sparse', bias: true, density: 0.1 },
      { rows: 131, weight: 'dense', bias: false },
    ],
  },
  {
    name: 'indices not in increasing order',
    inDim: 20,
    outDim: 33,
    jobs: [{ rows: 12, weight: 'sparse', bias: true, density: 0.3, shuffled: true }],
  },
];

const kernels = kernelsUnderTest();

for (const [n, c] of CASES.entries()) {
  test(`side kernels equal a float64 reference and each other's bits: ${c.name}`, () => {
    const batch = makeBatch(c, 1000 + n);
    const { values, scale } = reference(batch, c.inDim, c.outDim);
    const outputs = kernels.map((kernel) => runKernel(kernel, batch, c.inDim, c.outDim));
    for (const [k, out] of outputs.entries()) {
      const name = `${kernels[k]!.name} × ${kernels[k]!.threads}`;
      for (let e = 0; e < out.length; e++) {
        // A float32 sum of at most inDim + 1 terms: the classic bound on its rounding error.
        const bound = (c.inDim + 2) * 2 ** -24 * scale[e]!;
        assert.ok(
          Math.abs(out[e]! - values[e]!) <= bound,
          `${name}: element ${e} is ${out[e]}, reference ${values[e]} (bound ${bound})`,
        );
      }
    }
    // Every path adds the same float32 terms in the same order per element (column j's nonzeros
    // in index order, then the bias), so all of them give the bits of the JS kernel.
    const expected = Buffer.from(outputs[0]!.buffer);
    for (const [k, out] of outputs.entries()) {
      assert.ok(
        Buffer.from(out.buffer).equals(expected),
        `${kernels[k]!.name} × ${kernels[k]!.threads} differs from ${kernels[0]!.name} in bits`,
      );
    }
  });
}

test('side kernels: repeated calls on the same kernel give the same result (scratch reuse)', () => {
  const big = makeBatch(CASES[4]!, 7);
  const small = makeBatch(CASES[0]!, 8);
  for (const kernel of kernels) {
    const first = runKernel(kernel, small, 5, 7);
    runKernel(kernel, big, 130, 66);
    assert.deepEqual(runKernel(kernel, small, 5, 7), first, kernel.name);
  }
});
