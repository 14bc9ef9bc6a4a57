/**
 * The engine worker thread: owns the ORT session, the resident base, the activation state and
 * the delta cache. Runs are serialised (one session, one active delta); loads, pins and stats
 * are answered between runs. A batch is accepted only with its delta resident: the worker
 * leases it from the cache when the `run` message arrives and refuses the batch (answering
 * `not-resident`, with its inputs) when it is not there, so a fetch never runs inside the
 * serialised runs and never holds up other tasks. Anything thrown while handling a message is
 * sent back as that message's error; only a failure to start, or a crash, ends the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DeltaCache, type DeltaCacheEvent, type DeltaLease, type DeltaLoadTimings } from '../../deltas/cache/index.js';
import { buildDeltaSource } from '../../deltas/source/index.js';
import { decodeDelta } from '../../deltas/format/delta-file.js';
import { DS_ERR_TASK_UNKNOWN_TO_WORKER } from '../../core/errors.js';
import type { TaskRef } from '../../deltas/types.js';
import type { ActivationStats } from './activator.js';
import { EngineCore } from './engine-core.js';
import { prepareBase, type PreparedBase } from './prepare-base.js';
import { loadSideKernel } from './mixed/kernel/load-kernel.js';
import { prepareMixedBase, type MixedCore, type MixedItem, type PreparedMixedBase } from './mixed/mixed-core.js';
import {
  serializeError,
  type CacheEvent,
  type EngineEvent,
  type LoadPhases,
  type LoadReply,
  type MixedRunReply,
  type RunReply,
  type WorkerMessage,
  type WorkerRequest,
  type WorkerCrash,
  type WorkerStats,
} from '../protocol.js';
import { transferablesOf, type NamedTensors } from '../tensors.js';
import { warmUpInputs } from './warm-up.js';
import type { WorkerOptions } from '../worker-options.js';

const port = parentPort!;
const options = workerData as WorkerOptions;
const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const emit = (event: EngineEvent) => post({ kind: 'event', event });

/** What the worker runs batches on: one task per batch (patch, graph) or many (mixed). */
type Runtime =
  | { readonly mode: 'per-task'; readonly core: EngineCore; readonly base: PreparedBase }
  | {
      readonly mode: 'mixed';
      readonly core: MixedCore;
      readonly base: PreparedMixedBase;
      readonly kernelReason: string | null;
    };

async function startRuntime(): Promise<Runtime> {
  if (options.base.mode === 'mixed') {
    // The kernel runs between ORT runs, on as many threads as ORT was given (0: ORT's choice, all cores).
    const threads = options.base.session.intraOpThreads;
    const { kernel, reason } = loadSideKernel(threads > 0 ? { threads } : {});
    const base = await prepareMixedBase(options.base, kernel);
    return { mode: 'mixed', core: base.core, base, kernelReason: reason };
  }
  const base = await prepareBase(options.base);
  return { mode: 'per-task', core: new EngineCore(base), base };
}

