/**
 * Security properties of a real gateway process (the zoo, two tenants, an admin key, logging at
 * trace level) and of the http delta source, all on loopback:
 *
 * - tenant isolation: another tenant's task or alias answers exactly like a name that does not
 *   exist, on every model route, and takes no measurably different time (interleaved samples,
 *   Mann-Whitney U; the figures are printed);
 * - admin routes (every one the OpenAPI document marks as admin, plus repository load/unload):
 *   401 without a key, 403 with a tenant key or an unknown one, and the admin key opens them;
 *   /metrics (protected by default): 401 with anything but a scraper key or the admin key;
 * - SSRF: an http delta whose host is, resolves to or redirects to a loopback address is refused
 *   before any connection is made, unless allowed; the non-loopback ranges are checked as a pure
 *   function (test/deltas/source/address-policy.test.ts) so no test sends traffic off this host;
 * - keys never logged: after everything above, no line the process printed holds a key.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { percentile } from '../../loadtest/runner/stats.js';
import { SeededRng } from '../../src/core/rng.js';
import { HttpDeltaSource } from '../../src/deltas/source/http-source.js';
import { liveStatus, startZooGateway, type ZooGateway } from './fuzz-gateway.js';

const sha256 = (text: string | Uint8Array) => createHash('sha256').update(text).digest('hex');
// Distinctive keys, so a scan of the logs cannot miss them or match them by accident.
const KEY_A = `sk-tenant-a-${randomBytes(12).toString('hex')}`;
const KEY_B = `sk-tenant-b-${randomBytes(12).toString('hex')}`;
const KEY_ADMIN = `sk-admin-${randomBytes(12).toString('hex')}`;
const KEY_WRONG = `sk-wrong-${randomBytes(12).toString('hex')}`;
const KEY_SCRAPER = `sk-scraper-${randomBytes(12).toString('hex')}`;
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
/** Every test's bound: a hang fails the test instead of holding CI. */
const BOUND = { timeout: 120_000 };

/** Loopback delta host for the gateway-level SSRF check: counts connections, serves nothing. */
let deltaHost: Server;
let deltaHostConnections = 0;
let gateway: ZooGateway;

before(async () => {
  deltaHost = createServer((_req, res) => res.end('not a delta'));
  deltaHost.on('connection', () => deltaHostConnections++);
  await new Promise<void>((resolve) => deltaHost.listen(0, '127.0.0.1', resolve));
  gateway = await startZooGateway({
    env: { DELTASERVE_LOG_LEVEL: 'trace' },
    config: {
      devMode: false,
      listen: { host: '127.0.0.1', port: 0 },
      engine: { intraOpThreads: 1 },
      deltas: { allowedSchemes: ['file', 'http'], allowedHosts: ['*'], retries: 0 },
      tenants: [
        {
          name: 'tenant-a',
          keySha256: [sha256(KEY_A)],
          tasks: ['coarse4', 'base'],
          aliases: { 'a-shoes': 'coarse4@1' },
        },
        { name: 'tenant-b', keySha256: [sha256(KEY_B)], tasks: ['footwear'], aliases: { 'b-shoes': 'footwear@1' } },
      ],
      admin: { keySha256: [sha256(KEY_ADMIN)] },
      telemetry: { metricsKeySha256: [sha256(KEY_SCRAPER)] },
    },
  });
});

after(async () => {
  await gateway?.stop();
  deltaHost?.closeAllConnections();
  await new Promise<void>((resolve) => deltaHost?.close(() => resolve()));
});

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const res = await request(`${gateway.url}${path}`, {
    method: method as 'GET',
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body }),
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

// --- tenant isolation ----------------------------------------------------------------------------

const INFER_BODY = JSON.stringify({
  inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array<number>(784).fill(0) }],
});

