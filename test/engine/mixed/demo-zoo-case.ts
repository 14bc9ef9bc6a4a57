/**
 * The demo zoo (a ViT: patch projection, class token, position table, dense heads) through a mixed
 * pipeline: every task and the base in one batch, each request equal to its own merged model.
 * Shared by the segment pipeline's tests and the one session's.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { decodeDelta } from '../../../src/deltas/format/delta-file.js';
import type { MixedBatchPipeline } from '../../../src/engine/runtime/mixed/mixed-core.js';
import { loadOnnxModel } from '../../../src/onnx/model-file.js';
import type { onnx } from '../../../src/onnx/proto.js';
import { readFloatWeights, type FloatWeight } from '../../../src/onnx/weights.js';
import { maxAbsDiff, mergeIndependently, runPlain } from '../../helpers/tiny-models.js';

type Weights = Map<string, FloatWeight>;

/**
 * Starts a pipeline on the zoo's base and runs, in one batch, every task once, the base, then
 * `extra(tasks)` more items (task indices, -1 for the base).
 */
export async function assertDemoZooMixes(
  start: (
    base: onnx.ModelProto,
    weights: Weights,
  ) => Promise<MixedBatchPipeline & { readonly unsupported: ReadonlyMap<string, string> }>,
  extra: (tasks: number) => number[],
): Promise<void> {
  const base = await loadOnnxModel('models/base/model.onnx');
  const pipeline = await start(base, readFloatWeights(base));
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
    const order = [...deltas.keys(), -1, ...extra(deltas.length)];
    const requests = order.map((t, i) => ({ inputs: pixels(i), delta: t < 0 ? null : deltas[t]! }));
    const { outputs } = await pipeline.run(requests);
    for (const [i, t] of order.entries()) {
      const expected = await runPlain(t < 0 ? base : mergeIndependently(base, deltas[t]!), requests[i]!.inputs);
      const got = outputs[i]!.logits!.data as Float32Array;
      assert.ok(
        maxAbsDiff(got, expected) <= 1e-5,
        `request ${i} (${t < 0 ? 'base' : tasks[t]}): max diff ${maxAbsDiff(got, expected)}`,
      );
    }
  } finally {
    await pipeline.release();
  }
}
