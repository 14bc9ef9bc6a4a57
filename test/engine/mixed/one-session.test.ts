/**
 * The mixed pipeline the engine starts (one ORT session with the side path as a custom op; with
 * DELTASERVE_MIXED_PIPELINE=segments the segment fallback, so CI runs the same tests on both)
 * against independently merged models: random mixes of tasks and the base on the synthetic
 * encoder and the demo zoo's ViT, within 1e-5.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OneSessionPipeline } from '../../../src/engine/runtime/mixed/one-session/one-session-pipeline.js';
import type { MixedRequest } from '../../../src/engine/runtime/mixed/mixed-pipeline.js';
import { readFloatWeights } from '../../../src/onnx/weights.js';
import { SeededRng } from '../../../src/core/rng.js';
import { deltaByteSize } from '../../../src/deltas/cache/delta-size.js';
import { decodeDelta, encodeDelta } from '../../../src/deltas/format/delta-file.js';
import { quantizeTensor } from '../../../src/compress/quantize.js';
import type { SparseTensorDelta } from '../../../src/deltas/types.js';
import {
  float16ArrayToFloat32,
  float16BitsToFloat32,
  float32ArrayToFloat16,
} from '../../../src/deltas/format/float16.js';
import {
  buildTinyZoo,
  mergeIndependently,
  runPlain,
  tokenBatch,
  maxAbsDiff,
  type TinyZoo,
} from '../../helpers/tiny-models.js';
import { MixedPipeline } from '../../../src/engine/runtime/mixed/mixed-pipeline.js';
import type { MixedBatchPipeline } from '../../../src/engine/runtime/mixed/mixed-core.js';
import { loadSideKernel } from '../../../src/engine/runtime/mixed/kernel/load-kernel.js';
import type { onnx } from '../../../src/onnx/proto.js';
import { ONE_SESSION_EXPECTED, ONE_SESSION_SKIP, requireAddon } from './one-session-cases.js';
import { assertDemoZooMixes } from './demo-zoo-case.js';

type Weights = ReturnType<typeof readFloatWeights>;

/** The pipeline under test: the one session, or the segments when this run tests the fallback. */
async function startPipeline(
  model: onnx.ModelProto,
  patchable: Weights,
  all: Weights,
): Promise<MixedBatchPipeline & { readonly unsupported: ReadonlyMap<string, string> }> {
  if (ONE_SESSION_EXPECTED) return OneSessionPipeline.create(model, patchable, all, session, requireAddon());
  return MixedPipeline.create(model, patchable, all, session, loadSideKernel({ threads: 2 }).kernel);
}

const TASKS = 16;
const session = { executionProvider: 'cpu' as const, intraOpThreads: 2 };
let zoo: TinyZoo;

before(async () => {
  zoo = await buildTinyZoo({ tasks: TASKS, dropRate: 0.9 });
  // Odd tasks as an fp16 file decodes them: every value exactly an fp16, so the one session keeps
  // their side weights' values as fp16 (and -0 and fp16 subnormals must survive that).
  zoo.deltas.forEach((delta, t) => {
    if (t % 2 === 0) return;
    for (const tensor of delta.tensors) {
      tensor.values.set(float16ArrayToFloat32(float32ArrayToFloat16(tensor.values)));
      if (tensor.kind === 'sparse' && tensor.values.length > 2) {
        tensor.values[0] = -0;
        tensor.values[1] = float16BitsToFloat32(0x8003);
      }
    }
  });
});
after(async () => zoo?.cleanup());

