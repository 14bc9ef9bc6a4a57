/**
 * Defaults and validation of the source options, done once when a source is built (undici's
 * habit): a bad option fails at startup with its name, not on the first cold request.
 */
import { DS_ERR_SOURCE_BAD_OPTION } from '../../core/errors.js';
import { integerOption } from '../../core/options.js';
import type { HttpDeltaSourceOptions } from './http-source.js';
import { hostPatternProblem } from './uri.js';

export const DEFAULT_MAX_DELTA_BYTES = 1024 ** 3;

function checkInteger(name: string, value: unknown, min: number, max?: number): number {
  return integerOption(DS_ERR_SOURCE_BAD_OPTION, name, value, min, max);
}

export type CheckedHttpOptions = Required<Omit<HttpDeltaSourceOptions, 'lookup' | 'headers'>> &
  Pick<HttpDeltaSourceOptions, 'lookup' | 'headers'>;

export function checkHttpOptions(options: HttpDeltaSourceOptions): CheckedHttpOptions {
  // Checked as unknown: the options may come from JavaScript or parsed configuration.
  const allowedHosts: unknown = options.allowedHosts ?? [];
  if (!isStringArray(allowedHosts)) {
    throw new DS_ERR_SOURCE_BAD_OPTION('allowedHosts', 'expected an array of host names');
  }
  for (const host of allowedHosts) {
    const problem = hostPatternProblem(host);
    if (problem !== null) throw new DS_ERR_SOURCE_BAD_OPTION('allowedHosts', problem);
  }
  const allowedSchemes = options.allowedSchemes ?? ['https'];
  for (const scheme of allowedSchemes) {
    if (scheme !== 'http' && scheme !== 'https') {
      throw new DS_ERR_SOURCE_BAD_OPTION('allowedSchemes', `"${String(scheme)}" is not http or https`);
    }
  }
  if (options.lookup !== undefined && typeof options.lookup !== 'function') {
    throw new DS_ERR_SOURCE_BAD_OPTION('lookup', 'expected a function like dns.lookup');
  }
  if (options.allowPrivateAddresses !== undefined && typeof options.allowPrivateAddresses !== 'boolean') {
    throw new DS_ERR_SOURCE_BAD_OPTION(
      'allowPrivateAddresses',
      `expected true or false, got ${String(options.allowPrivateAddresses)}`,
    );
  }
  const checked: CheckedHttpOptions = {
    allowedHosts,
    allowPrivateAddresses: options.allowPrivateAddresses ?? false,
    allowedSchemes,
    maxBytes: checkInteger('maxBytes', options.maxBytes ?? DEFAULT_MAX_DELTA_BYTES, 1),
    connectTimeoutMs: checkInteger('connectTimeoutMs', options.connectTimeoutMs ?? 10_000, 1),
    headersTimeoutMs: checkInteger('headersTimeoutMs', options.headersTimeoutMs ?? 10_000, 1),
    bodyTimeoutMs: checkInteger('bodyTimeoutMs', options.bodyTimeoutMs ?? 10_000, 1),
    fetchTimeoutMs: checkInteger('fetchTimeoutMs', options.fetchTimeoutMs ?? 60_000, 1),
    minBytesPerSecond: checkInteger('minBytesPerSecond', options.minBytesPerSecond ?? 16 * 1024, 0),
    rateGraceMs: checkInteger('rateGraceMs', options.rateGraceMs ?? 5_000, 0),
    retries: checkInteger('retries', options.retries ?? 2, 0, 20),
    retryBaseDelayMs: checkInteger('retryBaseDelayMs', options.retryBaseDelayMs ?? 200, 0),
    retryMaxDelayMs: checkInteger('retryMaxDelayMs', options.retryMaxDelayMs ?? 5_000, 0),
    maxRedirects: checkInteger('maxRedirects', options.maxRedirects ?? 3, 0, 20),
    seed: checkInteger('seed', options.seed ?? 0, 0, 0xffffffff),
  };
  if (options.headers !== undefined) checked.headers = options.headers;
  if (options.lookup !== undefined) checked.lookup = options.lookup;
  return checked;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
