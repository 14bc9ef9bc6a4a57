/**
 * Engine worker death mid-batch, three ways (an uncaught error, an exit as a killed process
 * would, and a real V8 out-of-memory end of the thread): every request in flight fails within
 * 1 s of the death with a 503 and a Retry-After, readiness drops and comes back, and the first
 * request after the restart answers bit-identically to one before the crash.
 *
 * In-process, not a spawned `serve`: the fault hook is an Engine method (and the OOM needs the
 * worker's heap limit, an Engine option), so the gateway is assembled as `bootGateway` does —
 * real engine worker, real registry, `buildServer` — and listens on a loopback port; all
 * traffic goes through real sockets.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Pool } from 'undici';
import { loadConfig } from '../../src/core/config.js';
import { Engine } from '../../src/engine/engine.js';
import type { WorkerCrash } from '../../src/engine/protocol.js';
import { loadManifest } from '../../src/registry/manifest.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { Writable } from 'node:stream';
import { buildServer, createLogger, engineOptionsFor } from '../../src/server.js';
import { INFER_BODY, ROOT, TENANT_HEADERS, sleep } from './gateway-process.js';

const IN_FLIGHT = 8;
/** The worker's V8 old-generation limit, so an out-of-memory ends only the worker thread. */
const WORKER_HEAP_MB = 128;

let dir: string;
let engine: Engine;
let app: FastifyInstance;
let pool: Pool;
const exits: number[] = [];
/** The gateway's log lines (kept out of the test output). */
const logLines: string[] = [];
const figures: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-worker-death-'));
  const config = await loadConfig({
    path: join(ROOT, 'config/default.yaml'),
    env: {
      DELTASERVE_PORT: '0',
      DELTASERVE_LOG_LEVEL: 'warn',
      DELTASERVE_REGISTRY_STATE_FILE: join(dir, 'state.json'),
      DELTASERVE_INTRA_OP_THREADS: '1',
    },
  });
  const manifest = await loadManifest(config.model.manifest!);
  const registry = await TaskRegistry.open({ declared: [...manifest.tasks], stateFile: config.registry.stateFile });
  const options = engineOptionsFor(config, manifest.base.modelPath, (event) => {
    if (event.type === 'worker-exited') exits.push(performance.now());
  });
  engine = await Engine.start({
    ...options,
    worker: { ...options.worker, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } },
  });
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (logLines.push(chunk.toString()), done()) });
  ({ app } = await buildServer(config, {
    engine,
    registry,
    telemetry: null,
    baseLabels: manifest.base.labels,
    logger: createLogger(config, sink),
  }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  pool = new Pool(url, { connections: IN_FLIGHT + 2 });
});

after(async () => {
  await pool?.close();
  await app?.close();
  await engine?.close(1000);
  await rm(dir, { recursive: true, force: true });
  if (figures.length > 0) console.log(`worker-death figures:\n  ${figures.join('\n  ')}`);
});

interface Answer {
  readonly status: number;
  readonly at: number;
  readonly ms: number;
  readonly body: { code?: string; outputs?: { data: number[] }[] };
  readonly retryAfter: unknown;
}

async function infer(task: string): Promise<Answer> {
  const started = performance.now();
  const response = await pool.request({
    path: `/v2/models/${task}/infer`,
    method: 'POST',
    headers: TENANT_HEADERS,
    body: INFER_BODY,
  });
  const body = (await response.body.json()) as Answer['body'];
  const at = performance.now();
  return { status: response.statusCode, at, ms: at - started, body, retryAfter: response.headers['retry-after'] };
}

async function readyStatus(): Promise<number> {
  const response = await pool.request({ path: '/v2/health/ready', method: 'GET' });
  await response.body.dump();
  return response.statusCode;
}

for (const how of ['throw', 'exit', 'oom'] as const satisfies readonly WorkerCrash[]) {
  test(
    `worker death by "${how}" mid-batch: in-flight requests get 503 within 1 s, readiness drops and returns, answers are unchanged after`,
    { timeout: 60_000 },
    async () => {
      const before = await infer('footwear');
      assert.equal(before.status, 200);
      assert.equal(await readyStatus(), 200);
      const exitsBefore = exits.length;

      await engine.crashWorkerOnNextBatch(how);
      const answers = await Promise.all(Array.from({ length: IN_FLIGHT }, () => infer('footwear')));
      assert.equal(exits.length, exitsBefore + 1, 'the worker exited once');
      const diedAt = exits.at(-1)!;
      for (const answer of answers) {
        assert.equal(answer.status, 503, JSON.stringify(answer.body));
        assert.match(answer.body.code ?? '', /^DS_ERR_ENGINE_(CRASHED|NOT_READY)$/);
        assert.match(String(answer.retryAfter), /^[1-9]\d*$/);
      }
      assert.ok(
        answers.some((a) => a.body.code === 'DS_ERR_ENGINE_CRASHED'),
        'the batch that was running failed with the crash',
      );
      const lastAnswerAfterDeath = Math.max(...answers.map((a) => a.at)) - diedAt;
      assert.ok(
        lastAnswerAfterDeath <= 1000,
        `the last in-flight request was answered ${lastAnswerAfterDeath.toFixed(0)} ms after the worker died`,
      );

      // Readiness: down while the worker restarts, then up again (bounded wait).
      const readiness: number[] = [await readyStatus()];
      const deadline = Date.now() + 30_000;
      while (readiness.at(-1) !== 200) {
        assert.ok(Date.now() < deadline, `readiness did not come back: ${readiness.join(',')}`);
        await sleep(20);
        readiness.push(await readyStatus());
      }
      const readyAgainMs = performance.now() - diedAt;
      assert.equal(readiness[0], 503, 'readiness dropped');

      const afterRestart = await infer('footwear');
      assert.equal(afterRestart.status, 200, JSON.stringify(afterRestart.body));
      assert.deepEqual(
        afterRestart.body.outputs,
        before.body.outputs,
        'bit-identical answers before and after the restart',
      );
      assert.ok(
        logLines.some((line) => line.includes('DS_ERR_ENGINE_CRASHED')),
        'the crash is in the gateway log',
      );
      const codes = answers
        .map((a) => a.body.code)
        .reduce<Record<string, number>>((n, c) => ({ ...n, [c!]: (n[c!] ?? 0) + 1 }), {});
      figures.push(
        `${how}: ${IN_FLIGHT} in flight → ${JSON.stringify(codes)}, sent→503 max ${Math.max(...answers.map((a) => a.ms)).toFixed(0)} ms, ` +
          `last 503 ${lastAnswerAfterDeath.toFixed(0)} ms after the death; ready again after ${readyAgainMs.toFixed(0)} ms (${readiness.filter((s) => s === 503).length} polls saw 503)`,
      );
    },
  );
}

test(
  'an out-of-memory fault is refused without a worker heap limit (it would end the process)',
  { timeout: 30_000 },
  async () => {
    const config = await loadConfig({
      path: join(ROOT, 'config/default.yaml'),
      env: { DELTASERVE_REGISTRY_STATE_FILE: join(dir, 'other.json'), DELTASERVE_INTRA_OP_THREADS: '1' },
    });
    const manifest = await loadManifest(config.model.manifest!);
    const unlimited = await Engine.start(engineOptionsFor(config, manifest.base.modelPath));
    try {
      await assert.rejects(unlimited.crashWorkerOnNextBatch('oom'), /needs WorkerOptions\.resourceLimits/);
      assert.equal(unlimited.ready, true);
    } finally {
      await unlimited.close(1000);
    }
  },
);
