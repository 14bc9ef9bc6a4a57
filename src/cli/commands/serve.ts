/**
 * `deltaserve serve [--config FILE]`: load and validate the configuration (environment
 * variables override the file), boot the gateway, listen, and shut down gracefully on SIGTERM
 * or SIGINT (a second signal exits at once).
 */
import { parseCommandArgs } from '../args.js';
import { configPathFrom, loadConfig, type GatewayConfig } from '../../core/config.js';
import { DEV_ADMIN_KEY, DEV_KEY_HASHES, DEV_TENANT_KEY } from '../../core/config-dev-keys.js';
import { DS_ERR_LISTEN_FAILED } from '../../core/errors.js';
import { bootGateway, createLogger } from '../../server.js';

export const SERVE_USAGE = `usage: deltaserve serve [--config FILE]

Starts the HTTP gateway. The configuration file defaults to $DELTASERVE_CONFIG, else the demo
config/default.yaml; environment variables (DELTASERVE_PORT, DELTASERVE_HOST, ...) override
single fields (see docs/http-api.md).`;

export async function serveCommand(argv: string[]): Promise<void> {
  const { values } = parseCommandArgs(argv, { config: { type: 'string' } }, SERVE_USAGE);
  const config = await loadConfig({ ...(typeof values.config === 'string' && { path: values.config }) });
  const logger = createLogger(config);
  logger.info(
    { config: configPathFrom({ ...(typeof values.config === 'string' && { path: values.config }) }) },
    'configuration loaded',
  );
  const gateway = await bootGateway(config, { logger });
  const running = gateway.engine.readyInfo;
  if (running?.fallbackReason) {
    logger.warn(
      {
        configured: config.engine.executionProvider,
        executionProvider: running.executionProvider,
        reason: running.fallbackReason,
      },
      `execution provider ${config.engine.executionProvider} cannot start; serving on the fallback ${running.executionProvider} (engine.fallbackExecutionProvider)`,
    );
  }
  if (running?.modeChoice)
    logger.info({ mode: running.mode, reason: running.modeChoice }, `engine.mode ${running.modeChoice}`);
  if (running?.kernel?.pipeline === 'custom-op') {
    const { threads, pipelineDetail } = running.kernel;
    logger.info(
      { pipeline: 'custom-op', threads, detail: pipelineDetail },
      `mixed mode: one ORT session, the side path as a custom op (${pipelineDetail})`,
    );
  } else if (running?.kernel) {
    const { name, threads, fallbackReason, pipelineDetail } = running.kernel;
    logger.warn(
      { pipeline: 'segments', reason: pipelineDetail },
      `mixed mode: segment pipeline, the custom-op session does not run (${pipelineDetail})`,
    );
    if (fallbackReason)
      logger.warn(
        { kernel: name, threads, reason: fallbackReason },
        `mixed mode: the native side-path kernel is not available (${fallbackReason}); using ${name}`,
      );
    else logger.info({ kernel: name, threads }, `mixed mode: side-path kernel ${name} on ${threads} thread(s)`);
  }
  let url: string;
  try {
    url = await gateway.listen();
  } catch (error) {
    // The engine worker and telemetry would keep the process alive: stop them, then fail.
    await gateway.shutdown().catch(() => undefined);
    throw listenFailure(config, error);
  }
  if (config.devMode) warnDevMode(config, url);
  logger.info(
    {
      url,
      tasks: gateway.registry.names().length,
      mode: running?.mode ?? config.engine.mode,
      executionProvider: running?.executionProvider,
    },
    'deltaserve is listening',
  );
  process.stdout.write(`deltaserve listening on ${url}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: draining requests in flight');
    gateway.shutdown().then(
      ({ forced }) => {
        logger.info({ forced }, 'shut down');
        logger.flush?.();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function listenFailure(config: GatewayConfig, error: unknown): Error {
  const { host, port } = config.listen;
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    code === 'EADDRINUSE'
      ? `port ${port} is already in use (set listen.port or DELTASERVE_PORT)`
      : code === 'EACCES'
        ? `permission denied for port ${port} (ports below 1024 need privileges)`
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
          ? `${host} is not an address of this machine (set listen.host or DELTASERVE_HOST)`
          : (error as Error).message;
  return new DS_ERR_LISTEN_FAILED(`${host}:${port}`, reason);
}

/** Loud, on stderr, with the keys themselves: the README's curl examples depend on them. */
function warnDevMode(config: GatewayConfig, url: string): void {
  const tenants = config.tenants.filter((t) => t.keySha256.some((h) => DEV_KEY_HASHES.has(h))).map((t) => t.name);
  const devAdmin = config.admin.keySha256.some((h) => DEV_KEY_HASHES.has(h));
  const lines = [
    '',
    '!!! DEVELOPMENT MODE (devMode: true): this gateway accepts PUBLIC development keys. !!!',
    ...(tenants.length > 0
      ? [`    tenant key: ${DEV_TENANT_KEY}   (tenant${tenants.length > 1 ? 's' : ''} ${tenants.join(', ')})`]
      : []),
    ...(devAdmin ? [`    admin key:  ${DEV_ADMIN_KEY}`] : []),
    `    try: curl -H 'authorization: Bearer ${DEV_TENANT_KEY}' ${url}/v2/models/base`,
    '    Never expose this to a network: set devMode: false and your own key hashes for production.',
    '',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}
