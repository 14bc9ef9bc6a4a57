/**
 * Which requests a mixed batch (requests of many tasks in one engine run) takes from the queues
 * of the mixable tasks. Pure, so the rule can be tested on its own.
 *
 * Requests join in `batchOrder` (overdue first, oldest first; then priority; then arrival) until
 * the batch holds `maxSize` requests or the next request would take it over the token budget.
 * The fill stops at that request rather than skipping it for a smaller one behind it: every
 * batch is a prefix of the order, so a request that waits for room keeps its place and nothing
 * behind it overtakes it (the scheduler's wait bound rests on that). The first request always
 * joins, even over the budget, so a request larger than the budget still runs, alone.
 */
import { batchOrder, type QueuedRequest } from './task-queue.js';

export interface TokenBudget<Item> {
  /** Most tokens one mixed batch may hold (the first request excepted). */
  readonly maxTokens: number;
  readonly tokensOf: (item: Item) => number;
}

export interface MixedBatchFill<Item> {
  /** The requests to run, in batch order. */
  readonly batch: Item[];
  /** True when waiting could not make the batch bigger: it holds `maxSize` requests or its tokens are spent. */
  readonly full: boolean;
}

export function fillMixedBatch<Item extends QueuedRequest<unknown>>(
  candidates: readonly Item[],
  maxSize: number,
  now: number,
  forcedSwitchWaitMs: number,
  budget: TokenBudget<Item> | undefined,
): MixedBatchFill<Item> {
  const ordered = [...candidates].sort(batchOrder(now, forcedSwitchWaitMs));
  const batch: Item[] = [];
  let tokens = 0;
  for (const item of ordered) {
    if (batch.length === maxSize) return { batch, full: true };
    const itemTokens = budget === undefined ? 0 : budget.tokensOf(item);
    if (budget !== undefined && batch.length > 0 && tokens + itemTokens > budget.maxTokens)
      return { batch, full: true };
    batch.push(item);
    tokens += itemTokens;
  }
  return { batch, full: batch.length === maxSize || (budget !== undefined && tokens >= budget.maxTokens) };
}
