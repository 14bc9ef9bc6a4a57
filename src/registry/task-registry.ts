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
 * Replicas may share one state file (a shared volume): every change runs under a cross-process
 * lock as read-latest → apply → atomic rename (`state-file-lock.ts`), so concurrent changes
 * through different replicas never lose each other, and every replica reloads the file when it
 * changes (`state-file-watcher.ts`: a watch plus a poll every `pollIntervalMs`, the convergence
 * bound). A file that cannot be read or fails validation is never applied: the replica keeps
 * serving its last good state and says so in `syncStatus()` until a read succeeds again.
 * Within one process, changes and reloads are serialised (one at a time, in order).
 */
import { taskKey } from '../core/config-tasks.js';
import {
  DS_ERR_REGISTRY_PERSIST_FAILED,
  DS_ERR_TASK_EXISTS,
  DS_ERR_TASK_NOT_REGISTERED,
  DS_ERR_TASK_VERSION_CONFLICT,
} from '../core/errors.js';
import type { TaskSpec } from '../core/config-types.js';
import type { TaskRef } from '../deltas/types.js';
import { stat } from 'node:fs/promises';
import { removeStaleTempFiles } from './atomic-write.js';
import {
  EMPTY_STATE,
  readRegistryState,
  writeRegistryState,
  type RegisteredTask,
  type RegistryState,
} from './registry-state.js';
import { MIN_LOCK_STALE_MS, withStateFileLock, type HeldLock } from './state-file-lock.js';
import { StateFileWatcher, fileIdentity } from './state-file-watcher.js';

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

/** How a registry with a state file follows changes other replicas make to it. */
export interface StateFileSharing {
  /** Milliseconds between checks of the file: every replica applies a change within about this. Default 1000. */
  readonly pollIntervalMs: number;
  /** Also watch the folder with `fs.watch` for faster pick-up on local disks. Default true. */
  readonly watch: boolean;
  /** A change lock older than this (its holder died) is taken over, in ms; at least 5000. Default 10 000. */
  readonly lockStaleMs: number;
}

export const DEFAULT_SHARING: StateFileSharing = { pollIntervalMs: 1000, watch: true, lockStaleMs: 10_000 };

/** Whether this replica's registry matches the state file, as readiness and /metrics report it. */
export interface RegistrySyncStatus {
  /** False while the last read of the state file failed: the registry serves its last good state. */
  readonly synced: boolean;
  /** Why the last read failed; null when synced. */
  readonly error: string | null;
  /** Epoch ms of the last check that found the file readable (changed or not); null without a state file. */
  readonly lastSyncAt: number | null;
  /** Changes made by others (or by hand) that this replica read and applied. */
  readonly reloads: number;
  /** Checks that could not read or validate the file. */
  readonly failures: number;
}

/** Told which task versions a reload from the state file removed (retired elsewhere). */
export type RemovedListener = (keys: readonly string[]) => void;

export { taskKey };

export function taskRefOf(task: TaskVersion): TaskRef {
  return { key: task.key, uri: task.uri, sha256: task.sha256 };
}

export class TaskRegistry {
  private state: RegistryState;
  private view: Map<string, TaskVersion[]>;
  private queue: Promise<unknown> = Promise.resolve();
  /** Identity of the state file version in memory (see `fileIdentity`); null: none seen yet. */
  private identity: string | null = null;
  private reloadPending = false;
  private sync: RegistrySyncStatus;
  private readonly removedListeners: RemovedListener[] = [];
  private readonly watcher: StateFileWatcher | null;

  private constructor(
    private readonly declared: readonly TaskSpec[],
    private readonly stateFile: string | null,
    private readonly sharing: StateFileSharing,
    state: RegistryState,
  ) {
    this.state = state;
    this.view = buildView(declared, state);
    this.sync = {
      synced: true,
      error: null,
      lastSyncAt: stateFile === null ? null : Date.now(),
      reloads: 0,
      failures: 0,
    };
    this.watcher = stateFile === null ? null : new StateFileWatcher(stateFile, sharing, () => this.scheduleReload());
  }

  /**
   * Declared tasks plus the state file (when there is one), which is then followed for changes
   * made by other replicas until `close()`. An unreadable or invalid file stops start-up here:
   * there is no last good state yet.
   */
  static async open(options: {
    declared: readonly TaskSpec[];
    stateFile: string | null;
    sharing?: Partial<StateFileSharing>;
  }): Promise<TaskRegistry> {
    const given = { ...DEFAULT_SHARING, ...options.sharing };
    if (!(given.pollIntervalMs > 0))
      throw new RangeError(`pollIntervalMs must be positive, got ${given.pollIntervalMs}`);
    const sharing: StateFileSharing = { ...given, lockStaleMs: Math.max(MIN_LOCK_STALE_MS, given.lockStaleMs) };
    // A temp file older than the lock's staleness bound belongs to a writer that died before its rename.
    if (options.stateFile !== null) await removeStaleTempFiles(options.stateFile, sharing.lockStaleMs);
    const identity = options.stateFile === null ? null : await identityOf(options.stateFile);
    const state = options.stateFile === null ? EMPTY_STATE : await readRegistryState(options.stateFile);
    const registry = new TaskRegistry(options.declared, options.stateFile, sharing, state);
    registry.identity = identity;
    registry.watcher?.start();
    return registry;
  }

