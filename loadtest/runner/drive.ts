/**
 * Runs one scenario open-loop against a gateway (open-loop.ts): requests are sent at their
 * scheduled times whatever the server does; latency is measured from the scheduled time; an
 * arrival that finds `maxInFlight` requests outstanding is dropped and counted, one sent more
 * than LATE_MS after its time is counted late (the runner itself could not keep up).
 */
import { Pool } from 'undici';
import { SeededRng } from '../../src/core/rng.js';
import { HEADERS, durationOf, trafficPicker, type LoadData, type ScenarioDef } from '../scenarios/scenarios.js';
import { arrivalOffsetsMs } from './arrivals.js';
import { runOpenLoop } from './open-loop.js';
import type { DroppedArrival, Sample } from './samples.js';
import { percentileOfSorted } from './stats.js';

/** Stop a scenario when more than this fraction failed after ABORT_AFTER_MS: continuing is waste. */
export const ABORT_FAILED_RATE = 0.5;
export const ABORT_AFTER_MS = 10_000;

export interface DriveOptions {
  readonly baseUrl: string;
  readonly data: LoadData;
  readonly def: ScenarioDef;
  readonly seed: number;
  /** At most this many arrivals are scheduled. */
  readonly maxRequests: number;
  readonly requestTimeoutMs: number;
  readonly onProgress?: (progress: Progress) => void;
}

export interface Progress {
  readonly scenario: string;
  readonly elapsedS: number;
  readonly durationS: number;
  readonly sent: number;
  readonly ok: number;
  readonly rateLimited: number;
  readonly failed: number;
  readonly dropped: number;
  readonly inFlight: number;
  /** p99 latency (from schedule) of the responses in the last second, ms. */
  readonly recentP99Ms: number | null;
}

export interface DriveResult {
  readonly samples: Sample[];
  readonly dropped: DroppedArrival[];
  readonly startedMs: number;
  readonly endedMs: number;
  /** Why the scenario stopped early, or null. */
  readonly aborted: string | null;
}

function errorCodeOf(text: string): string {
  try {
    const code = (JSON.parse(text) as { code?: unknown }).code;
    return typeof code === 'string' ? code : 'no_code';
  } catch {
    return 'not_json';
  }
}

export async function driveScenario(options: DriveOptions): Promise<DriveResult> {
  const { def, data } = options;
  const rng = new SeededRng(options.seed);
  const random = (): number => rng.nextFloat();
  const offsets = arrivalOffsetsMs(def.arrivals, random, options.maxRequests);
  const durationS = durationOf(def.arrivals);
  const pick = trafficPicker(def, data);
  const body = JSON.stringify(data.payload);
  const keys = new Map(data.tenants.map((t) => [t.name, t.key]));
  const pool = new Pool(options.baseUrl, {
    connections: def.maxInFlight,
    headersTimeout: options.requestTimeoutMs,
    bodyTimeout: options.requestTimeoutMs,
  });

  const samples: Sample[] = [];
  const dropped: DroppedArrival[] = [];
  let inFlight = 0;
  let ok = 0;
  let limited = 0;
  let failed = 0;
  let aborted: string | null = null;
  const startedMs = performance.now() + 20;

  const fire = async (scheduledMs: number): Promise<void> => {
    const choice = pick(random(), random());
    const sentMs = performance.now();
    inFlight++;
    let status = 0;
    let code: string | null = null;
    let cacheHit: boolean | null = null;
    let queueMs: number | null = null;
    try {
      const response = await pool.request({
        path: `/v2/models/${encodeURIComponent(choice.model)}/infer`,
        method: 'POST',
        headers: { authorization: `Bearer ${keys.get(choice.tenant)!}`, 'content-type': 'application/json' },
        body,
      });
      status = response.statusCode;
      const text = await response.body.text();
      if (status === 200) {
        const cache = response.headers[HEADERS.cache];
        if (cache === 'hit' || cache === 'miss') cacheHit = cache === 'hit';
        const queued = Number(response.headers[HEADERS.queueMs]);
        if (Number.isFinite(queued)) queueMs = queued;
      } else {
        code = errorCodeOf(text);
      }
    } catch (error) {
      code = `network_${(error as { code?: string }).code ?? 'error'}`;
    }
    const expected = status === 200 || (status === 429 && choice.expectRateLimited);
    if (status === 200) ok++;
    else if (expected) limited++;
    else failed++;
    samples.push({
      scenario: def.name,
      tenant: choice.tenant,
      task: choice.model,
      slo: choice.expectRateLimited ? 'no' : 'yes',
      scheduledMs,
      sentMs,
      endMs: performance.now(),
      status,
      code,
      expected,
      cacheHit,
      queueMs,
    });
    inFlight--;
  };

  const progressTimer = setInterval(() => {
    const now = performance.now();
    const elapsedMs = now - startedMs;
    const recent = samples
      .filter((s) => s.endMs > now - 1000)
      .map((s) => s.endMs - s.scheduledMs)
      .sort((a, b) => a - b);
    options.onProgress?.({
      scenario: def.name,
      elapsedS: elapsedMs / 1000,
      durationS,
      sent: samples.length + inFlight,
      ok,
      rateLimited: limited,
      failed,
      dropped: dropped.length,
      inFlight,
      recentP99Ms: recent.length === 0 ? null : percentileOfSorted(recent, 99),
    });
    const answered = ok + limited + failed;
    if (aborted === null && elapsedMs > ABORT_AFTER_MS && answered > 0 && failed / answered > ABORT_FAILED_RATE) {
      aborted = `${failed} of ${answered} requests failed after ${(elapsedMs / 1000).toFixed(0)} s`;
    }
  }, 1000);
  progressTimer.unref();

  try {
    await runOpenLoop({
      offsetsMs: offsets,
      startMs: startedMs,
      maxInFlight: def.maxInFlight,
      stop: () => aborted !== null,
      onDrop: (arrival) => dropped.push({ scenario: def.name, scheduledMs: arrival.scheduledMs }),
      send: (arrival) => fire(arrival.scheduledMs),
    });
  } finally {
    clearInterval(progressTimer);
    await pool.close();
  }
  return { samples, dropped, startedMs, endedMs: performance.now(), aborted };
}
