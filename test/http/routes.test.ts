/**
 * Route behaviour over real HTTP against a fake engine (so faults can be injected): auth,
 * tenant isolation, the error classes and their statuses, limits, deadlines, OpenAPI.
 * End-to-end behaviour through the real engine is in gateway-e2e.test.ts.
 */
import type { ReadyInfo } from '../../src/engine/protocol.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import {
  DS_ERR_DEADLINE_EXCEEDED,
  DS_ERR_ENGINE_NOT_READY,
  DS_ERR_INFER_BAD_INPUT,
  DS_ERR_OVERLOADED,
  DS_ERR_TASK_UNAVAILABLE,
} from '../../src/core/errors.js';
import { sha256Hex } from '../../src/core/sha256.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { buildServer, type BuiltServer } from '../../src/server.js';
import {
  ADMIN_KEY,
  FakeEngine,
  TENANT_A_KEY,
  TENANT_B_KEY,
  bearer,
  capturingLogger,
  listen,
  makeConfig,
  pixelsBody,
  twoTenantRaw,
} from './fixtures.js';
import { until } from '../helpers/until.js';

const SHA = 'a'.repeat(64);
const RATE_KEY = 'rate-limited-key';
const SLOTS_KEY = 'slot-limited-key';
const task = (name: string, version: string) => ({
  name,
  version,
  uri: `${name}-${version}.safetensors`,
  sha256: SHA,
  description: `${name} v${version}`,
  labels: null,
  numClasses: null,
});

let engine: FakeEngine;
let app: FastifyInstance;
let context: BuiltServer['context'];
let routes: BuiltServer['routes'];
let logLines: string[];
let baseUrl: string;

before(async () => {
  engine = new FakeEngine();
  const registry = await TaskRegistry.open({
    declared: [task('alpha', '1'), task('alpha', '2'), task('beta', '1')],
    stateFile: null,
  });
  const { logger, lines } = capturingLogger('info');
  logLines = lines;
  const raw = twoTenantRaw({
    timeouts: { inferTimeoutMs: 1000, maxInferTimeoutMs: 5000 },
    http: { bodyLimitBytes: 64 * 1024 },
  });
  (raw.tenants as unknown[]).push(
    {
      name: 'limited-rate',
      keySha256: [sha256Hex(RATE_KEY)],
      tasks: ['alpha'],
      rateLimit: { requestsPerSecond: 0.01, burst: 2 },
    },
    { name: 'limited-slots', keySha256: [sha256Hex(SLOTS_KEY)], tasks: ['alpha'], maxConcurrent: 2, priority: 7 },
  );
  ({ app, context, routes } = await buildServer(makeConfig(raw), {
    engine,
    registry,
    telemetry: null,
    logger,
    routingSeed: 1,
  }));
  baseUrl = await listen(app);
});
after(async () => app.close());

/** Real HTTP through a socket (undici), like a client would. */
async function call(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string>; payload?: string | Buffer } = {},
) {
  const headers: Record<string, string> = { ...(options.key && bearer(options.key)), ...options.headers };
  let body: string | Buffer | undefined = options.payload;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await request(`${baseUrl}${path}`, { method, headers, ...(body !== undefined && { body }) });
  const text = await response.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: response.statusCode, headers: response.headers, json, text };
}

test('health and server metadata need no key; readiness follows the engine', async () => {
  assert.deepEqual((await call('GET', '/v2/health/live')).json, { live: true });
  assert.deepEqual((await call('GET', '/v2/health/ready')).json, { ready: true });
  const meta = await call('GET', '/v2');
  assert.equal(meta.json.name, 'deltaserve');
  assert.ok((meta.json.extensions as string[]).includes('model_repository'));
  engine.ready = false;
  try {
    const notReady = await call('GET', '/v2/health/ready');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.json.code, 'DS_ERR_ENGINE_NOT_READY');
    assert.equal(notReady.headers['retry-after'], '1');
  } finally {
    engine.ready = true;
  }
});

