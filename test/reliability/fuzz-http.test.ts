/**
 * Fuzzing a real gateway process (the demo zoo, `deltaserve serve`, loopback) with seeded,
 * generated and mutated requests (fast-check):
 *
 * - V2 infer and classify bodies: valid, then mutated as JSON values (wrong types, huge /
 *   negative / float shapes, odd datatypes, unknown names) or as raw text (flipped characters,
 *   NaN / Infinity / hex / 1e400 literals, deep nesting, prototype keys), with generated
 *   content-type, authorization, x-request-id and timeout headers and odd model names;
 * - PNG uploads to the classify route: valid PNGs mutated (flipped bytes with and without
 *   fixed CRCs, truncation, IHDR width / height / depth / colour type / interlace, chunk
 *   lengths, extra and missing chunks);
 * - delta files registered through the admin API: the zoo's coarse4 delta, mutated;
 * - admin registration requests: mostly valid bodies with odd names, versions, checksums, labels
 *   and delta URIs (traversal, other schemes, internal addresses), then mutated like the above.
 *
 * Properties, for every case: an answer within REQUEST_BOUND_MS (never a hang), never a 5xx (a
 * client mistake is a 4xx with the JSON error body; at most 4 requests are in flight, far below
 * every queue bound, so nothing here may be answered "overloaded"; the one 5xx allowed is a 504
 * for a request that set its own deadline, answered once that deadline had passed), and after
 * each run the process is alive and answers /v2/health/live and a valid request. Counts in
 * `npm run test:long` (and CI): 2,000 HTTP cases, 500 PNGs, 40 delta registrations, 300 admin
 * requests; `npm test` runs a fifth of them (./test-length.ts); DELTASERVE_FUZZ_SCALE multiplies
 * them (docs/reliability.md).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { request } from 'undici';
import { chunk, png, rawPng } from '../http/png/png-bytes.js';
import { deltaMutation, mutatedDelta } from './fuzz-delta-mutations.js';
import {
  DEV_ADMIN_KEY,
  DEV_TENANT_KEY,
  ROOT,
  fuzzRuns,
  fuzzSeed,
  fuzzSettings,
  fuzzTimeoutMs,
  liveStatus,
  startZooGateway,
  type ZooGateway,
} from './fuzz-gateway.js';
import { byLength } from './test-length.js';

const REQUEST_BOUND_MS = 10_000;
/**
 * Requests in flight at once: 4 keeps both cores busy and stays far below every queue bound
 * (256 per task, 32 PNG decodes waiting), so an "overloaded" answer would be a bug here too.
 */
const AT_ONCE = 4;
const HTTP_RUNS = Math.ceil(fuzzRuns(byLength(400, 2_000)) / AT_ONCE) * AT_ONCE;
const PNG_RUNS = Math.ceil(fuzzRuns(byLength(100, 500)) / AT_ONCE) * AT_ONCE;
const DELTA_RUNS = fuzzRuns(byLength(10, 40));
const ADMIN_RUNS = Math.ceil(fuzzRuns(byLength(60, 300)) / AT_ONCE) * AT_ONCE;
const TASKS = ['coarse4', 'digits', 'flipped', 'footwear', 'inverted', 'noisy', 'rotated'];

let gateway: ZooGateway;

before(async () => {
  gateway = await startZooGateway();
});
after(async () => gateway?.stop());

// --- one request, checked -----------------------------------------------------------------------

interface Case {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string | Buffer;
  /** The deadline the request asked for, if it asked for one (a 504 is then its own doing). */
  readonly requestedTimeoutMs?: number;
}

interface Outcome {
  readonly status: number;
  readonly ms: number;
  readonly body: string;
}

const statusCounts = new Map<string, Map<number, number>>();
let slowestMs = 0;

async function send(kind: string, c: Case): Promise<Outcome> {
  const started = performance.now();
  const res = await request(`${gateway.url}${c.path}`, {
    method: c.method,
    headers: c.headers,
    ...(c.body !== undefined && { body: c.body }),
    headersTimeout: REQUEST_BOUND_MS + 5_000,
    bodyTimeout: REQUEST_BOUND_MS + 5_000,
  });
  const body = await res.body.text();
  const ms = performance.now() - started;
  slowestMs = Math.max(slowestMs, ms);
  const counts = statusCounts.get(kind) ?? new Map<number, number>();
  counts.set(res.statusCode, (counts.get(res.statusCode) ?? 0) + 1);
  statusCounts.set(kind, counts);
  return { status: res.statusCode, ms, body };
}

