import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as errors from '../../src/core/errors.js';

type ErrorClass = new (...args: unknown[]) => Error & { code?: string; statusCode?: number };
const exported = Object.entries(errors as Record<string, unknown>).filter(([name]) => name.startsWith('DS_ERR_')) as [string, ErrorClass][];

test('every error is created with its own name as code and an HTTP status', () => {
  assert.ok(exported.length > 50);
  for (const [name, ErrorClass] of exported) {
    const error = new ErrorClass('x', 'y', 'z');
    assert.equal(error.code, name);
    assert.ok(error instanceof Error);
    assert.ok(Number.isInteger(error.statusCode) && error.statusCode! >= 400 && error.statusCode! <= 599, `${name}: ${error.statusCode}`);
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
