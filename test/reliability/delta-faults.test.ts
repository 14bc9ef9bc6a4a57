/**
 * Delta store faults against a real gateway process: tasks whose deltas live on a local fault
 * store (http allowed for 127.0.0.1 only), one task per fault. For each fault: only that task
 * fails, with a 503 naming it and a Retry-After and no internals; a cached task keeps serving at
 * its normal latency meanwhile (median compared with a baseline measured in the same run, as a
 * ratio); and once the store recovers the task serves, without a restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'undici';
import { FaultStore, type FaultMode } from './fault-store.js';
import { INFER_BODY, TENANT_HEADERS, ZOO, median, startGateway, type GatewayProcess } from './gateway-process.js';

const FAULTS: readonly { mode: Exclude<FaultMode, 'ok' | '5xx-once'> | 'down'; expect: RegExp }[] = [
  { mode: 'down', expect: /DS_ERR_SOURCE_(RETRIES_EXHAUSTED|CONNECTION)/ },
  { mode: 'slow', expect: /DS_ERR_SOURCE_(TIMEOUT|RETRIES_EXHAUSTED)/ },
  { mode: '5xx', expect: /DS_ERR_SOURCE_(RETRIES_EXHAUSTED|HTTP_STATUS)/ },
  { mode: 'truncated', expect: /DS_ERR_SOURCE_(RETRIES_EXHAUSTED|TRUNCATED)/ },
  { mode: 'corrupted', expect: /DS_ERR_SOURCE_CHECKSUM/ },
  { mode: 'wrong-sha256', expect: /DS_ERR_SOURCE_CHECKSUM/ },
  { mode: 'drip', expect: /DS_ERR_SOURCE_(TIMEOUT|RETRIES_EXHAUSTED)/ },
  { mode: 'redirect-loop', expect: /DS_ERR_SOURCE_TOO_MANY_REDIRECTS/ },
  { mode: 'huge-length', expect: /DS_ERR_SOURCE_TOO_LARGE/ },
];
/** A cached task's median latency during a fault may be this many times its baseline (generous: a shared 2-core machine). */
const LATENCY_RATIO_BOUND = 5;
const BASELINE_REQUESTS = 40;
const MIN_PROBES = 10;

let store: FaultStore;
let gateway: GatewayProcess;
let pool: Pool;
let baselineMs: number;
const figures: string[] = [];

const taskOf = (mode: string) => `fault-${mode}`;

before(async () => {
  const bytes = new Uint8Array(await readFile(join(ZOO, 'tasks/coarse4/delta.safetensors')));
  const other = new Uint8Array(await readFile(join(ZOO, 'tasks/footwear/delta.safetensors')));
  const names = [...FAULTS.map((f) => taskOf(f.mode)), taskOf('5xx-once')];
  store = new FaultStore(new Map(names.map((n) => [n, { bytes, other }])));
  await store.start();
  const labels = ['tops', 'bottoms', 'footwear', 'bags'];
  const tasks = names.map((name) => ({
    name,
    version: '1',
    uri: name === taskOf('down') ? store.downUri(name) : store.uri(name),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    labels,
    numClasses: 4,
  }));
  gateway = await startGateway({
    deltas: {
      allowedSchemes: ['file', 'http'],
      allowedHosts: ['127.0.0.1'],
      maxBytes: 8 * 1024 * 1024,
      connectTimeoutMs: 1000,
      headersTimeoutMs: 1000,
      bodyTimeoutMs: 1000,
      fetchTimeoutMs: 2500,
      minBytesPerSecond: 16_384,
      rateGraceMs: 500,
      retries: 1,
    },
    registry: { tasks },
  });
  pool = new Pool(gateway.url, { connections: 4 });
  // The cached task: loaded once, then every probe is a cache hit.
  for (let i = 0; i < 10; i++) assert.equal((await infer('footwear')).status, 200);
  const samples: number[] = [];
  for (let i = 0; i < BASELINE_REQUESTS; i++) samples.push((await infer('footwear')).ms);
  baselineMs = median(samples);
  figures.push(`baseline: footwear (cached) median ${baselineMs.toFixed(2)} ms over ${BASELINE_REQUESTS} requests`);
});