/** The properties every answer must have; returns a description of the violation, or null. */
function violation(c: Case, o: Outcome): string | null {
  if (o.ms > REQUEST_BOUND_MS) return `answered after ${o.ms.toFixed(0)} ms`;
  const code = codeOf(o.body);
  if (o.status >= 500) {
    // A deadline the request set itself, and that really passed, is its own doing.
    const ownDeadline =
      o.status === 504 &&
      code === 'DS_ERR_DEADLINE_EXCEEDED' &&
      c.requestedTimeoutMs !== undefined &&
      o.ms >= c.requestedTimeoutMs * 0.9;
    if (!ownDeadline) return `${o.status} ${o.body.slice(0, 300)}`;
  }
  if (o.status >= 400 && code === null) return `${o.status} without the JSON error body: ${o.body.slice(0, 200)}`;
  return null;
}

function codeOf(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; code?: unknown };
    return typeof parsed.error === 'string' && typeof parsed.code === 'string' ? parsed.code : null;
  } catch {
    return null;
  }
}

async function assertStillServing(): Promise<void> {
  assert.ok(gateway.alive(), `the gateway exited: ${gateway.stderr()}`);
  assert.equal(await liveStatus(gateway.url), 200);
  const res = await request(`${gateway.url}/v2/models/footwear/infer`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(validInfer(new Array<number>(784).fill(0.5))),
  });
  assert.equal(res.statusCode, 200, await res.body.text());
  await res.body.dump();
}

function report(t: { diagnostic(message: string): void }, kind: string, runs: number, ms: number): void {
  const counts = [...(statusCounts.get(kind) ?? new Map<number, number>())].sort(([a], [b]) => a - b);
  t.diagnostic(
    `${kind}: ${runs} cases in ${(ms / 1000).toFixed(1)} s, statuses ${counts.map(([s, n]) => `${s}×${n}`).join(' ')}, slowest ${slowestMs.toFixed(0)} ms`,
  );
}

// --- generators: bodies ---------------------------------------------------------------------------

function validInfer(data: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data }], ...extra };
}

const pixel = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 }));
/** 28×28 values: one generated row, shifted per row (generating 784 values per case costs more than sending them). */
const image784 = fc
  .record({ row: fc.array(pixel, { minLength: 28, maxLength: 28 }), shift: fc.nat(27) })
  .map(({ row, shift }) => Array.from({ length: 784 }, (_, i) => row[(i + Math.floor(i / 28) * shift) % 28]!));

/** Valid infer bodies: flat or nested data, optional id, outputs, parameters. */
const validInferBody = fc
  .record({
    data: image784,
    nested: fc.boolean(),
    id: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    outputs: fc.boolean(),
    timeout: fc.option(fc.integer({ min: 5_000, max: 200_000 }), { nil: undefined }),
  })
  .map(({ data, nested, id, outputs, timeout }) =>
    validInfer(nested ? [[Array.from({ length: 28 }, (_, y) => data.slice(y * 28, y * 28 + 28))]] : data, {
      ...(id !== undefined && { id }),
      ...(outputs && { outputs: [{ name: 'logits' }] }),
      ...(timeout !== undefined && { parameters: { timeout_ms: timeout } }),
    }),
  );

const validClassifyBody = fc
  .record({ image: image784, top: fc.integer({ min: 1, max: 10 }) })
  .map(({ image, top }) => ({
    image: Array.from({ length: 28 }, (_, y) => image.slice(y * 28, y * 28 + 28)),
    top,
  }));

const oddShape = fc.array(
  fc.oneof(
    fc.integer({ min: -3, max: 30 }),
    fc.constantFrom(784, 2 ** 31, 2 ** 32, 2 ** 53, 1e9, 1e300, 1.5, -0, -(2 ** 31)),
  ),
  { maxLength: 7 },
);
const oddDatatype = fc.constantFrom(
  'FP32',
  'FP16',
  'FP64',
  'BF16',
  'INT8',
  'INT32',
  'INT64',
  'UINT8',
  'UINT64',
  'BOOL',
  'BYTES',
  'fp32',
  '',
  'FP32 ',
  'float32',
  'FP3',
);
const oddName = fc.constantFrom(
  'pixels',
  'logits',
  '',
  'PIXELS',
  '__proto__',
  'constructor',
  'x'.repeat(300),
  'pixels\u0000',
);

/** Values that replace one node of a valid body. */
const replacement: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    '',
    'x',
    [],
    {},
    -1,
    0,
    1.5,
    1e308,
    -1e308,
    1e39,
    -1e39,
    2 ** 53,
    2 ** 31,
    -(2 ** 31),
    Number.MIN_VALUE,
  ),
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  oddShape,
  oddDatatype,
  oddName,
  fc.jsonValue({ maxDepth: 3 }),
);

