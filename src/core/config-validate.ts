/**
 * Validates the raw configuration (parsed YAML with environment overrides applied) into a
 * `GatewayConfig`, once, at start-up. The first problem stops start-up with one message naming
 * the field path and the reason. Defaults live here and nowhere else.
 *
 * Relative paths in the file resolve against the file's folder (so the config works from any
 * working directory); paths given by environment variables were already made absolute against
 * the working directory.
 */
import { isAbsolute, resolve } from 'node:path';
import { DEV_KEY_HASHES } from './config-dev-keys.js';
import { FieldReader, NAME, join, type Fail } from './config-fields.js';
import { RESERVED_BASE_NAME, readTaskSpec, taskKey } from './config-tasks.js';
import type {
  ActivationModeChoice,
  DeltaScheme,
  ExecutionProvider,
  GatewayConfig,
  LogLevel,
  RateLimitConfig,
  SideKernelChoice,
  TenantConfig,
} from './config-types.js';

const TOP_KEYS = [
  'devMode',
  'listen',
  'model',
  'engine',
  'batching',
  'timeouts',
  'http',
  'deltas',
  'registry',
  'tenants',
  'admin',
  'telemetry',
  'logLevel',
  'shutdownGraceMs',
] as const;
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'cuda', 'webgpu'];
const SIDE_KERNELS: readonly SideKernelChoice[] = ['auto', 'native', 'js'];
const MAX_MS = 24 * 3600 * 1000;
const GIB = 1024 ** 3;

export interface ValidateOptions {
  /** Folder relative paths in the file resolve against. */
  readonly baseDir: string;
  /** Describes where the configuration came from, for the error message. */
  readonly source: string;
  readonly fail: Fail;
}

