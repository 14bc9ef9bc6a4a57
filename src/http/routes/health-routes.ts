/** Liveness, readiness and server metadata: no key needed (probes and discovery). */
import type { FastifyInstance } from 'fastify';
import { DS_ERR_ENGINE_NOT_READY } from '../../core/errors.js';
import type { GatewayContext } from '../gateway-context.js';
import { errorResponses, liveResponse, serverMetadataResponse, serverReadyResponse } from '../schemas.js';

export const SERVER_NAME = 'deltaserve';
export const SERVER_EXTENSIONS = ['model_repository', 'classification'] as const;

export function healthRoutes(ctx: GatewayContext, serverVersion: string) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.get(
      '/v2/health/live',
      {
        schema: { tags: ['health'], summary: 'The process is up', response: { 200: liveResponse, ...errorResponses } },
      },
      async () => ({
        live: true,
      }),
    );

    app.get(
      '/v2/health/ready',
      {
        schema: {
          tags: ['health'],
          summary:
            'Ready to serve: the base model is loaded and the engine is up (503 otherwise); with a shared registry, whether it matches the state file',
          response: { 200: serverReadyResponse, ...errorResponses },
        },
      },
      async () => {
        if (ctx.lifecycle.shuttingDown) throw new DS_ERR_ENGINE_NOT_READY('the server is shutting down');
        if (!ctx.engine.ready) throw new DS_ERR_ENGINE_NOT_READY('the engine worker is starting or restarting');
        const sync = ctx.registry.syncStatus();
        if (sync.lastSyncAt === null) return { ready: true };
        // Taking every replica out of rotation because the shared volume hiccuped would turn a
        // stale registry into an outage: the replica stays ready and says what it serves.
        return {
          ready: true,
          registry: { synced: sync.synced, error: sync.error, lastSyncAt: new Date(sync.lastSyncAt).toISOString() },
        };
      },
    );

    app.get(
      '/v2',
      {
        schema: {
          tags: ['health'],
          summary: 'Server metadata',
          response: { 200: serverMetadataResponse, ...errorResponses },
        },
      },
      async () => ({
        name: SERVER_NAME,
        version: serverVersion,
        extensions: [...SERVER_EXTENSIONS],
      }),
    );
  };
}