  /** Stops following the state file. */
  close(): void {
    this.watcher?.close();
  }

  syncStatus(): RegistrySyncStatus {
    return this.sync;
  }

  /** Called after a reload removed task versions (so their cached deltas can be dropped). */
  onRemoved(listener: RemovedListener): void {
    this.removedListeners.push(listener);
  }

  /**
   * Reads the state file now if it changed, and applies it if it is valid; otherwise keeps the
   * current state and records why in `syncStatus()`. The watcher calls this; tests may too.
   */
  reload(): Promise<void> {
    return this.serialised(async () => {
      this.reloadPending = false;
      await this.readLatest().catch(() => undefined); // recorded in this.sync
    });
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
    return this.change(async (lock) => {
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
      await this.commit(lock, {
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
    return this.change(async (lock) => {
      const versions = this.versions(name).filter((v) => version === undefined || v.version === version);
      if (versions.length === 0)
        throw new DS_ERR_TASK_NOT_REGISTERED(version === undefined ? name : taskKey(name, version));
      const keys = versions.map((v) => v.key);
      const declaredKeys = new Set(this.declared.map((t) => taskKey(t.name, t.version)));
      const defaults = { ...this.state.defaults };
      if (defaults[name] !== undefined && keys.includes(taskKey(name, defaults[name]))) delete defaults[name];
      await this.commit(lock, {
        registered: this.state.registered.filter((t) => !keys.includes(taskKey(t.name, t.version))),
        retired: [...new Set([...this.state.retired, ...keys.filter((k) => declaredKeys.has(k))])],
        defaults,
      });
      return keys;
    });
  }

  /**
   * Runs one change, serialised in this process and, with a state file, under the file's lock
   * after reading its latest version, so the change applies to what every replica sees.
   */
  private change<T>(work: (lock: HeldLock | null) => Promise<T>): Promise<T> {
    const stateFile = this.stateFile;
    if (stateFile === null) return this.serialised(() => work(null));
    return this.serialised(() =>
      withStateFileLock(stateFile, this.sharing.lockStaleMs, async (lock) => {
        try {
          await this.readLatest();
        } catch (error) {
          // Writing over a file we cannot read would throw away every change it holds.
          throw new DS_ERR_REGISTRY_PERSIST_FAILED(
            stateFile,
            `the state file cannot be read, so it is not overwritten (${(error as Error).message})`,
          );
        }
        return work(lock);
      }),
    );
  }

  private async commit(lock: HeldLock | null, next: RegistryState): Promise<void> {
    const view = buildView(this.declared, next);
    if (this.stateFile !== null) {
      // Another replica took the lock over (ours looked stale): it may have written since we read.
      if (lock && !lock.stillHeld())
        throw new DS_ERR_REGISTRY_PERSIST_FAILED(this.stateFile, 'the state file lock was lost before writing; retry');
      try {
        await writeRegistryState(this.stateFile, next);
      } catch (error) {
        throw new DS_ERR_REGISTRY_PERSIST_FAILED(this.stateFile, (error as Error).message);
      }
      this.identity = await identityOf(this.stateFile).catch(() => null);
    }
    this.state = next;
    this.view = view;
  }

  /** Applies the state file if it changed since it was last read; throws (and records) when it cannot be read or is invalid. */
  private async readLatest(): Promise<void> {
    const path = this.stateFile!;
    try {
      const identity = await identityOf(path);
      if (identity === null && this.identity === null) return this.markSynced(); // never written yet
      if (identity === null)
        throw new Error(
          'the file is gone (it existed before); delete nothing by accident: restore it, or write an empty state',
        );
      if (identity !== this.identity) {
        const state = await readRegistryState(path, { missingIsError: true });
        this.adopt(state);
        this.identity = identity;
        this.sync = { ...this.sync, reloads: this.sync.reloads + 1 };
      }
      this.markSynced();
    } catch (error) {
      this.sync = { ...this.sync, synced: false, error: (error as Error).message, failures: this.sync.failures + 1 };
      throw error;
    }
  }

  private markSynced(): void {
    this.sync = { ...this.sync, synced: true, error: null, lastSyncAt: Date.now() };
  }

  /** Makes `next` the current state; tells listeners which versions it removed. */
  private adopt(next: RegistryState): void {
    const before = new Set(this.all().map((task) => task.key));
    this.state = next;
    this.view = buildView(this.declared, next);
    for (const task of this.all()) before.delete(task.key);
    if (before.size === 0) return;
    for (const listener of this.removedListeners) listener([...before]);
  }

  /** One reload at a time: signals that arrive while one is queued add nothing. */
  private scheduleReload(): void {
    if (this.reloadPending) return;
    this.reloadPending = true;
    void this.reload();
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** The file's identity, or null when it does not exist. */
async function identityOf(path: string): Promise<string | null> {
  try {
    return fileIdentity(await stat(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
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