/** Every route that names a model, for a name. */
const MODEL_ROUTES: readonly { label: string; method: string; path: (name: string) => string; body?: string }[] = [
  { label: 'metadata', method: 'GET', path: (n) => `/v2/models/${n}` },
  { label: 'version metadata', method: 'GET', path: (n) => `/v2/models/${n}/versions/1` },
  { label: 'ready', method: 'GET', path: (n) => `/v2/models/${n}/ready` },
  { label: 'version ready', method: 'GET', path: (n) => `/v2/models/${n}/versions/1/ready` },
  { label: 'infer', method: 'POST', path: (n) => `/v2/models/${n}/infer`, body: INFER_BODY },
  { label: 'version infer', method: 'POST', path: (n) => `/v2/models/${n}/versions/1/infer`, body: INFER_BODY },
  { label: 'infer, invalid body', method: 'POST', path: (n) => `/v2/models/${n}/infer`, body: '{"inputs": 7}' },
  {
    label: 'classify',
    method: 'POST',
    path: (n) => `/v1/tasks/${n}/classify`,
    body: JSON.stringify({ image: new Array<number>(784).fill(0) }),
  },
];

/** The answer with the name taken out, and the header names that vary per request taken out. */
function shapeOf(answer: { status: number; headers: Record<string, unknown>; text: string }, name: string): string {
  const headers = Object.keys(answer.headers)
    .filter((h) => !['date', 'content-length', 'x-request-id', 'traceparent'].includes(h))
    .sort()
    .map((h) => `${h}: ${h === 'content-type' || h === 'retry-after' ? String(answer.headers[h]) : '*'}`);
  return `${answer.status} ${headers.join('; ')} ${answer.text.replaceAll(name, '<name>')}`;
}

test("another tenant's task or alias answers exactly like an unknown name, on every model route", BOUND, async () => {
  // Tenant A may use coarse4 and its alias a-shoes; footwear and b-shoes belong to tenant B.
  for (const route of MODEL_ROUTES) {
    const unknown = await call(route.method, route.path('nosuchtask'), bearer(KEY_A), route.body);
    assert.equal(unknown.status, 404, `${route.label}: ${unknown.text}`);
    assert.equal((JSON.parse(unknown.text) as { code?: string }).code, 'DS_ERR_MODEL_NOT_FOUND');
    for (const hidden of ['footwear', 'b-shoes']) {
      const answer = await call(route.method, route.path(hidden), bearer(KEY_A), route.body);
      assert.equal(shapeOf(answer, hidden), shapeOf(unknown, 'nosuchtask'), `${route.label}: ${hidden}`);
    }
    // And the other way round: tenant B cannot see tenant A's task or alias either.
    for (const hidden of ['coarse4', 'a-shoes']) {
      const answer = await call(route.method, route.path(hidden), bearer(KEY_B), route.body);
      assert.equal(shapeOf(answer, hidden), shapeOf(unknown, 'nosuchtask'), `${route.label}: ${hidden} for tenant B`);
    }
  }
  // The names are real: their owners are served.
  assert.equal((await call('POST', '/v2/models/b-shoes/infer', bearer(KEY_B), INFER_BODY)).status, 200);
  assert.equal((await call('POST', '/v2/models/a-shoes/infer', bearer(KEY_A), INFER_BODY)).status, 200);
  // The repository index lists only what the tenant may use.
  const index = JSON.parse((await call('POST', '/v2/repository/index', bearer(KEY_A), '{}')).text) as {
    name: string;
  }[];
  assert.deepEqual(
    index.map((m) => m.name).filter((n) => ['footwear', 'b-shoes', 'coarse4'].includes(n)),
    ['coarse4'],
  );
});

/** Mann-Whitney U with the normal approximation (ties get mid-ranks): z of sample a vs b. */
function mannWhitneyZ(a: readonly number[], b: readonly number[]): number {
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(all.length);
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.v === all[i]!.v) j++;
    for (let k = i; k <= j; k++) ranks[k] = (i + j) / 2 + 1;
    i = j + 1;
  }
  const rankSumA = all.reduce((sum, x, i) => (x.g === 0 ? sum + ranks[i]! : sum), 0);
  const u = rankSumA - (a.length * (a.length + 1)) / 2;
  const mean = (a.length * b.length) / 2;
  const sd = Math.sqrt((a.length * b.length * (a.length + b.length + 1)) / 12);
  return (u - mean) / sd;
}