test('model metadata lists versions, datatypes and shapes as the tenant sees them', async () => {
  const meta = await call('GET', '/v2/models/alpha', { key: TENANT_A_KEY });
  assert.equal(meta.status, 200);
  assert.equal(meta.json.name, 'alpha');
  assert.deepEqual(meta.json.versions, ['1', '2']);
  assert.equal(meta.json.platform, 'onnxruntime_onnx');
  assert.deepEqual(meta.json.inputs, [{ name: 'pixels', datatype: 'FP32', shape: [-1, 1, 28, 28] }]);
  assert.deepEqual(meta.json.outputs, [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }]);
  const aliased = await call('GET', '/v2/models/my-alpha', { key: TENANT_A_KEY });
  assert.deepEqual(aliased.json.versions, ['1'], 'a pinned alias shows only its version');
  const versioned = await call('GET', '/v2/models/alpha/versions/1/ready', { key: TENANT_A_KEY });
  assert.deepEqual(versioned.json, { name: 'alpha', version: '1', ready: true });
  const base = await call('GET', '/v2/models/base', { key: TENANT_A_KEY });
  assert.deepEqual(base.json.versions, ['abababababab']);
});

test('infer: KServe response with the id echoed, the tenant priority and the resolved task passed on', async () => {
  engine.calls.length = 0;
  const response = await call('POST', '/v2/models/alpha/versions/1/infer', {
    key: TENANT_A_KEY,
    body: pixelsBody({ id: 'req-1' }),
  });
  assert.equal(response.status, 200, response.text);
  assert.equal(response.json.model_name, 'alpha');
  assert.equal(response.json.model_version, '1');
  assert.equal(response.json.id, 'req-1');
  const [output] = response.json.outputs as { name: string; shape: number[]; datatype: string; data: number[] }[];
  assert.deepEqual(
    { name: output!.name, shape: output!.shape, datatype: output!.datatype },
    { name: 'logits', shape: [1, 10], datatype: 'FP32' },
  );
  assert.equal(output!.data.length, 10);
  const sent = engine.calls[0]!;
  assert.equal(sent.task?.key, 'alpha@1');
  assert.equal(sent.inputs.pixels!.data.length, 784);
  assert.equal(sent.options.priority, 0);
});

test("responses carry the request id: the client's own, or a generated one", async () => {
  const given = await call('GET', '/v2/health/live', { headers: { 'x-request-id': 'trace-me-42' } });
  assert.equal(given.headers['x-request-id'], 'trace-me-42');
  const generated = await call('GET', '/v2/health/live');
  assert.equal(typeof generated.headers['x-request-id'], 'string');
  assert.notEqual(generated.headers['x-request-id'], 'trace-me-42');
});

test('nested data is accepted like flat data', async () => {
  const nested = Array.from({ length: 1 }, () => [Array.from({ length: 28 }, () => new Array<number>(28).fill(1))]);
  const response = await call('POST', '/v2/models/alpha/infer', {
    key: TENANT_A_KEY,
    body: { inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: nested }] },
  });
  assert.equal(response.status, 200, response.text);
});

