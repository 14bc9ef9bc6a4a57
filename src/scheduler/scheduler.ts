/**
 * Per-task queues, dynamic batching and task choice in front of the engine.
 *
 * One batch at a time. The engine has one ORT session and one applied delta (the base weights
 * patched in place, docs/onnxruntime-facts.md §4), so batches of different tasks cannot overlap: switching task
 * means restoring one delta and applying another (an "activation"). The scheduler therefore
 * runs one `runBatch` at a time and tries to keep activations rare without letting any request
 * wait without bound.
 *
 * Batch formation. A batch holds up to `maxBatchSize` requests of one task, chosen overdue-first
 * then by priority (see task-queue.ts). Once a task is chosen, the batch starts at once if it is
 * full or another task's queue is also waiting (waiting would only delay them); otherwise it waits
 * for more requests until its oldest request has waited `maxQueueDelayMs` (Triton's
 * max_queue_delay). Submissions are picked up on the next microtask, so a synchronous burst of
 * submits forms one batch even with `maxQueueDelayMs = 0`.
 *
 * Task choice (task-choice.ts). Keep the active task while it has work; switch as soon as any
 * other queue's oldest request has waited `forcedSwitchWaitMs` (aging), then serve the
 * overdue queue with the oldest request; when the active task has no work, choose by (priority,
 * queue length, oldest wait). The active task is the one `isActive(task)` reports, or else the task of the
 * last batch run.
 *
 * Worst-case wait. Let R be the longest runBatch time, B = maxBatchSize, W =
 * forcedSwitchWaitMs, D = maxQueueDelayMs, N the number of tasks with queued work and
 * K the number of requests (any task) queued before request r (or at the same clock reading)
 * and still queued when r becomes overdue (K < maxQueuedTotal). Then r starts running within
 *
 *     W + D + R · (⌈(K + 1) / B⌉ + N)
 *
 * Sketch: after waiting W, r's queue is overdue. The batch running then ends within R. From
 * then on every choice serves the overdue queue whose oldest request is oldest, which is older
 * than r, and takes its overdue requests oldest first: each batch either takes B requests older
 * than r, or all such requests of one queue (at most once per queue). So at most ⌈(K + 1)/B⌉ +
 * N − 1 batches precede r's. D covers a batch waiting to fill when r's queue is the only one.
 * Requests arriving after r are newer and never overtake it; expiry and aborts only remove work.
 * With maxQueuedTotal = 1000, B = 8, N = 10, R = 60 ms, W = 500 ms, D = 5 ms, that is ≤ 8.6 s;
 * a deadline shorter than that turns into DS_ERR_DEADLINE_EXCEEDED, not an unbounded wait. R
 * itself must be bounded by the engine (its inference timeout).
 *
 * Mixed batches (option `mixable`). An engine that runs requests of many tasks in one forward
 * (each request adding its own task's delta) says which tasks it can serve that way. The queues
 * of those mixable tasks then count as ONE queue in task choice, the mixed queue: its size is
 * their sum, its oldest request the oldest of theirs, its priority the highest of theirs. It is
 * the active queue whenever the last batch was mixed (a mixed batch after a mixed batch is no
 * activation; after a mixed batch no single task counts as active). When it is chosen, the
 * batch takes up to B requests from all mixable queues in the order a per-task batch uses
 * (overdue first, oldest first; then priority; then arrival) and, with `maxBatchTokens`, stops
 * before the first request that would take it over the token budget (mixed-batch.ts); it runs
 * as `runBatch(MIXED_BATCH, requests, tasks)`. Tasks that are not mixable keep per-task batches
 * beside it, aging into forced switches as above. The fill wait is the same rule with the mixed
 * queue as the queue: start at once when full (B requests or the token budget) or when a
 * per-task queue waits, else when its oldest request has waited D.
 *
 * Worst-case wait with mixed batches. The bound and its sketch hold with the mixed queue as one
 * queue: N becomes N_nm + 1, with N_nm the number of non-mixable tasks with queued work, and B
 * becomes B_m, the fewest requests a mixed batch takes while more requests queued no later than
 * r wait: B_m = min(B, max(1, ⌊T / τ⌋)), with T = maxBatchTokens and τ the most tokens of any
 * queued mixable request (B_m = B without a token budget). Then r starts running within
 *
 *     W + D + R · (⌈(K + 1) / B_m⌉ + N_nm + 1)
 *
 * Sketch: a mixed batch is a prefix of its order, and once r is overdue, every request queued
 * no later than r is overdue too and ahead of r in that order. So a mixed batch that runs after
 * r is overdue takes B_m requests queued no later than r, or all the mixable ones (r among them
 * if r is mixable): a stop at B takes B ≥ B_m, and a stop for the budget after k requests means
 * (k + 1) · τ > T, so k ≥ ⌊T / τ⌋. Per-task batches take B ≥ B_m as before. The rest of the
 * sketch is unchanged. It assumes a task's mixability does not change while r waits (a task
 * changing sides counts as one more queue). With B = 8, T = 1024 tokens, τ = 512 (B_m = 2),
 * K = 999, N_nm = 9, R = 60 ms, W = 500 ms, D = 5 ms: ≤ 31.1 s; without a budget (B_m = 8),
 * ≤ 8.6 s, as for per-task batches.
 *
 * Backpressure. Over `maxQueuedPerTask` or `maxQueuedTotal` a submit is rejected at once with
 * DS_ERR_OVERLOADED carrying `retryAfterSeconds`: the time the queued requests need to drain,
 * batched as the pump will batch them (per-task queues in batches of their own, mixable tasks
 * together) and priced by a batch-cost model fitted to the batches that ran (./batch-cost.ts:
 * fixed cost per batch + cost per request), at least 1 s, at most 30 s. Before any batch has been
 * measured it says 1 s rather than guess high: a guess of a second per batch once told clients
 * of a queue that drained in 2.5 s to come back after 32 s.
 * A queued request whose deadline passes is rejected by its own timer with
 * DS_ERR_DEADLINE_EXCEEDED and never runs; an aborted one is rejected with the signal's reason.
 * Once its batch has started a request is no longer affected by its deadline or signal.
 */
