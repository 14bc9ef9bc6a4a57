/**
 * Run configuration from `__ENV` (k6 -e NAME=value or the environment) and the data file,
 * loaded once into SharedArrays so every VU shares one copy.
 */
import { SharedArray } from 'k6/data';
import { applyOverrides, scenarioNamed, type LoadData, type ScenarioDef } from '../../scenarios/scenarios.ts';

function numberEnv(name: string): number | undefined {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

export const BASE_URL = (__ENV.BASE_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
/** Where handleSummary writes its JSON (relative to the working directory). */
export const SUMMARY_PATH = __ENV.SUMMARY ?? 'k6-summary.json';
/** The data file, relative to this folder's parent (loadtest/k6/) or absolute. */
const DATA_PATH = __ENV.DATA ?? '../data/demo-zoo.json';
export const DEFAULT_SCENARIOS = 'steady,zipf,tenants,spike';

const data = (): LoadData => JSON.parse(open(DATA_PATH)) as LoadData;
export const TASKS = new SharedArray('tasks', () => [...data().tasks]);
export const TENANTS = new SharedArray('tenants', () => [...data().tenants]);
/** [request body, admin key]: one SharedArray of strings for the scalars. */
const scalars = new SharedArray('scalars', () => {
  const d = data();
  return [JSON.stringify(d.payload), __ENV.ADMIN_KEY ?? d.adminKey, d.description];
});
export const PAYLOAD: string = scalars[0]!;
export const ADMIN_KEY: string = scalars[1]!;

/**
 * The data as the shared scenario code expects it. A SharedArray supports only length, index
 * and for-of, so each VU spreads the (small) name lists into plain arrays once; the payload
 * stays a shared string.
 */
export const LOAD_DATA: LoadData = {
  description: scalars[2]!,
  tasks: [...TASKS],
  tenants: [...TENANTS],
  adminKey: ADMIN_KEY,
  payload: null,
};
const KEYS = new Map(LOAD_DATA.tenants.map((t) => [t.name, t.key]));

/** The scenarios to run, in order (cold-start first: it needs a cache nothing else warmed). */
export function selectedScenarios(): ScenarioDef[] {
  const names = (__ENV.SCENARIOS ?? DEFAULT_SCENARIOS)
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const overrides = {
    rateScale: numberEnv('RATE_SCALE'),
    durationS: numberEnv('DURATION_S'),
    p99Ms: numberEnv('P99_MS'),
    sloScale: numberEnv('SLO_SCALE'),
  };
  const defs = names.map((n) => applyOverrides(scenarioNamed(n), overrides));
  return [...defs.filter((d) => d.coldStart === true), ...defs.filter((d) => d.coldStart !== true)];
}

/** Bearer key of a tenant named in the data file. */
export function keyOf(tenant: string): string {
  const key = KEYS.get(tenant);
  if (key === undefined) throw new Error(`tenant "${tenant}" is not in the data file`);
  return key;
}
