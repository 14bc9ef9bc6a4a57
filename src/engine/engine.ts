/**
 * The engine as the HTTP layer sees it: `infer(task, inputs)` and the cache verbs, with the
 * worker thread, its restarts, the scheduler and delta residency hidden behind them.
 *
 * Data path for one request: the task's queue → a batch (of that task; in mixed mode, of any
 * tasks) → the worker leases the batch's deltas from its cache and runs it → one result per
 * request, in every mode: its outputs, or "not resident" with its inputs handed back.
 *
 * Residency. The worker's cache is the truth; this side keeps a hint of it from the cache's
 * events (`resident`). A request whose delta is not known to be resident waits for its load
 * outside the queue (the worker fetches, verifies, decodes and caches between runs, so other
 * tasks keep running) and only then queues: the queues, and so mixed batches, are filled with
 * requests whose deltas are resident, and the rest load in the background. While any request
 * of a task is queued or running the engine `hold`s its delta in the worker (a lease), so no
 * other load evicts it before the batch runs. A request still finds its delta gone when it was
 * dropped on request (unload, retire) or the hint was stale; it never fails for that: it waits,
 * within its deadline, while the delta loads again, queues again, and the engine reports a
 * `delta-reload` (`deltaserve_delta_reloads_total`).
 *
 * Worker lifecycle: if the worker dies, every call in flight fails at once with
 * DS_ERR_ENGINE_CRASHED, requests arriving meanwhile fail with DS_ERR_ENGINE_NOT_READY, and a
 * new worker starts after a backoff (doubling from `restartDelayMs` up to `maxRestartDelayMs`,
 * reset after a worker has served for a minute). Pins are re-applied to the new worker. The
 * cache lives in the worker, so a restart empties it.
 */
import {
  DS_ERR_DEADLINE_EXCEEDED,
  DS_ERR_ENGINE_CRASHED,
  DS_ERR_ENGINE_NOT_READY,
  DS_ERR_TASK_UNAVAILABLE,
  isError,
} from '../core/errors.js';
import type { TaskRef } from '../deltas/types.js';
import {
  MIXED_BATCH,
  Scheduler,
  type SchedulerEvent,
  type SchedulerOptions,
  type SchedulerStats,
} from '../scheduler/index.js';
import type { ModelIO } from '../onnx/io-signature.js';
import { PerTaskTasks, type PerTaskBatching } from './per-task-batching.js';
import type { EngineEvent, LoadReply, MixedTimings, ReadyInfo, WorkerCrash, WorkerStats } from './protocol.js';
import { transferablesOf, type NamedTensors } from './tensors.js';
import { WorkerClient } from './worker-client.js';
import type { WorkerOptions } from './worker-options.js';

export interface EngineOptions {
  readonly worker: WorkerOptions;
  /** `maxBatchTokens` counts each request's first input's elements (its tokens, for token ids). */
  readonly scheduler: Omit<SchedulerOptions<Job, JobResult>, 'runBatch' | 'onEvent' | 'mixable' | 'tokensOf'>;
  readonly restartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
  readonly onEvent?: EngineListener;
}

export type EngineLifecycleEvent =
  | { readonly type: 'worker-started'; readonly ms: number }
  | { readonly type: 'worker-exited'; readonly reason: string }
  | {
      readonly type: 'batch';
      /** The batch's task (null: the base), or MIXED_KEY for a mixed batch of several. */
      readonly key: string | null;
      readonly size: number;
      readonly inferMs: number;
      /** Mixed mode: distinct tasks in the batch, and where its time went. */
      readonly tasks?: number;
      readonly timings?: MixedTimings;
    }
  /** A task's delta was dropped on request (`evict`: unload, retire), cached or not. */
  | { readonly type: 'dropped'; readonly key: string }
  /** A queued request found its task's delta gone when its batch ran; it waits for it to load again. */
  | { readonly type: 'delta-reload'; readonly key: string }
  | { readonly type: 'scheduler'; readonly event: SchedulerEvent };

/** Everything the engine reports: the worker's cache and activation events and its own. */
export type AnyEngineEvent = EngineEvent | EngineLifecycleEvent;
export type EngineListener = (event: AnyEngineEvent) => void;

export interface InferOptions {
  /** Epoch milliseconds after which the request is failed with DS_ERR_DEADLINE_EXCEEDED. */
  readonly deadline?: number;
  readonly priority?: number;
  readonly signal?: AbortSignal;
}

/**
 * Time this request spent waiting for its task's delta to load (absent when it was resident),
 * with the load's phases when this request's load did the work (or joined it).
 */