test('deadline: parameters.timeout_ms, then the header, capped by the config maximum', async () => {
  /** The timeout the handler applied: deadline = (its clock, between send and reply) + timeout. */
  const assertTimeout = async (
    expectedMs: number,
    options: { body?: Record<string, unknown>; headers?: Record<string, string> },
  ) => {
    engine.calls.length = 0;
    const sent = Date.now();
    const response = await call('POST', '/v2/models/alpha/infer', {
      key: TENANT_A_KEY,
      body: pixelsBody(options.body),
      ...(options.headers && { headers: options.headers }),
    });
    const answered = Date.now();
    assert.equal(response.status, 200, response.text);
    const deadline = engine.calls[0]!.options.deadline!;
    assert.ok(
      deadline >= sent + expectedMs && deadline <= answered + expectedMs,
      `timeout ${deadline - sent}..${deadline - answered} ms, expected ${expectedMs}`,
    );
  };
  await assertTimeout(200, { body: { parameters: { timeout_ms: 200 } }, headers: { 'x-request-timeout-ms': '300' } });
  await assertTimeout(300, { headers: { 'x-request-timeout-ms': '300' } });
  await assertTimeout(5000, { headers: { 'x-request-timeout-ms': '999999' } });
  await assertTimeout(1000, {});
  const bad = await call('POST', '/v2/models/alpha/infer', {
    key: TENANT_A_KEY,
    body: pixelsBody(),
    headers: { 'x-request-timeout-ms': 'soon' },
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.code, 'DS_ERR_BAD_TIMEOUT');
});

test("tenant isolation: another tenant's task answers exactly like a task that does not exist", async () => {
  for (const [method, path] of [
    ['GET', ''],
    ['GET', '/ready'],
    ['POST', '/infer'],
  ] as const) {
    const foreign = await call(method, `/v2/models/beta${path}`, {
      key: TENANT_A_KEY,
      ...(method === 'POST' && { body: pixelsBody() }),
    });
    const missing = await call(method, `/v2/models/gamma${path}`, {
      key: TENANT_A_KEY,
      ...(method === 'POST' && { body: pixelsBody() }),
    });
    assert.equal(foreign.status, 404);
    assert.equal(missing.status, 404);
    assert.deepEqual(Object.keys(foreign.json).sort(), Object.keys(missing.json).sort());
    assert.equal(foreign.json.code, missing.json.code);
    assert.equal(foreign.json.error, String(missing.json.error).replace('gamma', 'beta'));
  }
  const foreignVersion = await call('GET', '/v2/models/beta/versions/1', { key: TENANT_A_KEY });
  const missingVersion = await call('GET', '/v2/models/alpha/versions/9', { key: TENANT_A_KEY });
  assert.equal(foreignVersion.status, 404);
  assert.equal(foreignVersion.json.error, String(missingVersion.json.error).replace('alpha', 'beta').replace('9', '1'));
  // B sees beta but neither alpha nor base (not listed for it).
  assert.equal((await call('GET', '/v2/models/beta', { key: TENANT_B_KEY })).status, 200);
  assert.equal((await call('GET', '/v2/models/alpha', { key: TENANT_B_KEY })).status, 404);
  assert.equal((await call('GET', '/v2/models/base', { key: TENANT_B_KEY })).status, 404);
  const indexA = await call('POST', '/v2/repository/index', { key: TENANT_A_KEY, body: {} });
  const indexB = await call('POST', '/v2/repository/index', { key: TENANT_B_KEY });
  assert.deepEqual(
    [...new Set((indexA.json as unknown as { name: string }[]).map((e) => e.name))],
    ['alpha', 'base', 'my-alpha'],
  );
  assert.deepEqual(
    (indexB.json as unknown as { name: string; version: string }[]).map((e) => `${e.name}@${e.version}`),
    ['beta@1'],
  );
});

test('authentication: missing, malformed and unknown keys are 401; the admin key is not a tenant key', async () => {
  for (const headers of [{}, { authorization: 'Basic abc' }, { authorization: 'Bearer nope' }, bearer(ADMIN_KEY)]) {
    const response = await call('GET', '/v2/models/alpha', { headers });
    assert.equal(response.status, 401, JSON.stringify(headers));
    assert.equal(response.json.code, 'DS_ERR_UNAUTHENTICATED');
    assert.equal(response.headers['www-authenticate'], 'Bearer');
  }
  assert.equal((await call('GET', '/admin/tasks')).status, 401);
  const tenantOnAdmin = await call('GET', '/admin/tasks', { key: TENANT_A_KEY });
  assert.equal(tenantOnAdmin.status, 403);
  assert.equal(tenantOnAdmin.json.code, 'DS_ERR_ADMIN_REQUIRED');
  assert.equal((await call('POST', '/v2/repository/models/alpha/load', { key: TENANT_A_KEY })).status, 403);
});

test('API keys never reach the logs', async () => {
  await call('GET', '/v2/models/alpha', { key: TENANT_A_KEY });
  await call('GET', '/v2/models/alpha', { key: 'a-wrong-secret-key' });
  await call('GET', '/admin/tasks', { key: ADMIN_KEY });
  const all = logLines.join('');
  assert.ok(all.length > 0, 'requests were logged');
  for (const secret of [TENANT_A_KEY, 'a-wrong-secret-key', ADMIN_KEY])
    assert.ok(!all.includes(secret), `${secret} appears in the logs`);
});

interface ErrorCase {
  readonly name: string;
  readonly request: () => ReturnType<typeof call>;
  readonly status: number;
  readonly code: string;
  readonly mentions?: string;
  readonly retryAfter?: string;
}

test('every client mistake is a 4xx naming the problem; engine faults map to 503/504 with Retry-After', async () => {
  const infer = (body: unknown, extra: { headers?: Record<string, string>; payload?: string } = {}) =>
    call('POST', '/v2/models/alpha/infer', {
      key: TENANT_A_KEY,
      ...(extra.payload === undefined ? { body } : { payload: extra.payload }),
      ...(extra.headers && { headers: extra.headers }),
    });
  const failing = (error: Error) => async () => {
    engine.behaviour = () => {
      throw error;
    };
    try {
      return await infer(pixelsBody());
    } finally {
      engine.behaviour = () => undefined;
    }
  };
  const cases: ErrorCase[] = [
    {
      name: 'bad JSON',
      request: () => infer(undefined, { payload: '{"inputs": [', headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'FST_ERR_CTP_INVALID_JSON_BODY',
    },
    {
      name: 'empty JSON body',
      request: () => infer(undefined, { payload: '', headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'FST_ERR_CTP_EMPTY_JSON_BODY',
    },
    {
      name: 'wrong content type',
      request: () => infer(undefined, { payload: 'hello', headers: { 'content-type': 'text/plain' } }),
      status: 415,
      code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    },
    {
      name: 'body too large',
      request: () =>
        infer({
          inputs: [{ name: 'pixels', shape: [1], datatype: 'FP32', data: new Array<number>(40_000).fill(0.123456) }],
        }),
      status: 413,
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
    },
    {
      name: 'schema: inputs missing',
      request: () => infer({}),
      status: 400,
      code: 'DS_ERR_REQUEST_INVALID',
      mentions: 'inputs',
    },
    {
      name: 'schema: shape not integers',
      request: () => infer({ inputs: [{ name: 'pixels', shape: ['x'], datatype: 'FP32', data: [] }] }),
      status: 400,
      code: 'DS_ERR_REQUEST_INVALID',
      mentions: 'body/inputs/0/shape/0',
    },
    {
      name: 'schema: unknown datatype',
      request: () => infer({ inputs: [{ name: 'pixels', shape: [1], datatype: 'FLOAT', data: [1] }] }),
      status: 400,
      code: 'DS_ERR_REQUEST_INVALID',
      mentions: 'datatype',
    },
    {
      name: 'unknown input',
      request: () =>
        infer({
          inputs: [{ name: 'image', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array<number>(784).fill(0) }],
        }),
      status: 400,
      code: 'DS_ERR_INFER_BAD_INPUT',
      mentions: '"image"',
    },
    {
      name: 'wrong datatype',
      request: () =>
        infer({
          inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'INT64', data: new Array<number>(784).fill(0) }],
        }),
      status: 400,
      code: 'DS_ERR_INFER_BAD_INPUT',
      mentions: 'INT64',
    },
    {
      name: 'wrong rank',
      request: () =>
        infer({
          inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: new Array<number>(784).fill(0) }],
        }),
      status: 400,
      code: 'DS_ERR_INFER_BAD_INPUT',
      mentions: 'rank',
    },
    {
      name: 'wrong fixed dimension',
      request: () =>
        infer({
          inputs: [{ name: 'pixels', shape: [1, 1, 27, 28], datatype: 'FP32', data: new Array<number>(756).fill(0) }],
        }),
      status: 400,
      code: 'DS_ERR_INFER_BAD_INPUT',
      mentions: 'dimension 2 must be 28',
    },
    {
      name: 'element count',
      request: () => infer({ inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1, 2, 3] }] }),
      status: 400,
      code: 'DS_ERR_INFER_BAD_INPUT',
      mentions: '3 elements',
    },
    {
      name: 'non-number element',
      request: () =>
        infer({
          inputs: [
            { name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: ['a', ...new Array<number>(783).fill(0)] },
          ],
        }),
      status: 400,
      code: 'DS_ERR_INFER_BAD_INPUT',
      mentions: 'element 0',
    },
    {
      name: 'unknown output requested',
      request: () => infer(pixelsBody({ outputs: [{ name: 'probabilities' }] })),
      status: 400,
      code: 'DS_ERR_INFER_BAD_INPUT',
      mentions: 'probabilities',
    },
    {
      name: 'unknown route',
      request: () => call('GET', '/v3/nothing'),
      status: 404,
      code: 'DS_ERR_ROUTE_NOT_FOUND',
      mentions: '/v3/nothing',
    },
    {
      name: 'unknown model',
      request: () => call('POST', '/v2/models/nope/infer', { key: TENANT_A_KEY, body: pixelsBody() }),
      status: 404,
      code: 'DS_ERR_MODEL_NOT_FOUND',
      mentions: 'nope',
    },
    {
      name: 'engine overloaded',
      request: failing(Object.assign(new DS_ERR_OVERLOADED('queue full', 3), { retryAfterSeconds: 3 })),
      status: 503,
      code: 'DS_ERR_OVERLOADED',
      retryAfter: '3',
    },
    {
      name: 'deadline exceeded',
      request: failing(new DS_ERR_DEADLINE_EXCEEDED('alpha@2', 1000, 'in the queue')),
      status: 504,
      code: 'DS_ERR_DEADLINE_EXCEEDED',
    },
    {
      name: 'delta unfetchable',
      request: failing(
        Object.assign(new DS_ERR_TASK_UNAVAILABLE('alpha@2', 'Delta file secret internal detail does not exist'), {
          reason: 'DS_ERR_SOURCE_FILE_MISSING',
        }),
      ),
      status: 503,
      code: 'DS_ERR_TASK_UNAVAILABLE',
      mentions: 'alpha@2 is unavailable: its delta could not be loaded (DS_ERR_SOURCE_FILE_MISSING)',
      retryAfter: '5',
    },
    {
      name: 'engine restarting',
      request: failing(new DS_ERR_ENGINE_NOT_READY('the engine worker is restarting')),
      status: 503,
      code: 'DS_ERR_ENGINE_NOT_READY',
      retryAfter: '1',
    },
    {
      name: 'engine-side input check',
      request: failing(new DS_ERR_INFER_BAD_INPUT('batch sizes differ')),
      status: 400,
      code: 'DS_ERR_INFER_BAD_INPUT',
    },
    {
      name: 'a bug (plain Error) is a generic 500',
      request: failing(new Error('secret internal detail')),
      status: 500,
      code: 'DS_ERR_INTERNAL',
    },
  ];
  for (const c of cases) {
    const response = await c.request();
    assert.equal(response.status, c.status, `${c.name}: ${response.text}`);
    assert.equal(response.json.code, c.code, c.name);
    assert.equal(typeof response.json.error, 'string', c.name);
    if (c.mentions)
      assert.ok(
        String(response.json.error).includes(c.mentions),
        `${c.name}: "${String(response.json.error)}" should mention ${c.mentions}`,
      );
    if (c.retryAfter) assert.equal(response.headers['retry-after'], c.retryAfter, c.name);
    assert.ok(!String(response.json.error).includes('secret internal detail'), c.name);
  }
});

