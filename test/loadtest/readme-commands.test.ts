/**
 * loadtest/README.md's commands are checked, not just written: every `npm run load` line is
 * run through the CLI with --dry-run (flags, scenarios, target and data file validated, nothing
 * sent), and every `k6 run -e NAME=value` names a variable the k6 script reads and, for
 * SCENARIOS, known scenarios.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SCENARIOS } from '../../loadtest/scenarios/scenarios.js';
import { main } from '../../loadtest/runner/cli.js';

const README = readFileSync(fileURLToPath(new URL('../../loadtest/README.md', import.meta.url)), 'utf8');
const K6_ENV = readFileSync(fileURLToPath(new URL('../../loadtest/k6/lib/env.ts', import.meta.url)), 'utf8');
const commandLines = (prefix: string) =>
  README.split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line.startsWith(prefix));

test('every `npm run load` command in the README is accepted by the runner', async () => {
  const lines = commandLines('npm run load');
  assert.ok(lines.length >= 4, `only ${lines.length} commands found`);
  for (const line of lines) {
    const args = line
      .replace(/^npm run load( --)?/, '')
      .trim()
      .split(/\s+/)
      .filter((a) => a !== '');
    const code = await main(args.includes('--help') ? args : [...args, '--dry-run']);
    assert.equal(code, 0, line);
  }
});

test('every k6 variable the README sets is one the script reads, with known scenario names', () => {
  const names = [...README.matchAll(/-e ([A-Z_0-9]+)=(\S+)/g)];
  assert.ok(names.length >= 4);
  const known = new Set(SCENARIOS.map((s) => s.name));
  for (const [, name, value] of names) {
    assert.match(
      K6_ENV,
      new RegExp(`__ENV\\.${name}\\b|numberEnv\\('${name}'\\)`),
      `${name} is not read by loadtest/k6/lib/env.ts`,
    );
    if (name === 'SCENARIOS') for (const s of value!.split(',')) assert.ok(known.has(s), `unknown scenario ${s}`);
  }
  for (const name of ['BASE_URL', 'SCENARIOS', 'DATA', 'ADMIN_KEY', 'SUMMARY'])
    assert.match(K6_ENV, new RegExp(`__ENV\\.${name}\\b`));
  for (const name of ['RATE_SCALE', 'DURATION_S', 'P99_MS', 'SLO_SCALE'])
    assert.match(K6_ENV, new RegExp(`numberEnv\\('${name}'\\)`));
});
