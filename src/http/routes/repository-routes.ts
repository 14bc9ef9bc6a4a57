/**
 * Triton's repository extension mapped onto the delta cache. The index lists what the calling
 * tenant can see, with each version's serving state and whether its delta is cached or pinned.
 * `load` prefetches a delta and pins it (it survives cache pressure); `unload` unpins and evicts
 * it. Load and unload change what every tenant experiences, so they take the admin key and
 * name tasks as the registry does (`parameters.version` picks a version, default: the
 * registry's default).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DS_ERR_BASE_RESERVED, DS_ERR_MODEL_NOT_FOUND } from '../../core/errors.js';
import { RESERVED_BASE_NAME } from '../../core/config-tasks.js';
import { taskRefOf, type TaskVersion } from '../../registry/task-registry.js';
import { requireAdmin, requireTenant } from '../auth.js';
import { resolveContext, type GatewayContext } from '../gateway-context.js';
import { TENANT_UNAVAILABLE_REASON } from '../task-unavailable.js';
import {
  errorResponses,
  modelParams,
  repositoryActionBody,
  repositoryActionResponse,
  repositoryIndexBody,
  repositoryIndexResponse,
} from '../schemas.js';

interface ActionBody {
  parameters?: { version?: string };
}

export function repositoryRoutes(ctx: GatewayContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.post<{ Body: { ready?: boolean } | null }>(
      '/v2/repository/index',
      {
        onRequest: requireTenant(ctx),
        schema: {
          tags: ['repository'],
          summary: 'Models the caller can use, with state (READY/LOADING/UNAVAILABLE) and cache residency',
          body: repositoryIndexBody,
          response: { 200: repositoryIndexResponse, ...errorResponses },
        },
      },
      async (request) => {
        const residency = await cacheResidency(ctx);
        const tenant = request.tenant!;
        const context = resolveContext(ctx);
        const entries = tenant.visibleNames(context).flatMap((name) =>
          tenant.visibleVersions(context, name).map((version) => {
            const model = tenant.resolve(context, name, version);
            if (model === null) return null;
            if (model.task === null) {
              const ready = ctx.engine.ready;
              return {
                name,
                version,
                state: ready ? 'READY' : 'UNAVAILABLE',
                reason: ready ? '' : 'the engine is not ready',
                cached: true,
                pinned: true,
              };
            }
            const status = ctx.taskStates.of(model.task.key);
            return {
              name,
              version,
              state: status.state,
              // The failure's detail names storage paths and URIs: for admins (/admin/tasks) and logs.
              reason: status.state === 'UNAVAILABLE' ? TENANT_UNAVAILABLE_REASON : status.reason,
              cached: residency.cached.has(model.task.key),
              pinned: residency.pinned.has(model.task.key),
            };
          }),
        );
        const ready = request.body?.ready === true;
        return entries.filter((e) => e !== null && (!ready || e.state === 'READY'));
      },
    );

    const actionSchema = (summary: string) => ({
      tags: ['repository'],
      summary,
      params: modelParams,
      body: repositoryActionBody,
      response: { 200: repositoryActionResponse, ...errorResponses },
    });

    app.post<{ Params: { model_name: string }; Body: ActionBody | null }>(
      '/v2/repository/models/:model_name/load',
      {
        onRequest: requireAdmin(ctx),
        schema: actionSchema("Prefetch a task's delta and pin it in the cache (admin key)"),
      },
      async (request) => {
        const name = request.params.model_name;
        if (name === RESERVED_BASE_NAME)
          return { name, version: ctx.base.version, state: 'READY', cached: true, pinned: true };
        const task = taskOf(ctx, request);
        await ctx.engine.pin(taskRefOf(task));
        return { name, version: task.version, state: 'READY', cached: true, pinned: true };
      },
    );

    app.post<{ Params: { model_name: string }; Body: ActionBody | null }>(
      '/v2/repository/models/:model_name/unload',
      {
        onRequest: requireAdmin(ctx),
        schema: actionSchema("Unpin a task's delta and evict it from the cache (admin key)"),
      },
      async (request) => {
        const name = request.params.model_name;
        if (name === RESERVED_BASE_NAME)
          throw new DS_ERR_BASE_RESERVED('the base model is always loaded and cannot be unloaded');
        const task = taskOf(ctx, request);
        await ctx.engine.evict(task.key);
        return { name, version: task.version, state: 'READY', cached: false, pinned: false };
      },
    );
  };
}

function taskOf(
  ctx: GatewayContext,
  request: FastifyRequest<{ Params: { model_name: string }; Body: ActionBody | null }>,
): TaskVersion {
  const name = request.params.model_name;
  const version = request.body?.parameters?.version;
  const task = ctx.registry.get(name, version);
  if (!task) throw new DS_ERR_MODEL_NOT_FOUND(version === undefined ? name : `${name} version ${version}`);
  return task;
}

async function cacheResidency(ctx: GatewayContext): Promise<{ cached: Set<string>; pinned: Set<string> }> {
  if (!ctx.engine.ready) return { cached: new Set(), pinned: new Set() };
  try {
    const stats = await ctx.engine.stats();
    const pinned = stats.worker?.cache.pinned ?? [];
    return { cached: new Set([...(stats.worker?.cache.keys ?? []), ...pinned]), pinned: new Set(pinned) };
  } catch {
    // The worker went away between the check and the call: report nothing cached.
    return { cached: new Set(), pinned: new Set() };
  }
}
