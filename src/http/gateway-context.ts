/** What the routes share: the engine, the registry, the tenants and the limits, built once. */
import type { Telemetry } from '../telemetry/index.js';
import type { TaskRegistry } from '../registry/task-registry.js';
import type { TaskStates } from './task-states.js';
import type { CachedSizes } from './cached-sizes.js';
import type { TenantDirectory } from '../tenant/tenant-directory.js';
import type { ResolveContext } from '../tenant/tenant-policy.js';
import type { ModelIO } from '../onnx/io-signature.js';
import type { InferenceEngine } from './inference-engine.js';
import type { PngDecoder } from './png/png-decoder.js';
import type { Lifecycle } from './graceful-shutdown.js';

export interface GatewayLimits {
  readonly inferTimeoutMs: number;
  readonly maxInferTimeoutMs: number;
  readonly adminChangeTimeoutMs: number;
  readonly bodyLimitBytes: number;
  readonly imageBodyLimitBytes: number;
  /** Rows (first dimension) one inference request may carry. */
  readonly maxRowsPerRequest: number;
}

export interface BaseModelInfo {
  /** The version the bare base model answers to: the first 12 hex digits of its fingerprint. */
  readonly version: string;
  readonly fingerprint: string;
  /** Class names of the base model's logits, when known (manifest or config). */
  readonly labels: readonly string[] | null;
  /** Inputs and outputs, read once at start (every task shares them). */
  readonly io: ModelIO;
}

export interface GatewayContext {
  readonly engine: InferenceEngine;
  readonly registry: TaskRegistry;
  readonly tenants: TenantDirectory;
  readonly taskStates: TaskStates;
  /** What each cached delta takes in memory and as a file (admin listing). */
  readonly cachedSizes: CachedSizes;
  readonly telemetry: Telemetry | null;
  readonly base: BaseModelInfo;
  readonly limits: GatewayLimits;
  /** PNG uploads of the classify route decode here, off the event loop. */
  readonly pngDecoder: PngDecoder;
  /** Who may read `/metrics`: scraper key digests (besides the admin key), or anyone. */
  readonly metricsAccess: { readonly keySha256: readonly string[]; readonly anonymous: boolean };
  /** Shutdown state and the requests accepted before it (see graceful-shutdown.ts). */
  readonly lifecycle: Lifecycle;
}

export function resolveContext(ctx: GatewayContext): ResolveContext {
  return { registry: ctx.registry, baseVersion: ctx.base.version };
}
