/**
 * Graceful shutdown: readiness turns false at once (load balancers stop sending), the listener
 * stops accepting, idle keep-alive connections are closed, requests in flight run to completion
 * (fastify answers 503 to new requests on connections still open). If they have not finished
 * within the grace period, the remaining connections are cut. Then the engine drains its queues
 * for what is left of the grace period and stops its worker, and telemetry flushes.
 *
 * Keep-alive: a connection whose request finishes during shutdown would otherwise stay open
 * (idle) and hold `close()` until the grace period ends, so responses sent while shutting down
 * carry `Connection: close`, and idle connections are swept while waiting.
 */
import { DS_ERR_SHUTTING_DOWN } from '../core/errors.js';
import type { FastifyInstance } from 'fastify';
import type { Telemetry } from '../telemetry/index.js';
import type { InferenceEngine } from './inference-engine.js';

export interface ShutdownParts {
  readonly app: FastifyInstance;
  readonly engine: InferenceEngine | null;
  readonly telemetry: Telemetry | null;
  readonly lifecycle: { shuttingDown: boolean };
  readonly graceMs: number;
}

const IDLE_SWEEP_MS = 50;

/**
 * Install at build time: requests arriving during shutdown get the project's own 503
 * (`{error, code}`, `Retry-After`, request id) instead of fastify's fixed `return503OnClosing`
 * body, and responses sent during shutdown close their connection.
 */
export function installConnectionDraining(app: FastifyInstance, lifecycle: { readonly shuttingDown: boolean }): void {
  app.addHook('onRequest', async () => {
    if (lifecycle.shuttingDown) throw new DS_ERR_SHUTTING_DOWN('no new requests are accepted');
  });
  app.addHook('onSend', async (_request, reply) => {
    if (lifecycle.shuttingDown) void reply.header('connection', 'close');
  });
}

export async function shutdownGracefully(parts: ShutdownParts): Promise<{ forced: boolean }> {
  const started = Date.now();
  parts.lifecycle.shuttingDown = true;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), parts.graceMs);
  });
  const closing = parts.app.close();
  const sweep = setInterval(() => parts.app.server.closeIdleConnections(), IDLE_SWEEP_MS);
  const outcome = await Promise.race([closing.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  clearInterval(sweep);
  if (outcome === 'timeout') {
    parts.app.log.warn(
      { graceMs: parts.graceMs },
      'requests still in flight after the grace period: closing their connections',
    );
    parts.app.server.closeAllConnections();
    await closing;
  }
  await parts.engine?.close(Math.max(0, parts.graceMs - (Date.now() - started)));
  await parts.telemetry?.shutdown();
  return { forced: outcome === 'timeout' };
}
