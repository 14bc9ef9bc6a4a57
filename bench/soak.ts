/**
 * Soak (issue: reliability; a bench, not CI): a real gateway process on the demo zoo under
 * mixed traffic for `--minutes` (default 30): closed-loop inference over every zoo task, a task
 * registered and retired through the admin API every few seconds, explicit unloads, and a cache
 * budget small enough that deltas are evicted and reloaded all the time. Reported: the gateway's
 * RSS slope (least squares over the samples after the first 10 %), open file descriptors over
 * the run, counts of every answer, and whether a fixed probe request answers bit-identically
 * at the start and at the end.
 * Run: npm run bench -- soak [--minutes N]
 */
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'undici';
import { SeededRng } from '../src/core/rng.js';
import {
  ADMIN_HEADERS,
  TENANT_HEADERS,
  ZOO,
  sleep,
  startGateway,
  type GatewayProcess,
} from '../loadtest/runner/local-gateway.js';
import { machineLine } from './machine.js';

const TASKS = ['coarse4', 'digits', 'flipped', 'footwear', 'inverted', 'noisy', 'rotated'];
const CLIENTS = 8;
const CACHE_BYTES = 2 * 1024 ** 2;
const SAMPLE_EVERY_MS = 5_000;
const REGISTER_EVERY_MS = 3_000;
const UNLOAD_EVERY_MS = 7_000;
const MB = 1024 ** 2;

export async function runSoakBench(options: { minutes?: number } = {}): Promise<string> {
  const minutes = options.minutes ?? 30;
  const gateway = await startGateway({ engine: { intraOpThreads: 1, cacheBytes: CACHE_BYTES }, logLevel: 'error' });
  const pool = new Pool(gateway.url, { connections: CLIENTS + 4 });
  try {
    return await soak(gateway, pool, minutes);
  } finally {
    await pool.close();
    await gateway.stop();
  }
}

