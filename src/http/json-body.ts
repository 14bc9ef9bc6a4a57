/**
 * The JSON body parser: fastify's own (same errors, same prototype-poisoning refusal), behind a
 * bound on nesting. `JSON.parse` of a 4 MB body nested 1.9 M levels deep held the event loop
 * for 1.1 s before the schema refused it; a scan that only counts brackets stops at the first
 * level past the limit, costs a fraction of the parse for normal bodies (docs/reliability.md),
 * and refuses a body that is nested too deep before anything is built from it.
 */
import type { FastifyInstance } from 'fastify';
import { DS_ERR_REQUEST_INVALID } from '../core/errors.js';

/**
 * Deepest nesting of arrays and objects a JSON body may have. An infer body is 4 levels above
 * its tensor data, and data is at most 32 levels deep (tensor-codec.ts): 64 leaves room.
 */
export const MAX_JSON_DEPTH = 64;

/** The characters that matter to nesting; a regular expression skips the rest far faster than a loop. */
const STRUCTURE = /["[\]{}]/g;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;

/** Whether `text` opens more than `maxDepth` arrays/objects at once (brackets in strings do not count). */
export function nestedDeeperThan(text: string, maxDepth: number): boolean {
  const structure = new RegExp(STRUCTURE); // own lastIndex: safe if ever called re-entrantly
  let depth = 0;
  while (structure.test(text)) {
    const at = structure.lastIndex - 1;
    const c = text.charCodeAt(at);
    if (c === QUOTE) {
      const end = closingQuote(text, at + 1);
      if (end < 0) return false; // unterminated: the parser refuses it
      structure.lastIndex = end + 1;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return true;
    } else {
      depth--;
    }
  }
  return false;
}

/** Index of the quote that ends the string whose content starts at `from`, or -1. */
function closingQuote(text: string, from: number): number {
  for (let at = text.indexOf('"', from); at >= 0; at = text.indexOf('"', at + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
  return -1;
}

/** Replaces fastify's `application/json` parser with the same parser behind the nesting bound. */
export function installJsonParser(app: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (nestedDeeperThan(body as string, maxDepth)) {
      done(new DS_ERR_REQUEST_INVALID(`body: JSON nested deeper than ${maxDepth} levels`), undefined);
      return;
    }
    void parse(request, body as string, done);
  });
}
