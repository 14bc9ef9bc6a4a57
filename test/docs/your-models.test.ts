/**
 * docs/your-models.md runs as pasted: every ```sh block, in order, as one bash script, in a
 * scratch folder that sees the repository (package.json, node_modules, sources, models/, docs/,
 * loadtest/) through symlinks and gets its own my-tasks/. The only change is the port: the
 * script's gateway listens on a free one (DELTASERVE_PORT overrides the config file's 8080, and
 * every 127.0.0.1:8080 in the script is rewritten to it).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/gateway-process.js';

const LINKED = ['package.json', 'node_modules', 'src', 'models', 'docs', 'loadtest', 'tsconfig.json'];

let dir: string;
let pid: number | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-your-models-'));
  for (const name of LINKED) await symlink(join(ROOT, name), join(dir, name));
});

after(async () => {
  if (pid !== undefined) {
    try {
      process.kill(-pid, 'SIGKILL'); // the script's process group: a gateway left by a failed run
    } catch {
      // already gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('docs/your-models.md: every shell command runs as pasted on the demo zoo', async () => {
  const text = await readFile(join(ROOT, 'docs', 'your-models.md'), 'utf8');
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 7, `only ${blocks.length} shell blocks`);
  for (const file of ['docs/examples/your-models/gateway.yaml', 'docs/examples/your-models/load.json'])
    await access(join(ROOT, file));
  const port = await freePort();
  const script = ['set -euo pipefail', ...blocks].join('\n').replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`);
  const child = spawn('bash', ['-c', script], {
    cwd: dir,
    detached: true,
    env: { ...process.env, DELTASERVE_PORT: String(port), DELTASERVE_CONFIG: '', DELTASERVE_LOG_LEVEL: 'warn' },
  });
  pid = child.pid;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const log = await readFile(join(dir, 'my-tasks', 'gateway.log'), 'utf8').catch(() => '(no gateway log)');
  const context = `--- stdout\n${stdout.slice(-6000)}\n--- stderr\n${stderr.slice(-6000)}\n--- gateway log\n${log.slice(-3000)}`;
  assert.equal(status, 0, `exit ${status}\n${context}`);

  assert.match(stdout, /"samples": 256/, context);
  assert.match(stdout, /"method": "darex-q"|"method": "dare"/, context);
  const accuracies = [...stdout.matchAll(/"accuracy": ([0-9.]+)/g)].map((m) => Number(m[1]));
  assert.equal(accuracies.length, 2, context);
  assert.ok(accuracies[0]! > 0.9 && accuracies[1]! > 0.9, `eval accuracies ${accuracies}`);
  assert.match(stdout, /"task":"coarse4","version":"1","labels":\[\{"label":"footwear"/, context);
  assert.match(stdout, /"task":"footwear","version":"1","labels":\[\{"label":"footwear"/, context);
  const summary = JSON.parse(await readFile(join(dir, 'my-tasks', 'load', 'summary.json'), 'utf8')) as unknown;
  assert.ok(JSON.stringify(summary).includes('zipf'), 'the load summary names its scenario');
});
