/**
 * Writes docs/errors.md from src/core/errors.ts: every error code with its HTTP status and
 * message template, grouped by the section of the data path that raises it.
 * `test/core/errors.test.ts` fails when the two drift apart. Run: npm run docs:errors
 */
import { readFile, writeFile } from 'node:fs/promises';
import * as errors from '../src/core/errors.js';

const source = await readFile(new URL('../src/core/errors.ts', import.meta.url), 'utf8');
const lines = [
  '# Error codes',
  '',
  'Every error deltaserve raises has a stable code. Over HTTP it is answered with the status below',
  'and a body `{"error": "<message>", "code": "<code>"}`; the CLI prints `error [<code>]: <message>`.',
  '`%s` marks where the message names the specific field, file, task or value. Generated from',
  '`src/core/errors.ts` by `npm run docs:errors`; `test/core/errors.test.ts` keeps them in sync.',
  '',
];
for (const block of source.split(/^\/\/ --- /m).slice(1)) {
  const title = block
    .slice(0, block.indexOf('\n'))
    .replace(/-+\s*$/, '')
    .trim();
  const codes = [...block.matchAll(/export const (DS_ERR_[A-Z0-9_]+) = createError\(/g)].map((m) => m[1]!);
  if (codes.length === 0) continue;
  lines.push(`## ${title}`, '', '| code | status | message |', '|---|---:|---|');
  for (const code of codes) {
    const ErrorClass = (errors as Record<string, new (...args: string[]) => Error & { statusCode?: number }>)[code]!;
    const sample = new ErrorClass();
    lines.push(`| \`${code}\` | ${sample.statusCode ?? 500} | ${sample.message.replace(/\|/g, '\\|')} |`);
  }
  lines.push('');
}
await writeFile(new URL('../docs/errors.md', import.meta.url), lines.join('\n'));
