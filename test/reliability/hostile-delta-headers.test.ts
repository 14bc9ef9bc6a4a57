/**
 * Hostile delta headers against a real gateway (issue 22, item 4): while deltas whose headers are
 * nested a million levels deep, hold 300 k empty entries or a 3 M-dimension shape are registered
 * again and again (each answered 422, DS_ERR_DELTA_HEADER_LIMIT, with a short message), a cached
 * task keeps its latency: the median of back-to-back probes stays within a small ratio of its
 * baseline, measured in the same run. Before the header guard, each registration held the engine
 * worker (the thread that runs batches) in JSON.parse for seconds.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import {
  ADMIN_HEADERS,
  INFER_BODY,
  TENANT_HEADERS,
  ZOO,
  median,
  startGateway,
  type GatewayProcess,
} from './gateway-process.js';

/** Probes' median during the attack over the baseline median (generous: a shared 2-core machine). */
const LATENCY_RATIO_BOUND = 4;
const CONCURRENT_REGISTRATIONS = 3;
const ROUNDS = 2;

function headerFile(header: string): Uint8Array {
  const bytes = Buffer.from(header);
  const out = new Uint8Array(8 + bytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(bytes.length), true);
  out.set(bytes, 8);
  return out;
}

const HOSTILE: Record<string, () => Uint8Array> = {
  nested: () => headerFile('{"a":'.repeat(1_000_000) + '1' + '}'.repeat(1_000_000)),
  entries: () => headerFile(`{${Array.from({ length: 300_000 }, (_, i) => `"t${i}":{}`).join(',')}}`),
  shape: () =>
    headerFile(JSON.stringify({ t: { dtype: 'F32', shape: new Array(3_000_000).fill(1), data_offsets: [0, 4] } })),
};

let dir: string;
let gateway: GatewayProcess;
let pool: Pool;
const files = new Map<string, { uri: string; sha256: string }>();
const figures: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-hostile-'));
  for (const [name, make] of Object.entries(HOSTILE)) {
    const bytes = make();
    await writeFile(join(dir, `${name}.safetensors`), bytes);
    files.set(name, { uri: `${name}.safetensors`, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  // The cached task: a zoo delta under this test's delta root.
  const cached = await readFile(join(ZOO, 'tasks/footwear/delta.safetensors'));
  await writeFile(join(dir, 'cached.safetensors'), cached);
  const task = {
    name: 'cached',
    version: '1',
    uri: 'cached.safetensors',
    sha256: createHash('sha256').update(cached).digest('hex'),
  };
  gateway = await startGateway({ deltas: { fileRoot: dir }, registry: { tasks: [task] } });
  pool = new Pool(gateway.url, { connections: 8 });
});

after(async () => {
  await pool?.close();
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
  if (figures.length > 0) console.log(`hostile-delta-headers figures:\n  ${figures.join('\n  ')}`);
});

async function probe(): Promise<number> {
  const started = performance.now();
  const response = await pool.request({
    path: '/v2/models/cached/infer',
    method: 'POST',
    headers: TENANT_HEADERS,
    body: INFER_BODY,
  });
  const text = await response.body.text();
  assert.equal(response.statusCode, 200, text.slice(0, 500));
  return performance.now() - started;
}

let registrations = 0;
async function register(kind: string): Promise<{ status: number; code?: string; error?: string }> {
  const { uri, sha256 } = files.get(kind)!;
  const response = await pool.request({
    path: '/admin/tasks',
    method: 'POST',
    headers: ADMIN_HEADERS,
    body: JSON.stringify({ name: `hostile-${kind}-${registrations++}`, version: '1', uri, sha256 }),
  });
  return { status: response.statusCode, ...((await response.body.json()) as { code?: string; error?: string }) };
}

test(
  'hostile delta headers are refused with a short 422 and a cached task keeps its latency meanwhile',
  { timeout: 120_000 },
  async () => {
    for (let i = 0; i < 10; i++) await probe(); // load and warm the cached task
    const baseline: number[] = [];
    for (let i = 0; i < 40; i++) baseline.push(await probe());

    let attacking = true;
    const answers: { kind: string; status: number; code?: string; error?: string }[] = [];
    const attack = Promise.all(
      Array.from({ length: CONCURRENT_REGISTRATIONS }, async () => {
        for (let round = 0; round < ROUNDS; round++) {
          for (const kind of Object.keys(HOSTILE)) answers.push({ kind, ...(await register(kind)) });
        }
      }),
    ).finally(() => (attacking = false));
    const during: number[] = [];
    while (attacking || during.length < 10) during.push(await probe());
    await attack;

    const ratio = median(during) / median(baseline);
    figures.push(
      `cached task median ${median(during).toFixed(2)} ms over ${during.length} probes during ${answers.length} hostile registrations ` +
        `(${CONCURRENT_REGISTRATIONS} at a time) vs ${median(baseline).toFixed(2)} ms baseline: ${ratio.toFixed(2)} ×`,
    );
    for (const answer of answers) {
      assert.equal(answer.status, 422, JSON.stringify(answer).slice(0, 500));
      assert.match(answer.error ?? '', /DS_ERR_DELTA_HEADER_LIMIT|structural limit/, answer.kind);
      assert.ok((answer.error ?? '').length < 1000, `${answer.kind}: ${answer.error?.length} characters`);
    }
    assert.ok(ratio <= LATENCY_RATIO_BOUND, figures.at(-1));
    assert.equal(gateway.exited(), null);
  },
);
