/** Rewrites one benchmark section of a doc (between `<!-- bench:NAME -->` markers), leaving the rest as it was. */
import { readFile, writeFile } from 'node:fs/promises';

export const BENCHMARKS_DOC = new URL('../docs/benchmarks.md', import.meta.url);

export async function replaceDocSection(name: string, text: string, doc: URL = BENCHMARKS_DOC): Promise<void> {
  const current = await readFile(doc, 'utf8').catch(() => '# Benchmarks\n');
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const block = `${open}\n${text}\n${close}`;
  const start = current.indexOf(open);
  const end = current.indexOf(close);
  await writeFile(
    doc,
    start >= 0 && end > start
      ? current.slice(0, start) + block + current.slice(end + close.length)
      : `${current.trimEnd()}\n\n${block}\n`,
  );
}