function quantile(values: readonly number[], q: number): number {
  return percentile(values, q * 100);
}

/** Hodges-Lehmann shift: the median of all pairwise differences a_i - b_j. */
function hodgesLehmann(a: readonly number[], b: readonly number[]): number {
  const diffs: number[] = [];
  for (const x of a) for (const y of b) diffs.push(x - y);
  return quantile(diffs, 0.5);
}

test(
  "no timing tell: another tenant's task and an unknown name take the same time (interleaved, Mann-Whitney)",
  BOUND,
  async (t) => {
    const SAMPLES = 300;
    // Same length as "footwear", so only the lookup can differ; warm both paths first.
    const names = { other: 'footwear', unknown: 'fuutwear' };
    const routes = [
      { label: 'metadata', method: 'GET', path: (n: string) => `/v2/models/${n}`, body: undefined },
      { label: 'infer', method: 'POST', path: (n: string) => `/v2/models/${n}/infer`, body: INFER_BODY },
    ];
    const rng = new SeededRng(11);
    for (const route of routes) {
      for (let i = 0; i < 20; i++)
        for (const name of Object.values(names)) await call(route.method, route.path(name), bearer(KEY_A), route.body);
      const times: Record<'other' | 'unknown', number[]> = { other: [], unknown: [] };
      // Random interleaving: drift in machine load hits both samples alike.
      const order = [...new Array<'other'>(SAMPLES).fill('other'), ...new Array<'unknown'>(SAMPLES).fill('unknown')];
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rng.nextFloat() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      for (const which of order) {
        const started = performance.now();
        const answer = await call(route.method, route.path(names[which]), bearer(KEY_A), route.body);
        times[which].push((performance.now() - started) * 1000);
        assert.equal(answer.status, 404);
      }
      const z = mannWhitneyZ(times.other, times.unknown);
      const shift = hodgesLehmann(times.other, times.unknown);
      const describe = (v: number[]) =>
        `median ${quantile(v, 0.5).toFixed(0)} µs (p25 ${quantile(v, 0.25).toFixed(0)}, p75 ${quantile(v, 0.75).toFixed(0)})`;
      t.diagnostic(
        `${route.label}: other tenant's task ${describe(times.other)}; unknown name ${describe(times.unknown)}; Hodges-Lehmann shift ${shift.toFixed(1)} µs; Mann-Whitney z ${z.toFixed(2)} (${SAMPLES} + ${SAMPLES} interleaved requests)`,
      );
      // |z| < 4 is p > 6e-5: a difference a client could time would stand far above this.
      assert.ok(
        Math.abs(z) < 4,
        `${route.label}: the two latency distributions differ (z = ${z.toFixed(2)}, shift ${shift.toFixed(1)} µs)`,
      );
    }
  },
);

// --- admin routes ----------------------------------------------------------------------------------

interface AdminRoute {
  readonly method: string;
  readonly path: string;
}

/** Admin routes from the OpenAPI document (tag `admin`, or a summary that says it takes the admin key). */
async function adminRoutesFromOpenApi(): Promise<AdminRoute[]> {
  const doc = JSON.parse((await call('GET', '/openapi.json')).text) as {
    paths: Record<string, Record<string, { tags?: string[]; summary?: string }>>;
  };
  const routes: AdminRoute[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      // /metrics also takes scraper keys and answers 401 to any other key: checked on its own below.
      if (path === '/metrics') continue;
      if (op.tags?.includes('admin') || /admin key/i.test(op.summary ?? '')) {
        routes.push({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'coarse4') });
      }
    }
  }
  return routes;
}