/** Replaces (or deletes, or adds beside) the node that `path` picks, walking by index modulo size. */
function mutateAt(
  value: unknown,
  path: readonly number[],
  action: 'replace' | 'delete' | 'add',
  newValue: unknown,
): unknown {
  if (path.length === 0 || value === null || typeof value !== 'object')
    return action === 'delete' ? undefined : newValue;
  if (Array.isArray(value)) {
    if (value.length === 0) return action === 'add' ? [newValue] : newValue;
    const i = path[0]! % value.length;
    const copy: unknown[] = [...(value as unknown[])];
    const child = mutateAt(copy[i], path.slice(1), action, newValue);
    if (child === undefined) copy.splice(i, 1);
    else copy[i] = child;
    return copy;
  }
  const keys = Object.keys(value);
  if (action === 'add' && path.length === 1)
    return { ...value, [['extra', 'inputs', 'id', '__proto__'][path[0]! % 4]!]: newValue };
  if (keys.length === 0) return newValue;
  const key = keys[path[0]! % keys.length]!;
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const child = mutateAt(copy[key], path.slice(1), action, newValue);
  if (child === undefined) delete copy[key];
  else copy[key] = child;
  return copy;
}

function jsonMutated(valid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc
    .record({
      body: valid,
      edits: fc.array(
        fc.record({
          path: fc.array(fc.nat(), { minLength: 0, maxLength: 6 }),
          action: fc.constantFrom('replace', 'replace', 'delete', 'add'),
          value: replacement,
        }),
        { minLength: 1, maxLength: 3 },
      ),
    })
    .map(
      ({ body, edits }) =>
        JSON.stringify(edits.reduce((b, e) => mutateAt(b, e.path, e.action as 'replace', e.value), body)) ?? 'null',
    );
}

/** Valid JSON text with raw-text damage: JSON cannot say NaN, hex or 1e400, so these are text edits. */
function textMutated(valid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  const literal = fc.constantFrom(
    'NaN',
    'Infinity',
    '-Infinity',
    '1e400',
    '-1e400',
    '0x10',
    '.5',
    '01',
    '+1',
    'undefined',
    'nul',
    '1e39',
    '9'.repeat(5_000),
    '-0',
    '"\\ud800"',
    '{"__proto__":{"x":1}}',
    '{"constructor":{"prototype":{}}}',
  );
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('literal' as const), at: fc.nat(), text: literal }),
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), text: fc.string({ minLength: 1, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), text: fc.constant('') }),
    fc.record({
      kind: fc.constant('nest' as const),
      at: fc.nat(),
      text: fc.constantFrom(...[1, 10, 100, 1_000, 10_000, 100_000].map(String)),
    }),
  );
  return fc.record({ body: valid, edits: fc.array(edit, { minLength: 1, maxLength: 3 }) }).map(({ body, edits }) => {
    let text = JSON.stringify(body);
    for (const e of edits) {
      // Numbers in the text are where NaN-ish literals and nesting hurt: aim at one when there is one.
      const numbers = [...text.matchAll(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi)];
      const target = numbers.length > 0 ? numbers[e.at % numbers.length]! : null;
      const at = e.at % (text.length + 1);
      switch (e.kind) {
        case 'literal':
          text = target
            ? text.slice(0, target.index) + e.text + text.slice(target.index + target[0].length)
            : text + e.text;
          break;
        case 'flip':
          text = text.slice(0, at) + e.text + text.slice(at + e.text.length);
          break;
        case 'cut':
          text = text.slice(0, at);
          break;
        case 'nest': {
          const depth = Number(e.text);
          const nested = '['.repeat(depth) + '1' + ']'.repeat(depth);
          text = target ? text.slice(0, target.index) + nested + text.slice(target.index + target[0].length) : nested;
          break;
        }
      }
    }
    return text;
  });
}

const randomText = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.string({ maxLength: 200 }),
  fc.constantFrom('', '{}', '[]', 'null', '"x"', '{"inputs":null}', '{"inputs":[]}'),
);

function bodies(valid: fc.Arbitrary<unknown>): fc.Arbitrary<{ text: string; valid: boolean }> {
  return fc.oneof(
    { weight: 2, arbitrary: valid.map((b) => ({ text: JSON.stringify(b), valid: true })) },
    { weight: 4, arbitrary: jsonMutated(valid).map((text) => ({ text, valid: false })) },
    { weight: 3, arbitrary: textMutated(valid).map((text) => ({ text, valid: false })) },
    { weight: 1, arbitrary: randomText.map((text) => ({ text, valid: false })) },
  );
}

