/** The one error matcher of the tests, for `assert.rejects` / `assert.throws`. */
import assert from 'node:assert/strict';

export type CodedError = Error & { code?: string; statusCode?: number; cause?: unknown; uri?: string };

/**
 * Passes an error with this `code`; `more` is a pattern its message must match, the HTTP status
 * it must carry, or a function with further assertions.
 */
export function hasCode(code: string, more?: RegExp | number | ((error: CodedError) => void)) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
    const e = error as CodedError;
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (more instanceof RegExp) assert.match(e.message, more);
    else if (typeof more === 'number') assert.equal(e.statusCode, more);
    else more?.(e);
    return true;
  };
}
