/**
 * The serving state of each task version as the repository index reports it (Triton's
 * vocabulary): READY (servable: cached, or loadable on demand as far as we know), LOADING (its
 * delta is being fetched/decoded) or UNAVAILABLE (its last load failed; `reason` says why). A
 * failed task becomes READY again as soon as a load succeeds.
 *
 * Engine events are the only input (`buildServer` connects them): the worker's cache events
 * for loads, the engine's `dropped` for an explicit unload or retire (the state is forgotten)
 * and `worker-exited` (loads in flight died with the worker).
 */
import type { AnyEngineEvent } from '../engine/engine.js';

export type TaskState = 'READY' | 'LOADING' | 'UNAVAILABLE';

export interface TaskStatus {
  readonly state: TaskState;
  readonly reason: string;
}

const READY: TaskStatus = { state: 'READY', reason: '' };

export class TaskStates {
  private readonly states = new Map<string, TaskStatus>();
  of(key: string): TaskStatus {
    return this.states.get(key) ?? READY;
  }

  onEngineEvent(event: AnyEngineEvent): void {
    switch (event.type) {
      case 'cache':
        switch (event.kind) {
          case 'miss':
            this.states.set(event.key, { state: 'LOADING', reason: '' });
            break;
          case 'load':
          case 'hit':
            this.ready(event.key);
            break;
          case 'load-failed':
            this.states.set(event.key, { state: 'UNAVAILABLE', reason: event.error.message });
            break;
          case 'miss-inflight': // joins a load whose `miss` already said LOADING
          case 'evict': // an evicted delta is READY: it loads again on its next request
            break;
        }
        break;
      case 'dropped':
        this.ready(event.key);
        break;
      case 'worker-exited':
        for (const [key, status] of this.states) if (status.state === 'LOADING') this.ready(key);
        break;
      case 'activation':
      case 'batch':
      case 'scheduler':
      case 'worker-started':
      case 'delta-reload':
      case 'mixed-fallback':
        break; // say nothing about a task's readiness
    }
  }

  /** READY is the default: nothing to remember. */
  private ready(key: string): void {
    this.states.delete(key);
  }
}
