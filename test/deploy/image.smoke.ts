/**
 * Smoke test of the built container image, run by .ci/image.sh after it builds the image (not a
 * `.test.ts`, so `npm test` does not collect it: it needs root, podman and the image). The
 * container runs as the helm chart runs it: the production configuration the chart renders from
 * helm/deltaserve/ci/production-values.yaml (keys "ci-tenant-key", "ci-admin-key"), its command
 * and environment, a read-only root filesystem with only /tmp and the registry state folder
 * writable, all capabilities dropped, no privilege escalation.
 *
 *   DELTASERVE_IMAGE=localhost/deltaserve:ci node --import tsx --test test/deploy/image.smoke.ts
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';
import { container as chartContainer, envOf, gatewayYaml, render } from './helm.js';

const IMAGE = process.env.DELTASERVE_IMAGE ?? 'localhost/deltaserve:ci';
const LABEL = 'deltaserve-smoke';
/** Kubernetes' default terminationGracePeriodSeconds, the chart's default too. */
const GRACE_PERIOD_MS = 30_000;
const run = promisify(execFile);

async function podman(...args: string[]): Promise<string> {
  return (await run('podman', args, { maxBuffer: 16 << 20 })).stdout.trim();
}

/** Runs podman and returns its exit code and output instead of throwing on a non-zero exit. */
async function podmanStatus(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('podman', args, { maxBuffer: 16 << 20 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      output: `${failed.stdout ?? ''}${failed.stderr ?? ''}`,
    };
  }
}

const HARDENED = [
  '--label',
  LABEL,
  '--read-only',
  '--read-only-tmpfs=false',
  '--tmpfs',
  '/tmp:rw,mode=1777',
  '--tmpfs',
  '/var/lib/deltaserve:rw,mode=0700,U',
  '--cap-drop',
  'ALL',
  '--security-opt',
  'no-new-privileges',
];

const TENANT_KEY = 'ci-tenant-key';
const ADMIN_KEY = 'ci-admin-key';

let container = '';
let base = '';
let configDir = '';

/** Starts a hardened container publishing 8080 on a free loopback port; returns its id and URL. */
async function start(args: readonly string[]): Promise<{ id: string; url: string }> {
  const id = await podman('run', '-d', ...HARDENED, '-p', '127.0.0.1::8080', ...args);
  const port = (await podman('port', id, '8080/tcp')).split(':').pop();
  return { id, url: `http://127.0.0.1:${port}` };
}

before(async () => {
  const objects = render(['production-values.yaml']);
  configDir = mkdtempSync(join(tmpdir(), 'deltaserve-smoke-'));
  chmodSync(configDir, 0o755); // the container's uid 1000 reads it
  writeFileSync(join(configDir, 'gateway.yaml'), gatewayYaml(objects), { mode: 0o644 });
  const env = Object.entries(envOf(objects)).flatMap(([name, value]) => ['-e', `${name}=${value}`]);
  const started = await start([
    ...env,
    '-v',
    `${configDir}:/etc/deltaserve:ro`,
    IMAGE,
    ...(chartContainer(objects).args as string[]),
  ]);
  container = started.id;
  base = started.url;
});

after(async () => {
  if (container !== '') await podmanStatus('rm', '-f', container);
  if (configDir !== '') rmSync(configDir, { recursive: true, force: true });
});

async function call(path: string, init: RequestInit & { key?: string; url?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.key !== undefined) headers.set('authorization', `Bearer ${init.key}`);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  return fetch((init.url ?? base) + path, { ...init, headers });
}

async function waitReady(url: string, id: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await call('/v2/health/ready', { url });
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.fail(`not ready after 90 s (${last}); logs:\n${(await podmanStatus('logs', id)).output}`);
}

const SQUARE = Array.from({ length: 28 }, (_, y) =>
  Array.from({ length: 28 }, (_, x) => (x > 8 && x < 20 && y > 8 && y < 20 ? 255 : 0)),
);

test('the image becomes ready with the configuration the chart renders', async () => {
  await waitReady(base, container);
  const logs = (await podmanStatus('logs', container)).output;
  assert.doesNotMatch(logs, /development mode/i);
});

test('the image healthcheck passes', async () => {
  const { code, output } = await podmanStatus('healthcheck', 'run', container);
  assert.equal(code, 0, output);
});

