/**
 * `deltaserve serve` as a real process: the quick start (dev keys printed, zoo served, curl-able
 * as documented), SIGTERM → graceful exit 0, and an invalid configuration → one error line,
 * exit 1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY, sha256Hex } from '../../src/core/config-dev-keys.js';
import { IMAGE_LABELS, biasDelta, writeDelta, writeImageModel } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-serve-'));
  await mkdir(join(dir, 'models', 'tasks'), { recursive: true });
  const model = await writeImageModel(join(dir, 'models'));
  const delta = await writeDelta(join(dir, 'models', 'tasks'), 'rotated.safetensors', biasDelta(model.fingerprint, 4));
  await writeFile(
    join(dir, 'models', 'zoo.yaml'),
    stringify({
      base: { model: 'image-model.onnx', fingerprint: model.fingerprint, labels: IMAGE_LABELS },
      tasks: [{ name: 'rotated', version: '1', delta: 'tasks/rotated.safetensors', sha256: delta.sha256, labels: IMAGE_LABELS, numClasses: 10 }],
    }),
  );
  await writeFile(
    join(dir, 'gateway.yaml'),
    stringify({
      devMode: true,
      listen: { host: '127.0.0.1', port: 8080 },
      model: { manifest: 'models/zoo.yaml' },
      engine: { intraOpThreads: 1 },
      registry: { stateFile: 'var/registry.json' },
      tenants: [{ name: 'dev', keySha256: [sha256Hex(DEV_TENANT_KEY)], tasks: ['*'] }],
      admin: { keySha256: [sha256Hex(DEV_ADMIN_KEY)] },
      logLevel: 'warn',
      shutdownGraceMs: 3000,
    }),
  );
});
after(async () => rm(dir, { recursive: true, force: true }));

interface Served {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<number | null>;
}

function serve(args: string[], env: Record<string, string>): Served {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'serve', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

async function listeningUrl(served: Served): Promise<string> {
  for (;;) {
    const match = /listening on (http:\/\/\S+)/.exec(served.stdout());
    if (match) return match[1]!;
    const exited = await Promise.race([served.exit.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 20))]);
    if (exited) throw new Error(`serve exited early: ${served.stderr()}`);
  }
}

test('the quick start: dev keys printed, the zoo served as documented, SIGTERM exits 0', async () => {
  const served = serve(['--config', join(dir, 'gateway.yaml')], { DELTASERVE_PORT: '0' });
  try {
    const url = await listeningUrl(served);
    assert.match(served.stderr(), /DEVELOPMENT MODE/);
    assert.ok(served.stderr().includes(`tenant key: ${DEV_TENANT_KEY}`));
    assert.ok(served.stderr().includes(`admin key:  ${DEV_ADMIN_KEY}`));

    const ready = await request(`${url}/v2/health/ready`);
    assert.equal(ready.statusCode, 200);
    await ready.body.dump();
    const classified = await request(`${url}/v1/tasks/rotated/classify?top=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ image: Array.from({ length: 28 }, () => new Array(28).fill(0)) }),
    });
    assert.equal(classified.statusCode, 200);
    assert.equal(((await classified.body.json()) as { labels: { label: string }[] }).labels[0]?.label, 'four');

    served.child.kill('SIGTERM');
    assert.equal(await served.exit, 0);
  } finally {
    served.child.kill('SIGKILL');
  }
});

test('an invalid configuration stops start-up with one line naming the field', async () => {
  const served = serve(['--config', join(dir, 'gateway.yaml')], { DELTASERVE_PORT: 'eighty', DELTASERVE_DEV_MODE: 'false' });
  assert.equal(await served.exit, 1);
  const lines = served.stderr().trim().split('\n');
  assert.equal(lines.length, 1, served.stderr());
  assert.match(lines[0]!, /\[DS_ERR_CONFIG_INVALID\].*DELTASERVE_PORT\): listen\.port: expected an integer/);
});