// --- generators: headers and paths ----------------------------------------------------------------

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 60,
});
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      undefined,
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json;charset=utf-16',
      'application/json, text/plain',
      'application/jsonx',
      'text/plain',
      'text/html',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'image/png',
      'application/octet-stream',
      '',
      ';;;',
      '*/*',
    ),
  },
  { weight: 1, arbitrary: printable },
);
const authorization = fc.oneof(
  { weight: 8, arbitrary: fc.constant(`Bearer ${DEV_TENANT_KEY}`) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `bearer ${DEV_TENANT_KEY}`,
      `Bearer  ${DEV_TENANT_KEY}`,
      `Bearer ${DEV_TENANT_KEY} `,
      `Bearer ${DEV_ADMIN_KEY}`,
      `Basic ${Buffer.from(`${DEV_TENANT_KEY}:`).toString('base64')}`,
      DEV_TENANT_KEY,
      `Bearer ${DEV_TENANT_KEY}, Bearer other`,
      `Bearer ${'k'.repeat(8_000)}`,
    ),
  },
  { weight: 1, arbitrary: printable.map((s) => `Bearer ${s}`) },
);
const requestId = fc.oneof(
  fc.constant(undefined),
  printable,
  fc.constantFrom('', ' ', 'x'.repeat(2_000), '../../etc/passwd', '%00', '{"a":1}'),
);
const timeoutHeader = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '0',
      '-1',
      'abc',
      '1e3',
      ' 5000 ',
      '99999999999999999999',
      '5000',
      '60000',
      '1.5',
      '',
      'NaN',
      '0x1388',
      '5000, 6000',
    ),
  },
  { weight: 1, arbitrary: printable },
);
const modelName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...TASKS) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'base',
      'unknown',
      'FOOTWEAR',
      'foot%20wear',
      '%E2%9C%93',
      '%C0%AF',
      '%',
      '%zz',
      '..%2F..%2Fetc',
      'a'.repeat(300),
      'a'.repeat(5_000),
      '__proto__',
      'constructor',
      'footwear%00',
    ),
  },
);
const version = fc.constantFrom('1', '2', '0', 'latest', '-1', '%', 'x'.repeat(300));

interface GeneratedRequest {
  readonly route: 'infer' | 'infer-version' | 'classify' | 'metadata' | 'ready';
  readonly model: string;
  readonly version: string;
  readonly body: { text: string; valid: boolean };
  readonly contentType: string | undefined;
  readonly authorization: string | undefined;
  readonly requestId: string | undefined;
  readonly timeout: string | undefined;
  readonly top: string | undefined;
}

const common = {
  model: modelName,
  version,
  contentType,
  authorization,
  requestId,
  timeout: timeoutHeader,
  top: fc.constantFrom(undefined, undefined, '1', '3', '0', '-1', '1001', 'abc', '2.5', ''),
};
const generatedRequest: fc.Arbitrary<GeneratedRequest> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      route: fc.constantFrom('infer', 'infer', 'infer', 'infer-version'),
      body: bodies(validInferBody),
      ...common,
    }),
  },
  { weight: 2, arbitrary: fc.record({ route: fc.constant('classify'), body: bodies(validClassifyBody), ...common }) },
  {
    weight: 1,
    arbitrary: fc.record({
      route: fc.constantFrom('metadata', 'ready'),
      body: fc.constant({ text: '', valid: false }),
      ...common,
    }),
  },
);

function caseOf(r: GeneratedRequest): Case {
  const headers: Record<string, string> = {};
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  if (r.authorization !== undefined) headers.authorization = r.authorization;
  if (r.requestId !== undefined) headers['x-request-id'] = r.requestId;
  if (r.timeout !== undefined) headers['x-request-timeout-ms'] = r.timeout;
  const requestedTimeoutMs = requestedTimeout(r);
  const base = { headers, ...(requestedTimeoutMs !== undefined && { requestedTimeoutMs }) };
  switch (r.route) {
    case 'infer':
      return { ...base, method: 'POST', path: `/v2/models/${r.model}/infer`, body: r.body.text };
    case 'infer-version':
      return { ...base, method: 'POST', path: `/v2/models/${r.model}/versions/${r.version}/infer`, body: r.body.text };
    case 'classify':
      return {
        ...base,
        method: 'POST',
        path: `/v1/tasks/${r.model}/classify${r.top === undefined ? '' : `?top=${r.top}`}`,
        body: r.body.text,
      };
    case 'metadata':
      return { ...base, method: 'GET', path: `/v2/models/${r.model}` };
    case 'ready':
      return { ...base, method: 'GET', path: `/v2/models/${r.model}/versions/${r.version}/ready` };
  }
}

