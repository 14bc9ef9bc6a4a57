/**
 * One engine benchmark configuration in its own process (so RSS is its own), driven by
 * bench/engine.ts. Closed loop: `concurrency` clients each send a 1 × 128-token request, wait
 * for the answer, send the next; tasks drawn from Zipf(1.0) over 100 tasks with a fixed seed.
 * Prints one JSON line with the measurements.
 *
 *   a  upper bound: plain session, pre-packed initializers (the merged model of task 0), one task
 *   b  baseline: one merged-model session per task in an LRU with the same memory budget
 *   c  this engine, patch mode      d  this engine, graph mode      e  this engine, mixed mode
 *   f  diagnostic: this engine, graph mode, every request for task 0 (g's counterpart on a GPU)
 *   g  diagnostic: this engine, patch mode, every request for task 0 (what weights-as-inputs
 *      and delta serving cost without task switching and batch fragmentation)
 *   h  diagnostic: this engine, mixed mode, every request for the base (what the mixed graph
 *      costs with no side-path work: the one session with its custom ops, or the segments)
 * Mixed mode runs in one ORT session with the side path as a custom op when that addon built;
 * DELTASERVE_MIXED_PIPELINE=segments in the environment runs (e) and (h) on the segment pipeline.
 * Throughput is completions inside the measured window / the window; the older figure (requests
 * started in the window / (window + the tail that drained them)) is reported beside it as
 * `throughputStarted`. CPU is the process's user + system time over the window (every thread:
 * main, engine worker, ORT's pool), in cores.
 * `--arrival-rate R` replaces the closed loop by an open one: Poisson arrivals at R requests/s
 * (the way serving papers measure goodput), for a, c and e.
 * `--preload` loads every task's delta before the clock starts (least popular first, so the head of
 * the Zipf distribution stays when the cache is full): a warm cache, as a long-running gateway has.
 * `--provider webgpu` runs a, b, d and f on the WebGPU provider (patch mode is CPU-only).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type * as ort from 'onnxruntime-node';
import { SeededRng } from '../src/core/rng.js';
import { decodeDelta } from '../src/deltas/format/delta-file.js';
import { Engine } from '../src/engine/engine.js';
import { batchSizeOf, concatBatch, splitBatch } from '../src/engine/runtime/batching.js';
import { createOrtSession, runSession, type ExecutionProvider } from '../src/engine/runtime/ort-session.js';
import type { NamedTensors } from '../src/engine/tensors.js';
import { encodeOnnxModel, loadOnnxModel, saveOnnxModel } from '../src/onnx/model-file.js';
import { readFloatWeights, withFloatWeights } from '../src/onnx/weights.js';
import { Scheduler } from '../src/scheduler/index.js';
import { arrivalOffsetsMs } from '../loadtest/runner/arrivals.js';
import { runOpenLoop } from '../loadtest/runner/open-loop.js';
import { percentile } from '../loadtest/runner/stats.js';
import { WORK_DIR, ensureFixtures, type FixtureValues, type TaskFixture } from './engine-fixtures.js';
import { zipfSampler } from './zipf.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    p: { type: 'string' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
    'max-batch': { type: 'string', default: '16' },
    'switch-ms': { type: 'string', default: '1000' },
    'cache-bytes': { type: 'string', default: String(1024 ** 3) },
    threads: { type: 'string', default: '2' },
    provider: { type: 'string', default: 'cpu' },
    'arrival-rate': { type: 'string' },
    preload: { type: 'boolean', default: false },
    values: { type: 'string', default: 'fp16' },
  },
});
const fixtureValues = values.values as FixtureValues;
if (!['fp16', 'int4'].includes(fixtureValues)) throw new Error(`--values must be fp16 or int4, got ${fixtureValues}`);
const config = values.config as 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g' | 'h' | 'prepare';
/** h: the mixed engine serving only the base — its segments and cuts without any kernel work. */
const baseOnly = config === 'h';
const provider = values.provider as ExecutionProvider;
if (!['cpu', 'webgpu'].includes(provider)) throw new Error(`--provider must be cpu or webgpu, got ${provider}`);
const dropRate = Number(values.p);
const seconds = Number(values.seconds);
const warmupSeconds = Number(values.warmup);
const concurrency = Number(values.concurrency);
const cacheBytes = Number(values['cache-bytes']);
const threads = Number(values.threads);
const arrivalRate = values['arrival-rate'] === undefined ? null : Number(values['arrival-rate']);
const SEQ = 128;
const scheduler = {
  maxBatchSize: Number(values['max-batch']),
  maxQueueDelayMs: 2,
  maxQueuedPerTask: 1000,
  maxQueuedTotal: 1000,
  forcedSwitchWaitMs: Number(values['switch-ms']),
};
const log = (line: string) => process.stderr.write(`[${config} p=${dropRate}] ${line}\n`);

