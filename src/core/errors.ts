/**
 * Every error the project raises, in one place, each with a stable code and the HTTP status a
 * client should see if it ever reaches the API. Created with `@fastify/error` so the HTTP
 * layer can take `statusCode` straight from the error (fastify's own habit, see its
 * `lib/errors.js`). `test/core/errors.test.ts` keeps this file and `docs/errors.md` in sync.
 *
 * Each section belongs to one part of the data path; add new errors to the section of the
 * module that throws them.
 */
import createError from '@fastify/error';

// --- configuration and CLI --------------------------------------------------------------------
export const DS_ERR_CLI_USAGE = createError('DS_ERR_CLI_USAGE', '%s', 400);
export const DS_ERR_FILE_READ = createError('DS_ERR_FILE_READ', 'Cannot read %s: %s', 500);
export const DS_ERR_DATASET_INVALID = createError('DS_ERR_DATASET_INVALID', 'Sample set %s is invalid: %s', 422);

// --- safetensors container (src/deltas/format/safetensors.ts) ---------------------------------
export const DS_ERR_ST_TRUNCATED = createError('DS_ERR_ST_TRUNCATED', 'Safetensors file is truncated: %s', 422);
export const DS_ERR_ST_BAD_HEADER = createError('DS_ERR_ST_BAD_HEADER', 'Safetensors header is invalid: %s', 422);
export const DS_ERR_ST_BAD_OFFSETS = createError(
  'DS_ERR_ST_BAD_OFFSETS',
  'Safetensors data offsets are invalid: %s',
  422,
);
export const DS_ERR_ST_UNKNOWN_DTYPE = createError(
  'DS_ERR_ST_UNKNOWN_DTYPE',
  'Safetensors tensor %s has unsupported dtype %s',
  422,
);

// --- delta file (src/deltas/format) ------------------------------------------------------------
export const DS_ERR_DELTA_BAD_METADATA = createError('DS_ERR_DELTA_BAD_METADATA', 'Delta metadata is invalid: %s', 422);
export const DS_ERR_DELTA_BAD_TENSOR = createError('DS_ERR_DELTA_BAD_TENSOR', 'Delta tensor %s is invalid: %s', 422);
export const DS_ERR_DELTA_INDEX_RANGE = createError(
  'DS_ERR_DELTA_INDEX_RANGE',
  'Delta tensor %s has an index out of range: %s',
  422,
);
export const DS_ERR_DELTA_INDEX_ORDER = createError(
  'DS_ERR_DELTA_INDEX_ORDER',
  'Delta tensor %s has indices that are not strictly increasing: %s',
  422,
);
export const DS_ERR_DELTA_COUNT_MISMATCH = createError(
  'DS_ERR_DELTA_COUNT_MISMATCH',
  'Delta tensor %s has %s indices but %s values',
  422,
);
export const DS_ERR_DELTA_UNKNOWN_TENSOR = createError(
  'DS_ERR_DELTA_UNKNOWN_TENSOR',
  'Delta tensor %s is not a weight of the base model',
  422,
);
export const DS_ERR_DELTA_SHAPE_MISMATCH = createError(
  'DS_ERR_DELTA_SHAPE_MISMATCH',
  'Delta tensor %s has shape %s but the base weight has shape %s',
  422,
);
export const DS_ERR_DELTA_NON_FINITE = createError(
  'DS_ERR_DELTA_NON_FINITE',
  'Delta tensor %s holds a non-finite value (NaN or Inf) at position %s',
  422,
);
export const DS_ERR_DELTA_HEADER_LIMIT = createError(
  'DS_ERR_DELTA_HEADER_LIMIT',
  'Delta header exceeds a structural limit: %s',
  422,
);
export const DS_ERR_DELTA_BASE_MISMATCH = createError(
  'DS_ERR_DELTA_BASE_MISMATCH',
  'Delta was made for base %s but the base in use is %s',
  422,
);
export const DS_ERR_DELTA_BAD_STREAM = createError(
  'DS_ERR_DELTA_BAD_STREAM',
  'Delta tensor %s has a malformed index stream: %s',
  422,
);
export const DS_ERR_DELTA_BAD_QUANT = createError(
  'DS_ERR_DELTA_BAD_QUANT',
  'Delta tensor %s has malformed quantized values: %s',
  422,
);

