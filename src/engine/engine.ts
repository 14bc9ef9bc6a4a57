/**
 * The engine as the HTTP layer sees it: `infer(task, inputs)` and the cache verbs, with the
 * worker thread, its restarts, the scheduler and delta residency hidden behind them.
 *
 * Data path for one request: resolve → (cold: the worker fetches, verifies, decodes and caches
 * the delta; this task's requests wait, other tasks keep running) → the task's queue →
 * a batch of that task → the worker activates the delta and runs it → results.
 *
 * Worker lifecycle: if the worker dies, every call in flight fails at once with
 * DS_ERR_ENGINE_CRASHED, requests arriving meanwhile fail with DS_ERR_ENGINE_NOT_READY, and a
 * new worker starts after a backoff (doubling from `restartDelayMs` up to `maxRestartDelayMs`,
 * reset after a worker has served for a minute). Pins are re-applied to the new worker. The
 * cache lives in the worker, so a restart empties it.
 */
import { DS_ERR_DEADLINE_EXCEEDED, DS_ERR_ENGINE_NOT_READY, DS_ERR_TASK_UNAVAILABLE } from '../core/errors.js';
import { Scheduler, type SchedulerEvent, type SchedulerOptions, type SchedulerStats } from '../scheduler/scheduler.js';
import type { ModelIO } from '../onnx/io-signature.js';
import type { EngineEvent, ReadyInfo, RunReply, TaskRef, WorkerCrash, WorkerStats } from './protocol.js';
import { transferablesOf, type NamedTensors } from './tensors.js';
import { WorkerClient } from './worker-client.js';
import type { WorkerOptions } from './worker-options.js';

export interface EngineOptions {
  readonly worker: WorkerOptions;
  readonly scheduler: Omit<SchedulerOptions<Job, JobResult>, 'runBatch' | 'onEvent'>;
  readonly restartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
  readonly onEvent?: (event: EngineEvent | EngineLifecycleEvent) => void;
}

export type EngineLifecycleEvent =
  | { readonly type: 'worker-started'; readonly ms: number }
  | { readonly type: 'worker-exited'; readonly reason: string }
  | { readonly type: 'batch'; readonly key: string | null; readonly size: number; readonly inferMs: number; readonly cacheHit: boolean }
  | { readonly type: 'scheduler'; readonly event: SchedulerEvent };

export interface InferOptions {
  /** Epoch milliseconds after which the request is failed with DS_ERR_DEADLINE_EXCEEDED. */
  readonly deadline?: number;
  readonly priority?: number;
  readonly signal?: AbortSignal;
}

/** Time this request spent waiting for its task's delta to load (absent when it was resident). */
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
  readonly switched: boolean;
  readonly batchSize: number;
  readonly inferMs: number;
}

interface Job {
  readonly task: TaskRef | null;
  readonly inputs: NamedTensors;
}
type JobResult = Omit<InferResult, 'queueMs' | 'load'>;

const BASE_QUEUE = '@base';

export class Engine {
  private client: WorkerClient | null = null;
  private info: ReadyInfo | null = null;
  private readonly scheduler: Scheduler<Job, JobResult>;
  private readonly pinned = new Map<string, TaskRef>();
  private readonly resident = new Set<string>();
  private readonly loading = new Map<string, Promise<void>>();
  private readonly lastLoadPhases = new Map<string, Omit<LoadTimings, 'ms'>>();
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | null = null;
  private restarts = 0;
  private closed = false;

  private constructor(private readonly options: EngineOptions) {
    this.restartDelay = options.restartDelayMs ?? 200;
    this.scheduler = new Scheduler<Job, JobResult>({
      ...options.scheduler,
      runBatch: (_queue, jobs) => this.runBatch(jobs),
      onEvent: (event) => options.onEvent?.({ type: 'scheduler', event }),
    });
  }

  /** Starts the worker and waits until the base model is loaded; fails if it cannot be. */
  static async start(options: EngineOptions): Promise<Engine> {
    const engine = new Engine(options);
    await engine.spawn();
    return engine;
  }

