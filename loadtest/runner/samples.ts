/**
 * What the runner records per request, and how samples become the k6-shaped summary: every
 * metric, its per-scenario / tenant / task / status / error-code submetrics, and the
 * scenarios' thresholds evaluated on exactly the samples their tags select.
 */
import { METRICS } from '../scenarios/scenarios.js';
import type { SummaryData, SummaryMetric } from '../scenarios/summary.js';
import { meets, parseMetricKey, parseThreshold, trendStat, trendValues } from './stats.js';

export interface Sample {
  readonly scenario: string;
  readonly tenant: string;
  /** The model name sent (task, alias or base). */
  readonly task: string;
  /** `yes` unless the tenant is meant to hit its rate limit. */
  readonly slo: 'yes' | 'no';
  /** ms on the runner's clock (performance.now()). */
  readonly scheduledMs: number;
  readonly sentMs: number;
  readonly endMs: number;
  /** HTTP status; 0 when no response came (network error, timeout). */
  readonly status: number;
  /** The error body's `code`, or `network_<code>`; null for a 200. */
  readonly code: string | null;
  /** A 200 or an expected 429. */
  readonly expected: boolean;
  readonly cacheHit: boolean | null;
  readonly queueMs: number | null;
}

export interface DroppedArrival {
  readonly scenario: string;
  readonly scheduledMs: number;
}

/** A send that starts this much after its scheduled time counts as late. */
export const LATE_MS = 10;

type Tags = Readonly<Record<string, string>>;

function tagsOf(s: Sample): Record<string, string> {
  return {
    scenario: s.scenario,
    tenant: s.tenant,
    task: s.task,
    slo: s.slo,
    status: String(s.status),
    ...(s.code !== null && { code: s.code }),
  };
}

function matches(s: Sample, tags: Tags): boolean {
  const own = tagsOf(s);
  return Object.entries(tags).every(([k, v]) => own[k] === v);
}

/** How each metric reads a sample: undefined = the sample does not contribute. */
interface MetricRule {
  readonly type: SummaryMetric['type'];
  readonly contains: SummaryMetric['contains'];
  readonly value: (s: Sample) => number | boolean | undefined;
}

const RULES: Record<string, MetricRule> = {
  http_reqs: { type: 'counter', contains: 'default', value: () => 1 },
  // Latency from the *scheduled* start: a late send or a wait for a connection counts.
  http_req_duration: { type: 'trend', contains: 'time', value: (s) => s.endMs - s.scheduledMs },
  http_req_failed: { type: 'rate', contains: 'default', value: (s) => !s.expected },
  checks: { type: 'rate', contains: 'default', value: (s) => s.expected },
  [METRICS.cacheHit]: { type: 'rate', contains: 'default', value: (s) => s.cacheHit ?? undefined },
  [METRICS.queueWait]: { type: 'trend', contains: 'time', value: (s) => s.queueMs ?? undefined },
  [METRICS.rateLimited]: {
    type: 'counter',
    contains: 'default',
    value: (s) => (s.status === 429 && s.expected ? 1 : undefined),
  },
  [METRICS.errors]: { type: 'counter', contains: 'default', value: (s) => (s.expected ? undefined : 1) },
  deltaserve_start_lag: { type: 'trend', contains: 'time', value: (s) => s.sentMs - s.scheduledMs },
  deltaserve_late_requests: {
    type: 'counter',
    contains: 'default',
    value: (s) => (s.sentMs - s.scheduledMs > LATE_MS ? 1 : undefined),
  },
};

/** Submetrics reported without a threshold asking for them: metric → tag names. */
const BREAKDOWN: Record<string, readonly string[]> = {
  http_reqs: ['scenario', 'tenant', 'task', 'status'],
  http_req_duration: ['scenario', 'tenant', 'task'],
  http_req_failed: ['scenario', 'tenant'],
  [METRICS.cacheHit]: ['scenario', 'tenant', 'task'],
  [METRICS.queueWait]: ['scenario'],
  [METRICS.rateLimited]: ['tenant'],
  [METRICS.errors]: ['scenario', 'code'],
  deltaserve_late_requests: ['scenario'],
};