test('random mixes of 16 tasks and the base equal their merged models', async () => {
  const weights = readFloatWeights(zoo.base);
  const pipeline = await startPipeline(zoo.base, weights, weights);
  try {
    assert.equal(pipeline.unsupported.size, 0, [...pipeline.unsupported].join('; '));
    // As the engine's cache holds them: the one session's side weights grouped by column.
    const resident = zoo.deltas.map((d) => pipeline.residentForm?.(d) ?? d);
    if (ONE_SESSION_EXPECTED)
      assert.ok(
        resident.every((d) => d.tensors.some((t) => t.kind === 'by-column')),
        'every delta has side weights grouped by column',
      );
    // The cache charges what it holds: per kept side-weight entry a one-byte row gap (the tiny
    // encoder's rows are close) and an fp16 value (odd tasks: all values exactly fp16) or an f32
    // one (even tasks), plus a start per column, instead of 8 bytes (u32 index, f32 value).
    for (const [t, delta] of resident.entries()) {
      let expected = 0;
      for (const tensor of delta.tensors) {
        if (tensor.kind === 'by-column') {
          assert.ok('rows' in tensor, `task ${t} ${tensor.name}: grouped, not int4 codes`);
          assert.ok(tensor.rows instanceof Uint8Array, `task ${t} ${tensor.name}: rows as byte gaps`);
          assert.equal(tensor.values instanceof Uint16Array, t % 2 === 1, `task ${t} ${tensor.name}: fp16 values`);
          expected += tensor.starts.byteLength + (t % 2 === 1 ? 3 : 5) * tensor.values.length;
        } else expected += tensor.values.byteLength * (tensor.kind === 'sparse' ? 2 : 1);
      }
      assert.equal(deltaByteSize(delta), expected, `task ${t}`);
      if (ONE_SESSION_EXPECTED) assert.ok(deltaByteSize(delta) < deltaByteSize(zoo.deltas[t]!), `task ${t}`);
    }
    const rng = new SeededRng(2027);
    const expectedCache = new Map<string, Float32Array>();
    const deltasRun = new Set<object>();
    for (let draw = 0; draw < 10; draw++) {
      const size = 1 + rng.nextInt(16);
      const tasks = Array.from({ length: size }, () => (rng.nextInt(5) === 0 ? null : rng.nextInt(TASKS)));
      const requests: MixedRequest[] = tasks.map((t, i) => ({
        inputs: tokenBatch(1 + rng.nextInt(2), 9, draw * 100 + i),
        delta: t === null ? null : resident[t]!,
      }));
      const { outputs, timings } = await pipeline.run(requests);
      requests.forEach((r) => r.delta && deltasRun.add(r.delta));
      if (ONE_SESSION_EXPECTED) assert.equal(timings.segmentRuns, 1);
      if (draw < 4) {
        // The deltas as decoded give the same bits: grouping once per load changes no sum.
        const flat = await pipeline.run(
          requests.map((r, i) => ({ ...r, delta: tasks[i] === null ? null : zoo.deltas[tasks[i]!]! })),
        );
        tasks.forEach((t) => t !== null && deltasRun.add(zoo.deltas[t]!));
        flat.outputs.forEach((o, i) =>
          assert.deepEqual(o.logits!.data, outputs[i]!.logits!.data, `draw ${draw} request ${i}`),
        );
      }
      for (const [i, request] of requests.entries()) {
        const t = tasks[i]!;
        const key = `${t}:${draw}:${i}`;
        let want = expectedCache.get(key);
        if (!want) {
          want = await runPlain(t === null ? zoo.base : mergeIndependently(zoo.base, zoo.deltas[t]!), request.inputs);
          expectedCache.set(key, want);
        }
        const got = outputs[i]!.logits!.data as Float32Array;
        assert.ok(maxAbsDiff(got, want) <= 1e-5, `draw ${draw} request ${i} (task ${t}): ${maxAbsDiff(got, want)}`);
      }
    }
    // Registered once per delta object, however many batches read it.
    if (pipeline instanceof OneSessionPipeline)
      assert.ok(
        pipeline.registeredDeltas <= deltasRun.size,
        `${pipeline.registeredDeltas} deltas registered for ${deltasRun.size} delta objects run`,
      );
  } finally {
    await pipeline.release();
  }
});

test('int4 deltas whose codes run by column: the one session keeps the codes, and gives the bits of their decoded values', async () => {
  const weights = readFloatWeights(zoo.base);
  const pipeline = await startPipeline(zoo.base, weights, weights);
  try {
    // As `compress --values int4` writes them (groups of 8: boundaries inside columns), through the file.
    const int4 = zoo.deltas.slice(0, 6).map((delta) => {
      const tensors = delta.tensors.map((t) => (t.kind === 'sparse' ? quantizeTensor(t, 'I4', 8) : t));
      return decodeDelta(encodeDelta({ metadata: { ...delta.metadata, formatVersion: 2 }, tensors }));
    });
    const resident = int4.map((d) => pipeline.residentForm?.(d) ?? d);
    for (const [t, delta] of resident.entries()) {
      let expected = 0;
      let packed = 0;
      let bridges = 0;
      for (const tensor of delta.tensors) {
        if (tensor.kind === 'by-column') {
          assert.ok('entries' in tensor, `task ${t} ${tensor.name}: kept as int4 codes`);
          packed++;
          const kept = int4[t]!.tensors.find((x) => x.name === tensor.name) as SparseTensorDelta;
          const tensorBridges = tensor.entries.filter((byte) => byte < 16).length;
          bridges += tensorBridges;
          // Code-0 entries add nothing and are left out; every other entry is there once.
          const codes = kept.quantized!.codes;
          const nonzero = Array.from({ length: kept.indices.length }, (_, k) => (codes[k >> 1]! >> ((k & 1) * 4)) & 15);
          assert.equal(tensor.entries.length - tensorBridges, nonzero.filter((c) => c !== 0).length);
          expected +=
            tensor.starts.byteLength + tensor.entries.length + tensor.scales.byteLength + tensor.groupEnds.byteLength;
        } else expected += tensor.values.byteLength * (tensor.kind === 'sparse' ? 2 : 1);
      }
      if (ONE_SESSION_EXPECTED) assert.ok(packed > 0, `task ${t}: side weights packed`);
      if (ONE_SESSION_EXPECTED) assert.ok(bridges > 0, `task ${t}: row gaps over 16 bridged`);
      assert.equal(deltaByteSize(delta), expected, `task ${t}`);
    }
    const rng = new SeededRng(99);
    for (let draw = 0; draw < 4; draw++) {
      const tasks = Array.from({ length: 1 + rng.nextInt(8) }, () => (rng.nextInt(5) === 0 ? null : rng.nextInt(6)));
      const inputs = tasks.map((_, i) => tokenBatch(1 + rng.nextInt(2), 9, draw * 10 + i));
      const packedRun = await pipeline.run(
        tasks.map((t, i) => ({ inputs: inputs[i]!, delta: t === null ? null : resident[t]! })),
      );
      const decodedRun = await pipeline.run(
        tasks.map((t, i) => ({ inputs: inputs[i]!, delta: t === null ? null : int4[t]! })),
      );
      for (const [i, t] of tasks.entries()) {
        const got = packedRun.outputs[i]!.logits!.data as Float32Array;
        assert.deepEqual(got, decodedRun.outputs[i]!.logits!.data, `draw ${draw} request ${i}: same bits as decoded`);
        const want = await runPlain(t === null ? zoo.base : mergeIndependently(zoo.base, int4[t]!), inputs[i]!);
        assert.ok(maxAbsDiff(got, want) <= 1e-5, `draw ${draw} request ${i} (task ${t}): ${maxAbsDiff(got, want)}`);
      }
    }
  } finally {
    await pipeline.release();
  }
});

