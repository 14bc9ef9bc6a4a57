/**
 * Every phase of a client connection is bounded (issue 22, defects 1 and 7), over real sockets
 * (fastify's inject() has no sockets or timers): slow and idle bodies, headers that never end,
 * idle keep-alive connections, answers sent before the body was read, the connection cap, and
 * clients that never read their answers. Each server here has bounds of a few hundred ms; the
 * waits are bounded far above them, so a bound that does not hold fails instead of hanging.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { defaultMaxConnections } from '../../src/http/connection-limits.js';
import { buildServer } from '../../src/server.js';
import { until } from '../helpers/until.js';
import {
  FakeEngine,
  TENANT_A_KEY,
  bearer,
  listen,
  makeConfig,
  pixelsBody,
  twoTenantRaw,
  alphaRegistry,
} from './fixtures.js';

const apps: FastifyInstance[] = [];
after(async () => {
  for (const app of apps) await app.close();
});

async function server(http: Record<string, unknown>, engine = new FakeEngine()) {
  const registry = await alphaRegistry();
  const { app } = await buildServer(makeConfig(twoTenantRaw({ http })), { engine, registry, telemetry: null });
  apps.push(app);
  const url = await listen(app);
  return { app, engine, url, port: Number(new URL(url).port) };
}

interface RawOutcome {
  readonly text: string;
  /** How the connection ended: 'closed' (by the server), or 'open' when `waitMs` passed first. */
  readonly ended: 'closed' | 'open';
}

/**
 * Connects, writes `chunks` (a number is a pause in ms), then waits up to `waitMs` for the
 * server to close the connection; reads whatever it answers.
 */
async function raw(port: number, chunks: (string | number)[], waitMs = 10_000): Promise<RawOutcome> {
  const socket = new Socket();
  let text = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => undefined); // a reset counts as closed
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
  for (const chunk of chunks) {
    if (closed) break;
    if (typeof chunk === 'number') await new Promise((resolve) => setTimeout(resolve, chunk));
    else socket.write(chunk);
  }
  const deadline = Date.now() + waitMs;
  while (!closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  socket.destroy();
  return { text, ended: closed ? 'closed' : 'open' };
}

function statusAndCode(text: string): { status: number; code: string | undefined; head: string } {
  const [head, body] = text.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1] ?? 0);
  let code: string | undefined;
  try {
    code = (JSON.parse(body ?? '') as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status, code, head: head ?? '' };
}

const AUTH = `Authorization: Bearer ${TENANT_A_KEY}\r\n`;
const INFER = (length: number, extra = '') =>
  `POST /v2/models/alpha/infer HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: ${length}\r\n${extra}\r\n`;

