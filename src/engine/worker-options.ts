/** What the worker needs to start: plain data, because it crosses the thread boundary. */
import type { ResourceLimits } from 'node:worker_threads';
import type { DeltaSourceOptions } from '../deltas/source/index.js';
import type { ActivationModeChoice } from './runtime/activator.js';
import type { BaseOptions } from './runtime/prepare-base.js';

export interface WorkerOptions {
  readonly base: Omit<BaseOptions, 'mode'> & { readonly mode: ActivationModeChoice };
  /** Byte budget of the delta cache (decoded deltas, pinned ones included). */
  readonly cacheMaxBytes: number;
  /** How deltas are fetched: file root, http(s) allow-lists, timeouts, size limit, retries. */
  readonly source: Omit<DeltaSourceOptions, 'lookup'>;
  /**
   * V8 heap limits of the worker thread (node:worker_threads `resourceLimits`). A worker that
   * reaches them ends alone (ERR_WORKER_OUT_OF_MEMORY) and is restarted like any crash. Onnxruntime's
   * native memory is not counted. Default: none (the process's limits).
   */
  readonly resourceLimits?: ResourceLimits;
  /** Mixed mode: which side-path kernel runs, and on how many threads. Default: `auto`, ORT's thread count. */
  readonly sideKernel?: SideKernelOptions;
}

export interface SideKernelOptions {
  /** `auto`: the native kernel when it built, else the portable one; `native`: the native one or fail; `js`: the portable one. */
  readonly kernel: 'auto' | 'native' | 'js';
  /** Threads of one native kernel call, the calling thread included; 0 = as many as ORT's intra-op threads. */
  readonly threads: number;
}
