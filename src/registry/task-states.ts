/**
 * The serving state of each task version as the repository index reports it (Triton's
 * vocabulary): READY (servable: cached, or loadable on demand as far as we know), LOADING (its
 * delta is being fetched/decoded) or UNAVAILABLE (its last load failed; `reason` says why). A
 * failed task becomes READY again as soon as a load succeeds. Fed by the engine's cache events
 * and by the outcomes of the loads the gateway starts itself.
 */
import type { EngineEvent } from '../engine/protocol.js';

export type TaskState = 'READY' | 'LOADING' | 'UNAVAILABLE';

export interface TaskStatus {
  readonly state: TaskState;
  readonly reason: string;
}

export class TaskStates {
  private readonly states = new Map<string, TaskStatus>();

  of(key: string): TaskStatus {
    return this.states.get(key) ?? { state: 'READY', reason: '' };
  }

  loading(key: string): void {
    this.states.set(key, { state: 'LOADING', reason: '' });
  }

  ready(key: string): void {
    this.states.delete(key);
  }

  failed(key: string, reason: string): void {
    this.states.set(key, { state: 'UNAVAILABLE', reason });
  }

  forget(key: string): void {
    this.states.delete(key);
  }

  /** Engine cache events: `miss` starts a load, `load` ends it, `load-failed` marks it. */
  onEngineEvent(event: EngineEvent | { readonly type: string }): void {
    if (event.type !== 'cache' || !('kind' in event) || typeof event.key !== 'string') return;
    const cacheEvent = event as Extract<EngineEvent, { type: 'cache' }> & { error?: unknown; reason?: unknown };
    if (cacheEvent.kind === 'miss') this.loading(cacheEvent.key);
    else if (cacheEvent.kind === 'load' || cacheEvent.kind === 'hit') this.ready(cacheEvent.key);
    else if (cacheEvent.kind === 'load-failed') this.failed(cacheEvent.key, describeFailure(cacheEvent));
  }
}

function describeFailure(event: { error?: unknown; reason?: unknown }): string {
  const error = event.error ?? event.reason;
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error) return String((error as { message: unknown }).message);
  return typeof error === 'string' ? error : 'the delta could not be loaded';
}
