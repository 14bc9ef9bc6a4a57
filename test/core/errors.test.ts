import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as errors from '../../src/core/errors.js';

type ErrorClass = new (...args: unknown[]) => Error & { code?: string; statusCode?: number };
const exported = Object.entries(errors as Record<string, unknown>).filter(([name]) => name.startsWith('DS_ERR_')) as [
  string,
  ErrorClass,
][];

test('every error is created with its own name as code and an HTTP status', () => {
  assert.ok(exported.length > 50);
  for (const [name, ErrorClass] of exported) {
    const error = new ErrorClass('x', 'y', 'z');
    assert.equal(error.code, name);
    assert.ok(error instanceof Error);
    assert.ok(
      Number.isInteger(error.statusCode) && error.statusCode! >= 400 && error.statusCode! <= 599,
      `${name}: ${error.statusCode}`,
    );
  }
});

test('docs/errors.md lists exactly the codes of src/core/errors.ts with the same statuses', async () => {
  const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map([...doc.matchAll(/^\| `(DS_ERR_[A-Z0-9_]+)` \| (\d+) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
  for (const [name, ErrorClass] of exported) {
    assert.ok(rows.has(name), `${name} is missing from docs/errors.md (run npm run docs:errors)`);
    assert.equal(rows.get(name), new ErrorClass().statusCode, `${name}: status in docs/errors.md`);
  }
  assert.equal(rows.size, exported.length, 'docs/errors.md lists codes that no longer exist');
});

/**
 * Every `new DS_ERR_X(...)` in src/ passes as many arguments as its message has `%s`: one too
 * few printed a literal "%s" to clients ("…after waiting %s ms…"). A small scanner over the
 * sources: it skips strings, template literals and comments, and counts top-level commas.
 */
test('every error is constructed with as many arguments as its message has %s', async () => {
  const { readdir } = await import('node:fs/promises');
  const root = new URL('../../src/', import.meta.url).pathname;
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts')).map((f) => join(root, f));
  const placeholders = new Map(
    exported.map(([name, ErrorClass]) => {
      const template = new ErrorClass().message; // no arguments: every %s stays in the message
      return [name, template.split('%s').length - 1];
    }),
  );
  let checked = 0;
  const wrong: string[] = [];
  for (const file of files) {
    const source = await readFile(file, 'utf8');
    for (const match of source.matchAll(/new (DS_ERR_[A-Z0-9_]+)\(/g)) {
      const { count, last } = callArguments(source, match.index + match[0].length);
      const want = placeholders.get(match[1]!);
      if (want === undefined) continue;
      checked++;
      // @fastify/error takes a trailing `{ cause }` beside the message arguments.
      const args = /^(\{[^]*\bcause\b[^]*\}|cause)$/.test(last) ? count - 1 : count;
      if (args !== want)
        wrong.push(`${file.slice(root.length)}: ${match[1]} with ${args} argument(s), its message has ${want} %s`);
    }
  }
  assert.ok(checked > 50, `scanned ${checked} constructions`);
  assert.deepEqual(wrong, []);
});

/** How many top-level arguments a call whose '(' ends just before `start` has, and the last one's text. */
function callArguments(source: string, start: number): { count: number; last: string } {
  let depth = 0;
  let commas = 0;
  let sawAny = false;
  let lastStart = start;
  for (let i = start; i < source.length; i++) {
    const c = source[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i = skipString(source, i);
      sawAny = true;
      continue;
    }
    if (c === '/' && source[i + 1] === '/') {
      i = source.indexOf('\n', i);
      continue;
    }
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) {
      if (depth === 0)
        return { count: sawAny ? commas + 1 : 0, last: source.slice(lastStart, i).trim().replace(/,$/, '') };
      depth--;
    } else if (c === ',' && depth === 0) {
      // A trailing comma before ')' does not start an argument.
      if (/^\s*\)/.test(source.slice(i + 1, i + 40))) continue;
      commas++;
      lastStart = i + 1;
    } else if (!/\s/.test(c)) sawAny = true;
  }
  throw new Error('unbalanced call');
}

function skipString(source: string, start: number): number {
  const quote = source[start]!;
  for (let i = start + 1; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') i++;
    else if (c === quote) return i;
    else if (quote === '`' && c === '$' && source[i + 1] === '{') {
      let depth = 0;
      for (i = i + 1; i < source.length; i++) {
        if (source[i] === '{') depth++;
        else if (source[i] === '}' && --depth === 0) break;
        else if ('\'"`'.includes(source[i]!)) i = skipString(source, i);
      }
    }
  }
  throw new Error('unterminated string');
}
