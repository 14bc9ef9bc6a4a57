/**
 * Messages between the engine (main thread) and its worker. Every request carries an id and
 * gets exactly one `reply`; errors cross as plain objects and are rebuilt with their code and
 * HTTP status on the main thread.
 */
import type { TaskRef } from '../deltas/types.js';
import type { ActivationMode, ActivationStats } from './runtime/activator.js';
import type { ExecutionProvider } from './runtime/ort-session.js';
import type { NamedTensors } from './tensors.js';
import type { ModelIO } from '../onnx/io-signature.js';

/**
 * Every operation the worker answers: what its request carries and what its reply is. The
 * client's `call` and the worker's handlers are typed from this one table, so a reply type is
 * the operation's, never whatever a caller names.
 */
export interface WorkerOps {
  /**
   * Runs one batch. `tasks[i]` is the task of `requests[i]` (null: the base). Patch and graph
   * mode take batches of one task; mixed mode any mix.
   */
  readonly run: {
    readonly request: { readonly tasks: readonly (TaskRef | null)[]; readonly requests: NamedTensors[] };
    readonly reply: BatchReply;
  };
  /** Loads a delta into the cache (a hit when it is there); a held key waits for room rather than fail for lack of it. */
  readonly load: { readonly request: { readonly task: TaskRef }; readonly reply: LoadReply };
  /**
   * Requests of this task are queued: keep its delta resident (a lease, taken now if it is cached
   * or when a load brings it) until `release`, so cache pressure never evicts it before they run.
   */
  readonly hold: { readonly request: { readonly task: TaskRef }; readonly reply: void };
  /** No request of this task waits any more: its delta may be evicted again. */
  readonly release: { readonly request: { readonly key: string }; readonly reply: void };
  readonly pin: { readonly request: { readonly task: TaskRef }; readonly reply: void };
  readonly unpin: { readonly request: { readonly key: string }; readonly reply: void };
  readonly evict: { readonly request: { readonly key: string }; readonly reply: void };
  readonly stats: { readonly request: Record<never, never>; readonly reply: WorkerStats };
  /** Finish the run in progress (if any), then end the thread. */
  readonly exit: { readonly request: Record<never, never>; readonly reply: void };
  /** Fault injection (tests, drills): the next `run` kills the worker instead of answering. */
  readonly 'crash-on-next-run': { readonly request: { readonly how: WorkerCrash }; readonly reply: void };
}

export type WorkerOp = keyof WorkerOps;
/** A call as the engine makes it: the operation and its arguments. */
export type CallOf<K extends WorkerOp> = { readonly op: K } & WorkerOps[K]['request'];
export type ReplyOf<K extends WorkerOp> = WorkerOps[K]['reply'];
/** A call on the wire: with the id its reply answers to. */
export type WorkerRequest = { [K in WorkerOp]: CallOf<K> & { readonly id: number } }[WorkerOp];

/**
 * How an injected fault kills the worker: `throw` an uncaught error; `exit` as a killed process
 * would (exit code 137); `oom` by allocating until V8's heap limit ends the thread (only with
 * `WorkerOptions.resourceLimits`: without a limit a heap exhausted in any thread ends the process).
 */
export type WorkerCrash = 'throw' | 'exit' | 'oom';

export interface SerializedError {
  readonly name: string;
  readonly code?: string;
  readonly statusCode?: number;
  readonly message: string;
  readonly retryAfterSeconds?: number;
}

/** Where one mixed batch's time went (zeros for patch and graph batches). */
export interface MixedTimings {
  readonly ortMs: number;
  readonly kernelMs: number;
  /** Building per-request inputs and moving tensors between segments. */
  readonly hostMs: number;
  readonly segmentRuns: number;
}

/**
 * One request's fate in a batch, the same in every mode: it ran, or its task's delta was not in
 * the cache when the batch reached the worker and its inputs come back, for the engine to load
 * the delta and queue the request again.
 */
export type RequestOutcome =
  | { readonly kind: 'ran'; readonly outputs: NamedTensors }
  | { readonly kind: 'not-resident'; readonly inputs: NamedTensors };

/** The answer to `run`: one outcome per request, in order, and the batch's costs. */
export interface BatchReply {
  readonly outcomes: RequestOutcome[];
  readonly inferMs: number;
  readonly activation: ActivationStats;
  /** Mixed batches only. */
  readonly timings: MixedTimings | null;
}

/** The answer to `load`: whether the delta was already cached, and how its load went. */
export interface LoadReply {
  readonly hit: boolean;
  readonly phases: LoadPhases;
}

