/**
 * The dashboard against a real Prometheus (Debian's 2.42) scraping two real gateway processes on
 * loopback (the demo zoo; replica-a in patch mode, replica-b in mixed mode), authenticated as the
 * chart's ServiceMonitor would be. A short mixed load (several tasks, two tenants, 401/404/429,
 * shed requests, a delta that fails its checksum, evictions, one engine worker crash) runs, then
 * EVERY panel query and template variable of helm/deltaserve/dashboards/deltaserve.json is
 * evaluated through Prometheus's HTTP API, with the variables set to "all": an error or an empty
 * answer fails the test. Prometheus also loads the alert rules file, which must evaluate without
 * errors on the real series, and the alerts the load provokes must become active.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY } from '../../src/core/config-dev-keys.js';
import { sha256Hex } from '../../src/core/sha256.js';
import { METRICS } from '../../src/telemetry/metric-names.js';
import { panelQueries } from '../../scripts/ops/dashboard.js';
import { DASHBOARD_FILE, RULES_FILE } from '../../scripts/ops/generate.js';
import { ROOT, listeningUrl, serve, type Served } from '../helpers/gateway-process.js';
import { requireBinary, skipWithoutPrometheus } from './prometheus-tools.js';
import { startPrometheus, type PrometheusServer } from './prometheus-server.js';

/**
 * How Prometheus authenticates to /metrics: a scraper key (telemetry.metricsKeySha256), as the
 * chart's ServiceMonitor does with its token Secret.
 */
const SCRAPER_KEY = 'ops-test-scraper-key';
const SCRAPE_AUTH = {
  gatewayTelemetry: { metricsKeySha256: [sha256Hex(SCRAPER_KEY)] },
  bearerToken: SCRAPER_KEY,
};

const TENANTS = {
  acme: 'ops-test-acme-key',
  // Rate limited, so the load also produces 429s for one tenant.
  globex: 'ops-test-globex-key',
};
const TASKS = ['digits', 'inverted', 'rotated', 'coarse4', 'footwear'];
/** A registered task whose delta fails its checksum: every load of it fails. */
const BROKEN_TASK = 'broken';
const ZOO = join(ROOT, 'models');
const INFER_BODY = JSON.stringify({
  inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0.5) }],
});
/** Panel metrics that exist only after their first event and that this load cannot cause, with why. */
const ABSENT_UNTIL_FIRST_EVENT: Record<string, string> = {
  [METRICS.deltaReloads.name]:
    "a reload happens only when a queued request finds its delta evicted when its batch runs; the engine holds queued tasks' deltas, so this load cannot cause one",
  [METRICS.mixedFallbacks.name]:
    'no demo zoo delta touches a weight mixed mode cannot serve per request (all are MatMul, bias, additive or norm weights), so no fallback happens',
};

interface Replica {
  readonly name: string;
  readonly served: Served;
  readonly url: string;
}

let dir: string;
const replicas: Replica[] = [];
let prometheus: PrometheusServer | undefined;
const skip = skipWithoutPrometheus('prometheus', 'promtool');

async function startReplica(name: string, mode: 'patch' | 'mixed'): Promise<Replica> {
  const config = {
    devMode: true,
    listen: { host: '127.0.0.1', port: 0 },
    model: { manifest: join(ZOO, 'zoo.yaml') },
    // A small cache: cycling the tasks evicts deltas.
    engine: { intraOpThreads: 1, mode, cacheBytes: 2_000_000 },
    // Short queues: a burst is shed.
    batching: { maxBatchSize: 4, maxQueueDelayMs: 2, maxQueuedPerTask: 2, maxQueuedTotal: 6 },
    registry: {
      stateFile: join(dir, `${name}-registry.json`),
      tasks: [
        {
          name: BROKEN_TASK,
          version: '1',
          uri: 'tasks/coarse4/delta.safetensors',
          sha256: '0'.repeat(64),
          labels: ['tops', 'bottoms', 'footwear', 'bags'],
          numClasses: 4,
        },
      ],
    },
    tenants: [
      { name: 'acme', keySha256: [sha256Hex(TENANTS.acme)], tasks: ['*'] },
      {
        name: 'globex',
        keySha256: [sha256Hex(TENANTS.globex)],
        tasks: ['*'],
        rateLimit: { requestsPerSecond: 1, burst: 2 },
      },
    ],
    admin: { keySha256: [sha256Hex(DEV_ADMIN_KEY)] },
    telemetry: SCRAPE_AUTH.gatewayTelemetry,
    logLevel: 'warn',
    shutdownGraceMs: 2000,
  };
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, stringify(config));
  const served = serve(['--config', path], { DELTASERVE_CONFIG: '' }, [
    '--import',
    'tsx',
    join(ROOT, 'test/ops/engine-crash-hook.ts'),
  ]);
  try {
    return { name, served, url: await listeningUrl(served) };
  } catch (error) {
    served.child.kill('SIGKILL');
    throw error;
  }
}

