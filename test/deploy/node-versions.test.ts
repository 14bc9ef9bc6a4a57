/**
 * Which Node versions are supported, said once and checked: package.json `engines` must admit
 * the Node this suite runs on (CI runs it on the machine's Node 20 and on Node 24 from
 * .ci/node24.sh), the Node 24 that CI fetches, and the one the Dockerfile builds on.
 * Also the cookie@1 override (cookie 2 requires Node 22): light-my-request still encodes cookies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import { TOOLS } from '../../scripts/fetch-tool.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
};

/** `engines` is written as `^A.B.C || ^X.Y.Z`: one caret range per supported major. */
function admits(range: string, version: string): boolean {
  const [major, minor, patch] = version.replace(/^v/, '').split('.').map(Number) as [number, number, number];
  return range.split('||').some((part) => {
    const match = /^\s*\^(\d+)\.(\d+)\.(\d+)\s*$/.exec(part);
    assert.ok(match, `engines part "${part}" is not a caret range`);
    const [lo1, lo2, lo3] = match.slice(1).map(Number) as [number, number, number];
    return major === lo1 && (minor > lo2 || (minor === lo2 && patch >= lo3));
  });
}

test('engines admits the Node running this suite, the Node 24 CI fetches, and no untested major', () => {
  assert.ok(
    admits(pkg.engines.node, process.version),
    `engines "${pkg.engines.node}" does not admit ${process.version}`,
  );
  const ciNode24 = TOOLS.node24.npmPackage.split('@').pop()!;
  assert.ok(admits(pkg.engines.node, ciNode24), `engines does not admit CI's Node ${ciNode24}`);
  assert.ok(!admits(pkg.engines.node, '22.22.0'), 'Node 22 is not tested in CI');
  assert.ok(!admits(pkg.engines.node, '18.20.0'));
});

test('the Dockerfile builds on Node 24', () => {
  const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
  assert.match(dockerfile, /^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
});

test('the cookie version light-my-request gets runs on Node 20 and still encodes inject() cookies', async () => {
  // The cookie that light-my-request (fastify's inject) resolves, wherever npm placed it.
  const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
  const fromLightMyRequest = createRequire(fromFastify.resolve('light-my-request'));
  const cookiePkg = fromLightMyRequest('cookie/package.json') as { version: string };
  assert.match(cookiePkg.version, /^1\./);
  const app = Fastify();
  app.get('/', async (request) => ({ cookie: request.headers.cookie }));
  try {
    const response = await app.inject({ url: '/', cookies: { session: 'a b', theme: 'dark' } });
    assert.equal(response.json<{ cookie: string }>().cookie, 'session=a%20b; theme=dark');
  } finally {
    await app.close();
  }
});
