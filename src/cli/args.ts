/** Small helpers over node:util parseArgs that turn bad arguments into one clear usage error. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DS_ERR_CLI_USAGE } from '../core/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs(argv: string[], options: Options, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  } catch (error) {
    throw new DS_ERR_CLI_USAGE(`${(error as Error).message}\n${usage}`);
  }
}

export function requireString(value: unknown, flag: string, usage: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new DS_ERR_CLI_USAGE(`missing --${flag}\n${usage}`);
  return value;
}

export function numberOption(
  value: unknown,
  flag: string,
  fallback: number,
  check: (n: number) => boolean,
  expectation: string,
): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(parsed) || !check(parsed)) {
    throw new DS_ERR_CLI_USAGE(`--${flag} must be ${expectation}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

export function listOption(value: unknown): string[] {
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  return values
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}

/** Progress on stderr, so stdout stays machine-readable. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}
