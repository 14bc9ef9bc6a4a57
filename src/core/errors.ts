/**
 * Every error the project raises, in one place, each with a stable code, the HTTP status a
 * client should see if it ever reaches the API, and its policy (below). Created with
 * `@fastify/error` so the HTTP layer can take `statusCode` straight from the error (fastify's
 * own habit, see its `lib/errors.js`). `docs/errors.md` is generated from this table
 * (`npm run docs:errors`); `test/core/errors.test.ts` keeps the two in sync.
 *
 * The constructors are typed from their messages: one argument per `%s`, optionally followed
 * by `{ cause }`, so a construction with too few or too many arguments does not compile.
 * Compare errors with `isError(error, DS_ERR_X)`, never by a code string.
 *
 * Each section belongs to one part of the data path; add new errors to the section of the
 * module that throws them.
 */
import createError, { type FastifyErrorConstructor } from '@fastify/error';

/** What the HTTP error handler (src/http/error-handler.ts) does with an error besides its status. */
export interface ErrorPolicy {
  /** Answered with `Retry-After: 1` unless the error carries its own `retryAfterSeconds`: the condition passes by itself soon. */
  readonly retrySoon: boolean;
  /** A 5xx a running gateway gives by design (load, shutdown, restarts): logged at info, without a stack. */
  readonly expected5xx: boolean;
}

/** What a message's `%s` may be given. */
export type MessageArg = string | number | bigint | boolean;
/** One argument per `%s` of the message. */
export type MessageArgs<M extends string> = M extends `${string}%s${infer Rest}`
  ? [MessageArg, ...MessageArgs<Rest>]
  : [];
type ErrorArgs<M extends string> = MessageArgs<M> | [...MessageArgs<M>, { readonly cause: unknown }];

export type DsErrorClass<C extends string = string, M extends string = string> = FastifyErrorConstructor<
  { code: C; statusCode: number },
  ErrorArgs<M>
> & {
  readonly code: C;
  readonly statusCode: number;
  /** The message with its `%s` placeholders. */
  readonly template: M;
  readonly policy: ErrorPolicy;
};

/** What `isError` needs of an error class: its code, and its instances' type. */
export interface ErrorKind {
  readonly code: string;
  readonly prototype: Error;
}

const NO_POLICY: ErrorPolicy = { retrySoon: false, expected5xx: false };
const policies = new Map<string, ErrorPolicy>();

function defineError<const C extends string, const M extends string>(
  code: C,
  message: M,
  statusCode: number,
  policy: Partial<ErrorPolicy> = {},
): DsErrorClass<C, M> {
  const full: ErrorPolicy = { ...NO_POLICY, ...policy };
  policies.set(code, full);
  const constructor = createError<C, number, ErrorArgs<M>>(code, message, statusCode);
  return Object.assign(constructor, { code, statusCode, template: message, policy: full });
}

/**
 * Whether `error` is a `kind` error. By code, not by prototype: errors rebuilt after crossing
 * the engine worker's boundary carry the code but not the class.
 */
export function isError<K extends ErrorKind>(error: unknown, kind: K): error is K['prototype'] {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === kind.code;
}

/** Whether `error` is one of this table's errors (any code). */
export function isDsError(error: unknown): error is Error & { code: string; statusCode: number } {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && policies.has(code);
}

/** The policy of the error with this code; none for codes not in this table (fastify's, Node's). */
export function errorPolicy(code: unknown): ErrorPolicy {
  return (typeof code === 'string' && policies.get(code)) || NO_POLICY;
}

// --- configuration and CLI --------------------------------------------------------------------
export const DS_ERR_CLI_USAGE = defineError('DS_ERR_CLI_USAGE', '%s', 400);
export const DS_ERR_FILE_READ = defineError('DS_ERR_FILE_READ', 'Cannot read %s: %s', 500);
export const DS_ERR_DATASET_INVALID = defineError('DS_ERR_DATASET_INVALID', 'Sample set %s is invalid: %s', 422);

// --- safetensors container (src/deltas/format/safetensors.ts) ---------------------------------
export const DS_ERR_ST_TRUNCATED = defineError('DS_ERR_ST_TRUNCATED', 'Safetensors file is truncated: %s', 422);
export const DS_ERR_ST_BAD_HEADER = defineError('DS_ERR_ST_BAD_HEADER', 'Safetensors header is invalid: %s', 422);
export const DS_ERR_ST_BAD_OFFSETS = defineError(
  'DS_ERR_ST_BAD_OFFSETS',
  'Safetensors data offsets are invalid: %s',
  422,
);
export const DS_ERR_ST_UNKNOWN_DTYPE = defineError(
  'DS_ERR_ST_UNKNOWN_DTYPE',
  'Safetensors tensor %s has unsupported dtype %s',
  422,
);

