/**
 * Admin API over the task registry (admin key): list, register a new task, add a version (or
 * update a version's labels/description), retire a task or one version. Changes are validated
 * by loading the delta, persisted atomically, and survive a restart; see registry/.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DS_ERR_ADMIN_CHANGE_TIMEOUT, DS_ERR_REQUEST_INVALID } from '../../core/errors.js';
import { FieldReader } from '../../core/config-fields.js';
import { readTaskSpec } from '../../core/config-tasks.js';
import type { TaskSpec } from '../../core/config-types.js';
import { redactUri } from '../../deltas/source/uri.js';
import type { TaskAdmin } from '../../registry/task-admin.js';
import type { TaskVersion } from '../../registry/task-registry.js';
import { requireAdmin } from '../auth.js';
import type { GatewayContext } from '../gateway-context.js';
import {
  errorResponses,
  registerTaskBody,
  retireQuery,
  retireResponse,
  taskListResponse,
  taskNameParams,
  taskResponse,
  updateTaskBody,
} from '../schemas.js';

interface TaskBody {
  name?: string;
  version: string | number;
  uri: string;
  sha256: string;
  description?: string;
  labels?: string[];
  numClasses?: number;
  default?: boolean;
}

export function adminRoutes(ctx: GatewayContext, admin: TaskAdmin) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', requireAdmin(ctx));

    app.get(
      '/admin/tasks',
      {
        schema: {
          tags: ['admin'],
          summary: 'Every registered task version',
          response: { 200: taskListResponse, ...errorResponses },
        },
      },
      async () => ({
        tasks: ctx.registry.all().map((task) => view(ctx, task)),
      }),
    );

    app.post<{ Body: TaskBody }>(
      '/admin/tasks',
      {
        schema: {
          tags: ['admin'],
          summary: 'Register a new task (its delta is fetched and validated first)',
          body: registerTaskBody,
          response: { 201: taskResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const spec = specOf(ctx, request.body, request.body.name!);
        const result = await whileClientWaits(ctx, spec.name, reply, (signal) =>
          admin.register({ spec, mustBeNew: true, makeDefault: request.body.default ?? true, signal }),
        );
        request.taskLabel = spec.name;
        return reply.status(201).send({ task: view(ctx, result.task), created: true });
      },
    );

    app.put<{ Params: { name: string }; Body: TaskBody }>(
      '/admin/tasks/:name',
      {
        schema: {
          tags: ['admin'],
          summary: 'Add a version of a task, or update labels/description of an existing version (same delta)',
          params: taskNameParams,
          body: updateTaskBody,
          response: { 200: taskResponse, 201: taskResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const spec = specOf(ctx, request.body, request.params.name);
        const result = await whileClientWaits(ctx, spec.name, reply, (signal) =>
          admin.register({ spec, mustBeNew: false, makeDefault: request.body.default ?? true, signal }),
        );
        request.taskLabel = spec.name;
        return reply.status(result.created ? 201 : 200).send({ task: view(ctx, result.task), created: result.created });
      },
    );

    app.delete<{ Params: { name: string }; Querystring: { version?: string } }>(
      '/admin/tasks/:name',
      {
        schema: {
          tags: ['admin'],
          summary: 'Retire a task (every version, or ?version=v): unregister and evict its delta',
          params: taskNameParams,
          querystring: retireQuery,
          response: { 200: retireResponse, ...errorResponses },
        },
      },
      async (request) => ({ retired: await admin.retire(request.params.name, request.query.version) }),
    );
  };
}

/**
 * Runs a change that is applied only while its client can still be told the outcome: the
 * signal aborts when the client disconnects or `adminChangeTimeoutMs` passes (then the client
 * gets 504 DS_ERR_ADMIN_CHANGE_TIMEOUT and the change is not applied, however late its delta
 * arrives).
 */
async function whileClientWaits<T>(
  ctx: GatewayContext,
  task: string,
  reply: FastifyReply,
  change: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timeoutMs = ctx.limits.adminChangeTimeoutMs;
  const timer = setTimeout(() => controller.abort(new DS_ERR_ADMIN_CHANGE_TIMEOUT(task, timeoutMs)), timeoutMs);
  const onClose = (): void => {
    if (!reply.raw.writableFinished) controller.abort(new Error('the client closed the connection'));
  };
  reply.raw.once('close', onClose);
  try {
    return await change(controller.signal);
  } finally {
    clearTimeout(timer);
    reply.raw.off('close', onClose);
  }
}

/**
 * The body through the same checks as configured tasks (name rules, sha256, labels vs
 * numClasses), then against the model: a task cannot have more classes than the base has logits.
 */
function specOf(ctx: GatewayContext, body: TaskBody, name: string): TaskSpec {
  const fail = (field: string, reason: string): never => {
    throw new DS_ERR_REQUEST_INVALID(`body/${field} ${reason}`);
  };
  const { default: _default, name: _name, ...fields } = body;
  const spec = readTaskSpec(new FieldReader(fail), { ...fields, name }, '', 'uri', (uri) => uri);
  const logits = logitCount(ctx);
  if (logits !== null && spec.numClasses !== null && spec.numClasses > logits) {
    fail(
      body.numClasses === undefined ? 'labels' : 'numClasses',
      `gives ${spec.numClasses} classes but the model's output ${ctx.base.io.outputs[0]!.name} has ${logits} logits`,
    );
  }
  return spec;
}

/** The last dimension of the model's first output, when it is fixed. */
function logitCount(ctx: GatewayContext): number | null {
  const shape = ctx.base.io.outputs[0]?.shape;
  const last = shape?.[shape.length - 1];
  return last !== undefined && last > 0 ? last : null;
}

function view(ctx: GatewayContext, task: TaskVersion) {
  return {
    name: task.name,
    version: task.version,
    default: ctx.registry.defaultVersion(task.name) === task.version,
    uri: redactUri(task.uri),
    sha256: task.sha256,
    description: task.description,
    labels: task.labels === null ? null : [...task.labels],
    numClasses: task.numClasses,
    origin: task.origin,
    registeredAt: task.registeredAt,
    state: ctx.taskStates.of(task.key).state,
    reason: ctx.taskStates.of(task.key).reason,
    cached: ctx.cachedSizes.of(task.key),
  };
}