export function validateConfig(raw: unknown, options: ValidateOptions): GatewayConfig {
  const r = new FieldReader(options.fail);
  const path = (value: string): string => (isAbsolute(value) ? value : resolve(options.baseDir, value));
  const root = r.object(raw, '', TOP_KEYS);
  const devMode = r.boolean(root, 'devMode', '', false);

  const listenObj = r.object(root.listen, 'listen', ['host', 'port']);
  const listen = {
    host: r.string(listenObj, 'host', 'listen', '127.0.0.1'),
    port: r.integer(listenObj, 'port', 'listen', 0, 65535, 8080),
  };

  const modelObj = r.object(root.model, 'model', ['manifest', 'path', 'labels', 'patchable']);
  const manifest = r.optionalString(modelObj, 'manifest', 'model');
  const modelPath = r.optionalString(modelObj, 'path', 'model');
  if ((manifest === null) === (modelPath === null)) {
    r.fail(
      'model',
      manifest === null
        ? 'set model.manifest (a zoo manifest) or model.path (an ONNX file)'
        : 'set only one of model.manifest and model.path',
    );
  }
  const model = {
    manifest: manifest === null ? null : path(manifest),
    path: modelPath === null ? null : path(modelPath),
    labels:
      modelObj.labels === undefined || modelObj.labels === null ? null : r.strings(modelObj, 'labels', 'model', []),
    patchable: r.strings(modelObj, 'patchable', 'model', []),
  };

  const engineObj = r.object(root.engine, 'engine', [
    'executionProvider',
    'fallbackExecutionProvider',
    'deviceId',
    'mode',
    'intraOpThreads',
    'sideKernel',
    'sideKernelThreads',
    'cacheBytes',
    'restartDelayMs',
    'maxRestartDelayMs',
  ]);
  const executionProvider = r.oneOf<ExecutionProvider>(engineObj, 'executionProvider', 'engine', PROVIDERS, 'cpu');
  // docs/onnxruntime-facts.md §7: the CPU patches weights in place (or mixes tasks in one session); a GPU
  // keeps them resident and merges in-graph. `auto` picks per machine and base (engine start-runtime.ts).
  const mode = r.oneOf<ActivationModeChoice>(engineObj, 'mode', 'engine', ['auto', 'patch', 'graph', 'mixed'], 'auto');
  if (mode === 'patch' && executionProvider !== 'cpu') {
    r.fail(
      'engine.mode',
      `patch runs only on the cpu execution provider (it rewrites weights in host memory); use graph with ${executionProvider}`,
    );
  }
  if (mode === 'mixed' && executionProvider !== 'cpu') {
    r.fail(
      'engine.mode',
      `mixed runs only on the cpu execution provider (its side-path kernel runs on the host between ORT runs); use graph with ${executionProvider}`,
    );
  }
  const fallbackExecutionProvider =
    engineObj.fallbackExecutionProvider === undefined || engineObj.fallbackExecutionProvider === null
      ? null
      : r.oneOf<ExecutionProvider>(engineObj, 'fallbackExecutionProvider', 'engine', PROVIDERS, 'cpu');
  if (fallbackExecutionProvider !== null && executionProvider === 'cpu') {
    r.fail('engine.fallbackExecutionProvider', 'is for a GPU executionProvider that cannot start; cpu always starts');
  }
  if (fallbackExecutionProvider !== null && fallbackExecutionProvider === executionProvider) {
    r.fail('engine.fallbackExecutionProvider', `must differ from engine.executionProvider (${executionProvider})`);
  }
  const engine = {
    executionProvider,
    fallbackExecutionProvider,
    deviceId: r.integer(engineObj, 'deviceId', 'engine', 0, 64, 0),
    mode,
    intraOpThreads: r.integer(engineObj, 'intraOpThreads', 'engine', 0, 1024, 0),
    sideKernel: r.oneOf<SideKernelChoice>(engineObj, 'sideKernel', 'engine', SIDE_KERNELS, 'auto'),
    sideKernelThreads: r.integer(engineObj, 'sideKernelThreads', 'engine', 0, 1024, 0),
    cacheBytes: r.integer(engineObj, 'cacheBytes', 'engine', 1, 1024 * GIB, 256 * 1024 ** 2),
    restartDelayMs: r.integer(engineObj, 'restartDelayMs', 'engine', 1, MAX_MS, 200),
    maxRestartDelayMs: r.integer(engineObj, 'maxRestartDelayMs', 'engine', 1, MAX_MS, 10_000),
  };
  r.atLeast('engine.maxRestartDelayMs', engine.maxRestartDelayMs, 'engine.restartDelayMs', engine.restartDelayMs);

  const batchingObj = r.object(root.batching, 'batching', [
    'maxBatchSize',
    'maxQueueDelayMs',
    'maxQueuedPerTask',
    'maxQueuedTotal',
    'forcedSwitchWaitMs',
    'maxBatchTokens',
  ]);
  const batching = {
    maxBatchSize: r.integer(batchingObj, 'maxBatchSize', 'batching', 1, 4096, 8),
    maxQueueDelayMs: r.number(batchingObj, 'maxQueueDelayMs', 'batching', 0, 60_000, 2),
    maxQueuedPerTask: r.integer(batchingObj, 'maxQueuedPerTask', 'batching', 1, 1_000_000, 256),
    maxQueuedTotal: r.integer(batchingObj, 'maxQueuedTotal', 'batching', 1, 10_000_000, 1024),
    forcedSwitchWaitMs: r.number(batchingObj, 'forcedSwitchWaitMs', 'batching', 0, 600_000, 50),
    maxBatchTokens: r.optionalInteger(batchingObj, 'maxBatchTokens', 'batching', 1, 1_000_000_000),
  };
  r.atLeast('batching.maxQueuedTotal', batching.maxQueuedTotal, 'batching.maxQueuedPerTask', batching.maxQueuedPerTask);

  const timeoutsObj = r.object(root.timeouts, 'timeouts', [
    'inferTimeoutMs',
    'maxInferTimeoutMs',
    'adminChangeTimeoutMs',
  ]);
  const timeouts = {
    inferTimeoutMs: r.integer(timeoutsObj, 'inferTimeoutMs', 'timeouts', 1, MAX_MS, 30_000),
    maxInferTimeoutMs: r.integer(timeoutsObj, 'maxInferTimeoutMs', 'timeouts', 1, MAX_MS, 120_000),
    adminChangeTimeoutMs: r.integer(timeoutsObj, 'adminChangeTimeoutMs', 'timeouts', 1, MAX_MS, 90_000),
  };
  r.atLeast(
    'timeouts.maxInferTimeoutMs',
    timeouts.maxInferTimeoutMs,
    'timeouts.inferTimeoutMs',
    timeouts.inferTimeoutMs,
  );

  const httpObj = r.object(root.http, 'http', [
    'bodyLimitBytes',
    'imageBodyLimitBytes',
    'imageMaxPixels',
    'imageDecodeConcurrency',
    'imageDecodeQueue',
    'imageDecodeTimeoutMs',
    'headersTimeoutMs',
    'bodyTimeoutMs',
    'keepAliveTimeoutMs',
    'sendTimeoutMs',
    'maxUnsentBytes',
    'maxConnections',
    'maxRowsPerRequest',
  ]);
  const http = {
    bodyLimitBytes: r.integer(httpObj, 'bodyLimitBytes', 'http', 1024, GIB, 4 * 1024 ** 2),
    imageBodyLimitBytes: r.integer(httpObj, 'imageBodyLimitBytes', 'http', 1024, GIB, 8 * 1024 ** 2),
    // A 28×28 classifier needs little: 1024×1024 is far more than any sensible upload to it.
    imageMaxPixels: r.integer(httpObj, 'imageMaxPixels', 'http', 1, 64 * 1024 ** 2, 1024 * 1024),
    imageDecodeConcurrency: r.integer(httpObj, 'imageDecodeConcurrency', 'http', 1, 64, 2),
    imageDecodeQueue: r.integer(httpObj, 'imageDecodeQueue', 'http', 0, 100_000, 32),
    imageDecodeTimeoutMs: r.integer(httpObj, 'imageDecodeTimeoutMs', 'http', 1, MAX_MS, 5_000),
    // Every phase of a connection is bounded: headers, body, the answer's way out, keep-alive.
    headersTimeoutMs: r.integer(httpObj, 'headersTimeoutMs', 'http', 100, MAX_MS, 10_000),
    bodyTimeoutMs: r.integer(httpObj, 'bodyTimeoutMs', 'http', 100, MAX_MS, 30_000),
    // Above the 60 s idle timeout of common load balancers, so that they, not we, close idle connections.
    keepAliveTimeoutMs: r.integer(httpObj, 'keepAliveTimeoutMs', 'http', 100, MAX_MS, 72_000),
    sendTimeoutMs: r.integer(httpObj, 'sendTimeoutMs', 'http', 100, MAX_MS, 30_000),
    maxUnsentBytes: r.integer(httpObj, 'maxUnsentBytes', 'http', 1024, 64 * GIB, 256 * 1024 ** 2),
    maxConnections: r.optionalInteger(httpObj, 'maxConnections', 'http', 1, 1_000_000),
    // Eight full batches' worth: a request far larger than a batch would hold the engine for all tenants.
    maxRowsPerRequest: r.integer(httpObj, 'maxRowsPerRequest', 'http', 1, 1_000_000, 8 * batching.maxBatchSize),
  };

  const deltasObj = r.object(root.deltas, 'deltas', [
    'fileRoot',
    'allowedSchemes',
    'allowedHosts',
    'maxBytes',
    'connectTimeoutMs',
    'headersTimeoutMs',
    'bodyTimeoutMs',
    'fetchTimeoutMs',
    'minBytesPerSecond',
    'rateGraceMs',
    'retries',
    'allowPrivateAddresses',
  ]);
  const allowedSchemes = r.strings(deltasObj, 'allowedSchemes', 'deltas', ['file', 'https']);
  allowedSchemes.forEach((scheme, i) => {
    if (scheme !== 'file' && scheme !== 'http' && scheme !== 'https')
      r.fail(`deltas.allowedSchemes[${i}]`, `expected file, http or https, got ${JSON.stringify(scheme)}`);
  });
  const allowedHosts = r.strings(deltasObj, 'allowedHosts', 'deltas', []);
  allowedHosts.forEach((host, i) => {
    const name = host.startsWith('*.') ? host.slice(2) : host;
    if (host !== '*' && (name === '' || /[*/\s]/.test(name)))
      r.fail(`deltas.allowedHosts[${i}]`, `expected a host name, "*.suffix" or "*", got ${JSON.stringify(host)}`);
  });
  const fileRootWritten = r.optionalString(deltasObj, 'fileRoot', 'deltas');
  const deltas = {
    // Default: the manifest's folder (zoo deltas live beside it), else the config's folder.
    fileRoot:
      fileRootWritten !== null
        ? path(fileRootWritten)
        : model.manifest !== null
          ? resolve(model.manifest, '..')
          : options.baseDir,
    allowedSchemes: allowedSchemes as DeltaScheme[],
    allowedHosts,
    allowPrivateAddresses: r.boolean(deltasObj, 'allowPrivateAddresses', 'deltas', false),
    maxBytes: r.integer(deltasObj, 'maxBytes', 'deltas', 1, 64 * GIB, GIB),
    connectTimeoutMs: r.integer(deltasObj, 'connectTimeoutMs', 'deltas', 1, MAX_MS, 10_000),
    headersTimeoutMs: r.integer(deltasObj, 'headersTimeoutMs', 'deltas', 1, MAX_MS, 10_000),
    bodyTimeoutMs: r.integer(deltasObj, 'bodyTimeoutMs', 'deltas', 1, MAX_MS, 10_000),
    fetchTimeoutMs: r.integer(deltasObj, 'fetchTimeoutMs', 'deltas', 1, MAX_MS, 60_000),
    minBytesPerSecond: r.integer(deltasObj, 'minBytesPerSecond', 'deltas', 0, GIB, 16 * 1024),
    rateGraceMs: r.integer(deltasObj, 'rateGraceMs', 'deltas', 0, MAX_MS, 5_000),
    retries: r.integer(deltasObj, 'retries', 'deltas', 0, 20, 2),
  };

  const registryObj = r.object(root.registry, 'registry', [
    'stateFile',
    'tasks',
    'pollIntervalMs',
    'watch',
    'lockStaleMs',
  ]);
  const stateFile = r.optionalString(registryObj, 'stateFile', 'registry');
  const tasks = r
    .array(registryObj.tasks, 'registry.tasks')
    .map((value, i) => readTaskSpec(r, value, `registry.tasks[${i}]`, 'uri', (written) => written));
  const seenTasks = new Set<string>();
  tasks.forEach((task, i) => {
    const key = taskKey(task.name, task.version);
    if (seenTasks.has(key)) r.fail(`registry.tasks[${i}]`, `${key} is declared twice`);
    seenTasks.add(key);
  });
  const registry = {
    stateFile: stateFile === null ? null : path(stateFile),
    tasks,
    pollIntervalMs: r.integer(registryObj, 'pollIntervalMs', 'registry', 50, MAX_MS, 1000),
    watch: r.boolean(registryObj, 'watch', 'registry', true),
    lockStaleMs: r.integer(registryObj, 'lockStaleMs', 'registry', 5000, MAX_MS, 10_000),
  };

  const adminObj = r.object(root.admin, 'admin', ['keySha256']);
  const admin = {
    keySha256: r.strings(adminObj, 'keySha256', 'admin', []).map((h, i) => r.sha256(h, `admin.keySha256[${i}]`)),
  };

  const tenants = r.array(root.tenants, 'tenants').map((value, i) => readTenant(r, value, `tenants[${i}]`));
  checkKeys(r, tenants, admin.keySha256, devMode);

  const telemetryObj = r.object(root.telemetry, 'telemetry', [
    'serviceName',
    'otlpEndpoint',
    'metricsKeySha256',
    'metricsAnonymous',
    'metricsRequireAdmin',
  ]);
  if (telemetryObj.metricsRequireAdmin !== undefined) {
    // Retired (issue 22, item 9): /metrics is now protected by default; say what replaces it.
    r.fail(
      'telemetry.metricsRequireAdmin',
      'is retired: /metrics now always takes the admin key or a scraper key listed in telemetry.metricsKeySha256 (sha256 hex); set telemetry.metricsAnonymous: true to serve it without a key',
    );
  }
  const otlpEndpoint = r.optionalString(telemetryObj, 'otlpEndpoint', 'telemetry');
  if (otlpEndpoint !== null && !/^https?:\/\/[^/\s]+/.test(otlpEndpoint)) {
    r.fail('telemetry.otlpEndpoint', `expected an http(s) URL, got ${JSON.stringify(otlpEndpoint)}`);
  }
  const telemetry = {
    serviceName: r.string(telemetryObj, 'serviceName', 'telemetry', 'deltaserve'),
    otlpEndpoint,
    metricsKeySha256: r
      .strings(telemetryObj, 'metricsKeySha256', 'telemetry', [])
      .map((h, i) => r.sha256(h, `telemetry.metricsKeySha256[${i}]`)),
    metricsAnonymous: r.boolean(telemetryObj, 'metricsAnonymous', 'telemetry', false),
  };
  telemetry.metricsKeySha256.forEach((hash, i) => {
    if (admin.keySha256.includes(hash) || tenants.some((tenant) => tenant.keySha256.includes(hash))) {
      r.fail(
        `telemetry.metricsKeySha256[${i}]`,
        'is also an admin or tenant key hash; give the scraper a key of its own',
      );
    }
  });

  return {
    source: options.source,
    devMode,
    listen,
    model,
    engine,
    batching,
    timeouts,
    http,
    deltas,
    registry,
    tenants,
    admin,
    telemetry,
    logLevel: r.oneOf<LogLevel>(root, 'logLevel', '', LOG_LEVELS, 'info'),
    shutdownGraceMs: r.integer(root, 'shutdownGraceMs', '', 0, MAX_MS, 10_000),
  };
}

