import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_CONFIG_PATH, ENV_OVERRIDES, configPathFrom, loadConfig, parseConfig } from '../../src/core/config.js';
import { DEV_KEY_HASHES } from '../../src/core/config-dev-keys.js';
import { sha256Hex } from '../../src/core/sha256.js';

const KEY = sha256Hex('a-secret-key');
const ADMIN = sha256Hex('an-admin-key');
const DEV_HASH = [...DEV_KEY_HASHES.keys()][0]!;

/** A minimal valid production config, as YAML text, with `patch` merged in at the top level. */
function yaml(patch: Record<string, unknown> = {}): string {
  return stringify({
    model: { path: 'model.onnx' },
    tenants: [{ name: 'acme', keySha256: [KEY], tasks: ['*'] }],
    admin: { keySha256: [ADMIN] },
    ...patch,
  });
}

const parse = (text: string, env: Record<string, string> = {}) =>
  parseConfig(text, { source: 'test.yaml', baseDir: '/srv/deltaserve', env });

test('the shipped config/default.yaml is valid and serves the zoo on the CPU in dev mode', async () => {
  const config = await loadConfig({ path: DEFAULT_CONFIG_PATH, env: {} });
  assert.equal(config.devMode, true);
  assert.equal(config.engine.executionProvider, 'cpu');
  assert.equal(config.engine.mode, 'auto');
  assert.match(config.model.manifest ?? '', /models[/\\]zoo\.yaml$/);
  assert.equal(config.tenants[0]?.tasks[0], '*');
  assert.ok(DEV_KEY_HASHES.has(config.tenants[0].keySha256[0]!));
});

test('defaults are filled in and relative paths resolve against the config folder', () => {
  const config = parse(yaml({ registry: { stateFile: 'var/state.json' } }));
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8080 });
  assert.equal(config.model.path, '/srv/deltaserve/model.onnx');
  assert.equal(config.registry.stateFile, '/srv/deltaserve/var/state.json');
  assert.deepEqual(
    [config.registry.pollIntervalMs, config.registry.watch, config.registry.lockStaleMs],
    [1000, true, 10_000],
  );
  assert.equal(config.deltas.fileRoot, '/srv/deltaserve');
  assert.equal(config.timeouts.inferTimeoutMs, 30_000);
  assert.equal(config.batching.maxBatchSize, 8);
  assert.equal(config.shutdownGraceMs, 10_000);
  assert.deepEqual(config.tenants[0]!.aliases, {});
  assert.equal(config.tenants[0]!.rateLimit, null);
  // /metrics is protected by default (issue 22, item 9): no scraper key, not anonymous.
  assert.deepEqual([config.telemetry.metricsKeySha256, config.telemetry.metricsAnonymous], [[], false]);
});

test('scraper keys and anonymous /metrics come from the file or the environment', () => {
  const scraper = sha256Hex('a-scraper-key');
  const fromFile = parse(yaml({ telemetry: { metricsKeySha256: [scraper.toUpperCase()], metricsAnonymous: true } }));
  assert.deepEqual(fromFile.telemetry.metricsKeySha256, [scraper]);
  assert.equal(fromFile.telemetry.metricsAnonymous, true);
  const fromEnv = parse(yaml(), {
    DELTASERVE_METRICS_KEY_SHA256: `${scraper}, ${sha256Hex('another')}`,
    DELTASERVE_METRICS_ANONYMOUS: 'false',
  });
  assert.deepEqual(fromEnv.telemetry.metricsKeySha256, [scraper, sha256Hex('another')]);
  assert.equal(fromEnv.telemetry.metricsAnonymous, false);
});

test('every phase of a connection is bounded by default; the row limit follows the batch size', () => {
  const config = parse(yaml());
  assert.deepEqual(
    [
      config.http.headersTimeoutMs,
      config.http.bodyTimeoutMs,
      config.http.keepAliveTimeoutMs,
      config.http.sendTimeoutMs,
    ],
    [10_000, 30_000, 72_000, 30_000],
  );
  assert.equal(config.http.maxUnsentBytes, 256 * 1024 ** 2);
  assert.equal(config.http.maxConnections, null, 'null: derived from the open-file limit at start');
  assert.equal(config.http.maxRowsPerRequest, 64, 'eight batches of maxBatchSize 8');
  assert.equal(parse(yaml({ batching: { maxBatchSize: 32 } })).http.maxRowsPerRequest, 256);
  const set = parse(yaml({ http: { bodyTimeoutMs: 5000, maxConnections: 100, maxRowsPerRequest: 4 } }));
  assert.deepEqual([set.http.bodyTimeoutMs, set.http.maxConnections, set.http.maxRowsPerRequest], [5000, 100, 4]);
});

