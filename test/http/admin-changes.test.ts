/**
 * Admin changes under a slow delta host: a registration whose delta takes long to arrive holds
 * up no change of another task, ends at `timeouts.adminChangeTimeoutMs` with a 504, and is never
 * applied afterwards; a client that gives up is never applied behind its back either.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import type { TaskRef } from '../../src/deltas/types.js';
import { buildServer } from '../../src/server.js';
import { ADMIN_KEY, FakeEngine, bearer, listen, makeConfig, twoTenantRaw } from './fixtures.js';
import { until } from '../helpers/until.js';

const SHA = 'a'.repeat(64);
const declared = (name: string) => ({
  name,
  version: '1',
  uri: `${name}.safetensors`,
  sha256: SHA,
  description: '',
  labels: null,
  numClasses: null,
});

let engine: FakeEngine;
let registry: TaskRegistry;
let app: FastifyInstance;
let url: string;
/** Loads of URIs containing "slow" wait until released. */
const slowLoads = new Map<string, () => void>();

before(async () => {
  engine = new FakeEngine();
  engine.loadBehaviour = (task: TaskRef) =>
    task.uri.includes('slow') ? new Promise<void>((resolve) => slowLoads.set(task.key, resolve)) : undefined;
  registry = await TaskRegistry.open({ declared: [declared('alpha'), declared('beta')], stateFile: null });
  ({ app } = await buildServer(makeConfig(twoTenantRaw({ timeouts: { adminChangeTimeoutMs: 300 } })), {
    engine,
    registry,
    telemetry: null,
  }));
  url = await listen(app);
});
after(async () => app.close());

const register = (name: string, uri: string, signal?: AbortSignal) =>
  request(`${url}/admin/tasks`, {
    method: 'POST',
    headers: { ...bearer(ADMIN_KEY), 'content-type': 'application/json' },
    body: JSON.stringify({ name, version: '1', uri, sha256: SHA }),
    ...(signal && { signal }),
  });

test('a slow registration blocks no other change, times out with 504, and is never applied later', async () => {
  const slow = register('slowpoke', 'slow.safetensors');
  await until(() => slowLoads.has('slowpoke@1'), 'the slow load to start');
  // Other tasks change at once while the slow delta is still "downloading".
  const retired = await request(`${url}/admin/tasks/beta`, { method: 'DELETE', headers: bearer(ADMIN_KEY) });
  assert.equal(retired.statusCode, 200);
  await retired.body.dump();
  const quick = await register('quick', 'quick.safetensors');
  assert.equal(quick.statusCode, 201, await quick.body.text());

  const timedOut = await slow;
  assert.equal(timedOut.statusCode, 504);
  const body = (await timedOut.body.json()) as { code: string; error: string };
  assert.equal(body.code, 'DS_ERR_ADMIN_CHANGE_TIMEOUT');
  assert.match(body.error, /slowpoke did not finish within 300 ms; nothing was changed/);
  slowLoads.get('slowpoke@1')!(); // the delta arrives after the client was told it failed
  await until(() => engine.evicted.includes('slowpoke@1'), 'the late delta to be evicted');
  assert.equal(registry.has('slowpoke'), false, 'an abandoned change is not applied');
  assert.deepEqual(registry.names(), ['alpha', 'quick']);
});

test('a client that disconnects mid-registration does not get its change applied behind its back', async () => {
  const controller = new AbortController();
  const gone = register('vanishing', 'slow-2.safetensors', controller.signal).catch((e: Error) => e);
  await until(() => slowLoads.has('vanishing@1'), 'the slow load to start');
  controller.abort();
  assert.ok((await gone) instanceof Error);
  await new Promise((resolve) => setTimeout(resolve, 50));
  slowLoads.get('vanishing@1')!();
  await until(() => engine.evicted.includes('vanishing@1'), 'the late delta to be evicted');
  assert.equal(registry.has('vanishing'), false);
});
