/**
 * Writes docs/errors.md from src/core/errors.ts: every error code with its HTTP status, its
 * policy and its message template, grouped by the section of the data path that raises it.
 * `test/core/errors.test.ts` fails when the two drift apart. Run: npm run docs:errors
 */
import { readFile, writeFile } from 'node:fs/promises';
import * as errors from '../src/core/errors.js';
import type { DsErrorClass } from '../src/core/errors.js';

const table = errors as unknown as Record<string, DsErrorClass>;
const source = await readFile(new URL('../src/core/errors.ts', import.meta.url), 'utf8');
const lines = [
  '# Error codes',
  '',
  'Every error deltaserve raises has a stable code. Over HTTP it is answered with the status below',
  'and a body `{"error": "<message>", "code": "<code>"}`; the CLI prints `error [<code>]: <message>`.',
  '`%s` marks where the message names the specific field, file, task or value. Generated from',
  '`src/core/errors.ts` by `npm run docs:errors`; `test/core/errors.test.ts` keeps them in sync.',
  '',
  'Policy: **retry soon**: the answer carries `Retry-After: 1` (unless the error names its own',
  'delay), because the condition passes by itself; **expected**: a 5xx a running gateway gives by',
  'design (load, shutdown, restarts), logged at info without a stack trace (other 5xx are logged',
  'at error with one). Errors that carry their own delay (rate limits, overload) answer',
  '`Retry-After` with it whatever their policy.',
  '',
];
for (const block of source.split(/^\/\/ --- /m).slice(1)) {
  const title = block
    .slice(0, block.indexOf('\n'))
    .replace(/-+\s*$/, '')
    .trim();
  const codes = [...block.matchAll(/export const (DS_ERR_[A-Z0-9_]+) = /g)].map((m) => m[1]!);
  if (codes.length === 0) continue;
  lines.push(`## ${title}`, '', '| code | status | policy | message |', '|---|---:|---|---|');
  for (const code of codes) {
    const kind = table[code]!;
    lines.push(`| \`${code}\` | ${kind.statusCode} | ${policyText(kind)} | ${kind.template.replace(/\|/g, '\\|')} |`);
  }
  lines.push('');
}
await writeFile(new URL('../docs/errors.md', import.meta.url), lines.join('\n'));

function policyText(kind: DsErrorClass): string {
  return [kind.policy.retrySoon && 'retry soon', kind.policy.expected5xx && 'expected'].filter(Boolean).join(', ');
}