test('repository load pins and unload evicts (admin); base cannot be unloaded', async () => {
  const load = await call('POST', '/v2/repository/models/alpha/load', {
    key: ADMIN_KEY,
    body: { parameters: { version: '1' } },
  });
  assert.equal(load.status, 200, load.text);
  assert.deepEqual(load.json, { name: 'alpha', version: '1', state: 'READY', cached: true, pinned: true });
  assert.ok(engine.pinned.has('alpha@1'));
  const index = await call('POST', '/v2/repository/index', { key: TENANT_A_KEY, body: {} });
  const entry = (index.json as unknown as { name: string; version: string; pinned: boolean; cached: boolean }[]).find(
    (e) => e.name === 'alpha' && e.version === '1',
  );
  assert.deepEqual({ cached: entry?.cached, pinned: entry?.pinned }, { cached: true, pinned: true });
  const unload = await call('POST', '/v2/repository/models/alpha/unload', {
    key: ADMIN_KEY,
    body: { parameters: { version: '1' } },
  });
  assert.equal(unload.status, 200);
  assert.ok(!engine.pinned.has('alpha@1'));
  assert.deepEqual(engine.evicted.slice(-1), ['alpha@1']);
  assert.equal((await call('POST', '/v2/repository/models/base/unload', { key: ADMIN_KEY })).status, 400);
  assert.equal((await call('POST', '/v2/repository/models/missing/load', { key: ADMIN_KEY })).status, 404);
});