export interface LoadTimings {
  readonly ms: number;
  readonly fetchMs?: number;
  readonly verifyMs?: number;
  readonly decodeMs?: number;
}

export interface InferResult {
  readonly outputs: NamedTensors;
  /** From queueing to the start of the batch's activation (includes dispatch to the worker). */
  readonly queueMs: number;
  readonly load?: LoadTimings;
  readonly cacheHit: boolean;
  readonly activationMs: number;
  readonly batchSize: number;
  readonly inferMs: number;
}

interface Job {
  readonly task: TaskRef | null;
  /** Transferred to the worker with each try; a request handed back brings its inputs back here. */
  inputs: NamedTensors;
}
/** One request's result from its batch, the same in every mode: it ran, or its delta was not resident. */
type JobResult = Omit<InferResult, 'queueMs' | 'load' | 'cacheHit'> | typeof NOT_RESIDENT;

/** The answer for a request whose delta was not cached when its batch reached the worker. */
const NOT_RESIDENT = Symbol('not resident');

export interface EngineStats {
  readonly worker: WorkerStats | null;
  readonly queued: number;
  readonly restarts: number;
  readonly ready: boolean;
}

const BASE_QUEUE = '@base';
/** The `batch` event's key for a batch holding requests of several tasks. */
export const MIXED_KEY = MIXED_BATCH;

export class Engine {
  private client: WorkerClient | null = null;
  private info: ReadyInfo | null = null;
  private readonly scheduler: Scheduler<Job, JobResult>;
  private readonly pinned = new Map<string, TaskRef>();
  private readonly loading = new Map<string, Promise<LoadReply>>();
  private readonly listeners = new Set<EngineListener>();
  /** Mixed mode: tasks the worker reported it runs in per-task batches. */
  private readonly perTask = new PerTaskTasks();
  /** Tasks whose delta the worker's cache reported loaded and not since evicted (a hint). */
  private readonly resident = new Set<string>();
  /** Tasks with requests queued or running, and how many: their deltas are held in the worker. */
  private readonly holds = new Map<string, { readonly task: TaskRef; count: number }>();
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | null = null;
  private restarts = 0;
  private closed = false;

  private constructor(private readonly options: EngineOptions) {
    this.restartDelay = options.restartDelayMs ?? 200;
    this.scheduler = new Scheduler<Job, JobResult>({
      ...options.scheduler,
      runBatch: (_queue, jobs) => this.runBatch(jobs),
      onEvent: (event) => this.emit({ type: 'scheduler', event }),
      ...(options.scheduler.maxBatchTokens !== undefined && {
        tokensOf: (job: Job) => Object.values(job.inputs)[0]?.data.length ?? 0,
      }),
      // In mixed mode (configured, or what `auto` chose when the worker started), tasks found to
      // need the per-task fallback get per-task batches and everything else mixes.
      mixable: (queue: string) => this.info?.mode === 'mixed' && !this.perTask.has(queue),
    });
  }

  /** Starts the worker and waits until the base model is loaded; fails if it cannot be. */
  static async start(options: EngineOptions): Promise<Engine> {
    const engine = new Engine(options);
    await engine.spawn();
    return engine;
  }

  get ready(): boolean {
    return this.workerUp && !this.closed;
  }

  /** The worker is started and alive (also while closing: queued work still runs then). */
  private get workerUp(): boolean {
    return this.info !== null && this.client?.alive === true;
  }

  get modelIO(): ModelIO {
    if (!this.info) throw new DS_ERR_ENGINE_NOT_READY('the base model is not loaded');
    return this.info.io;
  }

  get readyInfo(): ReadyInfo | null {
    return this.info;
  }

  schedulerStats(): SchedulerStats {
    return this.scheduler.stats();
  }

  admissionError(): Error | null {
    return this.scheduler.admissionError();
  }

  /** Mixed mode: why a task runs in per-task batches; null while it mixes (and in other modes). */
  perTaskBatchingOf(key: string): PerTaskBatching | null {
    return this.perTask.of(key);
  }

  get restartCount(): number {
    return this.restarts;
  }