/** The deadline a request asked for, if any, in the body (wins) or the header. */
function requestedTimeout(r: GeneratedRequest): number | undefined {
  try {
    const body = JSON.parse(r.body.text) as { parameters?: { timeout_ms?: unknown } };
    const fromBody = body?.parameters?.timeout_ms;
    if (typeof fromBody === 'number') return fromBody;
  } catch {
    // not JSON: only the header can ask
  }
  return r.timeout !== undefined && /^\s*\d+\s*$/.test(r.timeout) ? Number(r.timeout) : undefined;
}

// --- the HTTP fuzz ---------------------------------------------------------------------------------

test(
  `HTTP: ${HTTP_RUNS} generated and mutated requests, no 5xx, no hang, no crash`,
  { timeout: fuzzTimeoutMs(240_000) },
  async (t) => {
    const seed = fuzzSeed(20261201);
    const started = performance.now();
    let valid = 0;
    let ok = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(generatedRequest, { minLength: AT_ONCE, maxLength: AT_ONCE }), async (requests) => {
        await Promise.all(
          requests.map(async (r) => {
            const c = caseOf(r);
            const outcome = await send('http', c);
            if (r.body.valid) valid++;
            if (outcome.status === 200) ok++;
            const problem = violation(c, outcome);
            if (problem !== null)
              throw new Error(
                `${c.method} ${c.path.slice(0, 200)} ${JSON.stringify(c.headers).slice(0, 300)} body ${String(c.body).slice(0, 300)}: ${problem}`,
              );
          }),
        );
      }),
      fuzzSettings(seed, HTTP_RUNS / AT_ONCE),
    );
    report(t, 'http', HTTP_RUNS, performance.now() - started);
    t.diagnostic(`http: seed ${seed}, ${valid} valid bodies generated, ${ok} answered 200`);
    // The generator must reach inference, not only the validators.
    assert.ok(ok > HTTP_RUNS / 20, `only ${ok} of ${HTTP_RUNS} requests were served`);
    await assertStillServing();
  },
);

// --- PNG uploads ---------------------------------------------------------------------------------

interface PngChunk {
  type: string;
  data: Buffer;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunksOf(file: Buffer): PngChunk[] {
  const chunks: PngChunk[] = [];
  for (let at = 8; at + 12 <= file.length;) {
    const length = file.readUInt32BE(at);
    chunks.push({
      type: file.toString('latin1', at + 4, at + 8),
      data: Buffer.from(file.subarray(at + 8, at + 8 + length)),
    });
    at += 12 + length;
  }
  return chunks;
}

function fileOf(chunks: readonly PngChunk[]): Buffer {
  return Buffer.concat([SIGNATURE, ...chunks.map((c) => chunk(c.type, c.data))]);
}

async function seedPngs(): Promise<Buffer[]> {
  const grey = (x: number, y: number): [number, number, number, number] => [(x * 9) % 256, (y * 9) % 256, 128, 255];
  const interlacedRaw = Buffer.alloc(28 * 29); // filter byte + 28 grey bytes per row: valid only non-interlaced
  return [
    await readFile(join(ROOT, 'docs/examples/footwear.png')),
    png(28, 28, grey),
    png(28, 28, grey, 0),
    png(28, 28, grey, 2),
    png(13, 40, grey, 6),
    rawPng({ width: 28, height: 28, raw: interlacedRaw }),
    rawPng({ width: 28, height: 28, bitDepth: 16, raw: Buffer.alloc(28 * 57) }),
  ];
}

type PngEdit =
  | { kind: 'flip'; at: number; xor: number; fixCrc: boolean }
  | { kind: 'truncate'; at: number }
  | {
      kind: 'ihdr';
      field: 'width' | 'height' | 'depth' | 'colour' | 'compression' | 'filter' | 'interlace';
      value: number;
    }
  | { kind: 'length'; chunk: number; value: number }
  | { kind: 'drop'; chunk: number }
  | { kind: 'duplicate'; chunk: number }
  | { kind: 'insert'; chunk: number; type: string; size: number };

const pngEdit: fc.Arbitrary<PngEdit> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
    fixCrc: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('ihdr' as const),
    field: fc.constantFrom('width', 'height', 'depth', 'colour', 'compression', 'filter', 'interlace'),
    value: fc.constantFrom(
      0,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      16,
      27,
      28,
      29,
      255,
      1024,
      1025,
      4096,
      65_535,
      2 ** 31 - 1,
      2 ** 32 - 1,
    ),
  }),
  fc.record({
    kind: fc.constant('length' as const),
    chunk: fc.nat(),
    value: fc.constantFrom(0, 1, 12, 13, 100, 2 ** 16, 2 ** 31 - 1, 2 ** 32 - 1),
  }),
  fc.record({ kind: fc.constant('drop' as const), chunk: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), chunk: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    chunk: fc.nat(),
    type: fc.constantFrom('PLTE', 'IDAT', 'IEND', 'IHDR', 'tEXt', 'abCD', 'tRNS', 'gAMA', 'zTXt'),
    size: fc.constantFrom(0, 1, 3, 13, 768, 100_000),
  }),
);

