/**
 * Wiring, nothing else: `buildServer` assembles the fastify app from its parts (routes, error
 * handling, auth, telemetry hooks, OpenAPI); `bootGateway` builds the parts from a validated
 * configuration (manifest, registry, telemetry, engine) and returns something that can be
 * listened on and shut down. The logic lives in http/, tenant/ and registry/.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { pino, type Logger } from 'pino';
import type { GatewayConfig } from './core/config.js';
import { DS_ERR_MANIFEST_INVALID } from './core/errors.js';
import { Engine, type EngineOptions } from './engine/engine.js';
import {
  answerFrameworkError,
  installErrorHandling,
  formatSchemaError,
  MAX_PATH_PARAM_LENGTH,
} from './http/error-handler.js';
import {
  boundBodyTime,
  capConnections,
  closeUnreadBodies,
  serverOptionsFor,
  type ConnectionLimits,
} from './http/connection-limits.js';
import type { BaseModelInfo, GatewayContext } from './http/gateway-context.js';
import { installConnectionDraining, Lifecycle, shutdownGracefully } from './http/graceful-shutdown.js';
import { installJsonParser } from './http/json-body.js';
import { PngDecoder } from './http/png/png-decoder.js';
import type { InferenceEngine } from './http/inference-engine.js';
import { decorateRequests, echoRequestIds, REQUEST_ID_HEADER } from './http/request-state.js';
import { installRequestTelemetry } from './http/request-telemetry.js';
import { installSendBounds } from './http/send-bounds.js';
import { adminRoutes } from './http/routes/admin-routes.js';
import { classifyRoutes } from './http/routes/classify-routes.js';
import { healthRoutes } from './http/routes/health-routes.js';
import { metricsRoutes } from './http/routes/metrics-routes.js';
import { modelRoutes } from './http/routes/model-routes.js';
import { repositoryRoutes } from './http/routes/repository-routes.js';
import { loadManifest, type ZooManifest } from './registry/manifest.js';
import { TaskAdmin } from './registry/task-admin.js';
import { TaskRegistry } from './registry/task-registry.js';
import { TaskStates } from './http/task-states.js';
import { CachedSizes } from './http/cached-sizes.js';
import { TenantDirectory } from './tenant/tenant-directory.js';
import { buildTelemetry, type Telemetry } from './telemetry/index.js';

export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Header paths pino must never print (keys are secrets; this keeps them out of any log line). */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'request.headers.authorization',
  'headers.authorization',
  'authorization',
];

export interface ServerDeps {
  readonly engine: InferenceEngine;
  readonly registry: TaskRegistry;
  readonly telemetry: Telemetry | null;
  /** Class names of the base model's logits (manifest or `model.labels`). */
  readonly baseLabels?: readonly string[] | null;
  /** Pino logger; default: one built from `config.logLevel`. */
  readonly logger?: Logger;
  /** Seed of version-split draws for requests without an id; default random. */
  readonly routingSeed?: number;
}

/** A route as fastify registered it (`onRoute`), HEAD twins included. */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  /** Left out of the OpenAPI document on purpose (`schema.hide`). */
  readonly hidden: boolean;
}

export interface BuiltServer {
  readonly app: FastifyInstance;
  readonly context: GatewayContext;
  /** Every route the app serves, in registration order. */
  readonly routes: readonly RegisteredRoute[];
}

export function createLogger(config: Pick<GatewayConfig, 'logLevel'>, destination?: NodeJS.WritableStream): Logger {
  const options = { level: config.logLevel, redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination as unknown as pino.DestinationStream) : pino(options);
}

