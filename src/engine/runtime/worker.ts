/**
 * The engine worker thread: owns the runtime (the ORT session or sessions, the resident base,
 * the activation state) and the delta cache. Runs are serialised (one runtime, one run at a
 * time); loads, holds, pins and stats are answered between runs.
 *
 * A batch runs only with its deltas resident: they are leased when the `run` message arrives and
 * the requests whose delta is not cached come back `not-resident`, so a fetch never runs inside
 * the serialised runs and never holds up other tasks. Queued tasks' deltas are held so no other
 * load evicts them first (residency.ts).
 *
 * One handler per operation (`handlers`, typed by protocol.ts `WorkerOps`); anything thrown
 * while handling a message is sent back as that message's error; only a failure to start, or a
 * crash, ends the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DeltaCacheEvent, DeltaLoadTimings } from '../../deltas/cache/index.js';
import { buildDeltaSource } from '../../deltas/source/index.js';
import { decodeDelta } from '../../deltas/format/delta-file.js';
import { Residency } from './residency.js';
import { startEngineRuntime } from './start-runtime.js';
import { NO_ACTIVATION, type BatchItem } from './runtime.js';
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
import { releaseMemorySoon } from './release-memory.js';
import { withoutCodes } from './resident-form.js';
import type { WorkerOptions } from '../worker-options.js';

const port = parentPort!;
const options = workerData as WorkerOptions;
const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const emit = (event: EngineEvent) => post({ kind: 'event', event });

type Handled<K extends WorkerOp> = { readonly value: ReplyOf<K>; readonly transfer?: ArrayBuffer[] };
type Handlers = { readonly [K in WorkerOp]: (request: WorkerOps[K]['request']) => Promise<Handled<K>> };

async function start(): Promise<void> {
  const started = performance.now();
  const { runtime, modeChoice } = await startEngineRuntime(options);
  const base = runtime.base;
  const residency = new Residency({
    maxBytes: options.cacheMaxBytes,
    source: buildDeltaSource(options.source),
    // copy: the cache charges a delta's own arrays; views into the fetched file would keep the
    // whole file alive (for fp16 files, the fp16 values too) outside that accounting.
    decode: (bytes) =>
      withoutCodes(
        runtime.residentForm(
          decodeDelta(bytes, {
            baseShapes: base.patchableShapes,
            expectedBaseFingerprint: base.fingerprint,
            copy: true,
          }),
        ),
      ),
    onEvent: (event) => {
      // A refused delta's bytes, or an evicted one's arrays (and what its load left behind: the
      // fetched file, arrays a resident form replaced), are garbage now; V8 collects external
      // memory only when allocation triggers a collection, so without this RSS runs above the
      // cache's budget under churn.
      if (event.type === 'load-failed' || event.type === 'evict') releaseMemorySoon();
      emit(cacheEvent(event));
    },
  });
  const cache = residency.cache;

  let runs: Promise<unknown> = Promise.resolve();
  let crashOnNextRun: WorkerCrash | null = null;

  const handlers: Handlers = {
    async run({ tasks, requests }) {
      if (crashOnNextRun !== null) return crashWithBatchInFlight(crashOnNextRun);
      if (tasks.length !== requests.length)
        throw new Error(`a batch of ${requests.length} requests came with ${tasks.length} tasks`);
      // Leased now, before any await: from here each delta stays in memory until the run ends.
      const leases = residency.leaseBatch(tasks);
      const items: BatchItem[] = [];
      const ranIndex: number[] = [];
      const outcomes: RequestOutcome[] = requests.map((inputs, i) => {
        const task = tasks[i]!;
        const lease = task && leases.of(task.key);
        if (task && !lease) return { kind: 'not-resident', inputs };
        items.push({ task: task && lease ? { key: task.key, delta: lease.delta } : null, inputs });
        ranIndex.push(i);
        return { kind: 'ran', outputs: {} };
      });
      // Runs never overlap: each waits for the previous one, whether it succeeded or not.
      const run = runs
        .catch(() => undefined)
        .then(() => (items.length > 0 ? runtime.run(items) : null))
        .finally(() => leases.release());
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
      const { hit, entry } = await residency.load(task);
      return { value: { hit, phases: phasesOf(entry.timings) } };
    },

    async hold({ task }) {
      residency.hold(task);
      return { value: undefined };
    },

    async release({ key }) {
      residency.release(key);
      return { value: undefined };
    },

    async pin({ task }) {
      residency.remember(task);
      await cache.pin(task.key);
      return { value: undefined };
    },

    async unpin({ key }) {
      cache.unpin(key);
      return { value: undefined };
    },

    async evict({ key }) {
      residency.evict(key);
      runtime.forget(key);
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
            fileBytes: listing.reduce((sum, e) => sum + e.fileBytes, 0),
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
  post({ kind: 'ready', info: { ...runtime.readyInfo, modeChoice, startMs: performance.now() - started } });
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
        fileBytes: event.fileBytes,
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