async function start(): Promise<void> {
  const started = performance.now();
  const runtime = await startRuntime();
  const base = runtime.base;
  const refs = new Map<string, TaskRef>();
  const cache = new DeltaCache({
    maxBytes: options.cacheMaxBytes,
    source: buildDeltaSource(options.source),
    resolve: (key) => {
      const ref = refs.get(key);
      if (!ref) throw new DS_ERR_TASK_UNKNOWN_TO_WORKER(key);
      return ref;
    },
    // copy: the cache charges a delta's own arrays; views into the fetched file would keep the
    // whole file alive (for fp16 files, the fp16 values too) outside that accounting.
    decode: (bytes) =>
      decodeDelta(bytes, { baseShapes: base.patchableShapes, expectedBaseFingerprint: base.fingerprint, copy: true }),
    onEvent: (event) => emit(cacheEvent(event)),
  });
  if (runtime.mode === 'per-task' && runtime.base.executionProvider !== 'cpu') {
    const warmUp = warmUpInputs(base.io);
    // Best effort: a model that cannot run on zero inputs reports that on real requests instead.
    if (warmUp) await runtime.core.run(null, [warmUp]).catch(() => undefined);
  }

  /** A task's location is fixed per key (name@version); a changed one replaces the cached copy. */
  const remember = (task: TaskRef): void => {
    const known = refs.get(task.key);
    if (known && (known.uri !== task.uri || known.sha256 !== task.sha256)) cache.evict(task.key);
    refs.set(task.key, task);
  };

  let runs: Promise<unknown> = Promise.resolve();
  let crashOnNextRun: WorkerCrash | null = null;
  const handle = async (request: WorkerRequest): Promise<{ value: unknown; transfer?: ArrayBuffer[] }> => {
    switch (request.op) {
      case 'run': {
        if (crashOnNextRun !== null) return crashWithBatchInFlight(crashOnNextRun);
        if (runtime.mode !== 'per-task') throw new Error('this worker runs mixed batches (op run-mixed)');
        const task = request.task;
        // Leased now, before any await: from here the delta stays in memory until the run ends.
        let lease: DeltaLease | null = null;
        if (task) {
          remember(task);
          lease = cache.tryAcquire(task.key);
          if (lease === null) {
            // The inputs were transferred here; hand them back for the engine to queue again.
            const refused: RunReply = { kind: 'not-resident', requests: request.requests };
            return { value: refused, transfer: transferablesOf(request.requests) };
          }
        }
        const delta = task && lease && { key: task.key, delta: lease.delta };
        // Runs never overlap: each waits for the previous one, whether it succeeded or not.
        const run = runs
          .catch(() => undefined)
          .then(() => runtime.core.run(delta, request.requests))
          .finally(() => lease?.release());
        runs = run;
        const { outputs, activation, inferMs } = await run;
        if (activation.switched) {
          emit({ type: 'activation', key: task?.key ?? null, nonzeros: activation.nonzeros, ms: activation.ms });
        }
        const ran: RunReply = { kind: 'ran', outputs, activation, inferMs };
        return { value: ran, transfer: transferablesOf(outputs) };
      }
      case 'run-mixed': {
        if (crashOnNextRun !== null) return crashWithBatchInFlight(crashOnNextRun);
        if (runtime.mode !== 'mixed') throw new Error('this worker runs one task per batch (op run)');
        // Leased now, before any await; a request whose delta is not cached is handed back.
        const leases = new Map<string, DeltaLease | null>();
        for (const task of request.tasks) {
          if (!task || leases.has(task.key)) continue;
          remember(task);
          leases.set(task.key, cache.tryAcquire(task.key));
        }
        const items: MixedItem[] = [];
        const ranIndex: number[] = [];
        const refused: (NamedTensors | null)[] = request.requests.map(() => null);
        request.tasks.forEach((task, i) => {
          const lease = task ? leases.get(task.key) : null;
          if (task && !lease) {
            refused[i] = request.requests[i]!;
            return;
          }
          items.push({
            task: task && lease ? { key: task.key, delta: lease.delta } : null,
            inputs: request.requests[i]!,
          });
          ranIndex.push(i);
        });
        const release = () => leases.forEach((lease) => lease?.release());
        const run = runs
          .catch(() => undefined)
          .then(() => (items.length > 0 ? runtime.core.run(items) : null))
          .finally(release);
        runs = run;
        const result = await run;
        for (const fallback of result?.newFallbacks ?? []) emit({ type: 'mixed-fallback', ...fallback });
        for (const { key, stats } of result?.activations ?? [])
          emit({ type: 'activation', key, nonzeros: stats.nonzeros, ms: stats.ms });
        const outputs: (NamedTensors | null)[] = request.requests.map(() => null);
        ranIndex.forEach((i, k) => (outputs[i] = result!.outputs[k]!));
        const reply: MixedRunReply = {
          outputs,
          refused,
          inferMs: result?.inferMs ?? 0,
          timings: result?.timings ?? { ortMs: 0, kernelMs: 0, hostMs: 0, segmentRuns: 0 },
          activation: sumActivations(result?.activations ?? []),
        };
        const present = (sets: (NamedTensors | null)[]) => sets.filter((t): t is NamedTensors => t !== null);
        return { value: reply, transfer: transferablesOf([...present(outputs), ...present(refused)]) };
      }
      case 'load': {
        remember(request.task);
        const { entry, hit } = await cache.prefetch(request.task.key);
        const reply: LoadReply = { hit, phases: phasesOf(entry.timings) };
        return { value: reply };
      }
      case 'pin':
        remember(request.task);
        await cache.pin(request.task.key);
        return { value: undefined };
      case 'unpin':
        cache.unpin(request.key);
        return { value: undefined };
      case 'evict':
        cache.evict(request.key);
        if (runtime.mode === 'mixed') runtime.core.forget(request.key);
        return { value: undefined };
      case 'crash-on-next-run':
        if (request.how === 'oom' && options.resourceLimits?.maxOldGenerationSizeMb === undefined) {
          throw new Error(
            'an injected out-of-memory crash needs WorkerOptions.resourceLimits (else it would end the whole process)',
          );
        }
        crashOnNextRun = request.how;
        return { value: undefined };
      case 'exit':
        // Queued behind the runs already accepted, so no native run is interrupted.
        await runs.catch(() => undefined);
        setImmediate(() => process.exit(0));
        return { value: undefined };
      case 'stats': {
        const s = cache.stats();
        const listing = cache.list();
        const stats: WorkerStats = {
          activeKey: runtime.mode === 'per-task' ? runtime.core.activeKey : null,
          cache: {
            entries: s.entries,
            bytes: s.totalBytes,
            maxBytes: s.maxBytes,
            pinned: listing.filter((e) => e.state === 'pinned').map((e) => e.key),
            keys: listing.filter((e) => e.state !== 'held').map((e) => e.key),
            hits: s.hits,
            misses: s.misses,
            evictions: s.evictions,
            loadFailures: s.loadFailures,
          },
          rssBytes: process.memoryUsage().rss,
          residentWeightBytes: runtime.mode === 'per-task' ? runtime.base.residentWeightBytes : 0,
        };
        return { value: stats };
      }
    }
  };

  port.on('message', (request: WorkerRequest) => {
    handle(request).then(
      ({ value, transfer }) => post({ kind: 'reply', id: request.id, ok: true, value }, transfer),
      (error: unknown) => post({ kind: 'reply', id: request.id, ok: false, error: serializeError(error) }),
    );
  });
  post({
    kind: 'ready',
    info: {
      io: base.io,
      fingerprint: base.fingerprint,
      mode: options.base.mode,
      patchableWeights: base.patchableShapes.size,
      residentWeightBytes: runtime.mode === 'per-task' ? runtime.base.residentWeightBytes : 0,
      startMs: performance.now() - started,
      executionProvider: runtime.mode === 'per-task' ? runtime.base.executionProvider : 'cpu',
      fallbackReason: runtime.mode === 'per-task' ? runtime.base.fallbackReason : null,
      kernel:
        runtime.mode === 'mixed'
          ? {
              name: runtime.core.kernel.name,
              threads: runtime.core.kernel.threads,
              fallbackReason: runtime.kernelReason,
            }
          : null,
    },
  });
}