import {
  DS_ERR_DEADLINE_EXCEEDED,
  DS_ERR_OVERLOADED,
  DS_ERR_SCHEDULER_BAD_BATCH_RESULT,
  DS_ERR_SCHEDULER_BAD_OPTION,
  DS_ERR_SHUTTING_DOWN,
} from '../core/errors.js';
import { withRetryAfter, type RetryableError } from '../core/retry-after.js';
import { integerOption, numberOption } from '../core/options.js';
import { chooseTask, type ChoiceReason, type QueueView, type TaskChoice } from './task-choice.js';
import { fillMixedBatch, type TokenBudget } from './mixed-batch.js';
import { TaskQueue, type QueuedRequest } from './task-queue.js';
import { BatchCostModel } from './batch-cost.js';

/**
 * The task name `runBatch` gets, and batch events report, for a mixed batch (requests of many
 * tasks in one run; each request's task is in the request and in runBatch's `tasks`). With the
 * `mixable` option set, no real task may carry this name.
 */
export const MIXED_BATCH = '@mixed';

export interface SchedulerOptions<Req, Res> {
  /** Largest batch handed to runBatch. Integer ≥ 1. */
  maxBatchSize: number;
  /** How long a batch may wait to fill, counted from its oldest request, ms. ≥ 0. */
  maxQueueDelayMs: number;
  /** Requests queued per task before submits for that task are rejected. Integer ≥ 1. */
  maxQueuedPerTask: number;
  /** Requests queued in all before any submit is rejected. Integer ≥ 1. */
  maxQueuedTotal: number;
  /** Age of another task's oldest request that forces a switch away from the active task, ms. ≥ 0. */
  forcedSwitchWaitMs: number;
  /**
   * Runs one batch; resolves to one result per request, in order. `task` is the batch's task, or
   * MIXED_BATCH for a mixed batch; `tasks[i]` is the task of `requests[i]` (all equal to `task`
   * in a per-task batch).
   */
  runBatch: (task: string, requests: Req[], tasks: string[]) => Promise<Res[]>;
  /** Whether `task`'s delta is the one applied in the engine (must not throw). Default: the task of the last batch. */
  isActive?: (task: string) => boolean;
  /**
   * Whether `task`'s requests may share a batch with other tasks' (must not throw; a throw counts
   * as not mixable). When the next batch's task is mixable, the batch is filled from the queues
   * of all mixable tasks and runs as MIXED_BATCH; the others keep per-task batches. Asked again
   * at every batch, so a task may change sides (e.g. when its delta turns out not to be
   * servable per request). Default: no task is mixable, every batch holds one task.
   */
  mixable?: (task: string) => boolean;
  /**
   * Token budget of a mixed batch: it stops taking requests when the next one would take it
   * over this many tokens (it always takes one). Needs `tokensOf`. Per-task batches are bounded
   * by `maxBatchSize` alone. Default: no budget. > 0.
   */
  maxBatchTokens?: number;
  /**
   * Tokens of one request, for `maxBatchTokens`: asked once, at submit. A throw rejects that
   * submit with the thrown error; a result that is not a finite number ≥ 0 rejects it with
   * DS_ERR_SCHEDULER_BAD_OPTION.
   */
  tokensOf?: (request: Req) => number;
  /** Called synchronously for each event; must not throw (a throw is turned into a process warning). */
  onEvent?: (event: SchedulerEvent) => void;
  /** Clock in epoch ms (deadlines are epoch ms). Default Date.now. */
  now?: () => number;
}