const IHDR_OFFSETS = { width: 0, height: 4, depth: 8, colour: 9, compression: 10, filter: 11, interlace: 12 } as const;

function applyPngEdits(seedFile: Buffer, edits: readonly PngEdit[]): Buffer {
  let chunks = chunksOf(seedFile);
  let file: Buffer | null = null; // set once a byte-level edit has happened
  for (const edit of edits) {
    if (file === null && (edit.kind === 'flip' || edit.kind === 'truncate' || edit.kind === 'length'))
      file = fileOf(chunks);
    switch (edit.kind) {
      case 'flip': {
        const bytes: Buffer = Buffer.from(file!);
        const at = edit.at % bytes.length;
        bytes[at] = bytes[at]! ^ edit.xor;
        // Recomputing CRCs gets the damage past the CRC check, into the decoder proper.
        file = edit.fixCrc && at >= 8 ? fixCrcs(bytes) : bytes;
        break;
      }
      case 'truncate':
        file = file!.subarray(0, edit.at % (file!.length + 1));
        break;
      case 'length': {
        const bytes: Buffer = Buffer.from(file!);
        const starts = chunkStarts(bytes);
        if (starts.length > 0) bytes.writeUInt32BE(edit.value >>> 0, starts[edit.chunk % starts.length]);
        file = bytes;
        break;
      }
      default:
        if (file !== null) chunks = chunksOf(file);
        file = null;
        chunks = chunkEdit(chunks, edit);
    }
  }
  return file ?? fileOf(chunks);
}

function chunkEdit(chunks: PngChunk[], edit: Exclude<PngEdit, { kind: 'flip' | 'truncate' | 'length' }>): PngChunk[] {
  const copy = chunks.map((c) => ({ type: c.type, data: Buffer.from(c.data) }));
  if (copy.length === 0) return copy;
  switch (edit.kind) {
    case 'ihdr': {
      const ihdr = copy.find((c) => c.type === 'IHDR');
      if (ihdr && ihdr.data.length >= 13) {
        const offset = IHDR_OFFSETS[edit.field];
        if (edit.field === 'width' || edit.field === 'height') ihdr.data.writeUInt32BE(edit.value >>> 0, offset);
        else ihdr.data[offset] = edit.value & 0xff;
      }
      return copy;
    }
    case 'drop':
      copy.splice(edit.chunk % copy.length, 1);
      return copy;
    case 'duplicate': {
      const i = edit.chunk % copy.length;
      copy.splice(i, 0, { type: copy[i]!.type, data: Buffer.from(copy[i]!.data) });
      return copy;
    }
    case 'insert':
      copy.splice(edit.chunk % (copy.length + 1), 0, { type: edit.type, data: Buffer.alloc(edit.size, 7) });
      return copy;
  }
}

function chunkStarts(file: Buffer): number[] {
  const starts: number[] = [];
  for (let at = 8; at + 12 <= file.length;) {
    starts.push(at);
    at += 12 + file.readUInt32BE(at);
  }
  return starts;
}

function fixCrcs(file: Buffer): Buffer {
  for (let at = 8; at + 12 <= file.length;) {
    const length = file.readUInt32BE(at);
    if (at + 12 + length > file.length) break;
    file.writeUInt32BE(crc32(file.subarray(at + 4, at + 8 + length)), at + 8 + length);
    at += 12 + length;
  }
  return file;
}

test(
  `PNG: ${PNG_RUNS} mutated PNG uploads, no 5xx, no hang, no crash`,
  { timeout: fuzzTimeoutMs(180_000) },
  async (t) => {
    const seeds = await seedPngs();
    const pngCase = fc.record({
      which: fc.nat(seeds.length - 1),
      edits: fc.array(pngEdit, { minLength: 1, maxLength: 3 }),
      task: fc.constantFrom(...TASKS),
    });
    const seed = fuzzSeed(1201);
    const started = performance.now();
    let served = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(pngCase, { minLength: AT_ONCE, maxLength: AT_ONCE }), async (cases) => {
        await Promise.all(
          cases.map(async ({ which, edits, task }) => {
            const body = applyPngEdits(seeds[which]!, edits);
            const c: Case = {
              method: 'POST',
              path: `/v1/tasks/${task}/classify`,
              headers: { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'image/png' },
              body,
            };
            const outcome = await send('png', c);
            if (outcome.status === 200) served++;
            const problem = violation(c, outcome);
            if (problem !== null) throw new Error(`seed PNG ${which}, edits ${JSON.stringify(edits)}: ${problem}`);
          }),
        );
      }),
      fuzzSettings(seed, PNG_RUNS / AT_ONCE),
    );
    report(t, 'png', PNG_RUNS, performance.now() - started);
    t.diagnostic(`png: seed ${seed}, ${served} mutated PNGs still decoded and classified (200)`);
    await assertStillServing();
  },
);