export interface CacheStatsSnapshot {
  readonly entries: number;
  /** In memory, as the engine keeps the deltas (loads in flight included). */
  readonly bytes: number;
  /** The files of the deltas in memory (cached, pinned or held by a run). */
  readonly fileBytes: number;
  readonly maxBytes: number;
  readonly pinned: readonly string[];
  readonly keys: readonly string[];
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly loadFailures: number;
}

export interface WorkerStats {
  readonly activeKey: string | null;
  readonly cache: CacheStatsSnapshot;
  readonly rssBytes: number;
  readonly residentWeightBytes: number;
}

export interface ReadyInfo {
  readonly io: ModelIO;
  readonly fingerprint: string;
  readonly mode: ActivationMode;
  /** `engine.mode: auto`: which mode it chose and why; null when the mode was configured. */
  readonly modeChoice: string | null;
  /**
   * Mixed mode: the side-path kernel that runs, its threads, and why a faster one did not load (null = it did);
   * `pipeline`: one ORT session with the custom op, or the segment pipeline, and why (`pipelineDetail`).
   */
  readonly kernel: {
    readonly name: string;
    readonly threads: number;
    readonly fallbackReason: string | null;
    readonly pipeline: 'custom-op' | 'segments';
    readonly pipelineDetail: string;
  } | null;
  readonly patchableWeights: number;
  readonly residentWeightBytes: number;
  readonly startMs: number;
  /** The provider the session runs on, and why the configured one did not start (null = it did). */
  readonly executionProvider: ExecutionProvider;
  readonly fallbackReason: string | null;
}

/** Milliseconds of each step of one delta load, as the worker measured them. */
export interface LoadPhases {
  readonly fetch: number;
  readonly verify: number;
  readonly decode: number;
}

/**
 * The delta cache's events as the worker forwards them (`kind`: the cache's event type;
 * `miss-inflight` is a miss that joined a load already running).
 */
export type CacheEvent =
  | { readonly type: 'cache'; readonly kind: 'hit'; readonly key: string; readonly bytes: number }
  | { readonly type: 'cache'; readonly kind: 'miss' | 'miss-inflight'; readonly key: string }
  | {
      readonly type: 'cache';
      readonly kind: 'load';
      readonly key: string;
      readonly bytes: number;
      readonly fileBytes: number;
      readonly ms: number;
      readonly phases: LoadPhases;
    }
  | {
      readonly type: 'cache';
      readonly kind: 'load-failed';
      readonly key: string;
      readonly ms: number;
      readonly error: SerializedError;
    }
  | { readonly type: 'cache'; readonly kind: 'evict'; readonly key: string; readonly bytes: number };

/** Observability events the worker forwards (cache and activation), for metrics, traces and task state. */
export type EngineEvent =
  | CacheEvent
  | { readonly type: 'activation'; readonly key: string | null; readonly nonzeros: number; readonly ms: number }
  /** Mixed mode: a task's delta touches a weight mixed batches cannot apply per request; it runs in per-task batches (once per task and worker). */
  | { readonly type: 'mixed-fallback'; readonly key: string; readonly tensor: string; readonly reason: string };

export type WorkerMessage =
  | { readonly kind: 'ready'; readonly info: ReadyInfo }
  | { readonly kind: 'start-failed'; readonly error: SerializedError }
  | { readonly kind: 'reply'; readonly id: number; readonly ok: true; readonly value: ReplyOf<WorkerOp> }
  | { readonly kind: 'reply'; readonly id: number; readonly ok: false; readonly error: SerializedError }
  | { readonly kind: 'event'; readonly event: EngineEvent };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const e = error as Error & { code?: string; statusCode?: number; retryAfterSeconds?: number };
    return {
      name: e.name,
      message: e.message,
      ...(e.code !== undefined && { code: e.code }),
      ...(e.statusCode !== undefined && { statusCode: e.statusCode }),
      ...(e.retryAfterSeconds !== undefined && { retryAfterSeconds: e.retryAfterSeconds }),
    };
  }
  return { name: 'Error', message: String(error) };
}

/** Rebuilds an error on this side with the same code, status and message. */
export function deserializeError(error: SerializedError): Error {
  const rebuilt = new Error(error.message) as Error & {
    code?: string;
    statusCode?: number;
    retryAfterSeconds?: number;
  };
  rebuilt.name = error.name;
  if (error.code !== undefined) rebuilt.code = error.code;
  if (error.statusCode !== undefined) rebuilt.statusCode = error.statusCode;
  if (error.retryAfterSeconds !== undefined) rebuilt.retryAfterSeconds = error.retryAfterSeconds;
  return rebuilt;
}
