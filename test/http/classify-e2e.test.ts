/**
 * The quick-start path end to end: a zoo manifest (tiny 28×28 image classifier + two task
 * deltas) booted by `bootGateway` exactly as `deltaserve serve` does, then the try-by-hand
 * classify route with PNG and JSON images, labels from the manifest.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { request } from 'undici';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';
import { sha256Hex } from '../../src/core/sha256.js';
import { bootGateway, type Gateway } from '../../src/server.js';
import { IMAGE_LABELS, biasDelta, makeConfig, writeDelta, writeImageModel } from './fixtures.js';
import { HOSTILE_PNGS, rawPng } from './png/png-bytes.js';

const COARSE = ['tops', 'bottoms', 'footwear', 'bags'];

let dir: string;
let gateway: Gateway;
let url: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-classify-'));
  await mkdir(join(dir, 'zoo', 'tasks'), { recursive: true });
  const model = await writeImageModel(join(dir, 'zoo'));
  const sevens = await writeDelta(join(dir, 'zoo', 'tasks'), 'sevens.safetensors', biasDelta(model.fingerprint, 7));
  const coarse = await writeDelta(join(dir, 'zoo', 'tasks'), 'coarse.safetensors', biasDelta(model.fingerprint, 2));
  await writeFile(
    join(dir, 'zoo', 'zoo.yaml'),
    stringify({
      base: { model: 'image-model.onnx', fingerprint: model.fingerprint, labels: IMAGE_LABELS },
      tasks: [
        {
          name: 'sevens',
          version: '1',
          description: 'always seven',
          delta: 'tasks/sevens.safetensors',
          sha256: sevens.sha256,
          labels: IMAGE_LABELS,
          numClasses: 10,
        },
        {
          name: 'coarse',
          version: '1',
          description: 'four groups',
          delta: 'tasks/coarse.safetensors',
          sha256: coarse.sha256,
          labels: COARSE,
          numClasses: 4,
        },
      ],
    }),
  );
  const config = makeConfig(
    {
      devMode: true,
      listen: { host: '127.0.0.1', port: 0 },
      model: { manifest: 'zoo/zoo.yaml' },
      engine: { intraOpThreads: 1 },
      registry: { stateFile: 'state.json' },
      tenants: [{ name: 'dev', keySha256: [sha256Hex(DEV_TENANT_KEY)], tasks: ['*'] }],
      admin: { keySha256: [sha256Hex(DEV_ADMIN_KEY)] },
      logLevel: 'silent',
      shutdownGraceMs: 2000,
    },
    dir,
  );
  gateway = await bootGateway(config);
  url = await gateway.listen();
});

let shutDown = false;

after(async () => {
  if (!shutDown) await gateway?.shutdown();
  await rm(dir, { recursive: true, force: true });
});

async function classify(task: string, body: Buffer | object, query = '') {
  const png = Buffer.isBuffer(body);
  const response = await request(`${url}/v1/tasks/${task}/classify${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': png ? 'image/png' : 'application/json' },
    body: png ? body : JSON.stringify(body),
  });
  return {
    status: response.statusCode,
    json: (await response.body.json()) as {
      task: string;
      labels: { label: string; probability: number }[];
      error?: string;
      code?: string;
    },
  };
}

/** A grey RGBA PNG of any size. */
function png(width: number, height: number, alpha = 255): Buffer {
  const image = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) image.data.set([200, 120, 40, alpha], i * 4);
  return PNG.sync.write(image);
}

test('the manifest tasks are registered with their labels', async () => {
  assert.deepEqual(gateway.registry.names(), ['coarse', 'sevens']);
  assert.deepEqual(gateway.registry.get('coarse')?.labels, COARSE);
});

test("a PNG of any size is classified; probabilities are a softmax over the task's classes", async () => {
  const result = await classify('sevens', png(57, 31), '?top=3');
  assert.equal(result.status, 200, JSON.stringify(result.json));
  assert.equal(result.json.task, 'sevens');
  assert.equal(result.json.labels.length, 3);
  assert.equal(result.json.labels[0]!.label, 'seven');
  assert.ok(result.json.labels[0]!.probability > 0.99);
  const all = await classify('sevens', png(28, 28), '?top=10');
  const total = all.json.labels.reduce((sum, l) => sum + l.probability, 0);
  assert.ok(Math.abs(total - 1) < 1e-9, `probabilities sum to ${total}`);
});

test('a task with fewer classes than the base reports only its own labels', async () => {
  const result = await classify(
    'coarse',
    { image: Array.from({ length: 28 }, () => new Array<number>(28).fill(0.5)) },
    '?top=10',
  );
  assert.equal(result.status, 200, JSON.stringify(result.json));
  assert.deepEqual(result.json.labels.map((l) => l.label).sort(), [...COARSE].sort());
  assert.equal(result.json.labels[0]!.label, 'footwear');
});

test("the base model classifies with the manifest's base labels", async () => {
  const result = await classify('base', {
    image: Array.from({ length: 28 }, () => new Array<number>(28).fill(255)),
    top: 2,
  });
  assert.equal(result.status, 200, JSON.stringify(result.json));
  assert.equal(result.json.labels.length, 2);
  assert.ok(IMAGE_LABELS.includes(result.json.labels[0]!.label));
});

test('bad images are 400s that say what is wrong; unknown tasks 404', async () => {
  const notPng = await classify('sevens', Buffer.from('GIF89a not a png at all, sorry'));
  assert.equal(notPng.status, 400);
  assert.equal(notPng.json.code, 'DS_ERR_IMAGE_INVALID');
  const wrongSize = await classify('sevens', { image: [[1, 2, 3]] });
  assert.equal(wrongSize.status, 400);
  assert.match(wrongSize.json.error!, /28 rows of 28/);
  const outOfRange = await classify('sevens', { image: new Array<number>(784).fill(300) });
  assert.equal(outOfRange.status, 400);
  assert.equal((await classify('nope', png(28, 28))).status, 404);
});

test('hostile PNGs (0×0, data that inflates short, too many pixels) are 400s and the gateway keeps serving', async () => {
  // Each of the first two used to kill the process (an 'error' event pngjs emitted with no listener).
  for (const [name, bytes] of Object.entries(HOSTILE_PNGS)) {
    const refused = await classify('sevens', bytes());
    assert.equal(refused.status, 400, `${name}: ${JSON.stringify(refused.json)}`);
    assert.equal(refused.json.code, 'DS_ERR_IMAGE_INVALID');
  }
  const tooBig = await classify('sevens', rawPng({ width: 2048, height: 2048, raw: Buffer.alloc(2048 * 2049) }));
  assert.equal(tooBig.status, 400);
  assert.match(tooBig.json.error!, /4194304 pixels, more than the limit of 1048576/);
  const health = await request(`${url}/v2/health/live`);
  assert.equal(health.statusCode, 200);
  await health.body.dump();
  assert.equal((await classify('sevens', png(28, 28))).status, 200);
});

test('shutdown: the engine stops and the port refuses connections', async () => {
  const ready = await request(`${url}/v2/health/ready`);
  assert.equal(ready.statusCode, 200);
  await ready.body.dump();
  shutDown = true;
  assert.deepEqual(await gateway.shutdown(), { forced: false });
  assert.equal(gateway.engine.ready, false);
  await assert.rejects(
    request(`${url}/v2/health/live`, { reset: true }),
    (error: Error & { code?: string }) => error.code === 'ECONNREFUSED',
  );
});
