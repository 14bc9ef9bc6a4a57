/**
 * `node --import tsx bench/one-session.ts [--rounds N] [--p 0.99 --p 0.9] [--items 16]`: what one mixed batch
 * costs in the one-session pipeline against the plain model, without the gateway's scheduler or
 * cache in the way (the probe, on the engine's own code). BERT-base-shaped encoder
 * (bench/.work fixtures), a batch of 16 × 128 tokens, intra-op threads 2. Per round, one after
 * another in one process: (a) the plain model on onnxruntime-node, (h) the one session with every
 * item on the base, (e) the one session with 16 items of 16 different tasks at each drop rate,
 * with the deltas as the engine's cache holds them (byte row gaps and fp16 values where they fit),
 * grouped with u16 rows and float32 values (the cached form before), as decoded (the op then groups each delta by column on every
 * run, as it did before the cache held them grouped), and with int4 values whose groups run by column: as the
 * file's codes (what the cache keeps now) and as decoded values grouped (what it kept before).
 * Medians over rounds; ratios are time(a) / time(x), i.e. throughput relative to (a).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { SeededRng } from '../src/core/rng.js';
import { decodeDelta } from '../src/deltas/format/delta-file.js';
import { float16ArrayToFloat32 } from '../src/deltas/format/float16.js';
import { deltaByteSize } from '../src/deltas/cache/delta-size.js';
import type { Delta, ResidentDelta } from '../src/deltas/types.js';
import { quantizeTensor } from '../src/compress/quantize.js';
import { loadOrtAddon } from '../src/engine/runtime/mixed/one-session/ort-addon.js';
import { OneSessionPipeline } from '../src/engine/runtime/mixed/one-session/one-session-pipeline.js';
import { encodeOnnxModel, loadOnnxModel } from '../src/onnx/model-file.js';
import { readFloatWeights } from '../src/onnx/weights.js';
import type { NamedTensors } from '../src/engine/tensors.js';
import { machineLine } from './machine.js';
import { percentile } from '../loadtest/runner/stats.js';
import { WORK_DIR } from './engine-fixtures.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    p: { type: 'string', multiple: true },
    items: { type: 'string', default: '16' },
  },
});
const rounds = Number(values.rounds);
const dropRates = (values.p ?? ['0.99', '0.9']).map(Number);
/** Requests per batch, each of its own task (`--items 1`: what one request alone costs, as at low load). */
const ITEMS = Number(values.items);
if (!Number.isInteger(ITEMS) || ITEMS < 1 || ITEMS > 100) throw new Error(`--items must be an integer in [1, 100]`);
const SEQ = 128;
const THREADS = 2;

const rng = new SeededRng(5);
const batch: NamedTensors = {
  input_ids: {
    type: 'int64',
    dims: [ITEMS, SEQ],
    data: BigInt64Array.from({ length: ITEMS * SEQ }, () => BigInt(rng.nextInt(1024))),
  },
};
const one = (i: number): NamedTensors => ({
  input_ids: {
    type: 'int64',
    dims: [1, SEQ],
    data: (batch.input_ids!.data as BigInt64Array).slice(i * SEQ, (i + 1) * SEQ),
  },
});

const { addon, reason } = loadOrtAddon();
if (!addon) throw new Error(`the custom-op addon did not load: ${reason}`);
const basePath = join(WORK_DIR, 'bert-base.onnx');
const model = await loadOnnxModel(basePath);
const weights = readFloatWeights(model);
const plain = await ort.InferenceSession.create(encodeOnnxModel(model), {
  intraOpNumThreads: THREADS,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
});
const pipeline = OneSessionPipeline.create(
  model,
  weights,
  weights,
  { executionProvider: 'cpu', intraOpThreads: THREADS },
  addon,
);
const deltas = new Map<number, Awaited<ReturnType<typeof decodeDelta>>[]>();
for (const p of dropRates) {
  deltas.set(
    p,
    await Promise.all(
      Array.from({ length: ITEMS }, async (_, t) =>
        decodeDelta(await readFile(join(WORK_DIR, `task-${t}-p${p}.safetensors`))),
      ),
    ),
  );
}

