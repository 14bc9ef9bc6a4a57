/**
 * Mixed mode: the tasks that run in per-task batches because their delta touches a weight mixed
 * batches cannot apply per request. The worker finds out (its MixedCore judges each delta and
 * reports a task once, as a `mixed-fallback` event); this is the one place on the main thread
 * that remembers it: the scheduler's `mixable`, the task metadata and anything else ask here.
 * A task is forgotten when its delta is dropped on request (unload, retire), so a task
 * registered again under the same key is judged again.
 */
import type { AnyEngineEvent } from './engine.js';
export interface PerTaskBatching {
  /** The weight that keeps the task out of mixed batches. */
  readonly tensor: string;
  readonly reason: string;
}

export class PerTaskTasks {
  private readonly tasks = new Map<string, PerTaskBatching>();

  /** Follows the engine's events: `mixed-fallback` records a task, `dropped` forgets it. */
  observe(event: AnyEngineEvent): void {
    if (event.type === 'mixed-fallback') this.tasks.set(event.key, { tensor: event.tensor, reason: event.reason });
    else if (event.type === 'dropped') this.tasks.delete(event.key);
  }

  has(key: string): boolean {
    return this.tasks.has(key);
  }

  /** Why `key` runs in per-task batches; null while it mixes (or has not run yet). */
  of(key: string): PerTaskBatching | null {
    return this.tasks.get(key) ?? null;
  }
}
