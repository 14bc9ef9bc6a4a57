/**
 * Load-test figures for docs/benchmarks.md, measured with the Node open-loop runner
 * (loadtest/runner) against gateways started here as child processes (`deltaserve serve`), all
 * in one run on one machine:
 *
 * - Goodput: the highest constant arrival rate whose p99 (from the scheduled start) stays under
 *   the SLO with < 0.1 % failed or dropped requests, for one task, Zipf over many tasks, and a
 *   plain single-model server on the same base (the same gateway with no patchable weights:
 *   every weight stays an ORT initializer, pre-packed, and requests name `base`). Two bases:
 *   the demo zoo's tiny ViT (7 tasks) and a BERT-base-shaped synthetic encoder from
 *   `deltaserve synth` with 100 synthetic DARE deltas at p = 0.99.
 * - Cold start: a task's first response after its delta was unloaded vs. a warm one (delta
 *   cached, another task active before), for file and http delta sources.
 * - Isolation: one tenant's p99 alone vs. while another tenant sends 10× its rate limit.
 *
 * Run: npm run bench -- loadtest   (about 15 minutes; fixtures in bench/.work/loadtest/)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../src/core/config-dev-keys.js';
import { sha256Hex } from '../src/core/sha256.js';
import { encodeDelta } from '../src/deltas/format/delta-file.js';
import { fingerprintWeights } from '../src/onnx/fingerprint.js';
import { loadOnnxModel } from '../src/onnx/model-file.js';
import { readFloatWeights } from '../src/onnx/weights.js';
import type { LoadData, ModelPick, ScenarioDef, TrafficShare } from '../loadtest/scenarios/scenarios.js';
import { runLoad } from '../loadtest/runner/run.js';
import { syntheticDelta } from './engine-fixtures.js';
import { machineLine } from './machine.js';
import { median, percentile } from '../loadtest/runner/stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = join(ROOT, 'bench', '.work', 'loadtest');
const BERT_TASKS = 100;
const BERT_DROP_RATE = 0.99;
const BERT_SEQ = 16;
const ZOO_STEP_S = 10;
const BERT_STEP_S = 15;
const NOISY_KEY = 'bench-noisy-key';
const ISOLATION_ROUNDS = 3;
const ISOLATION_S = 10;
const log = (line: string): void => void process.stderr.write(`[loadtest bench] ${line}\n`);

// ---------- fixtures ----------

interface BertZoo {
  readonly basePath: string;
  readonly deltas: readonly { readonly file: string; readonly sha256: string }[];
}

async function bertZoo(): Promise<BertZoo> {
  await mkdir(WORK, { recursive: true });
  const basePath = join(WORK, 'base.onnx');
  if (!existsSync(basePath)) {
    log('deltaserve synth --preset bert-base (the base)');
    const synth = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'src/cli/bin.ts'),
        'synth',
        '--out',
        WORK,
        '--preset',
        'bert-base',
        '--finetunes',
        '0',
        '--seed',
        '1',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    if (synth.status !== 0) throw new Error('deltaserve synth failed');
  }
  const indexPath = join(WORK, `deltas-p${BERT_DROP_RATE}.json`);
  if (existsSync(indexPath))
    return { basePath, deltas: JSON.parse(await readFile(indexPath, 'utf8')) as BertZoo['deltas'] };
  const weights = readFloatWeights(await loadOnnxModel(basePath));
  const fingerprint = fingerprintWeights(weights);
  const deltas: { file: string; sha256: string }[] = [];
  for (let t = 0; t < BERT_TASKS; t++) {
    const bytes = encodeDelta(syntheticDelta(weights, fingerprint, BERT_DROP_RATE, t));
    const file = `task-${t}.safetensors`;
    await writeFile(join(WORK, file), bytes);
    deltas.push({ file, sha256: createHash('sha256').update(bytes).digest('hex') });
    if (t % 20 === 19) log(`wrote ${t + 1}/${BERT_TASKS} deltas`);
  }
  await writeFile(indexPath, JSON.stringify(deltas));
  return { basePath, deltas };
}

// ---------- gateways ----------

interface RunningGateway {
  readonly url: string;
  stop(): Promise<void>;
}

async function startGateway(name: string, config: Record<string, unknown>): Promise<RunningGateway> {
  const path = join(WORK, `${name}.yaml`);
  await writeFile(
    path,
    stringify({
      devMode: true,
      listen: { host: '127.0.0.1', port: 0 },
      logLevel: 'warn',
      shutdownGraceMs: 2000,
      ...config,
    }),
  );
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'serve', '--config', path],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (;;) {
    const match = /listening on (http:\/\/\S+)/.exec(stdout);
    if (match) {
      log(`${name}: gateway at ${match[1]}`);
      return {
        url: match[1]!,
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      };
    }
    if (child.exitCode !== null) throw new Error(`gateway ${name} exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const devTenant = { name: 'dev', keySha256: [sha256Hex(DEV_TENANT_KEY)], tasks: ['*'] };
const admin = { keySha256: [sha256Hex(DEV_ADMIN_KEY)] };

async function post(
  url: string,
  path: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; ms: number; text: string }> {
  const pool = new Pool(url, { connections: 1 });
  try {
    const t0 = performance.now();
    const response = await pool.request({
      path,
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.body.text();
    return { status: response.statusCode, ms: performance.now() - t0, text };
  } finally {
    await pool.close();
  }
}

async function pinAll(url: string, tasks: readonly string[]): Promise<void> {
  for (const task of tasks) {
    const r = await post(url, `/v2/repository/models/${task}/load`, DEV_ADMIN_KEY);
    if (r.status !== 200) throw new Error(`loading ${task}: ${r.status} ${r.text}`);
  }
}

// ---------- goodput ----------

function scenario(
  name: string,
  rate: number,
  durationS: number,
  traffic: readonly TrafficShare[],
  p99Ms: number,
): ScenarioDef {
  return {
    name,
    description: name,
    arrivals: { kind: 'constant', rate, durationS },
    traffic,
    slo: { p95Ms: p99Ms, p99Ms, maxErrorRate: 0.001 },
    maxInFlight: 512,
  };
}

interface Step {
  readonly rate: number;
  readonly p99Ms: number;
  readonly badFraction: number;
  readonly ok: boolean;
}

async function measureStep(
  url: string,
  data: LoadData,
  pick: ModelPick,
  rate: number,
  sloMs: number,
  stepS: number,
): Promise<Step> {
  const def = scenario('goodput', rate, stepS, [{ tenant: 'dev', weight: 1, pick }], sloMs);
  const result = await runLoad({ baseUrl: url, data, scenarios: [def], requestTimeoutMs: 30_000 });
  const m = result.summary.metrics;
  const sent = m.http_reqs!.values.count!;
  const dropped = m.dropped_iterations!.values.count!;
  const bad = (m.http_req_failed!.values.passes ?? 0) + dropped;
  const p99Ms = m.http_req_duration!.values['p(99)']!;
  const badFraction = bad / Math.max(1, sent + dropped);
  const ok = p99Ms <= sloMs && badFraction < 0.001 && result.aborted.length === 0;
  log(
    `  ${rate.toFixed(1)} req/s: p99 ${p99Ms.toFixed(0)} ms, bad ${(badFraction * 100).toFixed(2)} % → ${ok ? 'ok' : 'over'}`,
  );
  await new Promise((r) => setTimeout(r, 2000)); // let queues drain before the next step
  return { rate, p99Ms, badFraction, ok };
}

/**
 * One load at a time, first come first served: searches that run concurrently take turns, so
 * their steps interleave and a change in the machine's background load hits every
 * configuration alike instead of whichever happened to run then.
 */
