/**
 * Messages between the engine (main thread) and its worker. Every request carries an id and
 * gets exactly one `reply`; errors cross as plain objects and are rebuilt with their code and
 * HTTP status on the main thread.
 */
import type { ActivationStats } from './activator.js';
import type { NamedTensors } from './tensors.js';
import type { ModelIO } from '../onnx/io-signature.js';

/** A task version the worker may be asked to load: cache key plus where its delta lives. */
export interface TaskRef {
  /** `name@version`: the cache and activation key. */
  readonly key: string;
  readonly uri: string;
  readonly sha256: string;
}

export type WorkerRequest =
  | { readonly id: number; readonly op: 'run'; readonly task: TaskRef | null; readonly requests: NamedTensors[] }
  | { readonly id: number; readonly op: 'load'; readonly task: TaskRef }
  | { readonly id: number; readonly op: 'pin'; readonly task: TaskRef }
  | { readonly id: number; readonly op: 'unpin'; readonly key: string }
  | { readonly id: number; readonly op: 'evict'; readonly key: string }
  | { readonly id: number; readonly op: 'stats' }
  /** Finish the run in progress (if any), then end the thread. */
  | { readonly id: number; readonly op: 'exit' }
  /** Fault injection (tests, drills): the next `run` kills the worker instead of answering. */
  | { readonly id: number; readonly op: 'crash-on-next-run'; readonly how: WorkerCrash };

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

export interface RunReply {
  readonly outputs: NamedTensors[];
  readonly activation: ActivationStats;
  readonly cacheHit: boolean;
  readonly inferMs: number;
}

export interface CacheStatsSnapshot {
  readonly entries: number;
  readonly bytes: number;
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
  readonly mode: 'patch' | 'graph';
  readonly patchableWeights: number;
  readonly residentWeightBytes: number;
  readonly startMs: number;
}

/** Observability events the worker forwards (cache and activation), for metrics and traces. */
export type EngineEvent =
  | { readonly type: 'cache'; readonly kind: string; readonly key: string; readonly bytes?: number; readonly ms?: number; readonly phases?: Readonly<Record<string, number>> }
  | { readonly type: 'activation'; readonly key: string | null; readonly nonzeros: number; readonly ms: number };

export type WorkerMessage =
  | { readonly kind: 'ready'; readonly info: ReadyInfo }
  | { readonly kind: 'start-failed'; readonly error: SerializedError }
  | { readonly kind: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
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
  const rebuilt = new Error(error.message) as Error & { code?: string; statusCode?: number; retryAfterSeconds?: number };
  rebuilt.name = error.name;
  if (error.code !== undefined) rebuilt.code = error.code;
  if (error.statusCode !== undefined) rebuilt.statusCode = error.statusCode;
  if (error.retryAfterSeconds !== undefined) rebuilt.retryAfterSeconds = error.retryAfterSeconds;
  return rebuilt;
}
