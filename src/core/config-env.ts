/**
 * Environment variables that override single configuration fields (12-factor). Each one is
 * parsed into the field's type and written into the raw configuration BEFORE validation, so an
 * environment value is checked exactly like a value from the file; the error then names the
 * variable as well as the field. Paths given by environment variables resolve against the
 * working directory (file paths resolve against the config file's folder).
 */
import { resolve } from 'node:path';
import type { Fail, Obj } from './config-fields.js';

type Kind = 'string' | 'integer' | 'number' | 'boolean' | 'list' | 'path';

export interface EnvOverride {
  readonly env: string;
  /** Dotted config path, e.g. `listen.port`. */
  readonly field: string;
  readonly kind: Kind;
}

/** Every supported override; `docs/http-api.md` lists the same table. */
export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { env: 'DELTASERVE_HOST', field: 'listen.host', kind: 'string' },
  { env: 'DELTASERVE_PORT', field: 'listen.port', kind: 'integer' },
  { env: 'DELTASERVE_DEV_MODE', field: 'devMode', kind: 'boolean' },
  { env: 'DELTASERVE_MODEL_MANIFEST', field: 'model.manifest', kind: 'path' },
  { env: 'DELTASERVE_MODEL_PATH', field: 'model.path', kind: 'path' },
  { env: 'DELTASERVE_EXECUTION_PROVIDER', field: 'engine.executionProvider', kind: 'string' },
  { env: 'DELTASERVE_FALLBACK_EXECUTION_PROVIDER', field: 'engine.fallbackExecutionProvider', kind: 'string' },
  { env: 'DELTASERVE_DEVICE_ID', field: 'engine.deviceId', kind: 'integer' },
  { env: 'DELTASERVE_MODE', field: 'engine.mode', kind: 'string' },
  { env: 'DELTASERVE_INTRA_OP_THREADS', field: 'engine.intraOpThreads', kind: 'integer' },
  { env: 'DELTASERVE_KERNEL', field: 'engine.sideKernel', kind: 'string' },
  { env: 'DELTASERVE_SIDE_KERNEL_THREADS', field: 'engine.sideKernelThreads', kind: 'integer' },
  { env: 'DELTASERVE_CACHE_BYTES', field: 'engine.cacheBytes', kind: 'integer' },
  { env: 'DELTASERVE_MAX_BATCH_SIZE', field: 'batching.maxBatchSize', kind: 'integer' },
  { env: 'DELTASERVE_MAX_QUEUE_DELAY_MS', field: 'batching.maxQueueDelayMs', kind: 'number' },
  { env: 'DELTASERVE_MAX_QUEUED_PER_TASK', field: 'batching.maxQueuedPerTask', kind: 'integer' },
  { env: 'DELTASERVE_MAX_QUEUED_TOTAL', field: 'batching.maxQueuedTotal', kind: 'integer' },
  { env: 'DELTASERVE_INFER_TIMEOUT_MS', field: 'timeouts.inferTimeoutMs', kind: 'integer' },
  { env: 'DELTASERVE_MAX_INFER_TIMEOUT_MS', field: 'timeouts.maxInferTimeoutMs', kind: 'integer' },
  { env: 'DELTASERVE_BODY_LIMIT_BYTES', field: 'http.bodyLimitBytes', kind: 'integer' },
  { env: 'DELTASERVE_DELTA_ROOT', field: 'deltas.fileRoot', kind: 'path' },
  { env: 'DELTASERVE_DELTA_ALLOWED_HOSTS', field: 'deltas.allowedHosts', kind: 'list' },
  { env: 'DELTASERVE_DELTA_ALLOW_PRIVATE_ADDRESSES', field: 'deltas.allowPrivateAddresses', kind: 'boolean' },
  { env: 'DELTASERVE_DELTA_MAX_BYTES', field: 'deltas.maxBytes', kind: 'integer' },
  { env: 'DELTASERVE_REGISTRY_STATE_FILE', field: 'registry.stateFile', kind: 'path' },
  { env: 'DELTASERVE_REGISTRY_POLL_INTERVAL_MS', field: 'registry.pollIntervalMs', kind: 'integer' },
  { env: 'DELTASERVE_ADMIN_KEY_SHA256', field: 'admin.keySha256', kind: 'list' },
  { env: 'DELTASERVE_OTLP_ENDPOINT', field: 'telemetry.otlpEndpoint', kind: 'string' },
  { env: 'DELTASERVE_METRICS_KEY_SHA256', field: 'telemetry.metricsKeySha256', kind: 'list' },
  { env: 'DELTASERVE_METRICS_ANONYMOUS', field: 'telemetry.metricsAnonymous', kind: 'boolean' },
  { env: 'DELTASERVE_LOG_LEVEL', field: 'logLevel', kind: 'string' },
  { env: 'DELTASERVE_SHUTDOWN_GRACE_MS', field: 'shutdownGraceMs', kind: 'integer' },
];

/**
 * Writes every set variable into `raw` (a copy is returned; `raw` is not changed) and records
 * in `fromEnv` the fields that came from the environment (field → variable), for error
 * messages (filled before parsing, so a parse failure is attributed too).
 * Empty variables count as unset.
 */
export function applyEnvOverrides(
  raw: unknown,
  env: Readonly<Record<string, string | undefined>>,
  fail: Fail,
  fromEnv: Map<string, string> = new Map(),
): { raw: unknown; fromEnv: Map<string, string> } {
  const copy: Obj = structuredClone(isObject(raw) ? raw : {});
  for (const override of ENV_OVERRIDES) {
    const text = env[override.env];
    if (text === undefined || text.trim() === '') continue;
    fromEnv.set(override.field, override.env);
    const value = parse(override, text.trim(), fail);
    const keys = override.field.split('.');
    let target = copy;
    for (const key of keys.slice(0, -1)) {
      if (!isObject(target[key])) target[key] = {};
      target = target[key] as Obj;
    }
    target[keys[keys.length - 1]!] = value;
    // model.manifest and model.path exclude each other: the environment's choice wins.
    if (override.field === 'model.manifest') delete (copy.model as Obj).path;
    if (override.field === 'model.path') delete (copy.model as Obj).manifest;
  }
  return { raw: copy, fromEnv };
}

function parse(override: EnvOverride, text: string, fail: Fail): unknown {
  const where = override.field;
  switch (override.kind) {
    case 'string':
      return text;
    case 'path':
      return resolve(text);
    case 'list':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      return fail(where, `expected true or false, got ${JSON.stringify(text)}`);
    case 'integer':
    case 'number': {
      const n = Number(text);
      if (!Number.isFinite(n) || (override.kind === 'integer' && !Number.isInteger(n))) {
        return fail(
          where,
          `expected ${override.kind === 'integer' ? 'an integer' : 'a number'}, got ${JSON.stringify(text)}`,
        );
      }
      return n;
    }
  }
}

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
