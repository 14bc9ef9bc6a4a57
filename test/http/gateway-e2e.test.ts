/**
 * End to end through the real Engine (worker thread, scheduler, delta cache) on the tiny
 * synthetic encoder, over real HTTP with undici: every route's happy path, answers equal to an
 * independently merged model, canary splits, admin registration persisted across a restart,
 * failed registrations that change nothing, a delta that cannot be fetched, and /metrics.
 * One engine serves the whole file; "restarts" are new server instances on the same state file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { sha256Hex } from '../../src/core/sha256.js';
import type { GatewayConfig } from '../../src/core/config.js';
import { Engine } from '../../src/engine/engine.js';
import { decodeDelta } from '../../src/deltas/format/delta-file.js';
import { deltaByteSize } from '../../src/deltas/cache/delta-size.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { buildServer, engineOptionsFor } from '../../src/server.js';
import { buildTelemetry, type Telemetry } from '../../src/telemetry/index.js';
import {
  buildTinyZoo,
  maxAbsDiff,
  mergeIndependently,
  runPlain,
  tokenBatch,
  type TinyZoo,
} from '../helpers/tiny-models.js';
import {
  ADMIN_KEY,
  TENANT_A_KEY,
  TENANT_B_KEY,
  bearer,
  listen,
  makeConfig,
  writeDelta,
  type DeltaFile,
} from './fixtures.js';

const OPS_KEY = 'ops-tenant-key';

let zoo: TinyZoo;
let otherZoo: TinyZoo;
let engine: Engine;
let telemetry: Telemetry;
const spans = new InMemorySpanExporter();
let config: GatewayConfig;
let stateFile: string;
const files: Record<string, DeltaFile> = {};

let app: FastifyInstance;
let url: string;

before(async () => {
  zoo = await buildTinyZoo({ tasks: 4 });
  otherZoo = await buildTinyZoo({ tasks: 1, seed: 9 });
  for (const [name, delta] of [
    ['alpha-1', zoo.deltas[0]!],
    ['alpha-2', zoo.deltas[1]!],
    ['beta-1', zoo.deltas[2]!],
    ['gamma-1', zoo.deltas[3]!],
    ['gamma-2', zoo.deltas[0]!],
    ['wrong-base', otherZoo.deltas[0]!],
  ] as const) {
    files[name] = await writeDelta(zoo.dir, `${name}.safetensors`, delta);
  }
  await writeFile(join(zoo.dir, 'corrupt.safetensors'), 'not a delta');
  stateFile = join(zoo.dir, 'state', 'registry.json');
  const declared = (name: string, version: string, file: string) => ({
    name,
    version,
    uri: file,
    sha256: files[file.replace('.safetensors', '')]?.sha256 ?? 'f'.repeat(64),
    labels: ['no', 'maybe', 'yes'],
  });
  config = makeConfig(
    {
      model: { path: zoo.basePath, labels: ['no', 'maybe', 'yes'] },
      // Patch mode, whatever `auto` would pick on this machine: activation metrics and spans are
      // part of what this file checks (mixed mode end to end: gateway-providers.test.ts).
      engine: { mode: 'patch', intraOpThreads: 1, cacheBytes: 16 * 1024 * 1024 },
      deltas: { fileRoot: zoo.dir, allowedSchemes: ['file'] },
      registry: {
        stateFile,
        tasks: [
          declared('alpha', '1', 'alpha-1.safetensors'),
          declared('alpha', '2', 'alpha-2.safetensors'),
          declared('beta', '1', 'beta-1.safetensors'),
          declared('broken', '1', 'missing.safetensors'),
        ],
      },
      tenants: [
        {
          name: 'tenant-a',
          keySha256: [sha256Hex(TENANT_A_KEY)],
          tasks: ['alpha', 'base'],
          splits: { alpha: { '1': 50, '2': 50 } },
        },
        { name: 'tenant-b', keySha256: [sha256Hex(TENANT_B_KEY)], tasks: ['beta'], aliases: { stable: 'alpha@1' } },
        { name: 'ops', keySha256: [sha256Hex(OPS_KEY)], tasks: ['*'] },
      ],
      admin: { keySha256: [sha256Hex(ADMIN_KEY)] },
      logLevel: 'silent',
    },
    zoo.dir,
  );
  telemetry = buildTelemetry({ serviceName: 'deltaserve-test', spanExporter: spans });
  engine = await Engine.start(engineOptionsFor(config, zoo.basePath, (event) => telemetry.recordEngineEvent(event)));
  telemetry.observeEngineReady(() => engine.ready);
  telemetry.observeQueueDepth(() => ({
    total: engine.schedulerStats().queued,
    byTask: engine.schedulerStats().queuedByTask,
  }));
  telemetry.observeCache(async () => {
    const stats = await engine.stats();
    const cache = stats.worker?.cache;
    return { bytes: cache?.bytes ?? 0, fileBytes: cache?.fileBytes ?? 0, entries: cache?.entries ?? 0 };
  });
  await startServer();
});

after(async () => {
  await app?.close();
  await engine?.close(0);
  await telemetry?.shutdown();
  await zoo?.cleanup();
  await otherZoo?.cleanup();
});

/** A fresh server instance (new registry read from the state file), as after a process restart. */
async function startServer(): Promise<void> {
  await app?.close();
  const registry = await TaskRegistry.open({ declared: config.registry.tasks, stateFile });
  ({ app } = await buildServer(config, { engine, registry, telemetry, routingSeed: 5 }));
  url = await listen(app);
}