// --- ONNX models (src/onnx) --------------------------------------------------------------------
export const DS_ERR_ONNX_INVALID = createError('DS_ERR_ONNX_INVALID', 'ONNX model %s is invalid: %s', 422);
export const DS_ERR_ONNX_INCOMPATIBLE = createError('DS_ERR_ONNX_INCOMPATIBLE', 'ONNX models do not match: %s', 422);

// --- compression (src/compress) ----------------------------------------------------------------
export const DS_ERR_STATE_DICT = createError('DS_ERR_STATE_DICT', 'State dict %s: %s', 422);
export const DS_ERR_NAME_MAP = createError('DS_ERR_NAME_MAP', 'State-dict name map: %s', 422);
export const DS_ERR_CALIB_INPUT = createError('DS_ERR_CALIB_INPUT', 'Calibration input %s: %s', 422);

// --- engine (src/engine) -----------------------------------------------------------------------
export const DS_ERR_INFER_BAD_INPUT = createError('DS_ERR_INFER_BAD_INPUT', 'Invalid inference input: %s', 400);
export const DS_ERR_INFER_OUTPUT_NOT_FINITE = createError(
  'DS_ERR_INFER_OUTPUT_NOT_FINITE',
  'Output %s element %s is %s, which JSON cannot carry (inputs far outside what the model was trained on?)',
  422,
);
export const DS_ERR_ENGINE_NOT_READY = createError('DS_ERR_ENGINE_NOT_READY', 'Engine is not ready: %s', 503);
export const DS_ERR_ENGINE_CRASHED = createError(
  'DS_ERR_ENGINE_CRASHED',
  'Engine worker stopped while handling the request: %s',
  503,
);
export const DS_ERR_ENGINE_START_FAILED = createError('DS_ERR_ENGINE_START_FAILED', 'Engine could not start: %s', 500);
export const DS_ERR_PROVIDER_UNAVAILABLE = createError(
  'DS_ERR_PROVIDER_UNAVAILABLE',
  'Execution provider %s cannot start: %s',
  500,
);
export const DS_ERR_TASK_UNKNOWN_TO_WORKER = createError(
  'DS_ERR_TASK_UNKNOWN_TO_WORKER',
  'Task %s was never described to the engine worker',
  500,
);
export const DS_ERR_TASK_UNAVAILABLE = createError('DS_ERR_TASK_UNAVAILABLE', 'Task %s is unavailable: %s', 503);
/** The worker refused a batch whose delta was not cached; the engine loads it and queues the batch's requests again. */
export const DS_ERR_DELTA_NOT_RESIDENT = createError(
  'DS_ERR_DELTA_NOT_RESIDENT',
  'Delta %s was not in the cache when its batch reached the engine worker',
  503,
);

