/** What the worker needs to start: plain data, because it crosses the thread boundary. */
import type { DeltaSourceOptions } from '../deltas/source/index.js';
import type { BaseOptions } from './prepare-base.js';

export interface WorkerOptions {
  readonly base: BaseOptions;
  /** Byte budget of the delta cache (decoded deltas, pinned ones included). */
  readonly cacheMaxBytes: number;
  /** How deltas are fetched: file root, http(s) allow-lists, timeouts, size limit, retries. */
  readonly source: Omit<DeltaSourceOptions, 'lookup'>;
}
