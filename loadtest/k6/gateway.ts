/**
 * k6 load test of a deltaserve gateway: the shared scenarios (loadtest/scenarios/) as
 * open-model executors, run one after another, with thresholds that fail the run.
 *
 *   k6 run loadtest/k6/gateway.ts                                  # steady, zipf, tenants, spike
 *   k6 run -e SCENARIOS=cold-start loadtest/k6/gateway.ts
 *   k6 run -e BASE_URL=http://127.0.0.1:8080 -e RATE_SCALE=2 -e DURATION_S=60 loadtest/k6/gateway.ts
 *
 * See loadtest/README.md for every variable and the Prometheus remote-write output.
 */
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate, Trend } from 'k6/metrics';
import { HEADERS, METRICS, trafficPicker, type Pick, type ScenarioDef } from '../scenarios/scenarios.ts';
import { summaryText, type SummaryData } from '../scenarios/summary.ts';
import { ADMIN_KEY, BASE_URL, LOAD_DATA, PAYLOAD, SUMMARY_PATH, keyOf, selectedScenarios } from './lib/env.ts';
import { buildOptions } from './lib/options.ts';

const SCENARIOS: ScenarioDef[] = selectedScenarios();
export const options = buildOptions(SCENARIOS, LOAD_DATA);

const cacheHit = new Rate(METRICS.cacheHit);
const queueWait = new Trend(METRICS.queueWait, true);
const rateLimited = new Counter(METRICS.rateLimited);
const errors = new Counter(METRICS.errors);

const pickers = new Map<string, (uTenant: number, uModel: number) => Pick>(
  SCENARIOS.map((def) => [def.name, trafficPicker(def, LOAD_DATA)]),
);
const ok200 = http.expectedStatuses(200);
const ok200or429 = http.expectedStatuses(200, 429);

/** k6 canonicalises header names (X-Deltaserve-Cache); look them up without case. */
function header(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function errorCode(body: string | null): string {
  if (body === null) return 'no_body';
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'string' ? code : 'no_code';
  } catch {
    return 'not_json';
  }
}

/** Cold start: unpin and evict every task so the first scenario's burst meets an empty cache. */
export function setup(): void {
  if (!SCENARIOS.some((d) => d.coldStart === true)) return;
  for (const task of LOAD_DATA.tasks) {
    const res = http.post(`${BASE_URL}/v2/repository/models/${task}/unload`, null, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
      tags: { name: 'unload' },
    });
    if (res.status !== 200)
      throw new Error(`unloading ${task} answered ${res.status}: ${typeof res.body === 'string' ? res.body : ''}`);
  }
}

export function infer(): void {
  const scenario = exec.scenario.name;
  const pick = pickers.get(scenario)!(Math.random(), Math.random());
  const tags = { tenant: pick.tenant, task: pick.model, slo: pick.expectRateLimited ? 'no' : 'yes', name: 'infer' };
  const res = http.post(`${BASE_URL}/v2/models/${pick.model}/infer`, PAYLOAD, {
    headers: { authorization: `Bearer ${keyOf(pick.tenant)}`, 'content-type': 'application/json' },
    tags,
    responseCallback: pick.expectRateLimited ? ok200or429 : ok200,
    timeout: '30s',
  });
  const limited = res.status === 429 && pick.expectRateLimited;
  check(res, { 'served (or rate-limited as expected)': (r) => r.status === 200 || limited }, tags);
  if (res.status === 200) {
    cacheHit.add(header(res.headers, HEADERS.cache) === 'hit', tags);
    const queued = Number(header(res.headers, HEADERS.queueMs));
    if (Number.isFinite(queued)) queueWait.add(queued, tags);
  } else if (limited) {
    rateLimited.add(1, tags);
  } else {
    errors.add(1, {
      ...tags,
      code: res.status === 0 ? `network_${res.error_code}` : errorCode(typeof res.body === 'string' ? res.body : null),
    });
  }
}

export function handleSummary(data: SummaryData): Record<string, string> {
  return { stdout: summaryText(data), [SUMMARY_PATH]: JSON.stringify(data, null, 2) };
}