export async function buildServer(config: GatewayConfig, deps: ServerDeps): Promise<BuiltServer> {
  const info = deps.engine.readyInfo;
  const io = deps.engine.modelIO;
  const fingerprint = info?.fingerprint ?? '';
  const base: BaseModelInfo = {
    version: fingerprint.slice(0, 12) || '1',
    fingerprint,
    labels: deps.baseLabels ?? config.model.labels,
    io,
  };
  const taskStates = new TaskStates();
  const cachedSizes = new CachedSizes();
  const unsubscribe = deps.engine.subscribe((event) => {
    taskStates.onEngineEvent(event);
    cachedSizes.onEngineEvent(event);
  });
  const context: GatewayContext = {
    engine: deps.engine,
    registry: deps.registry,
    tenants: new TenantDirectory({
      tenants: config.tenants,
      adminKeySha256: config.admin.keySha256,
      seed: deps.routingSeed ?? randomInt(0x100000000),
    }),
    taskStates,
    cachedSizes,
    telemetry: deps.telemetry,
    base,
    limits: {
      inferTimeoutMs: config.timeouts.inferTimeoutMs,
      maxInferTimeoutMs: config.timeouts.maxInferTimeoutMs,
      adminChangeTimeoutMs: config.timeouts.adminChangeTimeoutMs,
      bodyLimitBytes: config.http.bodyLimitBytes,
      imageBodyLimitBytes: config.http.imageBodyLimitBytes,
      maxRowsPerRequest: config.http.maxRowsPerRequest,
    },
    pngDecoder: new PngDecoder({
      maxPixels: config.http.imageMaxPixels,
      concurrency: config.http.imageDecodeConcurrency,
      maxQueued: config.http.imageDecodeQueue,
      timeoutMs: config.http.imageDecodeTimeoutMs,
    }),
    metricsAccess: { keySha256: config.telemetry.metricsKeySha256, anonymous: config.telemetry.metricsAnonymous },
    lifecycle: new Lifecycle(),
  };

  const connectionLimits: ConnectionLimits = {
    headersTimeoutMs: config.http.headersTimeoutMs,
    bodyTimeoutMs: config.http.bodyTimeoutMs,
    keepAliveTimeoutMs: config.http.keepAliveTimeoutMs,
    maxConnections: config.http.maxConnections,
  };
  const app = Fastify({
    // pino's Logger and fastify's logger type differ only in generics; the instance is the same.
    loggerInstance: (deps.logger ?? createLogger(config)) as unknown as FastifyBaseLogger,
    bodyLimit: config.http.bodyLimitBytes,
    requestIdHeader: REQUEST_ID_HEADER,
    schemaErrorFormatter: formatSchemaError,
    return503OnClosing: false, // see installConnectionDraining
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: MAX_PATH_PARAM_LENGTH },
    frameworkErrors: answerFrameworkError,
    ...serverOptionsFor(connectionLimits),
  });
  capConnections(app.server, connectionLimits, app.log);
  // Only JSON (and PNG on the classify route) is accepted: anything else is a 415, not a body
  // that fails its schema.
  app.removeContentTypeParser('text/plain');
  installJsonParser(app);
  decorateRequests(app);
  echoRequestIds(app);
  installErrorHandling(app);
  installRequestTelemetry(app, deps.telemetry);
  installConnectionDraining(app, context.lifecycle);
  boundBodyTime(app, config.http.bodyTimeoutMs);
  closeUnreadBodies(app);
  installSendBounds(app, { sendTimeoutMs: config.http.sendTimeoutMs, maxUnsentBytes: config.http.maxUnsentBytes });
  app.addHook('onClose', () => context.pngDecoder.close());
  app.addHook('onClose', async () => unsubscribe());
  const unsubscribeLog = deps.engine.subscribe((event) => {
    if (event.type !== 'mixed-fallback') return;
    app.log.info(
      { task: event.key, tensor: event.tensor, reason: event.reason },
      `task ${event.key} runs in per-task batches: its delta changes ${event.tensor}, which mixed batches cannot apply per request`,
    );
  });
  app.addHook('onClose', async () => unsubscribeLog());
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      routes.push({ method, url: route.url, hidden: route.schema?.hide === true });
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'deltaserve',
        version: SERVER_VERSION,
        description: 'Multi-model inference gateway: one base model, many task deltas (Open Inference Protocol).',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A tenant API key, or the admin key on admin routes' },
        },
      },
      security: [{ bearer: [] }],
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(healthRoutes(context, SERVER_VERSION));
  await app.register(modelRoutes(context));
  await app.register(repositoryRoutes(context));
  await app.register(classifyRoutes(context));
  await app.register(adminRoutes(context, new TaskAdmin(deps.registry, deps.engine)));
  await app.register(metricsRoutes(context));
  await app.ready();
  return { app, context, routes };
}

/** The engine's options from the configuration. */
export function engineOptionsFor(
  config: GatewayConfig,
  modelPath: string,
  onEvent?: EngineOptions['onEvent'],
): EngineOptions {
  return {
    worker: {
      base: {
        modelPath,
        mode: config.engine.mode,
        patchable: [...config.model.patchable],
        session: {
          executionProvider: config.engine.executionProvider,
          ...(config.engine.fallbackExecutionProvider !== null && {
            fallbackExecutionProvider: config.engine.fallbackExecutionProvider,
          }),
          deviceId: config.engine.deviceId,
          intraOpThreads: config.engine.intraOpThreads,
        },
      },
      cacheMaxBytes: config.engine.cacheBytes,
      sideKernel: { kernel: config.engine.sideKernel, threads: config.engine.sideKernelThreads },
      source: {
        fileRoot: config.deltas.fileRoot,
        allowedSchemes: [...config.deltas.allowedSchemes],
        allowedHosts: [...config.deltas.allowedHosts],
        allowPrivateAddresses: config.deltas.allowPrivateAddresses,
        maxBytes: config.deltas.maxBytes,
        connectTimeoutMs: config.deltas.connectTimeoutMs,
        headersTimeoutMs: config.deltas.headersTimeoutMs,
        bodyTimeoutMs: config.deltas.bodyTimeoutMs,
        fetchTimeoutMs: config.deltas.fetchTimeoutMs,
        minBytesPerSecond: config.deltas.minBytesPerSecond,
        rateGraceMs: config.deltas.rateGraceMs,
        retries: config.deltas.retries,
      },
    },
    scheduler: {
      maxBatchSize: config.batching.maxBatchSize,
      maxQueueDelayMs: config.batching.maxQueueDelayMs,
      maxQueuedPerTask: config.batching.maxQueuedPerTask,
      maxQueuedTotal: config.batching.maxQueuedTotal,
      forcedSwitchWaitMs: config.batching.forcedSwitchWaitMs,
      ...(config.batching.maxBatchTokens !== null && { maxBatchTokens: config.batching.maxBatchTokens }),
    },
    restartDelayMs: config.engine.restartDelayMs,
    maxRestartDelayMs: config.engine.maxRestartDelayMs,
    ...(onEvent && { onEvent }),
  };
}