export interface SubmitOptions {
  /** Epoch ms; a request still queued then is rejected with DS_ERR_DEADLINE_EXCEEDED. */
  deadline?: number;
  /** Higher first, within a task and when choosing among tasks. Default 0. */
  priority?: number;
  /** Aborting removes the request from its queue (no effect once its batch has started). */
  signal?: AbortSignal;
}

export type SchedulerEvent =
  | { readonly type: 'enqueued'; readonly task: string; readonly depth: number; readonly queued: number }
  | { readonly type: 'rejected'; readonly task: string; readonly reason: 'overloaded' | 'shutting-down' | 'deadline' }
  | { readonly type: 'expired'; readonly task: string; readonly waitMs: number }
  | { readonly type: 'aborted'; readonly task: string; readonly waitMs: number }
  /** One per request when its batch starts: its queue wait. */
  | { readonly type: 'dequeued'; readonly task: string; readonly waitMs: number; readonly priority: number }
  | {
      readonly type: 'batch';
      /** The batch's task, or MIXED_BATCH. */
      readonly task: string;
      readonly size: number;
      /** Mixed batches only: how many distinct tasks the batch held. */
      readonly tasks?: number;
      readonly ms: number;
      readonly ok: boolean;
      /** The engine had to switch to this task's delta (for a mixed batch: the batch before was not mixed). */
      readonly activation: boolean;
      readonly choice: ChoiceReason;
    };

export interface SchedulerStats {
  readonly queued: number;
  readonly queuedByTask: Readonly<Record<string, number>>;
  /** Size of the batch running now (0 when idle). */
  readonly running: number;
  readonly batches: number;
  /** Of `batches`, how many were mixed. */
  readonly mixedBatches: number;
  /** `batchSizes[n]`: batches of n requests. */
  readonly batchSizes: readonly number[];
  readonly activations: number;
  readonly forcedSwitches: number;
  readonly failedBatches: number;
  /**
   * Requests whose batch resolved. The scheduler sees only what runBatch returns: a request
   * the engine answered "not resident" (and queues again) counts here too, in every mode; the
   * engine's own `batch` events count only the requests that ran.
   */
  readonly completed: number;
  readonly rejectedOverloaded: number;
  readonly expired: number;
  readonly aborted: number;
}