after(async () => {
  await pool?.close();
  await gateway?.stop();
  await store?.close();
  if (figures.length > 0) console.log(`delta-faults figures:\n  ${figures.join('\n  ')}`);
});

async function infer(
  task: string,
): Promise<{ status: number; ms: number; body: { code?: string; error?: string }; retryAfter: string | undefined }> {
  const started = performance.now();
  const response = await pool.request({
    path: `/v2/models/${task}/infer`,
    method: 'POST',
    headers: TENANT_HEADERS,
    body: INFER_BODY,
  });
  const body = (await response.body.json()) as { code?: string; error?: string };
  const retryAfter = response.headers['retry-after'];
  return {
    status: response.statusCode,
    ms: performance.now() - started,
    body,
    retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
  };
}

/** Runs `fault` while probing the cached task back to back; returns the probes' latencies. */
async function probeDuring<T>(fault: Promise<T>): Promise<{ result: T; probes: number[] }> {
  let done = false;
  const settled = fault.finally(() => (done = true));
  const probes: number[] = [];
  while (!done || probes.length < MIN_PROBES) {
    const probe = await infer('footwear');
    assert.equal(probe.status, 200, `the cached task failed during a fault: ${JSON.stringify(probe.body)}`);
    probes.push(probe.ms);
  }
  return { result: await settled, probes };
}

for (const { mode, expect } of FAULTS) {
  test(
    `delta store fault "${mode}": only its task fails (503 naming it, Retry-After), the cached task keeps its latency, recovery needs no restart`,
    { timeout: 30_000 },
    async () => {
      const task = taskOf(mode);
      // A baseline just before the fault as well as the run's: the machine's load drifts.
      const local: number[] = [];
      for (let i = 0; i < MIN_PROBES; i++) local.push((await infer('footwear')).ms);
      const before = Math.max(baselineMs, median(local));
      if (mode !== 'down') store.set(task, mode);
      const { result: failed, probes } = await probeDuring(infer(task));

      assert.equal(failed.status, 503, JSON.stringify(failed.body));
      assert.equal(failed.body.code, 'DS_ERR_TASK_UNAVAILABLE');
      assert.match(failed.body.error!, new RegExp(`Task ${task}@1 is unavailable`));
      assert.match(failed.body.error!, expect);
      assert.doesNotMatch(failed.body.error!, /127\.0\.0\.1|safetensors|http:/, 'a tenant never sees the delta URI');
      assert.match(failed.retryAfter ?? '', /^[1-9]\d*$/);
      const ratio = median(probes) / before;
      assert.ok(
        ratio <= LATENCY_RATIO_BOUND,
        `cached task median ${median(probes).toFixed(2)} ms during the fault = ${ratio.toFixed(2)} × baseline`,
      );
      assert.equal(gateway.exited(), null);

      if (mode === 'down') await store.recoverDown();
      else store.set(task, 'ok');
      const recovered = await infer(task);
      assert.equal(recovered.status, 200, `after recovery: ${JSON.stringify(recovered.body)}`);
      figures.push(
        `${mode}: 503 after ${failed.ms.toFixed(0)} ms (${/\((DS_ERR_\w+)\)/.exec(failed.body.error!)?.[1]}), Retry-After ${failed.retryAfter}; ` +
          `cached task median ${median(probes).toFixed(2)} ms over ${probes.length} probes (${ratio.toFixed(2)} × the larger of the run's baseline and ${median(local).toFixed(2)} ms just before); recovered: 200 in ${recovered.ms.toFixed(0)} ms`,
      );
    },
  );
}

test('a single 5xx from the store is absorbed by a retry: the request succeeds', { timeout: 30_000 }, async () => {
  const task = taskOf('5xx-once');
  store.set(task, '5xx-once');
  const served = await infer(task);
  assert.equal(served.status, 200, JSON.stringify(served.body));
  assert.equal(store.requestCount(task), 2);
  figures.push(`5xx-once: 200 after ${served.ms.toFixed(0)} ms (2 store requests)`);
});
