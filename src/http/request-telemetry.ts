/**
 * Per-request telemetry hooks: a SERVER span from arrival to response (joining the caller's
 * trace through `traceparent`), and the request-duration histogram by task, tenant and status.
 * Task and tenant are only what the gateway resolved (never raw names from the URL), so
 * unknown names cannot blow up the label sets.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Telemetry } from '../telemetry/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The error the request failed with, for the span of a 5xx. */
    failure: Error | null;
  }
}

export function installRequestTelemetry(app: FastifyInstance, telemetry: Telemetry | null): void {
  app.decorateRequest('failure', null);
  app.addHook('onRequest', async (request) => {
    request.startedAt = performance.now();
    if (!telemetry) return;
    const traceparent = request.headers.traceparent;
    request.span = telemetry.startRequestSpan({
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      traceparent: typeof traceparent === 'string' ? traceparent : undefined,
    });
  });
  app.addHook('onError', async (request, _reply, error: FastifyError) => {
    request.failure = error;
  });
  app.addHook('onResponse', async (request, reply) => {
    if (!telemetry) return;
    const tenant = request.tenant?.name ?? null;
    telemetry.recordRequest({
      task: request.taskLabel,
      tenant,
      status: reply.statusCode,
      seconds: (performance.now() - request.startedAt) / 1000,
    });
    if (request.span) {
      telemetry.endRequestSpan(request.span, {
        statusCode: reply.statusCode,
        task: request.taskLabel,
        tenant,
        ...(request.failure && { error: request.failure }),
      });
    }
  });
}
