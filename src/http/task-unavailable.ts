/**
 * What a tenant is told when its task's delta cannot be loaded. The engine's error names the
 * delta's URI or file path and the storage's answer: useful to an operator (logs, the admin
 * repository index), an internal detail to a tenant. Tenants get the task, the failure's code
 * and a Retry-After: a delta store that recovers needs no restart, the next request loads again.
 */
import { DS_ERR_TASK_UNAVAILABLE } from '../core/errors.js';
import { withRetryAfter } from '../core/retry-after.js';

/** Seconds a tenant is told to wait before asking for an unavailable task again. */
export const TASK_UNAVAILABLE_RETRY_AFTER_S = 5;

/** The reason a tenant sees in the repository index for an UNAVAILABLE task. */
export const TENANT_UNAVAILABLE_REASON =
  'its last delta load failed (the detail is in the gateway logs and GET /admin/tasks)';

/** `failureCode`: the code of the load failure (e.g. DS_ERR_SOURCE_TIMEOUT), when known. */
export function taskUnavailableForTenant(key: string, failureCode?: string): Error {
  const why = failureCode ? `its delta could not be loaded (${failureCode})` : 'its last delta load failed';
  const error = new DS_ERR_TASK_UNAVAILABLE(key, `${why}; retry after ${TASK_UNAVAILABLE_RETRY_AFTER_S} s`);
  return withRetryAfter(error, TASK_UNAVAILABLE_RETRY_AFTER_S);
}
