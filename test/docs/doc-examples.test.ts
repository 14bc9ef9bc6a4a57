/**
 * The docs' HTTP examples run as pasted against the demo gateway: every ```sh block of README.md
 * and docs/http-api.md that talks to the gateway ($U or curl), in order, as one bash script per
 * document, in a scratch folder that sees the repository's docs/ and models/. The only changes:
 * the port (the test's gateway listens on a free one) and `curl` failing on HTTP errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, listeningUrl, serve } from '../helpers/gateway-process.js';

const DOCS = ['README.md', 'docs/http-api.md'];

let dir: string;
let port: number;
let stopGateway: () => Promise<void>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-docs-'));
  await symlink(join(ROOT, 'docs'), join(dir, 'docs'));
  await symlink(join(ROOT, 'models'), join(dir, 'models'));
  const served = serve([], {
    DELTASERVE_CONFIG: '',
    DELTASERVE_PORT: '0',
    DELTASERVE_REGISTRY_STATE_FILE: join(dir, 'state.json'),
    DELTASERVE_LOG_LEVEL: 'warn',
  });
  stopGateway = async () => {
    served.child.kill('SIGTERM');
    await served.exit;
  };
  port = Number(new URL(await listeningUrl(served)).port);
});

after(async () => {
  await stopGateway?.();
  await rm(dir, { recursive: true, force: true });
});

/** The shell blocks of a markdown document that talk to the gateway. */
async function gatewayExamples(doc: string): Promise<string[]> {
  const text = await readFile(join(ROOT, doc), 'utf8');
  return [...text.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .filter((block) => block.includes('$U') || /^\s*curl /m.test(block));
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
    ]
      .join('\n')
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`);
    const result = spawnSync('bash', ['-c', script], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(
      result.status,
      0,
      `${doc}: exit ${result.status}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
    // The shipped sandal is classified as footwear, as the docs say.
    if (blocks.some((b) => b.includes('footwear.png')))
      assert.match(result.stdout, /"task":"footwear","version":"1","labels":\[\{"label":"footwear"/);
  });
}
