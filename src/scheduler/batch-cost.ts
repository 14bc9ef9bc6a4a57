/**
 * What a batch costs as a function of its size, learned from the batches that ran, and what a
 * backlog will therefore take to drain: the Retry-After of an overloaded answer.
 *
 * Batch time is modelled as `fixedMs + perRequestMs × size` (activation, message passing and the
 * ORT call overhead per batch; compute per request), fitted by exponentially weighted least
 * squares over recent batches. A per-request average alone (batch time / size) was ~10× too
 * long for multi-task bursts (issue 22, item 11): it was learned from small batches (light
 * traffic, forced switches) and applied to a backlog that runs in full ones.
 *
 * When every recent batch had the same size the two terms cannot be told apart; a batch of
 * another size is then priced at the geometric middle of the two extremes (all fixed cost: the
 * same time; all per-request: proportional), `cost × √(size / seenSize)`, which is off by at most
 * √(size / seenSize) whichever extreme is true.
 */

/** Weight kept by the history at each new batch: about the last 20 batches count. */
const DECAY = 0.95;

export class BatchCostModel {
  private weight = 0;
  private sumSize = 0;
  private sumSize2 = 0;
  private sumMs = 0;
  private sumSizeMs = 0;

  record(size: number, ms: number): void {
    if (!(size >= 1) || !Number.isFinite(ms) || ms < 0) return;
    this.weight = this.weight * DECAY + 1;
    this.sumSize = this.sumSize * DECAY + size;
    this.sumSize2 = this.sumSize2 * DECAY + size * size;
    this.sumMs = this.sumMs * DECAY + ms;
    this.sumSizeMs = this.sumSizeMs * DECAY + size * ms;
  }

  /** Whether any batch was measured (before that, no estimate is made). */
  get measured(): boolean {
    return this.weight > 0;
  }

  /** Predicted time of one batch of `size` requests, ms; 0 before any batch ran. */
  batchMs(size: number): number {
    if (this.weight === 0 || size <= 0) return 0;
    const meanSize = this.sumSize / this.weight;
    const meanMs = this.sumMs / this.weight;
    const variance = this.sumSize2 / this.weight - meanSize * meanSize;
    if (variance > 1e-6 * meanSize * meanSize) {
      const perRequest = (this.sumSizeMs / this.weight - meanSize * meanMs) / variance;
      const fixed = meanMs - perRequest * meanSize;
      if (perRequest >= 0 && fixed >= 0) return fixed + perRequest * size;
      // Noise gave a negative term: fall back to the extreme the data leans to.
      return perRequest < 0 ? meanMs : (meanMs / meanSize) * size;
    }
    return meanMs * Math.sqrt(size / meanSize);
  }

  /**
   * Time to drain a backlog, ms: `queues` are the requests queued per batching group (a task
   * with per-task batches, or all mixable tasks together), each run in batches of at most
   * `maxBatchSize`; `runningSize` is the batch running now (0 if none).
   */
  drainMs(queues: Iterable<number>, maxBatchSize: number, runningSize: number): number {
    let total = runningSize > 0 ? this.batchMs(runningSize) : 0;
    for (const queued of queues) {
      const full = Math.floor(queued / maxBatchSize);
      const rest = queued - full * maxBatchSize;
      total += full * this.batchMs(maxBatchSize) + (rest > 0 ? this.batchMs(rest) : 0);
    }
    return total;
  }
}
