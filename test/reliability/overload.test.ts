/**
 * Overload against a real gateway process on the demo zoo: first its capacity is measured in the
 * same run (closed loop, mixed tasks), then open-loop arrivals at twice that rate for
 * DELTASERVE_OVERLOAD_SECONDS (default 60 in `npm run test:long`; 10 s at four times the rate in
 * `npm test`), latency measured from each request's scheduled time. Asserted (the hard properties): the process survives; every request is answered, with
 * 200 or a shed 429/503 that carries a Retry-After, nothing else; the peak RSS stays within
 * the start-up RSS + the cache budget + a stated margin; the gateway is healthy afterwards.
 * Reported, not asserted (timings on a shared machine): capacity, shed and served latency
 * percentiles, RSS, and the HTTP thread's event-loop delay from /metrics.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { parseSamples } from '../telemetry/prometheus-text.js';
import {
  ADMIN_HEADERS,
  INFER_BODY,
  TENANT_HEADERS,
  percentile,
  sleep,
  startGateway,
  type GatewayProcess,
} from './gateway-process.js';
import { byLength } from './test-length.js';
import { arrivalOffsetsMs } from '../../loadtest/runner/arrivals.js';
import { runOpenLoop } from '../../loadtest/runner/open-loop.js';

const SECONDS = Number(process.env.DELTASERVE_OVERLOAD_SECONDS ?? byLength(10, 60));
const CAPACITY_SECONDS = 5;
/**
 * Offered rate / measured capacity. The 5 s closed-loop capacity is noisy on a shared machine
 * (measured at half what the gateway then served); over 60 s twice it still fills the queues,
 * over the short run's 10 s it may not, so the short run offers four times it.
 */
const OVERLOAD = byLength(4, 2);
const CAPACITY_CONCURRENCY = 32;
const TASKS = ['footwear', 'coarse4', 'rotated', 'digits'];
const CACHE_BYTES = 64 * 1024 ** 2;
/** Above start-up RSS + the cache budget: sockets, queued request bodies, GC slack. */
const RSS_MARGIN_BYTES = 256 * 1024 ** 2;
/**
 * Client connections, all opened before the load (a fleet of keep-alive clients). More than the
 * queue bound, so the gateway has to shed; opened on demand during the load instead, their
 * connection storm overflowed the listen backlog of a starved process on the shared machine
 * (connect timeouts after 10 s, no HTTP answer at all; see docs/reliability.md).
 */
const CONNECTIONS = 512;
const MB = 1024 ** 2;

let gateway: GatewayProcess;
let pool: Pool;
let startRss: number;

before(async () => {
  gateway = await startGateway({
    engine: { intraOpThreads: 1, cacheBytes: CACHE_BYTES },
    // Queue bounds of a latency-sensitive deployment: a full queue drains in well under a second.
    batching: { maxBatchSize: 8, maxQueueDelayMs: 2, maxQueuedPerTask: 64, maxQueuedTotal: 256 },
  });
  startRss = gateway.rssBytes();
  pool = new Pool(gateway.url, { connections: CONNECTIONS });
});

after(async () => {
  await pool?.destroy();
  await gateway?.stop();
});

interface Outcome {
  readonly status: number;
  /** From the scheduled send time to the end of the response. */
  readonly ms: number;
  readonly retryAfter: boolean;
  readonly code?: string;
}

async function send(task: string, scheduled: number): Promise<Outcome> {
  try {
    const response = await pool.request({
      path: `/v2/models/${task}/infer`,
      method: 'POST',
      headers: TENANT_HEADERS,
      body: INFER_BODY,
    });
    const text = await response.body.text();
    const code = response.statusCode === 200 ? undefined : (JSON.parse(text) as { code?: string }).code;
    return {
      status: response.statusCode,
      ms: performance.now() - scheduled,
      retryAfter: /^[1-9]\d*$/.test(String(response.headers['retry-after'])),
      ...(code && { code }),
    };
  } catch (error) {
    return {
      status: 0,
      ms: performance.now() - scheduled,
      retryAfter: false,
      code: (error as Error & { code?: string }).code ?? (error as Error).message,
    };
  }
}

async function eventLoopDelay(): Promise<Record<string, number>> {
  const response = await pool.request({
    path: '/metrics',
    method: 'GET',
    headers: { authorization: ADMIN_HEADERS.authorization },
  });
  const samples = parseSamples(await response.body.text());
  return Object.fromEntries(
    samples
      .filter((s) => s.name === 'deltaserve_event_loop_delay_seconds')
      .map((s) => [s.labels.quantile!, s.value * 1000]),
  );
}

