/**
 * A request's time budget: `parameters.timeout_ms` in the body wins over the
 * `x-request-timeout-ms` header; without either, `inferTimeoutMs` from the config. Anything
 * above `maxInferTimeoutMs` is capped (not refused: a client asking for more than the operator
 * allows still gets the most it can have). Malformed values are a 400.
 */
import { DS_ERR_BAD_TIMEOUT } from '../core/errors.js';
import type { GatewayLimits } from './gateway-context.js';

export const TIMEOUT_HEADER = 'x-request-timeout-ms';

export function timeoutMsOf(
  bodyValue: unknown,
  headerValue: string | string[] | undefined,
  limits: GatewayLimits,
): number {
  let chosen: number | null = null;
  if (bodyValue !== undefined && bodyValue !== null) chosen = parseTimeout('parameters.timeout_ms', bodyValue);
  else if (headerValue !== undefined)
    chosen = parseTimeout(TIMEOUT_HEADER, Array.isArray(headerValue) ? headerValue[0] : headerValue);
  return Math.min(chosen ?? limits.inferTimeoutMs, limits.maxInferTimeoutMs);
}

function parseTimeout(where: string, value: unknown): number {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0)
    throw new DS_ERR_BAD_TIMEOUT(where, JSON.stringify(value));
  return n;
}
