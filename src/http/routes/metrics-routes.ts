/** `/metrics` in the Prometheus text format, rendered by the telemetry module. */
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../auth.js';
import type { GatewayContext } from '../gateway-context.js';
import { errorResponses } from '../schemas.js';

export function metricsRoutes(ctx: GatewayContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    const telemetry = ctx.telemetry;
    if (!telemetry) return;
    app.get(
      '/metrics',
      {
        // Labels name tenants and tasks: operators who expose the port beyond their scraper can
        // require the admin key (telemetry.metricsRequireAdmin).
        ...(ctx.metricsRequireAdmin && { onRequest: requireAdmin(ctx) }),
        schema: {
          tags: ['observability'],
          summary: 'Prometheus metrics (text exposition format 0.0.4)',
          produces: ['text/plain'],
          response: { 200: { type: 'string' }, ...errorResponses },
        },
      },
      async (_request, reply) => reply.type(telemetry.prometheusContentType).send(await telemetry.renderPrometheus()),
    );
  };
}
