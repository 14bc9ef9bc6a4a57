/**
 * The engine as the HTTP layer uses it: `Engine` (src/engine/engine.ts) satisfies this
 * interface, and so can a small fake in route tests. Nothing here knows about worker threads.
 */
import type { EngineListener, EngineStats, InferOptions, InferResult } from '../engine/engine.js';
import type { TaskRef } from '../deltas/types.js';
import type { PerTaskBatching } from '../engine/per-task-batching.js';
import type { ReadyInfo } from '../engine/protocol.js';
import type { NamedTensors } from '../engine/tensors.js';
import type { ModelIO } from '../onnx/io-signature.js';

export type { EngineStats, InferOptions, InferResult };

export interface InferenceEngine {
  /** True while the base model is loaded and the worker is up. */
  readonly ready: boolean;
  /** Inputs and outputs of the base model (every task shares them); throws when not ready. */
  readonly modelIO: ModelIO;
  readonly readyInfo: ReadyInfo | null;
  readonly restartCount: number;
  /** Mixed mode: why a task runs in per-task batches (null while it mixes, and in other modes). */
  perTaskBatchingOf(key: string): PerTaskBatching | null;
  /** Calls `listener` with every engine event (cache, activation, lifecycle); returns its removal. */
  subscribe(listener: EngineListener): () => void;
  infer(task: TaskRef | null, inputs: NamedTensors, options?: InferOptions): Promise<InferResult>;
  /** The overload error a new inference would get right now (queues full), or null. */
  admissionError(): Error | null;
  /** Fetches, verifies and decodes a task's delta into the cache (DS_ERR_TASK_UNAVAILABLE on failure). */
  load(task: TaskRef): Promise<void>;
  pin(task: TaskRef): Promise<void>;
  unpin(key: string): Promise<void>;
  evict(key: string): Promise<void>;
  stats(): Promise<EngineStats>;
  close(drainMs?: number): Promise<void>;
}