const TENANT_KEYS = ['name', 'keySha256', 'tasks', 'aliases', 'splits', 'rateLimit', 'maxConcurrent', 'priority'];

function readTenant(r: FieldReader, value: unknown, path: string): TenantConfig {
  const obj = r.object(value, path, TENANT_KEYS, false);
  const name = r.name(obj.name, join(path, 'name'));
  const keySha256 = r.strings(obj, 'keySha256', path, []).map((h, i) => r.sha256(h, `${path}.keySha256[${i}]`));
  if (keySha256.length === 0)
    r.fail(join(path, 'keySha256'), 'expected at least one key hash (sha256 hex of the API key)');
  const tasks = r.strings(obj, 'tasks', path, []);
  tasks.forEach((task, i) => {
    if (task !== '*' && !NAME.test(task))
      r.fail(`${path}.tasks[${i}]`, `expected a task name or "*", got ${JSON.stringify(task)}`);
  });

  const aliases: Record<string, string> = {};
  for (const [alias, target] of Object.entries(r.map(obj.aliases, join(path, 'aliases')))) {
    const at = `${path}.aliases.${alias}`;
    r.name(alias, at);
    if (alias === RESERVED_BASE_NAME) r.fail(at, '"base" is reserved for the base model');
    const text = r.stringValue(target, at);
    const [taskName, version, extra] = text.split('@');
    if (
      extra !== undefined ||
      taskName === undefined ||
      !NAME.test(taskName) ||
      (version !== undefined && !NAME.test(version))
    ) {
      r.fail(at, `expected "task" or "task@version", got ${JSON.stringify(text)}`);
    }
    aliases[alias] = text;
  }

  const splits: Record<string, Record<string, number>> = {};
  for (const [task, weights] of Object.entries(r.map(obj.splits, join(path, 'splits')))) {
    const at = `${path}.splits.${task}`;
    r.name(task, at);
    const entries = Object.entries(r.map(weights, at));
    if (entries.length === 0) r.fail(at, 'expected at least one version: weight');
    const split: Record<string, number> = {};
    for (const [version, weight] of entries) {
      r.version(version, `${at}.${version}`);
      if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
        r.fail(`${at}.${version}`, `expected a positive weight, got ${JSON.stringify(weight)}`);
      }
      split[version] = weight;
    }
    splits[task] = split;
  }

  let rateLimit: RateLimitConfig | null = null;
  if (obj.rateLimit !== undefined && obj.rateLimit !== null) {
    const at = join(path, 'rateLimit');
    const limit = r.object(obj.rateLimit, at, ['requestsPerSecond', 'burst'], false);
    if (limit.requestsPerSecond === undefined) r.fail(`${at}.requestsPerSecond`, 'is required');
    const requestsPerSecond = r.number(limit, 'requestsPerSecond', at, 0, 1_000_000, 1, true);
    rateLimit = {
      requestsPerSecond,
      burst: r.integer(limit, 'burst', at, 1, 10_000_000, Math.max(1, Math.ceil(requestsPerSecond))),
    };
  }

  return {
    name,
    keySha256,
    tasks,
    aliases,
    splits,
    rateLimit,
    maxConcurrent: r.optionalInteger(obj, 'maxConcurrent', path, 1, 1_000_000),
    priority: r.integer(obj, 'priority', path, -1000, 1000, 0),
  };
}