async function infer(replica: Replica, task: string, key: string): Promise<number> {
  const response = await fetch(`${replica.url}/v2/models/${task}/infer`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: INFER_BODY,
  });
  await response.arrayBuffer();
  return response.status;
}

/** The load on one replica: every status the dashboard breaks down. */
async function loadReplica(replica: Replica, count: (status: number) => void): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (const task of TASKS) {
      count(await infer(replica, task, TENANTS.acme));
      count(await infer(replica, task, TENANTS.globex));
    }
    count(await infer(replica, 'no-such-task', TENANTS.acme));
    count(await infer(replica, 'digits', 'not-a-key'));
    count(await infer(replica, BROKEN_TASK, TENANTS.acme));
  }
  // A burst: more requests than the queues hold are shed.
  const burst = await Promise.all(Array.from({ length: 24 }, (_, i) => infer(replica, TASKS[i % 2]!, TENANTS.acme)));
  burst.forEach(count);
  // One engine worker crash and restart (test/ops/engine-crash-hook.ts).
  replica.served.child.kill('SIGUSR2');
  await new Promise((resolve) => setTimeout(resolve, 200));
  // Until a request fails (the crash) and a later one succeeds (the restarted worker).
  let crashed = false;
  await waitFor(
    `${replica.name} to crash and restart`,
    async () => {
      const status = await infer(replica, 'digits', TENANTS.acme);
      count(status);
      crashed ||= status !== 200;
      if (crashed && status === 200) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return undefined;
    },
    60_000,
  );
}

/** The load on both replicas at once; the count of answers by status. */
async function mixedLoad(): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  await Promise.all(replicas.map((replica) => loadReplica(replica, count)));
  return statuses;
}

/** Grafana's variables as "All" (`.*`), and its interval variables as fixed windows. */
function substituted(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$(namespace|replica|task|tenant)\b/g, '.*');
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

before(async () => {
  if (skip) return;
  requireBinary('prometheus');
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-ops-'));
  replicas.push(...(await Promise.all([startReplica('replica-a', 'patch'), startReplica('replica-b', 'mixed')])));
  prometheus = await startPrometheus(
    (promDir) => ({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [join(ROOT, RULES_FILE)],
      scrape_configs: [
        {
          job_name: 'deltaserve',
          metrics_path: '/metrics',
          authorization: { type: 'Bearer', credentials_file: join(promDir, 'scrape-token') },
          // The labels the operator's ServiceMonitor gives each target.
          static_configs: replicas.map((r) => ({
            targets: [new URL(r.url).host],
            labels: { namespace: 'ops-test', pod: r.name },
          })),
        },
      ],
    }),
    { 'scrape-token': SCRAPE_AUTH.bearerToken },
  );
});