test(
  'every admin route: 401 without a key, 403 with a tenant key or an unknown one, open with the admin key',
  BOUND,
  async () => {
    const routes = await adminRoutesFromOpenApi();
    const expected = [
      'GET /admin/tasks',
      'POST /admin/tasks',
      'PUT /admin/tasks/coarse4',
      'DELETE /admin/tasks/coarse4',
      'POST /v2/repository/models/coarse4/load',
      'POST /v2/repository/models/coarse4/unload',
    ];
    assert.deepEqual(
      new Set(routes.map((r) => `${r.method} ${r.path}`)),
      new Set(expected),
      'the admin routes the document lists',
    );
    const body = (r: AdminRoute) => (r.method === 'GET' || r.method === 'DELETE' ? undefined : '{}');
    for (const route of routes) {
      const cases: [string, Record<string, string>, number, string][] = [
        ['no key', {}, 401, 'DS_ERR_UNAUTHENTICATED'],
        ['a malformed header', { authorization: KEY_ADMIN }, 401, 'DS_ERR_UNAUTHENTICATED'],
        // Any presented key that is not the admin key is a 403 (src/http/auth.ts): the answer
        // does not tell a valid tenant key from a made-up one.
        ['an unknown key', bearer(KEY_WRONG), 403, 'DS_ERR_ADMIN_REQUIRED'],
        ["tenant A's key", bearer(KEY_A), 403, 'DS_ERR_ADMIN_REQUIRED'],
        ["tenant B's key", bearer(KEY_B), 403, 'DS_ERR_ADMIN_REQUIRED'],
      ];
      for (const [label, headers, status, code] of cases) {
        const answer = await call(route.method, route.path, headers, body(route));
        assert.equal(answer.status, status, `${route.method} ${route.path} with ${label}: ${answer.text}`);
        assert.equal(
          (JSON.parse(answer.text) as { code?: string }).code,
          code,
          `${route.method} ${route.path} with ${label}`,
        );
      }
    }
    // The admin key opens them (reads and harmless changes only; the refusals above changed nothing).
    assert.equal((await call('GET', '/admin/tasks', bearer(KEY_ADMIN))).status, 200);
    // /metrics: a scraper key or the admin key, else 401 whatever was presented (issue 22, item 9).
    for (const headers of [{}, { authorization: KEY_ADMIN }, bearer(KEY_WRONG), bearer(KEY_A), bearer(KEY_B)]) {
      const answer = await call('GET', '/metrics', headers);
      assert.equal(answer.status, 401, `GET /metrics with ${JSON.stringify(Object.keys(headers))}: ${answer.text}`);
      assert.equal((JSON.parse(answer.text) as { code: string }).code, 'DS_ERR_UNAUTHENTICATED');
    }
    assert.equal((await call('GET', '/metrics', bearer(KEY_ADMIN))).status, 200);
    assert.equal((await call('GET', '/metrics', bearer(KEY_SCRAPER))).status, 200);
    assert.equal((await call('POST', '/v2/repository/models/coarse4/load', bearer(KEY_ADMIN), '{}')).status, 200);
    assert.equal((await call('POST', '/v2/repository/models/coarse4/unload', bearer(KEY_ADMIN), '{}')).status, 200);
    const tasks = JSON.parse((await call('GET', '/admin/tasks', bearer(KEY_ADMIN))).text) as {
      tasks: { name: string }[];
    };
    assert.ok(
      tasks.tasks.some((task) => task.name === 'coarse4'),
      'coarse4 is still registered',
    );
  },
);

// --- SSRF ------------------------------------------------------------------------------------------

interface CountingServer {
  readonly url: string;
  readonly port: number;
  connections: number;
  requests: number;
  close(): Promise<void>;
}

async function countingServer(
  host: string,
  answer: (path: string) => { status: number; headers?: Record<string, string>; body?: Uint8Array },
): Promise<CountingServer> {
  const server = createServer((req, res) => {
    state.requests++;
    const a = answer(req.url ?? '/');
    res.writeHead(a.status, a.headers).end(a.body);
  });
  const state: CountingServer = {
    url: '',
    port: 0,
    connections: 0,
    requests: 0,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, { port, url: `http://${host}:${port}` });
}

const PAYLOAD = new Uint8Array(1024).map((_, i) => i % 251);
const PAYLOAD_SHA = sha256(PAYLOAD);