test('a failed load marks the task UNAVAILABLE in the index and in its ready route', async () => {
  engine.loadBehaviour = (t) => {
    if (t.key === 'alpha@2') throw new Error('checksum mismatch');
  };
  try {
    const load = await call('POST', '/v2/repository/models/alpha/load', {
      key: ADMIN_KEY,
      body: { parameters: { version: '2' } },
    });
    assert.equal(load.status, 503);
    const ready = await call('GET', '/v2/models/alpha/versions/2/ready', { key: TENANT_A_KEY });
    assert.equal(ready.status, 503);
    assert.match(
      String(ready.json.error),
      /^Task alpha@2 is unavailable: its last delta load failed; retry after 5 s$/,
      'once, without internals',
    );
    assert.equal(ready.headers['retry-after'], '5');
    const admin = await call('GET', '/admin/tasks', { key: ADMIN_KEY });
    const row = (admin.json.tasks as { name: string; version: string; reason: string }[]).find(
      (t) => t.name === 'alpha' && t.version === '2',
    );
    assert.match(row!.reason, /checksum mismatch/, 'admins see the detail');
    const index = await call('POST', '/v2/repository/index', { key: TENANT_A_KEY, body: { ready: true } });
    assert.ok(
      !(index.json as unknown as { name: string; version: string }[]).some(
        (e) => e.name === 'alpha' && e.version === '2',
      ),
      'ready filter drops it',
    );
  } finally {
    engine.loadBehaviour = () => undefined;
  }
  // A later successful load makes it READY again.
  assert.equal(
    (await call('POST', '/v2/repository/models/alpha/load', { key: ADMIN_KEY, body: { parameters: { version: '2' } } }))
      .status,
    200,
  );
  assert.equal((await call('GET', '/v2/models/alpha/versions/2/ready', { key: TENANT_A_KEY })).status, 200);
});

