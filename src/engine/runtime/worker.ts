/**
 * The engine worker thread: owns the runtime (the ORT session or sessions, the resident base,
 * the activation state) and the delta cache. Runs are serialised (one runtime, one run at a
 * time); loads, holds, pins and stats are answered between runs.
 *
 * Residency. A batch runs only with its deltas resident: the worker leases every distinct delta
 * of the batch from the cache when the `run` message arrives, and hands back (`not-resident`,
 * with their inputs) the requests whose delta is not there, so a fetch never runs inside the
 * serialised runs and never holds up other tasks. The engine `hold`s the deltas of the tasks it
 * has requests queued for: a held delta is leased, so cache pressure (another load making room)
 * never evicts it before those requests run; only an explicit evict does. A load for a held
 * task that finds no room waits for a lease to end instead of failing: the leases belong to
 * queued or running batches, which end.
 *
 * One function per operation (`handlers`); anything thrown while handling a message is sent
 * back as that message's error; only a failure to start, or a crash, ends the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DeltaCache, type DeltaCacheEvent, type DeltaLease, type DeltaLoadTimings } from '../../deltas/cache/index.js';
import { buildDeltaSource } from '../../deltas/source/index.js';
import { decodeDelta } from '../../deltas/format/delta-file.js';
import { DS_ERR_TASK_UNKNOWN_TO_WORKER } from '../../core/errors.js';
import type { TaskRef } from '../../deltas/types.js';
import { startPerTaskRuntime } from './per-task-runtime.js';
import { startMixedRuntime } from './mixed/index.js';
import { NO_ACTIVATION, type BatchItem, type EngineRuntime } from './runtime.js';
import {
  serializeError,
  type CacheEvent,
  type EngineEvent,
  type LoadPhases,
  type ReplyOf,
  type RequestOutcome,
  type WorkerMessage,
  type WorkerOp,
  type WorkerOps,
  type WorkerRequest,
  type WorkerCrash,
} from '../protocol.js';
import { transferablesOf } from '../tensors.js';
import type { WorkerOptions } from '../worker-options.js';

const port = parentPort!;
const options = workerData as WorkerOptions;
const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const emit = (event: EngineEvent) => post({ kind: 'event', event });

type Handled<K extends WorkerOp> = { readonly value: ReplyOf<K>; readonly transfer?: ArrayBuffer[] };
type Handlers = { readonly [K in WorkerOp]: (request: WorkerOps[K]['request']) => Promise<Handled<K>> };

function startRuntime(): Promise<EngineRuntime> {
  return options.base.mode === 'mixed' ? startMixedRuntime(options) : startPerTaskRuntime(options.base);
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

  /** A task's location is fixed per key (name@version); a changed one replaces the cached copy. */
  const remember = (task: TaskRef): void => {
    const known = refs.get(task.key);
    if (known && (known.uri !== task.uri || known.sha256 !== task.sha256)) cache.evict(task.key);
    refs.set(task.key, task);
  };

  /** Held tasks → the lease that keeps their delta resident (null until it is loaded). */
  const holds = new Map<string, DeltaLease | null>();
  const takeHold = (key: string): boolean => {
    if (!holds.has(key)) return false;
    const lease = holds.get(key) ?? cache.tryAcquire(key, { quiet: true });
    holds.set(key, lease);
    return lease !== null;
  };
  /**
   * Loads of held tasks that found no room, oldest first, with the bytes they need. When a lease
   * ends, the oldest one that now fits tries again, one at a time (each try fetches and decodes
   * again, so none is made before there is room for it).
   */
  const roomWaiters: { readonly bytes: number; readonly wake: () => void }[] = [];
  let retrying = false;
  let leasesInRuns = 0;
  const roomMayHaveFreed = (): void => {
    if (retrying) return;
    const available = cache.availableBytes();
    const next = roomWaiters.findIndex((waiter) => waiter.bytes <= available);
    if (next < 0) return;
    retrying = true;
    roomWaiters.splice(next, 1)[0]!.wake();
  };
  const retried = (): void => {
    retrying = false;
    roomMayHaveFreed();
  };
  const someLeaseWillEnd = (): boolean => leasesInRuns > 0 || [...holds.values()].some((lease) => lease !== null);

  let runs: Promise<unknown> = Promise.resolve();
  let crashOnNextRun: WorkerCrash | null = null;

  const handlers: Handlers = {
    async run({ tasks, requests }) {
      if (crashOnNextRun !== null) return crashWithBatchInFlight(crashOnNextRun);
      if (tasks.length !== requests.length)
        throw new Error(`a batch of ${requests.length} requests came with ${tasks.length} tasks`);
      // Leased now, before any await: from here each delta stays in memory until the run ends.
      const leases = new Map<string, DeltaLease | null>();
      for (const task of tasks) {
        if (!task || leases.has(task.key)) continue;
        remember(task);
        leases.set(task.key, cache.tryAcquire(task.key));
      }
      const items: BatchItem[] = [];
      const ranIndex: number[] = [];
      const outcomes: RequestOutcome[] = requests.map((inputs, i) => {
        const task = tasks[i]!;
        const lease = task && leases.get(task.key);
        if (task && !lease) return { kind: 'not-resident', inputs };
        items.push({ task: task && lease ? { key: task.key, delta: lease.delta } : null, inputs });
        ranIndex.push(i);
        return { kind: 'ran', outputs: {} };
      });
      leasesInRuns += leases.size;
      const release = () => {
        leases.forEach((lease) => lease?.release());
        leasesInRuns -= leases.size;
        roomMayHaveFreed();
      };
      // Runs never overlap: each waits for the previous one, whether it succeeded or not.
      const run = runs
        .catch(() => undefined)
        .then(() => (items.length > 0 ? runtime.run(items) : null))
        .finally(release);
      runs = run;
      const result = await run;
      for (const event of result?.events ?? []) emit(event);
      ranIndex.forEach((i, k) => (outcomes[i] = { kind: 'ran', outputs: result!.outputs[k]! }));
      const tensors = outcomes.map((o) => (o.kind === 'ran' ? o.outputs : o.inputs));
      return {
        value: {
          outcomes,
          inferMs: result?.inferMs ?? 0,
          activation: result?.activation ?? NO_ACTIVATION,
          timings: result?.timings ?? null,
        },
        transfer: transferablesOf(tensors),
      };
    },

    async load({ task }) {
      remember(task);
      let waited = false;
      try {
        for (;;) {
          let lookup;
          try {
            lookup = await cache.prefetch(task.key);
          } catch (error) {
            // A held task's requests wait for room; the leases in the way end with their batches.
            const { code, neededBytes } = error as { code?: string; neededBytes?: number };
            if (code !== 'DS_ERR_CACHE_NO_ROOM' || !holds.has(task.key) || !someLeaseWillEnd()) throw error;
            if (waited) retried();
            waited = true;
            await new Promise<void>((wake) => roomWaiters.push({ bytes: neededBytes ?? 0, wake }));
            continue;
          }
          // Evicted again between its insertion and here (another load made room): load again.
          if (holds.has(task.key) && !takeHold(task.key)) continue;
          return { value: { hit: lookup.hit, phases: phasesOf(lookup.entry.timings) } };
        }
      } finally {
        if (waited) retried();
      }
    },

    async hold({ task }) {
      remember(task);
      if (!holds.has(task.key)) holds.set(task.key, null);
      takeHold(task.key);
      return { value: undefined };
    },

    async release({ key }) {
      holds.get(key)?.release();
      holds.delete(key);
      roomMayHaveFreed();
      return { value: undefined };
    },

    async pin({ task }) {
      remember(task);
      await cache.pin(task.key);
      return { value: undefined };
    },

    async unpin({ key }) {
      cache.unpin(key);
      return { value: undefined };
    },

    async evict({ key }) {
      cache.evict(key);
      // A held lease would keep the dropped delta in memory: the next hold or load takes a fresh one.
      if (holds.has(key)) {
        holds.get(key)?.release();
        holds.set(key, null);
      }
      runtime.forget(key);
      roomMayHaveFreed();
      return { value: undefined };
    },

    async 'crash-on-next-run'({ how }) {
      if (how === 'oom' && options.resourceLimits?.maxOldGenerationSizeMb === undefined) {
        throw new Error(
          'an injected out-of-memory crash needs WorkerOptions.resourceLimits (else it would end the whole process)',
        );
      }
      crashOnNextRun = how;
      return { value: undefined };
    },

    async exit() {
      // Queued behind the runs already accepted, so no native run is interrupted.
      await runs.catch(() => undefined);
      setImmediate(() => process.exit(0));
      return { value: undefined };
    },

    async stats() {
      const s = cache.stats();
      const listing = cache.list();
      return {
        value: {
          activeKey: runtime.activeKey,
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
          residentWeightBytes: runtime.readyInfo.residentWeightBytes,
        },
      };
    },
  };

  const handle = <K extends WorkerOp>(request: WorkerOps[K]['request'] & { op: K }): Promise<Handled<K>> =>
    (handlers[request.op] as (request: WorkerOps[K]['request']) => Promise<Handled<K>>)(request);

  port.on('message', (request: WorkerRequest) => {
    handle(request).then(
      ({ value, transfer }) => post({ kind: 'reply', id: request.id, ok: true, value }, transfer),
      (error: unknown) => post({ kind: 'reply', id: request.id, ok: false, error: serializeError(error) }),
    );
  });
  post({ kind: 'ready', info: { ...runtime.readyInfo, startMs: performance.now() - started } });
}

function phasesOf(timings: DeltaLoadTimings): LoadPhases {
  return { fetch: timings.fetchMs, verify: timings.verifyMs, decode: timings.decodeMs };
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
      process.exit(137); // in a worker thread this ends the thread, as SIGKILL would end a process
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