// --- delta file (src/deltas/format) ------------------------------------------------------------
export const DS_ERR_DELTA_BAD_METADATA = defineError('DS_ERR_DELTA_BAD_METADATA', 'Delta metadata is invalid: %s', 422);
export const DS_ERR_DELTA_BAD_TENSOR = defineError('DS_ERR_DELTA_BAD_TENSOR', 'Delta tensor %s is invalid: %s', 422);
export const DS_ERR_DELTA_INDEX_RANGE = defineError(
  'DS_ERR_DELTA_INDEX_RANGE',
  'Delta tensor %s has an index out of range: %s',
  422,
);
export const DS_ERR_DELTA_INDEX_ORDER = defineError(
  'DS_ERR_DELTA_INDEX_ORDER',
  'Delta tensor %s has indices that are not strictly increasing: %s',
  422,
);
export const DS_ERR_DELTA_COUNT_MISMATCH = defineError(
  'DS_ERR_DELTA_COUNT_MISMATCH',
  'Delta tensor %s has %s indices but %s values',
  422,
);
export const DS_ERR_DELTA_UNKNOWN_TENSOR = defineError(
  'DS_ERR_DELTA_UNKNOWN_TENSOR',
  'Delta tensor %s is not a weight of the base model',
  422,
);
export const DS_ERR_DELTA_SHAPE_MISMATCH = defineError(
  'DS_ERR_DELTA_SHAPE_MISMATCH',
  'Delta tensor %s has shape %s but the base weight has shape %s',
  422,
);
export const DS_ERR_DELTA_NON_FINITE = defineError(
  'DS_ERR_DELTA_NON_FINITE',
  'Delta tensor %s holds a non-finite value (NaN or Inf) at position %s',
  422,
);
export const DS_ERR_DELTA_HEADER_LIMIT = defineError(
  'DS_ERR_DELTA_HEADER_LIMIT',
  'Delta header exceeds a structural limit: %s',
  422,
);
export const DS_ERR_DELTA_BASE_MISMATCH = defineError(
  'DS_ERR_DELTA_BASE_MISMATCH',
  'Delta was made for base %s but the base in use is %s',
  422,
);
export const DS_ERR_DELTA_BAD_STREAM = defineError(
  'DS_ERR_DELTA_BAD_STREAM',
  'Delta tensor %s has a malformed index stream: %s',
  422,
);
export const DS_ERR_DELTA_BAD_QUANT = defineError(
  'DS_ERR_DELTA_BAD_QUANT',
  'Delta tensor %s has malformed quantized values: %s',
  422,
);

// --- ONNX models (src/onnx) --------------------------------------------------------------------
export const DS_ERR_ONNX_INVALID = defineError('DS_ERR_ONNX_INVALID', 'ONNX model %s is invalid: %s', 422);
export const DS_ERR_ONNX_INCOMPATIBLE = defineError('DS_ERR_ONNX_INCOMPATIBLE', 'ONNX models do not match: %s', 422);

// --- compression (src/compress) ----------------------------------------------------------------
export const DS_ERR_STATE_DICT = defineError('DS_ERR_STATE_DICT', 'State dict %s: %s', 422);
export const DS_ERR_NAME_MAP = defineError('DS_ERR_NAME_MAP', 'State-dict name map: %s', 422);
export const DS_ERR_CALIB_INPUT = defineError('DS_ERR_CALIB_INPUT', 'Calibration input %s: %s', 422);

