/**
 * The open-loop runner's arithmetic: arrival schedules, percentiles, thresholds, traffic picks
 * and the summary built from samples (latency from the scheduled start, expected 429s apart,
 * dropped arrivals, cache-hit ratio, thresholds on exactly the tagged samples).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRng } from '../../src/core/rng.js';
import {
  applyOverrides,
  pickIndex,
  scenarioNamed,
  thresholdsOf,
  trafficPicker,
  zipfCumulative,
  type LoadData,
  type ScenarioDef,
} from '../../loadtest/scenarios/scenarios.js';
import { thresholdVerdicts } from '../../loadtest/scenarios/summary.js';
import { arrivalOffsetsMs } from '../../loadtest/runner/arrivals.js';
import { buildSummary, type Sample } from '../../loadtest/runner/samples.js';
import { meets, parseMetricKey, parseThreshold, percentile, trendValues } from '../../loadtest/runner/stats.js';
import { checkTarget, isLoopbackAddress } from '../../loadtest/runner/target.js';

const close = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} not within ${tolerance} of ${expected}`);

test('constant arrivals are evenly spaced from 0 and bounded by count', () => {
  const offsets = arrivalOffsetsMs({ kind: 'constant', rate: 20, durationS: 3 }, Math.random);
  assert.equal(offsets.length, 60);
  assert.equal(offsets[0], 0);
  offsets.slice(1).forEach((t, i) => close(t - offsets[i]!, 50, 1e-9, `gap ${i}`));
  assert.equal(arrivalOffsetsMs({ kind: 'constant', rate: 20, durationS: 3 }, Math.random, 7).length, 7);
});

test('Poisson arrivals: count and mean gap match the rate, gaps are exponential (CV ≈ 1)', () => {
  const rng = new SeededRng(42);
  const offsets = arrivalOffsetsMs({ kind: 'poisson', rate: 100, durationS: 100 }, () => rng.nextFloat());
  // 10 000 expected, σ = 100: within 4σ.
  close(offsets.length, 10_000, 400, 'count');
  assert.ok(offsets.every((t, i) => t < 100_000 && (i === 0 || t > offsets[i - 1]!)));
  const gaps = offsets.slice(1).map((t, i) => t - offsets[i]!);
  const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / gaps.length);
  close(mean, 10, 0.3, 'mean gap ms');
  close(sd / mean, 1, 0.05, 'coefficient of variation');
});

test('ramping arrivals: the k-th arrival is where the integrated rate reaches k', () => {
  // 0 → 10 req/s over 10 s: Λ(t) = t²/2, so 50 arrivals, the k-th at √(2k) s.
  const ramp = arrivalOffsetsMs(
    { kind: 'ramping', startRate: 0, stages: [{ target: 10, durationS: 10 }] },
    Math.random,
  );
  assert.equal(ramp.length, 50);
  ramp.forEach((t, k) => close(t, Math.sqrt(2 * k) * 1000, 1e-6, `arrival ${k}`));
  // A flat stage then a ramp down: 5 req/s for 2 s (10 arrivals at 200 ms gaps), then 5 → 0 over 2 s (5 more).
  const flatThenDown = arrivalOffsetsMs(
    {
      kind: 'ramping',
      startRate: 5,
      stages: [
        { target: 5, durationS: 2 },
        { target: 0, durationS: 2 },
      ],
    },
    Math.random,
  );
  assert.equal(flatThenDown.length, 15);
  flatThenDown.slice(0, 10).forEach((t, k) => close(t, k * 200, 1e-6, `flat arrival ${k}`));
  // In the down ramp Λ(τ) = 5τ − 1.25τ², the first arrival after the flat part at τ = 0.
  close(flatThenDown[10]!, 2000, 1e-6, 'first ramp-down arrival');
  close(flatThenDown[11]!, 2000 + ((5 - Math.sqrt(25 - 5)) / 2.5) * 1000, 1e-6, 'second ramp-down arrival');
  assert.throws(() => arrivalOffsetsMs({ kind: 'constant', rate: -1, durationS: 1 }, Math.random), /rate must be/);
});

test('overrides scale rates, set durations (stretching ramps) and replace the p99 SLO', () => {
  const spike = applyOverrides(scenarioNamed('spike'), { rateScale: 0.5, durationS: 15 });
  assert.equal(spike.arrivals.kind, 'ramping');
  if (spike.arrivals.kind !== 'ramping') return;
  assert.equal(spike.arrivals.startRate, 2.5);
  assert.deepEqual(
    spike.arrivals.stages.map((s) => [s.target, s.durationS]),
    [
      [30, 5],
      [30, 5],
      [2.5, 5],
    ],
  );
  const steady = applyOverrides(scenarioNamed('steady'), { p99Ms: 50 });
  assert.equal(steady.slo.p99Ms, 50);
  assert.ok(steady.slo.p95Ms <= 50);
  assert.deepEqual(thresholdsOf(steady)['http_req_duration{scenario:steady,slo:yes}'], ['p(95)<50', 'p(99)<50']);
  const slower = applyOverrides(scenarioNamed('steady'), { sloScale: 10 });
  assert.deepEqual([slower.slo.p95Ms, slower.slo.p99Ms], [1000, 2500]);
  assert.throws(() => scenarioNamed('nope'), /unknown scenario "nope"/);
});

test('percentiles interpolate linearly between ranks; trend values; empty is NaN', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50.5);
  close(percentile(xs, 99), 99.01, 1e-9, 'p99');
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile(xs, 100), 100);
  assert.ok(Number.isNaN(percentile([], 50)));
  const t = trendValues([3, 1, 2]);
  assert.deepEqual([t.min, t.med, t.max, t.avg, t.count], [1, 2, 3, 2, 3]);
});

test('thresholds and metric keys parse as k6 writes them', () => {
  assert.deepEqual(parseThreshold('p(99)<250'), { stat: 'p(99)', op: '<', value: 250 });
  assert.deepEqual(parseThreshold('rate>=0.999'), { stat: 'rate', op: '>=', value: 0.999 });
  assert.throws(() => parseThreshold('p99 < 3'), /cannot parse threshold/);
  assert.equal(meets(249, parseThreshold('p(99)<250')), true);
  assert.equal(meets(250, parseThreshold('p(99)<250')), false);
  assert.equal(meets(Number.NaN, parseThreshold('count>=0')), false);
  assert.deepEqual(parseMetricKey('http_req_duration{scenario:steady,slo:yes}'), {
    name: 'http_req_duration',
    tags: { scenario: 'steady', slo: 'yes' },
  });
  assert.deepEqual(parseMetricKey('http_reqs'), { name: 'http_reqs', tags: {} });
});

const DATA: LoadData = {
  description: 'test',
  tasks: ['a', 'b', 'c', 'd'],
  tenants: [
    { name: 'dev', key: 'k1' },
    { name: 'noisy', key: 'k2' },
  ],
  adminKey: 'admin',
  payload: {},
};

test('traffic picks: Zipf(1) over tasks in order, tenants by weight, unknown tenants refused', () => {
  const cumulative = zipfCumulative(4);
  close(cumulative[3]!, 1, 1e-12, 'total');
  assert.equal(pickIndex(cumulative, 0), 0);
  assert.equal(pickIndex(cumulative, 0.999999), 3);
  const def: ScenarioDef = {
    ...scenarioNamed('tenants'),
    traffic: [
      { tenant: 'dev', weight: 3, pick: { kind: 'zipf' } },
      { tenant: 'noisy', weight: 1, pick: { kind: 'list', models: ['alias'] }, expectRateLimited: true },
    ],
  };
  const pick = trafficPicker(def, DATA);
  const rng = new SeededRng(7);
  const counts = new Map<string, number>();
  const n = 40_000;
  let noisy = 0;
  for (let i = 0; i < n; i++) {
    const p = pick(rng.nextFloat(), rng.nextFloat());
    if (p.tenant === 'noisy') {
      noisy++;
      assert.equal(p.model, 'alias');
      assert.equal(p.expectRateLimited, true);
    } else counts.set(p.model, (counts.get(p.model) ?? 0) + 1);
  }
  close(noisy / n, 0.25, 0.01, 'noisy share');
  const h = 1 + 1 / 2 + 1 / 3 + 1 / 4;
  DATA.tasks.forEach((task, i) =>
    close((counts.get(task) ?? 0) / (n - noisy), 1 / (i + 1) / h, 0.01, `share of ${task}`),
  );
  assert.throws(
    () => trafficPicker({ ...def, traffic: [{ tenant: 'ghost', weight: 1, pick: { kind: 'first' } }] }, DATA),
    /tenant "ghost" is not in the data file/,
  );
});

function sample(over: Partial<Sample>): Sample {
  return {
    scenario: 's',
    tenant: 'dev',
    task: 'a',
    slo: 'yes',
    scheduledMs: 0,
    sentMs: 0,
    endMs: 10,
    status: 200,
    code: null,
    expected: true,
    cacheHit: true,
    queueMs: 1,
    ...over,
  };
}

test('the summary: latency from schedule, expected 429s apart from failures, drops, cache hits, tagged thresholds', () => {
  const samples: Sample[] = [
    // sent 40 ms late, answered 10 ms later: 50 ms from the schedule
    sample({ scheduledMs: 100, sentMs: 140, endMs: 150, cacheHit: false, queueMs: 5 }),
    sample({ scheduledMs: 200, sentMs: 200, endMs: 210 }),
    sample({ scheduledMs: 300, sentMs: 300, endMs: 320, task: 'b' }),
    sample({
      tenant: 'noisy',
      slo: 'no',
      status: 429,
      code: 'DS_ERR_RATE_LIMITED',
      expected: true,
      cacheHit: null,
      queueMs: null,
      scheduledMs: 0,
      endMs: 5000,
    }),
    sample({
      status: 503,
      code: 'DS_ERR_OVERLOADED',
      expected: false,
      cacheHit: null,
      queueMs: null,
      scheduledMs: 400,
      sentMs: 400,
      endMs: 402,
    }),
  ];
  const summary = buildSummary({
    samples,
    dropped: [{ scenario: 's', scheduledMs: 500 }],
    durationMs: 2000,
    thresholds: {
      'http_req_duration{scenario:s,slo:yes}': ['p(99)<60', 'max<60'],
      'http_req_failed{scenario:s}': ['rate<0.001'],
    },
  });
  const m = summary.metrics;
  assert.equal(m.http_reqs!.values.count, 5);
  assert.equal(m.http_reqs!.values.rate, 2.5);
  assert.equal(m.http_req_duration!.values.max, 5000);
  assert.equal(
    m['http_req_duration{scenario:s,slo:yes}']!.values.max,
    50,
    'the late send counts from its schedule; the 429 tenant is outside the SLO',
  );
  assert.equal(m.deltaserve_start_lag!.values.max, 40);
  assert.equal(m.deltaserve_late_requests!.values.count, 1);
  assert.deepEqual(m.http_req_failed!.values, { rate: 0.2, passes: 1, fails: 4 });
  assert.equal(m.deltaserve_rate_limited!.values.count, 1);
  assert.equal(m['deltaserve_rate_limited{tenant:noisy}']!.values.count, 1);
  assert.equal(m['deltaserve_errors{code:DS_ERR_OVERLOADED}']!.values.count, 1);
  assert.equal(
    m['deltaserve_errors{code:DS_ERR_RATE_LIMITED}']?.values.count ?? 0,
    0,
    'an expected 429 is not an error',
  );
  assert.equal(m['http_reqs{status:429}']!.values.count, 1);
  assert.equal(m['http_reqs{task:b}']!.values.count, 1);
  assert.equal(m['http_reqs{tenant:noisy}']!.values.count, 1);
  assert.deepEqual(m.deltaserve_cache_hit!.values, { rate: 2 / 3, passes: 2, fails: 1 });
  assert.equal(m.deltaserve_queue_wait!.values.count, 3);
  assert.equal(m.dropped_iterations!.values.count, 1);
  assert.equal(m['dropped_iterations{scenario:s}']!.values.count, 1);
  assert.deepEqual(
    thresholdVerdicts(summary).map((v) => [v.name, v.ok]),
    [
      ['http_req_duration{scenario:s,slo:yes} max<60', true],
      ['http_req_duration{scenario:s,slo:yes} p(99)<60', true],
      ['http_req_failed{scenario:s} rate<0.001', false],
    ],
  );
});

test('targets: loopback passes, anything else is refused unless allowed', async () => {
  assert.ok(
    isLoopbackAddress('127.0.0.1') &&
      isLoopbackAddress('127.3.4.5') &&
      isLoopbackAddress('::1') &&
      isLoopbackAddress('::ffff:127.0.0.1'),
  );
  assert.ok(!isLoopbackAddress('10.0.0.1') && !isLoopbackAddress('::2') && !isLoopbackAddress('localhost'));
  assert.equal((await checkTarget('http://127.0.0.1:8080', false)).port, '8080');
  assert.equal((await checkTarget('http://[::1]:8080/', false)).hostname, '[::1]');
  await checkTarget('http://localhost:8080', false);
  await assert.rejects(checkTarget('http://10.1.2.3:8080', false), /not a loopback address; pass --allow-remote/);
  await assert.rejects(checkTarget('ftp://127.0.0.1', false), /must be http/);
  assert.equal((await checkTarget('http://10.1.2.3:8080', true)).hostname, '10.1.2.3');
});