function metricOf(
  name: string,
  samples: readonly Sample[],
  durationS: number,
  dropped: readonly DroppedArrival[],
  tags: Tags,
): SummaryMetric {
  if (name === 'dropped_iterations') {
    const count = dropped.filter((d) =>
      Object.entries(tags).every(([k, v]) => k === 'scenario' && d.scenario === v),
    ).length;
    return { type: 'counter', contains: 'default', values: { count, rate: durationS > 0 ? count / durationS : 0 } };
  }
  const rule = RULES[name];
  if (!rule) throw new Error(`the runner has no metric "${name}"`);
  const values: (number | boolean)[] = [];
  for (const s of samples) {
    if (!matches(s, tags)) continue;
    const v = rule.value(s);
    if (v !== undefined) values.push(v);
  }
  if (rule.type === 'counter') {
    const count = values.reduce<number>((sum, v) => sum + Number(v), 0);
    return { type: 'counter', contains: rule.contains, values: { count, rate: durationS > 0 ? count / durationS : 0 } };
  }
  if (rule.type === 'rate') {
    const passes = values.filter((v) => v === true).length;
    return {
      type: 'rate',
      contains: rule.contains,
      values: { rate: values.length === 0 ? 0 : passes / values.length, passes, fails: values.length - passes },
    };
  }
  return { type: 'trend', contains: rule.contains, values: trendValues(values as number[]) };
}

const key = (name: string, tags: Tags): string => {
  const entries = Object.entries(tags);
  return entries.length === 0 ? name : `${name}{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`;
};

export interface SummaryInput {
  readonly samples: readonly Sample[];
  readonly dropped: readonly DroppedArrival[];
  readonly durationMs: number;
  /** Thresholds in k6 syntax, keyed by (sub)metric. */
  readonly thresholds: Readonly<Record<string, readonly string[]>>;
}

export function buildSummary({ samples, dropped, durationMs, thresholds }: SummaryInput): SummaryData {
  const durationS = durationMs / 1000;
  const metrics: Record<string, SummaryMetric> = {};
  for (const name of [...Object.keys(RULES), 'dropped_iterations']) {
    metrics[name] = metricOf(name, samples, durationS, dropped, {});
    const tagNames = name === 'dropped_iterations' ? ['scenario'] : (BREAKDOWN[name] ?? []);
    for (const tag of tagNames) {
      const seen = new Set(
        name === 'dropped_iterations'
          ? dropped.map((d) => d.scenario)
          : samples.map((s) => tagsOf(s)[tag]).filter((v): v is string => v !== undefined),
      );
      for (const value of [...seen].sort()) {
        const sub = metricOf(name, samples, durationS, dropped, { [tag]: value });
        metrics[key(name, { [tag]: value })] = sub;
      }
    }
  }
  for (const [metricKey, expressions] of Object.entries(thresholds)) {
    const { name, tags } = parseMetricKey(metricKey);
    const own = metrics[metricKey] ?? metricOf(name, samples, durationS, dropped, tags);
    const verdicts: Record<string, { ok: boolean }> = { ...own.thresholds };
    for (const expression of expressions) {
      const t = parseThreshold(expression);
      const actual =
        own.type === 'trend' && !(t.stat in own.values)
          ? trendStat(sortedTrend(name, samples, tags), t.stat)
          : own.values[t.stat];
      if (actual === undefined)
        throw new Error(`threshold "${expression}" on ${metricKey}: a ${own.type} has no "${t.stat}"`);
      verdicts[expression] = { ok: meets(actual, t) };
    }
    metrics[metricKey] = { ...own, thresholds: verdicts };
  }
  return { tool: 'deltaserve-runner', metrics, state: { testRunDurationMs: durationMs } };
}

function sortedTrend(name: string, samples: readonly Sample[], tags: Tags): number[] {
  const rule = RULES[name]!;
  return samples
    .filter((s) => matches(s, tags))
    .map((s) => rule.value(s))
    .filter((v): v is number => typeof v === 'number')
    .sort((a, b) => a - b);
}
