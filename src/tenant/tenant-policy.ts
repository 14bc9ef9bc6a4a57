/**
 * One tenant's view of the gateway: which model names it sees, what each resolves to, and its
 * limits. Resolution (a visible name, optionally a version, optionally a routing id) →
 *
 * 1. an alias (`visible → task` or `task@version`) resolves to its target; aliases grant access
 *    to their target even when `tasks` does not list it; a pinned alias serves only that version;
 * 2. `base` is the bare base model, visible when `tasks` lists `base` or `*`;
 * 3. any other name must be listed in `tasks` (or `*`) AND registered;
 * 4. without an explicit version, a split for the task picks among its versions that exist
 *    (sticky per routing id), else the registry's default version.
 *
 * Anything else resolves to null, which the HTTP layer answers exactly like a task that does not
 * exist: a tenant cannot tell "not yours" from "not there".
 */
import type { TenantConfig } from '../core/config-types.js';
import { RESERVED_BASE_NAME } from '../core/config-tasks.js';
import type { SeededRng } from '../core/rng.js';
import type { TaskVersion } from '../registry/task-registry.js';
import { ConcurrencyLimit } from './concurrency-limit.js';
import { TokenBucket, type TakeResult } from './token-bucket.js';
import { pickWeighted, stickyPoint, type WeightedVersion } from './traffic-split.js';

/** The registry as resolution needs it (TaskRegistry satisfies it). */
export interface TaskLookup {
  has(name: string): boolean;
  names(): string[];
  get(name: string, version?: string): TaskVersion | undefined;
  versions(name: string): readonly TaskVersion[];
}

export interface ResolveContext {
  readonly registry: TaskLookup;
  /** The version the base model answers to (see the HTTP layer). */
  readonly baseVersion: string;
}

export interface ResolvedModel {
  /** The name the tenant used. */
  readonly visibleName: string;
  /** null for the bare base model. */
  readonly task: TaskVersion | null;
  readonly version: string;
}

export class TenantPolicy {
  readonly name: string;
  readonly priority: number;
  private readonly allowAll: boolean;
  private readonly allowed: ReadonlySet<string>;
  private readonly aliases: ReadonlyMap<string, { readonly task: string; readonly version: string | null }>;
  private readonly splits: ReadonlyMap<string, readonly WeightedVersion[]>;
  private readonly bucket: TokenBucket | null;
  private readonly concurrency: ConcurrencyLimit | null;

  constructor(
    readonly config: TenantConfig,
    private readonly rng: SeededRng,
    nowMs: number = Date.now(),
  ) {
    this.name = config.name;
    this.priority = config.priority;
    this.allowAll = config.tasks.includes('*');
    this.allowed = new Set(config.tasks);
    this.aliases = new Map(
      Object.entries(config.aliases).map(([alias, target]) => {
        const [task, version] = target.split('@') as [string, string | undefined];
        return [alias, { task, version: version ?? null }];
      }),
    );
    this.splits = new Map(
      Object.entries(config.splits).map(([task, weights]) => [
        task,
        Object.entries(weights).map(([version, weight]) => ({ version, weight })),
      ]),
    );
    this.bucket = config.rateLimit
      ? new TokenBucket(config.rateLimit.requestsPerSecond, config.rateLimit.burst, nowMs)
      : null;
    this.concurrency = config.maxConcurrent === null ? null : new ConcurrencyLimit(config.maxConcurrent);
  }

  /** Takes one token from the tenant's rate limit. */
  takeToken(nowMs: number): TakeResult {
    return this.bucket ? this.bucket.take(nowMs) : { ok: true };
  }

  /** A release function, or null when the tenant is at its concurrency limit. */
  acquireSlot(): (() => void) | null {
    return this.concurrency ? this.concurrency.tryAcquire() : () => undefined;
  }

  get inFlight(): number {
    return this.concurrency?.inFlight ?? 0;
  }

  resolve(context: ResolveContext, visibleName: string, version?: string, routingId?: string): ResolvedModel | null {
    const alias = this.aliases.get(visibleName);
    if (alias) {
      if (alias.version !== null && version !== undefined && version !== alias.version) return null;
      const resolved = this.resolveTask(context, alias.task, version ?? alias.version ?? undefined, routingId);
      return resolved && { ...resolved, visibleName };
    }
    if (!this.allowAll && !this.allowed.has(visibleName)) return null;
    return this.resolveTask(context, visibleName, version, routingId);
  }

  /** Every name this tenant can use right now (aliases, `base`, allowed registered tasks). */
  visibleNames(context: ResolveContext): string[] {
    const names = new Set<string>();
    for (const [alias, target] of this.aliases) {
      if (this.resolveTask(context, target.task, target.version ?? undefined) !== null) names.add(alias);
    }
    if (this.allowAll || this.allowed.has(RESERVED_BASE_NAME)) names.add(RESERVED_BASE_NAME);
    const tasks = this.allowAll ? context.registry.names() : [...this.allowed].filter((n) => context.registry.has(n));
    for (const task of tasks) names.add(task);
    return [...names].sort();
  }

  /** The versions a visible name can be asked for (empty when the tenant cannot see it). */
  visibleVersions(context: ResolveContext, visibleName: string): string[] {
    const alias = this.aliases.get(visibleName);
    const task = alias ? alias.task : visibleName;
    if (!alias && !this.allowAll && !this.allowed.has(visibleName)) return [];
    if (task === RESERVED_BASE_NAME) return [context.baseVersion];
    if (alias?.version) return context.registry.get(task, alias.version) ? [alias.version] : [];
    return context.registry.versions(task).map((v) => v.version);
  }

  private resolveTask(
    context: ResolveContext,
    name: string,
    version?: string,
    routingId?: string,
  ): ResolvedModel | null {
    if (name === RESERVED_BASE_NAME) {
      if (version !== undefined && version !== context.baseVersion) return null;
      return { visibleName: name, task: null, version: context.baseVersion };
    }
    if (version !== undefined) {
      const task = context.registry.get(name, version);
      return task ? { visibleName: name, task, version: task.version } : null;
    }
    const split = this.splits.get(name);
    if (split) {
      const existing = split.filter((option) => context.registry.get(name, option.version) !== undefined);
      const point = routingId === undefined ? this.rng.nextFloat() : stickyPoint(`${this.name}\0${name}`, routingId);
      const chosen = pickWeighted(existing, point);
      if (chosen !== null) {
        const task = context.registry.get(name, chosen)!;
        return { visibleName: name, task, version: task.version };
      }
    }
    const task = context.registry.get(name);
    return task ? { visibleName: name, task, version: task.version } : null;
  }
}
