/**
 * Fuzzing the HTTP-layer bounds of issue 22 on a real gateway process (the demo zoo, loopback),
 * beyond the exact cases of the regression tests: slow and stalled bodies of generated shapes,
 * generated nesting, duplicated and unknown outputs, hollow shapes and row counts around the
 * limit. Seeded (DELTASERVE_FUZZ_SEED), counts × DELTASERVE_FUZZ_SCALE (fuzz-gateway.ts).
 *
 * Properties: every answer is the one its class calls for, in the JSON error shape, never a 5xx;
 * a stalled body's connection is closed within the body bound; the process stays alive, serves
 * a valid request afterwards and its RSS does not grow by more than a margin.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import fc from 'fast-check';
import { request } from 'undici';
import { DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';
import { fuzzRuns, fuzzSeed, fuzzSettings, fuzzTimeoutMs } from './fuzz-gateway.js';
import { startGateway, type GatewayProcess } from './gateway-process.js';

const BODY_TIMEOUT_MS = 600;
const MAX_ROWS = 16;
const RSS_MARGIN_BYTES = 200 * 1024 ** 2;
const AUTH = { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' };

let gateway: GatewayProcess;
let startRss: number;

before(async () => {
  gateway = await startGateway({
    http: { bodyTimeoutMs: BODY_TIMEOUT_MS, headersTimeoutMs: 2000, maxRowsPerRequest: MAX_ROWS },
  });
  startRss = gateway.rssBytes();
});
after(async () => gateway?.stop());

async function post(path: string, body: string): Promise<{ status: number; code: string | null; error: string }> {
  const response = await request(`${gateway.url}${path}`, {
    method: 'POST',
    headers: AUTH,
    body,
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  });
  const text = await response.body.text();
  try {
    const parsed = JSON.parse(text) as { code?: string; error?: string };
    return { status: response.statusCode, code: parsed.code ?? null, error: parsed.error ?? '' };
  } catch {
    return { status: response.statusCode, code: null, error: text.slice(0, 200) };
  }
}

function image(rows: number, nested: boolean): unknown[] {
  if (!nested) return new Array<number>(rows * 784).fill(0.5);
  return Array.from({ length: rows }, () => [Array.from({ length: 28 }, () => new Array<number>(28).fill(0.5))]);
}

async function assertStillServing(): Promise<void> {
  assert.equal(gateway.exited(), null, `the gateway exited: ${gateway.stderr()}`);
  const served = await post(
    '/v2/models/footwear/infer',
    JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: image(1, false) }] }),
  );
  assert.equal(served.status, 200, served.error);
  const rss = gateway.rssBytes();
  assert.ok(rss < startRss + RSS_MARGIN_BYTES, `RSS grew from ${startRss >> 20} MiB to ${rss >> 20} MiB`);
}

test(
  `slow and stalled bodies of generated shapes: answered 4xx in the error shape or closed, within the body bound`,
  { timeout: fuzzTimeoutMs(180_000) },
  async (t) => {
    const slowStatuses = new Map<number, number>();
    const slowBody = fc.record({
      path: fc.constantFrom('/v2/models/footwear/infer', '/v1/tasks/digits/classify', '/v2/models/nope/infer'),
      auth: fc.boolean(),
      chunked: fc.boolean(),
      length: fc.integer({ min: 10, max: 200_000 }),
      sentFraction: fc.double({ min: 0, max: 0.99, noNaN: true }),
      dripMs: fc.constantFrom(0, 50, 150),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(slowBody, { minLength: 4, maxLength: 4 }), async (cases) => {
        await Promise.all(
          cases.map(async (c) => {
            const { port } = new URL(gateway.url);
            const socket = new Socket();
            let text = '';
            let closed = false;
            socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
            socket.on('error', () => undefined);
            socket.on('close', () => (closed = true));
            await new Promise<void>((resolve) => socket.connect(Number(port), '127.0.0.1', resolve));
            const framing = c.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${c.length}`;
            const auth = c.auth ? `Authorization: Bearer ${DEV_TENANT_KEY}\r\n` : '';
            socket.write(
              `POST ${c.path} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\n${framing}\r\n\r\n`,
            );
            const sent = Math.floor(c.length * c.sentFraction);
            const piece = '{"inputs": ['.padEnd(Math.max(1, sent), ' ').slice(0, Math.max(1, sent));
            const started = Date.now();
            // Drip the sent part in 10 pieces, then stall.
            for (let i = 0; i < 10 && !closed; i++) {
              const part = piece.slice((i * piece.length) / 10, ((i + 1) * piece.length) / 10);
              if (part !== '') socket.write(c.chunked ? `${part.length.toString(16)}\r\n${part}\r\n` : part);
              if (c.dripMs > 0) await new Promise((resolve) => setTimeout(resolve, c.dripMs));
            }
            const deadline = Date.now() + 15_000;
            while (!closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
            socket.destroy();
            const what = `${JSON.stringify(c)} after ${Date.now() - started} ms: ${text.slice(0, 300)}`;
            assert.ok(closed, `the connection stayed open: ${what}`);
            const status = text === '' ? 0 : Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
            slowStatuses.set(status, (slowStatuses.get(status) ?? 0) + 1);
            if (text === '') return; // closed without an answer: only when the answer could not be written
            assert.ok(status >= 400 && status < 500, what);
            const body = text.slice(text.indexOf('\r\n\r\n') + 4);
            assert.match(body, /"code":"(DS_ERR|FST_ERR)_[A-Z_]+"/, what);
          }),
        );
      }),
      fuzzSettings(fuzzSeed(22_001), fuzzRuns(6)),
    );
    t.diagnostic(`answers (0 = closed without one): ${[...slowStatuses].map(([s, n]) => `${s}×${n}`).join(' ')}`);
    await assertStillServing();
  },
);

test(
  'generated nesting, duplicate outputs, hollow shapes and row counts get the answer their class calls for',
  {
    timeout: fuzzTimeoutMs(180_000),
  },
  async (t) => {
    type Case =
      | { kind: 'nesting'; depth: number; object: boolean; where: 'data' | 'id' | 'root' }
      | { kind: 'outputs'; names: string[] }
      | { kind: 'hollow'; dims: number[]; given: number }
      | { kind: 'rows'; rows: number; nested: boolean };
    const caseArb: fc.Arbitrary<Case> = fc.oneof(
      fc.record({
        kind: fc.constant('nesting' as const),
        depth: fc.oneof(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 60, max: 300_000 })),
        object: fc.boolean(),
        where: fc.constantFrom('data' as const, 'id' as const, 'root' as const),
      }),
      fc.record({
        kind: fc.constant('outputs' as const),
        names: fc.array(fc.constantFrom('logits', 'logits', 'pixels', 'LOGITS', ''), { minLength: 0, maxLength: 80 }),
      }),
      fc.record({
        kind: fc.constant('hollow' as const),
        dims: fc.tuple(
          fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 17, max: 2 ** 31 })),
          fc.constantFrom(1),
          fc.constantFrom(28),
          fc.constantFrom(28),
        ),
        given: fc.constantFrom(0, 1, 783, 785),
      }),
      fc.record({ kind: fc.constant('rows' as const), rows: fc.integer({ min: 1, max: 40 }), nested: fc.boolean() }),
    );
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        let body: string;
        let expect: (r: { status: number; code: string | null; error: string }) => boolean;
        switch (c.kind) {
          case 'nesting': {
            const open = c.object ? '{"a":' : '[';
            const close = c.object ? '}' : ']';
            const deep = `${open.repeat(c.depth)}1${close.repeat(c.depth)}`;
            const input = { name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: image(1, false) };
            const extra = c.where === 'root' ? 0 : c.where === 'id' ? 1 : 3; // levels above the deep value
            body =
              c.where === 'root'
                ? deep
                : c.where === 'id'
                  ? JSON.stringify({ inputs: [input] }).replace(/^\{/, `{"id": ${deep}, `)
                  : JSON.stringify({ inputs: [{ ...input, data: '@' }] }).replace('"@"', deep);
            const tooDeep = c.depth + extra > 64;
            expect = (r) =>
              tooDeep ? r.status === 400 && /nested deeper than 64/.test(r.error) : !/nested deeper/.test(r.error);
            break;
          }
          case 'outputs': {
            const unique = new Set(c.names).size === c.names.length;
            const valid = unique && c.names.every((n) => n === 'logits');
            body = JSON.stringify({
              inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: image(1, false) }],
              outputs: c.names.map((name) => ({ name })),
            });
            expect = (r) => (valid ? r.status === 200 : r.status === 400);
            break;
          }
          case 'hollow': {
            body = JSON.stringify({
              inputs: [{ name: 'pixels', shape: c.dims, datatype: 'FP32', data: new Array(c.given).fill(0) }],
            });
            const rows = c.dims[0]!;
            expect = (r) =>
              rows > MAX_ROWS ? r.status === 413 : r.status === 400 || (r.status === 200 && c.given === rows * 784);
            break;
          }
          case 'rows':
            body = JSON.stringify({
              inputs: [{ name: 'pixels', shape: [c.rows, 1, 28, 28], datatype: 'FP32', data: image(c.rows, c.nested) }],
            });
            expect = (r) =>
              c.rows <= MAX_ROWS
                ? r.status === 200
                : r.status === 413 && r.code === 'DS_ERR_TOO_MANY_ROWS' && r.error.includes(`${MAX_ROWS} rows`);
            break;
        }
        const answer = await post('/v2/models/footwear/infer', body);
        seen.set(`${c.kind} ${answer.status}`, (seen.get(`${c.kind} ${answer.status}`) ?? 0) + 1);
        assert.ok(answer.status < 500, `${JSON.stringify(c).slice(0, 200)}: ${answer.status} ${answer.error}`);
        if (answer.status >= 400) assert.ok(answer.code !== null, `${answer.status} without the error shape`);
        assert.ok(
          expect(answer),
          `${JSON.stringify(c).slice(0, 200)}: ${answer.status} ${answer.code} ${answer.error}`,
        );
      }),
      fuzzSettings(fuzzSeed(22_002), fuzzRuns(200)),
    );
    t.diagnostic(
      `answers: ${[...seen]
        .sort()
        .map(([k, n]) => `${k}×${n}`)
        .join(', ')}`,
    );
    await assertStillServing();
  },
);