// --- delta files through admin registration ---------------------------------------------------------

test(
  `deltas: ${DELTA_RUNS} mutated delta files registered through the admin API, no 5xx, no crash`,
  { timeout: fuzzTimeoutMs(120_000) },
  async (t) => {
    const original = new Uint8Array(await readFile(join(gateway.dir, 'tasks/coarse4/delta.safetensors')));
    await mkdir(join(gateway.dir, 'fuzz'), { recursive: true });
    const seed = fuzzSeed(7);
    const started = performance.now();
    let n = 0;
    let accepted = 0;
    const admin = { authorization: `Bearer ${DEV_ADMIN_KEY}`, 'content-type': 'application/json' };
    await fc.assert(
      fc.asyncProperty(fc.array(deltaMutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const bytes: Uint8Array = mutatedDelta(original, mutations);
        const name = `fuzz${n++}`;
        await writeFile(join(gateway.dir, 'fuzz', `${name}.safetensors`), bytes);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const registered = await send('delta', {
          method: 'POST',
          path: '/admin/tasks',
          headers: admin,
          body: JSON.stringify({ name, version: '1', uri: `fuzz/${name}.safetensors`, sha256, numClasses: 4 }),
        });
        const problem = violation({ method: 'POST', path: '/admin/tasks', headers: admin }, registered);
        if (problem !== null) throw new Error(`mutations ${JSON.stringify(mutations).slice(0, 500)}: ${problem}`);
        if (registered.status !== 201) return;
        accepted++;
        // An accepted delta must serve (or say why the outputs cannot be sent), and retire cleanly.
        const inferred = await send('delta', {
          method: 'POST',
          path: `/v2/models/${name}/infer`,
          headers: { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify(validInfer(new Array<number>(784).fill(0.5))),
        });
        assert.ok(
          inferred.status === 200 || inferred.status === 422,
          `${name}: infer answered ${inferred.status} ${inferred.body}`,
        );
        const retired = await send('delta', {
          method: 'DELETE',
          path: `/admin/tasks/${name}`,
          headers: { authorization: `Bearer ${DEV_ADMIN_KEY}` },
        });
        assert.equal(retired.status, 200, retired.body);
      }),
      fuzzSettings(seed, DELTA_RUNS),
    );
    report(t, 'delta', DELTA_RUNS, performance.now() - started);
    t.diagnostic(
      `delta registrations: seed ${seed}, ${accepted} of ${DELTA_RUNS} mutated deltas still valid (201, served, retired)`,
    );
    await assertStillServing();
  },
);

// --- admin registration bodies -----------------------------------------------------------------------

/** Delta locations an admin (or a stolen admin key) might try: traversal, other schemes, internal hosts. */
const oddUri = fc.constantFrom(
  '../zoo.yaml',
  'tasks/../../../etc/passwd',
  '/etc/passwd',
  'file:///etc/passwd',
  'file://localhost/etc/passwd',
  '%2e%2e/%2e%2e/etc/passwd',
  'tasks/coarse4',
  'tasks/coarse4/delta.safetensors?x=1#y',
  'C:\\Windows\\win.ini',
  'tasks/coarse4/delta.safetensors\u0000.png',
  '',
  ' ',
  'ftp://deltas.example.com/x',
  'data:application/octet-stream;base64,AAAA',
  'https://169.254.169.254/latest/meta-data',
  'http://127.0.0.1:1/x',
  'https://[::1]/x',
  'https://user:pass@deltas.example.com/x?sig=secret',
  'x'.repeat(5_000),
);

/** A PUT names the task in its path; its body has no `name` (when the body is an object at all). */
function withoutName(text: string): string {
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return text;
    const { name: _name, ...rest } = body as Record<string, unknown>;
    return JSON.stringify(rest);
  } catch {
    return text;
  }
}