/** A DNS answer for every name, counted: the "resolver" of a name that points at loopback. */
function answering(address: string): LookupFunction & { calls: string[] } {
  const calls: string[] = [];
  const lookup = ((
    hostname: string,
    options: { all?: boolean },
    callback: (e: Error | null, a: unknown, f?: number) => void,
  ) => {
    calls.push(hostname);
    if (options.all) callback(null, [{ address, family: 4 }]);
    else callback(null, address, 4);
  }) as unknown as LookupFunction & { calls: string[] };
  return Object.assign(lookup, { calls });
}

function source(options: ConstructorParameters<typeof HttpDeltaSource>[0]): HttpDeltaSource {
  return new HttpDeltaSource({
    allowedSchemes: ['http'],
    retries: 2,
    retryBaseDelayMs: 1,
    connectTimeoutMs: 2_000,
    headersTimeoutMs: 2_000,
    ...options,
  });
}

const refused = (kind: string) => (error: unknown) => {
  const e = error as Error & { code?: string };
  assert.equal(e.code, 'DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED', e.message);
  assert.match(e.message, new RegExp(`a ${kind} address, which is not allowed`));
  return true;
};

test(
  'SSRF: a name that resolves to loopback is refused before any connection; allowing private addresses makes the same fetch work',
  BOUND,
  async () => {
    const host = await countingServer('127.0.0.1', () => ({
      status: 200,
      headers: { 'content-length': String(PAYLOAD.length) },
      body: PAYLOAD,
    }));
    const lookup = answering('127.0.0.1');
    const uri = `http://deltas.example.test:${host.port}/task.safetensors`;
    const strict = source({ allowedHosts: ['deltas.example.test'], lookup });
    const open = source({ allowedHosts: ['deltas.example.test'], lookup, allowPrivateAddresses: true });
    try {
      await assert.rejects(strict.fetch(uri, PAYLOAD_SHA), refused('loopback'));
      assert.deepEqual(lookup.calls, ['deltas.example.test'], 'resolved once: the refusal is not retried');
      assert.equal(host.connections, 0, 'no connection was made');
      assert.deepEqual(await open.fetch(uri, PAYLOAD_SHA), PAYLOAD);
      assert.equal(host.connections, 1);
    } finally {
      await Promise.all([strict.close(), open.close(), host.close()]);
    }
  },
);

test(
  'SSRF: loopback IP literals (any spelling) are refused without a lookup or a connection, unless listed',
  BOUND,
  async () => {
    const host = await countingServer('127.0.0.1', () => ({
      status: 200,
      headers: { 'content-length': String(PAYLOAD.length) },
      body: PAYLOAD,
    }));
    const lookup = answering('127.0.0.1');
    const anyHost = source({ allowedHosts: ['*'], lookup });
    const listed = source({ allowedHosts: ['127.0.0.1'], lookup });
    try {
      for (const literal of [
        '127.0.0.1',
        '127.1.2.3',
        '[::1]',
        '[::ffff:127.0.0.1]',
        '0x7f000001',
        '2130706433',
        '0.0.0.0',
      ]) {
        const kind = literal === '0.0.0.0' ? 'unspecified' : 'loopback';
        await assert.rejects(anyHost.fetch(`http://${literal}:${host.port}/d`, PAYLOAD_SHA), refused(kind), literal);
      }
      assert.equal(lookup.calls.length, 0);
      assert.equal(host.connections, 0);
      // The operator who writes the address itself into allowedHosts has allowed it.
      assert.deepEqual(await listed.fetch(`${host.url}/d`, PAYLOAD_SHA), PAYLOAD);
      assert.equal(host.connections, 1);
    } finally {
      await Promise.all([anyHost.close(), listed.close(), host.close()]);
    }
  },
);

