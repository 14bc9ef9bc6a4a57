/**
 * Debian's `prometheus` package (Prometheus and promtool 2.42) for the operations tests. Without
 * it the tests skip with a loud reason, unless DELTASERVE_TEST_PROMETHEUS=required (CI sets it):
 * then a missing binary fails them, so CI can never pass without running them.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const PROMETHEUS_REQUIRED = process.env.DELTASERVE_TEST_PROMETHEUS === 'required';

/** The binary's path on PATH, or null. */
export function findBinary(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not there, or not executable: try the next folder
    }
  }
  return null;
}

/**
 * `false` when the binaries are here (or required: the test then fails on the missing one),
 * otherwise the skip reason, also printed to stderr so nobody mistakes a skip for a pass.
 */
export function skipWithoutPrometheus(...binaries: ('prometheus' | 'promtool')[]): string | false {
  const missing = binaries.filter((b) => findBinary(b) === null);
  if (missing.length === 0 || PROMETHEUS_REQUIRED) return false;
  const reason =
    `SKIPPED, NOT TESTED: ${missing.join(' and ')} not installed (apt-get install prometheus); ` +
    'set DELTASERVE_TEST_PROMETHEUS=required to make this a failure';
  console.error(`\n*** ${reason} ***\n`);
  return reason;
}

/** The binary's path; throws (failing the test) when it is missing. */
export function requireBinary(name: 'prometheus' | 'promtool'): string {
  const path = findBinary(name);
  if (path === null)
    throw new Error(`${name} is not installed and DELTASERVE_TEST_PROMETHEUS=required: apt-get install prometheus`);
  return path;
}
