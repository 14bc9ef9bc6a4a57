/**
 * Giving memory back after a failed delta load (issue 22, item 5) or an eviction.
 *
 * A load reads the whole delta into one buffer (hundreds of MB to GBs) before it is validated.
 * When validation refuses it, the buffer is garbage, but nothing in the worker allocates
 * afterwards, so V8 never collects it: four refused ~1 GiB registrations left RSS at 4.4 GiB
 * for good. V8 collects external (ArrayBuffer) memory only when a collection happens, and
 * collections are triggered by allocation, not by time.
 *
 * So after a failed load the worker asks V8 for a full collection itself, at most once per
 * `MIN_INTERVAL_MS` (a trailing call covers failures in between): a collection of this heap
 * (small JS heap, large external buffers) takes milliseconds, and it runs between messages, so
 * never inside a batch. `gc` is not exposed to scripts without --expose-gc; the flag is set at
 * runtime and the function taken from a fresh context, the documented way to reach it
 * (node:v8 setFlagsFromString). If that ever fails, the failure is logged once and loads just
 * keep their memory until the next natural collection, as before.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const MIN_INTERVAL_MS = 1000;

let collect: (() => void) | null | undefined;

function collector(): (() => void) | null {
  if (collect !== undefined) return collect;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    collect = typeof gc === 'function' ? (gc as () => void) : null;
  } catch (error) {
    process.emitWarning(`deltaserve: cannot trigger garbage collection after failed delta loads: ${String(error)}`);
    collect = null;
  }
  return collect;
}

let lastRun = -Infinity;
let pending: ReturnType<typeof setTimeout> | undefined;

/** Schedules a full collection soon (coalesced, at most one per second). */
export function releaseMemorySoon(): void {
  if (pending !== undefined) return;
  const wait = Math.max(0, lastRun + MIN_INTERVAL_MS - performance.now());
  pending = setTimeout(() => {
    pending = undefined;
    lastRun = performance.now();
    collector()?.();
  }, wait);
  pending.unref();
}