test(
  `overload: open-loop arrivals at ${OVERLOAD} × measured capacity for ${SECONDS} s`,
  { timeout: 60_000 + SECONDS * 2000 },
  async () => {
    // Warm every task (deltas cached), then measure capacity with a closed loop.
    for (const task of TASKS) assert.equal((await send(task, performance.now())).status, 200);
    let served = 0;
    const capacityEnd = performance.now() + CAPACITY_SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CAPACITY_CONCURRENCY }, async (_, worker) => {
        for (let i = worker; performance.now() < capacityEnd; i++) {
          const outcome = await send(TASKS[i % TASKS.length]!, performance.now());
          assert.equal(outcome.status, 200, `capacity run: ${outcome.status} ${outcome.code}`);
          served++;
        }
      }),
    );
    const capacity = served / CAPACITY_SECONDS;
    const rate = OVERLOAD * capacity;

    // Open every connection now, a few at a time, so the load below sends on established sockets.
    for (let opened = 0; opened < CONNECTIONS; opened += 64) {
      await Promise.all(
        Array.from({ length: 64 }, async () =>
          (await pool.request({ path: '/v2/health/live', method: 'GET' })).body.dump(),
        ),
      );
    }
    await eventLoopDelay(); // starts a fresh event-loop window
    const rss: number[] = [];
    const rssTimer = setInterval(() => rss.push(gateway.rssBytes()), 250);
    // Open loop (loadtest/runner/open-loop.ts): every arrival is sent when due, whether or not
    // earlier ones were answered, and timed from then.
    const outcomes: Outcome[] = [];
    const load = runOpenLoop({
      offsetsMs: arrivalOffsetsMs({ kind: 'constant', rate, durationS: SECONDS }, Math.random),
      send: async ({ index, scheduledMs }) => void outcomes.push(await send(TASKS[index % TASKS.length]!, scheduledMs)),
    });
    // Every request is answered: bounded by the test timeout, and by the drain wait here.
    await Promise.race([
      load,
      sleep((SECONDS + 60) * 1000).then(() => {
        throw new Error('requests still unanswered 60 s after the load ended');
      }),
    ]);
    clearInterval(rssTimer);
    const loop = await eventLoopDelay();

    assert.equal(gateway.exited(), null, 'the gateway survived');
    const health = await pool.request({ path: '/v2/health/ready', method: 'GET' });
    assert.equal(health.statusCode, 200);
    await health.body.dump();

    const ok = outcomes.filter((o) => o.status === 200);
    const shed = outcomes.filter((o) => o.status === 429 || o.status === 503);
    const other = outcomes.filter((o) => o.status !== 200 && o.status !== 429 && o.status !== 503);
    const statuses = outcomes.reduce<Record<string, number>>(
      (n, o) => ({
        ...n,
        [`${o.status}${o.code ? ` ${o.code}` : ''}`]: (n[`${o.status}${o.code ? ` ${o.code}` : ''}`] ?? 0) + 1,
      }),
      {},
    );
    assert.deepEqual(other, [], `every request answered with 200, 429 or 503: ${JSON.stringify(statuses)}`);
    assert.ok(
      shed.every((o) => o.retryAfter),
      'every shed response carries Retry-After',
    );
    assert.ok(shed.length > 0, 'twice the capacity was shed in part');
    const peakRss = Math.max(...rss);
    const rssBound = startRss + CACHE_BYTES + RSS_MARGIN_BYTES;
    assert.ok(
      peakRss <= rssBound,
      `peak RSS ${(peakRss / MB).toFixed(0)} MiB > start ${(startRss / MB).toFixed(0)} + cache ${CACHE_BYTES / MB} + margin ${RSS_MARGIN_BYTES / MB} MiB`,
    );

    const ms = (xs: Outcome[], p: number) =>
      percentile(
        xs.map((o) => o.ms),
        p,
      ).toFixed(1);
    const shedP50 = percentile(
      shed.map((o) => o.ms),
      50,
    );
    const shedP99 = percentile(
      shed.map((o) => o.ms),
      99,
    );
    console.log(
      [
        `overload figures (${SECONDS} s, tasks ${TASKS.join(', ')}, maxQueuedPerTask 64, maxQueuedTotal 256, cacheBytes ${CACHE_BYTES / MB} MiB, intraOpThreads 1, ${CONNECTIONS} keep-alive connections):`,
        `  capacity (closed loop, ${CAPACITY_CONCURRENCY} clients, ${CAPACITY_SECONDS} s): ${capacity.toFixed(0)} req/s; offered ${rate.toFixed(0)} req/s open loop, ${outcomes.length} requests`,
        `  answers: ${JSON.stringify(statuses)}; served ${(ok.length / SECONDS).toFixed(0)} req/s`,
        `  shed latency from scheduled time: p50 ${shedP50.toFixed(1)} ms, p99 ${shedP99.toFixed(1)} ms (< 50 ms: p50 ${shedP50 < 50 ? 'yes' : 'no'}, p99 ${shedP99 < 50 ? 'yes' : 'no'})`,
        `  served latency from scheduled time: p50 ${ms(ok, 50)} ms, p99 ${ms(ok, 99)} ms`,
        `  RSS: start ${(startRss / MB).toFixed(0)} MiB, peak ${(peakRss / MB).toFixed(0)} MiB (bound ${(rssBound / MB).toFixed(0)} MiB)`,
        `  HTTP thread event-loop delay over the load (/metrics): p50 ${loop['0.5']?.toFixed(1)} ms, p99 ${loop['0.99']?.toFixed(1)} ms, max ${loop['1']?.toFixed(1)} ms (p99 ≤ 10 ms: ${(loop['0.99'] ?? Infinity) <= 10 ? 'yes' : 'no'})`,
      ].join('\n'),
    );
  },
);