// --- engine (src/engine) -----------------------------------------------------------------------
export const DS_ERR_INFER_BAD_INPUT = defineError('DS_ERR_INFER_BAD_INPUT', 'Invalid inference input: %s', 400);
export const DS_ERR_INFER_OUTPUT_NOT_FINITE = defineError(
  'DS_ERR_INFER_OUTPUT_NOT_FINITE',
  'Output %s element %s is %s, which JSON cannot carry (inputs far outside what the model was trained on?)',
  422,
);
export const DS_ERR_ENGINE_NOT_READY = defineError('DS_ERR_ENGINE_NOT_READY', 'Engine is not ready: %s', 503, {
  retrySoon: true,
  expected5xx: true,
});
export const DS_ERR_ENGINE_CRASHED = defineError(
  'DS_ERR_ENGINE_CRASHED',
  'Engine worker stopped while handling the request: %s',
  503,
  { retrySoon: true },
);
export const DS_ERR_ENGINE_START_FAILED = defineError('DS_ERR_ENGINE_START_FAILED', 'Engine could not start: %s', 500);
export const DS_ERR_PROVIDER_UNAVAILABLE = defineError(
  'DS_ERR_PROVIDER_UNAVAILABLE',
  'Execution provider %s cannot start: %s',
  500,
);
export const DS_ERR_TASK_UNKNOWN_TO_WORKER = defineError(
  'DS_ERR_TASK_UNKNOWN_TO_WORKER',
  'Task %s was never described to the engine worker',
  500,
);
export const DS_ERR_TASK_UNAVAILABLE = defineError('DS_ERR_TASK_UNAVAILABLE', 'Task %s is unavailable: %s', 503, {
  expected5xx: true,
});

// --- delta sources and cache (src/deltas/source, src/deltas/cache) -----------------------------
// Fetch failures are 503: the client cannot fix them, an operator (or time) can. URIs in the
// messages are redacted (no userinfo, no query string: presigned URLs carry credentials there).
export const DS_ERR_SOURCE_BAD_OPTION = defineError(
  'DS_ERR_SOURCE_BAD_OPTION',
  'Delta source option %s is invalid: %s',
  500,
);
export const DS_ERR_SOURCE_BAD_URI = defineError('DS_ERR_SOURCE_BAD_URI', 'Delta URI %s is invalid: %s', 503);
export const DS_ERR_SOURCE_SCHEME_NOT_ALLOWED = defineError(
  'DS_ERR_SOURCE_SCHEME_NOT_ALLOWED',
  'Delta URI %s uses scheme %s, which is not allowed (allowed: %s)',
  503,
);
export const DS_ERR_SOURCE_HOST_NOT_ALLOWED = defineError(
  'DS_ERR_SOURCE_HOST_NOT_ALLOWED',
  'Delta URI %s names host %s, which is not in the allowed hosts (%s)',
  503,
);
export const DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED = defineError(
  'DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED',
  'Delta URI %s connects to %s, a %s address, which is not allowed (set deltas.allowPrivateAddresses, or list the address in deltas.allowedHosts)',
  503,
);
export const DS_ERR_SOURCE_BAD_SHA256 = defineError(
  'DS_ERR_SOURCE_BAD_SHA256',
  'Expected sha256 of delta %s must be 64 hex digits, got %s',
  503,
);
export const DS_ERR_SOURCE_OUTSIDE_ROOT = defineError(
  'DS_ERR_SOURCE_OUTSIDE_ROOT',
  'Delta path %s resolves outside the delta root %s',
  503,
);
export const DS_ERR_SOURCE_FILE_MISSING = defineError(
  'DS_ERR_SOURCE_FILE_MISSING',
  'Delta file %s does not exist: %s',
  503,
);
export const DS_ERR_SOURCE_FILE_UNREADABLE = defineError(
  'DS_ERR_SOURCE_FILE_UNREADABLE',
  'Delta file %s cannot be read: %s',
  503,
);
export const DS_ERR_SOURCE_NOT_FOUND = defineError(
  'DS_ERR_SOURCE_NOT_FOUND',
  'Delta %s was not found: the server answered HTTP %s',
  503,
);
export const DS_ERR_SOURCE_HTTP_STATUS = defineError(
  'DS_ERR_SOURCE_HTTP_STATUS',
  'Fetching delta %s failed: the server answered HTTP %s',
  503,
);
export const DS_ERR_SOURCE_TOO_MANY_REDIRECTS = defineError(
  'DS_ERR_SOURCE_TOO_MANY_REDIRECTS',
  'Fetching delta %s followed more than %s redirects',
  503,
);
export const DS_ERR_SOURCE_TIMEOUT = defineError('DS_ERR_SOURCE_TIMEOUT', 'Fetching delta %s timed out: %s', 503);
export const DS_ERR_SOURCE_CONNECTION = defineError('DS_ERR_SOURCE_CONNECTION', 'Fetching delta %s failed: %s', 503);
export const DS_ERR_SOURCE_TRUNCATED = defineError(
  'DS_ERR_SOURCE_TRUNCATED',
  'Delta %s is truncated: received %s of %s bytes',
  503,
);
export const DS_ERR_SOURCE_TOO_LARGE = defineError(
  'DS_ERR_SOURCE_TOO_LARGE',
  'Delta %s is larger than the limit of %s bytes: %s',
  503,
);
export const DS_ERR_SOURCE_RETRIES_EXHAUSTED = defineError(
  'DS_ERR_SOURCE_RETRIES_EXHAUSTED',
  'Fetching delta %s failed after %s attempts, last error: %s',
  503,
);
export const DS_ERR_SOURCE_CHECKSUM_MISMATCH = defineError(
  'DS_ERR_SOURCE_CHECKSUM_MISMATCH',
  'Delta %s has sha256 %s but %s was expected',
  503,
);
export const DS_ERR_CACHE_BAD_OPTION = defineError(
  'DS_ERR_CACHE_BAD_OPTION',
  'Delta cache option %s is invalid: %s',
  500,
);
export const DS_ERR_CACHE_DELTA_TOO_LARGE = defineError(
  'DS_ERR_CACHE_DELTA_TOO_LARGE',
  'Delta %s takes %s bytes, more than the whole delta cache (%s bytes)',
  507,
);
export const DS_ERR_CACHE_NO_ROOM = defineError(
  'DS_ERR_CACHE_NO_ROOM',
  'Delta %s needs %s bytes but the delta cache cannot free them: %s',
  503,
);
export const DS_ERR_CACHE_PIN_NO_ROOM = defineError('DS_ERR_CACHE_PIN_NO_ROOM', 'Cannot pin delta %s: %s', 507);
export const DS_ERR_CACHE_LOAD_CANCELLED = defineError(
  'DS_ERR_CACHE_LOAD_CANCELLED',
  'Loading delta %s was cancelled: %s',
  503,
);