// --- delta sources and cache (src/deltas/source, src/deltas/cache) -----------------------------
// Fetch failures are 503: the client cannot fix them, an operator (or time) can. URIs in the
// messages are redacted (no userinfo, no query string: presigned URLs carry credentials there).
export const DS_ERR_SOURCE_BAD_OPTION = createError(
  'DS_ERR_SOURCE_BAD_OPTION',
  'Delta source option %s is invalid: %s',
  500,
);
export const DS_ERR_SOURCE_BAD_URI = createError('DS_ERR_SOURCE_BAD_URI', 'Delta URI %s is invalid: %s', 503);
export const DS_ERR_SOURCE_SCHEME_NOT_ALLOWED = createError(
  'DS_ERR_SOURCE_SCHEME_NOT_ALLOWED',
  'Delta URI %s uses scheme %s, which is not allowed (allowed: %s)',
  503,
);
export const DS_ERR_SOURCE_HOST_NOT_ALLOWED = createError(
  'DS_ERR_SOURCE_HOST_NOT_ALLOWED',
  'Delta URI %s names host %s, which is not in the allowed hosts (%s)',
  503,
);
export const DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED = createError(
  'DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED',
  'Delta URI %s connects to %s, a %s address, which is not allowed (set deltas.allowPrivateAddresses, or list the address in deltas.allowedHosts)',
  503,
);
export const DS_ERR_SOURCE_BAD_SHA256 = createError(
  'DS_ERR_SOURCE_BAD_SHA256',
  'Expected sha256 of delta %s must be 64 hex digits, got %s',
  503,
);
export const DS_ERR_SOURCE_OUTSIDE_ROOT = createError(
  'DS_ERR_SOURCE_OUTSIDE_ROOT',
  'Delta path %s resolves outside the delta root %s',
  503,
);
export const DS_ERR_SOURCE_FILE_MISSING = createError(
  'DS_ERR_SOURCE_FILE_MISSING',
  'Delta file %s does not exist: %s',
  503,
);
export const DS_ERR_SOURCE_FILE_UNREADABLE = createError(
  'DS_ERR_SOURCE_FILE_UNREADABLE',
  'Delta file %s cannot be read: %s',
  503,
);
export const DS_ERR_SOURCE_NOT_FOUND = createError(
  'DS_ERR_SOURCE_NOT_FOUND',
  'Delta %s was not found: the server answered HTTP %s',
  503,
);
export const DS_ERR_SOURCE_HTTP_STATUS = createError(
  'DS_ERR_SOURCE_HTTP_STATUS',
  'Fetching delta %s failed: the server answered HTTP %s',
  503,
);
export const DS_ERR_SOURCE_TOO_MANY_REDIRECTS = createError(
  'DS_ERR_SOURCE_TOO_MANY_REDIRECTS',
  'Fetching delta %s followed more than %s redirects',
  503,
);
export const DS_ERR_SOURCE_TIMEOUT = createError('DS_ERR_SOURCE_TIMEOUT', 'Fetching delta %s timed out: %s', 503);
export const DS_ERR_SOURCE_CONNECTION = createError('DS_ERR_SOURCE_CONNECTION', 'Fetching delta %s failed: %s', 503);
export const DS_ERR_SOURCE_TRUNCATED = createError(
  'DS_ERR_SOURCE_TRUNCATED',
  'Delta %s is truncated: received %s of %s bytes',
  503,
);
export const DS_ERR_SOURCE_TOO_LARGE = createError(
  'DS_ERR_SOURCE_TOO_LARGE',
  'Delta %s is larger than the limit of %s bytes: %s',
  503,
);
export const DS_ERR_SOURCE_RETRIES_EXHAUSTED = createError(
  'DS_ERR_SOURCE_RETRIES_EXHAUSTED',
  'Fetching delta %s failed after %s attempts, last error: %s',
  503,
);
export const DS_ERR_SOURCE_CHECKSUM_MISMATCH = createError(
  'DS_ERR_SOURCE_CHECKSUM_MISMATCH',
  'Delta %s has sha256 %s but %s was expected',
  503,
);
export const DS_ERR_CACHE_BAD_OPTION = createError(
  'DS_ERR_CACHE_BAD_OPTION',
  'Delta cache option %s is invalid: %s',
  500,
);
export const DS_ERR_CACHE_DELTA_TOO_LARGE = createError(
  'DS_ERR_CACHE_DELTA_TOO_LARGE',
  'Delta %s takes %s bytes, more than the whole delta cache (%s bytes)',
  507,
);
export const DS_ERR_CACHE_NO_ROOM = createError(
  'DS_ERR_CACHE_NO_ROOM',
  'Delta %s needs %s bytes but the delta cache cannot free them: %s',
  503,
);
export const DS_ERR_CACHE_PIN_NO_ROOM = createError('DS_ERR_CACHE_PIN_NO_ROOM', 'Cannot pin delta %s: %s', 507);
export const DS_ERR_CACHE_LOAD_CANCELLED = createError(
  'DS_ERR_CACHE_LOAD_CANCELLED',
  'Loading delta %s was cancelled: %s',
  503,
);

