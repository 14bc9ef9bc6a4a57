/**
 * The end-of-test summary both drivers write: the shape of the `data` k6 hands to
 * `handleSummary` (a subset of it: `metrics` and `state`), so one reader serves both, and the
 * text both print. Submetrics appear as `name{tag:value,...}` keys next to their parent.
 */

export interface SummaryMetric {
  readonly type: 'counter' | 'rate' | 'trend' | 'gauge';
  readonly contains: 'default' | 'time' | 'data';
  /** counter: count, rate; rate: rate, passes, fails; trend: TREND_STATS. */
  readonly values: Record<string, number>;
  readonly thresholds?: Record<string, { readonly ok: boolean }>;
}

export interface SummaryData {
  readonly metrics: Record<string, SummaryMetric>;
  readonly state: {
    readonly testRunDurationMs: number;
    readonly isStdOutTTY?: boolean;
    readonly isStdErrTTY?: boolean;
  };
  /** Which driver wrote it (the Node runner sets it; k6's own data has none). */
  readonly tool?: string;
}

/** Every threshold with its verdict: `metric{tags} expression`. */
export function thresholdVerdicts(data: SummaryData): { readonly name: string; readonly ok: boolean }[] {
  const out: { name: string; ok: boolean }[] = [];
  for (const [metric, m] of Object.entries(data.metrics)) {
    for (const [expression, verdict] of Object.entries(m.thresholds ?? {}))
      out.push({ name: `${metric} ${expression}`, ok: verdict.ok });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function formatValue(metric: SummaryMetric, key: string, value: number): string {
  if (metric.contains === 'time' && key !== 'count') return `${value.toFixed(1)}ms`;
  if (metric.type === 'rate' && key === 'rate') return `${(value * 100).toFixed(2)}%`;
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(2);
}

/** A compact text summary: every metric with its values, then the thresholds (✓ / ✗). */
export function summaryText(data: SummaryData): string {
  const lines: string[] = [];
  const names = Object.keys(data.metrics).sort();
  const width = Math.min(64, Math.max(...names.map((n) => n.length), 10));
  for (const name of names) {
    const m = data.metrics[name]!;
    const values = Object.entries(m.values)
      .map(([k, v]) => `${k}=${formatValue(m, k, v)}`)
      .join(' ');
    lines.push(`  ${name.padEnd(width, '.')}: ${values}`);
  }
  const verdicts = thresholdVerdicts(data);
  const failed = verdicts.filter((v) => !v.ok).length;
  lines.push('', `thresholds: ${verdicts.length - failed} passed, ${failed} failed`);
  for (const v of verdicts) lines.push(`  ${v.ok ? '✓' : '✗'} ${v.name}`);
  lines.push(`duration: ${(data.state.testRunDurationMs / 1000).toFixed(1)} s`);
  return lines.join('\n') + '\n';
}
