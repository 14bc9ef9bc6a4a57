/**
 * HTTP overhead of the gateway (issue: HTTP gateway): the same 28 × 28 request on the demo zoo
 * sent (1) straight to the engine and (2) through the gateway over loopback HTTP with an undici
 * client, interleaved one by one in the same run so machine noise hits both alike; the
 * overhead is the difference of the medians (goal: p50 ≤ 1 ms). Then the throughput of
 * `GET /v2/health/ready` with 16 concurrent keep-alive clients.
 * Run: node --import tsx bench/http.ts
 */
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { loadConfig } from '../src/core/config.js';
import { bootGateway } from '../src/server.js';
import { taskRefOf } from '../src/registry/task-registry.js';
import { SeededRng } from '../src/core/rng.js';
import { machineLine } from './machine.js';
import { percentile } from '../loadtest/runner/stats.js';

const ROUNDS = 1000;
const WARMUP = 100;
const HEALTH_SECONDS = 5;
const HEALTH_CLIENTS = 16;

export async function runHttpBench(): Promise<string> {
  const config = await loadConfig({
    env: {
      ...process.env,
      DELTASERVE_PORT: '0',
      DELTASERVE_LOG_LEVEL: 'warn',
      DELTASERVE_REGISTRY_STATE_FILE: '/tmp/deltaserve-bench-state.json',
    },
  });
  const gateway = await bootGateway(config);
  const url = await gateway.listen();
  const pool = new Pool(url, { connections: HEALTH_CLIENTS });
  const task = taskRefOf(gateway.registry.get('footwear')!);
  const rng = new SeededRng(5);
  const pixels = Array.from({ length: 784 }, () => rng.nextFloat());
  const body = JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: pixels }] });
  const headers = { authorization: 'Bearer dev-key', 'content-type': 'application/json' };

  const direct: number[] = [];
  const http: number[] = [];
  for (let i = 0; i < ROUNDS + WARMUP; i++) {
    const t0 = performance.now();
    await gateway.engine.infer(task, {
      pixels: { type: 'float32', dims: [1, 1, 28, 28], data: Float32Array.from(pixels) },
    });
    const t1 = performance.now();
    const response = await pool.request({ path: '/v2/models/footwear/infer', method: 'POST', headers, body });
    const text = await response.body.text();
    const t2 = performance.now();
    if (response.statusCode !== 200) throw new Error(`infer answered ${response.statusCode}: ${text}`);
    if (i >= WARMUP) {
      direct.push(t1 - t0);
      http.push(t2 - t1);
    }
  }

  let healthRequests = 0;
  const stopAt = performance.now() + HEALTH_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: HEALTH_CLIENTS }, async () => {
      while (performance.now() < stopAt) {
        const response = await pool.request({ path: '/v2/health/ready', method: 'GET' });
        await response.body.dump();
        if (response.statusCode === 200) healthRequests++;
      }
    }),
  );
  await pool.close();
  await gateway.shutdown();

  const row = (name: string, xs: number[]) =>
    `| ${name} | ${percentile(xs, 50).toFixed(3)} | ${percentile(xs, 90).toFixed(3)} | ${percentile(xs, 99).toFixed(3)} |`;
  const overhead50 = percentile(http, 50) - percentile(direct, 50);
  const overhead99 = percentile(http, 99) - percentile(direct, 99);
  return [
    '### HTTP gateway overhead',
    '',
    machineLine('npm run bench -- http   (node --import tsx bench/http.ts)'),
    '',
    `Demo zoo (tiny ViT), task \`footwear\` (resident after the warm-up), one 1 × 1 × 28 × 28 FP32 request at a time. ${ROUNDS} rounds after ${WARMUP} warm-up rounds; each round calls the engine directly, then the same request through \`POST /v2/models/footwear/infer\` (JSON, bearer auth, tenant routing, validation, metrics, trace hooks) over loopback with an undici keep-alive client, so both see the same machine state.`,
    '',
    '| path | p50 ms | p90 ms | p99 ms |',
    '|---|---:|---:|---:|',
    row('engine.infer (direct)', direct),
    row('HTTP infer (gateway)', http),
    '',
    `HTTP overhead: p50 **${overhead50.toFixed(3)} ms** (goal ≤ 1 ms), p99 ${overhead99.toFixed(3)} ms.`,
    '',
    `\`GET /v2/health/ready\`: **${(healthRequests / HEALTH_SECONDS).toFixed(0)} requests/s** with ${HEALTH_CLIENTS} concurrent keep-alive clients in the same process as the gateway (client and server share the 2 cores).`,
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runHttpBench());
}
