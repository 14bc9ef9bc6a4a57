/**
 * Turns the engine's observability events into metric points: its own (worker start and
 * exit, batches), the worker's cache and activation events, and the scheduler's, which the
 * engine forwards wrapped in `{ type: 'scheduler' }`. Durations arrive already measured; this
 * module only maps each event to its instruments and labels.
 *
 * Cache events carry the delta cache's event type in `kind` (see `CacheEvent` in
 * engine/protocol.ts): `miss-inflight` joined a load already running and counts as a miss (it
 * waited for the load); a `load` records its fetch, verify and decode phases and its total.
 */
import type { Attributes, Histogram } from '@opentelemetry/api';
import type { AnyEngineEvent, EngineLifecycleEvent } from '../engine/engine.js';
import type { CacheEvent } from '../engine/protocol.js';
import type { Instruments } from './instruments.js';
import { taskNameOfKey, type BoundedLabels } from './labels.js';
import type { QueueDropReason } from './metric-names.js';

export type { AnyEngineEvent };
type SchedulerEvent = Extract<EngineLifecycleEvent, { type: 'scheduler' }>['event'];

/** A deadline that passed before submit and one that passed in the queue are one reason to an operator. */
const DROP_REASONS: Record<Extract<SchedulerEvent, { type: 'rejected' }>['reason'], QueueDropReason> = {
  overloaded: 'overloaded',
  'shutting-down': 'shutting_down',
  deadline: 'deadline',
};

export class EngineEventRecorder {
  private workersStarted = 0;

  constructor(
    private readonly instruments: Instruments,
    private readonly tasks: BoundedLabels,
  ) {}

  record(event: AnyEngineEvent): void {
    switch (event.type) {
      case 'cache':
        this.recordCache(event);
        break;
      case 'activation': {
        const labels = { task: this.taskOf(event.key) };
        this.instruments.activations.add(1, labels);
        recordMs(this.instruments.activationDuration, event.ms, labels);
        break;
      }
      case 'batch': {
        const labels = { task: this.taskOf(event.key) };
        this.instruments.batchSize.record(event.size, labels);
        recordMs(this.instruments.inferenceDuration, event.inferMs, labels);
        if (event.tasks !== undefined) this.instruments.batchTasks.record(event.tasks, {});
        break;
      }
      case 'mixed-fallback':
        this.instruments.mixedFallbacks.add(1, { task: this.taskOf(event.key) });
        break;
      case 'delta-reload':
        this.instruments.deltaReloads.add(1, { task: this.taskOf(event.key) });
        break;
      case 'scheduler':
        this.recordScheduler(event.event);
        break;
      case 'worker-started':
        // The engine emits this for its first worker too; only the replacements are restarts.
        if (this.workersStarted > 0) this.instruments.engineRestarts.add(1);
        this.workersStarted++;
        recordMs(this.instruments.engineStartDuration, event.ms, {});
        break;
      case 'worker-exited': // covered by the restart that follows and by deltaserve_engine_ready
      case 'dropped': // the worker's evict event, if it was cached, is counted
        break;
    }
  }

  private recordCache(event: CacheEvent): void {
    const task = this.taskOf(event.key);
    switch (event.kind) {
      case 'hit':
        this.instruments.cacheHits.add(1, { task });
        break;
      case 'miss':
      case 'miss-inflight': // joined a load already in flight: still waited for it
        this.instruments.cacheMisses.add(1, { task });
        break;
      case 'load': {
        const { fetch, verify, decode } = event.phases;
        for (const [phase, ms] of [
          ['fetch', fetch],
          ['verify', verify],
          ['decode', decode],
          ['total', event.ms],
        ] as const) {
          recordMs(this.instruments.deltaLoadDuration, ms, { task, phase });
        }
        break;
      }
      case 'load-failed':
        this.instruments.deltaLoadFailures.add(1, { task });
        break;
      case 'evict':
        this.instruments.cacheEvictions.add(1, { task });
        break;
    }
  }

  /**
   * The scheduler's own `batch` event is skipped: the engine's `batch` carries the same batch
   * with its inference time, and counting both would double `deltaserve_batch_size_count`.
   */
  private recordScheduler(event: SchedulerEvent): void {
    switch (event.type) {
      case 'dequeued':
        recordMs(this.instruments.queueWait, event.waitMs, { task: this.taskOf(event.task) });
        break;
      case 'rejected':
        this.instruments.queueDropped.add(1, { task: this.taskOf(event.task), reason: DROP_REASONS[event.reason] });
        break;
      case 'expired':
        this.instruments.queueDropped.add(1, { task: this.taskOf(event.task), reason: 'deadline' });
        break;
      case 'aborted':
        this.instruments.queueDropped.add(1, { task: this.taskOf(event.task), reason: 'aborted' });
        break;
      case 'enqueued':
      case 'batch':
        break; // queue depth is read from the scheduler's stats; batches from the engine's batch event (above)
    }
  }

  private taskOf(key: string | null): string {
    return this.tasks.label(taskNameOfKey(key));
  }
}

/**
 * Records a duration measured in milliseconds in a seconds histogram. A negative reading (a
 * clock step between two timestamps) counts as 0 rather than vanishing from `_count`; a
 * non-finite one is a bug upstream and would poison `_sum`, so it is dropped.
 */
function recordMs(histogram: Histogram, ms: number, labels: Attributes): void {
  if (!Number.isFinite(ms)) return;
  histogram.record(Math.max(0, ms) / 1000, labels);
}
