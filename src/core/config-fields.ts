/**
 * Typed field readers for hand-written validators (the config and the model manifest): each
 * reads one field at a dotted path (`tenants[1].rateLimit.burst`), applies the default when the
 * field is absent, and reports the first problem through `fail(path, reason)`, which throws.
 * Unknown keys are refused, so a typo (`maxBatchsize`) fails loudly instead of being ignored.
 */

export type Fail = (path: string, reason: string) => never;
export type Obj = Record<string, unknown>;

export function describe(value: unknown): string {
  switch (typeof value) {
    case 'object':
      return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
    case 'string':
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    case 'function':
      return 'a function';
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'symbol':
    case 'undefined':
      return String(value);
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export class FieldReader {
  constructor(readonly fail: Fail) {}

  /**
   * `value` must be an object whose keys are all in `allowed` (unless `ignoreUnknown`, for
   * generated documents that carry extra provenance); null/undefined → {} when optional.
   */
  object(value: unknown, path: string, allowed: readonly string[], optional = true, ignoreUnknown = false): Obj {
    if ((value === undefined || value === null) && optional) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path || '(root)', `expected an object, got ${describe(value)}`);
    }
    if (ignoreUnknown) return value as Obj;
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        const hint = allowed.find((a) => a.toLowerCase() === key.toLowerCase());
        this.fail(
          join(path, key),
          `unknown field${hint ? ` (did you mean "${hint}"?)` : ` (known: ${allowed.join(', ')})`}`,
        );
      }
    }
    return value as Obj;
  }

  /** Any-key object (maps such as aliases); null/undefined → {}. */
  map(value: unknown, path: string): Obj {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) this.fail(path, `expected a map, got ${describe(value)}`);
    return value as Obj;
  }

  array(value: unknown, path: string): unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(path, `expected a list, got ${describe(value)}`);
    return value;
  }

  integer(obj: Obj, key: string, path: string, min: number, max: number, fallback: number): number {
    const value = obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(join(path, key), `expected an integer in [${min}, ${max}], got ${describe(value)}`);
    }
    return value;
  }

  optionalInteger(obj: Obj, key: string, path: string, min: number, max: number): number | null {
    return obj[key] === undefined || obj[key] === null ? null : this.integer(obj, key, path, min, max, 0);
  }

  number(
    obj: Obj,
    key: string,
    path: string,
    min: number,
    max: number,
    fallback: number,
    exclusiveMin = false,
  ): number {
    const value = obj[key];
    if (value === undefined || value === null) return fallback;
    const low = exclusiveMin ? (value as number) > min : (value as number) >= min;
    if (typeof value !== 'number' || !Number.isFinite(value) || !low || value > max) {
      this.fail(
        join(path, key),
        `expected a number in ${exclusiveMin ? '(' : '['}${min}, ${max}], got ${describe(value)}`,
      );
    }
    return value;
  }

  /** Fails at `field` unless `value` ≥ the value of `floorField` (a bound that depends on another field). */
  atLeast(field: string, value: number, floorField: string, floor: number): void {
    if (value < floor) this.fail(field, `must be at least ${floorField} (${floor}), got ${value}`);
  }

  boolean(obj: Obj, key: string, path: string, fallback: boolean): boolean {
    const value = obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') this.fail(join(path, key), `expected true or false, got ${describe(value)}`);
    return value;
  }

  string(obj: Obj, key: string, path: string, fallback?: string): string {
    const value = obj[key];
    if ((value === undefined || value === null) && fallback !== undefined) return fallback;
    if (value === undefined || value === null) this.fail(join(path, key), 'is required');
    return this.stringValue(value, join(path, key));
  }

  optionalString(obj: Obj, key: string, path: string): string | null {
    const value = obj[key];
    return value === undefined || value === null ? null : this.stringValue(value, join(path, key));
  }

  /** Strings and numbers (YAML reads `version: 1` as a number) become a non-empty string. */
  stringValue(value: unknown, path: string): string {
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value !== 'string' || value.trim() === '')
      this.fail(path, `expected a non-empty string, got ${describe(value)}`);
    return value;
  }

  oneOf<T extends string>(obj: Obj, key: string, path: string, allowed: readonly T[], fallback: T): T {
    const value = obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(join(path, key), `expected one of ${allowed.join(', ')}, got ${describe(value)}`);
    }
    return value as T;
  }

  /** A list of strings; a single string counts as a list of one. */
  strings(obj: Obj, key: string, path: string, fallback: readonly string[]): string[] {
    const value = obj[key];
    if (value === undefined || value === null) return [...fallback];
    const list = typeof value === 'string' ? [value] : this.array(value, join(path, key));
    return list.map((item, i) => this.stringValue(item, join(join(path, key), i)));
  }

  sha256(value: unknown, path: string): string {
    const text = this.stringValue(value, path).trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(text)) this.fail(path, `expected 64 hex digits (a sha256), got ${describe(value)}`);
    return text;
  }

  /** Task, tenant and alias names: they appear in URLs and metric labels. */
  name(value: unknown, path: string): string {
    const text = this.stringValue(value, path);
    if (!NAME.test(text))
      this.fail(
        path,
        `expected a name of letters, digits, '.', '_' or '-' (at most 128, not starting with '.' or '-'), got ${describe(value)}`,
      );
    return text;
  }

  version(value: unknown, path: string): string {
    const text = this.stringValue(value, path);
    if (!NAME.test(text))
      this.fail(path, `expected a version of letters, digits, '.', '_' or '-', got ${describe(value)}`);
    return text;
  }
}

export const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
