/**
 * CI smoke of the load runner, as a user runs it (`npm run load`, a child process) against a
 * real gateway this test starts on loopback (loadtest/gateway.yaml: the demo zoo, three
 * tenants): cold start, steady and multi-tenant scenarios at a modest rate with their
 * thresholds enforced (exit 0 required: no failures, checks passing, latency within 10 × the
 * SLOs — the smoke checks behaviour, not speed, on machines shared with other jobs), the
 * summary's breakdowns, and the exits for a failed threshold (1) and a refused target (2).
 * About 35 s.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/core/config.js';
import { bootGateway, type Gateway } from '../../src/server.js';
import type { SummaryData } from '../../loadtest/scenarios/summary.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let gateway: Gateway;
let baseUrl: string;
let out: string;

before(async () => {
  const config = await loadConfig({
    path: join(ROOT, 'loadtest', 'gateway.yaml'),
    env: { DELTASERVE_PORT: '0', DELTASERVE_LOG_LEVEL: 'warn' },
  });
  gateway = await bootGateway(config);
  baseUrl = await gateway.listen();
  out = await mkdtemp(join(tmpdir(), 'deltaserve-load-'));
});
after(async () => {
  await gateway.shutdown();
  await rm(out, { recursive: true, force: true });
});

function load(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'loadtest', 'runner', 'cli.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('cold start, steady and multi-tenant scenarios meet their (10 × scaled) thresholds at a modest rate', async () => {
  const run = await load([
    '--base-url',
    baseUrl,
    '--scenarios',
    'steady,tenants,cold-start',
    '--duration',
    '8',
    '--rate-scale',
    '0.5',
    '--slo-scale',
    '10',
    '--out',
    out,
  ]);
  assert.equal(run.code, 0, `load run failed:\n${run.stderr}\n${run.stdout.slice(-3000)}`);
  assert.match(run.stderr, /\[steady\] \d+\/8 s {2}sent \d+/, 'progress lines on stderr');
  assert.match(run.stdout, /thresholds: \d+ passed, 0 failed/);

  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as SummaryData;
  const m = summary.metrics;
  const count = (key: string) => m[key]?.values.count ?? 0;
  // steady 10/s, tenants 15/s, cold-start 20/s, 8 s each (Poisson for tenants: ± a few)
  assert.ok(count('http_reqs') > 300 && count('http_reqs') < 420, `requests sent: ${count('http_reqs')}`);
  assert.equal(m.http_req_failed!.values.passes, 0, 'no request failed');
  // The noisy tenant sends ~3/s against a 2/s limit: 429s, counted apart and expected.
  assert.ok(count('deltaserve_rate_limited{tenant:noisy}') > 0, 'the noisy tenant was rate-limited');
  assert.equal(count('deltaserve_rate_limited{tenant:acme}'), 0);
  assert.equal(count('http_reqs{status:429}'), count('deltaserve_rate_limited'));
  assert.ok(
    count('http_reqs{tenant:acme}') > 0 && count('http_reqs{task:shoes}') > 0,
    'alias traffic in the per-tenant and per-task breakdown',
  );
  // The cold-start scenario ran first, after every task was unloaded: its first requests missed.
  const cold = m['deltaserve_cache_hit{scenario:cold-start}']!.values;
  assert.ok(cold.fails! >= 7, `cold-start misses: ${cold.fails}`);
  const steady = m['deltaserve_cache_hit{scenario:steady}']!.values;
  assert.ok(steady.rate! > 0.9, `steady cache-hit ratio ${steady.rate}`);
  assert.equal(count('deltaserve_queue_wait'), count('http_reqs{status:200}'), 'every 200 reported its queue wait');
  assert.deepEqual(Object.keys(m['http_req_duration{scenario:steady,slo:yes}']!.thresholds!), [
    'p(95)<1000',
    'p(99)<2500',
  ]);
  for (const verdict of Object.values(m['http_req_duration{scenario:steady,slo:yes}']!.thresholds!))
    assert.equal(verdict.ok, true);
  assert.match(
    await readFile(join(out, 'latency.svg'), 'utf8'),
    /^<svg[\s\S]*latency from scheduled start[\s\S]*<\/svg>$/,
  );
});

test('a threshold the gateway cannot meet fails the run with exit 1 and names it', async () => {
  const run = await load([
    '--base-url',
    baseUrl,
    '--scenarios',
    'steady',
    '--duration',
    '2',
    '--p99-ms',
    '0.01',
    '--quiet',
    '--out',
    out,
  ]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /threshold failed: http_req_duration\{scenario:steady,slo:yes\} p\(99\)<0\.01/);
});

test('a non-loopback target is refused before anything is sent (exit 2); bad flags too', async () => {
  const remote = await load(['--base-url', 'http://10.255.255.1:8080', '--scenarios', 'steady']);
  assert.equal(remote.code, 2);
  assert.match(remote.stderr, /refusing to load 10\.255\.255\.1 .*not a loopback address; pass --allow-remote/);
  const bad = await load(['--scenarios', 'steady,warp']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--scenarios: unknown warp; known: steady, zipf, tenants, cold-start, spike, soak/);
});
