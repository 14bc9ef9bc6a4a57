/**
 * `/metrics` in the Prometheus text format, rendered by the telemetry module.
 *
 * Access (issue 22, item 9). Its labels name tenants and tasks, so it is not anonymous unless the
 * operator says so (`telemetry.metricsAnonymous: true`): a scrape sends `Authorization: Bearer
 * <key>` with a scraper key (its sha256 listed in `telemetry.metricsKeySha256`) or the admin key,
 * and anything else is a 401 in our error shape. Keys are compared as digests in constant time
 * (`KeyRing`), as tenant and admin keys are.
 *
 * Cost. Rendering walks every series (with 5,000 tasks, six scrapers took tenant p50 from 8 ms to
 * 3.5 s). Concurrent scrapes share one render in flight, and a scrape within
 * `METRICS_RENDER_REUSE_MS` of the last render gets that text again: whatever the number of
 * scrapers, the gateway renders at most once per interval. Prometheus scrapes every 15–60 s,
 * so a second-old answer changes nothing for it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { DS_ERR_UNAUTHENTICATED } from '../../core/errors.js';
import { KeyRing, bearerToken } from '../../tenant/api-keys.js';
import type { GatewayContext } from '../gateway-context.js';
import { errorResponses } from '../schemas.js';

/** A scrape this soon after the last render is answered with that render, ms. */
export const METRICS_RENDER_REUSE_MS = 1000;

/** One render shared by concurrent callers and reused for `reuseMs`. */
export class SharedRender {
  private inFlight: Promise<string> | null = null;
  private last: { readonly text: string; readonly at: number } | null = null;

  constructor(
    private readonly render: () => Promise<string>,
    private readonly reuseMs: number = METRICS_RENDER_REUSE_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get(): Promise<string> {
    if (this.last !== null && this.now() - this.last.at < this.reuseMs) return Promise.resolve(this.last.text);
    if (this.inFlight !== null) return this.inFlight;
    const rendering = this.render().then((text) => {
      this.last = { text, at: this.now() };
      return text;
    });
    this.inFlight = rendering.finally(() => (this.inFlight = null));
    return this.inFlight;
  }
}

/** The guard of `/metrics`: a scraper key or the admin key, unless anonymous access is configured. */
export function requireMetricsKey(ctx: GatewayContext): onRequestHookHandler {
  const scrapers = new KeyRing(ctx.metricsAccess.keySha256.map((hex) => [hex, true] as const));
  return function authenticateScraper(request: FastifyRequest, _reply: FastifyReply, done) {
    const authorization = request.headers.authorization;
    const key = bearerToken(authorization);
    if (key !== null && (scrapers.lookup(key) === true || ctx.tenants.classify(authorization) === 'admin')) {
      return done();
    }
    done(
      new DS_ERR_UNAUTHENTICATED(
        'GET /metrics requires a scraper key (telemetry.metricsKeySha256) or the admin key: "Authorization: Bearer <key>"',
      ),
    );
  };
}

export function metricsRoutes(ctx: GatewayContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    const telemetry = ctx.telemetry;
    if (!telemetry) return;
    const shared = new SharedRender(() => telemetry.renderPrometheus());
    app.get(
      '/metrics',
      {
        ...(!ctx.metricsAccess.anonymous && { onRequest: requireMetricsKey(ctx) }),
        schema: {
          tags: ['observability'],
          summary: 'Prometheus metrics (text exposition format 0.0.4); a scraper key or the admin key',
          produces: ['text/plain'],
          response: { 200: { type: 'string' }, ...errorResponses },
        },
      },
      async (_request, reply) => reply.type(telemetry.prometheusContentType).send(await shared.get()),
    );
  };
}
