/**
 * The docs' HTTP examples run as pasted against the demo gateway: every ```sh block of README.md
 * and docs/http-api.md that talks to the gateway ($U or curl), in order, as one bash script per
 * document, in a scratch folder that sees the repository's docs/ and models/. The only changes:
 * the port (the test's gateway listens on a free one) and `curl` failing on HTTP errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCS = ['README.md', 'docs/http-api.md'];

let dir: string;
let port: number;
let stopGateway: () => Promise<void>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-docs-'));
  await symlink(join(ROOT, 'docs'), join(dir, 'docs'));
  await symlink(join(ROOT, 'models'), join(dir, 'models'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, DELTASERVE_CONFIG: '', DELTASERVE_PORT: '0', DELTASERVE_REGISTRY_STATE_FILE: join(dir, 'state.json'), DELTASERVE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  stopGateway = async () => {
    child.kill('SIGTERM');
    await exited;
  };
  const started = Date.now();
  while (!/listening on http:\/\/127\.0\.0\.1:(\d+)/.test(stdout)) {
    if (Date.now() - started > 60_000 || child.exitCode !== null) throw new Error(`the gateway did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)![1]);
});

after(async () => {
  await stopGateway?.();
  await rm(dir, { recursive: true, force: true });
});

/** The shell blocks of a markdown document that talk to the gateway. */
async function gatewayExamples(doc: string): Promise<string[]> {
  const text = await readFile(join(ROOT, doc), 'utf8');
  return [...text.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((block) => block.includes('$U') || /^\s*curl /m.test(block));
}

for (const doc of DOCS) {
  test(`${doc}: the gateway examples run as pasted`, async () => {
    const blocks = await gatewayExamples(doc);
    assert.ok(blocks.length >= 2, `${doc} has ${blocks.length} gateway examples`);
    const script = [
      'set -euo pipefail',
      // Fail on HTTP errors (the examples must succeed), print bodies for the assertions below.
      'curl() { command curl -sS --fail-with-body "$@"; echo; }',
      ...blocks,
    ].join('\n').replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`);
    const result = spawnSync('bash', ['-c', script], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, `${doc}: exit ${result.status}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
    // The shipped sandal is classified as footwear, as the docs say.
    if (blocks.some((b) => b.includes('footwear.png'))) assert.match(result.stdout, /"task":"footwear","version":"1","labels":\[\{"label":"footwear"/);
  });
}
