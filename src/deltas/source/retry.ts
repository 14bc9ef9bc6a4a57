/**
 * Exponential backoff with jitter for transient fetch failures. "Equal jitter": half of the
 * exponential delay is kept, the other half is random, so retries from many gateways spread out
 * without any retry coming back immediately. Randomness comes from a SeededRng so tests and
 * incidents replay the same delays.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SeededRng } from '../../core/rng.js';

export interface BackoffOptions {
  /** Delay before the first retry, before jitter, in ms. */
  baseDelayMs: number;
  /** Cap on any delay, in ms. */
  maxDelayMs: number;
}

/** Delay before retry number `retry` (1-based). */
export function backoffDelayMs(retry: number, options: BackoffOptions, rng: SeededRng): number {
  const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (retry - 1));
  return exponential / 2 + rng.nextFloat() * (exponential / 2);
}

/** Waits `ms`, rejecting with the signal's reason if it aborts first. */
export async function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) {
    signal?.throwIfAborted();
    return;
  }
  try {
    await sleep(ms, undefined, signal === undefined ? undefined : { signal });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}
