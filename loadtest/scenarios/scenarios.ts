/**
 * The load-test scenarios, written once and run by both drivers: the k6 script
 * (loadtest/k6/gateway.ts) and the Node open-loop runner (loadtest/runner/). This module
 * imports nothing, so k6's runtime and Node both load it; a driver maps `arrivals` to its own
 * executor and evaluates `thresholdsOf()` in k6's threshold syntax.
 *
 * Every scenario is open-model: requests arrive on a schedule whatever the server does, so a
 * slow server shows up as latency and dropped requests instead of as fewer requests sent
 * (closed-loop clients hide that: coordinated omission).
 */

/** When requests arrive. Rates are requests per second, durations seconds. */
export type Arrivals =
  | { readonly kind: 'constant'; readonly rate: number; readonly durationS: number }
  /** Exponential gaps with mean 1/rate (the Node runner; k6 runs it as `constant`). */
  | { readonly kind: 'poisson'; readonly rate: number; readonly durationS: number }
  /** Piecewise-linear rate from `startRate` through each stage's target. */
  | { readonly kind: 'ramping'; readonly startRate: number; readonly stages: readonly RampStage[] };

export interface RampStage {
  readonly target: number;
  readonly durationS: number;
}

/** Which model a request names, among those of the data file. */
export type ModelPick =
  /** Zipf(1.0) over the data file's `tasks`, in their order (the first is the most popular). */
  | { readonly kind: 'zipf' }
  /** Every task equally often. */
  | { readonly kind: 'uniform' }
  /** These names (tasks, aliases, `base`), equally often. */
  | { readonly kind: 'list'; readonly models: readonly string[] }
  /** The data file's first task only. */
  | { readonly kind: 'first' };

/** One tenant's share of a scenario's arrivals. */
export interface TrafficShare {
  readonly tenant: string;
  readonly weight: number;
  readonly pick: ModelPick;
  /** The tenant sends above its rate limit on purpose: 429s are expected, counted apart, not failures. */
  readonly expectRateLimited?: boolean;
}

/** What a scenario must meet; violated thresholds fail the run (non-zero exit in both drivers). */
export interface Slo {
  readonly p95Ms: number;
  readonly p99Ms: number;
  /** Fraction of failed requests allowed (expected 429s excluded). */
  readonly maxErrorRate: number;
}

export interface ScenarioDef {
  readonly name: string;
  readonly description: string;
  readonly arrivals: Arrivals;
  readonly traffic: readonly TrafficShare[];
  readonly slo: Slo;
  /** Unload every task through the repository API first, so the burst meets an empty cache. */
  readonly coldStart?: boolean;
  /** Requests in flight at most; an arrival beyond it is dropped and counted (k6: maxVUs). */
  readonly maxInFlight: number;
}

const ZIPF: ModelPick = { kind: 'zipf' };