test(
  `admin: ${ADMIN_RUNS} generated and mutated registration requests, no 5xx, no crash`,
  { timeout: fuzzTimeoutMs(120_000) },
  async (t) => {
    const sha256 = createHash('sha256')
      .update(await readFile(join(gateway.dir, 'tasks/coarse4/delta.safetensors')))
      .digest('hex');
    const seed = fuzzSeed(300);
    const started = performance.now();
    let n = 0;
    // Mostly the right value, sometimes an odd one: enough registrations succeed to exercise the rest.
    const mostly = <T>(good: T, odd: fc.Arbitrary<T>) =>
      fc.oneof({ weight: 4, arbitrary: fc.constant(good) }, { weight: 1, arbitrary: odd });
    const validBody = fc.record(
      {
        name: mostly(
          'admin-fuzz',
          fc.constantFrom('coarse4', 'base', 'a'.repeat(257), 'Ünïcode', 'a/b', '__proto__', ''),
        ),
        version: mostly<string | number>(
          '1',
          fc.oneof(fc.constantFrom('2', 'v1.0', ''), fc.integer({ min: -1, max: 3 })),
        ),
        uri: mostly('tasks/coarse4/delta.safetensors', oddUri),
        sha256: mostly(sha256, fc.constantFrom(sha256.toUpperCase(), 'a'.repeat(64), 'xyz', '')),
        labels: fc.option(
          mostly(
            ['tops', 'bottoms', 'footwear', 'bags'],
            fc.constantFrom([], new Array<string>(11).fill('x'), new Array<string>(5_000).fill('y')),
          ),
          { nil: undefined },
        ),
        numClasses: fc.option(mostly(4, fc.constantFrom(10, 11, 0, -1, 1.5)), { nil: undefined }),
        description: fc.option(fc.string({ maxLength: 50 }), { nil: undefined }),
        default: fc.option(fc.boolean(), { nil: undefined }),
      },
      { requiredKeys: ['name', 'version', 'uri', 'sha256'] },
    );
    const adminRequest = fc.record({
      method: fc.constantFrom('POST', 'POST', 'PUT', 'DELETE'),
      body: bodies(validBody),
      version: fc.constantFrom(undefined, '1', '2', 'x'.repeat(300)),
    });
    const admin = { authorization: `Bearer ${DEV_ADMIN_KEY}`, 'content-type': 'application/json' };
    await fc.assert(
      fc.asyncProperty(fc.array(adminRequest, { minLength: AT_ONCE, maxLength: AT_ONCE }), async (requests) => {
        await Promise.all(
          requests.map(async (r) => {
            // Distinct names per request, so concurrent registrations never race for one name.
            const name = `admin-fuzz-${n++}`;
            const text = r.body.text.replaceAll('"admin-fuzz"', JSON.stringify(name));
            const c: Case =
              r.method === 'POST'
                ? { method: 'POST', path: '/admin/tasks', headers: admin, body: text }
                : r.method === 'PUT'
                  ? { method: 'PUT', path: `/admin/tasks/${name}`, headers: admin, body: withoutName(text) }
                  : {
                      method: 'DELETE',
                      path: `/admin/tasks/${name}${r.version === undefined ? '' : `?version=${r.version}`}`,
                      headers: { authorization: admin.authorization },
                    };
            const outcome = await send('admin', c);
            const problem = violation(c, outcome);
            if (problem !== null)
              throw new Error(`${c.method} ${c.path.slice(0, 100)} body ${text.slice(0, 300)}: ${problem}`);
            // Credentials in a delta URI are never echoed (redacted in answers, as in logs).
            if (/pass@|sig=secret/.test(outcome.body))
              throw new Error(`${c.method} ${c.path} echoed URI credentials: ${outcome.body.slice(0, 300)}`);
            if (outcome.status === 201) {
              const registered = (JSON.parse(outcome.body) as { task: { name: string } }).task.name;
              const retired = await send('admin', {
                method: 'DELETE',
                path: `/admin/tasks/${encodeURIComponent(registered)}`,
                headers: { authorization: admin.authorization },
              });
              assert.equal(retired.status, 200, retired.body);
            }
          }),
        );
      }),
      fuzzSettings(seed, ADMIN_RUNS / AT_ONCE),
    );
    report(t, 'admin', ADMIN_RUNS, performance.now() - started);
    t.diagnostic(`admin: seed ${seed}`);
    // Nothing registered by the fuzz is left behind, and the zoo is intact.
    const tasks = JSON.parse(
      (await send('admin', { method: 'GET', path: '/admin/tasks', headers: { authorization: admin.authorization } }))
        .body,
    ) as { tasks: { name: string }[] };
    assert.deepEqual([...new Set(tasks.tasks.map((task) => task.name))].sort(), [...TASKS].sort());
    await assertStillServing();
  },
);