test('the OpenAPI document describes every route the app registered, with its responses', async () => {
  const response = await call('GET', '/openapi.json');
  assert.equal(response.status, 200);
  const paths = response.json.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>;
  // HEAD twins of GET routes are fastify's own; hidden routes (the document itself) are left out on purpose.
  const served = routes.filter((r) => !r.hidden && r.method !== 'HEAD');
  assert.ok(served.length >= 15, `${served.length} routes registered`);
  for (const route of served) {
    const path = route.url.replace(/:(\w+)/g, '{$1}');
    const operation = paths[path]?.[route.method.toLowerCase()];
    assert.ok(operation, `${route.method} ${path} is documented`);
    const codes = Object.keys(operation.responses ?? {});
    assert.ok(
      codes.some((code) => /^2\d\d$/.test(code)),
      `${route.method} ${path} documents its success response (has ${codes.join(', ')})`,
    );
    assert.ok(
      codes.includes('4XX') && codes.includes('5XX'),
      `${route.method} ${path} documents its error responses (has ${codes.join(', ')})`,
    );
  }
  const documented = Object.entries(paths).flatMap(([path, operations]) =>
    Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
  );
  assert.equal(documented.length, served.length, 'nothing documented that is not served');
});

test('rate limit: a token bucket per tenant; over it, 429 with Retry-After, other tenants unaffected', async () => {
  const statuses: number[] = [];
  let limited: Awaited<ReturnType<typeof call>> | undefined;
  for (let i = 0; i < 4; i++) {
    const response = await call('GET', '/v2/models/alpha', { key: RATE_KEY });
    statuses.push(response.status);
    if (response.status === 429) limited ??= response;
  }
  assert.deepEqual(statuses.slice(0, 2), [200, 200], 'the burst passes');
  assert.equal(statuses[2], 429);
  assert.equal(limited?.json.code, 'DS_ERR_RATE_LIMITED');
  assert.ok(Number(limited?.headers['retry-after']) >= 1, 'Retry-After in whole seconds');
  assert.equal((await call('GET', '/v2/models/alpha', { key: TENANT_A_KEY })).status, 200);
});

