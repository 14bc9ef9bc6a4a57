import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { Engine, MIXED_KEY, type AnyEngineEvent, type EngineOptions } from '../../../src/engine/engine.js';
import type { Delta, TaskRef } from '../../../src/deltas/types.js';
import { saveOnnxModel } from '../../../src/onnx/model-file.js';
import { fingerprintWeights } from '../../../src/onnx/fingerprint.js';
import { readFloatWeights } from '../../../src/onnx/weights.js';
import { NATIVE_EXPECTED } from './kernel-cases.js';
import { testEngineOptions } from '../../helpers/engine-options.js';
import { ONE_SESSION_EXPECTED } from './one-session-cases.js';
import {
  buildTinyZoo,
  maxAbsDiff,
  mergeIndependently,
  writeTaskFiles,
  runPlain,
  tokenBatch,
  type TinyZoo,
} from '../../helpers/tiny-models.js';

const { onnx } = onnxProto;
let zoo: TinyZoo;
let gainBase: onnxProto.onnx.ModelProto;
const gainBasePath = () => join(zoo.dir, 'gain-base.onnx');
const refs: TaskRef[] = [];
const deltas: Delta[] = [];
const GAIN = 'extra.output_gain';

/** The tiny encoder with its logits multiplied by a weight vector: a Mul operand mixed batches cannot serve per request. */
function withOutputGain(model: onnxProto.onnx.ModelProto): onnxProto.onnx.ModelProto {
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const output = graph.output[0]!.name;
  const labels = Number(graph.output[0]!.type!.tensorType!.shape!.dim![1]!.dimValue);
  const node = graph.node.map((n) => ({
    ...n,
    output: (n.output ?? []).map((o) => (o === output ? `${output}::pre_gain` : o)),
  }));
  node.push({
    opType: 'Mul',
    name: 'output_gain',
    input: [`${output}::pre_gain`, GAIN],
    output: [output],
  } as onnxProto.onnx.NodeProto);
  const gain = {
    name: GAIN,
    dataType: onnx.TensorProto.DataType.FLOAT,
    dims: [labels],
    floatData: new Array<number>(labels).fill(1),
  };
  return onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({ ...graph, node, initializer: [...graph.initializer, gain] }),
  });
}

before(async () => {
  zoo = await buildTinyZoo({ tasks: 5 });
  gainBase = withOutputGain(zoo.base);
  await saveOnnxModel(gainBase, gainBasePath());
  const weights = readFloatWeights(gainBase);
  const fingerprint = fingerprintWeights(weights);
  const labels = weights.get(GAIN)!.data.length;
  for (const [i, built] of zoo.deltas.entries()) {
    // Task 4 also scales the logits: it must run on the per-task fallback.
    const extra =
      i === 4
        ? [
            {
              kind: 'dense' as const,
              name: GAIN,
              shape: [labels],
              values: Float32Array.from({ length: labels }, (_, k) => 0.5 + k / 10),
            },
          ]
        : [];
    const delta: Delta = {
      ...built,
      metadata: { ...built.metadata, baseFingerprint: fingerprint },
      tensors: [...built.tensors, ...extra],
    };
    deltas.push(delta);
  }
  refs.push(...(await writeTaskFiles(zoo.dir, deltas)));
});
after(async () => zoo.cleanup());

const options = (events: AnyEngineEvent[]): EngineOptions =>
  testEngineOptions({ modelPath: gainBasePath(), deltaDir: zoo.dir, mode: 'mixed', maxQueueDelayMs: 5, events });

test('mixed mode: concurrent requests of many tasks, the base and a fallback task each equal their own merged model', async () => {
  const events: AnyEngineEvent[] = [];
  const engine = await Engine.start(options(events));
  try {
    assert.equal(engine.readyInfo?.mode, 'mixed');
    const kernel = engine.readyInfo?.kernel;
    const names = ONE_SESSION_EXPECTED ? ['ort-custom-op'] : ['native-avx512', 'native-avx2', 'native-baseline', 'js'];
    assert.ok(
      kernel && names.includes(kernel.name) && kernel.threads >= 1,
      `the kernel in use is reported: ${JSON.stringify(kernel)}`,
    );
    assert.equal(kernel.pipeline, ONE_SESSION_EXPECTED ? 'custom-op' : 'segments', kernel.pipelineDetail);
    if (NATIVE_EXPECTED && !ONE_SESSION_EXPECTED)
      assert.notEqual(kernel.name, 'js', `the native kernel loads in the worker (${kernel.fallbackReason})`);
    const inputs = (i: number) => tokenBatch(1 + (i % 2), 6, 40 + i);
    // Resident first: a cold request waits for its load outside the queue, so cold tasks would
    // queue one load at a time; warm, the burst below queues at once and mixes.
    for (const ref of refs) await engine.load(ref);
    const jobs = Array.from({ length: 48 }, (_, i) => (i * 7) % 6); // 5 = the base
    // Loaded first: with cold tasks, each task's requests wait for its load and may run alone
    // once the batches are fast (the one-session path), so no batch would need to mix.
    for (const ref of refs) await engine.load(ref);
    const results = await Promise.all(jobs.map((t, i) => engine.infer(t === 5 ? null : refs[t]!, inputs(i))));
    for (const [i, t] of jobs.entries()) {
      const model = t === 5 ? gainBase : mergeIndependently(gainBase, deltas[t]!);
      const want = await runPlain(model, inputs(i));
      const got = results[i]!.outputs.logits!.data as Float32Array;
      assert.ok(maxAbsDiff(got, want) <= 1e-5, `job ${i} (task ${t}): ${maxAbsDiff(got, want)}`);
    }
    const fallbacks = events.filter((e) => e.type === 'mixed-fallback');
    assert.deepEqual(
      fallbacks.map((e) => e.type === 'mixed-fallback' && [e.key, e.tensor]),
      [[refs[4]!.key, GAIN]],
      'task 4 fell back once, naming the tensor',
    );
    const batches = events.filter((e): e is Extract<AnyEngineEvent, { type: 'batch' }> => e.type === 'batch');
    assert.ok(
      batches.some((b) => b.key === MIXED_KEY && (b.tasks ?? 0) > 1),
      'some batch held several tasks',
    );
    // Unloading forgets the verdict: the task is judged, and reported, again on its next run.
    await engine.evict(refs[4]!.key);
    await engine.infer(refs[4]!, inputs(0));
    assert.equal(events.filter((e) => e.type === 'mixed-fallback').length, 2, 'reported again after an unload');
  } finally {
    await engine.close();
  }
});