// --- scheduler (src/scheduler) -----------------------------------------------------------------
export const DS_ERR_SCHEDULER_BAD_OPTION = createError(
  'DS_ERR_SCHEDULER_BAD_OPTION',
  'Scheduler option %s is invalid: %s',
  500,
);
/** Carries `retryAfterSeconds` (see src/scheduler/scheduler.ts) for the HTTP `Retry-After` header. */
export const DS_ERR_OVERLOADED = createError('DS_ERR_OVERLOADED', 'Server is overloaded: %s; retry after %s s', 503);
export const DS_ERR_DEADLINE_EXCEEDED = createError(
  'DS_ERR_DEADLINE_EXCEEDED',
  'Request for task %s passed its deadline after waiting %s ms %s',
  504,
);
export const DS_ERR_SHUTTING_DOWN = createError('DS_ERR_SHUTTING_DOWN', 'Server is shutting down: %s', 503);
export const DS_ERR_SCHEDULER_BAD_BATCH_RESULT = createError(
  'DS_ERR_SCHEDULER_BAD_BATCH_RESULT',
  'runBatch for task %s returned %s results for %s requests',
  500,
);

// --- telemetry (src/telemetry) -----------------------------------------------------------------
export const DS_ERR_TELEMETRY_BAD_OPTION = createError(
  'DS_ERR_TELEMETRY_BAD_OPTION',
  'Telemetry option %s is invalid: %s',
  500,
);

