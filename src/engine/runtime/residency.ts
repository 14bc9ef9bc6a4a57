/**
 * Which deltas the worker keeps in memory, and for whom: the delta cache, the task locations it
 * loads from, the leases of running batches and the holds of queued requests.
 *
 * - A batch leases each distinct delta it needs when it arrives (`leaseBatch`); a request whose
 *   delta is not cached is handed back, so no run waits for a fetch.
 * - The engine `hold`s a task while any of its requests is queued or running: its delta, once
 *   cached, is leased, so another load's need for room never evicts it (only an explicit
 *   `evict` does, which also drops the hold's lease). `release` ends the hold.
 * - A `load` for a held task that finds no room (every entry leased or pinned) waits until the
 *   cache could fit it — leases end with their batches and holds with their requests — then
 *   tries again, one such load at a time, since each try fetches and decodes again. Loads of
 *   tasks nobody holds fail at once, as before.
 *
 * Single-threaded: every step between two awaits is synchronous, as in DeltaCache.
 */
import { DeltaCache, type CacheLookup, type DeltaCacheOptions, type DeltaLease } from '../../deltas/cache/index.js';
import type { TaskRef } from '../../deltas/types.js';
import { DS_ERR_CACHE_NO_ROOM, DS_ERR_TASK_UNKNOWN_TO_WORKER, isError } from '../../core/errors.js';

export type ResidencyOptions = Omit<DeltaCacheOptions, 'resolve'>;

/** A batch's leases: one per distinct task (null: not cached), released together. */
export interface BatchLeases {
  /** The lease for `key`, or null when its delta was not cached when the batch arrived. */
  of(key: string): DeltaLease | null;
  release(): void;
}

export class Residency {
  readonly cache: DeltaCache;
  private readonly refs = new Map<string, TaskRef>();
  /** Held tasks → the lease that keeps their delta resident (null until it is cached). */
  private readonly holds = new Map<string, DeltaLease | null>();
  private leasesInRuns = 0;
  /** Loads of held tasks short of room, oldest first, with the bytes they need. */
  private readonly roomWaiters: { readonly bytes: number; readonly wake: () => void }[] = [];
  private retrying = false;

  constructor(options: ResidencyOptions) {
    this.cache = new DeltaCache({
      ...options,
      resolve: (key) => {
        const ref = this.refs.get(key);
        if (!ref) throw new DS_ERR_TASK_UNKNOWN_TO_WORKER(key);
        return ref;
      },
    });
  }

  /** A task's location is fixed per key (name@version); a changed one replaces the cached copy. */
  remember(task: TaskRef): void {
    const known = this.refs.get(task.key);
    if (known && (known.uri !== task.uri || known.sha256 !== task.sha256)) this.cache.evict(task.key);
    this.refs.set(task.key, task);
  }

  /** Leases, now and without waiting, the deltas of a batch's tasks (null: the base). */
  leaseBatch(tasks: readonly (TaskRef | null)[]): BatchLeases {
    const leases = new Map<string, DeltaLease | null>();
    for (const task of tasks) {
      if (!task || leases.has(task.key)) continue;
      this.remember(task);
      leases.set(task.key, this.cache.tryAcquire(task.key));
    }
    this.leasesInRuns += leases.size;
    let open = true;
    return {
      of: (key) => leases.get(key) ?? null,
      release: () => {
        if (!open) return;
        open = false;
        leases.forEach((lease) => lease?.release());
        this.leasesInRuns -= leases.size;
        this.roomMayHaveFreed();
      },
    };
  }

  hold(task: TaskRef): void {
    this.remember(task);
    if (!this.holds.has(task.key)) this.holds.set(task.key, null);
    this.takeHold(task.key);
  }

  release(key: string): void {
    this.holds.get(key)?.release();
    this.holds.delete(key);
    this.roomMayHaveFreed();
  }

  /** Loads a delta into the cache (a hit when it is there); a held task waits for room rather than fail for lack of it. */
  async load(task: TaskRef): Promise<CacheLookup> {
    this.remember(task);
    let woken = false;
    try {
      for (;;) {
        let lookup: CacheLookup;
        try {
          lookup = await this.cache.prefetch(task.key);
        } catch (error) {
          if (!isError(error, DS_ERR_CACHE_NO_ROOM) || !this.holds.has(task.key) || !this.someLeaseWillEnd())
            throw error;
          const { neededBytes } = error as { neededBytes?: number };
          if (woken) this.retried();
          woken = true;
          await new Promise<void>((wake) => this.roomWaiters.push({ bytes: neededBytes ?? 0, wake }));
          continue;
        }
        // Evicted again between its insertion and here (another load made room): load again.
        if (this.holds.has(task.key) && !this.takeHold(task.key)) continue;
        return lookup;
      }
    } finally {
      if (woken) this.retried();
    }
  }

  /** Drops a delta on request; a hold's lease goes too (the next hold or load takes a fresh one). */
  evict(key: string): void {
    this.cache.evict(key);
    if (this.holds.has(key)) {
      this.holds.get(key)?.release();
      this.holds.set(key, null);
    }
    this.roomMayHaveFreed();
  }

  private takeHold(key: string): boolean {
    if (!this.holds.has(key)) return false;
    const lease = this.holds.get(key) ?? this.cache.tryAcquire(key, { quiet: true });
    this.holds.set(key, lease);
    return lease !== null;
  }

  private someLeaseWillEnd(): boolean {
    return this.leasesInRuns > 0 || [...this.holds.values()].some((lease) => lease !== null);
  }

  /** Wakes the oldest load short of room that the cache could now fit; one at a time. */
  private roomMayHaveFreed(): void {
    if (this.retrying) return;
    const available = this.cache.availableBytes();
    const next = this.roomWaiters.findIndex((waiter) => waiter.bytes <= available);
    if (next < 0) return;
    this.retrying = true;
    this.roomWaiters.splice(next, 1)[0]!.wake();
  }

  private retried(): void {
    this.retrying = false;
    this.roomMayHaveFreed();
  }
}
