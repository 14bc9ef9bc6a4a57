/**
 * Which task versions exist, where their deltas live, and which version a bare name means.
 *
 * Declared tasks (manifest, then `registry.tasks`: a later declaration of the same key wins) are
 * overlaid with the state file (see `registry-state.ts`). Changes go through `register` and
 * `retire` and follow one rule: validate, compute the next state, persist it atomically, and
 * only then make it visible. Any failure before the swap leaves memory and the file exactly as
 * they were. Validation (a delta fetch, possibly slow) runs concurrently for any number of
 * changes; only the short commit step (re-check, write, swap) is serialised, so a slow fetch
 * never holds up a change of another task. A change whose `signal` has fired by its commit is
 * dropped: its client was already told it failed.
 *
 * Versions are immutable: registering an existing `name@version` with a different delta is a
 * conflict (a cached delta is keyed by `name@version`, so changing it in place would serve stale
 * weights). Registering it again with the same delta only updates labels and description.
 *
 * Concurrency assumption: one gateway process owns the state file.
 */
import { taskKey } from '../core/config-tasks.js';
import {
  DS_ERR_REGISTRY_PERSIST_FAILED,
  DS_ERR_TASK_EXISTS,
  DS_ERR_TASK_NOT_REGISTERED,
  DS_ERR_TASK_VERSION_CONFLICT,
} from '../core/errors.js';
import type { TaskSpec } from '../core/config-types.js';
import type { TaskRef } from '../engine/protocol.js';
import { removeStaleTempFiles } from './atomic-write.js';
import { EMPTY_STATE, readRegistryState, writeRegistryState, type RegisteredTask, type RegistryState } from './registry-state.js';

export type TaskOrigin = 'declared' | 'admin';

export interface TaskVersion extends TaskSpec {
  readonly key: string;
  readonly origin: TaskOrigin;
  readonly registeredAt: string | null;
}

export interface RegisterOptions {
  /** Refuse when any version of the name exists (POST semantics). Default false. */
  readonly mustBeNew?: boolean;
  /** Serve this version for requests naming no version. Default true. */
  readonly makeDefault?: boolean;
  /** Proves the delta usable (fetch, verify, decode against the base); throws to refuse. */
  readonly validate: (task: TaskVersion) => Promise<void>;
  /** Once aborted, the change is not committed (the reason is thrown instead). */
  readonly signal?: AbortSignal;
}

export interface RegisterResult {
  readonly task: TaskVersion;
  /** false when the version existed with the same delta (only metadata changed). */
  readonly created: boolean;
}

export { taskKey };

export function taskRefOf(task: TaskVersion): TaskRef {
  return { key: task.key, uri: task.uri, sha256: task.sha256 };
}