class Turns {
  private tail: Promise<unknown> = Promise.resolve();

  take<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * From `start`: doubling while steps meet the SLO, or halving (down to start/16) while they
 * miss it, until the SLO is bracketed; then two bisection steps.
 */
async function goodput(
  turns: Turns,
  label: string,
  url: string,
  data: LoadData,
  pick: ModelPick,
  sloMs: number,
  start: number,
  stepS: number,
): Promise<{ goodput: number; steps: Step[] }> {
  const steps: Step[] = [];
  await turns.take(() =>
    runLoad({
      baseUrl: url,
      data,
      scenarios: [scenario('warm-up', start, 5, [{ tenant: 'dev', weight: 1, pick }], sloMs)],
    }),
  );
  const step = (rate: number): Promise<boolean> =>
    turns.take(async () => {
      log(label);
      const s = await measureStep(url, data, pick, rate, sloMs, stepS);
      steps.push(s);
      return s.ok;
    });
  let good = 0;
  let bad = Number.POSITIVE_INFINITY;
  if (await step(start)) {
    good = start;
    for (let rate = start * 2; rate < 2000; rate *= 2) {
      if (await step(rate)) good = rate;
      else {
        bad = rate;
        break;
      }
    }
  } else {
    bad = start;
    for (let rate = start / 2; rate >= start / 16; rate /= 2) {
      if (await step(rate)) {
        good = rate;
        break;
      }
      bad = rate;
    }
  }
  for (let i = 0; i < 2 && good > 0 && Number.isFinite(bad); i++) {
    const mid = (good + bad) / 2;
    if (await step(mid)) good = mid;
    else bad = mid;
  }
  return { goodput: good, steps };
}

// ---------- cold start ----------

async function timedInfer(
  url: string,
  model: string,
  body: unknown,
): Promise<{ ms: number; cache: string | undefined }> {
  const pool = new Pool(url, { connections: 1 });
  try {
    const t0 = performance.now();
    const response = await pool.request({
      path: `/v2/models/${model}/infer`,
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await response.body.text();
    if (response.statusCode !== 200) throw new Error(`infer ${model}: ${response.statusCode}`);
    const cache = response.headers['x-deltaserve-cache'];
    return { ms: performance.now() - t0, cache: typeof cache === 'string' ? cache : undefined };
  } finally {
    await pool.close();
  }
}

interface ColdWarm {
  readonly cold: number[];
  readonly warm: number[];
}

/** Per task: unload, first request (cold), a request to another task, the task again (warm). */
async function coldVsWarm(url: string, tasks: readonly string[], other: string, body: unknown): Promise<ColdWarm> {
  const cold: number[] = [];
  const warm: number[] = [];
  for (const task of tasks) {
    const unload = await post(url, `/v2/repository/models/${task}/unload`, DEV_ADMIN_KEY);
    if (unload.status !== 200) throw new Error(`unload ${task}: ${unload.status} ${unload.text}`);
    const first = await timedInfer(url, task, body);
    if (first.cache !== 'miss') throw new Error(`${task}: the first request after unload was a cache ${first.cache}`);
    await timedInfer(url, other, body);
    const again = await timedInfer(url, task, body);
    if (again.cache !== 'hit') throw new Error(`${task}: the second request was a cache ${again.cache}`);
    cold.push(first.ms);
    warm.push(again.ms);
  }
  return { cold, warm };
}

async function serveFiles(dir: string): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\//, '');
    if (!/^task-\d+\.safetensors$/.test(name)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    readFile(join(dir, name)).then(
      (bytes) => res.end(bytes),
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, base: `http://127.0.0.1:${address.port}` };
}

// ---------- the report ----------

const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

export async function runLoadtestBench(): Promise<string> {
  const loadBefore = loadavg()[0]!;
  const zooData = JSON.parse(await readFile(join(ROOT, 'loadtest/data/demo-zoo.json'), 'utf8')) as LoadData;
  const zoo = {
    ...zooData,
    tenants: [
      { name: 'dev', key: DEV_TENANT_KEY },
      { name: 'noisy', key: NOISY_KEY },
    ],
    adminKey: DEV_ADMIN_KEY,
  };
  const bert = await bertZoo();
  const bertNames = bert.deltas.map((_, i) => `task-${i}`);
  const tokens = Array.from({ length: BERT_SEQ }, (_, i) => (i * 37 + 11) % 1000);
  const bertPayload = { inputs: [{ name: 'input_ids', shape: [1, BERT_SEQ], datatype: 'INT64', data: tokens }] };
  const bertData: LoadData = {
    description: 'BERT-base-shaped synthetic zoo',
    tasks: bertNames,
    tenants: [{ name: 'dev', key: DEV_TENANT_KEY }],
    adminKey: DEV_ADMIN_KEY,
    payload: bertPayload,
  };
  const baseData = (d: LoadData): LoadData => ({ ...d, tasks: ['base'] });
  const ZOO_SLO = 100;
  const BERT_SLO = 1000;
  const rows: string[] = [];
  const goodputs: Record<string, number> = {};

  // Every gateway runs for the whole benchmark (idle ones cost little), so the goodput searches
  // can interleave their steps.
  const files = await serveFiles(WORK);
  const httpTasks = bert.deltas.slice(20, 40).map((d, i) => ({
    name: `http-${i}`,
    version: '1',
    uri: `${files.base}/${d.file}`,
    sha256: d.sha256,
    description: 'over http',
  }));
  const plain = (path: string) => ({
    model: { path, patchable: ['no-weight-has-this-name'] },
    tenants: [devTenant],
    admin,
  });
  const gateways: RunningGateway[] = [];
  const start = async (name: string, config: Record<string, unknown>) => {
    const g = await startGateway(name, config);
    gateways.push(g);
    return g;
  };
  let isolation: { alone: number[]; loaded: number[]; noisySent: number; noisyLimited: number; noisyServed: number };
  let coldFile: ColdWarm;
  let coldHttp: ColdWarm;
  try {
    const zooGateway = await start('zoo', {
      model: { manifest: join(ROOT, 'models/zoo.yaml') },
      tenants: [
        devTenant,
        {
          name: 'noisy',
          keySha256: [sha256Hex(NOISY_KEY)],
          tasks: ['footwear'],
          rateLimit: { requestsPerSecond: 10, burst: 10 },
        },
      ],
      admin,
    });
    const plainZoo = await start('zoo-plain', plain(join(ROOT, 'models/base/model.onnx')));
    const bertGateway = await start('bert', {
      model: { path: bert.basePath },
      engine: { cacheBytes: 1024 ** 3 },
      deltas: { fileRoot: WORK, allowedSchemes: ['file', 'http'], allowedHosts: ['127.0.0.1'] },
      registry: {
        tasks: [
          ...bert.deltas.map((d, i) => ({
            name: `task-${i}`,
            version: '1',
            uri: d.file,
            sha256: d.sha256,
            description: 'synthetic',
          })),
          ...httpTasks,
        ],
      },
      tenants: [devTenant],
      admin,
    });
    const plainBert = await start('bert-plain', plain(bert.basePath));

    log('cold start (file, then http)');
    await timedInfer(bertGateway.url, 'task-99', bertPayload);
    coldFile = await coldVsWarm(bertGateway.url, bertNames.slice(0, 20), 'task-99', bertPayload);
    coldHttp = await coldVsWarm(
      bertGateway.url,
      httpTasks.map((t) => t.name),
      'task-99',
      bertPayload,
    );
    await pinAll(bertGateway.url, bertNames);
    await pinAll(zooGateway.url, zoo.tasks);

    // Isolation: the dev tenant at a steady rate, alone and while `noisy` sends 10× its limit, alternated.
    log('isolation');
    const victim: TrafficShare = { tenant: 'dev', weight: 20, pick: { kind: 'first' } };
    const noisy: TrafficShare = { tenant: 'noisy', weight: 100, pick: { kind: 'first' }, expectRateLimited: true };
    isolation = { alone: [], loaded: [], noisySent: 0, noisyLimited: 0, noisyServed: 0 };
    for (let round = 0; round < ISOLATION_ROUNDS; round++) {
      const alone = await runLoad({
        baseUrl: zooGateway.url,
        data: zoo,
        scenarios: [scenario('alone', 20, ISOLATION_S, [victim], ZOO_SLO)],
      });
      isolation.alone.push(alone.summary.metrics['http_req_duration{tenant:dev}']!.values['p(99)']!);
      const loaded = await runLoad({
        baseUrl: zooGateway.url,
        data: zoo,
        scenarios: [scenario('noisy', 120, ISOLATION_S, [victim, noisy], ZOO_SLO)],
      });
      const m = loaded.summary.metrics;
      isolation.loaded.push(m['http_req_duration{tenant:dev}']!.values['p(99)']!);
      isolation.noisySent += m['http_reqs{tenant:noisy}']!.values.count!;
      isolation.noisyLimited += m['deltaserve_rate_limited{tenant:noisy}']!.values.count!;
      log(
        `  round ${round}: dev p99 alone ${f1(isolation.alone[round]!)} ms, with noisy ${f1(isolation.loaded[round]!)} ms`,
      );
    }
    isolation.noisyServed = isolation.noisySent - isolation.noisyLimited;

    const turns = new Turns();
    const searches: [string, string, LoadData, ModelPick, number, number, number][] = [
      ['demo zoo, one task (footwear)', zooGateway.url, zoo, { kind: 'first' }, ZOO_SLO, 20, ZOO_STEP_S],
      ['demo zoo, 7 tasks, Zipf(1.0)', zooGateway.url, zoo, { kind: 'zipf' }, ZOO_SLO, 20, ZOO_STEP_S],
      [
        'plain single-model server, demo zoo base',
        plainZoo.url,
        baseData(zoo),
        { kind: 'first' },
        ZOO_SLO,
        20,
        ZOO_STEP_S,
      ],
      ['BERT-shaped, one task', bertGateway.url, bertData, { kind: 'first' }, BERT_SLO, 1, BERT_STEP_S],
      [
        `BERT-shaped, ${BERT_TASKS} tasks, Zipf(1.0)`,
        bertGateway.url,
        bertData,
        { kind: 'zipf' },
        BERT_SLO,
        1,
        BERT_STEP_S,
      ],
      [
        'plain single-model server, BERT-shaped base',
        plainBert.url,
        baseData(bertData),
        { kind: 'first' },
        BERT_SLO,
        1,
        BERT_STEP_S,
      ],
    ];
    const results = await Promise.all(
      searches.map(([label, url, data, pick, slo, first, stepS]) =>
        goodput(turns, label, url, data, pick, slo, first, stepS),
      ),
    );
    searches.forEach(([label, , , , slo], i) => {
      const g = results[i]!;
      goodputs[label] = g.goodput;
      rows.push(
        `| ${label} | ${slo} | ${f1(g.goodput)} | ${g.steps.map((s) => `${f1(s.rate)}${s.ok ? '✓' : '✗'}`).join(' ')} |`,
      );
    });
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
    files.server.close();
  }

  const ratio = (a: string, b: string) => (goodputs[b]! > 0 ? f2(goodputs[a]! / goodputs[b]!) : '–');
  const coldRow = (label: string, cw: ColdWarm) => {
    const ratios = cw.cold.map((c, i) => c / cw.warm[i]!);
    return `| ${label} | ${cw.cold.length} | ${f1(median(cw.cold))} | ${f1(percentile(cw.cold, 90))} | ${f1(median(cw.warm))} | ${f1(percentile(cw.warm, 90))} | **${f2(median(ratios))}** | ${f2(percentile(ratios, 90))} |`;
  };
  const deltaMb =
    (await Promise.all(bert.deltas.map(async (d) => (await readFile(join(WORK, d.file))).byteLength))).reduce(
      (a, b) => a + b,
      0,
    ) /
    bert.deltas.length /
    1e6;
  const isoRatio = median(isolation.loaded) / median(isolation.alone);
  return [
    '### Load tests: goodput, cold start, isolation (Node open-loop runner)',
    '',
    machineLine('npm run bench -- loadtest   (node --import tsx bench/loadtest.ts)'),
    '',
    `The machine was **shared with other agents' work while this ran** (2 cores; load average ${loadBefore.toFixed(1)} when the run started, ${loadavg()[0]!.toFixed(1)} when it ended), and the load generator ran on the same 2 cores as the gateways: absolute figures are low and noisy; compare the ratios, which come from the same run.`,
    "Each gateway is `deltaserve serve` in its own process with the default batching (max batch 8, 2 ms queue delay) and ORT choosing its threads; the runner sends open-loop constant-rate traffic and measures latency from each request's **scheduled** start.",
    '',
    '#### Goodput',
    '',
    `Goodput = the highest constant arrival rate at which p99 ≤ the SLO and < 0.1 % of requests fail or are dropped, searched from a start rate by doubling (or halving, down to 1/16 of it) until the SLO is bracketed, then bisecting twice; the six searches take turns step by step (all gateways up at once, one load at a time), so background load hits them alike; ${ZOO_STEP_S} s per step for the demo zoo, ${BERT_STEP_S} s for BERT-shaped, after a 5 s warm-up. Deltas are pinned in the cache first (steady state; cold starts are measured below). The **plain single-model server** is the same gateway binary started on the same base with \`model.path\` and \`model.patchable\` matching no weight: every weight stays an ORT initializer (pre-packed, as a plain ONNX server holds it), there are no deltas, and requests name \`base\`; it is the upper bound for this HTTP stack on this machine. Demo zoo: the tiny ViT of models/ (1 × 1 × 28 × 28 JSON request), SLO p99 ≤ ${ZOO_SLO} ms. BERT-shaped: \`deltaserve synth --preset bert-base\` (86 M parameters) with ${BERT_TASKS} synthetic DARE deltas at p = ${BERT_DROP_RATE} (fp16 values, every weight touched; 1 GiB cache), requests of 1 × ${BERT_SEQ} tokens, SLO p99 ≤ ${BERT_SLO} ms.`,
    '',
    '| configuration | SLO p99 ms | goodput req/s | steps (req/s, ✓ met / ✗ missed) |',
    '|---|---:|---:|---|',
    ...rows,
    '',
    `- Demo zoo: one task ${ratio('demo zoo, one task (footwear)', 'plain single-model server, demo zoo base')} × the plain server; 7 Zipf tasks ${ratio('demo zoo, 7 tasks, Zipf(1.0)', 'plain single-model server, demo zoo base')} ×.`,
    `- BERT-shaped: one task ${ratio('BERT-shaped, one task', 'plain single-model server, BERT-shaped base')} × the plain server; ${BERT_TASKS} Zipf tasks ${ratio(`BERT-shaped, ${BERT_TASKS} tasks, Zipf(1.0)`, 'plain single-model server, BERT-shaped base')} ×.`,
    '',
    '#### Cold start',
    '',
    `BERT-shaped gateway above, one request at a time on an otherwise idle gateway. Per task: unload it through the repository API, send one request (**cold**: fetch + sha256 + decode + activate, checked to report \`x-deltaserve-cache: miss\`), send one request to another task, then the task again (**warm**: delta cached, activation paid again, checked \`hit\`). Client-side latency. File source: 20 tasks from local files; http source: 20 other deltas from a loopback HTTP server (\`http://127.0.0.1\`, allowed hosts). Delta files ${f1(deltaMb)} MB each on average.`,
    '',
    '| source | tasks | cold p50 ms | cold p90 ms | warm p50 ms | warm p90 ms | cold / warm (median of per-task ratios) | p90 of ratios |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    coldRow('file', coldFile),
    coldRow('http (loopback)', coldHttp),
    '',
    `Goal: cold ≤ 2 × warm at p = 0.99 (SGLang issue #13349 reports 158× for LoRA adapters): ${median(coldFile.cold.map((c, i) => c / coldFile.warm[i]!)) <= 2 ? 'met' : '**missed**'} for files, ${median(coldHttp.cold.map((c, i) => c / coldHttp.warm[i]!)) <= 2 ? 'met' : '**missed**'} over http (median per-task ratio).`,
    '',
    '#### Isolation under load',
    '',
    `Demo zoo gateway. Tenant \`dev\` sends 20 req/s to \`footwear\` for ${ISOLATION_S} s alone, then ${ISOLATION_S} s while tenant \`noisy\` (rate limit 10 req/s, burst 10) sends 100 req/s to the same task; alternated ${ISOLATION_ROUNDS} times. noisy sent ${isolation.noisySent} requests, ${isolation.noisyLimited} answered 429, ${isolation.noisyServed} served.`,
    '',
    '| round | dev p99 alone ms | dev p99 with noisy ms |',
    '|---|---:|---:|',
    ...isolation.alone.map((a, i) => `| ${i + 1} | ${f1(a)} | ${f1(isolation.loaded[i]!)} |`),
    '',
    `dev's p99 with noisy / alone (medians): **${f2(isoRatio)}** (goal ≤ 1.10): ${isoRatio <= 1.1 ? 'met' : '**missed**'}.`,
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runLoadtestBench());
}
