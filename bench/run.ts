/**
 * `npm run bench [-- section...]`: runs benchmark sections and rewrites their parts of
 * docs/benchmarks.md (each between `<!-- bench:NAME -->` markers), leaving other sections as
 * they were, so one slow section can be re-measured alone. Sections: decode, compress, calibrate, engine, http.
 */
import { readFile, writeFile } from 'node:fs/promises';

type Section = () => Promise<string>;

const SECTIONS: Record<string, () => Promise<Section>> = {
  decode: async () => (await import('./decode.js')).runDecodeBench,
  compress: async () => (await import('./compress.js')).runCompressBench,
  calibrate: async () => (await import('./calibrate.js')).runCalibrateBench,
  engine: async () => (await import('./engine.js')).runEngineBench,
  http: async () => (await import('./http.js')).runHttpBench,
};

const DOC = new URL('../docs/benchmarks.md', import.meta.url);

async function main(): Promise<void> {
  const requested = process.argv.slice(2);
  const names = requested.length > 0 ? requested : Object.keys(SECTIONS);
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (unknown.length > 0) throw new Error(`unknown bench section(s) ${unknown.join(', ')}; known: ${Object.keys(SECTIONS).join(', ')}`);
  let doc = await readFile(DOC, 'utf8').catch(() => '# Benchmarks\n');
  for (const name of names) {
    process.stderr.write(`bench: ${name}...\n`);
    const text = await (await SECTIONS[name]!())();
    console.log(`${text}\n`);
    doc = replaceSection(doc, name, text);
    await writeFile(DOC, doc);
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
