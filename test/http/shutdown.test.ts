/**
 * Graceful shutdown over real sockets: requests in flight complete, new requests are answered
 * 503 with Connection: close until they have, then the listener closes; readiness turns false
 * first, the engine closes last; past the grace period the remaining connections are cut.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, request } from 'undici';
import { shutdownGracefully } from '../../src/http/graceful-shutdown.js';
import { buildServer } from '../../src/server.js';
import {
  FakeEngine,
  TENANT_A_KEY,
  bearer,
  listen,
  makeConfig,
  pixelsBody,
  twoTenantRaw,
  alphaRegistry,
} from './fixtures.js';
import { until } from '../helpers/until.js';

async function gatedServer() {
  const engine = new FakeEngine();
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  engine.behaviour = () => gate;
  const registry = await alphaRegistry();
  const { app, context } = await buildServer(makeConfig(twoTenantRaw()), { engine, registry, telemetry: null });
  const url = await listen(app);
  return { engine, app, context, url, open };
}

function infer(url: string) {
  return request(`${url}/v2/models/alpha/infer`, {
    method: 'POST',
    headers: { ...bearer(TENANT_A_KEY), 'content-type': 'application/json' },
    body: JSON.stringify(pixelsBody()),
  });
}

test('requests in flight complete; new requests get 503 with Connection: close; then the listener closes and the engine after it', async () => {
  const { engine, app, context, url, open } = await gatedServer();
  const inFlight = [infer(url), infer(url), infer(url)];
  await until(() => engine.calls.length === 3, 'three requests in the engine');

  const shutdown = shutdownGracefully({ app, engine, telemetry: null, lifecycle: context.lifecycle, graceMs: 10_000 });
  assert.equal(context.lifecycle.shuttingDown, true, 'readiness turns false at once');
  assert.equal(context.lifecycle.inFlight, 3);
  // While accepted requests drain, the listener stays open: a late request gets an answer, not a reset.
  const fresh = new Client(url);
  const late = await fresh.request({ method: 'GET', path: '/v2/health/live' });
  assert.equal(late.statusCode, 503);
  assert.equal(late.headers.connection, 'close');
  assert.equal(((await late.body.json()) as { code: string }).code, 'DS_ERR_SHUTTING_DOWN');
  await fresh.close();
  assert.equal(app.server.listening, true, 'still listening while requests drain');
  assert.equal(engine.ready, true, 'the engine keeps serving what is in flight');

  open();
  const responses = await Promise.all(inFlight);
  assert.deepEqual(
    responses.map((r) => r.statusCode),
    [200, 200, 200],
  );
  for (const response of responses) {
    assert.equal(response.headers.connection, 'close', 'answers sent while shutting down close their connection');
    assert.equal(((await response.body.json()) as { model_name: string }).model_name, 'alpha');
  }
  assert.deepEqual(await shutdown, { forced: false });
  assert.equal(app.server.listening, false, 'the listener closed once the requests were done');
  const refused = new Client(url);
  await assert.rejects(
    refused.request({ method: 'GET', path: '/v2/health/live' }),
    (error: Error & { code?: string }) => error.code === 'ECONNREFUSED',
  );
  await refused.close();
  assert.equal(engine.ready, false, 'the engine was closed');
});

test('past the grace period the remaining connections are cut and shutdown still completes', async () => {
  const { engine, app, context, url, open } = await gatedServer();
  const stuck = infer(url).then(
    (response) => response.statusCode,
    (error: Error) => error,
  );
  await until(() => engine.calls.length === 1, 'the request in the engine');
  const result = await shutdownGracefully({ app, engine, telemetry: null, lifecycle: context.lifecycle, graceMs: 100 });
  assert.deepEqual(result, { forced: true });
  assert.ok((await stuck) instanceof Error, 'the stuck request lost its connection');
  assert.equal(engine.ready, false);
  open();
});
