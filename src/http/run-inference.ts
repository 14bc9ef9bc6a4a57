/**
 * One inference for a tenant, shared by the infer and classify routes: model resolution (404
 * identical for "not yours" and "not there"), the tenant's concurrency slot, the deadline, the
 * engine call (cancelled if the client goes away) and trace spans.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RESERVED_BASE_NAME } from '../core/config-tasks.js';
import {
  DS_ERR_CONCURRENCY_LIMITED,
  DS_ERR_MODEL_NOT_FOUND,
  DS_ERR_TASK_UNAVAILABLE,
  isError,
} from '../core/errors.js';
import { withRetryAfter } from '../core/retry-after.js';
import type { NamedTensors } from '../engine/tensors.js';
import { taskRefOf } from '../registry/task-registry.js';
import type { ResolvedModel, TenantPolicy } from '../tenant/tenant-policy.js';
import { resolveContext, type GatewayContext } from './gateway-context.js';
import type { InferResult } from './inference-engine.js';
import { taskUnavailableForTenant } from './task-unavailable.js';
import { REQUEST_ID_HEADER } from './request-state.js';

/** Seconds a client over its concurrency limit is told to wait: in-flight requests are short. */
const CONCURRENCY_RETRY_AFTER_SECONDS = 1;

/** Per-response facts a load generator can read without parsing the body (loadtest/ reads them). */
export const CACHE_HEADER = 'x-deltaserve-cache';
export const QUEUE_MS_HEADER = 'x-deltaserve-queue-ms';

/** The tenant's model for a visible name (and version), or DS_ERR_MODEL_NOT_FOUND. */
export function resolveModel(
  ctx: GatewayContext,
  request: FastifyRequest,
  name: string,
  version?: string,
  routingId?: string,
): ResolvedModel {
  const tenant = request.tenant!;
  // Version splits are sticky per request id: the caller's id (e.g. an infer body's `id`), else
  // the x-request-id header, so every route that serves a model splits the same way.
  const headerId = request.headers[REQUEST_ID_HEADER];
  const stickyId = routingId ?? (typeof headerId === 'string' && headerId !== '' ? headerId : undefined);
  const resolved = tenant.resolve(resolveContext(ctx), name, version, stickyId);
  // Same error, same message shape for a task that is not the tenant's and one that does not exist.
  if (resolved === null) throw new DS_ERR_MODEL_NOT_FOUND(version === undefined ? name : `${name} version ${version}`);
  request.taskLabel = resolved.task?.name ?? RESERVED_BASE_NAME;
  return resolved;
}

/**
 * onRequest hook of routes that run a model, after authentication: with the queues full the
 * request is shed before its body is read or parsed (503 DS_ERR_OVERLOADED with Retry-After), so
 * that overload is cheap to refuse instead of costing the HTTP thread a parse per refusal.
 */
export function admitWhenQueuesHaveRoom(ctx: GatewayContext) {
  return async (): Promise<void> => {
    const overloaded = ctx.engine.admissionError();
    if (overloaded) throw overloaded;
  };
}

/**
 * onRequest hook of routes that run a model, after authentication and before admission: an
 * unknown (or not the tenant's) model is a 404 before the body is read, parsed or validated, so
 * "no such model" is never hidden behind a 400 (malformed JSON, a failing schema) about a body
 * that could not have been served anyway. The handler resolves again with the body's routing id.
 */
export function requireVisibleModel(
  ctx: GatewayContext,
  params: (request: FastifyRequest) => { name: string; version?: string | undefined },
) {
  return async (request: FastifyRequest): Promise<void> => {
    const { name, version } = params(request);
    resolveModel(ctx, request, name, version);
  };
}

export async function runInference(
  ctx: GatewayContext,
  request: FastifyRequest,
  reply: FastifyReply,
  model: ResolvedModel,
  inputs: NamedTensors,
  timeoutMs: number,
): Promise<InferResult> {
  const tenant: TenantPolicy = request.tenant!;
  const release = tenant.acquireSlot();
  if (release === null) {
    const error = new DS_ERR_CONCURRENCY_LIMITED(
      tenant.name,
      tenant.config.maxConcurrent!, // acquireSlot refuses only a tenant with a limit
      CONCURRENCY_RETRY_AFTER_SECONDS,
    );
    throw withRetryAfter(error, CONCURRENCY_RETRY_AFTER_SECONDS);
  }
  // A client that disconnects takes its request out of the queue (no effect once running).
  const abort = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) abort.abort(new Error('the client closed the connection'));
  };
  reply.raw.once('close', onClose);
  const startedAt = Date.now();
  try {
    const result = await ctx.engine.infer(model.task ? taskRefOf(model.task) : null, inputs, {
      deadline: startedAt + timeoutMs,
      priority: tenant.priority,
      signal: abort.signal,
    });
    reply.header(CACHE_HEADER, result.cacheHit ? 'hit' : 'miss');
    reply.header(QUEUE_MS_HEADER, result.queueMs.toFixed(1));
    recordSpans(ctx, request, model, result, startedAt);
    return result;
  } catch (error) {
    const e = error as Error & { code?: string; reason?: string };
    const key = model.task?.key ?? null;
    if (key !== null && isError(error, DS_ERR_TASK_UNAVAILABLE)) {
      request.log.warn({ task: key, reason: e.reason }, e.message);
      throw taskUnavailableForTenant(key, e.reason);
    }
    throw error;
  } finally {
    reply.raw.off('close', onClose);
    release();
  }
}

function recordSpans(
  ctx: GatewayContext,
  request: FastifyRequest,
  model: ResolvedModel,
  result: InferResult,
  startedAt: number,
): void {
  if (!ctx.telemetry || !request.span) return;
  const load = result.load;
  ctx.telemetry.recordInferenceSpans(
    request.span,
    {
      startedAt,
      queueMs: result.queueMs,
      ...(load?.fetchMs !== undefined && { fetchMs: load.fetchMs }),
      ...(load?.verifyMs !== undefined && { verifyMs: load.verifyMs }),
      ...(load?.decodeMs !== undefined && { decodeMs: load.decodeMs }),
      activationMs: result.activationMs,
      inferMs: result.inferMs,
    },
    {
      task: model.task?.name ?? RESERVED_BASE_NAME,
      tenant: request.tenant?.name ?? null,
      batchSize: result.batchSize,
      cacheHit: result.cacheHit,
    },
  );
}