test('with only 2-D weights patchable, the biases stay in the graph and deltas on the rest apply exactly', async () => {
  const all = readFloatWeights(zoo.base);
  const patchable = new Map([...all].filter(([, w]) => w.shape.length === 2));
  const pipeline = await startPipeline(zoo.base, patchable, all);
  try {
    const deltas = zoo.deltas.map((d) => ({ ...d, tensors: d.tensors.filter((t) => patchable.has(t.name)) }));
    const requests = [0, 1, 2, 1].map((t, i) => ({ inputs: tokenBatch(2, 7, 300 + i), delta: deltas[t]! }));
    const { outputs } = await pipeline.run(requests);
    for (const [i, request] of requests.entries()) {
      const expected = await runPlain(mergeIndependently(zoo.base, request.delta), request.inputs);
      assert.ok(maxAbsDiff(outputs[i]!.logits!.data as Float32Array, expected) <= 1e-5, `request ${i}`);
    }
  } finally {
    await pipeline.release();
  }
});

test('the demo zoo (a ViT) mixes every task and the base in one batch', () => {
  const rng = new SeededRng(7);
  return assertDemoZooMixes(
    (base, weights) => startPipeline(base, weights, weights),
    (tasks) => Array.from({ length: 6 }, () => rng.nextInt(tasks + 1) - 1),
  );
});

test(
  'a delta released early is registered again by the next run that reads it',
  { skip: ONE_SESSION_SKIP },
  async () => {
    const weights = readFloatWeights(zoo.base);
    const pipeline = OneSessionPipeline.create(zoo.base, weights, weights, session, requireAddon());
    try {
      const delta = zoo.deltas[3]!;
      const request = { inputs: tokenBatch(1, 6, 9), delta };
      const first = (await pipeline.run([request])).outputs[0]!.logits!.data as Float32Array;
      const held = pipeline.registeredDeltas;
      pipeline.forgetDelta(delta);
      assert.equal(pipeline.registeredDeltas, held - 1);
      const again = (await pipeline.run([request])).outputs[0]!.logits!.data as Float32Array;
      assert.deepEqual(again, first);
      assert.equal(pipeline.registeredDeltas, held);
    } finally {
      await pipeline.release();
    }
  },
);

test("an explicit evict releases the addon's views of that task's delta", { skip: ONE_SESSION_SKIP }, async () => {
  const { MixedCore } = await import('../../../src/engine/runtime/mixed/mixed-core.js');
  const { describeModelIO } = await import('../../../src/onnx/io-signature.js');
  const weights = readFloatWeights(zoo.base);
  const pipeline = OneSessionPipeline.create(zoo.base, weights, weights, session, requireAddon());
  const core = new MixedCore(
    pipeline,
    describeModelIO(zoo.base),
    new Map([...weights].map(([name, w]) => [name, w.shape])),
    () => Promise.reject(new Error('no task here needs the per-task fallback')),
  );
  try {
    const item = (key: string, t: number) => ({ task: { key, delta: zoo.deltas[t]! }, inputs: tokenBatch(1, 6, t) });
    await core.run([item('t3', 3), item('t5', 5)]);
    assert.equal(pipeline.registeredDeltas, 2);
    core.forget('t3');
    assert.equal(pipeline.registeredDeltas, 1, 't3 released, t5 kept');
    const { outputs } = await core.run([item('t3', 3)]);
    const want = await runPlain(mergeIndependently(zoo.base, zoo.deltas[3]!), tokenBatch(1, 6, 3));
    assert.ok(maxAbsDiff(outputs[0]!.logits!.data as Float32Array, want) <= 1e-5, 'registered again on its next run');
  } finally {
    await core.release();
  }
});
