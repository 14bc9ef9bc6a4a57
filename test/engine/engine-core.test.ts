import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EngineCore, type BatchDelta } from '../../src/engine/runtime/engine-core.js';
import { prepareBase } from '../../src/engine/runtime/prepare-base.js';
import type { ActivationMode } from '../../src/engine/runtime/activator.js';
import type { Delta } from '../../src/deltas/types.js';
import { deltaByteSize } from '../../src/deltas/cache/delta-size.js';
import { float16ArrayToFloat32, float32ArrayToFloat16 } from '../../src/deltas/format/float16.js';
import { asDecoded, patchResidentForm, withoutCodes } from '../../src/engine/runtime/resident-form.js';
import { decodeDelta, encodeDelta } from '../../src/deltas/format/delta-file.js';
import { quantizeTensor } from '../../src/compress/quantize.js';
import { SeededRng } from '../../src/core/rng.js';
import type { NamedTensors } from '../../src/engine/tensors.js';
import {
  buildTinyZoo,
  maxAbsDiff,
  mergeIndependently,
  runPlain,
  tokenBatch,
  type TinyZoo,
} from '../helpers/tiny-models.js';

let zoo: TinyZoo;
before(async () => {
  zoo = await buildTinyZoo({ tasks: 20 });
});
after(async () => zoo.cleanup());

/** Task `t` of the zoo as a batch's delta, keyed `task-t`. */
function task(t: number): BatchDelta {
  return { key: `task-${t}`, delta: zoo.deltas[t]! };
}

async function openCore(mode: ActivationMode): Promise<EngineCore> {
  const base = await prepareBase({
    modelPath: zoo.basePath,
    mode,
    patchable: [],
    session: { executionProvider: 'cpu', intraOpThreads: 1 },
  });
  return new EngineCore(base);
}

const logitsOf = (outputs: Awaited<ReturnType<EngineCore['run']>>['outputs'], i = 0) =>
  outputs[i]!.logits!.data as Float32Array;

for (const mode of ['patch', 'graph'] as const) {
  test(`${mode}: task output equals an independently merged model within 1e-5`, async () => {
    const core = await openCore(mode);
    try {
      const inputs = tokenBatch(3, 7, 42);
      for (const t of [0, 5, 13]) {
        const expected = await runPlain(mergeIndependently(zoo.base, zoo.deltas[t]!), inputs);
        const { outputs, activation } = await core.run(task(t), [inputs]);
        assert.ok(activation.switched);
        const diff = maxAbsDiff(logitsOf(outputs), expected);
        assert.ok(diff <= 1e-5, `task ${t}: max abs diff ${diff}`);
      }
      const baseExpected = await runPlain(zoo.base, inputs);
      const { outputs } = await core.run(null, [inputs]);
      assert.ok(maxAbsDiff(logitsOf(outputs), baseExpected) <= 1e-5);
      // The deltas really change the outputs, so the comparison above can fail.
      const { outputs: task0 } = await core.run(task(0), [inputs]);
      assert.ok(maxAbsDiff(logitsOf(task0), baseExpected) > 1e-4);
    } finally {
      await core.release();
    }
  });

  test(`${mode}: requests of different shapes in one batch are run separately and split back`, async () => {
    const core = await openCore(mode);
    try {
      const a = tokenBatch(2, 5, 1);
      const b = tokenBatch(1, 9, 2);
      const c = tokenBatch(3, 5, 3);
      const { outputs } = await core.run(task(1), [a, b, c]);
      assert.deepEqual(
        outputs.map((o) => o.logits!.dims),
        [
          [2, 3],
          [1, 3],
          [3, 3],
        ],
      );
      for (const [i, inputs] of [a, b, c].entries()) {
        const alone = await core.run(task(1), [inputs]);
        assert.ok(maxAbsDiff(logitsOf(outputs, i), logitsOf(alone.outputs)) <= 1e-6);
      }
    } finally {
      await core.release();
    }
  });
}

for (const mode of ['patch', 'graph'] as const) {
  test(`${mode}: 10,000 random activations across 20 tasks leave base and tasks bit-identical to a fresh engine`, async () => {
    const inputs = tokenBatch(2, 6, 9);
    const fresh = await openCore(mode);
    const expected: Float32Array[] = [];
    try {
      expected.push(logitsOf((await fresh.run(null, [inputs])).outputs));
      for (let t = 0; t < 20; t++) expected.push(logitsOf((await fresh.run(task(t), [inputs])).outputs));
    } finally {
      await fresh.release();
    }

    const core = await openCore(mode);
    try {
      const rng = new SeededRng(2024);
      const activator = core.base.activator;
      for (let i = 0; i < 10_000; i++) {
        const t = rng.nextInt(21);
        if (t === 20) activator.deactivate();
        else activator.activate(`task-${t}`, zoo.deltas[t]!);
        if (i % 1000 === 999) await core.run(task(rng.nextInt(20)), [inputs]);
      }
      assert.deepEqual(logitsOf((await core.run(null, [inputs])).outputs), expected[0]);
      for (let t = 0; t < 20; t++) {
        assert.deepEqual(logitsOf((await core.run(task(t), [inputs])).outputs), expected[t + 1], `task ${t}`);
      }
    } finally {
      await core.release();
    }
  });
}