export const SCENARIOS: readonly ScenarioDef[] = [
  {
    name: 'steady',
    description: 'one task at a constant arrival rate',
    arrivals: { kind: 'constant', rate: 20, durationS: 30 },
    traffic: [{ tenant: 'dev', weight: 1, pick: { kind: 'first' } }],
    slo: { p95Ms: 100, p99Ms: 250, maxErrorRate: 0.001 },
    maxInFlight: 64,
  },
  {
    name: 'zipf',
    description: 'every task, Zipf(1.0) popularity, constant arrival rate',
    arrivals: { kind: 'constant', rate: 20, durationS: 30 },
    traffic: [{ tenant: 'dev', weight: 1, pick: ZIPF }],
    // Task switches (activations, small batches) cost more than one hot task.
    slo: { p95Ms: 250, p99Ms: 500, maxErrorRate: 0.001 },
    maxInFlight: 64,
  },
  {
    name: 'tenants',
    description: 'three tenants: Zipf over every task; an alias and a canary split; one tenant above its rate limit',
    arrivals: { kind: 'poisson', rate: 30, durationS: 30 },
    traffic: [
      { tenant: 'dev', weight: 5, pick: ZIPF },
      { tenant: 'acme', weight: 3, pick: { kind: 'list', models: ['shoes', 'footwear'] } },
      { tenant: 'noisy', weight: 2, pick: { kind: 'first' }, expectRateLimited: true },
    ],
    slo: { p95Ms: 250, p99Ms: 500, maxErrorRate: 0.001 },
    maxInFlight: 96,
  },
  {
    name: 'cold-start',
    description: 'every task unloaded through the repository API, then a burst over all of them',
    arrivals: { kind: 'constant', rate: 40, durationS: 5 },
    traffic: [{ tenant: 'dev', weight: 1, pick: { kind: 'uniform' } }],
    // Every request of the first moments waits for a fetch + verify + decode: a looser SLO.
    slo: { p95Ms: 1500, p99Ms: 3000, maxErrorRate: 0.001 },
    coldStart: true,
    maxInFlight: 256,
  },
  {
    name: 'spike',
    description: 'arrival rate ramps 5 → 60 req/s, holds, and falls back',
    arrivals: {
      kind: 'ramping',
      startRate: 5,
      stages: [
        { target: 60, durationS: 10 },
        { target: 60, durationS: 10 },
        { target: 5, durationS: 10 },
      ],
    },
    traffic: [{ tenant: 'dev', weight: 1, pick: ZIPF }],
    slo: { p95Ms: 300, p99Ms: 800, maxErrorRate: 0.001 },
    maxInFlight: 256,
  },
  {
    name: 'soak',
    description: 'a modest constant rate for 30 minutes (memory, leaks, drift)',
    arrivals: { kind: 'constant', rate: 10, durationS: 1800 },
    traffic: [{ tenant: 'dev', weight: 1, pick: ZIPF }],
    slo: { p95Ms: 250, p99Ms: 500, maxErrorRate: 0.001 },
    maxInFlight: 64,
  },
];

/** What a run changes in the definitions (k6: `__ENV`; the runner: flags). */
export interface ScenarioOverrides {
  /** Multiplies every rate. */
  readonly rateScale?: number;
  /** Replaces a constant/Poisson duration; stretches ramp stages to this total. */
  readonly durationS?: number;
  /** Replaces the p99 SLO (ms) of every scenario (the goodput search uses it). */
  readonly p99Ms?: number;
  /** Multiplies every p95/p99 SLO (a slower or shared machine; applied before p99Ms). */
  readonly sloScale?: number;
}