function phasesOf(timings: DeltaLoadTimings): LoadPhases {
  return { fetch: timings.fetchMs, verify: timings.verifyMs, decode: timings.decodeMs };
}

/** One batch's fallback activations as one figure (the reply carries one per batch). */
function sumActivations(activations: readonly { stats: ActivationStats }[]): ActivationStats {
  return activations.reduce(
    (sum, { stats }) => ({ switched: true, nonzeros: sum.nonzeros + stats.nonzeros, ms: sum.ms + stats.ms }),
    { switched: false, nonzeros: 0, ms: 0 } as ActivationStats,
  );
}

/** Ends the thread the way a real fault would, with this batch in flight (it never answers). */
function crashWithBatchInFlight(how: WorkerCrash): Promise<never> {
  setImmediate(() => crash(how));
  return new Promise<never>(() => undefined);
}

/** Test-only fault injection (`crash-on-next-run`). */
function crash(how: WorkerCrash): void {
  switch (how) {
    case 'throw':
      throw new Error('injected worker crash');
    case 'exit':
      return process.exit(137); // in a worker thread this ends the thread, as SIGKILL would end a process
    case 'oom': {
      const retained: number[][] = [];
      for (;;) retained.push(new Array<number>(1 << 20).fill(1.5));
    }
  }
}

function cacheEvent(event: DeltaCacheEvent): CacheEvent {
  switch (event.type) {
    case 'load':
      return {
        type: 'cache',
        kind: 'load',
        key: event.key,
        bytes: event.bytes,
        ms: event.ms,
        phases: phasesOf(event.timings),
      };
    case 'evict':
      return { type: 'cache', kind: 'evict', key: event.key, bytes: event.bytes };
    case 'load-failed':
      return { type: 'cache', kind: 'load-failed', key: event.key, ms: event.ms, error: serializeError(event.error) };
    case 'hit':
      return { type: 'cache', kind: 'hit', key: event.key, bytes: event.bytes };
    case 'miss':
      return { type: 'cache', kind: event.inflight ? 'miss-inflight' : 'miss', key: event.key };
  }
}

start().catch((error: unknown) => {
  post({ kind: 'start-failed', error: serializeError(error) });
  // Let the message flush, then end the thread: the engine decides what to do.
  setImmediate(() => process.exit(1));
});