export class TaskRegistry {
  private state: RegistryState;
  private view: Map<string, TaskVersion[]>;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly declared: readonly TaskSpec[],
    private readonly stateFile: string | null,
    state: RegistryState,
  ) {
    this.state = state;
    this.view = buildView(declared, state);
  }

  /** Declared tasks plus the state file (when there is one). */
  static async open(options: { declared: readonly TaskSpec[]; stateFile: string | null }): Promise<TaskRegistry> {
    if (options.stateFile !== null) await removeStaleTempFiles(options.stateFile); // one owner: see the class doc
    const state = options.stateFile === null ? EMPTY_STATE : await readRegistryState(options.stateFile);
    return new TaskRegistry(options.declared, options.stateFile, state);
  }

  names(): string[] {
    return [...this.view.keys()].sort();
  }

  has(name: string): boolean {
    return this.view.has(name);
  }

  /** Versions of a task in declaration/registration order. */
  versions(name: string): readonly TaskVersion[] {
    return this.view.get(name) ?? [];
  }

  /** A version, or the default version when `version` is omitted. */
  get(name: string, version?: string): TaskVersion | undefined {
    const versions = this.view.get(name);
    if (!versions) return undefined;
    if (version !== undefined) return versions.find((v) => v.version === version);
    return versions.find((v) => v.version === this.defaultVersion(name)) ?? versions[versions.length - 1];
  }

  defaultVersion(name: string): string | undefined {
    const versions = this.view.get(name);
    if (!versions) return undefined;
    const chosen = this.state.defaults[name];
    if (chosen !== undefined && versions.some((v) => v.version === chosen)) return chosen;
    return versions[versions.length - 1]?.version;
  }

  all(): TaskVersion[] {
    return this.names().flatMap((name) => [...this.versions(name)]);
  }

  async register(spec: TaskSpec, options: RegisterOptions): Promise<RegisterResult> {
    const key = taskKey(spec.name, spec.version);
    const registeredAt = new Date().toISOString();
    const task: TaskVersion = { ...spec, key, origin: 'admin', registeredAt };
    // Checked before validating (no fetch for a change that cannot apply) and again at commit.
    const existedBefore = this.checkRegistrable(spec, options) !== undefined;
    if (!existedBefore) await options.validate(task);
    return this.serialised(async () => {
      options.signal?.throwIfAborted();
      const existing = this.checkRegistrable(spec, options);
      // Retired while this metadata-only change waited: its delta was never proven for it.
      if (!existing && existedBefore) await options.validate(task);
      options.signal?.throwIfAborted();
      const entry: RegisteredTask = { ...spec, registeredAt };
      const defaults = { ...this.state.defaults };
      const current = this.defaultVersion(spec.name);
      if (options.makeDefault ?? true) defaults[spec.name] = spec.version;
      // Without an explicit default the last version wins: pin the current one so the new
      // version does not become the default by being last.
      else if (current !== undefined) defaults[spec.name] = current;
      await this.commit({
        registered: [...this.state.registered.filter((t) => taskKey(t.name, t.version) !== key), entry],
        retired: this.state.retired.filter((k) => k !== key),
        defaults,
      });
      return { task: this.get(spec.name, spec.version)!, created: !existing };
    });
  }

  /** The existing version when registering `spec` only updates it; throws when it cannot apply. */
  private checkRegistrable(spec: TaskSpec, options: RegisterOptions): TaskVersion | undefined {
    const existing = this.get(spec.name, spec.version);
    if (options.mustBeNew && this.has(spec.name)) throw new DS_ERR_TASK_EXISTS(spec.name, spec.name);
    if (existing && (existing.uri !== spec.uri || existing.sha256 !== spec.sha256)) {
      throw new DS_ERR_TASK_VERSION_CONFLICT(spec.name, spec.version);
    }
    return existing;
  }

  /** Removes one version, or every version of the name; returns the removed keys. */
  retire(name: string, version?: string): Promise<string[]> {
    return this.serialised(async () => {
      const versions = this.versions(name).filter((v) => version === undefined || v.version === version);
      if (versions.length === 0) throw new DS_ERR_TASK_NOT_REGISTERED(version === undefined ? name : taskKey(name, version));
      const keys = versions.map((v) => v.key);
      const declaredKeys = new Set(this.declared.map((t) => taskKey(t.name, t.version)));
      const defaults = { ...this.state.defaults };
      if (defaults[name] !== undefined && keys.includes(taskKey(name, defaults[name]!))) delete defaults[name];
      await this.commit({
        registered: this.state.registered.filter((t) => !keys.includes(taskKey(t.name, t.version))),
        retired: [...new Set([...this.state.retired, ...keys.filter((k) => declaredKeys.has(k))])],
        defaults,
      });
      return keys;
    });
  }

  private async commit(next: RegistryState): Promise<void> {
    const view = buildView(this.declared, next);
    if (this.stateFile !== null) {
      try {
        await writeRegistryState(this.stateFile, next);
      } catch (error) {
        throw new DS_ERR_REGISTRY_PERSIST_FAILED(this.stateFile, (error as Error).message);
      }
    }
    this.state = next;
    this.view = view;
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

function buildView(declared: readonly TaskSpec[], state: RegistryState): Map<string, TaskVersion[]> {
  const byKey = new Map<string, TaskVersion>();
  for (const spec of declared) {
    const key = taskKey(spec.name, spec.version);
    byKey.delete(key); // a later declaration replaces an earlier one and takes its place in order
    byKey.set(key, { ...spec, key, origin: 'declared', registeredAt: null });
  }
  for (const entry of state.registered) {
    const { registeredAt, ...spec } = entry;
    const key = taskKey(spec.name, spec.version);
    byKey.delete(key);
    byKey.set(key, { ...spec, key, origin: 'admin', registeredAt: registeredAt || null });
  }
  for (const key of state.retired) byKey.delete(key);
  const view = new Map<string, TaskVersion[]>();
  for (const task of byKey.values()) {
    const list = view.get(task.name) ?? [];
    list.push(task);
    view.set(task.name, list);
  }
  return view;
}
