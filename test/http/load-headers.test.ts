/**
 * The per-response headers load generators read (loadtest/): cache hit or miss and queue wait,
 * taken from the engine's result, on the infer route; absent on errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { CACHE_HEADER, QUEUE_MS_HEADER } from '../../src/http/run-inference.js';
import { buildServer } from '../../src/server.js';
import {
  FakeEngine,
  TENANT_A_KEY,
  bearer,
  capturingLogger,
  listen,
  makeConfig,
  pixelsBody,
  twoTenantRaw,
  alphaRegistry,
} from './fixtures.js';

let engine: FakeEngine;
let app: FastifyInstance;
let baseUrl: string;

before(async () => {
  engine = new FakeEngine();
  const registry = await alphaRegistry();
  ({ app } = await buildServer(makeConfig(twoTenantRaw()), {
    engine,
    registry,
    telemetry: null,
    logger: capturingLogger('silent').logger,
    routingSeed: 1,
  }));
  baseUrl = await listen(app);
});
after(async () => app.close());

async function infer(model: string) {
  const response = await request(`${baseUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { ...bearer(TENANT_A_KEY), 'content-type': 'application/json' },
    body: JSON.stringify(pixelsBody()),
  });
  await response.body.dump();
  return response;
}

test('infer responses say whether the delta was cached and how long the request queued', async () => {
  const realInfer = engine.infer.bind(engine);
  engine.infer = async (task, inputs, options) => ({
    ...(await realInfer(task, inputs, options)),
    cacheHit: false,
    queueMs: 12.345,
  });
  const miss = await infer('alpha');
  assert.equal(miss.statusCode, 200);
  assert.equal(miss.headers[CACHE_HEADER], 'miss');
  assert.equal(miss.headers[QUEUE_MS_HEADER], '12.3');
  engine.infer = realInfer;
  const hit = await infer('alpha');
  assert.equal(hit.headers[CACHE_HEADER], 'hit');
  assert.equal(hit.headers[QUEUE_MS_HEADER], '0.0');
});

test('an error response carries neither header', async () => {
  const missing = await infer('no-such-task');
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.headers[CACHE_HEADER], undefined);
  assert.equal(missing.headers[QUEUE_MS_HEADER], undefined);
});
