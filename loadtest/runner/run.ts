/**
 * A whole run: the selected scenarios one after another (cold-start ones first, after
 * unloading every task), then one summary over all samples with every scenario's thresholds.
 * The CLI (cli.ts) and the benchmarks (bench/loadtest.ts) both call runLoad().
 */
import { Pool } from 'undici';
import {
  applyOverrides,
  scenarioNamed,
  thresholdsOf,
  type LoadData,
  type ScenarioDef,
  type ScenarioOverrides,
} from '../scenarios/scenarios.js';
import type { SummaryData } from '../scenarios/summary.js';
import { driveScenario, type Progress } from './drive.js';
import { buildSummary, type DroppedArrival, type Sample } from './samples.js';

export interface RunOptions {
  readonly baseUrl: string;
  readonly data: LoadData;
  /** Scenario names (loadtest/scenarios) or definitions of the caller's own (the benchmarks). */
  readonly scenarios: readonly (string | ScenarioDef)[];
  readonly overrides?: ScenarioOverrides;
  /** Replace constant arrivals with Poisson ones of the same mean rate (or the reverse). */
  readonly arrivals?: 'constant' | 'poisson';
  readonly seed?: number;
  readonly maxRequests?: number;
  readonly maxInFlight?: number;
  readonly requestTimeoutMs?: number;
  readonly onProgress?: (progress: Progress) => void;
  readonly log?: (line: string) => void;
}

export interface RunResult {
  readonly summary: SummaryData;
  readonly samples: readonly Sample[];
  readonly startedMs: number;
  readonly aborted: readonly string[];
  readonly defs: readonly ScenarioDef[];
}

export function resolveScenarios(
  names: readonly (string | ScenarioDef)[],
  options: Pick<RunOptions, 'overrides' | 'arrivals' | 'maxInFlight'>,
): ScenarioDef[] {
  const defs = names.map((name) => {
    let def = applyOverrides(typeof name === 'string' ? scenarioNamed(name) : name, options.overrides ?? {});
    const a = def.arrivals;
    if (options.arrivals !== undefined && a.kind !== 'ramping')
      def = { ...def, arrivals: { ...a, kind: options.arrivals } };
    if (options.maxInFlight !== undefined) def = { ...def, maxInFlight: options.maxInFlight };
    return def;
  });
  return [...defs.filter((d) => d.coldStart === true), ...defs.filter((d) => d.coldStart !== true)];
}

/** Unpin and evict every task of the data file through the repository API (admin key). */
export async function unloadAll(baseUrl: string, data: LoadData): Promise<void> {
  const pool = new Pool(baseUrl, { connections: 1 });
  try {
    for (const task of data.tasks) {
      const response = await pool.request({
        path: `/v2/repository/models/${encodeURIComponent(task)}/unload`,
        method: 'POST',
        headers: { authorization: `Bearer ${data.adminKey}` },
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`unloading ${task} answered ${response.statusCode}: ${text}`);
    }
  } finally {
    await pool.close();
  }
}

export async function runLoad(options: RunOptions): Promise<RunResult> {
  const defs = resolveScenarios(options.scenarios, options);
  const samples: Sample[] = [];
  const dropped: DroppedArrival[] = [];
  const aborted: string[] = [];
  const thresholds: Record<string, string[]> = {};
  const startedMs = performance.now();
  for (const [i, def] of defs.entries()) {
    if (def.coldStart === true) {
      options.log?.(`[${def.name}] unloading ${options.data.tasks.length} tasks through the repository API`);
      await unloadAll(options.baseUrl, options.data);
    }
    options.log?.(`[${def.name}] ${def.description}`);
    const result = await driveScenario({
      baseUrl: options.baseUrl,
      data: options.data,
      def,
      seed: (options.seed ?? 1) + i,
      maxRequests: options.maxRequests ?? 100_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      ...(options.onProgress && { onProgress: options.onProgress }),
    });
    samples.push(...result.samples);
    dropped.push(...result.dropped);
    if (result.aborted !== null) aborted.push(`${def.name}: ${result.aborted}`);
    Object.assign(thresholds, thresholdsOf(def));
  }
  const summary = buildSummary({ samples, dropped, durationMs: performance.now() - startedMs, thresholds });
  return { summary, samples, startedMs, aborted, defs };
}