test('the activation mode defaults to auto (the engine picks at start) on every provider; graph can be forced on cpu', () => {
  assert.equal(parse(yaml()).engine.mode, 'auto');
  assert.equal(parse(yaml({ engine: { executionProvider: 'cuda' } })).engine.mode, 'auto');
  assert.equal(parse(yaml({ engine: { executionProvider: 'webgpu' } })).engine.mode, 'auto');
  assert.equal(parse(yaml({ engine: { mode: 'graph' } })).engine.mode, 'graph');
  assert.equal(parse(yaml({ engine: { mode: 'patch' } })).engine.mode, 'patch');
});

test('mixed mode runs on the cpu only; a token budget for mixed batches is optional and positive', () => {
  assert.equal(parse(yaml({ engine: { mode: 'mixed' } })).engine.mode, 'mixed');
  assert.throws(
    () => parse(yaml({ engine: { mode: 'mixed', executionProvider: 'webgpu' } })),
    /mixed runs only on the cpu/,
  );
  assert.equal(parse(yaml()).batching.maxBatchTokens, null);
  assert.equal(parse(yaml({ batching: { maxBatchTokens: 4096 } })).batching.maxBatchTokens, 4096);
  assert.throws(() => parse(yaml({ batching: { maxBatchTokens: 0 } })), /maxBatchTokens/);
  assert.throws(() => parse(yaml({ engine: { mode: 'mixedup' } })), /engine\.mode/);
});

test('the side kernel and its threads come from engine.sideKernel(Threads) or DELTASERVE_KERNEL / DELTASERVE_SIDE_KERNEL_THREADS', () => {
  const defaults = parse(yaml()).engine;
  assert.deepEqual([defaults.sideKernel, defaults.sideKernelThreads], ['auto', 0]);
  const fromFile = parse(yaml({ engine: { mode: 'mixed', sideKernel: 'js', sideKernelThreads: 4 } })).engine;
  assert.deepEqual([fromFile.sideKernel, fromFile.sideKernelThreads], ['js', 4]);
  const fromEnv = parse(yaml(), { DELTASERVE_KERNEL: 'native', DELTASERVE_SIDE_KERNEL_THREADS: '2' }).engine;
  assert.deepEqual([fromEnv.sideKernel, fromEnv.sideKernelThreads], ['native', 2]);
  assert.throws(
    () => parse(yaml({ engine: { sideKernel: 'fast' } })),
    (error: Error & { code?: string }) =>
      error.code === 'DS_ERR_CONFIG_INVALID' && /engine\.sideKernel/.test(error.message),
  );
  assert.throws(() => parse(yaml(), { DELTASERVE_KERNEL: 'gpu' }), /DELTASERVE_KERNEL.*engine\.sideKernel/s);
  assert.throws(() => parse(yaml({ engine: { sideKernelThreads: -1 } })), /engine\.sideKernelThreads/);
});

test('a fallback execution provider is optional and read from the file or the environment', () => {
  assert.equal(parse(yaml({ engine: { executionProvider: 'webgpu' } })).engine.fallbackExecutionProvider, null);
  assert.equal(
    parse(yaml({ engine: { executionProvider: 'webgpu', fallbackExecutionProvider: 'cpu' } })).engine
      .fallbackExecutionProvider,
    'cpu',
  );
  const fromEnv = parse(yaml(), {
    DELTASERVE_EXECUTION_PROVIDER: 'webgpu',
    DELTASERVE_FALLBACK_EXECUTION_PROVIDER: 'cpu',
  }).engine;
  assert.deepEqual(
    [fromEnv.executionProvider, fromEnv.fallbackExecutionProvider, fromEnv.mode],
    ['webgpu', 'cpu', 'auto'],
  );
});