// As the engine's cache holds them (side weights grouped by column once per load, values as fp16
// where every one is exactly an fp16, as in these fp16 files).
const resident = new Map([...deltas].map(([p, list]) => [p, list.map((d) => pipeline.residentForm(d))] as const));
/** Byte row gaps back to u16 rows (see ByColumnTensorDelta). */
function rowsOf(starts: Uint32Array, rows: Uint16Array | Uint8Array): Uint16Array {
  if (rows instanceof Uint16Array) return rows;
  const out = new Uint16Array(rows.length);
  for (let j = 0; j + 1 < starts.length; j++) {
    let row = -1;
    for (let k = starts[j]!; k < starts[j + 1]!; k++) out[k] = row += rows[k]!;
  }
  return out;
}
// The same grouping with u16 rows and float32 values, the resident form before byte gaps and fp16
// values (6 bytes per entry): what the smaller form costs or saves in the op.
const residentF32 = new Map(
  [...resident].map(
    ([p, list]) =>
      [
        p,
        list.map((d): ResidentDelta => ({
          metadata: d.metadata,
          tensors: d.tensors.map((t) =>
            t.kind === 'by-column' && 'rows' in t
              ? {
                  ...t,
                  rows: rowsOf(t.starts, t.rows),
                  values: t.values instanceof Uint16Array ? float16ArrayToFloat32(t.values) : t.values,
                }
              : t,
          ),
        })),
      ] as const,
  ),
);
// The same deltas with int4 values as `compress --values int4` writes them (groups of 64 running
// column by column): kept as the file's codes (packed), and as they were kept before (decoded values
// grouped with byte row gaps and float32 values, since int4 values are not fp16).
const asInt4 = (d: Delta): Delta => ({
  metadata: d.metadata,
  tensors: d.tensors.map((t) => (t.kind === 'sparse' && t.shape.length === 2 ? quantizeTensor(t, 'I4', 64) : t)),
});
const int4 = new Map([...deltas].map(([p, list]) => [p, list.map(asInt4)] as const));
const residentInt4 = new Map([...int4].map(([p, list]) => [p, list.map((d) => pipeline.residentForm(d))] as const));
const residentInt4Decoded = new Map(
  [...int4].map(
    ([p, list]) =>
      [
        p,
        list.map((d) =>
          pipeline.residentForm({
            metadata: d.metadata,
            tensors: d.tensors.map((t) => (t.kind === 'sparse' ? { ...t, quantized: undefined } : t)),
          }),
        ),
      ] as const,
  ),
);
const megabytes = (list: readonly ResidentDelta[]) =>
  (list.reduce((sum, d) => sum + deltaByteSize(d), 0) / list.length / 1e6).toFixed(1);

const times = new Map<string, number[]>();
const time = async (name: string, run: () => Promise<unknown>) => {
  const started = performance.now();
  await run();
  const list = times.get(name) ?? [];
  list.push(performance.now() - started);
  times.set(name, list);
};
const feeds = { input_ids: new ort.Tensor('int64', batch.input_ids!.data, [ITEMS, SEQ]) };
const cpuStart = process.cpuUsage();
const wallStart = performance.now();
for (let round = 0; round <= rounds; round++) {
  // Round 0 warms every path up (first-run allocations, delta registration) and is not counted.
  const record = round > 0;
  const step = async (name: string, run: () => Promise<unknown>) => (record ? time(name, run) : run());
  await step('(a) plain session', () => plain.run(feeds));
  await step('(h) one session, base only', () =>
    pipeline.run(Array.from({ length: ITEMS }, (_, i) => ({ inputs: one(i), delta: null }))),
  );
  for (const p of dropRates) {
    await step(
      `(e) one session, ${ITEMS} tasks, as cached (${megabytes(resident.get(p)!)} MB per delta), p = ${p}`,
      () => pipeline.run(Array.from({ length: ITEMS }, (_, i) => ({ inputs: one(i), delta: resident.get(p)![i]! }))),
    );
    await step(`(e) grouped, u16 rows, float32 values (${megabytes(residentF32.get(p)!)} MB per delta), p = ${p}`, () =>
      pipeline.run(Array.from({ length: ITEMS }, (_, i) => ({ inputs: one(i), delta: residentF32.get(p)![i]! }))),
    );
    await step(`(e) int4, the file's codes (${megabytes(residentInt4.get(p)!)} MB per delta), p = ${p}`, () =>
      pipeline.run(Array.from({ length: ITEMS }, (_, i) => ({ inputs: one(i), delta: residentInt4.get(p)![i]! }))),
    );
    await step(
      `(e) int4, decoded values grouped (${megabytes(residentInt4Decoded.get(p)!)} MB per delta), p = ${p}`,
      () =>
        pipeline.run(
          Array.from({ length: ITEMS }, (_, i) => ({ inputs: one(i), delta: residentInt4Decoded.get(p)![i]! })),
        ),
    );
    await step(`(e) as decoded (grouped by column on every run), p = ${p}`, () =>
      pipeline.run(Array.from({ length: ITEMS }, (_, i) => ({ inputs: one(i), delta: deltas.get(p)![i]! }))),
    );
  }
}
const cpu = process.cpuUsage(cpuStart);
const cores = (cpu.user + cpu.system) / 1e6 / ((performance.now() - wallStart) / 1000);
const a = percentile(times.get('(a) plain session')!, 50);
const rows = [...times].map(
  ([name, list]) =>
    `| ${name} | ${percentile(list, 50).toFixed(0)} | ${(a / percentile(list, 50)).toFixed(2)} | ${list.map((t) => t.toFixed(0)).join(', ')} |`,
);
console.log(
  [
    machineLine(`node --import tsx bench/one-session.ts ${process.argv.slice(2).join(' ')}`),
    '',
    `One batch of ${ITEMS} × ${SEQ} tokens, BERT-base-shaped encoder, intra-op threads ${THREADS}, ${rounds} rounds after one warm-up round; this process used ${cores.toFixed(2)} CPU cores on average over the run.`,
    '',
    '| configuration | median ms / batch | × (a) throughput | each round, ms |',
    '|---|---:|---:|---|',
    ...rows,
  ].join('\n'),
);
await plain.release();
await pipeline.release();