function request(rng: SeededRng): NamedTensors {
  const data = BigInt64Array.from({ length: SEQ }, () => BigInt(rng.nextInt(1024)));
  return { input_ids: { type: 'int64', dims: [1, SEQ], data } };
}

/** Where mixed batches spent their time, summed over the measured window (ms). */
interface TimeSplit {
  ortMs: number;
  kernelMs: number;
  hostMs: number;
  batches: number;
  tasks: number;
}

interface Runner {
  infer(task: number): Promise<{ activationMs?: number }>;
  timeSplit(): TimeSplit;
  kernel: { name: string; threads: number; pipeline?: string; pipelineDetail?: string } | null;
  /** Batches that ran and the requests that ran in them (handed-back requests are not counted). */
  batches(): { batches: number; completed: number };
  activations(): { count: number; ms: number; nonzeros: number };
  cachedBytes(): Promise<number>;
  /** Deltas the cache holds now. */
  cachedDeltas(): Promise<number>;
  /** Loads the tasks' deltas before the clock starts, least popular first (the most popular stay when the cache is full). */
  preload(): Promise<void>;
  close(): Promise<void>;
}

async function engineRunner(
  mode: 'patch' | 'graph' | 'mixed',
  modelPath: string,
  tasks: readonly TaskFixture[] | null,
): Promise<Runner> {
  const activations = { count: 0, ms: 0, nonzeros: 0 };
  const split: TimeSplit = { ortMs: 0, kernelMs: 0, hostMs: 0, batches: 0, tasks: 0 };
  // The mean batch comes from the engine's batch events, which count the requests that ran, the
  // same way in every mode.
  const ran = { batches: 0, completed: 0 };
  const engine = await Engine.start({
    worker: {
      base: {
        modelPath,
        mode,
        patchable: tasks ? [] : ['no weight is patchable'],
        session: { executionProvider: provider, intraOpThreads: threads },
      },
      cacheMaxBytes: cacheBytes,
      source: { fileRoot: WORK_DIR, allowedSchemes: ['file'] },
    },
    scheduler,
    onEvent: (event) => {
      if (event.type === 'activation' && event.key !== null) {
        activations.count++;
        activations.ms += event.ms;
        activations.nonzeros += event.nonzeros;
      }
      if (event.type === 'batch') {
        ran.batches++;
        ran.completed += event.size;
      }
      if (event.type === 'batch' && event.timings) {
        split.ortMs += event.timings.ortMs;
        split.kernelMs += event.timings.kernelMs;
        split.hostMs += event.timings.hostMs;
        split.batches++;
        split.tasks += event.tasks ?? 1;
      }
    },
  });
  const rng = new SeededRng(7);
  return {
    infer: (task) => engine.infer(tasks && !baseOnly ? tasks[task]! : null, request(rng)),
    batches: () => ({ ...ran }),
    activations: () => activations,
    timeSplit: () => ({ ...split }),
    kernel: engine.readyInfo?.kernel ?? null,
    cachedBytes: async () => (await engine.stats()).worker?.cache.bytes ?? 0,
    cachedDeltas: async () => (await engine.stats()).worker?.cache.entries ?? 0,
    preload: async () => {
      if (!tasks || baseOnly) return;
      for (const task of [...tasks].reverse()) await engine.load(task);
    },
    close: () => engine.close(),
  };
}

async function mergedModelBytes(basePath: string, task: TaskFixture): Promise<Uint8Array> {
  const model = await loadOnnxModel(basePath);
  const weights = readFloatWeights(model);
  const delta = decodeDelta(await readFile(join(WORK_DIR, task.uri)));
  const merged = new Map<string, Float32Array>();
  for (const tensor of delta.tensors) {
    const data = weights.get(tensor.name)!.data.slice();
    if (tensor.kind === 'sparse')
      for (let k = 0; k < tensor.indices.length; k++)
        data[tensor.indices[k]!] = data[tensor.indices[k]!]! + tensor.values[k]!;
    else for (let i = 0; i < data.length; i++) data[i] = data[i]! + tensor.values[i]!;
    merged.set(tensor.name, data);
  }
  return encodeOnnxModel(withFloatWeights(model, merged));
}