// --- scheduler (src/scheduler) -----------------------------------------------------------------
export const DS_ERR_SCHEDULER_BAD_OPTION = defineError(
  'DS_ERR_SCHEDULER_BAD_OPTION',
  'Scheduler option %s is invalid: %s',
  500,
);
/** Carries `retryAfterSeconds` (see src/scheduler/scheduler.ts) for the HTTP `Retry-After` header. */
export const DS_ERR_OVERLOADED = defineError('DS_ERR_OVERLOADED', 'Server is overloaded: %s; retry after %s s', 503, {
  expected5xx: true,
});
export const DS_ERR_DEADLINE_EXCEEDED = defineError(
  'DS_ERR_DEADLINE_EXCEEDED',
  'Request for task %s passed its deadline after waiting %s ms %s',
  504,
  { expected5xx: true },
);
export const DS_ERR_SHUTTING_DOWN = defineError('DS_ERR_SHUTTING_DOWN', 'Server is shutting down: %s', 503, {
  retrySoon: true,
  expected5xx: true,
});
export const DS_ERR_SCHEDULER_BAD_BATCH_RESULT = defineError(
  'DS_ERR_SCHEDULER_BAD_BATCH_RESULT',
  'runBatch for task %s returned %s results for %s requests',
  500,
);

// --- telemetry (src/telemetry) -----------------------------------------------------------------
export const DS_ERR_TELEMETRY_BAD_OPTION = defineError(
  'DS_ERR_TELEMETRY_BAD_OPTION',
  'Telemetry option %s is invalid: %s',
  500,
);

