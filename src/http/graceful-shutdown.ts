/**
 * Graceful shutdown, in two phases, so that no request a client has already sent is reset:
 *
 * 1. Drain. Readiness turns false at once (load balancers stop sending). The listener stays
 *    open and connections stay up: every request that arrives from now on, on a new connection
 *    or a kept-alive one, is answered 503 DS_ERR_SHUTTING_DOWN with `Connection: close` and
 *    `Retry-After`; requests accepted before the signal run to completion (their answers carry
 *    `Connection: close` too). The phase ends when none of those is left and no connection or
 *    request has arrived for QUIET_MS (connections the kernel accepted while the process was
 *    busy are picked up and answered first), or when the grace period (`shutdownGraceMs`) has
 *    passed.
 * 2. Close. The listener closes and idle connections are closed (and swept while waiting);
 *    connections still busy get until the end of the grace period, then are cut. Then the
 *    engine drains its queues for what is left of the grace period, and telemetry flushes.
 *
 * Why not close the listener at once (as before, issue 22 defect 12): connections the kernel
 * had accepted but the process had not yet picked up were reset by the close, and sweeping idle
 * keep-alive connections every 50 ms reset requests already on their way on them: 237 of 402
 * requests of a burst got ECONNRESET in one run. A request that reaches the process during
 * the drain now gets an answer it can act on (503, retry elsewhere) instead.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { DS_ERR_SHUTTING_DOWN } from '../core/errors.js';
import type { Telemetry } from '../telemetry/index.js';
import type { InferenceEngine } from './inference-engine.js';

export interface ShutdownParts {
  readonly app: FastifyInstance;
  readonly engine: InferenceEngine | null;
  readonly telemetry: Telemetry | null;
  readonly lifecycle: Lifecycle;
  readonly graceMs: number;
}

const IDLE_SWEEP_MS = 50;
/** How long the drain waits without a new connection or request before it closes the listener. */
const QUIET_MS = 200;

/** Whether the server is shutting down, and the requests it accepted before that, until they end. */
export class Lifecycle {
  /** Set once shutdown starts: readiness turns false, new requests are answered 503. */
  shuttingDown = false;
  /** When the last connection or request arrived (Date.now()). */
  lastArrivalAt = 0;
  private accepted = 0;
  private drained: (() => void)[] = [];

  /** Counts a request accepted for service until its response closes (sent, or connection lost). */
  accept(response: ServerResponse): void {
    this.accepted++;
    response.once('close', () => {
      this.accepted--;
      if (this.accepted === 0) for (const resolve of this.drained.splice(0)) resolve();
    });
  }

  /** Requests accepted and not yet answered. */
  get inFlight(): number {
    return this.accepted;
  }

  /** Resolves once no accepted request is left. */
  whenDrained(): Promise<void> {
    if (this.accepted === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }
}

/**
 * Install at build time: requests arriving during shutdown get the project's own 503
 * (`{error, code}`, `Retry-After`, request id) instead of fastify's fixed `return503OnClosing`
 * body; the others are counted until they end; responses sent during shutdown close their
 * connection.
 */
export function installConnectionDraining(app: FastifyInstance, lifecycle: Lifecycle): void {
  app.server.on('connection', () => {
    if (lifecycle.shuttingDown) lifecycle.lastArrivalAt = Date.now();
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (lifecycle.shuttingDown) {
      lifecycle.lastArrivalAt = Date.now();
      return done(new DS_ERR_SHUTTING_DOWN('no new requests are accepted'));
    }
    lifecycle.accept(reply.raw);
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (lifecycle.shuttingDown) void reply.header('connection', 'close');
    done(null, payload);
  });
}

async function drain(lifecycle: Lifecycle): Promise<'drained'> {
  for (;;) {
    await lifecycle.whenDrained();
    const quietMs = Date.now() - lifecycle.lastArrivalAt;
    if (quietMs >= QUIET_MS && lifecycle.inFlight === 0) return 'drained';
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, QUIET_MS - quietMs)));
  }
}

export async function shutdownGracefully(parts: ShutdownParts): Promise<{ forced: boolean }> {
  const started = Date.now();
  parts.lifecycle.shuttingDown = true;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), parts.graceMs);
  });
  // Phase 1: accepted requests finish; new ones keep being answered 503 meanwhile.
  let outcome: 'drained' | 'closed' | 'timeout' = await Promise.race([drain(parts.lifecycle), timedOut]);
  // Phase 2: stop listening, close idle connections, wait for the busy ones (503s being written).
  const closing = parts.app.close();
  const sweep = setInterval(() => parts.app.server.closeIdleConnections(), IDLE_SWEEP_MS);
  if (outcome !== 'timeout') outcome = await Promise.race([closing.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  clearInterval(sweep);
  if (outcome === 'timeout') {
    parts.app.log.warn(
      { graceMs: parts.graceMs, inFlight: parts.lifecycle.inFlight },
      'requests still in flight after the grace period: closing their connections',
    );
    parts.app.server.closeAllConnections();
    await closing;
  }
  await parts.engine?.close(Math.max(0, parts.graceMs - (Date.now() - started)));
  await parts.telemetry?.shutdown();
  return { forced: outcome === 'timeout' };
}