test('patch: deltas kept with fp16 values (fp16-exact ones) give the bits of the decoded form and restore exactly', async () => {
  // Tasks 0-2 as an fp16 file decodes them (every value exactly fp16, -0 included).
  const halfExact: Delta[] = zoo.deltas.slice(0, 3).map((d) => ({
    metadata: d.metadata,
    tensors: d.tensors.map((t) => {
      const values = float16ArrayToFloat32(float32ArrayToFloat16(t.values));
      if (t.kind === 'sparse' && values.length > 0) values[0] = -0;
      return { ...t, values };
    }),
  }));
  const kept = halfExact.map(patchResidentForm);
  for (const [t, delta] of kept.entries()) {
    assert.ok(
      delta.tensors.some((x) => x.kind === 'sparse-f16'),
      `task ${t}: sparse tensors kept as fp16`,
    );
    assert.ok(deltaByteSize(delta) < deltaByteSize(halfExact[t]!), `task ${t}: 6 bytes per kept entry, not 8`);
  }
  assert.ok(
    patchResidentForm(zoo.deltas[3]!).tensors.every((x) => x.kind !== 'sparse-f16'),
    'float32 values that are not fp16 stay float32',
  );
  const core = await openCore('patch');
  try {
    const inputs = tokenBatch(2, 6, 77);
    const base = logitsOf((await core.run(null, [inputs])).outputs);
    for (let t = 0; t < 3; t++) {
      const asKept = logitsOf((await core.run({ key: `kept-${t}`, delta: kept[t]! }, [inputs])).outputs);
      const asDecoded = logitsOf((await core.run({ key: `decoded-${t}`, delta: halfExact[t]! }, [inputs])).outputs);
      assert.deepEqual(asKept, asDecoded, `task ${t}: same bits`);
      assert.ok(maxAbsDiff(asKept, await runPlain(mergeIndependently(zoo.base, halfExact[t]!), inputs)) <= 1e-5);
    }
    assert.deepEqual(logitsOf((await core.run(null, [inputs])).outputs), base, 'the base is restored bit for bit');
  } finally {
    await core.release();
  }
});

test("the cache keeps an int4 file's decoded tensors without the codes their readers never read", () => {
  const file = encodeDelta({
    metadata: { ...zoo.deltas[0]!.metadata, formatVersion: 2 },
    tensors: zoo.deltas[0]!.tensors.map((t) => (t.kind === 'sparse' ? quantizeTensor(t, 'I4', 8) : t)),
  });
  const decoded = decodeDelta(file);
  assert.ok(decoded.tensors.some((t) => t.kind === 'sparse' && t.quantized?.positions !== undefined));
  // As the worker keeps them: patch mode's form and graph mode's (the delta as decoded).
  for (const form of [withoutCodes(patchResidentForm(decoded)), withoutCodes(decoded)]) {
    for (const t of form.tensors) {
      assert.ok(!('quantized' in t), `${t.name}: no codes kept beside the values the cache counts`);
      const source = decoded.tensors.find((x) => x.name === t.name)!;
      const values = t.kind === 'sparse-f16' ? float16ArrayToFloat32(t.values) : asDecoded(t).values;
      assert.deepEqual(values, source.values, t.name);
    }
  }
});

test('a delta naming a weight the base lacks is refused before anything is written', async () => {
  const core = await openCore('patch');
  try {
    const inputs = tokenBatch(1, 4, 5);
    const before = logitsOf((await core.run(null, [inputs])).outputs);
    const good = zoo.deltas[0]!;
    const bad: Delta = {
      ...good,
      tensors: [...good.tensors, { kind: 'dense', name: 'no.such.weight', shape: [1], values: new Float32Array(1) }],
    };
    assert.throws(
      () => core.base.activator.activate('bad', bad),
      (e: Error & { code?: string }) => e.code === 'DS_ERR_DELTA_UNKNOWN_TENSOR',
    );
    assert.deepEqual(logitsOf((await core.run(null, [inputs])).outputs), before);
  } finally {
    await core.release();
  }
});

test('inputs that do not match the model signature are refused with DS_ERR_INFER_BAD_INPUT', async () => {
  const core = await openCore('patch');
  try {
    const good = tokenBatch(1, 4, 5);
    const cases: NamedTensors[] = [
      {},
      { ...good, extra: good.input_ids! },
      { input_ids: { type: 'float32' as const, dims: [1, 4], data: new Float32Array(4) } },
      { input_ids: { type: 'int64' as const, dims: [4], data: new BigInt64Array(4) } },
      { input_ids: { type: 'int64' as const, dims: [1, 4], data: new BigInt64Array(3) } },
      { input_ids: { type: 'int64' as const, dims: [0, 4], data: new BigInt64Array(0) } },
    ];
    for (const inputs of cases) {
      await assert.rejects(
        core.run(null, [inputs]),
        (e: Error & { code?: string; statusCode?: number }) =>
          e.code === 'DS_ERR_INFER_BAD_INPUT' && e.statusCode === 400,
      );
    }
  } finally {
    await core.release();
  }
});

for (const mode of ['patch', 'graph'] as const) {
  test(`${mode}: a key whose delta was replaced serves the new delta, not the still-active old one`, async () => {
    const base = await prepareBase({
      modelPath: zoo.basePath,
      mode,
      patchable: [],
      session: { executionProvider: 'cpu', intraOpThreads: 1 },
    });
    const core = new EngineCore(base);
    try {
      const inputs = tokenBatch(2, 5, 3);
      await core.run({ key: 'task@1', delta: zoo.deltas[0]! }, [inputs]);
      const { outputs } = await core.run({ key: 'task@1', delta: zoo.deltas[1]! }, [inputs]);
      const expected = await runPlain(mergeIndependently(zoo.base, zoo.deltas[1]!), inputs);
      assert.ok(maxAbsDiff(logitsOf(outputs), expected) <= 1e-5);
    } finally {
      await core.release();
    }
  });
}