test('SSRF: a redirect to a loopback name or literal is refused before connecting to the target', BOUND, async () => {
  // The origin is an allowed loopback literal; the targets listen on another loopback address.
  const target = await countingServer('127.0.0.2', () => ({
    status: 200,
    headers: { 'content-length': String(PAYLOAD.length) },
    body: PAYLOAD,
  }));
  let next = '';
  const origin = await countingServer('127.0.0.1', () => ({ status: 302, headers: { location: next } }));
  const lookup = answering('127.0.0.2');
  // `*` lets any host name through the allow-list but allows no address: the address policy decides.
  const s = source({ allowedHosts: ['127.0.0.1', '*'], lookup });
  try {
    next = `http://rebind.example.test:${target.port}/d`;
    await assert.rejects(s.fetch(`${origin.url}/d`, PAYLOAD_SHA), refused('loopback'));
    assert.deepEqual(lookup.calls, ['rebind.example.test']);
    next = `http://127.0.0.2:${target.port}/d`;
    await assert.rejects(s.fetch(`${origin.url}/d`, PAYLOAD_SHA), refused('loopback'));
    assert.equal(origin.requests, 2, 'the origin was asked twice');
    assert.equal(target.connections, 0, 'the redirect targets were never connected to');
  } finally {
    await Promise.all([s.close(), origin.close(), target.close()]);
  }
});

test(
  'SSRF through the gateway: registering an http delta on a loopback address is a 422 naming the reason, with no connection',
  BOUND,
  async () => {
    const registered = await call(
      'POST',
      '/admin/tasks',
      bearer(KEY_ADMIN),
      JSON.stringify({
        name: 'ssrf',
        version: '1',
        uri: `http://127.0.0.1:${(deltaHost.address() as AddressInfo).port}/internal`,
        sha256: PAYLOAD_SHA,
      }),
    );
    assert.equal(registered.status, 422, registered.text);
    const body = JSON.parse(registered.text) as { code: string; error: string };
    assert.equal(body.code, 'DS_ERR_TASK_REJECTED');
    assert.match(body.error, /loopback address, which is not allowed/);
    assert.equal(deltaHostConnections, 0);
  },
);

// --- keys in logs ----------------------------------------------------------------------------------

test(
  'keys never logged: every line the trace-level process printed is free of every key (run last)',
  BOUND,
  async () => {
    // Exercise authentication once more on every path: success, failure, admin success and refusal.
    await call('GET', '/v2/models/coarse4', bearer(KEY_A));
    await call('GET', '/v2/models/coarse4', bearer(KEY_WRONG));
    await call('GET', '/v2/models/coarse4', { authorization: `Basic ${Buffer.from(`a:${KEY_B}`).toString('base64')}` });
    await call('GET', '/admin/tasks', bearer(KEY_ADMIN));
    await call('GET', '/admin/tasks', bearer(KEY_B));
    await call('GET', '/metrics', bearer(KEY_SCRAPER));
    await call('POST', '/v2/models/footwear/infer', { ...bearer(KEY_B), 'x-request-id': 'log-scan' }, INFER_BODY);
    assert.equal(await liveStatus(gateway.url), 200);
    const code = await gateway.stop();
    assert.equal(code, 0, gateway.stderr());
    const lines = `${gateway.stdout()}\n${gateway.stderr()}`.split('\n').filter((line) => line.trim() !== '');
    // The scan must have something to scan: every request of this file, its auth failures and refusals.
    assert.ok(lines.length > 2_000, `only ${lines.length} log lines`);
    for (const expected of [
      '"url":"/admin/tasks"',
      'DS_ERR_UNAUTHENTICATED',
      'DS_ERR_ADMIN_REQUIRED',
      'DS_ERR_MODEL_NOT_FOUND',
      'DS_ERR_TASK_REJECTED',
    ]) {
      assert.ok(
        lines.some((line) => line.includes(expected)),
        `the log has no line with ${expected}`,
      );
    }
    for (const [label, key] of [
      ['tenant A', KEY_A],
      ['tenant B', KEY_B],
      ['admin', KEY_ADMIN],
      ['unknown', KEY_WRONG],
      ['scraper', KEY_SCRAPER],
    ] as const) {
      const leaks = lines.filter(
        (line) => line.includes(key) || line.includes(Buffer.from(`a:${key}`).toString('base64')),
      );
      assert.deepEqual(leaks.slice(0, 3), [], `the ${label} key appears in ${leaks.length} log lines`);
    }
  },
);
