/** Rewrites one benchmark section of docs/benchmarks.md (between `<!-- bench:NAME -->` markers), leaving the rest as it was. */
import { readFile, writeFile } from 'node:fs/promises';

const DOC = new URL('../docs/benchmarks.md', import.meta.url);

export async function replaceDocSection(name: string, text: string): Promise<void> {
  const doc = await readFile(DOC, 'utf8').catch(() => '# Benchmarks\n');
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const block = `${open}\n${text}\n${close}`;
  const start = doc.indexOf(open);
  const end = doc.indexOf(close);
  await writeFile(DOC, start >= 0 && end > start ? doc.slice(0, start) + block + doc.slice(end + close.length) : `${doc.trimEnd()}\n\n${block}\n`);
}
