import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MixedPipeline } from '../../../src/engine/runtime/mixed/mixed-pipeline.js';
import { readFloatWeights } from '../../../src/onnx/weights.js';
import { buildTinyZoo, mergeIndependently, runPlain, tokenBatch, maxAbsDiff } from '../../helpers/tiny-models.js';
import { referenceSideKernel } from '../../helpers/reference-side-kernel.js';

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

test('the demo zoo (a ViT: patch projection, class token, position table, dense heads) mixes every task in one batch', async () => {
  const { loadOnnxModel } = await import('../../../src/onnx/model-file.js');
  const { decodeDelta } = await import('../../../src/deltas/format/delta-file.js');
  const { readFile, readdir } = await import('node:fs/promises');
  const base = await loadOnnxModel('models/base/model.onnx');
  const pipeline = await MixedPipeline.create(
    base,
    readFloatWeights(base),
    readFloatWeights(base),
    { executionProvider: 'cpu', intraOpThreads: 1 },
    referenceSideKernel,
  );
  try {
    assert.equal(pipeline.unsupported.size, 0, [...pipeline.unsupported].join('; '));
    const tasks = (await readdir('models/tasks')).sort();
    const deltas = await Promise.all(
      tasks.map(async (t) => decodeDelta(await readFile(`models/tasks/${t}/delta.safetensors`))),
    );
    const pixels = (seed: number) => {
      const data = new Float32Array(28 * 28);
      for (let i = 0; i < data.length; i++) data[i] = ((i * 7919 + seed * 104729) % 1000) / 1000;
      return { pixels: { type: 'float32' as const, dims: [1, 1, 28, 28], data } };
    };
    const order = [...deltas.keys(), -1, 0, 3];
    const requests = order.map((t, i) => ({ inputs: pixels(i), delta: t < 0 ? null : deltas[t]! }));
    const { outputs } = await pipeline.run(requests);
    for (const [i, t] of order.entries()) {
      const model = t < 0 ? base : mergeIndependently(base, deltas[t]!);
      const expected = await runPlain(model, requests[i]!.inputs);
      const got = outputs[i]!.logits!.data as Float32Array;
      assert.ok(
        maxAbsDiff(got, expected) < 1e-5,
        `request ${i} (${t < 0 ? 'base' : tasks[t]}): max diff ${maxAbsDiff(got, expected)}`,
      );
    }
  } finally {
    await pipeline.release();
  }
});

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
