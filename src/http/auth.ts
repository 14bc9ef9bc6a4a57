/**
 * Route guards, run as `onRequest` hooks, i.e. before the body is read or validated: an
 * unauthenticated or rate-limited client costs no parsing, and never learns whether its body
 * or its model name was valid.
 *
 * Tenant routes take a tenant key (the admin key is not a tenant: 401 there). Admin routes take
 * the admin key: 401 without a key, 403 with another valid-looking key.
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { DS_ERR_ADMIN_REQUIRED, DS_ERR_RATE_LIMITED, DS_ERR_UNAUTHENTICATED } from '../core/errors.js';
import { withRetryAfter } from '../core/retry-after.js';
import type { GatewayContext } from './gateway-context.js';

export function requireTenant(ctx: GatewayContext): onRequestHookHandler {
  return function authenticateTenant(request: FastifyRequest, _reply: FastifyReply, done) {
    try {
      const tenant = ctx.tenants.authenticate(request.headers.authorization);
      request.tenant = tenant;
      const token = tenant.takeToken(Date.now());
      if (!token.ok) {
        const limit = tenant.config.rateLimit!;
        const error = new DS_ERR_RATE_LIMITED(
          tenant.name,
          `${limit.requestsPerSecond} requests/s, burst ${limit.burst}`,
          token.retryAfterSeconds,
        );
        done(withRetryAfter(error, token.retryAfterSeconds));
        return;
      }
      done();
    } catch (error) {
      done(error as Error);
    }
  };
}

export function requireAdmin(ctx: GatewayContext): onRequestHookHandler {
  return function authenticateAdmin(request: FastifyRequest, _reply: FastifyReply, done) {
    const who = ctx.tenants.classify(request.headers.authorization);
    if (who === 'admin') return done();
    const route = `${request.method} ${request.routeOptions.url ?? request.url}`;
    if (who === 'none')
      return done(
        new DS_ERR_UNAUTHENTICATED(`route ${route} requires the admin key ("Authorization: Bearer <admin key>")`),
      );
    return done(new DS_ERR_ADMIN_REQUIRED(route));
  };
}
