/**
 * Regression tests of what hostile or careless clients found (issue "Reliability and security,
 * first", defect 7): each asserts the answer a client must get.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { DS_ERR_OVERLOADED } from '../../src/core/errors.js';
import { withRetryAfter } from '../../src/core/retry-after.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { buildServer, type BuiltServer } from '../../src/server.js';
import {
  ADMIN_KEY,
  FakeEngine,
  TENANT_A_KEY,
  bearer,
  capturingLogger,
  listen,
  makeConfig,
  pixelsBody,
  twoTenantRaw,
} from './fixtures.js';

const SHA = 'a'.repeat(64);
let app: FastifyInstance;
let engine: FakeEngine;
let context: BuiltServer['context'];
let url: string;
let logLines: string[];

before(async () => {
  const registry = await TaskRegistry.open({
    declared: [
      {
        name: 'alpha',
        version: '1',
        uri: 'alpha.safetensors',
        sha256: SHA,
        description: '',
        labels: null,
        numClasses: null,
      },
    ],
    stateFile: null,
  });
  const { logger, lines } = capturingLogger('info');
  logLines = lines;
  engine = new FakeEngine();
  ({ app, context } = await buildServer(makeConfig(twoTenantRaw()), { engine, registry, telemetry: null, logger }));
  url = await listen(app);
});
after(async () => app.close());

async function call(method: string, path: string, key: string, body?: unknown, contentType = 'application/json') {
  const response = await request(`${url}${path}`, {
    method: method as 'GET',
    headers: { ...bearer(key), ...(body !== undefined && { 'content-type': contentType }) },
    ...(body !== undefined && {
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, text, json: JSON.parse(text || '{}') as { error?: string; code?: string } };
}

test('an unknown model is a 404 even when the body is invalid too (the model is looked up first)', async () => {
  for (const [path, body] of [
    ['/v2/models/nope/infer', { bad: 1 }],
    ['/v2/models/nope/infer', { inputs: 'not an array' }],
    ['/v1/tasks/nope/classify', { image: 'not an array', top: -5 }],
    ['/v2/models/beta/infer', { bad: 1 }], // another tenant's task: the same 404
  ] as const) {
    const response = await call('POST', path, TENANT_A_KEY, body);
    assert.equal(response.status, 404, `${path}: ${response.text}`);
    assert.equal(response.json.code, 'DS_ERR_MODEL_NOT_FOUND');
  }
  assert.equal(
    (await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, { bad: 1 })).status,
    400,
    'a known model with a bad body is still a 400',
  );
});

test('a 10 KB model name is a short 414 in the gateway error shape, not echoed back', async () => {
  const name = 'x'.repeat(10_000);
  for (const path of [`/v2/models/${name}`, `/v2/models/${name}/infer`]) {
    const response = await call(
      path.endsWith('infer') ? 'POST' : 'GET',
      path,
      TENANT_A_KEY,
      path.endsWith('infer') ? pixelsBody() : undefined,
    );
    assert.equal(response.status, 414);
    assert.equal(response.json.code, 'FST_ERR_MAX_PARAM_LENGTH');
    assert.match(response.json.error!, /longer than 256 characters/);
    assert.ok(response.text.length < 200, `response is ${response.text.length} bytes`);
  }
  const bad = await call('GET', '/v2/models/%E0%A4%A', TENANT_A_KEY);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.code, 'FST_ERR_BAD_URL');
});

test("registration: labels and numClasses must fit the model's logits; huge label lists are refused", async () => {
  const register = (extra: Record<string, unknown>) =>
    call('POST', '/admin/tasks', ADMIN_KEY, {
      name: 'gamma',
      version: '1',
      uri: 'gamma.safetensors',
      sha256: SHA,
      ...extra,
    });
  const tooMany = await register({ labels: Array.from({ length: 100_000 }, (_, i) => `l${i}`) });
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.json.error!, /labels must NOT have more than 4096 items/);
  const eleven = await register({ numClasses: 11 });
  assert.equal(eleven.status, 400);
  assert.match(eleven.json.error!, /body\/numClasses gives 11 classes but the model's output logits has 10 logits/);
  const elevenLabels = await register({ labels: Array.from({ length: 11 }, (_, i) => `l${i}`) });
  assert.equal(elevenLabels.status, 400);
  assert.match(elevenLabels.json.error!, /body\/labels gives 11 classes/);
  const fits = await register({ numClasses: 10 });
  assert.equal(fits.status, 201, fits.text);
});

test('requests refused during shutdown are logged at info without a stack', async () => {
  context.lifecycle.shuttingDown = true;
  try {
    const refused = await call('GET', '/v2/models/alpha', TENANT_A_KEY);
    assert.equal(refused.status, 503);
  } finally {
    context.lifecycle.shuttingDown = false;
  }
  const entries = logLines
    .map((line) => JSON.parse(line) as { level: number; code?: string; err?: { stack?: string } })
    .filter((e) => e.code === 'DS_ERR_SHUTTING_DOWN');
  assert.equal(entries.length, 1);
  assert.equal(entries[0]!.level, 30, 'info');
  assert.equal(entries[0]!.err, undefined, 'no error object, no stack');
});

test('with the queues full, inference is shed before its body is read: 503 with Retry-After, not a parse', async () => {
  engine.overloadedNow = withRetryAfter(new DS_ERR_OVERLOADED('1024 requests are queued (maxQueuedTotal 1024)', 2), 2);
  try {
    // A body that would be a 400 (bad JSON) or a 413 (over the limit) if it were read at all.
    for (const [path, body] of [
      ['/v2/models/alpha/infer', '{"inputs": ['],
      ['/v2/models/alpha/infer', 'x'.repeat(6 * 1024 * 1024)],
      ['/v1/tasks/alpha/classify', '{"image": '],
    ] as const) {
      const shed = await call('POST', path, TENANT_A_KEY, body);
      assert.equal(shed.status, 503, `${path}: ${shed.text.slice(0, 200)}`);
      assert.equal(shed.json.code, 'DS_ERR_OVERLOADED');
    }
    const response = await request(`${url}/v2/models/alpha/infer`, {
      method: 'POST',
      headers: { ...bearer(TENANT_A_KEY), 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(response.headers['retry-after'], '2');
    await response.body.dump();
    assert.equal(
      (await call('GET', '/v2/models/alpha', TENANT_A_KEY)).status,
      200,
      'metadata is not inference: still served',
    );
    assert.equal(
      (await call('POST', '/v2/models/alpha/infer', 'no-such-key', '{}')).status,
      401,
      'authentication still comes first',
    );
  } finally {
    engine.overloadedNow = null;
  }
  assert.equal((await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, pixelsBody())).status, 200);
});
