/**
 * The custom-op addon at its edges: it shares onnxruntime-node's runtime (sessions of both kinds
 * in one process, in either order), and bad input (wrong shapes, a released or foreign delta
 * handle, a bad model) is a JS error, never a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OneSessionPipeline } from '../../../src/engine/runtime/mixed/one-session/one-session-pipeline.js';
import { ITEM_DELTAS_INPUT } from '../../../src/engine/runtime/mixed/mixed-rewrite.js';
import { encodeOnnxModel } from '../../../src/onnx/model-file.js';
import { readFloatWeights } from '../../../src/onnx/weights.js';
import { buildTinyZoo, mergeIndependently, runPlain, tokenBatch, maxAbsDiff } from '../../helpers/tiny-models.js';
import { ONE_SESSION_SKIP, requireAddon } from './one-session-cases.js';

const session = { executionProvider: 'cpu' as const, intraOpThreads: 1 };

test(
  "onnxruntime-node sessions and the addon's run side by side in one process, in either order",
  { skip: ONE_SESSION_SKIP },
  async () => {
    const zoo = await buildTinyZoo({ tasks: 2, dropRate: 0.9 });
    try {
      const inputs = tokenBatch(2, 7, 11);
      const before = await ort.InferenceSession.create(encodeOnnxModel(mergeIndependently(zoo.base, zoo.deltas[0]!)));
      const weights = readFloatWeights(zoo.base);
      const pipeline = OneSessionPipeline.create(zoo.base, weights, weights, session, requireAddon());
      const after = await ort.InferenceSession.create(encodeOnnxModel(mergeIndependently(zoo.base, zoo.deltas[1]!)));
      try {
        const feeds = Object.fromEntries(
          Object.entries(inputs).map(([name, t]) => [name, new ort.Tensor(t.type, t.data, t.dims)]),
        );
        for (let round = 0; round < 3; round++) {
          const a = (await before.run(feeds)).logits!.data as Float32Array;
          const { outputs } = await pipeline.run([
            { inputs, delta: zoo.deltas[0]! },
            { inputs, delta: zoo.deltas[1]! },
          ]);
          const b = (await after.run(feeds)).logits!.data as Float32Array;
          assert.ok(maxAbsDiff(outputs[0]!.logits!.data as Float32Array, a) <= 1e-5, `round ${round}, task 0`);
          assert.ok(maxAbsDiff(outputs[1]!.logits!.data as Float32Array, b) <= 1e-5, `round ${round}, task 1`);
        }
        assert.ok(
          maxAbsDiff(
            await runPlain(zoo.base, inputs),
            (await pipeline.run([{ inputs, delta: null }])).outputs[0]!.logits!.data as Float32Array,
          ) <= 1e-5,
        );
      } finally {
        await before.release();
        await after.release();
        await pipeline.release();
      }
    } finally {
      await zoo.cleanup();
    }
  },
);

test('bad input to the addon is an error, not a crash', { skip: ONE_SESSION_SKIP }, async () => {
  const zoo = await buildTinyZoo({ tasks: 1, dropRate: 0.9 });
  const addon = requireAddon();
  try {
    const { rewriteForMixedBatches, SIDE_OP_DOMAIN } =
      await import('../../../src/engine/runtime/mixed/mixed-rewrite.js');
    const weights = readFloatWeights(zoo.base);
    const mixed = rewriteForMixedBatches(
      zoo.base.graph!,
      new Map([...weights].map(([n, w]) => [n, w.shape])),
      'custom-op',
    );
    const model = encodeOnnxModel({
      ...zoo.base,
      graph: mixed.graph,
      opsetImport: [...(zoo.base.opsetImport ?? []), { domain: SIDE_OP_DOMAIN, version: 1 }],
    });
    const raw = addon.createSession(model, { threads: 1, spinning: false, itemDeltasInput: ITEM_DELTAS_INPUT });
    const inputs = tokenBatch(2, 5, 3);
    const feeds = (handles: bigint[], dims = [handles.length]) => [
      ...Object.entries(inputs).map(([name, t]) => ({ name, ...t })),
      ...mixed.params.map((p) => {
        const width = p.itemShape.reduce((a, b) => a * b, 1);
        const value = p.feeds === 'value' ? weights.get(p.weight)!.data : new Float32Array(width);
        const data = new Float32Array(2 * width);
        data.set(value, 0);
        data.set(value, width);
        return { name: p.input, type: 'float32' as const, dims: [2, ...p.itemShape], data };
      }),
      ...mixed.gathers.map((g) => {
        const ids = inputs[g.ids]!;
        const width = g.rowShape.reduce((a, b) => a * b, 1);
        return {
          name: g.input,
          type: 'float32' as const,
          dims: [...ids.dims, ...g.rowShape],
          data: new Float32Array(ids.data.length * width),
        };
      }),
      { name: ITEM_DELTAS_INPUT, type: 'int64' as const, dims, data: BigInt64Array.from(handles) },
    ];
    const outputs = ['logits'];
    // A base-only run works, and answers the base model.
    const base = raw.run(feeds([0n, 0n]), outputs)[0]!;
    assert.ok(maxAbsDiff(base.data as Float32Array, await runPlain(zoo.base, inputs)) <= 1e-5);

    const delta = zoo.deltas[0]!;
    const tensors = delta.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      indices: t.kind === 'sparse' ? t.indices : null,
      values: t.values,
    }));
    const handle = addon.registerDelta(tensors);
    raw.run(feeds([BigInt(handle), 0n]), outputs);
    assert.equal(addon.releaseDelta(handle), true);
    assert.equal(addon.releaseDelta(handle), false, 'a second release finds nothing');
    assert.throws(() => raw.run(feeds([BigInt(handle), 0n]), outputs), /not registered \(released\?\)/);
    assert.throws(() => raw.run(feeds([12345n, 0n]), outputs), /not registered/);
    assert.throws(() => raw.run(feeds([-1n, 0n]), outputs), /not registered/);
    // One handle for two items: the op refuses it (the batch is [2, …]).
    assert.throws(() => raw.run(feeds([0n], [1]), outputs), /item_deltas \[1\] must be \[2\]/);
    // Data and dims that disagree, a wrong typed array, an unknown input.
    const wrongDims = feeds([0n, 0n]);
    wrongDims[0] = { ...wrongDims[0]!, dims: [3, 5] };
    assert.throws(() => raw.run(wrongDims, outputs), /dims hold 15 elements, data 10/);
    const wrongType = feeds([0n, 0n]);
    wrongType[0] = { ...wrongType[0]!, data: new Float32Array(10) };
    assert.throws(() => raw.run(wrongType, outputs), /not the typed array of type/);
    assert.throws(
      () =>
        raw.run([...feeds([0n, 0n]), { name: 'nope', type: 'float32', dims: [1], data: new Float32Array(1) }], outputs),
      /Run/,
    );
    // A delta whose shape does not fit the weight it names.
    const sideWeights = new Set(mixed.sites.map((site) => site.weight));
    const oblong = tensors.find((t) => t.indices !== null && sideWeights.has(t.name) && t.shape[0] !== t.shape[1])!;
    const [rows, cols] = oblong.shape as [number, number];
    const misfit = addon.registerDelta([{ ...oblong, shape: [cols, rows] }]);
    assert.throws(
      () => raw.run(feeds([BigInt(misfit), 0n]), outputs),
      new RegExp(`has shape \\[${cols}, ${rows}\\], the graph multiplies \\[${rows}, ${cols}\\]`),
    );
    addon.releaseDelta(misfit);
    // Bad registrations.
    assert.throws(
      () =>
        addon.registerDelta([
          { name: 'w', shape: [2, 2], indices: new Uint32Array([4]), values: new Float32Array([1]) },
        ]),
      /out of range/,
    );
    assert.throws(
      () => addon.registerDelta([{ name: 'w', shape: [2, 2], indices: null, values: new Float32Array(3) }]),
      /dense values/,
    );
    // A weight grouped by column: the addon's grouping of a well-formed delta registers and runs;
    // a hostile grouping or a flat delta out of order never reaches the kernel.
    const grouped = addon.groupByColumn(oblong.indices!, oblong.values, rows, cols);
    assert.equal(grouped.starts.length, cols + 1);
    assert.equal(grouped.rows.length, oblong.indices!.length);
    const groupedHandle = addon.registerDelta([{ name: oblong.name, shape: oblong.shape, byColumn: grouped }]);
    raw.run(feeds([BigInt(groupedHandle), 0n]), outputs);
    addon.releaseDelta(groupedHandle);
    assert.throws(
      () => addon.groupByColumn(new Uint32Array([3, 1]), new Float32Array(2), 2, 2),
      /out of range or out of order/,
    );
    assert.throws(() => addon.groupByColumn(new Uint32Array([4]), new Float32Array(1), 2, 2), /out of range/);
    assert.throws(() => addon.groupByColumn(new Uint32Array(1), new Float32Array(1), 70000, 2), /inDim/);
    assert.throws(() => addon.groupByColumn(new Uint32Array(2), new Float32Array(1), 2, 2), /differ in length/);
    // Values kept as fp16 exactly when every one is an fp16 (-0 and subnormals too), else float32.
    const halfExact = Float32Array.from([-0, 2 ** -24, 65504, -1.5]);
    const asHalves = addon.groupByColumn(Uint32Array.from([0, 1, 2, 3]), halfExact, 2, 2).values;
    assert.ok(asHalves instanceof Uint16Array, 'fp16-exact values are kept as fp16');
    // Grouped by column: column 0 holds indices 0 and 2 (-0, 65504), column 1 indices 1 and 3.
    assert.deepEqual([...asHalves], [0x8000, 0x7bff, 0x0001, 0xbe00]);
    // Rows as byte gaps where every gap fits one, else as u16 rows (a column's first gap counts from -1).
    const gapsOf = (indices: number[], inDim: number) =>
      addon.groupByColumn(Uint32Array.from(indices), new Float32Array(indices.length), inDim, 1).rows;
    assert.deepEqual(gapsOf([0, 3, 258], 300), Uint8Array.from([1, 3, 255]));
    assert.deepEqual(gapsOf([254, 255], 300), Uint8Array.from([255, 1]));
    assert.deepEqual(gapsOf([255, 256], 300), Uint16Array.from([255, 256]), 'a first row past 254');
    assert.deepEqual(gapsOf([0, 299], 300), Uint16Array.from([0, 299]), 'a gap past 255');
    for (const inexact of [1 + 2 ** -12, 1e-9, 70000, Infinity, NaN]) {
      const kept = addon.groupByColumn(Uint32Array.from([0, 3]), Float32Array.from([1, inexact]), 2, 2).values;
      assert.ok(kept instanceof Float32Array, `${inexact} keeps the values float32`);
    }
    const byColumn = (starts: number[], rowList: number[]) => ({
      name: 'w',
      shape: [2, 2],
      byColumn: {
        starts: Uint32Array.from(starts),
        rows: Uint16Array.from(rowList),
        values: new Float32Array(rowList.length),
      },
    });
    assert.throws(() => addon.registerDelta([byColumn([0, 1, 1], [2])]), /increase and stay below 2/);
    assert.throws(() => addon.registerDelta([byColumn([0, 2, 2], [1, 0])]), /increase and stay below 2/);
    assert.throws(() => addon.registerDelta([byColumn([0, 2, 1], [0, 1])]), /from 0 to the number of entries/);
    assert.throws(() => addon.registerDelta([byColumn([0, 2, 1, 2], [0, 1])]), /one start per column/);
    assert.throws(() => addon.registerDelta([byColumn([0, 9, 2], [0, 1])]), /must not decrease/);
    const gapped = (starts: number[], gaps: number[]) => {
      const base = byColumn(starts, gaps);
      return { ...base, byColumn: { ...base.byColumn, rows: Uint8Array.from(gaps) } };
    };
    addon.releaseDelta(addon.registerDelta([gapped([0, 2, 3], [1, 1, 2])]));
    assert.throws(() => addon.registerDelta([gapped([0, 2, 2], [1, 0])]), /increase and stay below 2/);
    assert.throws(() => addon.registerDelta([gapped([0, 1, 2], [1, 3])]), /increase and stay below 2/);
    assert.throws(() => addon.registerDelta([gapped([0, 2, 2], [2, 1])]), /increase and stay below 2/);
    const infiniteHalf = byColumn([0, 1, 1], [0]);
    assert.throws(
      () =>
        addon.registerDelta([
          { ...infiniteHalf, byColumn: { ...infiniteHalf.byColumn, values: Uint16Array.of(0x7c00) } },
        ]),
      /infinity or NaN/,
    );
    assert.throws(
      () =>
        addon.registerDelta([
          {
            ...infiniteHalf,
            byColumn: { ...infiniteHalf.byColumn, values: Int16Array.of(1) as unknown as Uint16Array },
          },
        ]),
      /Float32Array or a Uint16Array/,
    );
    // Int4 codes that run column by column, packed as the file has them: a byte per entry (code high,
    // gap - 1 low); code-0 entries left out; bridges (code 0) of 16 × (nibble + 1) rows for gaps over 16.
    // [300, 2]: column 0 rows 0, 17, 39 (codes 1, -2, 7); column 1 rows 5, 30, 290 (codes -8, 0, 3).
    const packed = addon.packI4ByColumn(
      // Column-major positions j × 300 + i.
      Uint32Array.from([0, 17, 39, 300 + 5, 300 + 30, 300 + 290]),
      Uint8Array.from([0xe1, 0x87, 0x30]),
      Uint16Array.from([0x3c00, 0x4000, 0x3800]),
      2,
      300,
      2,
    );
    assert.deepEqual([...packed.starts], [0, 5, 9]);
    // Row 17: a bridge of 16, then gap 1; row 39: a bridge of 16, then gap 6; row 30 (code 0) left out;
    // row 290 (gap 285 from row 5): bridges of 256 and 16, then gap 13.
    assert.deepEqual([...packed.entries], [0x10, 0x00, 0xe0, 0x00, 0x75, 0x85, 0x0f, 0x00, 0x3c]);
    // Groups of 2 file entries; a group's bridges belong to it.
    assert.deepEqual([...packed.groupEnds], [3, 6, 9]);
    addon.releaseDelta(addon.registerDelta([{ name: 'w', shape: [300, 2], byColumn: packed }]));
    assert.throws(
      () => addon.packI4ByColumn(Uint32Array.of(3, 1), Uint8Array.of(0), new Uint16Array(1), 2, 2, 2),
      /out of order/,
    );
    assert.throws(
      () => addon.packI4ByColumn(Uint32Array.of(1), new Uint8Array(2), new Uint16Array(1), 2, 2, 2),
      /two codes per byte/,
    );
    assert.throws(
      () => addon.packI4ByColumn(Uint32Array.of(1), new Uint8Array(1), new Uint16Array(1), 0, 2, 2),
      /group/,
    );
    const packedWith = (change: Partial<typeof packed>) => [
      { name: 'w', shape: [300, 2], byColumn: { ...packed, ...change } },
    ];
    assert.throws(
      () =>
        addon.registerDelta(
          packedWith({ entries: Uint8Array.from([0x0f, 0x0f, 0xe0, 0x00, 0x75, 0x85, 0x0f, 0x00, 0x3c]) }),
        ),
      /run past row 299/,
    );
    assert.throws(
      () => addon.registerDelta(packedWith({ groupEnds: Uint32Array.of(3, 6, 8) })),
      /end at the number of entries/,
    );
    assert.throws(() => addon.registerDelta(packedWith({ groupEnds: Uint32Array.of(6, 3, 9) })), /must not decrease/);
    assert.throws(() => addon.registerDelta(packedWith({ groupEnds: Uint32Array.of(3, 9) })), /one scale per group/);
    assert.throws(
      () => addon.registerDelta(packedWith({ scales: Uint16Array.of(0x3c00, 0x7e00, 0) })),
      /infinity or NaN/,
    );
    assert.throws(
      () => addon.registerDelta(packedWith({ starts: Uint32Array.of(0, 9, 5) })),
      /must not decrease|from 0 to/,
    );
    assert.throws(
      () => addon.registerDelta(packedWith({ groupEnds: Float32Array.of(3, 6, 9) as unknown as Uint32Array })),
      /groupEnds must be a Uint32Array/,
    );
    // The handles input left out: ORT runs the op without it, which refuses to guess.
    assert.throws(
      () =>
        raw.run(
          feeds([0n, 0n]).filter((f) => f.name !== ITEM_DELTAS_INPUT),
          outputs,
        ),
      /SideAdd|item_deltas/,
    );
    // A model that is not ONNX.
    assert.throws(
      () => addon.createSession(new Uint8Array([1, 2, 3]), { threads: 1, spinning: false }),
      /CreateSession/,
    );
    raw.release();
    assert.throws(() => raw.run(feeds([0n, 0n]), outputs), /released/);
  } finally {
    await zoo.cleanup();
  }
});
