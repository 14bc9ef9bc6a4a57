/**
 * Checks of numeric options, shared by every module that validates its options when it is
 * built (cache, sources, scheduler, telemetry): a bad option fails at start-up with the
 * module's own error code, its name and the value it got.
 */

/** An error class of the `DS_ERR_*_BAD_OPTION` shape: (option name, reason). */
export type BadOptionError = new (name: string, reason: string) => Error;

/** `value` if it is a safe integer in [min, max]; else throws `bad`. */
export function integerOption(
  bad: BadOptionError,
  name: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new bad(name, `expected an integer ${rangeText(min, max)}, got ${String(value)}`);
  }
  return value;
}

/** `value` if it is a finite number ≥ min; else throws `bad`. */
export function numberOption(bad: BadOptionError, name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new bad(name, `expected a number ≥ ${min}, got ${String(value)}`);
  }
  return value;
}

function rangeText(min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in [${min}, ${max}]`;
}
