/**
 * Runtime task lifecycle: register (validate, then persist), add a version, retire (persist,
 * then evict). Validation is the engine's own load path (`engine.load`: fetch, verify the
 * sha256, decode against the base's weights and fingerprint), so a delta accepted here is one
 * the engine can serve; the loaded delta stays cached, warming the first request.
 */
import { DS_ERR_TASK_REJECTED, DS_ERR_TASK_UNAVAILABLE, isError } from '../core/errors.js';
import { raceAbort } from '../core/race-abort.js';
import type { TaskSpec } from '../core/config-types.js';
import type { TaskRef } from '../deltas/types.js';
import { taskRefOf, type RegisterResult, type TaskRegistry, type TaskVersion } from './task-registry.js';

/** The engine verbs registration needs. */
export interface DeltaLoader {
  load(task: TaskRef): Promise<void>;
  evict(key: string): Promise<void>;
}

export interface RegisterRequest {
  readonly spec: TaskSpec;
  /** POST semantics: the name must not exist yet. */
  readonly mustBeNew: boolean;
  readonly makeDefault: boolean;
  /** Aborted when the client can no longer be told the outcome (gone, or past the deadline). */
  readonly signal?: AbortSignal;
}

export class TaskAdmin {
  constructor(
    private readonly registry: TaskRegistry,
    private readonly engine: DeltaLoader,
  ) {}

  async register(request: RegisterRequest): Promise<RegisterResult> {
    let loadedKey: string | null = null;
    const { signal } = request;
    const validate = async (task: TaskVersion): Promise<void> => {
      try {
        const load = this.engine.load(taskRefOf(task));
        if (signal) {
          // The engine finishes a load it started; one that completes after the change was
          // abandoned leaves nothing behind.
          load.then(() => (signal.aborted ? this.engine.evict(task.key) : undefined)).catch(() => undefined);
          await raceAbort(load, signal);
        } else {
          await load;
        }
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const e = error as Error & { code?: string; reason?: string; cause?: unknown };
        // The engine wraps every load failure as DS_ERR_TASK_UNAVAILABLE (503 for requests);
        // for a registration it means the submitted delta is unusable: 422. Engine-wide
        // failures (not ready, crashed) keep their 503.
        if (isError(error, DS_ERR_TASK_UNAVAILABLE)) {
          const detail = e.cause instanceof Error ? e.cause.message : e.message;
          throw new DS_ERR_TASK_REJECTED(task.key, `${e.reason ? `[${e.reason}] ` : ''}${detail}`);
        }
        throw error;
      }
      loadedKey = task.key;
    };
    try {
      return await this.registry.register(request.spec, {
        mustBeNew: request.mustBeNew,
        makeDefault: request.makeDefault,
        validate,
        ...(signal && { signal }),
      });
    } catch (error) {
      // Validated but not committed (e.g. the state file could not be written): drop the delta
      // it loaded, so a failed registration leaves nothing behind.
      if (loadedKey !== null) await this.engine.evict(loadedKey).catch(() => undefined);
      throw error;
    }
  }

  async retire(name: string, version?: string): Promise<string[]> {
    const keys = await this.registry.retire(name, version);
    for (const key of keys) {
      // Already unregistered: a failed eviction only leaves memory to the LRU, never a route.
      await this.engine.evict(key).catch(() => undefined);
    }
    return keys;
  }
}