async function http(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, key?: string, body?: unknown) {
  const response = await request(`${url}${path}`, {
    method,
    headers: { ...(key && bearer(key)), ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    headers: response.headers,
    text,
    json: (text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : {}) as Record<string, unknown> & unknown[],
  };
}

const tokens = (seed: number) => {
  const ids = tokenBatch(1, 6, seed).input_ids!;
  return {
    inputs: [
      {
        name: 'input_ids',
        shape: [...ids.dims],
        datatype: 'INT64',
        data: Array.from(ids.data as BigInt64Array, Number),
      },
    ],
  };
};

const logitsOf = (json: Record<string, unknown>) =>
  Float32Array.from((json.outputs as { name: string; data: number[] }[]).find((o) => o.name === 'logits')!.data);

test('health, readiness and server metadata over HTTP', async () => {
  assert.deepEqual((await http('GET', '/v2/health/live')).json, { live: true });
  const ready = (await http('GET', '/v2/health/ready')).json as unknown as {
    ready: boolean;
    registry: { synced: boolean; error: string | null; lastSyncAt: string };
  };
  assert.equal(ready.ready, true);
  assert.deepEqual(
    { ...ready.registry, lastSyncAt: typeof ready.registry.lastSyncAt },
    { synced: true, error: null, lastSyncAt: 'string' },
    'with a state file, readiness says whether it is in sync',
  );
  assert.equal((await http('GET', '/v2')).json.name, 'deltaserve');
});

test('model metadata and readiness come from the real model signature', async () => {
  const meta = await http('GET', '/v2/models/alpha', TENANT_A_KEY);
  assert.equal(meta.status, 200, meta.text);
  assert.deepEqual(meta.json.inputs, [{ name: 'input_ids', datatype: 'INT64', shape: [-1, -1] }]);
  assert.deepEqual(meta.json.outputs, [{ name: 'logits', datatype: 'FP32', shape: [-1, 3] }]);
  assert.deepEqual(meta.json.versions, ['1', '2']);
  assert.deepEqual((meta.json.parameters as { labels: string[] }).labels, ['no', 'maybe', 'yes']);
  assert.equal((await http('GET', '/v2/models/alpha/versions/2/ready', TENANT_A_KEY)).status, 200);
  assert.equal((await http('GET', '/v2/models/base/ready', TENANT_A_KEY)).status, 200);
});

test('infer answers equal the engine called directly and an independently merged model', async () => {
  const body = tokens(11);
  // The engine transfers input buffers to its worker: every use gets a fresh copy.
  const inputs = () => tokenBatch(1, 6, 11);
  const viaHttp = await http('POST', '/v2/models/alpha/versions/2/infer', TENANT_A_KEY, { ...body, id: 'e2e-1' });
  assert.equal(viaHttp.status, 200, viaHttp.text);
  assert.equal(viaHttp.json.id, 'e2e-1');
  assert.equal(viaHttp.json.model_version, '2');
  const direct = await engine.infer(
    { key: 'alpha@2', uri: files['alpha-2']!.file, sha256: files['alpha-2']!.sha256 },
    inputs(),
  );
  assert.deepEqual(logitsOf(viaHttp.json), direct.outputs.logits!.data);
  const merged = await runPlain(mergeIndependently(zoo.base, zoo.deltas[1]!), inputs());
  assert.ok(maxAbsDiff(logitsOf(viaHttp.json), merged) <= 1e-5);

  const viaBase = await http('POST', '/v2/models/base/infer', TENANT_A_KEY, body);
  assert.equal(viaBase.status, 200, viaBase.text);
  assert.ok(maxAbsDiff(logitsOf(viaBase.json), await runPlain(zoo.base, inputs())) <= 1e-5);

  const viaAlias = await http('POST', '/v2/models/stable/infer', TENANT_B_KEY, body);
  assert.equal(viaAlias.json.model_name, 'stable');
  assert.equal(viaAlias.json.model_version, '1');
  assert.ok(
    maxAbsDiff(logitsOf(viaAlias.json), await runPlain(mergeIndependently(zoo.base, zoo.deltas[0]!), inputs())) <= 1e-5,
  );
});

test('a 50/50 split serves both versions; a request id always lands on the same version', async () => {
  const versions = await Promise.all(
    Array.from({ length: 60 }, (_, i) =>
      http('POST', '/v2/models/alpha/infer', TENANT_A_KEY, { ...tokens(i), id: `user-${i}` }),
    ),
  );
  const seen = new Set(versions.map((r) => r.json.model_version));
  assert.deepEqual([...seen].sort(), ['1', '2']);
  for (let i = 0; i < 5; i++) {
    const again = await http('POST', '/v2/models/alpha/infer', TENANT_A_KEY, { ...tokens(i), id: `user-${i}` });
    assert.equal(again.json.model_version, versions[i]!.json.model_version, `user-${i} is sticky`);
  }
});

test('a delta that cannot be fetched gives 503 naming the task, and the index says UNAVAILABLE', async () => {
  const response = await http('POST', '/v2/models/broken/infer', OPS_KEY, tokens(1));
  assert.equal(response.status, 503, response.text);
  assert.equal(response.json.code, 'DS_ERR_TASK_UNAVAILABLE');
  assert.ok(String(response.json.error).includes('broken@1'), String(response.json.error));
  const index = await http('POST', '/v2/repository/index', OPS_KEY, {});
  const broken = (index.json as unknown as { name: string; state: string; reason: string }[]).find(
    (e) => e.name === 'broken',
  )!;
  assert.equal(broken.state, 'UNAVAILABLE');
  // Tenants get the failure's code, never the delta's location; admins get the load's own error
  // (from the engine's event).
  assert.match(String(response.json.error), /its delta could not be loaded \(DS_ERR_SOURCE_FILE_MISSING\)/);
  assert.equal(response.headers['retry-after'], '5');
  for (const text of [String(response.json.error), broken.reason])
    assert.ok(!text.includes('missing.safetensors'), text);
  const admin = await http('GET', '/admin/tasks', ADMIN_KEY);
  const row = (admin.json.tasks as { name: string; reason: string }[]).find((t) => t.name === 'broken')!;
  assert.match(row.reason, /missing\.safetensors/);
});

test('repository load pins a delta in the real cache, unload evicts it', async () => {
  const load = await http('POST', '/v2/repository/models/beta/load', ADMIN_KEY);
  assert.equal(load.status, 200, load.text);
  let stats = await engine.stats();
  assert.ok(stats.worker!.cache.pinned.includes('beta@1'));
  const index = await http('POST', '/v2/repository/index', TENANT_B_KEY);
  const entries = index.json as { name: string; version: string; state: string; cached: boolean; pinned: boolean }[];
  assert.deepEqual(
    entries.map((e) => `${e.name}@${e.version}`),
    ['beta@1', 'stable@1'],
  );
  assert.deepEqual(
    entries.find((e) => e.name === 'beta'),
    { name: 'beta', version: '1', state: 'READY', reason: '', cached: true, pinned: true },
  );
  const unload = await http('POST', '/v2/repository/models/beta/unload', ADMIN_KEY);
  assert.equal(unload.status, 200);
  stats = await engine.stats();
  assert.ok(!stats.worker!.cache.keys.includes('beta@1') && !stats.worker!.cache.pinned.includes('beta@1'));
});

test('admin registration: validated by loading, persisted, served, and still there after a restart', async () => {
  const registered = await http('POST', '/admin/tasks', ADMIN_KEY, {
    name: 'gamma',
    version: '1',
    uri: files['gamma-1']!.file,
    sha256: files['gamma-1']!.sha256,
    labels: ['x', 'y', 'z'],
  });
  assert.equal(registered.status, 201, registered.text);
  assert.equal((registered.json.task as { name: string }).name, 'gamma');
  const inputs = tokenBatch(1, 6, 3);
  const expected = await runPlain(mergeIndependently(zoo.base, zoo.deltas[3]!), inputs);
  const served = await http('POST', '/v2/models/gamma/infer', OPS_KEY, tokens(3));
  assert.equal(served.status, 200, served.text);
  assert.ok(maxAbsDiff(logitsOf(served.json), expected) <= 1e-5);
  assert.equal((await http('GET', '/v2/models/gamma', TENANT_A_KEY)).status, 404, 'tenant A does not list gamma');

  const second = await http('PUT', '/admin/tasks/gamma', ADMIN_KEY, {
    version: 2,
    uri: files['gamma-2']!.file,
    sha256: files['gamma-2']!.sha256,
  });
  assert.equal(second.status, 201, second.text);

  await startServer(); // a restart: new registry read from the state file
  const listed = await http('GET', '/admin/tasks', ADMIN_KEY);
  const gamma = (listed.json.tasks as { name: string; version: string; default: boolean; origin: string }[]).filter(
    (t) => t.name === 'gamma',
  );
  assert.deepEqual(
    gamma.map((t) => [t.version, t.default, t.origin]),
    [
      ['1', false, 'admin'],
      ['2', true, 'admin'],
    ],
  );
  const afterRestart = await http('POST', '/v2/models/gamma/infer', OPS_KEY, tokens(3));
  assert.equal(afterRestart.json.model_version, '2', 'the new version is the default');
  const v1 = await http('POST', '/v2/models/gamma/versions/1/infer', OPS_KEY, tokens(3));
  assert.ok(maxAbsDiff(logitsOf(v1.json), expected) <= 1e-5);

  const retired = await http('DELETE', '/admin/tasks/gamma', ADMIN_KEY);
  assert.deepEqual(retired.json, { retired: ['gamma@1', 'gamma@2'] });
  const stats = await engine.stats();
  assert.ok(!stats.worker!.cache.keys.includes('gamma@1'), 'retiring evicts');
  await startServer();
  assert.equal((await http('POST', '/v2/models/gamma/infer', OPS_KEY, tokens(3))).status, 404, 'retired for good');

  // Retiring a declared task survives a restart too.
  assert.equal((await http('DELETE', '/admin/tasks/alpha?version=2', ADMIN_KEY)).status, 200);
  await startServer();
  assert.deepEqual((await http('GET', '/v2/models/alpha', TENANT_A_KEY)).json.versions, ['1']);
});

test('failed registrations change nothing: not registered, state file bytes unchanged', async () => {
  const before = await readFile(stateFile).catch(() => null);
  const listedBefore = (await http('GET', '/admin/tasks', ADMIN_KEY)).json;
  const attempts = [
    {
      why: 'file missing',
      body: { name: 'delta', version: '1', uri: 'nowhere.safetensors', sha256: 'e'.repeat(64) },
      status: 422,
      mentions: 'delta@1',
    },
    {
      why: 'checksum mismatch',
      body: { name: 'delta', version: '1', uri: files['beta-1']!.file, sha256: 'e'.repeat(64) },
      status: 422,
      mentions: 'sha256',
    },
    {
      why: 'not a delta',
      body: { name: 'delta', version: '1', uri: 'corrupt.safetensors', sha256: sha256Hex('not a delta') },
      status: 422,
      mentions: 'delta@1',
    },
    {
      why: 'made for another base',
      body: { name: 'delta', version: '1', uri: files['wrong-base']!.file, sha256: files['wrong-base']!.sha256 },
      status: 422,
      mentions: 'base',
    },
    {
      why: 'outside the delta root',
      body: { name: 'delta', version: '1', uri: '../../etc/passwd', sha256: 'e'.repeat(64) },
      status: 422,
      mentions: 'delta@1',
    },
    {
      why: 'existing name via POST',
      body: { name: 'beta', version: '9', uri: files['beta-1']!.file, sha256: files['beta-1']!.sha256 },
      status: 409,
      mentions: 'beta',
    },
    {
      why: 'reserved name',
      body: { name: 'base', version: '1', uri: files['beta-1']!.file, sha256: files['beta-1']!.sha256 },
      status: 400,
      mentions: 'reserved',
    },
    {
      why: 'bad sha256',
      body: { name: 'delta', version: '1', uri: files['beta-1']!.file, sha256: 'xyz' },
      status: 400,
      mentions: 'sha256',
    },
  ];
  for (const attempt of attempts) {
    const response = await http('POST', '/admin/tasks', ADMIN_KEY, attempt.body);
    assert.equal(response.status, attempt.status, `${attempt.why}: ${response.text}`);
    if (process.env.SHOW_ERRORS) console.log(attempt.why, '→', response.json.error);
    assert.ok(String(response.json.error).includes(attempt.mentions), `${attempt.why}: ${String(response.json.error)}`);
  }
  const conflict = await http('PUT', '/admin/tasks/beta', ADMIN_KEY, {
    version: '1',
    uri: files['alpha-1']!.file,
    sha256: files['alpha-1']!.sha256,
  });
  assert.equal(conflict.status, 409, 'versions are immutable');
  assert.deepEqual(await readFile(stateFile).catch(() => null), before, 'state file bytes unchanged');
  assert.deepEqual((await http('GET', '/admin/tasks', ADMIN_KEY)).json, listedBefore);
  assert.equal((await http('POST', '/v2/models/delta/infer', OPS_KEY, tokens(1))).status, 404);
  const stats = await engine.stats();
  assert.ok(
    !stats.worker!.cache.keys.some((k) => k.startsWith('delta@')),
    'nothing of a failed registration stays cached',
  );
});

test('/metrics exposes request, queue, batch, activation, cache, delta-load and engine metrics', async () => {
  await http('POST', '/v2/models/beta/infer', TENANT_B_KEY, tokens(2));
  const metrics = await http('GET', '/metrics', ADMIN_KEY);
  assert.equal(metrics.status, 200);
  assert.match(String(metrics.headers['content-type']), /text\/plain/);
  for (const name of [
    'deltaserve_request_duration_seconds_bucket',
    'deltaserve_queue_depth_all_tasks',
    'deltaserve_queue_wait_seconds',
    'deltaserve_batch_size',
    'deltaserve_inference_duration_seconds',
    'deltaserve_activations_total',
    'deltaserve_activation_duration_seconds',
    'deltaserve_delta_cache_hits_total',
    'deltaserve_delta_cache_misses_total',
    'deltaserve_delta_cache_evictions_total',
    'deltaserve_delta_cache_bytes',
    'deltaserve_delta_cache_file_bytes',
    'deltaserve_delta_load_duration_seconds',
    'deltaserve_engine_ready',
  ]) {
    assert.ok(metrics.text.includes(name), `${name} is exported`);
  }
  assert.match(
    metrics.text,
    /deltaserve_request_duration_seconds_count\{[^}]*task="beta"[^}]*tenant="tenant-b"[^}]*\} [1-9]/,
  );
  assert.match(metrics.text, /status="200"/);
  assert.match(metrics.text, /status="404"/);
});

