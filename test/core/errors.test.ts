import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as errors from '../../src/core/errors.js';
import {
  DS_ERR_CACHE_NO_ROOM,
  DS_ERR_FILE_READ,
  DS_ERR_INTERNAL,
  DS_ERR_SHUTTING_DOWN,
  errorPolicy,
  isDsError,
  isError,
  type DsErrorClass,
} from '../../src/core/errors.js';

const exported = Object.entries(errors as unknown as Record<string, DsErrorClass>).filter(([name]) =>
  name.startsWith('DS_ERR_'),
);

test('every error is created with its own name as code and an HTTP status', () => {
  assert.ok(exported.length > 50);
  for (const [name, ErrorClass] of exported) {
    const error = new ErrorClass(...(['x', 'y', 'z'] as unknown as Parameters<typeof ErrorClass>));
    assert.equal(error.code, name);
    assert.equal(
      ErrorClass.code,
      name,
      `${name} is made by defineError (its code, template and policy are the table's)`,
    );
    assert.equal(error.statusCode, ErrorClass.statusCode);
    assert.ok(error instanceof Error);
    assert.ok(
      Number.isInteger(error.statusCode) && error.statusCode >= 400 && error.statusCode <= 599,
      `${name}: ${error.statusCode}`,
    );
  }
});

test('docs/errors.md lists exactly the codes of src/core/errors.ts with the same statuses, policies and messages', async () => {
  const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `(DS_ERR_[A-Z0-9_]+)` \| (\d+) \| ([^|]*) \| (.*) \|$/gm)].map((m) => [m[1]!, m.slice(2)]),
  );
  for (const [name, ErrorClass] of exported) {
    assert.ok(rows.has(name), `${name} is missing from docs/errors.md (run npm run docs:errors)`);
    const [status, policy, message] = rows.get(name)!;
    const hint = `${name} in docs/errors.md (run npm run docs:errors)`;
    assert.equal(Number(status), ErrorClass.statusCode, `status of ${hint}`);
    assert.deepEqual(
      { retrySoon: policy!.includes('retry soon'), expected5xx: policy!.includes('expected') },
      ErrorClass.policy,
      `policy of ${hint}`,
    );
    assert.equal(message!.replace(/\\\|/g, '|'), ErrorClass.template, `message of ${hint}`);
  }
  assert.equal(rows.size, exported.length, 'docs/errors.md lists codes that no longer exist');
});

test('isError compares by code, so an error rebuilt from another thread still matches', () => {
  const error = new DS_ERR_CACHE_NO_ROOM('a@1', 10, 'everything is pinned');
  assert.equal(isError(error, DS_ERR_CACHE_NO_ROOM), true);
  assert.equal(isError(error, DS_ERR_INTERNAL), false);
  const rebuilt = Object.assign(new Error(error.message), { code: error.code });
  assert.equal(isError(rebuilt, DS_ERR_CACHE_NO_ROOM), true);
  for (const other of [null, undefined, 'DS_ERR_CACHE_NO_ROOM', { code: 'DS_ERR_CACHE_NO_ROOM_X' }]) {
    assert.equal(isError(other, DS_ERR_CACHE_NO_ROOM), false);
  }
  assert.equal(isDsError(rebuilt), true);
  assert.equal(isDsError(Object.assign(new Error('x'), { code: 'ECONNRESET' })), false);
});

test('the policies: the flags of the table, none for codes outside it', () => {
  assert.deepEqual(errorPolicy('DS_ERR_SHUTTING_DOWN'), { retrySoon: true, expected5xx: true });
  assert.deepEqual(DS_ERR_SHUTTING_DOWN.policy, errorPolicy('DS_ERR_SHUTTING_DOWN'));
  assert.deepEqual(errorPolicy('DS_ERR_INTERNAL'), { retrySoon: false, expected5xx: false });
  assert.deepEqual(errorPolicy('FST_ERR_CTP_INVALID_MEDIA_TYPE'), { retrySoon: false, expected5xx: false });
  assert.deepEqual(errorPolicy(undefined), { retrySoon: false, expected5xx: false });
});

/**
 * The constructors take one argument per `%s` (and an optional `{ cause }`): the compiler
 * refuses any other count. `npm run typecheck` fails if one of these lines stops being an error.
 */
export function constructionsTheCompilerRefuses(): void {
  // @ts-expect-error one argument short: the message would print a literal %s
  void new DS_ERR_FILE_READ('config.yaml');
  // @ts-expect-error one argument too many
  void new DS_ERR_SHUTTING_DOWN('draining', 'extra');
  // @ts-expect-error an object is not a message argument (it would print [object Object])
  void new DS_ERR_SHUTTING_DOWN({ reason: 'draining' });
  void new DS_ERR_FILE_READ('config.yaml', 'no such file', { cause: new Error('ENOENT') });
}