async function soak(gateway: GatewayProcess, pool: Pool, minutes: number): Promise<string> {
  const rng = new SeededRng(11);
  const probeBody = JSON.stringify({
    inputs: [
      {
        name: 'pixels',
        shape: [1, 1, 28, 28],
        datatype: 'FP32',
        data: Array.from({ length: 784 }, () => rng.nextFloat()),
      },
    ],
  });
  const probe = async (): Promise<string> => {
    const response = await pool.request({
      path: '/v2/models/digits/infer',
      method: 'POST',
      headers: TENANT_HEADERS,
      body: probeBody,
    });
    const body = (await response.body.json()) as { outputs?: unknown };
    if (response.statusCode !== 200) throw new Error(`probe answered ${response.statusCode}: ${JSON.stringify(body)}`);
    return JSON.stringify(body.outputs);
  };
  const firstProbe = await probe();
  const fds = () => readdir(`/proc/${gateway.pid}/fd`).then((f) => f.length);
  const samples: { t: number; rss: number; fds: number }[] = [];
  const fdStart = await fds();
  const statuses: Record<string, number> = {};
  const count = (what: string) => (statuses[what] = (statuses[what] ?? 0) + 1);
  let registered = 0;
  let retired = 0;
  let unloads = 0;

  const started = performance.now();
  const end = started + minutes * 60_000;
  const running = () => performance.now() < end;
  const request = async (
    path: string,
    method: 'POST' | 'DELETE',
    headers: Record<string, string>,
    body?: string,
  ): Promise<number> => {
    const response = await pool.request({ path, method, headers, ...(body !== undefined && { body }) });
    await response.body.dump();
    return response.statusCode;
  };
  const inputs = JSON.stringify({
    inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0.5) }],
  });

  const clients = Array.from({ length: CLIENTS }, async (_, c) => {
    for (let i = c; running(); i++)
      count(`infer ${await request(`/v2/models/${TASKS[i % TASKS.length]}/infer`, 'POST', TENANT_HEADERS, inputs)}`);
  });
  const admin = (async () => {
    const deltas = await Promise.all(
      TASKS.map(async (task) => {
        const path = `tasks/${task}/delta.safetensors`;
        return {
          path,
          sha256: createHash('sha256')
            .update(await readFile(join(ZOO, path)))
            .digest('hex'),
        };
      }),
    );
    for (let i = 0; running(); i++) {
      const delta = deltas[i % deltas.length]!;
      const name = `soak-${i}`;
      const status = await request(
        '/admin/tasks',
        'POST',
        ADMIN_HEADERS,
        JSON.stringify({ name, version: '1', uri: delta.path, sha256: delta.sha256 }),
      );
      count(`register ${status}`);
      if (status === 201) registered++;
      count(`infer-new ${await request(`/v2/models/${name}/infer`, 'POST', TENANT_HEADERS, inputs)}`);
      // Keep a few registered at a time; retire the oldest.
      if (i >= 3) {
        const gone = await request(`/admin/tasks/soak-${i - 3}`, 'DELETE', {
          authorization: ADMIN_HEADERS.authorization,
        });
        count(`retire ${gone}`);
        if (gone === 200) retired++;
      }
      await sleep(REGISTER_EVERY_MS);
    }
  })();
  const unloader = (async () => {
    for (let i = 0; running(); i++) {
      await sleep(UNLOAD_EVERY_MS);
      count(
        `unload ${await request(`/v2/repository/models/${TASKS[i % TASKS.length]}/unload`, 'POST', ADMIN_HEADERS, '{}')}`,
      );
      unloads++;
    }
  })();
  const sampler = (async () => {
    while (running()) {
      samples.push({ t: (performance.now() - started) / 1000, rss: gateway.rssBytes(), fds: await fds() });
      await sleep(SAMPLE_EVERY_MS);
    }
  })();
  await Promise.all([...clients, admin, unloader, sampler]);

  const lastProbe = await probe();
  const fdEnd = await fds();
  const metrics = await (
    await pool.request({ path: '/metrics', method: 'GET', headers: { authorization: ADMIN_HEADERS.authorization } })
  ).body.text();
  const evictions = [...metrics.matchAll(/^deltaserve_delta_cache_evictions_total\{[^}]*\} (\S+)$/gm)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
  const steady = samples.slice(Math.floor(samples.length / 10));
  const slope = slopePerHour(steady);
  const rss = samples.map((s) => s.rss);
  const served = Object.entries(statuses)
    .filter(([k]) => k.startsWith('infer'))
    .reduce((n, [, v]) => n + v, 0);

  return [
    '## Soak',
    '',
    machineLine(`npm run bench -- soak --minutes ${minutes}`),
    `Load average at the end: ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')} (the machine is shared).`,
    '',
    `A gateway process (demo zoo, \`engine.cacheBytes\` ${CACHE_BYTES / MB} MiB so deltas are evicted and reloaded all the time, intraOpThreads 1) for ${minutes} min: ` +
      `${CLIENTS} closed-loop clients over the ${TASKS.length} zoo tasks, a task registered (and one retired, keeping 3) every ${REGISTER_EVERY_MS / 1000} s, an explicit unload every ${UNLOAD_EVERY_MS / 1000} s.`,
    '',
    '| what | value |',
    '|---|---|',
    `| inference requests | ${served} (${(served / (minutes * 60)).toFixed(0)}/s) |`,
    `| answers | ${Object.entries(statuses)
      .sort()
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')} |`,
    `| registrations / retirements / unloads | ${registered} / ${retired} / ${unloads} |`,
    `| cache evictions (/metrics) | ${evictions} |`,
    `| RSS start / end / max | ${(rss[0]! / MB).toFixed(0)} / ${(rss.at(-1)! / MB).toFixed(0)} / ${(Math.max(...rss) / MB).toFixed(0)} MiB |`,
    `| RSS slope after the first 10 % (${steady.length} samples, every ${SAMPLE_EVERY_MS / 1000} s) | ${(slope / MB).toFixed(1)} MiB/hour |`,
    `| open file descriptors before the clients connected / after the first 10 % / end / max | ${fdStart} / ${steady[0]?.fds} / ${fdEnd} / ${Math.max(...samples.map((x) => x.fds))} |`,
    `| probe (digits, seeded input) bit-identical at start and end | ${firstProbe === lastProbe ? 'yes' : 'NO'} |`,
  ].join('\n');
}

/** Least-squares slope of RSS over time, bytes per hour. */
function slopePerHour(samples: readonly { t: number; rss: number }[]): number {
  if (samples.length < 2) return Number.NaN;
  const n = samples.length;
  const meanT = samples.reduce((s, x) => s + x.t, 0) / n;
  const meanR = samples.reduce((s, x) => s + x.rss, 0) / n;
  const cov = samples.reduce((s, x) => s + (x.t - meanT) * (x.rss - meanR), 0);
  const varT = samples.reduce((s, x) => s + (x.t - meanT) ** 2, 0);
  return (cov / varT) * 3600;
}