/** DS_ERR_OVERLOADED as thrown here: with the delay a client should wait before retrying. */
export type OverloadedError = RetryableError<InstanceType<typeof DS_ERR_OVERLOADED>>;

interface Pending<Req, Res> extends QueuedRequest<Req> {
  readonly resolve: (result: Res) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  /** `tokensOf(request)` when there is a token budget, else 0. */
  readonly tokens: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  onAbort: (() => void) | undefined;
}

const MAX_RETRY_AFTER_S = 30;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A drain estimate is reused this long (ms): it walks every queue. */
const DRAIN_ESTIMATE_REUSE_MS = 50;

export class Scheduler<Req, Res> {
  private readonly maxBatchSize: number;
  private readonly maxQueueDelayMs: number;
  private readonly maxQueuedPerTask: number;
  private readonly maxQueuedTotal: number;
  private readonly forcedSwitchWaitMs: number;
  private readonly runBatch: SchedulerOptions<Req, Res>['runBatch'];
  private readonly isActiveOption: ((task: string) => boolean) | undefined;
  private readonly mixableOption: ((task: string) => boolean) | undefined;
  private readonly budget: TokenBudget<Pending<Req, Res>> | undefined;
  private readonly tokensOf: ((request: Req) => number) | undefined;
  private readonly onEvent: SchedulerOptions<Req, Res>['onEvent'];
  private readonly now: () => number;

  private readonly queues = new Map<string, TaskQueue<Pending<Req, Res>>>();
  private queued = 0;
  private running: { task: string; size: number } | undefined;
  private lastTask: string | undefined;
  private lastBatchMixed = false;
  private closed = false;
  private seq = 0;
  private pumpQueued = false;
  private fillTimer: ReturnType<typeof setTimeout> | undefined;
  private drainWaiters: (() => void)[] = [];
  /** Batch time as a function of batch size, learned from the batches that ran (for Retry-After). */
  private readonly batchCost = new BatchCostModel();
  private drainEstimate: { readonly ms: number; readonly at: number } | undefined;
  private readonly batchSizes: number[];
  private counters = {
    batches: 0,
    mixedBatches: 0,
    activations: 0,
    forcedSwitches: 0,
    failedBatches: 0,
    completed: 0,
    rejectedOverloaded: 0,
    expired: 0,
    aborted: 0,
  };