export interface Gateway extends BuiltServer {
  readonly engine: Engine;
  readonly registry: TaskRegistry;
  readonly telemetry: Telemetry;
  readonly manifest: ZooManifest | null;
  /** Listens on `config.listen`; resolves to the URL. */
  listen(): Promise<string>;
  /** Graceful shutdown (see http/graceful-shutdown.ts). */
  shutdown(): Promise<{ forced: boolean }>;
}

export interface BootOptions {
  readonly logger?: Logger;
  readonly routingSeed?: number;
}

/** Manifest → registry → telemetry → engine → server, failing early with one clear error. */
export async function bootGateway(config: GatewayConfig, options: BootOptions = {}): Promise<Gateway> {
  const manifest = config.model.manifest === null ? null : await loadManifest(config.model.manifest);
  const registry = await TaskRegistry.open({
    declared: [...(manifest?.tasks ?? []), ...config.registry.tasks],
    stateFile: config.registry.stateFile,
    sharing: {
      pollIntervalMs: config.registry.pollIntervalMs,
      watch: config.registry.watch,
      lockStaleMs: config.registry.lockStaleMs,
    },
  });
  const telemetry = buildTelemetry({
    serviceName: config.telemetry.serviceName,
    otlpEndpoint: config.telemetry.otlpEndpoint,
  });
  const modelPath = manifest?.base.modelPath ?? config.model.path!;
  let engine: Engine;
  try {
    engine = await Engine.start(engineOptionsFor(config, modelPath, (event) => telemetry.recordEngineEvent(event)));
  } catch (error) {
    registry.close();
    await telemetry.shutdown();
    throw error;
  }
  // A version another replica retired: drop its delta here too, as TaskAdmin.retire does (the
  // engine's 'dropped' event resets its task state).
  registry.onRemoved((keys) => {
    for (const key of keys) engine.evict(key).catch(() => undefined);
  });
  try {
    const fingerprint = engine.readyInfo?.fingerprint;
    if (manifest?.base.fingerprint && fingerprint && manifest.base.fingerprint !== fingerprint) {
      throw new DS_ERR_MANIFEST_INVALID(
        manifest.path,
        'base.fingerprint',
        `is ${manifest.base.fingerprint} but the weights of ${modelPath} have fingerprint ${fingerprint}`,
      );
    }
    telemetry.observeEngineReady(() => engine.ready);
    telemetry.observeRegistrySync(() => registry.syncStatus());
    telemetry.observeRouting(async () => {
      const stats = await engine.stats();
      const scheduler = engine.schedulerStats();
      const cache = stats.worker?.cache;
      return {
        residentKeys: cache?.keys ?? [],
        residentBytes: cache?.bytes ?? 0,
        capacityBytes: config.engine.cacheBytes,
        queued: scheduler.queued,
        running: scheduler.running,
        registeredTasks: registry.all().length,
      };
    });
    telemetry.observeQueueDepth(() => {
      const stats = engine.schedulerStats();
      return { total: stats.queued, byTask: stats.queuedByTask };
    });
    telemetry.observeCache(async () => {
      const stats = await engine.stats();
      const cache = stats.worker?.cache;
      return { bytes: cache?.bytes ?? 0, fileBytes: cache?.fileBytes ?? 0, entries: cache?.entries ?? 0 };
    });
    const built = await buildServer(config, {
      engine,
      registry,
      telemetry,
      baseLabels: config.model.labels ?? manifest?.base.labels ?? null,
      ...(options.logger && { logger: options.logger }),
      ...(options.routingSeed !== undefined && { routingSeed: options.routingSeed }),
    });
    return {
      ...built,
      engine,
      registry,
      telemetry,
      manifest,
      listen: () => built.app.listen({ host: config.listen.host, port: config.listen.port }),
      shutdown: () => {
        registry.close();
        return shutdownGracefully({
          app: built.app,
          engine,
          telemetry,
          lifecycle: built.context.lifecycle,
          graceMs: config.shutdownGraceMs,
        });
      },
    };
  } catch (error) {
    registry.close();
    await engine.close(0);
    await telemetry.shutdown();
    throw error;
  }
}