test('the manifest folder is the default delta root', () => {
  const config = parse(stringify({ model: { manifest: '../models/zoo.yaml' }, tenants: [] }));
  assert.equal(config.deltas.fileRoot, '/srv/models');
});

const BAD_CONFIGS: readonly {
  readonly name: string;
  readonly patch: Record<string, unknown>;
  readonly field: string;
  readonly reason: RegExp;
}[] = [
  {
    name: 'port out of range',
    patch: { listen: { port: 70000 } },
    field: 'listen.port',
    reason: /integer in \[0, 65535\]/,
  },
  { name: 'port as text', patch: { listen: { port: 'eighty' } }, field: 'listen.port', reason: /"eighty"/ },
  { name: 'unknown top-level field', patch: { lisen: {} }, field: 'lisen', reason: /unknown field/ },
  {
    name: 'typo with a hint',
    patch: { batching: { maxBatchsize: 4 } },
    field: 'batching.maxBatchsize',
    reason: /did you mean "maxBatchSize"/,
  },
  { name: 'no model', patch: { model: {} }, field: 'model', reason: /model\.manifest .* or model\.path/ },
  {
    name: 'both model sources',
    patch: { model: { path: 'a.onnx', manifest: 'zoo.yaml' } },
    field: 'model',
    reason: /only one/,
  },
  {
    name: 'execution provider',
    patch: { engine: { executionProvider: 'tpu' } },
    field: 'engine.executionProvider',
    reason: /cpu, cuda, webgpu/,
  },
  {
    name: 'patch mode on webgpu',
    patch: { engine: { executionProvider: 'webgpu', mode: 'patch' } },
    field: 'engine.mode',
    reason: /patch runs only on the cpu execution provider.*use graph with webgpu/,
  },
  {
    name: 'patch mode on cuda',
    patch: { engine: { executionProvider: 'cuda', mode: 'patch' } },
    field: 'engine.mode',
    reason: /only on the cpu/,
  },
  {
    name: 'fallback for cpu',
    patch: { engine: { fallbackExecutionProvider: 'webgpu' } },
    field: 'engine.fallbackExecutionProvider',
    reason: /cpu always starts/,
  },
  {
    name: 'fallback to itself',
    patch: { engine: { executionProvider: 'webgpu', fallbackExecutionProvider: 'webgpu' } },
    field: 'engine.fallbackExecutionProvider',
    reason: /must differ/,
  },
  {
    name: 'fallback unknown',
    patch: { engine: { executionProvider: 'webgpu', fallbackExecutionProvider: 'gpu' } },
    field: 'engine.fallbackExecutionProvider',
    reason: /cpu, cuda, webgpu/,
  },
  { name: 'activation mode', patch: { engine: { mode: 'merge' } }, field: 'engine.mode', reason: /patch, graph/ },
  { name: 'cache bytes zero', patch: { engine: { cacheBytes: 0 } }, field: 'engine.cacheBytes', reason: /integer/ },
  {
    name: 'batch size fraction',
    patch: { batching: { maxBatchSize: 2.5 } },
    field: 'batching.maxBatchSize',
    reason: /integer/,
  },
  {
    name: 'total queue below per-task',
    patch: { batching: { maxQueuedPerTask: 100, maxQueuedTotal: 10 } },
    field: 'batching.maxQueuedTotal',
    reason: /at least/,
  },
  {
    name: 'max timeout below default',
    patch: { timeouts: { inferTimeoutMs: 5000, maxInferTimeoutMs: 1000 } },
    field: 'timeouts.maxInferTimeoutMs',
    reason: /at least/,
  },
  {
    name: 'body limit tiny',
    patch: { http: { bodyLimitBytes: 10 } },
    field: 'http.bodyLimitBytes',
    reason: /integer in/,
  },
  {
    name: 'body timeout zero (no bound)',
    patch: { http: { bodyTimeoutMs: 0 } },
    field: 'http.bodyTimeoutMs',
    reason: /integer in \[100, /,
  },
  {
    name: 'headers timeout not a number',
    patch: { http: { headersTimeoutMs: 'soon' } },
    field: 'http.headersTimeoutMs',
    reason: /integer/,
  },
  { name: 'no connections', patch: { http: { maxConnections: 0 } }, field: 'http.maxConnections', reason: /integer/ },
  {
    name: 'rows per request zero',
    patch: { http: { maxRowsPerRequest: 0 } },
    field: 'http.maxRowsPerRequest',
    reason: /integer/,
  },
  {
    name: 'delta scheme',
    patch: { deltas: { allowedSchemes: ['ftp'] } },
    field: 'deltas.allowedSchemes[0]',
    reason: /file, http or https/,
  },
  {
    name: 'delta host pattern',
    patch: { deltas: { allowedHosts: ['https://x.com/path'] } },
    field: 'deltas.allowedHosts[0]',
    reason: /host name/,
  },
  {
    name: 'task without sha256',
    patch: { registry: { tasks: [{ name: 't', version: '1', uri: 't.st' }] } },
    field: 'registry.tasks[0].sha256',
    reason: /required/,
  },
  {
    name: 'task with short sha256',
    patch: { registry: { tasks: [{ name: 't', version: '1', uri: 't.st', sha256: 'abc' }] } },
    field: 'registry.tasks[0].sha256',
    reason: /64 hex/,
  },
  {
    name: 'task named base',
    patch: { registry: { tasks: [{ name: 'base', version: '1', uri: 't.st', sha256: KEY }] } },
    field: 'registry.tasks[0].name',
    reason: /reserved/,
  },
  {
    name: 'task declared twice',
    patch: {
      registry: {
        tasks: [
          { name: 't', version: '1', uri: 'a', sha256: KEY },
          { name: 't', version: 1, uri: 'b', sha256: KEY },
        ],
      },
    },
    field: 'registry.tasks[1]',
    reason: /twice/,
  },
  {
    name: 'labels vs numClasses',
    patch: {
      registry: { tasks: [{ name: 't', version: '1', uri: 'a', sha256: KEY, labels: ['x', 'y'], numClasses: 3 }] },
    },
    field: 'registry.tasks[0].labels',
    reason: /2 labels but numClasses is 3/,
  },
  {
    name: 'tenant without keys',
    patch: { tenants: [{ name: 'acme', tasks: ['*'] }] },
    field: 'tenants[0].keySha256',
    reason: /at least one/,
  },
  {
    name: 'tenant key not a hash',
    patch: { tenants: [{ name: 'acme', keySha256: ['plain-text-key'], tasks: [] }] },
    field: 'tenants[0].keySha256[0]',
    reason: /sha256/,
  },
  {
    name: 'tenant name with a space',
    patch: { tenants: [{ name: 'a cme', keySha256: [KEY] }] },
    field: 'tenants[0].name',
    reason: /letters, digits/,
  },
  {
    name: 'duplicate tenant',
    patch: {
      tenants: [
        { name: 'a', keySha256: [KEY] },
        { name: 'a', keySha256: [sha256Hex('other')] },
      ],
    },
    field: 'tenants[1].name',
    reason: /twice/,
  },
  {
    name: 'key shared by two tenants',
    patch: {
      tenants: [
        { name: 'a', keySha256: [KEY] },
        { name: 'b', keySha256: [KEY] },
      ],
    },
    field: 'tenants[1].keySha256[0]',
    reason: /same key hash as tenant a/,
  },
  {
    name: 'tenant key equals admin key',
    patch: { tenants: [{ name: 'a', keySha256: [ADMIN] }] },
    field: 'tenants[0].keySha256[0]',
    reason: /admin/,
  },
  {
    name: 'alias target malformed',
    patch: { tenants: [{ name: 'a', keySha256: [KEY], aliases: { shoes: 'footwear@1@2' } }] },
    field: 'tenants[0].aliases.shoes',
    reason: /task@version/,
  },
  {
    name: 'alias named base',
    patch: { tenants: [{ name: 'a', keySha256: [KEY], aliases: { base: 'footwear' } }] },
    field: 'tenants[0].aliases.base',
    reason: /reserved/,
  },
  {
    name: 'split weight negative',
    patch: { tenants: [{ name: 'a', keySha256: [KEY], splits: { t: { '1': 90, '2': -10 } } }] },
    field: 'tenants[0].splits.t.2',
    reason: /positive weight/,
  },
  {
    name: 'split without versions',
    patch: { tenants: [{ name: 'a', keySha256: [KEY], splits: { t: {} } }] },
    field: 'tenants[0].splits.t',
    reason: /at least one/,
  },
  {
    name: 'rate limit zero',
    patch: { tenants: [{ name: 'a', keySha256: [KEY], rateLimit: { requestsPerSecond: 0 } }] },
    field: 'tenants[0].rateLimit.requestsPerSecond',
    reason: /\(0, /,
  },
  {
    name: 'concurrency zero',
    patch: { tenants: [{ name: 'a', keySha256: [KEY], maxConcurrent: 0 }] },
    field: 'tenants[0].maxConcurrent',
    reason: /integer in \[1/,
  },
  {
    name: 'dev tenant key outside dev mode',
    patch: { tenants: [{ name: 'a', keySha256: [DEV_HASH] }] },
    field: 'tenants[0].keySha256[0]',
    reason: /public development key/,
  },
  {
    name: 'dev admin key outside dev mode',
    patch: { admin: { keySha256: [sha256Hex('dev-admin-key')] } },
    field: 'admin.keySha256[0]',
    reason: /public development key "dev-admin-key"/,
  },
  {
    name: 'otlp endpoint not a URL',
    patch: { telemetry: { otlpEndpoint: 'collector:4318' } },
    field: 'telemetry.otlpEndpoint',
    reason: /http\(s\) URL/,
  },
  {
    name: 'retired metricsRequireAdmin',
    patch: { telemetry: { metricsRequireAdmin: true } },
    field: 'telemetry.metricsRequireAdmin',
    reason: /is retired: .*telemetry\.metricsKeySha256.*telemetry\.metricsAnonymous: true/,
  },
  {
    name: 'metrics key not a sha256',
    patch: { telemetry: { metricsKeySha256: ['scraper-token'] } },
    field: 'telemetry.metricsKeySha256[0]',
    reason: /64/,
  },
  {
    name: 'metrics key that is the admin key',
    patch: { telemetry: { metricsKeySha256: [ADMIN] } },
    field: 'telemetry.metricsKeySha256[0]',
    reason: /a key of its own/,
  },
  {
    name: 'metricsAnonymous not a boolean',
    patch: { telemetry: { metricsAnonymous: 'yes' } },
    field: 'telemetry.metricsAnonymous',
    reason: /true or false/,
  },
  { name: 'log level', patch: { logLevel: 'loud' }, field: 'logLevel', reason: /fatal, error/ },
  { name: 'shutdown grace negative', patch: { shutdownGraceMs: -1 }, field: 'shutdownGraceMs', reason: /integer in/ },
];

test('an invalid config fails with one message naming the field and the reason', () => {
  for (const bad of BAD_CONFIGS) {
    assert.throws(
      () => parse(yaml(bad.patch)),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'DS_ERR_CONFIG_INVALID', bad.name);
        assert.ok(error.message.includes(`: ${bad.field}: `), `${bad.name}: "${error.message}" names ${bad.field}`);
        assert.match(error.message, bad.reason, bad.name);
        assert.ok(error.message.includes('test.yaml'), `${bad.name}: names the file`);
        return true;
      },
      bad.name,
    );
  }
});

test('broken YAML is reported as a config error with its line', () => {
  assert.throws(
    () => parse('listen:\n  port: [8080\n'),
    (error: Error & { code?: string }) =>
      error.code === 'DS_ERR_CONFIG_INVALID' && /\(yaml\)/.test(error.message) && /line/i.test(error.message),
  );
  assert.throws(() => parse('devMode: true\ndevMode: false\n'), /yaml/);
});

test('dev keys are accepted in dev mode', () => {
  const config = parse(yaml({ devMode: true, tenants: [{ name: 'dev', keySha256: [DEV_HASH], tasks: ['*'] }] }));
  assert.equal(config.devMode, true);
});

test('environment variables override single fields and are validated like the file', () => {
  const config = parse(yaml({ listen: { port: 8080 } }), {
    DELTASERVE_PORT: '9090',
    DELTASERVE_HOST: '0.0.0.0',
    DELTASERVE_CACHE_BYTES: '1048576',
    DELTASERVE_MODE: 'graph',
    DELTASERVE_EXECUTION_PROVIDER: 'cuda',
    DELTASERVE_LOG_LEVEL: 'debug',
    DELTASERVE_OTLP_ENDPOINT: 'http://collector:4318',
    DELTASERVE_DELTA_ALLOWED_HOSTS: 'deltas.example.com, *.cdn.example.com',
    DELTASERVE_REGISTRY_STATE_FILE: 'relative/state.json',
    DELTASERVE_SHUTDOWN_GRACE_MS: '2500',
    DELTASERVE_MAX_QUEUE_DELAY_MS: '0.5',
    DELTASERVE_DELTA_ALLOW_PRIVATE_ADDRESSES: 'true',
    DELTASERVE_REGISTRY_POLL_INTERVAL_MS: '250',
  });
  assert.equal(config.registry.pollIntervalMs, 250);
  assert.deepEqual(config.listen, { host: '0.0.0.0', port: 9090 });
  assert.equal(config.engine.cacheBytes, 1048576);
  assert.equal(config.engine.mode, 'graph');
  assert.equal(config.engine.executionProvider, 'cuda');
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.telemetry.otlpEndpoint, 'http://collector:4318');
  assert.deepEqual(config.deltas.allowedHosts, ['deltas.example.com', '*.cdn.example.com']);
  assert.equal(
    config.registry.stateFile,
    join(process.cwd(), 'relative/state.json'),
    'env paths resolve against the working directory',
  );
  assert.equal(config.shutdownGraceMs, 2500);
  assert.equal(config.batching.maxQueueDelayMs, 0.5);
  assert.equal(config.deltas.allowPrivateAddresses, true);
  assert.equal(parse(yaml(), {}).deltas.allowPrivateAddresses, false, 'private delta addresses are refused by default');
});

