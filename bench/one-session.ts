/**
 * `node --import tsx bench/one-session.ts [--rounds N] [--p 0.99 --p 0.9]`: what one mixed batch
 * costs in the one-session pipeline against the plain model, without the gateway's scheduler or
 * cache in the way (the probe, on the engine's own code). BERT-base-shaped encoder
 * (bench/.work fixtures), a batch of 16 × 128 tokens, intra-op threads 2. Per round, one after
 * another in one process: (a) the plain model on onnxruntime-node, (h) the one session with every
 * item on the base, (e) the one session with 16 items of 16 different tasks at each drop rate,
 * with the deltas as the engine's cache holds them and, for comparison, as decoded (the op then
 * groups each delta by column on every run, as it did before the cache held them grouped).
 * Medians over rounds; ratios are time(a) / time(x), i.e. throughput relative to (a).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { SeededRng } from '../src/core/rng.js';
import { decodeDelta } from '../src/deltas/format/delta-file.js';
import { loadOrtAddon } from '../src/engine/runtime/mixed/one-session/ort-addon.js';
import { OneSessionPipeline } from '../src/engine/runtime/mixed/one-session/one-session-pipeline.js';
import { encodeOnnxModel, loadOnnxModel } from '../src/onnx/model-file.js';
import { readFloatWeights } from '../src/onnx/weights.js';
import type { NamedTensors } from '../src/engine/tensors.js';
import { machineLine } from './machine.js';
import { percentile } from '../loadtest/runner/stats.js';
import { WORK_DIR } from './engine-fixtures.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, p: { type: 'string', multiple: true } },
});
const rounds = Number(values.rounds);
const dropRates = (values.p ?? ['0.99', '0.9']).map(Number);
const ITEMS = 16;
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

// As the engine's cache holds them (side weights grouped by column once per load).
const resident = new Map([...deltas].map(([p, list]) => [p, list.map((d) => pipeline.residentForm(d))] as const));

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
    await step(`(e) one session, ${ITEMS} tasks, p = ${p}`, () =>
      pipeline.run(Array.from({ length: ITEMS }, (_, i) => ({ inputs: one(i), delta: resident.get(p)![i]! }))),
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
