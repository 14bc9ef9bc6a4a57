/**
 * `deltaserve serve` as a real process: the quick start (dev keys printed, zoo served, curl-able
 * as documented), SIGTERM → graceful exit 0, an invalid configuration or a GPU provider that
 * cannot start → one error line, exit 1 (or, with a fallback provider, a warning and service).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';
import { sha256Hex } from '../../src/core/sha256.js';
import { IMAGE_LABELS, biasDelta, writeDelta, writeImageModel } from './fixtures.js';
import { ROOT, listeningUrl, serve } from '../helpers/gateway-process.js';

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
      tasks: [
        {
          name: 'rotated',
          version: '1',
          delta: 'tasks/rotated.safetensors',
          sha256: delta.sha256,
          labels: IMAGE_LABELS,
          numClasses: 10,
        },
      ],
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
      body: JSON.stringify({ image: Array.from({ length: 28 }, () => new Array<number>(28).fill(0)) }),
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
  const served = serve(['--config', join(dir, 'gateway.yaml')], {
    DELTASERVE_PORT: 'eighty',
    DELTASERVE_DEV_MODE: 'false',
  });
  assert.equal(await served.exit, 1);
  const lines = served.stderr().trim().split('\n');
  assert.equal(lines.length, 1, served.stderr());
  assert.match(lines[0]!, /\[DS_ERR_CONFIG_INVALID\].*DELTASERVE_PORT\): listen\.port: expected an integer/);
});

/** Waits (30 s at most) for a process whose start-up must fail, and returns its one error line: exit 1, one line. */
async function startUpFailure(served: ReturnType<typeof serve>): Promise<string> {
  const code = await Promise.race([
    served.exit,
    new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref()),
  ]);
  served.child.kill('SIGKILL');
  assert.equal(code, 1, served.stderr());
  const errors = served
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('error'));
  assert.equal(errors.length, 1, served.stderr());
  return errors[0]!;
}

test('a FIFO at the state-file path or the config path stops start-up at once: exit 1, one line naming it', async () => {
  const { execFileSync } = await import('node:child_process');
  const fifo = join(dir, 'state.fifo');
  execFileSync('mkfifo', [fifo]);
  for (const [args, env] of [
    [['--config', join(dir, 'gateway.yaml')], { DELTASERVE_PORT: '0', DELTASERVE_REGISTRY_STATE_FILE: fifo }],
    [['--config', fifo], { DELTASERVE_PORT: '0' }],
  ] as const) {
    // It used to hang silently: no error, no listen, no exit.
    const error = await startUpFailure(serve([...args], env));
    assert.ok(error.includes(`${fifo} is a FIFO (named pipe), not a regular file`), error);
  }
});

test('a port already in use stops start-up promptly: exit 1, one line naming the address', async () => {
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    // It used to print EADDRINUSE and then hang forever on the engine worker.
    const error = await startUpFailure(
      serve(['--config', join(dir, 'gateway.yaml')], { DELTASERVE_PORT: String(port) }),
    );
    assert.match(
      error,
      new RegExp(
        `\\[DS_ERR_LISTEN_FAILED\\]: Cannot listen on 127\\.0\\.0\\.1:${port}: port ${port} is already in use`,
      ),
    );
  } finally {
    blocker.close();
  }
});

// VK_DRIVER_FILES naming no file hides every Vulkan driver, so these run the same on any machine.
const NO_VULKAN = {
  DELTASERVE_PORT: '0',
  DELTASERVE_EXECUTION_PROVIDER: 'webgpu',
  VK_DRIVER_FILES: '/nonexistent/icd.json',
};

test('a GPU provider that cannot start stops start-up with one error line naming what is missing', async () => {
  const served = serve(['--config', join(dir, 'gateway.yaml')], NO_VULKAN);
  assert.equal(await served.exit, 1);
  // Dawn and the Vulkan loader print their own warnings natively; ours is the one error line.
  const errors = served
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('error'));
  assert.equal(errors.length, 1, served.stderr());
  assert.match(
    errors[0]!,
    /\[DS_ERR_ENGINE_START_FAILED\].*webgpu cannot start: no WebGPU adapter: (the Vulkan loader libvulkan\.so\.1 is not installed|no Vulkan driver is installed \(no ICD manifest in \/nonexistent\/icd\.json\))/,
  );
});

test('with a fallback provider configured, start-up logs why the GPU provider did not start and serves on the fallback', async () => {
  const served = serve(['--config', join(dir, 'gateway.yaml')], {
    ...NO_VULKAN,
    DELTASERVE_FALLBACK_EXECUTION_PROVIDER: 'cpu',
  });
  try {
    const url = await listeningUrl(served);
    const warning = served
      .stdout()
      .split('\n')
      .find((line) => line.includes('serving on the fallback'));
    assert.ok(warning, served.stdout());
    const logged = JSON.parse(warning) as {
      level: number;
      configured: string;
      executionProvider: string;
      reason: string;
    };
    assert.deepEqual([logged.level, logged.configured, logged.executionProvider], [40, 'webgpu', 'cpu']);
    assert.match(logged.reason, /no WebGPU adapter/);
    const ready = await request(`${url}/v2/health/ready`);
    assert.equal(ready.statusCode, 200);
    await ready.body.dump();
    served.child.kill('SIGTERM');
    assert.equal(await served.exit, 0);
  } finally {
    served.child.kill('SIGKILL');
  }
});

test('the compiled build serves the packaged default configuration and the committed zoo (npm start, Docker CMD)', async () => {
  const { spawnSync } = await import('node:child_process');
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  const served = serve(
    [],
    {
      DELTASERVE_CONFIG: '',
      DELTASERVE_PORT: '0',
      DELTASERVE_REGISTRY_STATE_FILE: join(dir, 'var', 'quickstart.json'),
    },
    [join(ROOT, 'dist/cli/bin.js')],
  );
  try {
    const url = await listeningUrl(served);
    const auth = { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' };
    const square = Array.from({ length: 28 }, (_, y) =>
      Array.from({ length: 28 }, (_, x) => (x > 8 && x < 20 && y > 8 && y < 20 ? 255 : 0)),
    );
    const classified = await request(`${url}/v1/tasks/coarse4/classify`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ image: square, top: 3 }),
    });
    assert.equal(classified.statusCode, 200);
    const body = (await classified.body.json()) as { task: string; labels: { label: string; probability: number }[] };
    assert.equal(body.task, 'coarse4');
    assert.equal(body.labels.length, 3);
    assert.ok(body.labels.every((l) => ['tops', 'bottoms', 'footwear', 'bags'].includes(l.label)));
    const infer = await request(`${url}/v2/models/footwear/infer`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        id: 'req-1',
        inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array<number>(784).fill(0) }],
      }),
    });
    assert.equal(infer.statusCode, 200);
    const inferred = (await infer.body.json()) as { id: string; outputs: { name: string; shape: number[] }[] };
    assert.equal(inferred.id, 'req-1');
    assert.deepEqual(inferred.outputs[0]!.shape, [1, 10]);
    served.child.kill('SIGTERM');
    assert.equal(await served.exit, 0);
  } finally {
    served.child.kill('SIGKILL');
  }
});
