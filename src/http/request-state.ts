/** What the gateway attaches to each request as it moves through the hooks. */
import type { Span } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import type { TenantPolicy } from '../tenant/tenant-policy.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated tenant (tenant routes), else null. */
    tenant: TenantPolicy | null;
    /** The task the request resolved to (`base` for the bare base), for metrics and spans; null until resolved. */
    taskLabel: string | null;
    /** The request's SERVER span, when telemetry is on. */
    span: Span | null;
    /** performance.now() when the request arrived. */
    startedAt: number;
  }
}

export function decorateRequests(app: FastifyInstance): void {
  app.decorateRequest('tenant', null);
  app.decorateRequest('taskLabel', null);
  app.decorateRequest('span', null);
  app.decorateRequest('startedAt', 0);
}

/** The header that carries a request's id, in and out (fastify's `requestIdHeader`). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Every response names its request id (the client's own when it sent one), to match logs. */
export function echoRequestIds(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
  });
}
