/**
 * The try-by-hand route: send an image, get the task's top labels with probabilities.
 *
 *   curl -H 'authorization: Bearer dev-key' -H 'content-type: image/png' \
 *        --data-binary @docs/examples/footwear.png localhost:8080/v1/tasks/footwear/classify?top=2
 *
 * PNG bodies (any size) or JSON `{ "image": [[...28 values...] × 28], "top": 3 }`; see image.ts
 * for the conversion. Probabilities are a softmax over the task's first `numClasses` logits.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DS_ERR_IMAGE_INVALID } from '../../core/errors.js';
import { requireTenant } from '../auth.js';
import { topLabels } from '../classify.js';
import { timeoutMsOf, TIMEOUT_HEADER } from '../deadline.js';
import type { GatewayContext } from '../gateway-context.js';
import { greyToTensor, imageInputOf, jsonToGrey } from '../image.js';
import { admitWhenQueuesHaveRoom, requireVisibleModel, resolveModel, runInference } from '../run-inference.js';
import { classifyJsonBody, classifyParams, classifyQuery, classifyResponse, errorResponses } from '../schemas.js';

const DEFAULT_TOP = 5;

type ClassifyRequest = FastifyRequest<{
  Params: { task: string };
  Querystring: { top?: number };
  Body: Buffer | { image: unknown; top?: number };
}>;

export function classifyRoutes(ctx: GatewayContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    // Encapsulated: only this route accepts PNG bodies.
    app.addContentTypeParser(
      'image/png',
      { parseAs: 'buffer', bodyLimit: ctx.limits.imageBodyLimitBytes },
      (_request, body, done) => {
        done(null, body);
      },
    );

    app.post(
      '/v1/tasks/:task/classify',
      {
        onRequest: [
          requireTenant(ctx),
          requireVisibleModel(ctx, (request) => ({ name: (request.params as { task: string }).task })),
          admitWhenQueuesHaveRoom(ctx),
        ],
        schema: {
          tags: ['classify'],
          summary: 'Classify an image (PNG body, or JSON {"image": 28×28 array}) with a task; returns the top labels',
          params: classifyParams,
          querystring: classifyQuery,
          headers: { type: 'object', properties: { [TIMEOUT_HEADER]: { type: 'string' } } },
          // One schema per content type: JSON is validated here, PNG bytes by their decoder.
          body: {
            content: {
              'application/json': { schema: classifyJsonBody },
              // No type: the parser hands over a Buffer, which no JSON type describes.
              'image/png': { schema: { description: 'PNG bytes, any size (binary body)' } },
            },
          },
          response: { 200: classifyResponse, ...errorResponses },
        },
      },
      async (request, reply) => classify(ctx, request as ClassifyRequest, reply),
    );
  };
}

async function classify(ctx: GatewayContext, request: ClassifyRequest, reply: FastifyReply) {
  const name = request.params.task;
  const model = resolveModel(ctx, request, name);
  const input = imageInputOf(ctx.base.io, name);
  const body = request.body;
  let grey: Float32Array;
  let top = request.query.top ?? DEFAULT_TOP;
  if (Buffer.isBuffer(body)) {
    grey = await ctx.pngDecoder.decode(body, input.width, input.height);
  } else {
    if (typeof body !== 'object' || body === null || !('image' in body))
      throw new DS_ERR_IMAGE_INVALID('send a PNG (content-type: image/png) or JSON {"image": [[...], ...]}');
    grey = jsonToGrey(body.image, input.width, input.height);
    top = body.top ?? top;
  }
  const timeoutMs = timeoutMsOf(undefined, request.headers[TIMEOUT_HEADER], ctx.limits);
  const result = await runInference(ctx, request, reply, model, { [input.name]: greyToTensor(grey, input) }, timeoutMs);
  const outputName = ctx.base.io.outputs[0]?.name;
  const logits = outputName === undefined ? undefined : result.outputs[outputName];
  if (!logits || logits.type !== 'float32') throw new DS_ERR_IMAGE_INVALID(`model ${name} returned no float logits`);
  const labels = model.task ? model.task.labels : ctx.base.labels;
  const numClasses = model.task ? model.task.numClasses : (ctx.base.labels?.length ?? null);
  return {
    task: name,
    version: model.version,
    labels: topLabels(logits.data as Float32Array, labels, numClasses, top),
  };
}
