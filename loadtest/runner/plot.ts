/**
 * An SVG of a run: latency percentiles (from the scheduled start) and throughput per second,
 * one colour per scenario, drawn with vega-lite like the repository's other plots.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Sample } from './samples.js';
import { percentileOfSorted } from './stats.js';

export interface SecondRow {
  readonly second: number;
  readonly scenario: string;
  readonly series: string;
  readonly value: number;
}

/** Per second of the run (by scheduled time): p50/p90/p99 latency and ok / failed responses per second. */
export function perSecond(samples: readonly Sample[], runStartMs: number): SecondRow[] {
  const buckets = new Map<
    string,
    { scenario: string; second: number; latencies: number[]; ok: number; failed: number }
  >();
  for (const s of samples) {
    const second = Math.floor((s.scheduledMs - runStartMs) / 1000);
    const id = `${s.scenario}\u0000${second}`;
    let b = buckets.get(id);
    if (!b) buckets.set(id, (b = { scenario: s.scenario, second, latencies: [], ok: 0, failed: 0 }));
    b.latencies.push(s.endMs - s.scheduledMs);
    if (s.expected) b.ok++;
    else b.failed++;
  }
  const rows: SecondRow[] = [];
  for (const b of buckets.values()) {
    const sorted = b.latencies.sort((x, y) => x - y);
    for (const p of [50, 90, 99])
      rows.push({ second: b.second, scenario: b.scenario, series: `p${p} ms`, value: percentileOfSorted(sorted, p) });
    rows.push(
      { second: b.second, scenario: b.scenario, series: 'answered/s', value: b.ok },
      { second: b.second, scenario: b.scenario, series: 'failed/s', value: b.failed },
    );
  }
  return rows.sort((a, b) => a.second - b.second);
}

export async function plotSvg(samples: readonly Sample[], runStartMs: number, title: string): Promise<string> {
  const values = perSecond(samples, runStartMs);
  const panel = (series: string[], yTitle: string, log: boolean) => ({
    width: 640,
    height: 200,
    transform: [{ filter: { field: 'series', oneOf: series } }],
    mark: { type: 'line' as const, point: false },
    encoding: {
      x: { field: 'second', type: 'quantitative' as const, title: 'seconds since the start (scheduled time)' },
      y: {
        field: 'value',
        type: 'quantitative' as const,
        title: yTitle,
        ...(log && { scale: { type: 'symlog' as const } }),
      },
      color: { field: 'scenario', type: 'nominal' as const },
      strokeDash: { field: 'series', type: 'nominal' as const, title: 'series' },
    },
  });
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: values as unknown as Record<string, unknown>[] },
    vconcat: [
      panel(['p50 ms', 'p90 ms', 'p99 ms'], 'latency from scheduled start, ms', true),
      panel(['answered/s', 'failed/s'], 'responses per second', false),
    ],
    resolve: { scale: { color: 'shared', strokeDash: 'independent' } },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
