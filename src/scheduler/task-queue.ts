/**
 * One task's waiting requests, in arrival order, and the rule that picks a batch from them:
 * requests that have waited past forcedSwitchWaitMs first (oldest first), then the rest by
 * priority (higher first) and arrival. Aging beats priority so that no request can be passed
 * over forever, which is what the scheduler's wait bound rests on.
 */

export interface QueuedRequest<Req> {
  readonly task: string;
  readonly request: Req;
  /** Higher runs first. */
  readonly priority: number;
  /** Epoch ms after which the request is rejected if still queued. */
  readonly deadline: number | undefined;
  /** Clock reading (scheduler's `now`) at submit. */
  readonly enqueuedAt: number;
  /** Arrival order, unique across the scheduler. */
  readonly seq: number;
}

export class TaskQueue<Item extends QueuedRequest<unknown>> {
  private items: Item[] = [];

  constructor(readonly task: string) {}

  get size(): number {
    return this.items.length;
  }

  push(item: Item): void {
    this.items.push(item);
  }

  /** False if the item was not (or no longer) queued here. */
  remove(item: Item): boolean {
    const index = this.items.indexOf(item);
    if (index === -1) return false;
    this.items.splice(index, 1);
    return true;
  }

  /** Arrival time of the oldest request; undefined when empty. */
  oldestEnqueuedAt(): number | undefined {
    return this.items[0]?.enqueuedAt;
  }

  topPriority(): number {
    let top = -Infinity;
    for (const item of this.items) if (item.priority > top) top = item.priority;
    return top;
  }

  all(): readonly Item[] {
    return this.items;
  }

  /** Removes and returns up to `max` requests, overdue ones first (see the module doc). */
  takeBatch(max: number, now: number, forcedSwitchWaitMs: number): Item[] {
    const ordered = [...this.items].sort(batchOrder(now, forcedSwitchWaitMs));
    const batch = ordered.slice(0, max);
    const taken = new Set(batch);
    this.items = this.items.filter((item) => !taken.has(item));
    return batch;
  }
}

/** What the batch order looks at. */
export type BatchOrderKey = Pick<QueuedRequest<unknown>, 'enqueuedAt' | 'priority' | 'seq'>;

/**
 * The order in which requests join a batch, for one task's queue and for a mixed batch drawn
 * from many: overdue requests (waited ≥ forcedSwitchWaitMs) first in arrival order, which is
 * oldest first; then the rest by priority (higher first), then arrival.
 */
export function batchOrder(now: number, forcedSwitchWaitMs: number): (a: BatchOrderKey, b: BatchOrderKey) => number {
  const overdue = (item: BatchOrderKey): boolean => now - item.enqueuedAt >= forcedSwitchWaitMs;
  return (a, b) => {
    const ao = overdue(a);
    const bo = overdue(b);
    if (ao !== bo) return ao ? -1 : 1;
    if (!ao && a.priority !== b.priority) return b.priority - a.priority;
    return a.seq - b.seq;
  };
}
