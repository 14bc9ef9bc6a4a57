/**
 * `npm run bench [-- section...]`: runs benchmark sections and rewrites their parts of
 * docs/benchmarks.md (each between `<!-- bench:NAME -->` markers), leaving other sections as
 * they were, so one slow section can be re-measured alone. Sections: decode, compress, engine, http,
 * loadtest, scaleout, and engine-webgpu (the engine configurations on a WebGPU device; only when asked for by name).
 */
import { replaceDocSection } from './doc-sections.js';

type Section = () => Promise<string>;

const SECTIONS: Record<string, () => Promise<Section>> = {
  decode: async () => (await import('./decode.js')).runDecodeBench,
  compress: async () => (await import('./compress.js')).runCompressBench,
  engine: async () => (await import('./engine.js')).runEngineBench,
  http: async () => (await import('./http.js')).runHttpBench,
  'engine-webgpu': async () => async () => (await import('./engine.js')).runEngineBench({ executionProvider: 'webgpu' }),
  loadtest: async () => (await import('./loadtest.js')).runLoadtestBench,
  scaleout: async () => (await import('./scaleout.js')).runScaleoutBench,
};
/** Sections a plain `npm run bench` runs: the WebGPU one needs a Vulkan device (and soak runs 30 min). */
const DEFAULT_SECTIONS = ['decode', 'compress', 'engine', 'http', 'loadtest'];

async function main(): Promise<void> {
  const requested = process.argv.slice(2);
  const names = requested.length > 0 ? requested : DEFAULT_SECTIONS;
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (unknown.length > 0) throw new Error(`unknown bench section(s) ${unknown.join(', ')}; known: ${Object.keys(SECTIONS).join(', ')}`);
  for (const name of names) {
    process.stderr.write(`bench: ${name}...\n`);
    const text = await (await SECTIONS[name]!())();
    console.log(`${text}\n`);
    await replaceDocSection(name, text);
  }
}

await main();
