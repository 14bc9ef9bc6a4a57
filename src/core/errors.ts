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

// --- safetensors container (src/deltas/format/safetensors.ts) ---------------------------------
export const DS_ERR_ST_TRUNCATED = createError('DS_ERR_ST_TRUNCATED', 'Safetensors file is truncated: %s', 422);
export const DS_ERR_ST_BAD_HEADER = createError('DS_ERR_ST_BAD_HEADER', 'Safetensors header is invalid: %s', 422);
export const DS_ERR_ST_BAD_OFFSETS = createError('DS_ERR_ST_BAD_OFFSETS', 'Safetensors data offsets are invalid: %s', 422);
export const DS_ERR_ST_UNKNOWN_DTYPE = createError('DS_ERR_ST_UNKNOWN_DTYPE', 'Safetensors tensor %s has unsupported dtype %s', 422);

// --- delta file (src/deltas/format) ------------------------------------------------------------
export const DS_ERR_DELTA_BAD_METADATA = createError('DS_ERR_DELTA_BAD_METADATA', 'Delta metadata is invalid: %s', 422);
export const DS_ERR_DELTA_BAD_TENSOR = createError('DS_ERR_DELTA_BAD_TENSOR', 'Delta tensor %s is invalid: %s', 422);
export const DS_ERR_DELTA_INDEX_RANGE = createError('DS_ERR_DELTA_INDEX_RANGE', 'Delta tensor %s has an index out of range: %s', 422);
export const DS_ERR_DELTA_INDEX_ORDER = createError('DS_ERR_DELTA_INDEX_ORDER', 'Delta tensor %s has indices that are not strictly increasing: %s', 422);
export const DS_ERR_DELTA_COUNT_MISMATCH = createError('DS_ERR_DELTA_COUNT_MISMATCH', 'Delta tensor %s has %s indices but %s values', 422);
export const DS_ERR_DELTA_UNKNOWN_TENSOR = createError('DS_ERR_DELTA_UNKNOWN_TENSOR', 'Delta tensor %s is not a weight of the base model', 422);
export const DS_ERR_DELTA_SHAPE_MISMATCH = createError('DS_ERR_DELTA_SHAPE_MISMATCH', 'Delta tensor %s has shape %s but the base weight has shape %s', 422);
export const DS_ERR_DELTA_NON_FINITE = createError('DS_ERR_DELTA_NON_FINITE', 'Delta tensor %s holds a non-finite value (NaN or Inf) at position %s', 422);
export const DS_ERR_DELTA_BASE_MISMATCH = createError('DS_ERR_DELTA_BASE_MISMATCH', 'Delta was made for base %s but the base in use is %s', 422);

// --- ONNX models (src/onnx) --------------------------------------------------------------------
export const DS_ERR_ONNX_INVALID = createError('DS_ERR_ONNX_INVALID', 'ONNX model %s is invalid: %s', 422);
export const DS_ERR_ONNX_INCOMPATIBLE = createError('DS_ERR_ONNX_INCOMPATIBLE', 'ONNX models do not match: %s', 422);

// --- compression (src/compress) ----------------------------------------------------------------

// --- engine (src/engine) -----------------------------------------------------------------------

// --- delta sources and cache (src/deltas/source, src/deltas/cache) -----------------------------

// --- scheduler (src/scheduler) -----------------------------------------------------------------

// --- HTTP, tenants, registry (src/http, src/tenant, src/registry) ------------------------------
