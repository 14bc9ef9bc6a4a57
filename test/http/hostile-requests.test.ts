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

// --- issue 22: the second hostile pass ---------------------------------------------------------

function rowsBody(rows: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    inputs: [{ name: 'pixels', shape: [rows, 1, 28, 28], datatype: 'FP32', data: new Array(rows * 784).fill(0) }],
    ...extra,
  });
}

test('an unknown model is a 404 even when its JSON is malformed or empty, on infer and classify', async () => {
  for (const path of ['/v2/models/nope/infer', '/v2/models/beta/infer', '/v1/tasks/nope/classify']) {
    for (const body of ['{"inputs": [', '', '{', '[[[[', 'null x']) {
      const response = await call('POST', path, TENANT_A_KEY, body);
      assert.equal(response.status, 404, `${path} ${JSON.stringify(body)}: ${response.text}`);
      assert.equal(response.json.code, 'DS_ERR_MODEL_NOT_FOUND');
    }
    const png = await call('POST', path, TENANT_A_KEY, Buffer.from('not a png'), 'image/png');
    assert.equal(png.status, 404, `${path} png: ${png.text}`);
  }
  const known = await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, '{"inputs": [');
  assert.equal(known.status, 400, 'a known model with malformed JSON is still a 400');
  assert.equal(known.json.code, 'FST_ERR_CTP_INVALID_JSON_BODY');
});

test('requests the HTTP parser refuses are answered in the gateway error shape', async () => {
  const { Socket } = await import('node:net');
  const { port } = new URL(url);
  for (const raw of [
    'GARBAGE\r\n\r\n',
    'POST /v2/models/alpha/infer HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
    `GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  ]) {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = new Socket();
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.connect(Number(port), '127.0.0.1', () => socket.write(raw));
    });
    const [head, body] = answer.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 4\d\d /, answer.slice(0, 200));
    const parsed = JSON.parse(body!) as { error?: unknown; code?: unknown };
    assert.equal(typeof parsed.error, 'string', answer.slice(0, 300));
    assert.match(String(parsed.code), /^DS_ERR_/, answer.slice(0, 300));
  }
});

test('rows per request are bounded: 413 naming the limit, checked before the data is decoded', async () => {
  const limit = 8 * 8; // default: eight batches of batching.maxBatchSize (8)
  const calls = engine.calls.length;
  const over = await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, rowsBody(limit + 1));
  assert.equal(over.status, 413, over.text);
  assert.equal(over.json.code, 'DS_ERR_TOO_MANY_ROWS');
  assert.match(over.json.error!, new RegExp(`${limit + 1} rows, more than the ${limit} rows`));
  // Hollow: the shape claims 85,598 rows, the data holds none; the row limit answers first.
  const hollow = await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, {
    inputs: [{ name: 'pixels', shape: [85_598, 1, 28, 28], datatype: 'FP32', data: [] }],
  });
  assert.equal(hollow.status, 413, hollow.text);
  assert.equal(engine.calls.length, calls, 'nothing reached the engine');
  assert.equal((await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, rowsBody(limit))).status, 200);
});

test('requested outputs must be unique and few: a duplicate is a 400 naming it', async () => {
  for (const outputs of [
    [{ name: 'logits' }, { name: 'logits' }],
    Array.from({ length: 200_000 }, () => ({ name: 'logits' })),
  ]) {
    const response = await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, rowsBody(1, { outputs }));
    assert.equal(response.status, 400, response.text.slice(0, 300));
    assert.match(response.json.error!, outputs.length === 2 ? /output "logits" is requested twice/ : /outputs/);
    assert.ok(response.text.length < 500, `the answer is ${response.text.length} bytes`);
  }
  assert.equal(
    (await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, rowsBody(1, { outputs: [{ name: 'logits' }] }))).status,
    200,
  );
});

test('deeply nested JSON is refused before it is parsed, with a 400 naming the limit', async () => {
  for (const [path, body] of [
    ['/v2/models/alpha/infer', `{"inputs": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`],
    ['/v2/models/alpha/infer', `${'['.repeat(1_000_000)}`], // never closed: still refused, not parsed
    ['/v1/tasks/alpha/classify', `{"image": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`],
    ['/admin/tasks', `{"labels": ${'['.repeat(100)}${']'.repeat(100)}}`],
  ] as const) {
    const key = path.startsWith('/admin') ? ADMIN_KEY : TENANT_A_KEY;
    const response = await call('POST', path, key, body);
    assert.equal(response.status, 400, `${path}: ${response.text.slice(0, 300)}`);
    assert.equal(response.json.code, 'DS_ERR_REQUEST_INVALID', response.text.slice(0, 300));
    assert.match(response.json.error!, /JSON nested deeper than 64 levels/);
  }
  // Brackets inside strings are text, not nesting.
  const inString = await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, {
    id: '['.repeat(100) + '\\"{'.repeat(40),
    inputs: [
      { name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: [[new Array(28).fill(new Array(28).fill(0))]] },
    ],
  });
  assert.equal(inString.status, 200, inString.text);
});

test('hollow shapes are refused before their tensor is allocated', async () => {
  const { decodeInputs } = await import('../../src/http/tensor-codec.js');
  const { FAKE_IO } = await import('./fixtures.js');
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 4; i++) {
    assert.throws(
      () => decodeInputs([{ name: 'pixels', shape: [85_598, 1, 28, 28], datatype: 'FP32', data: ['x'] }], FAKE_IO),
      // The count is checked first: not "element 0 is "x"" after filling a 256 MB tensor.
      /has 1 elements in data but shape \[85598, 1, 28, 28\] needs 67108832/,
    );
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 64 * 1024 ** 2, `${(grown / 1024 ** 2).toFixed(0)} MiB of tensors were allocated`);
  const hollow = await call('POST', '/v2/models/alpha/infer', TENANT_A_KEY, {
    inputs: [{ name: 'pixels', shape: [2, 1, 28, 28], datatype: 'FP32', data: [] }],
  });
  assert.equal(hollow.status, 400);
  assert.match(hollow.json.error!, /has 0 elements in data but shape \[2, 1, 28, 28\] needs 1568/);
});
