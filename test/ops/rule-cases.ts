/**
 * promtool unit tests of the alert rules (helm/deltaserve/alerts/deltaserve-rules.yaml, default
 * thresholds): for every alert, synthetic series that must fire it and series that must not.
 * Series are written with the metric constants, so they name what the gateway exports.
 */
import { METRICS } from '../../src/telemetry/metric-names.js';

/** The labels a scrape through the operator gives every series. */
const TARGET = { namespace: 'serving', job: 'ds-deltaserve', pod: 'ds-deltaserve-0', instance: '10.0.0.7:8080' };
const SERVICE = { namespace: TARGET.namespace, job: TARGET.job };

export interface Series {
  readonly series: string;
  /** promtool's expanding notation: `0+10x60` = 0, 10, 20, ... (61 samples, one per interval). */
  readonly values: string;
}

export interface RuleCase {
  readonly alert: string;
  readonly name: string;
  readonly fires: boolean;
  readonly series: readonly Series[];
  /** Minutes after the first sample. */
  readonly evalMinutes: number;
  /** The alert's labels when it fires (severity added from the rule). */
  readonly labels: Record<string, string>;
}

function series(name: string, labels: Record<string, string>, values: string): Series {
  const body = Object.entries({ ...TARGET, ...labels })
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  return { series: `${name}{${body}}`, values };
}

const COUNT = `${METRICS.requestDuration.name}_count`;
const BUCKET = `${METRICS.requestDuration.name}_bucket`;

/** `perMinute` requests a minute for `minutes`, `errorsPerMinute` of them 503. */
function traffic(perMinute: number, errorsPerMinute: number, minutes: number): Series[] {
  return [
    series(COUNT, { task: 'digits', tenant: 'acme', status: '200' }, `0+${perMinute - errorsPerMinute}x${minutes}`),
    series(COUNT, { task: 'digits', tenant: 'acme', status: '503' }, `0+${errorsPerMinute}x${minutes}`),
  ];
}

/** `perMinute` successful requests a minute, `fastPerMinute` of them within 0.25 s (the default latency SLO bound). */
function latency(perMinute: number, fastPerMinute: number, minutes: number): Series[] {
  const labels = { task: 'digits', tenant: 'acme', status: '200' };
  return [
    series(COUNT, labels, `0+${perMinute}x${minutes}`),
    series(BUCKET, { ...labels, le: '0.25' }, `0+${fastPerMinute}x${minutes}`),
    series(BUCKET, { ...labels, le: '+Inf' }, `0+${perMinute}x${minutes}`),
  ];
}

const REPLICA = TARGET;