// --- HTTP, tenants, registry (src/http, src/tenant, src/registry) ------------------------------
// Start-up problems are 500: they stop the process before any client exists. Client mistakes are
// 4xx; a task a tenant may not use answers DS_ERR_MODEL_NOT_FOUND exactly like a missing one.
export const DS_ERR_LISTEN_FAILED = createError('DS_ERR_LISTEN_FAILED', 'Cannot listen on %s: %s', 500);
export const DS_ERR_CONFIG_INVALID = createError('DS_ERR_CONFIG_INVALID', 'Invalid configuration (%s): %s: %s', 500);
export const DS_ERR_MANIFEST_INVALID = createError(
  'DS_ERR_MANIFEST_INVALID',
  'Model manifest %s is invalid: %s: %s',
  500,
);
export const DS_ERR_REGISTRY_STATE_INVALID = createError(
  'DS_ERR_REGISTRY_STATE_INVALID',
  'Registry state file %s is invalid: %s',
  500,
);
export const DS_ERR_REGISTRY_PERSIST_FAILED = createError(
  'DS_ERR_REGISTRY_PERSIST_FAILED',
  'Registry change was not saved to %s (nothing changed): %s',
  500,
);
export const DS_ERR_REGISTRY_LOCKED = createError(
  'DS_ERR_REGISTRY_LOCKED',
  'Registry change was not saved (nothing changed): the state file lock %s stayed held by another replica for %s ms; retry',
  503,
);
export const DS_ERR_TASK_NOT_REGISTERED = createError('DS_ERR_TASK_NOT_REGISTERED', 'Task %s is not registered', 404);
export const DS_ERR_TASK_EXISTS = createError(
  'DS_ERR_TASK_EXISTS',
  'Task %s is already registered (use PUT /admin/tasks/%s to add a version)',
  409,
);
export const DS_ERR_TASK_VERSION_CONFLICT = createError(
  'DS_ERR_TASK_VERSION_CONFLICT',
  'Task %s version %s is already registered with a different delta; versions are immutable, register a new version',
  409,
);
export const DS_ERR_TASK_REJECTED = createError('DS_ERR_TASK_REJECTED', 'Task %s was not registered: %s', 422);
export const DS_ERR_ADMIN_CHANGE_TIMEOUT = createError(
  'DS_ERR_ADMIN_CHANGE_TIMEOUT',
  'Change to task %s did not finish within %s ms; nothing was changed (retry it, or raise timeouts.adminChangeTimeoutMs)',
  504,
);
export const DS_ERR_BASE_RESERVED = createError(
  'DS_ERR_BASE_RESERVED',
  'The name "base" is reserved for the base model: %s',
  400,
);
export const DS_ERR_UNAUTHENTICATED = createError('DS_ERR_UNAUTHENTICATED', 'Authentication failed: %s', 401);
export const DS_ERR_ADMIN_REQUIRED = createError('DS_ERR_ADMIN_REQUIRED', 'Route %s requires the admin key', 403);
export const DS_ERR_MODEL_NOT_FOUND = createError('DS_ERR_MODEL_NOT_FOUND', 'Model %s not found', 404);
export const DS_ERR_ROUTE_NOT_FOUND = createError('DS_ERR_ROUTE_NOT_FOUND', 'Route %s %s not found', 404);
/** Carries `retryAfterSeconds` for the HTTP `Retry-After` header. */
export const DS_ERR_RATE_LIMITED = createError(
  'DS_ERR_RATE_LIMITED',
  'Tenant %s exceeded its rate limit (%s); retry after %s s',
  429,
);
/** Carries `retryAfterSeconds` for the HTTP `Retry-After` header. */
export const DS_ERR_CONCURRENCY_LIMITED = createError(
  'DS_ERR_CONCURRENCY_LIMITED',
  'Tenant %s already has %s requests in flight, its limit; retry after %s s',
  429,
);
export const DS_ERR_BAD_TIMEOUT = createError(
  'DS_ERR_BAD_TIMEOUT',
  'Request timeout %s is invalid: expected a positive integer of milliseconds, got %s',
  400,
);
export const DS_ERR_IMAGE_INVALID = createError('DS_ERR_IMAGE_INVALID', 'Image is invalid: %s', 400);
export const DS_ERR_NOT_IMAGE_MODEL = createError('DS_ERR_NOT_IMAGE_MODEL', 'Model %s cannot classify images: %s', 400);
export const DS_ERR_REQUEST_INVALID = createError('DS_ERR_REQUEST_INVALID', 'Request is invalid: %s', 400);
export const DS_ERR_TOO_MANY_ROWS = createError(
  'DS_ERR_TOO_MANY_ROWS',
  'Input %s has %s rows, more than the %s rows a request may carry (http.maxRowsPerRequest); send them in several requests',
  413,
);
export const DS_ERR_BODY_TIMEOUT = createError(
  'DS_ERR_BODY_TIMEOUT',
  'Request body did not arrive within %s ms (http.bodyTimeoutMs); the connection is closed',
  408,
);
/** Answered by the HTTP server itself, before fastify sees a request: see http/connection-limits.ts. */
export const DS_ERR_REQUEST_TIMEOUT = createError(
  'DS_ERR_REQUEST_TIMEOUT',
  'Request did not arrive in time (http.headersTimeoutMs, http.bodyTimeoutMs); the connection is closed',
  408,
);
export const DS_ERR_BAD_HTTP = createError('DS_ERR_BAD_HTTP', 'Malformed HTTP request: %s', 400);
export const DS_ERR_HEADERS_TOO_LARGE = createError(
  'DS_ERR_HEADERS_TOO_LARGE',
  'Request headers are larger than the server accepts',
  431,
);
export const DS_ERR_INTERNAL = createError('DS_ERR_INTERNAL', 'Internal server error', 500);
