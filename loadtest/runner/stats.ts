/**
 * Summary arithmetic: the project's one percentile definition (linear interpolation between
 * closest ranks, as k6 reports), used by the load runner, the benchmarks (bench/) and the
 * reliability tests alike; trend statistics; and k6 threshold expressions.
 */
import { TREND_STATS } from '../scenarios/scenarios.js';

/** The p-th percentile (0..100) of `values` in any order, linearly interpolated; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

/** The median: the 50th percentile (the mean of the middle two of an even count). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** `percentile` of values already in ascending order (no copy, no sort). */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p <= 0) return sorted[0]!;
  if (p >= 100) return sorted[sorted.length - 1]!;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function trendValues(values: readonly number[]): Record<string, number> {
  const sorted = [...values].sort((a, b) => a - b);
  const out: Record<string, number> = {};
  for (const stat of TREND_STATS) out[stat] = trendStat(sorted, stat);
  return out;
}

/** One trend statistic by its k6 name: avg, min, med, max, count or p(N). */
export function trendStat(sorted: readonly number[], stat: string): number {
  switch (stat) {
    case 'count':
      return sorted.length;
    case 'avg':
      return sorted.length === 0 ? Number.NaN : sorted.reduce((s, x) => s + x, 0) / sorted.length;
    case 'min':
      return sorted.length === 0 ? Number.NaN : sorted[0]!;
    case 'max':
      return sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!;
    case 'med':
      return percentileOfSorted(sorted, 50);
  }
  const p = /^p\((\d+(?:\.\d+)?)\)$/.exec(stat);
  if (!p) throw new Error(`unknown trend statistic "${stat}"`);
  return percentileOfSorted(sorted, Number(p[1]));
}

export interface ThresholdExpression {
  readonly stat: string;
  readonly op: '<' | '<=' | '>' | '>=' | '==' | '!=';
  readonly value: number;
}

/** `p(99)<250`, `rate<0.001`, `count>=0` (k6's threshold syntax, one aggregation per expression). */
export function parseThreshold(expression: string): ThresholdExpression {
  const m = /^\s*([a-z]+(?:\(\d+(?:\.\d+)?\))?)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/.exec(
    expression,
  );
  if (!m) throw new Error(`cannot parse threshold "${expression}"`);
  return { stat: m[1]!, op: m[2] as ThresholdExpression['op'], value: Number(m[3]) };
}

/** Whether `actual` meets the expression; NaN (no samples) never does. */
export function meets(actual: number, t: ThresholdExpression): boolean {
  if (Number.isNaN(actual)) return false;
  switch (t.op) {
    case '<':
      return actual < t.value;
    case '<=':
      return actual <= t.value;
    case '>':
      return actual > t.value;
    case '>=':
      return actual >= t.value;
    case '==':
      return actual === t.value;
    case '!=':
      return actual !== t.value;
  }
}

/** `name{a:1,b:2}` → name and tags (k6's submetric syntax). */
export function parseMetricKey(key: string): {
  readonly name: string;
  readonly tags: Readonly<Record<string, string>>;
} {
  const m = /^([^{]+)(?:\{(.*)\})?$/.exec(key);
  if (!m) throw new Error(`cannot parse metric "${key}"`);
  const tags: Record<string, string> = {};
  for (const pair of (m[2] ?? '').split(',').filter((p) => p !== '')) {
    const colon = pair.indexOf(':');
    if (colon < 1) throw new Error(`cannot parse tag "${pair}" in "${key}"`);
    tags[pair.slice(0, colon).trim()] = pair.slice(colon + 1).trim();
  }
  return { name: m[1]!.trim(), tags };
}
