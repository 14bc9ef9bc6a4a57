/**
 * Structural bounds on a delta header, checked on the raw bytes BEFORE JSON.parse (issue 22,
 * item 4). The header is untrusted and is parsed on the engine worker, the thread that runs
 * batches: a header nested 5 M levels deep made a cached task wait 3.6 s, 300 k empty entries
 * 2.2 s. One linear pass over the bytes (no allocation, no recursion) stops at the first bound
 * crossed, so a hostile header costs at most a scan of its first bytes beyond a limit.
 *
 * A real delta is far inside every bound: depth 3 (header → entry → shape), two entries per
 * weight (a 70 B-parameter LLM has ~700 weights), names of tens of bytes, shapes of rank ≤ 4.
 * The same guard runs on the outer safetensors header (`parseSafetensors`, the one entry every
 * format version goes through) and on each JSON document nested in a metadata string
 * (`tensors`, `extra`).
 *
 * Scanning bytes, not characters, is exact for JSON: every structural character is ASCII and
 * no byte of a multi-byte UTF-8 sequence is below 0x80. Malformed JSON is not this module's
 * business: JSON.parse still reports it; the guard only bounds what a parse would build.
 */
import { DS_ERR_DELTA_HEADER_LIMIT } from '../../core/errors.js';

export interface DeltaHeaderLimits {
  /** Bytes of one JSON document (the header, or one nested metadata string). */
  readonly maxBytes: number;
  /** Nesting of objects and arrays. */
  readonly maxDepth: number;
  /** Keys of one object (tensor entries, metadata keys, tensor records). */
  readonly maxEntries: number;
  /** Bytes of one key (a tensor or metadata name), as written (escapes count). */
  readonly maxNameBytes: number;
  /** Items of one array (a shape's rank, `data_offsets`). */
  readonly maxArrayItems: number;
  /** Characters of one number literal. */
  readonly maxNumberChars: number;
}

export const DELTA_HEADER_LIMITS: DeltaHeaderLimits = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxDepth: 16,
  maxEntries: 65_536,
  maxNameBytes: 1024,
  maxArrayItems: 32,
  maxNumberChars: 64,
});

const OBJECT = 1;
const ARRAY = 2;

/**
 * Throws DS_ERR_DELTA_HEADER_LIMIT (naming `what` and the bound) when the JSON text in `bytes`
 * crosses one of `limits`; returns otherwise, whether or not the text is valid JSON.
 */
export function guardHeaderJson(
  bytes: Uint8Array,
  what: string,
  limits: DeltaHeaderLimits = DELTA_HEADER_LIMITS,
): void {
  const fail = (reason: string): never => {
    throw new DS_ERR_DELTA_HEADER_LIMIT(`${what} ${reason}`);
  };
  const n = bytes.length;
  if (n > limits.maxBytes) fail(`has ${n} bytes (at most ${limits.maxBytes})`);
  const kinds = new Uint8Array(limits.maxDepth + 1);
  const commas = new Uint32Array(limits.maxDepth + 1);
  let depth = 0;
  let expectKey = false;
  let i = 0;
  while (i < n) {
    const c = bytes[i]!;
    if (c === 0x22) {
      // a string: find its closing quote, skipping escapes
      const start = i;
      i++;
      while (i < n) {
        const d = bytes[i]!;
        if (d === 0x5c) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      if (expectKey) {
        const length = i - start - 1;
        if (length > limits.maxNameBytes)
          fail(`has a name of ${length} bytes at byte ${start} (at most ${limits.maxNameBytes})`);
        expectKey = false;
      }
      i++;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      // { or [
      if (depth === limits.maxDepth) fail(`nests deeper than ${limits.maxDepth} levels at byte ${i}`);
      depth++;
      kinds[depth] = c === 0x7b ? OBJECT : ARRAY;
      commas[depth] = 0;
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      // } or ]
      if (depth > 0) depth--;
      expectKey = false;
    } else if (c === 0x2c) {
      // , : one more item in the current container
      if (depth > 0) {
        const count = ++commas[depth]!;
        if (kinds[depth] === OBJECT) {
          expectKey = true;
          if (count >= limits.maxEntries) fail(`has an object with more than ${limits.maxEntries} entries`);
        } else if (count >= limits.maxArrayItems) {
          fail(`has an array of more than ${limits.maxArrayItems} items (a shape's rank is at most that)`);
        }
      }
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
      // a number: digits, sign, point, exponent
      const start = i;
      while (i < n) {
        const d = bytes[i]!;
        if ((d >= 0x30 && d <= 0x39) || d === 0x2d || d === 0x2b || d === 0x2e || d === 0x65 || d === 0x45) i++;
        else break;
      }
      if (i - start > limits.maxNumberChars)
        fail(`has a number of ${i - start} characters at byte ${start} (at most ${limits.maxNumberChars})`);
      continue;
    }
    i++;
  }
}

/** `guardHeaderJson` for JSON held in a string (a metadata value holding a nested document). */
export function guardHeaderJsonText(text: string, what: string, limits: DeltaHeaderLimits = DELTA_HEADER_LIMITS): void {
  // UTF-8 is at most 3 bytes per UTF-16 code unit: refuse an oversized text before encoding it.
  if (text.length > limits.maxBytes) fail(what, `has ${text.length} characters (at most ${limits.maxBytes} bytes)`);
  guardHeaderJson(new TextEncoder().encode(text), what, limits);
}

function fail(what: string, reason: string): never {
  throw new DS_ERR_DELTA_HEADER_LIMIT(`${what} ${reason}`);
}
