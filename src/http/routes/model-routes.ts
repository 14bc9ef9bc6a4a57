/**
 * Open Inference Protocol model routes, where a model is a task as the calling tenant sees it:
 * metadata, readiness and inference, each with and without `/versions/{v}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DS_ERR_ENGINE_NOT_READY } from '../../core/errors.js';
import type { TensorSignature } from '../../onnx/io-signature.js';
import { requireTenant } from '../auth.js';
import { timeoutMsOf, TIMEOUT_HEADER } from '../deadline.js';
import { resolveContext, type GatewayContext } from '../gateway-context.js';
import { REQUEST_ID_HEADER } from '../request-state.js';
import { admitWhenQueuesHaveRoom, requireVisibleModel, resolveModel, runInference } from '../run-inference.js';
import { taskUnavailableForTenant } from '../task-unavailable.js';
import {
  errorResponses,
  inferBody,
  inferResponse,
  modelMetadataResponse,
  modelParams,
  readyResponse,
} from '../schemas.js';
import { checkRequestedOutputs, decodeInputs, encodeOutputs, type RequestTensor } from '../tensor-codec.js';

interface ModelParams {
  model_name: string;
  model_version?: string;
}

interface InferBody {
  id?: string;
  parameters?: { timeout_ms?: number };
  inputs: RequestTensor[];
  outputs?: { name: string }[];
}

export const PLATFORM = 'onnxruntime_onnx';

export function modelRoutes(ctx: GatewayContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    const onRequest = requireTenant(ctx);
    const both = (path: string): string[] => [
      `/v2/models/:model_name${path}`,
      `/v2/models/:model_name/versions/:model_version${path}`,
    ];

    for (const url of both('')) {
      app.get<{ Params: ModelParams }>(
        url,
        {
          onRequest,
          schema: {
            tags: ['models'],
            summary: 'Model metadata (inputs, outputs, versions, labels)',
            params: modelParams,
            response: { 200: modelMetadataResponse, ...errorResponses },
          },
        },
        async (request) => metadata(ctx, request),
      );
    }

    for (const url of both('/ready')) {
      app.get<{ Params: ModelParams }>(
        url,
        {
          onRequest,
          schema: {
            tags: ['models'],
            summary: 'Whether the model can serve now (503 with the reason otherwise)',
            params: modelParams,
            response: { 200: readyResponse, ...errorResponses },
          },
        },
        async (request) => {
          const { model_name: name, model_version: version } = request.params;
          const model = resolveModel(ctx, request, name, version);
          if (!ctx.engine.ready) throw new DS_ERR_ENGINE_NOT_READY('the engine worker is starting or restarting');
          const status = model.task ? ctx.taskStates.of(model.task.key) : null;
          if (status?.state === 'UNAVAILABLE') throw taskUnavailableForTenant(model.task!.key);
          return { name, version: model.version, ready: true };
        },
      );
    }

    for (const url of both('/infer')) {
      app.post<{ Params: ModelParams; Body: InferBody }>(
        url,
        {
          onRequest: [
            onRequest,
            requireVisibleModel(ctx, (request) => {
              const params = request.params as ModelParams;
              return { name: params.model_name, version: params.model_version };
            }),
            admitWhenQueuesHaveRoom(ctx),
          ],
          schema: {
            tags: ['models'],
            summary: 'Run inference (KServe V2 JSON tensors)',
            headers: {
              type: 'object',
              properties: { [TIMEOUT_HEADER]: { type: 'string' }, [REQUEST_ID_HEADER]: { type: 'string' } },
            },
            params: modelParams,
            body: inferBody,
            response: { 200: inferResponse, ...errorResponses },
          },
        },
        async (request, reply) => infer(ctx, request, reply),
      );
    }
  };
}

async function metadata(ctx: GatewayContext, request: FastifyRequest<{ Params: ModelParams }>) {
  const { model_name: name, model_version: version } = request.params;
  const model = resolveModel(ctx, request, name, version);
  const tenant = request.tenant!;
  const versions = version === undefined ? tenant.visibleVersions(resolveContext(ctx), name) : [model.version];
  const labels = model.task ? model.task.labels : ctx.base.labels;
  const numClasses = model.task ? model.task.numClasses : (ctx.base.labels?.length ?? null);
  const defaultVersion = model.task ? (ctx.registry.defaultVersion(model.task.name) ?? model.version) : model.version;
  const perTask = model.task ? ctx.engine.perTaskBatchingOf(model.task.key) : null;
  const mixed = ctx.engine.readyInfo?.mode === 'mixed' && perTask === null;
  return {
    name,
    versions,
    platform: PLATFORM,
    inputs: ctx.base.io.inputs.map(describeTensor),
    outputs: ctx.base.io.outputs.map(describeTensor),
    parameters: {
      default_version: version ?? defaultVersion,
      description: model.task?.description ?? 'The base model without a delta',
      ...(labels !== null && { labels: [...labels] }),
      ...(numClasses !== null && { num_classes: numClasses }),
      batching: mixed ? 'mixed' : 'per-task',
      ...(perTask && { batching_reason: `its delta changes ${perTask.tensor}: ${perTask.reason}` }),
    },
  };
}

function describeTensor(signature: TensorSignature) {
  return {
    name: signature.name,
    datatype: signature.datatype,
    shape: signature.shape === null ? [] : [...signature.shape],
  };
}

async function infer(
  ctx: GatewayContext,
  request: FastifyRequest<{ Params: ModelParams; Body: InferBody }>,
  reply: FastifyReply,
) {
  const { model_name: name, model_version: version } = request.params;
  const body = request.body;
  const model = resolveModel(ctx, request, name, version, body.id);
  const timeoutMs = timeoutMsOf(body.parameters?.timeout_ms, request.headers[TIMEOUT_HEADER], ctx.limits);
  const requested = body.outputs?.map((o) => o.name);
  if (requested) checkRequestedOutputs(requested, ctx.base.io);
  const inputs = decodeInputs(body.inputs, ctx.base.io, { maxRows: ctx.limits.maxRowsPerRequest });
  const result = await runInference(ctx, request, reply, model, inputs, timeoutMs);
  return {
    model_name: name,
    model_version: model.version,
    ...(body.id !== undefined && { id: body.id }),
    parameters: {
      cache_hit: result.cacheHit,
      batch_size: result.batchSize,
      infer_ms: result.inferMs,
      activation_ms: result.activationMs,
    },
    outputs: encodeOutputs(result.outputs, ctx.base.io, requested),
  };
}