test('an invalid environment value names the variable and the field', () => {
  assert.throws(
    () => parse(yaml(), { DELTASERVE_PORT: 'http' }),
    /test\.yaml \+ DELTASERVE_PORT\): listen\.port: expected an integer, got "http"/,
  );
  assert.throws(() => parse(yaml(), { DELTASERVE_PORT: '99999' }), /test\.yaml \+ DELTASERVE_PORT.*listen\.port/s);
  assert.throws(() => parse(yaml(), { DELTASERVE_DEV_MODE: 'maybe' }), /DELTASERVE_DEV_MODE.*true or false/s);
  assert.throws(() => parse(yaml(), { DELTASERVE_MODE: 'fast' }), /DELTASERVE_MODE.*engine\.mode/s);
});

test('DELTASERVE_MODEL_PATH replaces a manifest from the file (and the other way round)', () => {
  const fromManifest = stringify({ model: { manifest: 'zoo.yaml' }, tenants: [] });
  const config = parse(fromManifest, { DELTASERVE_MODEL_PATH: '/models/other.onnx' });
  assert.equal(config.model.path, '/models/other.onnx');
  assert.equal(config.model.manifest, null);
});

test('every documented override is a distinct variable of a known field', () => {
  const names = ENV_OVERRIDES.map((o) => o.env);
  assert.equal(new Set(names).size, names.length);
  for (const override of ENV_OVERRIDES) assert.match(override.env, /^DELTASERVE_[A-Z0-9_]+$/);
});

test('config path: --config, then DELTASERVE_CONFIG, then the shipped default', async () => {
  assert.equal(configPathFrom({ path: '/etc/a.yaml', env: { DELTASERVE_CONFIG: '/etc/b.yaml' } }), '/etc/a.yaml');
  assert.equal(configPathFrom({ env: { DELTASERVE_CONFIG: '/etc/b.yaml' } }), '/etc/b.yaml');
  assert.equal(configPathFrom({ env: {} }), DEFAULT_CONFIG_PATH);
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-config-'));
  try {
    await writeFile(join(dir, 'gw.yaml'), yaml({ listen: { port: 1234 } }));
    const config = await loadConfig({ env: { DELTASERVE_CONFIG: join(dir, 'gw.yaml') } });
    assert.equal(config.listen.port, 1234);
    assert.equal(config.model.path, join(dir, 'model.onnx'));
    await assert.rejects(
      loadConfig({ path: join(dir, 'missing.yaml'), env: {} }),
      (error: Error & { code?: string }) => error.code === 'DS_ERR_FILE_READ' && error.message.includes('missing.yaml'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
