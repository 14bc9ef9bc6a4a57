/**
 * The error table's policy columns reach the HTTP answer and the log (src/http/error-handler.ts):
 * `retrySoon` adds `Retry-After: 1`, `expected5xx` logs at info without a stack; an error with
 * neither is a 5xx logged at error with its stack and no `Retry-After`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import {
  DS_ERR_DEADLINE_EXCEEDED,
  DS_ERR_ENGINE_CRASHED,
  DS_ERR_ENGINE_START_FAILED,
  DS_ERR_SHUTTING_DOWN,
} from '../../src/core/errors.js';
import { installErrorHandling } from '../../src/http/error-handler.js';

interface LogLine {
  level: number;
  msg: string;
  code?: string;
  err?: { stack?: string };
}
const INFO = 30;
const ERROR = 50;

async function answer(error: Error): Promise<{ status: number; retryAfter: unknown; code: unknown; logged: LogLine }> {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as LogLine);
      done();
    },
  });
  const app = Fastify({ logger: { level: 'info', stream } });
  installErrorHandling(app);
  app.get('/fail', () => {
    throw error;
  });
  try {
    const response = await app.inject({ url: '/fail' });
    const logged = lines.find((l) => l.code === (error as { code?: string }).code || l.err !== undefined);
    assert.ok(logged, `the error was logged: ${JSON.stringify(lines)}`);
    return {
      status: response.statusCode,
      retryAfter: response.headers['retry-after'],
      code: response.json<{ code: string }>().code,
      logged,
    };
  } finally {
    await app.close();
  }
}

test('retry soon and expected: Retry-After 1, logged at info without a stack', async () => {
  assert.deepEqual(DS_ERR_SHUTTING_DOWN.policy, { retrySoon: true, expected5xx: true });
  const a = await answer(new DS_ERR_SHUTTING_DOWN('draining'));
  assert.deepEqual([a.status, a.retryAfter, a.code], [503, '1', 'DS_ERR_SHUTTING_DOWN']);
  assert.equal(a.logged.level, INFO);
  assert.equal(a.logged.err, undefined);
});

test('retry soon only: Retry-After 1, logged at error with the stack', async () => {
  assert.deepEqual(DS_ERR_ENGINE_CRASHED.policy, { retrySoon: true, expected5xx: false });
  const a = await answer(new DS_ERR_ENGINE_CRASHED('exit 137'));
  assert.deepEqual([a.status, a.retryAfter, a.code], [503, '1', 'DS_ERR_ENGINE_CRASHED']);
  assert.equal(a.logged.level, ERROR);
  assert.match(a.logged.err?.stack ?? '', /at /);
});

test('expected only: no Retry-After, logged at info without a stack', async () => {
  assert.deepEqual(DS_ERR_DEADLINE_EXCEEDED.policy, { retrySoon: false, expected5xx: true });
  const a = await answer(new DS_ERR_DEADLINE_EXCEEDED('footwear', 120, 'in the queue'));
  assert.deepEqual([a.status, a.retryAfter, a.code], [504, undefined, 'DS_ERR_DEADLINE_EXCEEDED']);
  assert.equal(a.logged.level, INFO);
  assert.equal(a.logged.err, undefined);
});

test('neither: no Retry-After, logged at error with the stack', async () => {
  assert.deepEqual(DS_ERR_ENGINE_START_FAILED.policy, { retrySoon: false, expected5xx: false });
  const a = await answer(new DS_ERR_ENGINE_START_FAILED('no base model'));
  assert.deepEqual([a.status, a.retryAfter, a.code], [500, undefined, 'DS_ERR_ENGINE_START_FAILED']);
  assert.equal(a.logged.level, ERROR);
  assert.match(a.logged.err?.stack ?? '', /at /);
});