/** (b): how multiplexing servers do it — a merged model per task, sessions in an LRU. */
async function mergedSessionRunner(basePath: string, tasks: readonly TaskFixture[]): Promise<Runner> {
  const modelBytes = (await readFile(basePath)).length;
  const capacity = Math.max(1, Math.floor(cacheBytes / modelBytes));
  log(`baseline LRU holds ${capacity} merged session(s) of ${(modelBytes / 2 ** 20).toFixed(0)} MiB`);
  const sessions = new Map<string, ort.InferenceSession>();
  const activations = { count: 0, ms: 0, nonzeros: 0 };
  const sessionFor = async (task: TaskFixture): Promise<ort.InferenceSession> => {
    const cached = sessions.get(task.key);
    if (cached) {
      sessions.delete(task.key);
      sessions.set(task.key, cached);
      return cached;
    }
    const started = performance.now();
    while (sessions.size >= capacity) {
      const [oldest, session] = sessions.entries().next().value as [string, ort.InferenceSession];
      sessions.delete(oldest);
      await session.release();
    }
    const session = await createOrtSession(await mergedModelBytes(basePath, task), {
      executionProvider: provider,
      intraOpThreads: threads,
    });
    sessions.set(task.key, session);
    activations.count++;
    activations.ms += performance.now() - started;
    return session;
  };
  const queue = new Scheduler<NamedTensors, NamedTensors>({
    ...scheduler,
    runBatch: async (key, requests) => {
      const session = await sessionFor(tasks.find((t) => t.key === key)!);
      return splitBatch(await runSession(session, concatBatch(requests), {}), requests.map(batchSizeOf));
    },
  });
  const rng = new SeededRng(7);
  return {
    infer: async (task) => {
      await queue.submit(tasks[task]!.key, request(rng));
      return {};
    },
    batches: () => {
      const stats = queue.stats();
      return { batches: stats.batches, completed: stats.completed };
    },
    activations: () => activations,
    timeSplit: () => ({ ortMs: 0, kernelMs: 0, hostMs: 0, batches: 0, tasks: 0 }),
    kernel: null,
    cachedBytes: async () => 0,
    cachedDeltas: async () => 0,
    preload: async () => undefined,
    close: async () => {
      void queue.close(); // the run has ended: nothing is queued
      await Promise.all([...sessions.values()].map((s) => s.release()));
    },
  };
}

const mergedPathFor = (p: number) => join(WORK_DIR, `bert-base-merged-task0-p${p}.onnx`);

/** Fixtures are generated by a separate `--config prepare` process so no measured process carries their garbage. */
async function prepare(): Promise<void> {
  const { basePath, tasks } = await ensureFixtures(dropRate, log, fixtureValues);
  if (!existsSync(mergedPathFor(dropRate))) {
    const { decodeOnnxModel } = await import('../src/onnx/model-file.js');
    await saveOnnxModel(
      decodeOnnxModel(await mergedModelBytes(basePath, tasks[0]!), 'merged'),
      mergedPathFor(dropRate),
    );
  }
}

