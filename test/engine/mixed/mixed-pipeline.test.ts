import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MixedPipeline } from '../../../src/engine/runtime/mixed/mixed-pipeline.js';
import { readFloatWeights } from '../../../src/onnx/weights.js';
import { buildTinyZoo, mergeIndependently, runPlain, tokenBatch, maxAbsDiff } from '../../helpers/tiny-models.js';
import { referenceSideKernel } from '../../helpers/reference-side-kernel.js';
import { assertDemoZooMixes } from './demo-zoo-case.js';

test('a mixed batch of the tiny encoder equals each request run on its own merged model', async () => {
  const zoo = await buildTinyZoo({ tasks: 4, dropRate: 0.9 });
  try {
    const pipeline = await MixedPipeline.create(
      zoo.base,
      readFloatWeights(zoo.base),
      readFloatWeights(zoo.base),
      { executionProvider: 'cpu', intraOpThreads: 1 },
      referenceSideKernel,
    );
    assert.equal(pipeline.unsupported.size, 0, [...pipeline.unsupported].join('; '));
    const tasks = [0, 1, null, 2, 0, 3];
    const requests = tasks.map((t, i) => ({
      inputs: tokenBatch(1, 8, 100 + i),
      delta: t === null ? null : zoo.deltas[t]!,
    }));
    const { outputs } = await pipeline.run(requests);
    for (const [i, t] of tasks.entries()) {
      const expected = await runPlain(
        t === null ? zoo.base : mergeIndependently(zoo.base, zoo.deltas[t]!),
        requests[i]!.inputs,
      );
      const got = outputs[i]!.logits!.data as Float32Array;
      assert.ok(maxAbsDiff(got, expected) < 1e-5, `request ${i} (task ${t}): max diff ${maxAbsDiff(got, expected)}`);
    }
    await pipeline.release();
  } finally {
    await zoo.cleanup();
  }
});

test('the demo zoo (a ViT: patch projection, class token, position table, dense heads) mixes every task in one batch', () =>
  assertDemoZooMixes(
    (base, weights) =>
      MixedPipeline.create(
        base,
        weights,
        weights,
        { executionProvider: 'cpu', intraOpThreads: 1 },
        referenceSideKernel,
      ),
    () => [0, 3],
  ));

test('with only 2-D weights patchable, unpatchable biases still fold into the side path and deltas on the rest apply exactly', async () => {
  const zoo = await buildTinyZoo({ tasks: 3, dropRate: 0.5 });
  try {
    const all = readFloatWeights(zoo.base);
    const patchable = new Map([...all].filter(([, w]) => w.shape.length === 2));
    const pipeline = await MixedPipeline.create(
      zoo.base,
      patchable,
      all,
      { executionProvider: 'cpu', intraOpThreads: 1 },
      referenceSideKernel,
    );
    try {
      const deltas = zoo.deltas.map((d) => ({ ...d, tensors: d.tensors.filter((t) => patchable.has(t.name)) }));
      const requests = [0, 1, 2, 1].map((t, i) => ({ inputs: tokenBatch(2, 7, 300 + i), delta: deltas[t]! }));
      const { outputs } = await pipeline.run(requests);
      for (const [i, request] of requests.entries()) {
        const expected = await runPlain(mergeIndependently(zoo.base, request.delta), request.inputs);
        assert.ok(maxAbsDiff(outputs[i]!.logits!.data as Float32Array, expected) < 1e-5, `request ${i}`);
      }
    } finally {
      await pipeline.release();
    }
  } finally {
    await zoo.cleanup();
  }
});
