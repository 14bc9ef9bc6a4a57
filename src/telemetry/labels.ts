/**
 * Label values for `task` and `tenant`. Every distinct value is a new time series in every
 * scraper, so values come only from configuration: the HTTP layer passes the task name it
 * resolved (or null when none was: unknown task, 404, rejected before resolution), never the
 * raw name from the URL or body, and such requests land under `task="unknown"`.
 *
 * `BoundedLabels` is the second line of defence: if a bug ever lets unbounded values through,
 * values past the limit are folded into `other` instead of growing the series count forever.
 */

/** Requests whose task (or tenant) could not be resolved. */
export const UNKNOWN_LABEL = 'unknown';
/** Values past a label's limit. */
export const OTHER_LABEL = 'other';
/** Requests served by the base model with no delta (the engine's task `null`). */
export const BASE_LABEL = 'base';

/** Remembers the first `limit` distinct values of one label; later new values become `other`. */
export class BoundedLabels {
  private readonly seen = new Set<string>();

  constructor(private readonly limit: number) {}

  /** `null`, `undefined` and `''` become `unknown`. */
  label(value: string | null | undefined): string {
    if (value === null || value === undefined || value === '') return UNKNOWN_LABEL;
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.limit) return OTHER_LABEL;
    this.seen.add(value);
    return value;
  }
}

/**
 * The task name in an engine key. The engine keys caches and queues by `name@version`
 * (see `TaskRef.key`), its base-model queue is `@base` and its base task is `null`; metrics
 * are by task name, so versions of one task share their series.
 */
export function taskNameOfKey(key: string | null): string {
  if (key === null || key === '@base') return BASE_LABEL;
  const at = key.lastIndexOf('@');
  return at > 0 ? key.slice(0, at) : key;
}