test('a body that stops, or trickles, is answered 408 in the error shape and its connection closed', async () => {
  const { port } = await server({ bodyTimeoutMs: 300, headersTimeoutMs: 5000 });
  const body = JSON.stringify(pixelsBody());
  const drip = Array.from({ length: 60 }, (_, i) => [body[i]!, 100]).flat();
  for (const [what, chunks] of [
    ['stops mid-body', [INFER(body.length), body.slice(0, 100)]],
    ['headers only', [INFER(body.length)]],
    ['a byte every 100 ms', [INFER(body.length), ...drip]],
    [
      'chunked, stops',
      [
        `POST /v2/models/alpha/infer HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
        '10\r\n{"inputs": [{"na\r\n',
      ],
    ],
  ] as const) {
    const outcome = await raw(port, [...chunks]);
    assert.equal(outcome.ended, 'closed', `${what}: the connection is still open`);
    const answer = statusAndCode(outcome.text);
    assert.equal(answer.status, 408, `${what}: ${outcome.text.slice(0, 300)}`);
    assert.equal(answer.code, 'DS_ERR_BODY_TIMEOUT', what);
    assert.match(answer.head, /connection: close/i, what);
  }
  const ok = await raw(port, [INFER(body.length), body, 50], 500); // kept alive: read, do not wait for a close
  assert.equal(statusAndCode(ok.text).status, 200, 'a body that arrives is served');
});

test('an answer sent before the body was read closes the connection (a 401 does not keep reading)', async () => {
  // Long bounds: the close must come from the early answer, not from a timeout.
  const { port } = await server({ bodyTimeoutMs: 60_000, headersTimeoutMs: 60_000 });
  for (const [what, head] of [
    [
      '401',
      'POST /v2/models/alpha/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n',
    ],
    ['404', INFER(10_000_000).replace('/alpha/', '/nope/')],
  ] as const) {
    const outcome = await raw(port, [head, '{"inputs": [', 200, ' '.repeat(1000)], 5_000);
    const answer = statusAndCode(outcome.text);
    assert.equal(answer.status, Number(what), outcome.text.slice(0, 300));
    assert.match(answer.head, /connection: close/i, what);
    assert.equal(outcome.ended, 'closed', `${what}: the server kept reading the body`);
  }
});

test('headers that never end are answered 408 in the error shape; a silent connection is closed too', async () => {
  const { port } = await server({ headersTimeoutMs: 300 });
  const partial = await raw(port, ['POST /v2/models/alpha/infer HTTP/1.1\r\nHost: x\r\n']);
  assert.equal(partial.ended, 'closed');
  const answer = statusAndCode(partial.text);
  assert.equal(answer.status, 408, partial.text);
  assert.equal(answer.code, 'DS_ERR_REQUEST_TIMEOUT');
  assert.equal((await raw(port, [])).ended, 'closed', 'a connection that sends nothing');
});

test('an idle keep-alive connection is closed after http.keepAliveTimeoutMs', async () => {
  const { port } = await server({ keepAliveTimeoutMs: 300 });
  const outcome = await raw(port, ['GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n']);
  assert.equal(statusAndCode(outcome.text).status, 200);
  assert.equal(outcome.ended, 'closed');
});

test('beyond http.maxConnections new connections are closed at once; open ones keep being served', async () => {
  const { app, port, url } = await server({ maxConnections: 4, headersTimeoutMs: 30_000, keepAliveTimeoutMs: 30_000 });
  const held: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const socket = new Socket();
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
    held.push(socket);
  }
  // The fourth: a kept-alive client that keeps working while the cap is reached.
  const { Client } = await import('undici');
  const client = new Client(url, { keepAliveTimeout: 30_000 });
  const first = await client.request({ method: 'GET', path: '/v2/health/live' });
  assert.equal(first.statusCode, 200);
  await first.body.dump();
  try {
    const refused = await raw(port, ['GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n'], 5_000);
    assert.equal(refused.ended, 'closed', 'the fifth connection is closed');
    assert.equal(refused.text, '', 'and answered nothing');
    const again = await client.request({ method: 'GET', path: '/v2/health/live' });
    assert.equal(again.statusCode, 200, 'the open connection is still served');
    await again.body.dump();
  } finally {
    for (const socket of held) socket.destroy();
    await client.close();
  }
  for (let open = 4, waits = 0; open > 0 && waits < 400; waits++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    open = await connections(app);
  }
  const after = await request(`${url}/v2/health/live`);
  assert.equal(after.statusCode, 200, 'room again once connections close');
  await after.body.dump();
});

async function connections(app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) =>
    app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

/** Sends an infer request for a large answer and never reads a byte of it. */
async function neverReads(port: number): Promise<Socket> {
  const body = JSON.stringify(pixelsBody());
  const socket = new Socket();
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
  socket.pause();
  socket.write(INFER(body.length) + body);
  return socket;
}

test('a client that never reads its answer loses its connection after http.sendTimeoutMs', async () => {
  const engine = new FakeEngine();
  engine.outputWidth = 2_000_000; // a ~20 MB answer: more than the kernel's socket buffers hold
  const { app, port } = await server({ sendTimeoutMs: 500 }, engine);
  const socket = await neverReads(port);
  try {
    await until(() => engine.calls.length === 1, 'the request in the engine');
    let open = 1;
    const deadline = Date.now() + 20_000;
    while (open > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      open = await connections(app);
    }
    assert.equal(open, 0, 'the connection of the client that never reads is still open');
  } finally {
    socket.destroy();
  }
});

test('answers waiting for clients that never read are bounded in bytes: the oldest lose their connections', async () => {
  const engine = new FakeEngine();
  engine.outputWidth = 2_000_000;
  const { app, port, url } = await server({ sendTimeoutMs: 600_000, maxUnsentBytes: 8 * 1024 ** 2 }, engine);
  const first = await neverReads(port);
  await until(() => engine.calls.length === 1, 'the first request in the engine');
  const second = await neverReads(port);
  try {
    await until(() => engine.calls.length === 2, 'the second request in the engine');
    let open = 2;
    const deadline = Date.now() + 20_000;
    while (open > 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      open = await connections(app);
    }
    assert.equal(open, 1, 'both answers are still held: the unsent total is not bounded');
    engine.outputWidth = 10;
    const served = await request(`${url}/v2/models/alpha/infer`, {
      method: 'POST',
      headers: { ...bearer(TENANT_A_KEY), 'content-type': 'application/json' },
      body: JSON.stringify(pixelsBody()),
    });
    assert.equal(served.statusCode, 200, 'a client that reads is served');
    await served.body.dump();
  } finally {
    first.destroy();
    second.destroy();
  }
});

test('the default connection cap is the open-file limit less a reserve', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-limits-'));
  try {
    const limits = (soft: string) =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                 4096                 files\n`;
    await writeFile(join(dir, 'a'), limits('1024'));
    assert.equal(defaultMaxConnections(join(dir, 'a')), 896);
    await writeFile(join(dir, 'b'), limits('unlimited'));
    assert.equal(defaultMaxConnections(join(dir, 'b')), 10_000);
    await writeFile(join(dir, 'c'), limits('100'));
    assert.equal(defaultMaxConnections(join(dir, 'c')), 32, 'never below 32');
    assert.equal(defaultMaxConnections(join(dir, 'missing')), 896, 'not Linux: fits the common limit of 1024');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