export const RULE_CASES: readonly RuleCase[] = [
  {
    alert: 'DeltaserveAvailabilityBudgetBurnFast',
    name: '9 % of requests fail for 2 h: 90 × the 0.1 % budget',
    fires: true,
    series: traffic(1000, 90, 120),
    evalMinutes: 90,
    labels: SERVICE,
  },
  {
    alert: 'DeltaserveAvailabilityBudgetBurnFast',
    name: '0.1 % of requests fail: exactly the budget',
    fires: false,
    series: traffic(1000, 1, 120),
    evalMinutes: 90,
    labels: SERVICE,
  },
  {
    alert: 'DeltaserveAvailabilityBudgetBurnSlow',
    name: '0.5 % of requests fail for 5 h: 5 × the budget',
    fires: true,
    series: traffic(1000, 5, 300),
    evalMinutes: 280,
    labels: SERVICE,
  },
  {
    alert: 'DeltaserveAvailabilityBudgetBurnSlow',
    name: '0.05 % of requests fail: half the budget',
    fires: false,
    series: traffic(2000, 1, 300),
    evalMinutes: 280,
    labels: SERVICE,
  },
  {
    alert: 'DeltaserveLatencyBudgetBurnFast',
    name: 'half the requests slower than 0.25 s for 2 h',
    fires: true,
    series: latency(1000, 500, 120),
    evalMinutes: 90,
    labels: SERVICE,
  },
  {
    alert: 'DeltaserveLatencyBudgetBurnFast',
    name: '0.5 % of requests slower than 0.25 s: half the 1 % budget',
    fires: false,
    series: latency(1000, 995, 120),
    evalMinutes: 90,
    labels: SERVICE,
  },
  {
    alert: 'DeltaserveLatencyBudgetBurnSlow',
    name: '5 % of requests slower than 0.25 s for 5 h: 5 × the budget',
    fires: true,
    series: latency(1000, 950, 300),
    evalMinutes: 280,
    labels: SERVICE,
  },
  {
    alert: 'DeltaserveLatencyBudgetBurnSlow',
    name: '0.5 % of requests slower than 0.25 s',
    fires: false,
    series: latency(1000, 995, 300),
    evalMinutes: 280,
    labels: SERVICE,
  },
  {
    alert: 'DeltaserveDeltaCacheThrashing',
    name: 'hit ratio 0.2 with 5 activations/s for 30 min',
    fires: true,
    series: [
      series(METRICS.cacheHits.name, { task: 'digits' }, '0+60x40'),
      series(METRICS.cacheMisses.name, { task: 'digits' }, '0+240x40'),
      series(METRICS.activations.name, { task: 'digits' }, '0+300x40'),
    ],
    evalMinutes: 30,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveDeltaCacheThrashing',
    name: 'hit ratio 0.8 with the same 5 activations/s',
    fires: false,
    series: [
      series(METRICS.cacheHits.name, { task: 'digits' }, '0+240x40'),
      series(METRICS.cacheMisses.name, { task: 'digits' }, '0+60x40'),
      series(METRICS.activations.name, { task: 'digits' }, '0+300x40'),
    ],
    evalMinutes: 30,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveDeltaCacheThrashing',
    name: 'hit ratio 0.2 but only 0.5 activations/s (a quiet replica)',
    fires: false,
    series: [
      series(METRICS.cacheHits.name, { task: 'digits' }, '0+6x40'),
      series(METRICS.cacheMisses.name, { task: 'digits' }, '0+24x40'),
      series(METRICS.activations.name, { task: 'digits' }, '0+30x40'),
    ],
    evalMinutes: 30,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveDeltaLoadFailures',
    name: 'three failed loads of one task',
    fires: true,
    series: [series(METRICS.deltaLoadFailures.name, { task: 'digits' }, '0 0 0 1 2 3 3 3 3 3')],
    evalMinutes: 6,
    labels: { ...REPLICA, task: 'digits' },
  },
  {
    alert: 'DeltaserveDeltaLoadFailures',
    name: 'the first failure of a task (the counter appears at 1)',
    fires: true,
    series: [series(METRICS.deltaLoadFailures.name, { task: 'digits' }, '_ _ _ 1 1 1 1')],
    evalMinutes: 5,
    labels: { ...REPLICA, task: 'digits' },
  },
  {
    alert: 'DeltaserveDeltaLoadFailures',
    name: 'old failures, none in the last 10 minutes',
    fires: false,
    series: [series(METRICS.deltaLoadFailures.name, { task: 'digits' }, '0 1 2 3 3x30')],
    evalMinutes: 30,
    labels: { ...REPLICA, task: 'digits' },
  },
  {
    alert: 'DeltaserveEngineRestarts',
    name: 'one worker restart',
    fires: true,
    series: [series(METRICS.engineRestarts.name, {}, '0 0 0 1 1 1 1')],
    evalMinutes: 5,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveEngineRestarts',
    name: 'the first restart (the counter appears at 1)',
    fires: true,
    series: [series(METRICS.engineRestarts.name, {}, '_ _ _ 1 1 1')],
    evalMinutes: 4,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveEngineRestarts',
    name: 'a restart an hour ago',
    fires: false,
    series: [series(METRICS.engineRestarts.name, {}, '_ 1x60')],
    evalMinutes: 60,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveRegistryStale',
    name: 'the state file has not been readable for 10 minutes',
    fires: true,
    series: [
      series(METRICS.registrySynced.name, {}, '1 0x15'),
      series(METRICS.registryStaleness.name, {}, '0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15'),
    ],
    evalMinutes: 10,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveRegistryStale',
    name: 'synced, but not checked for more than 300 s',
    fires: true,
    series: [series(METRICS.registrySynced.name, {}, '1x20'), series(METRICS.registryStaleness.name, {}, '0+60x20')],
    evalMinutes: 15,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveRegistryStale',
    name: 'synced and checked every second',
    fires: false,
    series: [series(METRICS.registrySynced.name, {}, '1x20'), series(METRICS.registryStaleness.name, {}, '1x20')],
    evalMinutes: 15,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveNotReady',
    name: 'the engine has been down for 15 minutes',
    fires: true,
    series: [series(METRICS.engineReady.name, {}, '0x20')],
    evalMinutes: 15,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveNotReady',
    name: 'down for 3 minutes (a restart), then ready',
    fires: false,
    series: [series(METRICS.engineReady.name, {}, '1 0 0 0 1x20')],
    evalMinutes: 15,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveShedding',
    name: '10 % of requests shed for 20 minutes',
    fires: true,
    series: [
      ...traffic(100, 10, 30),
      series(METRICS.queueDropped.name, { task: 'digits', reason: 'overloaded' }, '0+10x30'),
    ],
    evalMinutes: 20,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveShedding',
    name: '10 % dropped by their deadline, none shed',
    fires: false,
    series: [
      ...traffic(100, 0, 30),
      series(METRICS.queueDropped.name, { task: 'digits', reason: 'deadline' }, '0+10x30'),
      series(METRICS.queueDropped.name, { task: 'digits', reason: 'overloaded' }, '0x30'),
    ],
    evalMinutes: 20,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveEventLoopBlocked',
    name: 'p99 event-loop delay 0.5 s for 15 minutes',
    fires: true,
    series: [
      series(METRICS.eventLoopDelay.name, { quantile: '0.99' }, '0.5x20'),
      series(METRICS.eventLoopDelay.name, { quantile: '1' }, '0.9x20'),
    ],
    evalMinutes: 15,
    labels: REPLICA,
  },
  {
    alert: 'DeltaserveEventLoopBlocked',
    name: 'p99 50 ms, one 2 s maximum',
    fires: false,
    series: [
      series(METRICS.eventLoopDelay.name, { quantile: '0.99' }, '0.05x20'),
      series(METRICS.eventLoopDelay.name, { quantile: '1' }, '2x20'),
    ],
    evalMinutes: 15,
    labels: REPLICA,
  },
];