test('/admin/tasks shows what each cached delta takes in memory and as its file, and null once it left', async () => {
  await engine.evict('beta@1');
  const listed = async () =>
    (await http('GET', '/admin/tasks', ADMIN_KEY)).json.tasks as {
      name: string;
      version: string;
      cached: { memoryBytes: number; fileBytes: number } | null;
    }[];
  const beta = async () => (await listed()).find((t) => t.name === 'beta' && t.version === '1')!;
  assert.equal((await beta()).cached, null, 'not cached yet');
  assert.equal((await http('POST', '/v2/models/beta/infer', TENANT_B_KEY, tokens(1))).status, 200);
  const decoded = decodeDelta(files['beta-1']!.bytes, { copy: true });
  assert.deepEqual((await beta()).cached, {
    memoryBytes: deltaByteSize(decoded),
    fileBytes: files['beta-1']!.bytes.length,
  });
  assert.equal((await listed()).find((t) => t.name === 'broken')!.cached, null, 'a failed load holds nothing');
  await engine.evict('beta@1');
  assert.equal((await beta()).cached, null, 'evicted');
});

test('traces: the HTTP span has queue → delta → activation → inference children with task, tenant, batch and cache attributes', async () => {
  await engine.evict('beta@1');
  spans.reset();
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const response = await request(`${url}/v2/models/beta/infer`, {
    method: 'POST',
    headers: { ...bearer(TENANT_B_KEY), 'content-type': 'application/json', traceparent },
    body: JSON.stringify(tokens(4)),
  });
  assert.equal(response.statusCode, 200);
  await response.body.dump();
  const finished = spans.getFinishedSpans();
  const server = finished.find((s) => s.name === 'POST /v2/models/:model_name/infer');
  assert.ok(server, `server span among ${finished.map((s) => s.name).join(', ')}`);
  assert.equal(server.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c', "joins the caller's trace");
  assert.equal(server.attributes['deltaserve.task'], 'beta');
  assert.equal(server.attributes['deltaserve.tenant'], 'tenant-b');
  const children = finished.filter((s) => s.parentSpanContext?.spanId === server.spanContext().spanId);
  const names = children.map((s) => s.name);
  for (const name of ['queue', 'delta.fetch', 'delta.verify', 'delta.decode', 'activation', 'inference'])
    assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
  const inference = children.find((s) => s.name === 'inference')!;
  assert.equal(inference.attributes['deltaserve.batch_size'], 1);
  assert.equal(typeof inference.attributes['deltaserve.cache_hit'], 'boolean');
});