after(async () => {
  await prometheus?.stop();
  for (const replica of replicas) {
    replica.served.child.kill('SIGTERM');
    await Promise.race([replica.served.exit, new Promise((resolve) => setTimeout(resolve, 5000))]);
    replica.served.child.kill('SIGKILL');
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

test(
  'every dashboard panel query returns series from a real Prometheus scraping real gateways under load',
  { skip },
  async () => {
    const server = prometheus!;
    // Scrapes are authenticated: both targets up (and /metrics refuses a scrape without the key).
    for (const replica of replicas) assert.equal((await fetch(`${replica.url}/metrics`)).status, 401);
    await waitFor('both targets up', async () => {
      const { activeTargets } = await server.api<{ activeTargets: { health: string; lastError: string }[] }>(
        '/api/v1/targets',
      );
      return activeTargets.length === replicas.length && activeTargets.every((t) => t.health === 'up')
        ? true
        : undefined;
    });

    console.error(
      'T load start',
      performance.now(),
      JSON.stringify(await server.query('sum by (task) (deltaserve_delta_load_failures_total)')),
    );
    const statuses = await mixedLoad();
    for (const status of [200, 401, 404, 429, 503])
      assert.ok(statuses.has(status), `the load produced no ${status}: ${JSON.stringify([...statuses])}`);

    // Every exported series of the load has been scraped once the last event counter is there.
    await waitFor('the load in Prometheus', async () =>
      (await server.query(`sum(${METRICS.engineRestarts.name}) >= ${replicas.length}`)).length > 0 ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 2500));

    const dashboard = JSON.parse(readFileSync(join(ROOT, DASHBOARD_FILE), 'utf8')) as Parameters<
      typeof panelQueries
    >[0] & {
      templating: { list: unknown[] };
    };
    const queries = panelQueries(dashboard);
    assert.ok(queries.length >= 30, `only ${queries.length} panel queries`);
    const empty: string[] = [];
    const exempted: string[] = [];
    for (const { panel, expr } of queries) {
      const result = await server.query(substituted(expr)).catch((error: Error) => {
        throw new Error(`panel "${panel}": ${error.message}\n${expr}`);
      });
      if (result.length > 0) continue;
      const exemption = Object.entries(ABSENT_UNTIL_FIRST_EVENT).find(([metric]) => expr.includes(metric));
      if (exemption) exempted.push(`"${panel}" (${exemption[0]}): ${exemption[1]}`);
      else empty.push(`"${panel}": ${expr}`);
    }
    assert.deepEqual(empty, [], 'panel queries without series');
    if (exempted.length > 0)
      console.error(`\n*** Panel queries evaluated but empty, by design:\n  ${exempted.join('\n  ')}\n`);

    // The template variables: each `label_values(selector, label)` finds values.
    for (const variable of dashboard.templating.list as { name: string; type: string; query: string }[]) {
      if (variable.type !== 'query') continue;
      const match = /^label_values\((.+), (\w+)\)$/.exec(variable.query);
      assert.ok(match, `variable ${variable.name}: ${variable.query}`);
      const values = await server.api<string[]>(
        `/api/v1/label/${match[2]}/values?match[]=${encodeURIComponent(substituted(match[1]!))}`,
      );
      assert.ok(values.length > 0, `variable ${variable.name} has no values`);
    }
    const replicaValues = await server.api<string[]>(
      `/api/v1/label/pod/values?match[]=${encodeURIComponent(METRICS.engineReady.name)}`,
    );
    assert.deepEqual(replicaValues.sort(), ['replica-a', 'replica-b']);
  },
);

test(
  'the alert rules evaluate without errors on the real series, and the load fires the alerts it provokes',
  { skip },
  async () => {
    const server = prometheus!;
    const active = await waitFor('the provoked alerts', async () => {
      const { alerts } = await server.api<{ alerts: { labels: Record<string, string>; state: string }[] }>(
        '/api/v1/alerts',
      );
      const names = new Set(alerts.map((a) => a.labels.alertname));
      return names.has('DeltaserveDeltaLoadFailures') && names.has('DeltaserveEngineRestarts') ? alerts : undefined;
    });
    const podsOf = (alert: string, task?: string) => [
      ...new Set(
        active
          .filter((a) => a.labels.alertname === alert && (task === undefined || a.labels.task === task))
          .map((a) => a.labels.pod),
      ),
    ];
    assert.deepEqual(podsOf('DeltaserveDeltaLoadFailures', BROKEN_TASK).sort(), ['replica-a', 'replica-b']);
    assert.deepEqual(podsOf('DeltaserveEngineRestarts').sort(), ['replica-a', 'replica-b']);

    const { groups } = await server.api<{
      groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[];
    }>('/api/v1/rules');
    const rules = groups.flatMap((g) => g.rules);
    assert.ok(rules.length > 20, `Prometheus loaded ${rules.length} rules`);
    const unhealthy = rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`);
    assert.deepEqual(unhealthy, []);
  },
);