test('one inference through each API', async () => {
  const classify = await call('/v1/tasks/coarse4/classify', {
    method: 'POST',
    key: TENANT_KEY,
    body: JSON.stringify({ image: SQUARE, top: 2 }),
  });
  assert.equal(classify.status, 200, await classify.clone().text());
  const labels = ((await classify.json()) as { labels: { label: string }[] }).labels.map((l) => l.label);
  assert.equal(labels.length, 2);
  for (const label of labels) assert.ok(['tops', 'bottoms', 'footwear', 'bags'].includes(label), label);

  const infer = await call('/v2/models/footwear/infer', {
    method: 'POST',
    key: TENANT_KEY,
    body: JSON.stringify({
      inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array<number>(784).fill(0) }],
    }),
  });
  assert.equal(infer.status, 200, await infer.clone().text());
  const outputs = ((await infer.json()) as { outputs: { shape: number[]; data: number[] }[] }).outputs;
  assert.deepEqual(outputs[0]!.shape, [1, 10]);
  assert.ok(outputs[0]!.data.every(Number.isFinite));
});

test('the server process runs as uid/gid 1000, not root', async () => {
  const status = await podman('exec', container, 'cat', '/proc/1/status');
  assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
  assert.match(status, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
  assert.match(status, /^CapEff:\s+0+$/m);
  assert.equal(await podman('image', 'inspect', IMAGE, '--format', '{{.Config.User}}'), '1000:1000');
});

test('the root filesystem is read-only and the registry state is written where it is mounted', async () => {
  const write = await podmanStatus('exec', container, 'sh', '-c', 'touch /app/probe');
  assert.notEqual(write.code, 0);
  assert.match(write.output, /Read-only file system/);

  const sha256 = await podman(
    'exec',
    container,
    'node',
    '-e',
    "process.stdout.write(require('crypto').createHash('sha256').update(require('fs').readFileSync('models/tasks/rotated/delta.safetensors')).digest('hex'))",
  );
  const registered = await call('/admin/tasks', {
    method: 'POST',
    key: ADMIN_KEY,
    body: JSON.stringify({ name: 'sideways', version: '1', uri: 'tasks/rotated/delta.safetensors', sha256 }),
  });
  assert.equal(registered.status, 201, await registered.clone().text());
  const state = await podman('exec', container, 'cat', '/var/lib/deltaserve/registry-state.json');
  assert.match(state, /"sideways"/);
});

test('only production dependencies, Node 24, OCI labels', async () => {
  const dev = await podmanStatus('exec', container, 'node', '-e', "require.resolve('typescript')");
  assert.notEqual(dev.code, 0, 'typescript (a devDependency) is in the image');
  assert.match(await podman('exec', container, 'node', '--version'), /^v24\./);
  const labels = JSON.parse(await podman('image', 'inspect', IMAGE, '--format', '{{json .Config.Labels}}')) as Record<
    string,
    string
  >;
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
    license: string;
  };
  assert.equal(labels['org.opencontainers.image.version'], pkg.version);
  assert.equal(labels['org.opencontainers.image.licenses'], pkg.license);
  assert.match(labels['org.opencontainers.image.revision'] ?? '', /^([0-9a-f]{40}|unknown)$/);
});

test('SIGTERM: the gateway drains and exits 0 within the grace period', async () => {
  const started = Date.now();
  await podman('kill', '--signal', 'SIGTERM', container);
  const code = Number(await podman('wait', container));
  const elapsed = Date.now() - started;
  assert.equal(code, 0, (await podmanStatus('logs', container)).output);
  assert.ok(elapsed < GRACE_PERIOD_MS, `took ${elapsed} ms`);
});

test('the documented demo: DELTASERVE_DEV_MODE=true serves the zoo with the public dev key', async () => {
  const demo = await start(['-e', 'DELTASERVE_DEV_MODE=true', IMAGE]);
  try {
    await waitReady(demo.url, demo.id);
    const res = await call('/v1/tasks/coarse4/classify', {
      url: demo.url,
      method: 'POST',
      key: DEV_TENANT_KEY,
      body: JSON.stringify({ image: SQUARE }),
    });
    assert.equal(res.status, 200, await res.text());
  } finally {
    await podmanStatus('rm', '-f', demo.id);
  }
});

test('production by default: without DELTASERVE_DEV_MODE=true the demo keys are refused', async () => {
  const { code, output } = await podmanStatus('run', '--rm', ...HARDENED, IMAGE);
  assert.equal(code, 1, output);
  assert.match(output, /DS_ERR_CONFIG_INVALID.*public development key/);
});