/** Tenant names and key hashes are unique; the public dev keys only in dev mode. */
function checkKeys(
  r: FieldReader,
  tenants: readonly TenantConfig[],
  adminHashes: readonly string[],
  devMode: boolean,
): void {
  const owners = new Map<string, string>();
  const names = new Set<string>();
  const claim = (hash: string, owner: string, path: string): void => {
    const previous = owners.get(hash);
    if (previous !== undefined) r.fail(path, `is the same key hash as ${previous}; every key must identify one tenant`);
    owners.set(hash, owner);
    if (!devMode && DEV_KEY_HASHES.has(hash)) {
      r.fail(
        path,
        `is the hash of the public development key "${DEV_KEY_HASHES.get(hash)}"; use a secret key, or set devMode: true for local use`,
      );
    }
  };
  adminHashes.forEach((hash, i) => claim(hash, 'admin.keySha256', `admin.keySha256[${i}]`));
  tenants.forEach((tenant, t) => {
    if (names.has(tenant.name)) r.fail(`tenants[${t}].name`, `tenant ${JSON.stringify(tenant.name)} is declared twice`);
    names.add(tenant.name);
    tenant.keySha256.forEach((hash, k) => claim(hash, `tenant ${tenant.name}`, `tenants[${t}].keySha256[${k}]`));
  });
}
