/**
 * Every error becomes `{"error": "...", "code": "..."}` here, in one place, with the status the
 * error carries (`statusCode`, set by @fastify/error for our DS_ERR_* and fastify's FST_ERR_*):
 *
 * - schema failures → 400 DS_ERR_REQUEST_INVALID naming the field (`body/inputs/0/shape must be
 *   array`), built by `schemaErrorFormatter`;
 * - client mistakes fastify detects (bad JSON 400, wrong content type 415, body too large 413)
 *   keep their status and FST_ERR_* code;
 * - `Retry-After` from the error's `retryAfterSeconds` (overload, rate limits), else 1 s for a 429
 *   or an error whose policy is `retrySoon` (an engine restarting, a server shutting down);
 * - 5xx whose policy is `expected5xx` (load, shutdown, deadlines, an unloadable delta) are logged
 *   at info without a stack; other 5xx at error with the stack. The policies are columns of the
 *   error table (src/core/errors.ts, docs/errors.md);
 * - anything without a status is a bug: 500 DS_ERR_INTERNAL with a generic message, logged with
 *   its stack (the message may hold internals a client must not see).
 */
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifySchemaValidationError,
} from 'fastify';
import {
  DS_ERR_INTERNAL,
  DS_ERR_REQUEST_INVALID,
  DS_ERR_ROUTE_NOT_FOUND,
  errorPolicy,
  isDsError,
} from '../core/errors.js';

export interface ErrorBody {
  readonly error: string;
  readonly code: string;
}

type AnyError = FastifyError & { retryAfterSeconds?: number };

export function statusOf(error: AnyError): number {
  const status = error.statusCode;
  return typeof status === 'number' && status >= 400 && status <= 599 ? status : 500;
}

/** Fastify `schemaErrorFormatter`: one 400 naming the first failing field. */
export function formatSchemaError(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const first = errors[0];
  const field = first ? `${dataVar}${first.instancePath}` : dataVar;
  const extra =
    first?.keyword === 'additionalProperties'
      ? ` (${String((first.params as { additionalProperty?: unknown }).additionalProperty)})`
      : '';
  return new DS_ERR_REQUEST_INVALID(`${field} ${first?.message ?? 'is invalid'}${extra}`);
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: AnyError, request: FastifyRequest, reply: FastifyReply) => {
    const status = statusOf(error);
    const known = status < 500 || isDsError(error);
    if (status >= 500 && !errorPolicy(error.code).expected5xx) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: error.code, status }, error.message);
    const retryAfter = retryAfterOf(error, status);
    if (retryAfter !== null) void reply.header('retry-after', String(retryAfter));
    if (status === 401) void reply.header('www-authenticate', 'Bearer');
    const internal = new DS_ERR_INTERNAL();
    const body: ErrorBody = known
      ? {
          error: error.message,
          code: typeof error.code === 'string' && error.code !== '' ? error.code : `HTTP_${status}`,
        }
      : { error: internal.message, code: internal.code };
    return reply.status(status).send(body);
  });

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const error = new DS_ERR_ROUTE_NOT_FOUND(request.method, request.url.split('?')[0] ?? '');
    return reply.status(404).send({ error: error.message, code: error.code } satisfies ErrorBody);
  });
}

/** Longest path parameter (a model or task name) the router accepts; the schemas allow as much. */
export const MAX_PATH_PARAM_LENGTH = 256;

/**
 * fastify's `frameworkErrors`: the router's own refusals (a path parameter over
 * MAX_PATH_PARAM_LENGTH, malformed percent-encoding) in the gateway's error shape. Their default
 * body echoed the whole path back: a 10 KB name came back whole.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
  const message = tooLong
    ? `A name in the path is longer than ${MAX_PATH_PARAM_LENGTH} characters`
    : 'The URL is not valid (malformed percent-encoding)';
  request.log.info({ code: error.code, urlLength: request.raw.url?.length }, message);
  void reply.status(tooLong ? 414 : 400).send({ error: message, code: error.code } satisfies ErrorBody);
}

function retryAfterOf(error: AnyError, status: number): number | null {
  if (typeof error.retryAfterSeconds === 'number' && Number.isFinite(error.retryAfterSeconds)) {
    return Math.max(1, Math.ceil(error.retryAfterSeconds));
  }
  if (status === 429 || errorPolicy(error.code).retrySoon) return 1;
  return null;
}