// --- HTTP, tenants, registry (src/http, src/tenant, src/registry) ------------------------------
// Start-up problems are 500: they stop the process before any client exists. Client mistakes are
// 4xx; a task a tenant may not use answers DS_ERR_MODEL_NOT_FOUND exactly like a missing one.
export const DS_ERR_LISTEN_FAILED = defineError('DS_ERR_LISTEN_FAILED', 'Cannot listen on %s: %s', 500);
export const DS_ERR_CONFIG_INVALID = defineError('DS_ERR_CONFIG_INVALID', 'Invalid configuration (%s): %s: %s', 500);
export const DS_ERR_MANIFEST_INVALID = defineError(
  'DS_ERR_MANIFEST_INVALID',
  'Model manifest %s is invalid: %s: %s',
  500,
);
export const DS_ERR_REGISTRY_STATE_INVALID = defineError(
  'DS_ERR_REGISTRY_STATE_INVALID',
  'Registry state file %s is invalid: %s',
  500,
);
export const DS_ERR_REGISTRY_PERSIST_FAILED = defineError(
  'DS_ERR_REGISTRY_PERSIST_FAILED',
  'Registry change was not saved to %s (nothing changed): %s',
  500,
);
export const DS_ERR_REGISTRY_LOCKED = defineError(
  'DS_ERR_REGISTRY_LOCKED',
  'Registry change was not saved (nothing changed): the state file lock %s stayed held by another replica for %s ms; retry',
  503,
);
export const DS_ERR_TASK_NOT_REGISTERED = defineError('DS_ERR_TASK_NOT_REGISTERED', 'Task %s is not registered', 404);
export const DS_ERR_TASK_EXISTS = defineError(
  'DS_ERR_TASK_EXISTS',
  'Task %s is already registered (use PUT /admin/tasks/%s to add a version)',
  409,
);
export const DS_ERR_TASK_VERSION_CONFLICT = defineError(
  'DS_ERR_TASK_VERSION_CONFLICT',
  'Task %s version %s is already registered with a different delta; versions are immutable, register a new version',
  409,
);
export const DS_ERR_TASK_REJECTED = defineError('DS_ERR_TASK_REJECTED', 'Task %s was not registered: %s', 422);
export const DS_ERR_ADMIN_CHANGE_TIMEOUT = defineError(
  'DS_ERR_ADMIN_CHANGE_TIMEOUT',
  'Change to task %s did not finish within %s ms; nothing was changed (retry it, or raise timeouts.adminChangeTimeoutMs)',
  504,
);
export const DS_ERR_BASE_RESERVED = defineError(
  'DS_ERR_BASE_RESERVED',
  'The name "base" is reserved for the base model: %s',
  400,
);
export const DS_ERR_UNAUTHENTICATED = defineError('DS_ERR_UNAUTHENTICATED', 'Authentication failed: %s', 401);
export const DS_ERR_ADMIN_REQUIRED = defineError('DS_ERR_ADMIN_REQUIRED', 'Route %s requires the admin key', 403);
export const DS_ERR_MODEL_NOT_FOUND = defineError('DS_ERR_MODEL_NOT_FOUND', 'Model %s not found', 404);
export const DS_ERR_ROUTE_NOT_FOUND = defineError('DS_ERR_ROUTE_NOT_FOUND', 'Route %s %s not found', 404);
/** Carries `retryAfterSeconds` for the HTTP `Retry-After` header. */
export const DS_ERR_RATE_LIMITED = defineError(
  'DS_ERR_RATE_LIMITED',
  'Tenant %s exceeded its rate limit (%s); retry after %s s',
  429,
);
/** Carries `retryAfterSeconds` for the HTTP `Retry-After` header. */
export const DS_ERR_CONCURRENCY_LIMITED = defineError(
  'DS_ERR_CONCURRENCY_LIMITED',
  'Tenant %s already has %s requests in flight, its limit; retry after %s s',
  429,
);
export const DS_ERR_BAD_TIMEOUT = defineError(
  'DS_ERR_BAD_TIMEOUT',
  'Request timeout %s is invalid: expected a positive integer of milliseconds, got %s',
  400,
);
export const DS_ERR_IMAGE_INVALID = defineError('DS_ERR_IMAGE_INVALID', 'Image is invalid: %s', 400);
export const DS_ERR_NOT_IMAGE_MODEL = defineError('DS_ERR_NOT_IMAGE_MODEL', 'Model %s cannot classify images: %s', 400);
export const DS_ERR_REQUEST_INVALID = defineError('DS_ERR_REQUEST_INVALID', 'Request is invalid: %s', 400);
export const DS_ERR_TOO_MANY_ROWS = defineError(
  'DS_ERR_TOO_MANY_ROWS',
  'Input %s has %s rows, more than the %s rows a request may carry (http.maxRowsPerRequest); send them in several requests',
  413,
);
export const DS_ERR_BODY_TIMEOUT = defineError(
  'DS_ERR_BODY_TIMEOUT',
  'Request body did not arrive within %s ms (http.bodyTimeoutMs); the connection is closed',
  408,
);
/** Answered by the HTTP server itself, before fastify sees a request: see http/connection-limits.ts. */
export const DS_ERR_REQUEST_TIMEOUT = defineError(
  'DS_ERR_REQUEST_TIMEOUT',
  'Request did not arrive in time (http.headersTimeoutMs, http.bodyTimeoutMs); the connection is closed',
  408,
);
export const DS_ERR_BAD_HTTP = defineError('DS_ERR_BAD_HTTP', 'Malformed HTTP request: %s', 400);
export const DS_ERR_HEADERS_TOO_LARGE = defineError(
  'DS_ERR_HEADERS_TOO_LARGE',
  'Request headers are larger than the server accepts',
  431,
);
export const DS_ERR_INTERNAL = defineError('DS_ERR_INTERNAL', 'Internal server error', 500);
