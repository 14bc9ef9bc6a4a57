/**
 * Tenant isolation with the load generator kept off the gateway's cores (issue 22): the gateway
 * (`deltaserve serve`, demo zoo) runs under `taskset -c $GATEWAY_CPUS` (default 0) and this
 * process should itself run under `taskset -c 1`. Tenant `dev` sends 20 req/s to `footwear`,
 * alone and then while tenant `noisy` (rate limit NOISY_LIMIT req/s, default 10, burst the same)
 * sends 10× its limit to the same task, alternated; latency from each request's scheduled send time.
 *
 * Run: taskset -c 1 node --import tsx bench/isolation-pinned.ts   (ROUNDS, SECONDS to change)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../src/core/config-dev-keys.js';
import { sha256Hex } from '../src/core/sha256.js';
import { median, percentile } from '../loadtest/runner/stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 8);
const CPUS = process.env.GATEWAY_CPUS ?? '0';
const NOISY_KEY = 'bench-noisy-key';
/** noisy's rate limit, req/s; it sends 10× this. */
const NOISY_LIMIT = Number(process.env.NOISY_LIMIT ?? 10);
const BODY = JSON.stringify({
  inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0) }],
});

const dir = await mkdtemp(join(tmpdir(), 'deltaserve-iso-'));
const config = join(dir, 'gateway.yaml');
await writeFile(
  config,
  stringify({
    devMode: true,
    listen: { host: '127.0.0.1', port: 0 },
    model: { manifest: join(ROOT, 'models/zoo.yaml') },
    registry: { stateFile: join(dir, 'state.json') },
    tenants: [
      { name: 'dev', keySha256: [sha256Hex(DEV_TENANT_KEY)], tasks: ['*'] },
      {
        name: 'noisy',
        keySha256: [sha256Hex(NOISY_KEY)],
        tasks: ['footwear'],
        rateLimit: { requestsPerSecond: NOISY_LIMIT, burst: NOISY_LIMIT },
      },
    ],
    admin: { keySha256: [sha256Hex(DEV_ADMIN_KEY)] },
    logLevel: 'warn',
  }),
);
const child = spawn(
  'taskset',
  ['-c', CPUS, process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'serve', '--config', config],
  {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
let stdout = '';
child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
const url = await new Promise<string>((resolve, reject) => {
  const timer = setInterval(() => {
    const match = /listening on (http:\/\/\S+)/.exec(stdout);
    if (match) {
      clearInterval(timer);
      resolve(match[1]!);
    }
  }, 50);
  child.once('exit', () => reject(new Error('gateway exited')));
});
const pool = new Pool(url, { connections: 64 });

/** Open-loop: `rate` req/s for SECONDS, latency from each scheduled send; returns ms per answer and statuses. */
async function drive(key: string, rate: number): Promise<{ ms: number[]; statuses: Map<number, number> }> {
  const ms: number[] = [];
  const statuses = new Map<number, number>();
  const start = performance.now();
  const total = Math.round(rate * SECONDS);
  const sends: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sends.push(
      pool
        .request({
          path: '/v2/models/footwear/infer',
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: BODY,
        })
        .then(async (response) => {
          await response.body.dump();
          ms.push(performance.now() - scheduled);
          statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        }),
    );
  }
  await Promise.all(sends);
  return { ms, statuses };
}

try {
  // Warm-up: the task's delta loaded and the engine warm before anything is measured.
  for (let i = 0; i < 20; i++) {
    const response = await pool.request({
      path: '/v2/models/footwear/infer',
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' },
      body: BODY,
    });
    await response.body.dump();
  }
  const alone: number[] = [];
  const loaded: number[] = [];
  let noisySent = 0;
  let noisyLimited = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const a = await drive(DEV_TENANT_KEY, 20);
    alone.push(percentile(a.ms, 99));
    const [d, n] = await Promise.all([drive(DEV_TENANT_KEY, 20), drive(NOISY_KEY, 10 * NOISY_LIMIT)]);
    loaded.push(percentile(d.ms, 99));
    noisySent += n.ms.length;
    noisyLimited += n.statuses.get(429) ?? 0;
    console.log(
      `round ${round + 1}: dev p99 alone ${alone.at(-1)!.toFixed(1)} ms, with noisy ${loaded.at(-1)!.toFixed(1)} ms; dev statuses ${JSON.stringify([...d.statuses])}`,
    );
  }
  const ratio = median(loaded) / median(alone);
  console.log(
    `noisy sent ${noisySent}, ${noisyLimited} answered 429; dev p99 with noisy / alone (medians): ${ratio.toFixed(2)} (goal <= 1.10)`,
  );
} finally {
  await pool.close();
  child.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
}