export function scenarioNamed(name: string): ScenarioDef {
  const found = SCENARIOS.find((s) => s.name === name);
  if (!found) throw new Error(`unknown scenario "${name}"; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return found;
}

export function applyOverrides(def: ScenarioDef, o: ScenarioOverrides): ScenarioDef {
  const scale = o.rateScale ?? 1;
  if (!(scale > 0)) throw new Error(`rate scale must be positive, got ${scale}`);
  if (o.durationS !== undefined && !(o.durationS > 0)) throw new Error(`duration must be positive, got ${o.durationS}`);
  const a = def.arrivals;
  let arrivals: Arrivals;
  if (a.kind === 'ramping') {
    const stretch = o.durationS === undefined ? 1 : o.durationS / durationOf(a);
    arrivals = {
      kind: 'ramping',
      startRate: a.startRate * scale,
      stages: a.stages.map((s) => ({ target: s.target * scale, durationS: s.durationS * stretch })),
    };
  } else {
    arrivals = { kind: a.kind, rate: a.rate * scale, durationS: o.durationS ?? a.durationS };
  }
  const sloScale = o.sloScale ?? 1;
  if (!(sloScale > 0)) throw new Error(`SLO scale must be positive, got ${sloScale}`);
  const scaled = { ...def.slo, p95Ms: def.slo.p95Ms * sloScale, p99Ms: def.slo.p99Ms * sloScale };
  const slo = o.p99Ms === undefined ? scaled : { ...scaled, p99Ms: o.p99Ms, p95Ms: Math.min(scaled.p95Ms, o.p99Ms) };
  return { ...def, arrivals, slo };
}

export function durationOf(arrivals: Arrivals): number {
  return arrivals.kind === 'ramping' ? arrivals.stages.reduce((sum, s) => sum + s.durationS, 0) : arrivals.durationS;
}

/**
 * Thresholds in k6 syntax, keyed by (sub)metric. Latency counts only requests under the SLO
 * (tag `slo:yes`: not the tenant that is meant to be rate-limited); failures count every
 * request except expected 429s.
 */
export function thresholdsOf(def: ScenarioDef): Record<string, string[]> {
  const s = def.name;
  return {
    [`http_req_duration{scenario:${s},slo:yes}`]: [`p(95)<${def.slo.p95Ms}`, `p(99)<${def.slo.p99Ms}`],
    [`http_req_failed{scenario:${s}}`]: [`rate<${def.slo.maxErrorRate}`],
    [`checks{scenario:${s}}`]: [`rate>${1 - def.slo.maxErrorRate}`],
  };
}

/** Summary statistics of every trend, in both drivers' summaries. */
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(50)', 'p(90)', 'p(95)', 'p(99)', 'count'] as const;

/** Custom metric names, the same in both drivers. */
export const METRICS = {
  cacheHit: 'deltaserve_cache_hit',
  queueWait: 'deltaserve_queue_wait',
  rateLimited: 'deltaserve_rate_limited',
  errors: 'deltaserve_errors',
} as const;

/** Response headers the gateway sets on a successful inference. */
export const HEADERS = { cache: 'x-deltaserve-cache', queueMs: 'x-deltaserve-queue-ms' } as const;

/** Error codes that get a per-code submetric in k6's summary (the runner lists every code it saw). */
export const KNOWN_ERROR_CODES = [
  'DS_ERR_RATE_LIMITED',
  'DS_ERR_CONCURRENCY_LIMITED',
  'DS_ERR_OVERLOADED',
  'DS_ERR_DEADLINE_EXCEEDED',
  'DS_ERR_TASK_UNAVAILABLE',
  'DS_ERR_MODEL_NOT_FOUND',
  'DS_ERR_ENGINE_NOT_READY',
  'DS_ERR_INTERNAL',
] as const;

/** HTTP statuses that get a per-status submetric in k6's summary. */
export const KNOWN_STATUSES = [200, 400, 404, 429, 500, 503, 504] as const;

/** The data file (loadtest/data/*.json): what the target serves and who may call it. */
export interface LoadData {
  readonly description: string;
  /** Task names, most popular first for Zipf picks. */
  readonly tasks: readonly string[];
  readonly tenants: readonly { readonly name: string; readonly key: string }[];
  readonly adminKey: string;
  /** One KServe V2 infer request body, sent for every request. */
  readonly payload: unknown;
}

/** Cumulative Zipf(s) weights over n items: item i has weight 1/(i+1)^s. */
export function zipfCumulative(n: number, s = 1): number[] {
  const cumulative: number[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += 1 / Math.pow(i + 1, s);
    cumulative.push(total);
  }
  return cumulative.map((c) => c / total);
}

/** Index of the first cumulative weight above u (u uniform in [0, 1)). */
export function pickIndex(cumulative: readonly number[], u: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (u < cumulative[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export interface Pick {
  readonly tenant: string;
  readonly model: string;
  readonly expectRateLimited: boolean;
}

/**
 * A function from two uniforms to (tenant, model), precomputed once per scenario so that a
 * driver calls it per request with its own random source.
 */
export function trafficPicker(def: ScenarioDef, data: LoadData): (uTenant: number, uModel: number) => Pick {
  if (data.tasks.length === 0) throw new Error('the data file lists no tasks');
  const known = new Set(data.tenants.map((t) => t.name));
  for (const share of def.traffic) {
    if (!known.has(share.tenant))
      throw new Error(`scenario ${def.name}: tenant "${share.tenant}" is not in the data file`);
  }
  const totalWeight = def.traffic.reduce((sum, t) => sum + t.weight, 0);
  let running = 0;
  const tenantCumulative = def.traffic.map((t) => (running += t.weight) / totalWeight);
  const zipf = zipfCumulative(data.tasks.length);
  const pickers = def.traffic.map((share): ((u: number) => string) => {
    const p = share.pick;
    if (p.kind === 'zipf') return (u) => data.tasks[pickIndex(zipf, u)]!;
    if (p.kind === 'uniform')
      return (u) => data.tasks[Math.min(data.tasks.length - 1, Math.floor(u * data.tasks.length))]!;
    if (p.kind === 'first') return () => data.tasks[0]!;
    return (u) => p.models[Math.min(p.models.length - 1, Math.floor(u * p.models.length))]!;
  });
  return (uTenant, uModel) => {
    const i = pickIndex(tenantCumulative, uTenant);
    const share = def.traffic[i]!;
    return { tenant: share.tenant, model: pickers[i]!(uModel), expectRateLimited: share.expectRateLimited === true };
  };
}