test("concurrency limit: requests beyond the tenant's slots get 429 with Retry-After; slots free on completion", async () => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let arrived = 0;
  engine.behaviour = async () => {
    arrived++;
    await gate;
  };
  try {
    const first = [
      call('POST', '/v2/models/alpha/infer', { key: SLOTS_KEY, body: pixelsBody() }),
      call('POST', '/v2/models/alpha/infer', { key: SLOTS_KEY, body: pixelsBody() }),
    ];
    await until(() => arrived >= 2, 'both requests at the gate');
    const third = await call('POST', '/v2/models/alpha/infer', { key: SLOTS_KEY, body: pixelsBody() });
    assert.equal(third.status, 429);
    assert.equal(third.json.code, 'DS_ERR_CONCURRENCY_LIMITED');
    assert.equal(third.headers['retry-after'], '1');
    const otherTenant = call('POST', '/v2/models/alpha/infer', { key: TENANT_A_KEY, body: pixelsBody() });
    open();
    assert.deepEqual(
      (await Promise.all(first)).map((r) => r.status),
      [200, 200],
    );
    assert.equal((await otherTenant).status, 200);
  } finally {
    engine.behaviour = () => undefined;
  }
  const after = await call('POST', '/v2/models/alpha/infer', { key: SLOTS_KEY, body: pixelsBody() });
  assert.equal(after.status, 200, 'slots were released');
  assert.equal(engine.calls.at(-1)?.options.priority, 7, 'the tenant priority reaches the engine');
});

test("during shutdown new requests get the gateway's own 503: code, Retry-After, request id", async () => {
  context.lifecycle.shuttingDown = true;
  try {
    for (const path of ['/v2/health/live', '/v2/models/alpha']) {
      const response = await call('GET', path, { key: TENANT_A_KEY, headers: { 'x-request-id': 'drain-1' } });
      assert.equal(response.status, 503);
      assert.equal(response.json.code, 'DS_ERR_SHUTTING_DOWN');
      assert.equal(response.headers['retry-after'], '1');
      assert.equal(response.headers['x-request-id'], 'drain-1');
    }
  } finally {
    context.lifecycle.shuttingDown = false;
  }
});

test('model metadata says how a task is batched: per-task in patch mode; in mixed mode per-task, with why, once the engine reports a fallback', async () => {
  const meta = async () =>
    (
      (await call('GET', '/v2/models/alpha/versions/1', { key: TENANT_A_KEY })).json as {
        parameters: { batching?: string; batching_reason?: string };
      }
    ).parameters;
  assert.equal((await meta()).batching, 'per-task');
  const patchInfo = engine.readyInfo;
  (engine as { readyInfo: ReadyInfo }).readyInfo = { ...patchInfo, mode: 'mixed' };
  try {
    assert.deepEqual([(await meta()).batching, (await meta()).batching_reason], ['mixed', undefined]);
    engine.emit({
      type: 'mixed-fallback',
      key: 'alpha@1',
      tensor: 'conv.weight',
      reason: 'conv.weight is read by Conv',
    });
    assert.deepEqual(
      [(await meta()).batching, (await meta()).batching_reason],
      ['per-task', 'its delta changes conv.weight: conv.weight is read by Conv'],
    );
    engine.emit({ type: 'dropped', key: 'alpha@1' });
    assert.equal((await meta()).batching, 'mixed', 'an unloaded task is judged again on its next run');
  } finally {
    (engine as { readyInfo: ReadyInfo }).readyInfo = patchInfo;
  }
});