  constructor(options: SchedulerOptions<Req, Res>) {
    const bad = DS_ERR_SCHEDULER_BAD_OPTION;
    this.maxBatchSize = integerOption(bad, 'maxBatchSize', options.maxBatchSize, 1);
    this.maxQueueDelayMs = numberOption(bad, 'maxQueueDelayMs', options.maxQueueDelayMs, 0);
    this.maxQueuedPerTask = integerOption(bad, 'maxQueuedPerTask', options.maxQueuedPerTask, 1);
    this.maxQueuedTotal = integerOption(bad, 'maxQueuedTotal', options.maxQueuedTotal, 1);
    this.forcedSwitchWaitMs = numberOption(bad, 'forcedSwitchWaitMs', options.forcedSwitchWaitMs, 0);
    if (typeof options.runBatch !== 'function')
      throw new DS_ERR_SCHEDULER_BAD_OPTION('runBatch', 'expected a function');
    for (const name of ['isActive', 'mixable', 'tokensOf'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function')
        throw new DS_ERR_SCHEDULER_BAD_OPTION(name, 'expected a function');
    }
    if (options.maxBatchTokens !== undefined) {
      const maxTokens = numberOption(bad, 'maxBatchTokens', options.maxBatchTokens, Number.MIN_VALUE);
      if (options.tokensOf === undefined)
        throw new DS_ERR_SCHEDULER_BAD_OPTION('maxBatchTokens', 'needs tokensOf to count the tokens of a request');
      this.budget = { maxTokens, tokensOf: (item) => item.tokens };
      this.tokensOf = options.tokensOf;
    }
    this.runBatch = options.runBatch;
    this.isActiveOption = options.isActive;
    this.mixableOption = options.mixable;
    this.onEvent = options.onEvent;
    this.now = options.now ?? Date.now;
    this.batchSizes = new Array<number>(this.maxBatchSize + 1).fill(0);
  }

  /**
   * DS_ERR_OVERLOADED (with Retry-After) when the queues are full now, else null: lets the HTTP
   * layer shed a request before it reads and parses the body, so overload costs little.
   * `submit` still checks every bound itself.
   */
  admissionError(): OverloadedError | null {
    if (this.queued < this.maxQueuedTotal) return null;
    return this.overloaded('*', `${this.queued} requests are queued (maxQueuedTotal ${this.maxQueuedTotal})`);
  }

  submit(task: string, request: Req, options: SubmitOptions = {}): Promise<Res> {
    const { deadline, signal } = options;
    const priority = options.priority ?? 0;
    if (this.closed) {
      this.emit({ type: 'rejected', task, reason: 'shutting-down' });
      return Promise.reject(new DS_ERR_SHUTTING_DOWN('new requests are no longer accepted'));
    }
    if (!Number.isFinite(priority))
      return Promise.reject(new DS_ERR_SCHEDULER_BAD_OPTION('priority', `expected a finite number, got ${priority}`));
    if (deadline !== undefined && !Number.isFinite(deadline)) {
      return Promise.reject(
        new DS_ERR_SCHEDULER_BAD_OPTION('deadline', `expected epoch milliseconds, got ${deadline}`),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (task === MIXED_BATCH && this.mixableOption !== undefined) {
      return Promise.reject(
        new DS_ERR_SCHEDULER_BAD_OPTION('task', `${MIXED_BATCH} names mixed batches and cannot be a task`),
      );
    }
    let tokens = 0;
    if (this.tokensOf !== undefined) {
      try {
        tokens = this.tokensOf(request);
      } catch (error) {
        return Promise.reject(error);
      }
      if (typeof tokens !== 'number' || !Number.isFinite(tokens) || tokens < 0) {
        return Promise.reject(
          new DS_ERR_SCHEDULER_BAD_OPTION(
            'tokensOf',
            `returned ${String(tokens)} for a request of task ${task}; expected a finite number ≥ 0`,
          ),
        );
      }
    }
    const now = this.now();
    if (deadline !== undefined && deadline <= now) {
      this.emit({ type: 'rejected', task, reason: 'deadline' });
      return Promise.reject(new DS_ERR_DEADLINE_EXCEEDED(task, 0, 'in the queue'));
    }
    const depth = this.queues.get(task)?.size ?? 0;
    if (depth >= this.maxQueuedPerTask) {
      return Promise.reject(
        this.overloaded(task, `task ${task} has ${depth} queued requests (maxQueuedPerTask ${this.maxQueuedPerTask})`),
      );
    }
    if (this.queued >= this.maxQueuedTotal) {
      return Promise.reject(
        this.overloaded(task, `${this.queued} requests are queued (maxQueuedTotal ${this.maxQueuedTotal})`),
      );
    }

    return new Promise<Res>((resolve, reject) => {
      const item: Pending<Req, Res> = {
        task,
        request,
        priority,
        deadline,
        enqueuedAt: now,
        seq: this.seq++,
        resolve,
        reject,
        signal,
        tokens,
        timer: undefined,
        onAbort: undefined,
      };
      let queue = this.queues.get(task);
      if (queue === undefined) {
        queue = new TaskQueue(task);
        this.queues.set(task, queue);
      }
      queue.push(item);
      this.queued++;
      if (deadline !== undefined) this.armDeadline(item, deadline - now);
      if (signal !== undefined) {
        item.onAbort = () => this.abort(item);
        signal.addEventListener('abort', item.onAbort, { once: true });
      }
      this.emit({ type: 'enqueued', task, depth: queue.size, queued: this.queued });
      this.schedulePump();
    });
  }

  /** Resolves once nothing is queued or running. */
  drain(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Refuses new submissions (DS_ERR_SHUTTING_DOWN) and resolves when the queued work has run,
   * or, with `rejectQueued`, rejects the queued requests with DS_ERR_SHUTTING_DOWN and resolves
   * when the running batch ends.
   */
  close(options: { rejectQueued?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (options.rejectQueued === true) {
      for (const queue of [...this.queues.values()]) {
        for (const item of [...queue.all()]) {
          this.unqueue(item);
          item.reject(new DS_ERR_SHUTTING_DOWN('the request was queued when the server stopped'));
        }
      }
    }
    this.schedulePump(); // a batch waiting to fill runs now
    return this.drain();
  }

  stats(): SchedulerStats {
    const queuedByTask: Record<string, number> = {};
    for (const [task, queue] of this.queues) queuedByTask[task] = queue.size;
    return {
      ...this.counters,
      queued: this.queued,
      queuedByTask,
      running: this.running?.size ?? 0,
      batchSizes: [...this.batchSizes],
    };
  }

  private isActive(task: string): boolean {
    if (this.isActiveOption === undefined) return task === this.lastTask;
    try {
      return this.isActiveOption(task);
    } catch (error) {
      // A throw here would stop the pump for good; treat the task as inactive instead.
      process.emitWarning(`scheduler isActive(${task}) threw: ${String(error)}`);
      return false;
    }
  }

  private isMixable(task: string): boolean {
    if (this.mixableOption === undefined) return false;
    try {
      return this.mixableOption(task) === true;
    } catch (error) {
      // Same reason as isActive; a task served per task is always served correctly.
      process.emitWarning(`scheduler mixable(${task}) threw: ${String(error)}`);
      return false;
    }
  }

  /**
   * Whether choosing `view` costs no activation. With mixing on, exactly one side is active:
   * the mixable queues (as one view) after a mixed batch, else the task `isActive` reports.
   * Two active views could starve each other, since aging only forces a switch to an inactive one.
   */
  private viewIsActive(view: string): boolean {
    if (this.mixableOption === undefined) return this.isActive(view);
    if (view === MIXED_BATCH) return this.lastBatchMixed;
    return !this.lastBatchMixed && this.isActive(view);
  }

  private isIdle(): boolean {
    return this.running === undefined && this.queued === 0;
  }

  private overloaded(task: string, reason: string): OverloadedError {
    this.counters.rejectedOverloaded++;
    this.emit({ type: 'rejected', task, reason: 'overloaded' });
    const estimateMs = this.drainEstimateMs();
    const retryAfterSeconds = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(estimateMs / 1000)));
    return withRetryAfter(new DS_ERR_OVERLOADED(reason, retryAfterSeconds), retryAfterSeconds);
  }

  /**
   * How long the backlog takes to drain, batched as the pump will batch it: each task with
   * per-task batches on its own, the mixable tasks together (issue 22, item 11). 0 before any
   * batch was measured.
   */
  private drainEstimateMs(): number {
    if (!this.batchCost.measured) return 0;
    // Walks every queue: under overload every refused request asks, so reuse it for a moment.
    const now = this.now();
    if (this.drainEstimate !== undefined && now - this.drainEstimate.at < DRAIN_ESTIMATE_REUSE_MS) {
      return this.drainEstimate.ms;
    }
    const ms = this.computeDrainMs();
    this.drainEstimate = { ms, at: now };
    return ms;
  }

  private computeDrainMs(): number {
    const groups: number[] = [];
    let mixable = 0;
    for (const queue of this.queues.values()) {
      if (this.isMixable(queue.task)) mixable += queue.size;
      else groups.push(queue.size);
    }
    if (mixable > 0) groups.push(mixable);
    return this.batchCost.drainMs(groups, this.maxBatchSize, this.running?.size ?? 0);
  }

  /** Node timers overflow past 2^31 − 1 ms (they would fire at once), so far deadlines re-arm. */
  private armDeadline(item: Pending<Req, Res>, delayMs: number): void {
    item.timer = setTimeout(() => this.expire(item), Math.min(Math.max(delayMs, 0), MAX_TIMER_MS));
  }

  private expire(item: Pending<Req, Res>): void {
    item.timer = undefined;
    const remaining = (item.deadline ?? 0) - this.now();
    if (remaining > 0) {
      this.armDeadline(item, remaining);
      return;
    }
    if (!this.unqueue(item)) return;
    const waitMs = this.now() - item.enqueuedAt;
    this.counters.expired++;
    this.emit({ type: 'expired', task: item.task, waitMs });
    item.reject(new DS_ERR_DEADLINE_EXCEEDED(item.task, Math.round(waitMs), 'in the queue'));
    this.schedulePump();
  }

  private abort(item: Pending<Req, Res>): void {
    if (!this.unqueue(item)) return;
    this.counters.aborted++;
    this.emit({ type: 'aborted', task: item.task, waitMs: this.now() - item.enqueuedAt });
    item.reject(item.signal?.reason);
    this.schedulePump();
  }

  /** Takes a queued item out of its queue and detaches its timer and abort listener. False if it was not queued. */
  private unqueue(item: Pending<Req, Res>): boolean {
    const queue = this.queues.get(item.task);
    if (queue === undefined || !queue.remove(item)) return false;
    if (queue.size === 0) this.queues.delete(item.task);
    this.queued--;
    this.detach(item);
    return true;
  }

  private detach(item: Pending<Req, Res>): void {
    if (item.timer !== undefined) clearTimeout(item.timer);
    if (item.onAbort !== undefined) item.signal?.removeEventListener('abort', item.onAbort);
    item.timer = undefined;
    item.onAbort = undefined;
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.fillTimer !== undefined) {
      clearTimeout(this.fillTimer);
      this.fillTimer = undefined;
    }
    if (this.running !== undefined) return;
    const now = this.now();
    const { views, mixed } = this.queueViews(now);
    const choice = chooseTask(views, (view) => this.viewIsActive(view), now, this.forcedSwitchWaitMs);
    if (choice === undefined) {
      this.settleDrainWaiters();
      return;
    }
    const othersWaiting = views.some((v) => v.task !== choice.task && v.size > 0);
    if (mixed !== undefined && choice.task === MIXED_BATCH) {
      const candidates = mixed.queues.flatMap((q) => q.all());
      const { batch, full } = fillMixedBatch(candidates, this.maxBatchSize, now, this.forcedSwitchWaitMs, this.budget);
      if (this.waitToFill(full || othersWaiting, mixed.view.oldestEnqueuedAt, now)) return;
      for (const item of batch) this.queues.get(item.task)!.remove(item);
      for (const queue of mixed.queues) if (queue.size === 0) this.queues.delete(queue.task);
      this.queued -= batch.length;
      void this.run(choice, batch, now, true);
      return;
    }
    // chooseTask picks from views built from this.queues in this same synchronous pass.
    const queue = this.queues.get(choice.task)!;
    if (this.waitToFill(queue.size >= this.maxBatchSize || othersWaiting, queue.oldestEnqueuedAt() ?? now, now)) return;
    const batch = queue.takeBatch(this.maxBatchSize, now, this.forcedSwitchWaitMs);
    if (queue.size === 0) this.queues.delete(choice.task);
    this.queued -= batch.length;
    void this.run(choice, batch, now, false);
  }

  /**
   * One view per queue, except that the queues of mixable tasks make one view named
   * MIXED_BATCH (size: their sum; oldest: the oldest of theirs; priority: the highest).
   */
  private queueViews(now: number): {
    views: QueueView[];
    mixed: { view: QueueView; queues: TaskQueue<Pending<Req, Res>>[] } | undefined;
  } {
    const views: QueueView[] = [];
    const mixedQueues: TaskQueue<Pending<Req, Res>>[] = [];
    let mixedView: QueueView | undefined;
    for (const q of this.queues.values()) {
      const view = {
        task: q.task,
        size: q.size,
        oldestEnqueuedAt: q.oldestEnqueuedAt() ?? now,
        topPriority: q.topPriority(),
      };
      if (!this.isMixable(q.task)) {
        views.push(view);
        continue;
      }
      mixedQueues.push(q);
      mixedView = {
        task: MIXED_BATCH,
        size: (mixedView?.size ?? 0) + view.size,
        oldestEnqueuedAt: Math.min(mixedView?.oldestEnqueuedAt ?? Infinity, view.oldestEnqueuedAt),
        topPriority: Math.max(mixedView?.topPriority ?? -Infinity, view.topPriority),
      };
    }
    if (mixedView === undefined) return { views, mixed: undefined };
    views.push(mixedView);
    return { views, mixed: { view: mixedView, queues: mixedQueues } };
  }

  /**
   * The batch-fill wait: unless it should start now (it is full, or other queues wait and
   * waiting would only delay them), a batch waits until its oldest request has waited
   * maxQueueDelayMs. True when it waits (a timer pumps again then).
   */
  private waitToFill(startNow: boolean, oldestEnqueuedAt: number, now: number): boolean {
    const fillBy = oldestEnqueuedAt + this.maxQueueDelayMs;
    // Once closed no request can join a batch: waiting to fill would only delay the shutdown.
    if (startNow || this.closed || now >= fillBy) return false;
    this.fillTimer = setTimeout(() => {
      this.fillTimer = undefined;
      this.pump();
    }, fillBy - now);
    return true;
  }

  private async run(choice: TaskChoice, batch: Pending<Req, Res>[], startedAt: number, mixed: boolean): Promise<void> {
    const { task } = choice;
    const tasks = batch.map((item) => item.task);
    const activation = mixed ? !this.lastBatchMixed : !this.isActive(task);
    if (activation) this.counters.activations++;
    if (choice.reason === 'forced') this.counters.forcedSwitches++;
    this.running = { task, size: batch.length };
    for (const item of batch) {
      this.detach(item);
      this.emit({ type: 'dequeued', task: item.task, waitMs: startedAt - item.enqueuedAt, priority: item.priority });
    }

    let results: Res[] | undefined;
    let failure: unknown;
    let failed = false;
    try {
      results = await this.runBatch(
        task,
        batch.map((item) => item.request),
        tasks,
      );
      if (!Array.isArray(results) || results.length !== batch.length) {
        failed = true;
        failure = new DS_ERR_SCHEDULER_BAD_BATCH_RESULT(
          task,
          Array.isArray(results) ? results.length : typeof results,
          batch.length,
        );
      }
    } catch (error) {
      failed = true;
      failure = error;
    }
    const ms = this.now() - startedAt;
    this.batchCost.record(batch.length, ms);
    this.lastTask = task;
    this.lastBatchMixed = mixed;
    this.running = undefined;
    this.counters.batches++;
    if (mixed) this.counters.mixedBatches++;
    this.batchSizes[batch.length] = (this.batchSizes[batch.length] ?? 0) + 1;
    if (failed) this.counters.failedBatches++;
    else this.counters.completed += batch.length;
    const mixedDetail = mixed ? { tasks: new Set(tasks).size } : {};
    this.emit({
      type: 'batch',
      task,
      size: batch.length,
      ...mixedDetail,
      ms,
      ok: !failed,
      activation,
      choice: choice.reason,
    });
    batch.forEach((item, i) => (failed ? item.reject(failure) : item.resolve((results as Res[])[i] as Res)));
    this.pump();
  }

  private settleDrainWaiters(): void {
    if (!this.isIdle() || this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private emit(event: SchedulerEvent): void {
    if (this.onEvent === undefined) return;
    try {
      this.onEvent(event);
    } catch (error) {
      process.emitWarning(`scheduler onEvent listener threw on a ${event.type} event: ${String(error)}`);
    }
  }
}