  get ready(): boolean {
    return this.info !== null && this.client?.alive === true && !this.closed;
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

  get restartCount(): number {
    return this.restarts;
  }

  async infer(task: TaskRef | null, inputs: NamedTensors, options: InferOptions = {}): Promise<InferResult> {
    this.assertReady();
    let load: LoadTimings | undefined;
    if (task && !this.resident.has(task.key)) {
      const started = performance.now();
      await withDeadline(this.load(task), options, task.key);
      load = { ...this.lastLoadPhases.get(task.key), ms: performance.now() - started };
    }
    const queued = performance.now();
    const result = await this.scheduler.submit(task?.key ?? BASE_QUEUE, { task, inputs }, options);
    const queueMs = Math.max(0, performance.now() - queued - result.inferMs - result.activationMs);
    // A request that waited for its delta's load missed the cache, even though its batch then found it there.
    return { ...result, cacheHit: result.cacheHit && !load, queueMs, ...(load && { load }) };
  }

  /** Loads a task's delta into the cache (no-op when resident). Fails with DS_ERR_TASK_UNAVAILABLE. */
  load(task: TaskRef): Promise<void> {
    this.assertReady();
    if (this.resident.has(task.key)) return Promise.resolve();
    let loading = this.loading.get(task.key);
    if (!loading) {
      loading = this.client!
        .call<void>({ op: 'load', task })
        .then(() => {
          this.resident.add(task.key);
        })
        .catch((error: Error & { code?: string }) => {
          throw error.code === 'DS_ERR_ENGINE_CRASHED' ? error : asUnavailable(task.key, error);
        })
        .finally(() => this.loading.delete(task.key));
      this.loading.set(task.key, loading);
    }
    return loading;
  }

  async pin(task: TaskRef): Promise<void> {
    this.assertReady();
    try {
      await this.client!.call<void>({ op: 'pin', task });
    } catch (error) {
      throw asUnavailable(task.key, error as Error);
    }
    this.pinned.set(task.key, task);
    this.resident.add(task.key);
  }

  async unpin(key: string): Promise<void> {
    this.pinned.delete(key);
    if (this.ready) await this.client!.call<void>({ op: 'unpin', key });
  }

  /** Unpins and drops a task's delta from the cache; running batches keep their lease. */
  async evict(key: string): Promise<void> {
    this.pinned.delete(key);
    this.resident.delete(key);
    if (this.ready) await this.client!.call<void>({ op: 'evict', key });
  }

  async stats(): Promise<{ worker: WorkerStats | null; queued: number; restarts: number; ready: boolean }> {
    const worker = this.ready ? await this.client!.call<WorkerStats>({ op: 'stats' }) : null;
    return { worker, queued: this.scheduler.stats().queued, restarts: this.restarts, ready: this.ready };
  }

  /** Replaces the worker after its current run; the engine restarts it as after a crash. */
  async restartWorker(): Promise<void> {
    await this.client?.stop();
  }

  /** Fault injection for tests and drills: the worker dies while handling its next batch. */
  async crashWorkerOnNextBatch(how: WorkerCrash = 'throw'): Promise<void> {
    this.assertReady();
    await this.client!.call<void>({ op: 'crash-on-next-run', how });
  }

  /** Stops taking work, lets queued and running batches finish (up to `drainMs`), stops the worker. */
  async close(drainMs = 10_000): Promise<void> {
    this.closed = true;
    this.scheduler.close();
    await Promise.race([this.scheduler.drain(), new Promise((resolve) => setTimeout(resolve, drainMs).unref())]);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.client?.stop();
  }

  private assertReady(): void {
    if (this.closed) throw new DS_ERR_ENGINE_NOT_READY('the engine is shutting down');
    if (!this.ready) throw new DS_ERR_ENGINE_NOT_READY('the engine worker is restarting');
  }

  private async spawn(): Promise<void> {
    const started = performance.now();
    const client = new WorkerClient(this.options.worker, (event) => this.onWorkerEvent(event));
    this.client = client;
    this.info = null;
    this.resident.clear();
    const info = await client.ready;
    this.info = info;
    this.options.onEvent?.({ type: 'worker-started', ms: performance.now() - started });
    const servingSince = Date.now();
    void client.exit.then((error) => this.onWorkerExit(error, servingSince));
    for (const task of this.pinned.values()) {
      client.call<void>({ op: 'pin', task }).then(
        () => this.resident.add(task.key),
        () => undefined, // reported again on the task's next request
      );
    }
  }

  private onWorkerExit(error: Error, servingSince: number): void {
    this.info = null;
    this.resident.clear();
    this.options.onEvent?.({ type: 'worker-exited', reason: error.message });
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

  private onWorkerEvent(event: EngineEvent): void {
    if (event.type === 'cache' && event.kind === 'evict') {
      this.resident.delete(event.key);
      this.lastLoadPhases.delete(event.key);
    }
    if (event.type === 'cache' && event.kind === 'load') {
      this.resident.add(event.key);
      const phases = event.phases ?? {};
      this.lastLoadPhases.set(event.key, { fetchMs: phases.fetch ?? 0, verifyMs: phases.verify ?? 0, decodeMs: phases.decode ?? 0 });
    }
    this.options.onEvent?.(event);
  }

  private async runBatch(jobs: Job[]): Promise<JobResult[]> {
    if (!this.ready) throw new DS_ERR_ENGINE_NOT_READY('the engine worker is restarting');
    const requests = jobs.map((job) => job.inputs);
    const task = jobs[0]!.task;
    const reply = await this.client!.call<RunReply>({ op: 'run', task, requests }, transferablesOf(requests));
    this.options.onEvent?.({ type: 'batch', key: task?.key ?? null, size: jobs.length, inferMs: reply.inferMs, cacheHit: reply.cacheHit });
    return reply.outputs.map((outputs) => ({
      outputs,
      cacheHit: reply.cacheHit,
      activationMs: reply.activation.ms,
      switched: reply.activation.switched,
      batchSize: jobs.length,
      inferMs: reply.inferMs,
    }));
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