async function main(): Promise<void> {
  if ((config as string) === 'prepare') return prepare();
  const { basePath, tasks } = await ensureFixtures(dropRate, log, fixtureValues);
  let runner: Runner;
  if (config === 'a') {
    if (!existsSync(mergedPathFor(dropRate))) throw new Error('run --config prepare first');
    // No weight is patchable, so either mode is the plain model; patch mode is CPU-only.
    runner = await engineRunner(provider === 'cpu' ? 'patch' : 'graph', mergedPathFor(dropRate), null);
  } else if (config === 'b') runner = await mergedSessionRunner(basePath, tasks);
  else
    runner = await engineRunner(
      config === 'd' || config === 'f' ? 'graph' : config === 'e' || config === 'h' ? 'mixed' : 'patch',
      basePath,
      tasks,
    );

  if (values.preload) await runner.preload();
  const zipf = zipfSampler(tasks.length, 99);
  const latencies: number[] = [];
  let completed = 0;
  /** Completions (of any request) inside [measureFrom, stopAt]. */
  let completedInWindow = 0;
  let cpuAtStart: NodeJS.CpuUsage | null = null;
  let cpuInWindow: NodeJS.CpuUsage | null = null;
  let failed = 0;
  const rss: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 5 });
  const started = performance.now();
  const measureFrom = started + warmupSeconds * 1000;
  const stopAt = measureFrom + seconds * 1000;
  let activationsAtStart = { count: 0, ms: 0, nonzeros: 0 };
  let splitAtStart: TimeSplit = runner.timeSplit();
  let batchesAtStart = { batches: 0, completed: 0 };
  const sampler = setInterval(() => {
    if (performance.now() >= measureFrom) rss.push(process.memoryUsage().rss);
  }, 250);
  const cpuStart = setTimeout(() => (cpuAtStart = process.cpuUsage()), Math.max(0, measureFrom - performance.now()));
  const cpuStop = setTimeout(
    () => (cpuInWindow = cpuAtStart && process.cpuUsage(cpuAtStart)),
    Math.max(0, stopAt - performance.now()),
  );
  let measuring = false;
  /** One request; its latency counts from `t0`: now in the closed loop, its scheduled time in the open one. */
  const oneRequest = async (t0 = performance.now()) => {
    const task = config === 'a' || config === 'f' || config === 'g' ? 0 : zipf();
    if (!measuring && t0 >= measureFrom) {
      measuring = true;
      activationsAtStart = { ...runner.activations() };
      batchesAtStart = runner.batches();
      splitAtStart = runner.timeSplit();
      loop.enable();
    }
    try {
      await runner.infer(task);
      const t1 = performance.now();
      if (t1 >= measureFrom && t1 <= stopAt) completedInWindow++;
      if (t0 >= measureFrom) {
        latencies.push(performance.now() - t0);
        completed++;
      }
    } catch (error) {
      failed++;
      log(`request failed: ${(error as Error).message}`);
    }
  };
  if (arrivalRate === null) {
    const client = async () => {
      while (performance.now() < stopAt) await oneRequest();
    };
    await Promise.all(Array.from({ length: concurrency }, client));
  } else {
    // Open loop: Poisson arrivals never wait for answers; the run ends when the last one is answered.
    const arrivals = new SeededRng(11);
    const now = performance.now();
    await runOpenLoop({
      startMs: now,
      offsetsMs: arrivalOffsetsMs({ kind: 'poisson', rate: arrivalRate, durationS: (stopAt - now) / 1000 }, () =>
        arrivals.nextFloat(),
      ),
      send: ({ scheduledMs }) => oneRequest(scheduledMs),
    });
  }
  const elapsed = (performance.now() - Math.max(measureFrom, started)) / 1000;
  loop.disable();
  clearInterval(sampler);
  clearTimeout(cpuStart);
  clearTimeout(cpuStop);
  const cpu = cpuInWindow as NodeJS.CpuUsage | null;
  const end = runner.activations();
  const batchesAtEnd = runner.batches();
  const splitAtEnd = runner.timeSplit();
  const activationCount = end.count - activationsAtStart.count;
  const activationMs = end.ms - activationsAtStart.ms;
  const result = {
    config,
    dropRate,
    seconds: elapsed,
    completed,
    completedInWindow,
    failed,
    throughput: completedInWindow / seconds,
    throughputStarted: completed / elapsed,
    cpuCores: cpu ? (cpu.user + cpu.system) / 1e6 / seconds : null,
    loadAverage: (await import('node:os')).loadavg(),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    activationsPerSecond: activationCount / elapsed,
    meanBatchSize:
      (batchesAtEnd.completed - batchesAtStart.completed) / Math.max(1, batchesAtEnd.batches - batchesAtStart.batches),
    activationMsMean: activationCount > 0 ? activationMs / activationCount : 0,
    activationNonzerosPerSecond:
      activationMs > 0 ? (end.nonzeros - activationsAtStart.nonzeros) / (activationMs / 1000) : 0,
    rssMaxBytes: Math.max(...rss, 0),
    rssMedianBytes: percentile(rss, 50),
    cachedDeltaBytes: await runner.cachedBytes(),
    cachedDeltas: await runner.cachedDeltas(),
    eventLoopDelayP99Ms: loop.percentile(99) / 1e6,
    arrivalRate,
    kernel: runner.kernel,
    split: {
      ortMs: splitAtEnd.ortMs - splitAtStart.ortMs,
      kernelMs: splitAtEnd.kernelMs - splitAtStart.kernelMs,
      hostMs: splitAtEnd.hostMs - splitAtStart.hostMs,
      batches: splitAtEnd.batches - splitAtStart.batches,
      tasks: splitAtEnd.tasks - splitAtStart.tasks,
    },
  };
  await runner.close();
  console.log(JSON.stringify(result));
}

await main();
