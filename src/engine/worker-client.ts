/**
 * The main thread's handle on one engine worker: start it, call it, notice when it dies.
 * A dead worker fails every call in flight at once (DS_ERR_ENGINE_CRASHED) — nothing waits
 * for a reply that cannot come. Restarting is the Engine's decision, not this class's.
 */
import { Worker } from 'node:worker_threads';
import { DS_ERR_ENGINE_CRASHED, DS_ERR_ENGINE_START_FAILED } from '../core/errors.js';
import {
  deserializeError,
  type CallOf,
  type EngineEvent,
  type ReadyInfo,
  type ReplyOf,
  type WorkerMessage,
  type WorkerOp,
} from './protocol.js';
import type { WorkerOptions } from './worker-options.js';

/** A call waiting for its reply; the reply's type was fixed by the call's operation. */
type Pending = { resolve: (value: ReplyOf<WorkerOp>) => void; reject: (error: Error) => void };

const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(
  RUNNING_FROM_SOURCE ? './runtime/worker-from-source.mjs' : './runtime/worker.js',
  import.meta.url,
);

export class WorkerClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exited = false;
  readonly ready: Promise<ReadyInfo>;
  /** Resolves when the worker has exited, for whatever reason. */
  readonly exit: Promise<Error>;

  constructor(options: WorkerOptions, onEvent: (event: EngineEvent) => void) {
    this.worker = new Worker(WORKER_URL, {
      workerData: options,
      ...(options.resourceLimits && { resourceLimits: options.resourceLimits }),
    });
    let markReady!: (info: ReadyInfo) => void;
    let failStart!: (error: Error) => void;
    this.ready = new Promise<ReadyInfo>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    // Avoid an unhandled rejection when nobody awaits `ready` (e.g. a restart that dies).
    this.ready.catch(() => undefined);

    this.worker.on('message', (message: WorkerMessage) => {
      switch (message.kind) {
        case 'ready':
          markReady(message.info);
          break;
        case 'start-failed':
          failStart(new DS_ERR_ENGINE_START_FAILED(message.error.message));
          break;
        case 'event':
          onEvent(message.event);
          break;
        case 'reply': {
          const waiter = this.pending.get(message.id);
          if (!waiter) break;
          this.pending.delete(message.id);
          if (message.ok) waiter.resolve(message.value);
          else waiter.reject(deserializeError(message.error));
          break;
        }
      }
    });
    this.exit = new Promise<Error>((resolve) => {
      let cause: Error | null = null;
      this.worker.on('error', (error) => (cause = error));
      this.worker.on('exit', (code) => {
        this.exited = true;
        const error = new DS_ERR_ENGINE_CRASHED(cause ? cause.message : `worker exited with code ${code}`);
        failStart(error);
        for (const waiter of this.pending.values()) waiter.reject(error);
        this.pending.clear();
        resolve(error);
      });
    });
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Sends one operation; resolves to the reply that operation defines (protocol.ts `WorkerOps`). */
  call<K extends WorkerOp>(request: CallOf<K>, transfer: ArrayBuffer[] = []): Promise<ReplyOf<K>> {
    if (this.exited) return Promise.reject(new DS_ERR_ENGINE_CRASHED('worker is not running'));
    const id = this.nextId++;
    return new Promise<ReplyOf<K>>((resolve, reject) => {
      // The worker answers id with the reply of request.op (worker.ts `handlers`).
      this.pending.set(id, { resolve: resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  /**
   * Ends the worker without interrupting a native run: it finishes the run in progress, then
   * exits. `Worker.terminate()` during onnxruntime-node's synchronous run aborts the whole
   * process (the binding throws a C++ exception into a terminating isolate), so it is used only
   * when the worker does not exit within `graceMs`.
   */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.exited) return;
    this.call({ op: 'exit' }).catch(() => undefined);
    const timer = setTimeout(() => void this.worker.terminate(), graceMs);
    await this.exit;
    clearTimeout(timer);
  }
}