  /** Adds a listener for every engine event (besides `options.onEvent`); returns its removal. */
  subscribe(listener: EngineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async infer(task: TaskRef | null, inputs: NamedTensors, options: InferOptions = {}): Promise<InferResult> {
    this.assertReady();
    const started = performance.now();
    const job: Job = { task, inputs };
    if (task === null) return this.finish(await this.scheduler.submit(BASE_QUEUE, job, options), started, undefined);
    const resident = this.resident.has(task.key);
    // A cold request waits for its load before it queues: refuse it now if the queues are full,
    // as its submit would have been.
    if (!resident) {
      const overloaded = this.scheduler.admissionError();
      if (overloaded) throw overloaded;
    }
    this.hold(task);
    try {
      // Not known to be resident: load first, so the queue holds only work that can run.
      let load = resident ? undefined : await this.waitForLoad(task, options, undefined);
      for (;;) {
        const result = await this.scheduler.submit(task.key, job, options);
        if (result !== NOT_RESIDENT) return this.finish(result, started, load);
        this.emit({ type: 'delta-reload', key: task.key });
        load = await this.waitForLoad(task, options, load);
      }
    } finally {
      this.unhold(task.key);
    }
  }

  /** Loads a task's delta into the cache (a cache hit when it is there). Fails with DS_ERR_TASK_UNAVAILABLE. */
  async load(task: TaskRef): Promise<void> {
    await this.loadDelta(task);
  }

  async pin(task: TaskRef): Promise<void> {
    this.assertReady();
    try {
      await this.client!.call({ op: 'pin', task });
    } catch (error) {
      throw asUnavailable(task.key, error as Error);
    }
    this.pinned.set(task.key, task);
  }

  async unpin(key: string): Promise<void> {
    this.pinned.delete(key);
    if (this.ready) await this.client!.call({ op: 'unpin', key });
  }

  /** Unpins and drops a task's delta from the cache; running batches keep their lease. */
  async evict(key: string): Promise<void> {
    this.pinned.delete(key);
    if (this.ready) await this.client!.call({ op: 'evict', key });
    this.emit({ type: 'dropped', key });
  }

  async stats(): Promise<EngineStats> {
    const worker = this.ready ? await this.client!.call({ op: 'stats' }) : null;
    return { worker, queued: this.scheduler.stats().queued, restarts: this.restarts, ready: this.ready };
  }

  /** Replaces the worker after its current run; the engine restarts it as after a crash. */
  async restartWorker(): Promise<void> {
    await this.client?.stop();
  }

  /** Fault injection for tests and drills: the worker dies while handling its next batch. */
  async crashWorkerOnNextBatch(how: WorkerCrash = 'throw'): Promise<void> {
    this.assertReady();
    await this.client!.call({ op: 'crash-on-next-run', how });
  }

  /** Stops taking work, lets queued and running batches finish (up to `drainMs`), stops the worker. */
  async close(drainMs = 10_000): Promise<void> {
    this.closed = true;
    const drained = this.scheduler.close();
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, drainMs).unref())]);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.client?.stop();
  }

  private finish(result: JobResult, started: number, load: LoadTimings | undefined): InferResult {
    if (result === NOT_RESIDENT) throw new Error('a request of the base model came back "not resident"');
    const queueMs = Math.max(0, performance.now() - started - (load?.ms ?? 0) - result.inferMs - result.activationMs);
    return { ...result, cacheHit: !load, queueMs, ...(load && { load }) };
  }

  /** Waits (outside the queue, within the request's deadline) for the task's delta to load; adds to `load`. */
  private async waitForLoad(task: TaskRef, options: InferOptions, load: LoadTimings | undefined): Promise<LoadTimings> {
    const waitStarted = performance.now();
    const reply = await withDeadline(this.loadDelta(task), options, task.key);
    const ms = (load?.ms ?? 0) + performance.now() - waitStarted;
    const phases = reply.hit
      ? load
      : { fetchMs: reply.phases.fetch, verifyMs: reply.phases.verify, decodeMs: reply.phases.decode };
    return { ...phases, ms };
  }

  /** A request of `task` is queued or waiting for its load: keep its delta resident in the worker. */
  private hold(task: TaskRef): void {
    const held = this.holds.get(task.key);
    if (held) {
      held.count++;
      return;
    }
    this.holds.set(task.key, { task, count: 1 });
    if (this.ready) this.client!.call({ op: 'hold', task }).catch(() => undefined); // a new worker gets it in spawn()
  }

  private unhold(key: string): void {
    const held = this.holds.get(key);
    if (!held || --held.count > 0) return;
    this.holds.delete(key);
    if (this.ready) this.client!.call({ op: 'release', key }).catch(() => undefined);
  }

  /** One load per key at a time: requests waiting for the same delta share it. */
  private loadDelta(task: TaskRef): Promise<LoadReply> {
    this.assertReady();
    let loading = this.loading.get(task.key);
    if (!loading) {
      loading = this.client!.call({ op: 'load', task })
        .catch((error: Error) => {
          throw isError(error, DS_ERR_ENGINE_CRASHED) ? error : asUnavailable(task.key, error);
        })
        .finally(() => this.loading.delete(task.key));
      this.loading.set(task.key, loading);
    }
    return loading;
  }

  private emit(event: AnyEngineEvent): void {
    this.track(event);
    this.options.onEvent?.(event);
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(`engine event listener threw on a ${event.type} event: ${String(error)}`);
      }
    }
  }

  /** Keeps the residency hint and the per-task tasks in step with what the worker reports. */
  private track(event: AnyEngineEvent): void {
    this.perTask.observe(event);
    switch (event.type) {
      case 'cache':
        if (event.kind === 'load' || event.kind === 'hit') this.resident.add(event.key);
        else if (event.kind === 'evict' || event.kind === 'load-failed') this.resident.delete(event.key);
        break;
      case 'dropped':
        this.resident.delete(event.key);
        break;
      case 'worker-exited':
        this.resident.clear(); // the cache died with the worker
        break;
      default:
        break; // the other events say nothing about residency
    }
  }

  private assertReady(): void {
    if (this.closed) throw new DS_ERR_ENGINE_NOT_READY('the engine is shutting down');
    if (!this.ready) throw new DS_ERR_ENGINE_NOT_READY('the engine worker is restarting');
  }

  private async spawn(): Promise<void> {
    const started = performance.now();
    const client = new WorkerClient(this.options.worker, (event) => this.emit(event));
    this.client = client;
    this.info = null;
    const info = await client.ready;
    this.info = info;
    this.emit({ type: 'worker-started', ms: performance.now() - started });
    const servingSince = Date.now();
    void client.exit.then((error) => this.onWorkerExit(error, servingSince));
    for (const task of this.pinned.values()) {
      client.call({ op: 'pin', task }).catch(() => undefined); // reported again on the task's next request
    }
    for (const { task } of this.holds.values()) client.call({ op: 'hold', task }).catch(() => undefined);
  }

  private onWorkerExit(error: Error, servingSince: number): void {
    this.info = null;
    this.emit({ type: 'worker-exited', reason: error.message });
    if (this.closed) return;
    this.restarts++;
    if (Date.now() - servingSince > 60_000) this.restartDelay = this.options.restartDelayMs ?? 200;
    const delay = this.restartDelay;
    this.restartDelay = Math.min(this.restartDelay * 2, this.options.maxRestartDelayMs ?? 10_000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.spawn().catch(() => undefined); // a failed start exits the worker, which schedules the next try
    }, delay);
  }

  private async runBatch(jobs: Job[]): Promise<JobResult[]> {
    if (!this.workerUp) throw new DS_ERR_ENGINE_NOT_READY('the engine worker is restarting');
    const requests = jobs.map((job) => job.inputs);
    const tasks = jobs.map((job) => job.task);
    const reply = await this.client!.call({ op: 'run', tasks, requests }, transferablesOf(requests));
    // Only the requests that ran count; those handed back run in a later batch.
    const ran = reply.outcomes.filter((outcome) => outcome.kind === 'ran').length;
    const keys = new Set(tasks.filter((_, i) => reply.outcomes[i]!.kind === 'ran').map((t) => t?.key ?? null));
    if (ran > 0) {
      this.emit({
        type: 'batch',
        key: keys.size === 1 ? [...keys][0]! : MIXED_KEY,
        size: ran,
        inferMs: reply.inferMs,
        ...(reply.timings && { tasks: keys.size, timings: reply.timings }),
      });
    }
    return reply.outcomes.map((outcome, i) => {
      if (outcome.kind === 'not-resident') {
        jobs[i]!.inputs = outcome.inputs;
        return NOT_RESIDENT;
      }
      return { outputs: outcome.outputs, activationMs: reply.activation.ms, batchSize: ran, inferMs: reply.inferMs };
    });
  }
}

function asUnavailable(key: string, error: Error): Error {
  const wrapped = new DS_ERR_TASK_UNAVAILABLE(key, error.message) as Error & { cause?: unknown; reason?: string };
  wrapped.cause = error;
  wrapped.reason = (error as Error & { code?: string }).code ?? 'unknown';
  return wrapped;
}

/** Races a promise against the request's deadline and abort signal. */
function withDeadline<T>(promise: Promise<T>, options: InferOptions, what: string): Promise<T> {
  if (options.deadline === undefined && !options.signal) return promise;
  const started = Date.now();
  return new Promise<T>((resolve, reject) => {
    const timer =
      options.deadline === undefined
        ? null
        : setTimeout(
            () => reject(new DS_ERR_DEADLINE_EXCEEDED(what, Math.round(Date.now() - started), 'for its delta to load')),
            Math.max(0, options.deadline - Date.now()),
          );
    const onAbort = () => reject(options.signal!.reason ?? new Error('aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    });
  });
}
