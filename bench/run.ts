/**
 * `npm run bench [-- section...] [--minutes N]`: runs benchmark sections and rewrites their parts
 * of docs/benchmarks.md (each between `<!-- bench:NAME -->` markers), leaving other sections as
 * they were, so one slow section can be re-measured alone. Sections: decode, compress, engine,
 * http, and soak (not run by default: 30 minutes, or `--minutes N`; written to docs/reliability.md).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface BenchOptions {
  readonly minutes?: number;
}
type Section = (options: BenchOptions) => Promise<string>;

const SECTIONS: Record<string, Section> = {
  decode: async () => (await import('./decode.js')).runDecodeBench(),
  compress: async () => (await import('./compress.js')).runCompressBench(),
  engine: async () => (await import('./engine.js')).runEngineBench(),
  http: async () => (await import('./http.js')).runHttpBench(),
  soak: async (options) => (await import('./soak.js')).runSoakBench(options),
};
/** Sections a bare `npm run bench` skips. */
const ON_DEMAND = new Set(['soak']);

const BENCHMARKS_DOC = new URL('../docs/benchmarks.md', import.meta.url);
const DOCS: Record<string, URL> = { soak: new URL('../docs/reliability.md', import.meta.url) };

async function main(): Promise<void> {
  const { values, positionals: requested } = parseArgs({ allowPositionals: true, options: { minutes: { type: 'string' } } });
  const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
  if (minutes !== undefined && !(minutes > 0)) throw new Error(`--minutes expects a positive number, got ${values.minutes}`);
  const names = requested.length > 0 ? requested : Object.keys(SECTIONS).filter((n) => !ON_DEMAND.has(n));
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (unknown.length > 0) throw new Error(`unknown bench section(s) ${unknown.join(', ')}; known: ${Object.keys(SECTIONS).join(', ')}`);
  for (const name of names) {
    process.stderr.write(`bench: ${name}...\n`);
    const text = await SECTIONS[name]!({ ...(minutes !== undefined && { minutes }) });
    console.log(`${text}\n`);
    const target = DOCS[name] ?? BENCHMARKS_DOC;
    const doc = await readFile(target, 'utf8').catch(() => '# Benchmarks\n');
    await writeFile(target, replaceSection(doc, name, text));
  }
}

function replaceSection(doc: string, name: string, text: string): string {
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const block = `${open}\n${text}\n${close}`;
  const start = doc.indexOf(open);
  const end = doc.indexOf(close);
  if (start >= 0 && end > start) return doc.slice(0, start) + block + doc.slice(end + close.length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

await main();
