/**
 * `npm run bench [-- section...] [--minutes N]`: runs benchmark sections and rewrites their parts
 * of docs/benchmarks.md (each between `<!-- bench:NAME -->` markers), leaving other sections as
 * they were, so one slow section can be re-measured alone. Sections: decode, compress, calibrate, kernel, engine,
 * http, loadtest; on demand only: scaleout (installs nginx), engine-webgpu (needs a Vulkan device),
 * json-depth (written to docs/reliability.md), soak (30 minutes, or `--minutes N`; written to
 * docs/reliability.md) and fusions (which ORT fusions the one-session mixed graph keeps; needs the
 * custom-op addon).
 */
import { parseArgs } from 'node:util';
import { replaceDocSection } from './doc-sections.js';

interface BenchOptions {
  readonly minutes?: number;
}
type Section = (options: BenchOptions) => Promise<string>;

const SECTIONS: Record<string, Section> = {
  decode: async () => (await import('./decode.js')).runDecodeBench(),
  compress: async () => (await import('./compress.js')).runCompressBench(),
  calibrate: async () => (await import('./calibrate.js')).runCalibrateBench(),
  kernel: async () => (await import('./kernel.js')).runKernelBench(),
  engine: async () => (await import('./engine.js')).runEngineBench(),
  http: async () => (await import('./http.js')).runHttpBench(),
  loadtest: async () => (await import('./loadtest.js')).runLoadtestBench(),
  scaleout: async () => (await import('./scaleout.js')).runScaleoutBench(),
  'engine-webgpu': async () => (await import('./engine.js')).runEngineBench({ executionProvider: 'webgpu' }),
  soak: async (options) => (await import('./soak.js')).runSoakBench(options),
  fusions: async () => (await import('./fusions.js')).runFusionsBench(),
  'json-depth': async () => (await import('./json-depth.js')).runJsonDepthBench(),
};
/** Sections a bare `npm run bench` skips. */
const ON_DEMAND = new Set(['scaleout', 'engine-webgpu', 'soak', 'fusions', 'json-depth']);
const DOCS: Record<string, URL> = {
  soak: new URL('../docs/reliability.md', import.meta.url),
  'json-depth': new URL('../docs/reliability.md', import.meta.url),
};

async function main(): Promise<void> {
  const { values, positionals: requested } = parseArgs({
    allowPositionals: true,
    options: { minutes: { type: 'string' } },
  });
  const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
  if (minutes !== undefined && !(minutes > 0))
    throw new Error(`--minutes expects a positive number, got ${values.minutes}`);
  const names = requested.length > 0 ? requested : Object.keys(SECTIONS).filter((n) => !ON_DEMAND.has(n));
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (unknown.length > 0)
    throw new Error(`unknown bench section(s) ${unknown.join(', ')}; known: ${Object.keys(SECTIONS).join(', ')}`);
  for (const name of names) {
    process.stderr.write(`bench: ${name}...\n`);
    const text = await SECTIONS[name]!({ ...(minutes !== undefined && { minutes }) });
    console.log(`${text}\n`);
    await replaceDocSection(name, text, DOCS[name]);
  }
}

await main();
