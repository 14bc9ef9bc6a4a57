/**
 * k6 options from the shared scenario definitions: each scenario an open-model executor
 * (constant-arrival-rate, ramping-arrival-rate), run one after another, with its thresholds,
 * plus zero-cost thresholds that make k6 report per-tenant, per-task, per-status and per-code
 * submetrics in the summary.
 */
import type { Options, Scenario } from 'k6/options';
import {
  KNOWN_ERROR_CODES,
  KNOWN_STATUSES,
  METRICS,
  TREND_STATS,
  durationOf,
  thresholdsOf,
  type LoadData,
  type ScenarioDef,
} from '../../scenarios/scenarios.ts';

/** Seconds between one scenario's end and the next one's start (k6's gracefulStop). */
export const GRACEFUL_STOP_S = 10;
/** Stop the whole run when half the requests fail after this long: continuing is waste. */
const ABORT_FAILED_RATE = 0.5;

/** Rates per minute, rounded: k6 takes integer rates per timeUnit. */
const perMinute = (rate: number): number => Math.max(1, Math.round(rate * 60));

export function k6Scenario(def: ScenarioDef, startS: number): Scenario {
  const common = {
    exec: 'infer',
    startTime: `${startS}s`,
    gracefulStop: `${GRACEFUL_STOP_S}s`,
    timeUnit: '1m',
    preAllocatedVUs: Math.min(def.maxInFlight, 32),
    maxVUs: def.maxInFlight,
    env: { SCENARIO_NAME: def.name },
  };
  const a = def.arrivals;
  if (a.kind === 'ramping') {
    return {
      ...common,
      executor: 'ramping-arrival-rate',
      startRate: perMinute(a.startRate),
      stages: a.stages.map((s) => ({ target: perMinute(s.target), duration: `${s.durationS}s` })),
    };
  }
  // k6 has no Poisson executor: a Poisson scenario runs at its mean rate, evenly spaced.
  return { ...common, executor: 'constant-arrival-rate', rate: perMinute(a.rate), duration: `${a.durationS}s` };
}

export function buildOptions(defs: readonly ScenarioDef[], data: LoadData): Options {
  const scenarios: Record<string, Scenario> = {};
  const thresholds: Record<string, string[] | { threshold: string; abortOnFail: boolean; delayAbortEval: string }[]> =
    {};
  let startS = 0;
  for (const def of defs) {
    scenarios[def.name] = k6Scenario(def, startS);
    startS += durationOf(def.arrivals) + GRACEFUL_STOP_S;
    Object.assign(thresholds, thresholdsOf(def));
    thresholds[`${METRICS.cacheHit}{scenario:${def.name}}`] = ['rate>=0'];
    thresholds[`${METRICS.queueWait}{scenario:${def.name}}`] = ['max>=0'];
    thresholds[`http_reqs{scenario:${def.name}}`] = ['count>=0'];
  }
  thresholds.http_req_failed = [{ threshold: `rate<${ABORT_FAILED_RATE}`, abortOnFail: true, delayAbortEval: '10s' }];
  for (const t of data.tenants) thresholds[`http_reqs{tenant:${t.name}}`] = ['count>=0'];
  for (const task of data.tasks) thresholds[`http_reqs{task:${task}}`] = ['count>=0'];
  for (const status of KNOWN_STATUSES) thresholds[`http_reqs{status:${status}}`] = ['count>=0'];
  for (const code of KNOWN_ERROR_CODES) thresholds[`${METRICS.errors}{code:${code}}`] = ['count>=0'];
  return { scenarios, thresholds, summaryTrendStats: [...TREND_STATS], discardResponseBodies: false };
}
