/**
 * The engine benchmark (issue: engine). For p = 0.9 and 0.99 runs the configurations of
 * bench/engine-run.ts, each in its own process, one after another on the same machine, and
 * reports them side by side with the ratios the goals are stated in. On the CPU: a, b, c, d, e, g;
 * on WebGPU (`npm run bench -- engine-webgpu`): a, b, d, f, the same table. On the CPU an open-loop
 * sweep (Poisson arrivals) of a, c and e follows, for goodput.
 * Run: node --import tsx bench/engine.ts [--provider webgpu] [--p 0.99] [--seconds S] [--concurrency C] [--open-loop-seconds S] [--open-loop-preload] [--write]
 * (--write puts the section into docs/benchmarks.md, as `npm run bench` does).
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { replaceDocSection } from './doc-sections.js';
import { machineLine } from './machine.js';
import { TASKS, type FixtureValues } from './engine-fixtures.js';

interface RunResult {
  config: string;
  dropRate: number;
  seconds: number;
  completed: number;
  completedInWindow: number;
  failed: number;
  /** Completions inside the measured window / the window. */
  throughput: number;
  /** The older figure: requests started in the window / (window + drain tail). */
  throughputStarted: number;
  /** User + system CPU of the whole process over the window, in cores. */
  cpuCores: number | null;
  loadAverage: number[];
  /** Null when no request started in the window finished (latency longer than the window). */
  p50: number | null;
  p99: number | null;
  activationsPerSecond: number;
  meanBatchSize: number;
  activationMsMean: number;
  activationNonzerosPerSecond: number;
  rssMaxBytes: number;
  rssMedianBytes: number;
  cachedDeltaBytes: number;
  /** Deltas the cache held at the end (absent in results written before it was recorded). */
  cachedDeltas?: number;
  eventLoopDelayP99Ms: number;
  arrivalRate: number | null;
  kernel: { name: string; threads: number; pipeline?: string; pipelineDetail?: string } | null;
  split: { ortMs: number; kernelMs: number; hostMs: number; batches: number; tasks: number };
}

const NAMES: Record<string, string> = {
  a: '(a) plain session, pre-packed, one task',
  b: '(b) merged session per task, LRU',
  c: '(c) engine, patch',
  d: '(d) engine, graph',
  e: '(e) engine, mixed',
  f: 'diagnostic: engine, graph, task 0 only',
  g: 'diagnostic: engine, patch, task 0 only',
  h: 'diagnostic: engine, mixed, base only (no side-path work)',
};

type Provider = 'cpu' | 'webgpu';

/** Per provider: which configurations run, which is "the engine" the goals are about, and its one-task diagnostic. */
const LAYOUT: Record<
  Provider,
  { configs: string[]; engine: string; diagnostic: string; mixed: string | null; openLoop: string[] }
> = {
  cpu: { configs: ['a', 'b', 'c', 'd', 'e', 'g'], engine: 'c', diagnostic: 'g', mixed: 'e', openLoop: ['a', 'c', 'e'] },
  webgpu: { configs: ['a', 'b', 'd', 'f'], engine: 'd', diagnostic: 'f', mixed: null, openLoop: [] },
};

/** Offered loads of the open-loop sweep, as fractions of (a)'s closed-loop throughput. */
const OPEN_LOOP_LOADS = [0.1, 0.4, 0.6, 0.8, 0.95, 1.1];

export interface EngineBenchOptions {
  seconds?: number;
  warmup?: number;
  concurrency?: number;
  cacheBytes?: number;
  maxBatch?: number;
  switchMs?: number;
  executionProvider?: Provider;
  dropRates?: number[];
  /** How this run was started, for the doc (default: the `npm run bench` section). */
  command?: string;
  /** Seconds measured per open-loop point (0 skips the open-loop sweep). */
  openLoopSeconds?: number;
  /** Configurations to run (default: the provider's layout); a table needs (a). */
  configs?: string[];
  /** Open-loop points start with every task's delta loaded (`--preload`): a warm cache. */
  openLoopPreload?: boolean;
  /** DELTASERVE_MIXED_PIPELINE for every configuration ('segments' measures the fallback). */
  mixedPipeline?: 'custom-op' | 'segments';
  /** The task deltas' values (default fp16; int4: version 2 files with codes by column). */
  values?: FixtureValues;
}

export async function runEngineBench(options: EngineBenchOptions = {}): Promise<string> {
  const seconds = options.seconds ?? 40;
  const warmup = options.warmup ?? 10;
  const concurrency = options.concurrency ?? 64;
  const cacheBytes = options.cacheBytes ?? 1024 ** 3;
  const maxBatch = options.maxBatch ?? 16;
  const switchMs = options.switchMs ?? 1000;
  const provider = options.executionProvider ?? 'cpu';
  const layout = { ...LAYOUT[provider], ...(options.configs && { configs: options.configs }) };
  const sections: string[] = [];
  const settings = [
    '--provider',
    provider,
    '--seconds',
    String(seconds),
    '--warmup',
    String(warmup),
    '--concurrency',
    String(concurrency),
    '--cache-bytes',
    String(cacheBytes),
    '--max-batch',
    String(maxBatch),
    '--switch-ms',
    String(switchMs),
    ...(options.values !== undefined && options.values !== 'fp16' ? ['--values', options.values] : []),
  ];
  const command = `${options.command ?? `npm run bench -- ${provider === 'cpu' ? 'engine' : 'engine-webgpu'}`}   (each configuration: node --import tsx bench/engine-run.ts --config X --p P ${settings.join(' ')})`;
  const openLoopSeconds = options.openLoopSeconds ?? 20;
  const run = (config: string, p: number, extra: string[] = []) => {
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./engine-run.ts', import.meta.url)),
        '--config',
        config,
        '--p',
        String(p),
        ...settings,
        ...extra,
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1 << 24,
        env: { ...process.env, ...(options.mixedPipeline && { DELTASERVE_MIXED_PIPELINE: options.mixedPipeline }) },
      },
    );
    if (child.status !== 0) throw new Error(`bench config ${config} p=${p} failed with exit ${child.status}`);
    // Kept as they come, so a long run's numbers survive a failure later on.
    appendFileSync(fileURLToPath(new URL('./.work/engine-results.jsonl', import.meta.url)), child.stdout);
    return child.stdout;
  };
  for (const p of options.dropRates ?? [0.9, 0.99]) {
    run('prepare', p);
    const results: RunResult[] = [];
    const parse = (out: string) => JSON.parse(out.trim().split('\n').pop()!) as RunResult;
    for (const config of layout.configs) results.push(parse(run(config, p)));
    sections.push(renderTable(p, results, layout, options.values ?? 'fp16'));
    if (layout.openLoop.length > 0 && openLoopSeconds > 0) {
      const a = results.find((r) => r.config === 'a')!;
      const points: RunResult[] = [];
      for (const config of layout.openLoop) {
        for (const load of OPEN_LOOP_LOADS) {
          const rate = load * a.throughput;
          points.push(
            parse(
              run(config, p, [
                '--arrival-rate',
                rate.toFixed(3),
                '--seconds',
                String(openLoopSeconds),
                '--warmup',
                '5',
                ...(options.openLoopPreload ? ['--preload'] : []),
              ]),
            ),
          );
        }
      }
      sections.push(renderOpenLoop(p, points, layout.openLoop, openLoopSeconds, options.openLoopPreload ?? false));
    }
  }
  return [
    provider === 'cpu'
      ? '### Engine: one resident base, 100 tasks, Zipf(1.0)'
      : '### Engine on WebGPU: one resident base, 100 tasks, Zipf(1.0)',
    '',
    machineLine(command),
    '',
    `BERT-base-shaped synthetic encoder (12 × 768, FFN 3072, 86 M params, 344 MB fp32). 100 synthetic tasks whose deltas touch every weight (DARE mask at p, values N(0, 0.002)/(1 − p), fp16 files). Requests 1 × 128 tokens, task drawn from Zipf(1.0), closed loop with ${concurrency} clients, ${warmup} s warm-up then ${seconds} s measured, intra-op threads 2, max batch ${maxBatch}, queue delay 2 ms, forced switch after ${switchMs} ms (the same scheduler settings for every configuration). Delta cache budget ${(cacheBytes / 2 ** 20).toFixed(0)} MiB for the engine and the same memory budget for (b)'s merged sessions. Execution provider: ${provider}${provider === 'cpu' ? '' : ' for every configuration (sessions, merged models and the engine; patch mode is CPU-only, so (c) and (e) do not run)'}. RSS is the whole process (main + worker thread); "above (a)" subtracts the plain single-model process's median RSS.`,
    '',
    ...sections,
  ].join('\n');
}

/** Goodput: the highest offered rate whose p99 stays under 2 × (a)'s p99 at the lowest load. */
function renderOpenLoop(p: number, points: RunResult[], configs: string[], seconds: number, warm: boolean): string {
  const a = points.filter((r) => r.config === 'a');
  const bound = 2 * (a[0]!.p99 ?? Infinity);
  const rows = points.map((r) =>
    [
      NAMES[r.config],
      r.arrivalRate!.toFixed(2),
      r.throughput.toFixed(2),
      ms(r.p50),
      ms(r.p99),
      r.p99 !== null && r.p99 <= bound ? 'yes' : 'no',
      String(r.failed),
    ].join(' | '),
  );
  const goodput = configs.map((config) => {
    const ok = points.filter((r) => r.config === config && r.p99 !== null && r.p99 <= bound && r.failed === 0);
    const best = ok.length > 0 ? Math.max(...ok.map((r) => r.arrivalRate!)) : 0;
    return `${NAMES[config]}: **${best.toFixed(2)} req/s**`;
  });
  return [
    `#### p = ${p}, open loop (Poisson arrivals, ${seconds} s per point after 5 s warm-up${warm ? ', every delta loaded first (warm cache; least popular first, so the Zipf head stays when the cache is full)' : ', cache empty at the start'})`,
    '',
    `Offered rates are fractions ${OPEN_LOOP_LOADS.join(', ')} of (a)'s closed-loop throughput. Goodput = the highest offered rate whose p99 stays under 2 × (a)'s p99 at the lowest rate (${bound.toFixed(0)} ms).`,
    '',
    '| configuration | offered req/s | served req/s | p50 ms | p99 ms | p99 within bound | failed |',
    '|---|---:|---:|---:|---:|---|---:|',
    ...rows.map((r) => `| ${r} |`),
    '',
    `Goodput — ${goodput.join('; ')}.`,
    '',
  ].join('\n');
}

const ms = (value: number | null) => (value === null || !Number.isFinite(value) ? '–' : value.toFixed(0));

function renderTable(
  p: number,
  results: RunResult[],
  layout: (typeof LAYOUT)[Provider],
  values: FixtureValues,
): string {
  const a = results.find((r) => r.config === 'a')!;
  const b = results.find((r) => r.config === 'b');
  const c = results.find((r) => r.config === layout.engine);
  const e = results.find((r) => r.config === layout.diagnostic);
  const h = results.find((r) => r.config === 'h');
  const name = `(${layout.engine})`;
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  const rows = results.map((r) =>
    [
      NAMES[r.config] +
        (r.kernel?.pipeline ? ` [${r.kernel.pipeline === 'custom-op' ? 'one session' : 'segments'}]` : ''),
      r.throughput.toFixed(2),
      (r.throughput / a.throughput).toFixed(2),
      r.throughputStarted.toFixed(2),
      r.cpuCores === null ? '–' : r.cpuCores.toFixed(2),
      ms(r.p50),
      ms(r.p99),
      r.meanBatchSize.toFixed(1),
      r.activationsPerSecond.toFixed(2),
      r.config === 'b' ? `${r.activationMsMean.toFixed(0)} (merge + session)` : r.activationMsMean.toFixed(1),
      r.activationNonzerosPerSecond > 0 ? (r.activationNonzerosPerSecond / 1e6).toFixed(0) : '–',
      mib(r.rssMedianBytes),
      r.config === 'a' ? '–' : mib(r.rssMedianBytes - a.rssMedianBytes),
      r.cachedDeltaBytes > 0 ? mib(r.cachedDeltaBytes) : '–',
      r.config === 'b'
        ? `${r.eventLoopDelayP99Ms.toFixed(0)} (inference on this thread)`
        : r.eventLoopDelayP99Ms.toFixed(1),
      String(r.failed),
    ].join(' | '),
  );
  const goals: string[] = [];
  if (c) {
    goals.push(
      `- ${name} / (a) throughput: **${(c.throughput / a.throughput).toFixed(2)}** (goal ≥ ${p >= 0.99 ? '0.8' : '0.6'})`,
      ...(b ? [`- ${name} / (b) throughput: **${(c.throughput / b.throughput).toFixed(1)}×** (goal ≥ 5×)`] : []),
      `- ${name} RSS above (a): ${mib(c.rssMedianBytes - a.rssMedianBytes)} MiB vs. goal ≤ 1.15 × cached delta bytes + 50 MB = ${mib(1.15 * c.cachedDeltaBytes + 50e6)} MiB`,
      `- ${name} event-loop delay p99: ${c.eventLoopDelayP99Ms.toFixed(1)} ms (goal ≤ 10 ms)`,
    );
    if (e)
      goals.push(
        `- Where ${name} loses against (a): ${layout.engine === 'c' ? 'weights fed as inputs and one delta applied' : 'the in-graph merge of one delta'}, all requests on one task, reach ${(e.throughput / a.throughput).toFixed(2)} × (a) (diagnostic row); spreading requests over 100 Zipf tasks cuts the mean batch from ${e.meanBatchSize.toFixed(1)} to ${c.meanBatchSize.toFixed(1)} and adds ${c.activationsPerSecond.toFixed(2)} activations/s of ${c.activationMsMean.toFixed(0)} ms each (${((c.activationsPerSecond * c.activationMsMean) / 10).toFixed(1)} % of the time).`,
      );
  }
  if (h)
    goals.push(
      `- (h) base only through the mixed graph / (a): **${(h.throughput / a.throughput).toFixed(2)}** (goal ≥ 0.97)`,
    );
  const m = layout.mixed ? results.find((r) => r.config === layout.mixed) : undefined;
  if (m) {
    const total = m.split.ortMs + m.split.kernelMs + m.split.hostMs;
    const pct = (ms: number) => (total > 0 ? ((100 * ms) / total).toFixed(0) : '–');
    goals.push(
      `- (e) / (a) throughput: **${(m.throughput / a.throughput).toFixed(2)}** (goal ≥ ${p >= 0.99 ? '0.9' : '0.7'})`,
      ...(m.cachedDeltas !== undefined && m.cachedDeltas > 0
        ? [
            `- (e) deltas in the cache at the end: ${m.cachedDeltas} of ${TASKS}, ${mib(m.cachedDeltaBytes)} MiB (${(m.cachedDeltaBytes / m.cachedDeltas / 1e6).toFixed(1)} MB each)`,
          ]
        : []),
      `- (e) RSS above (a): ${mib(m.rssMedianBytes - a.rssMedianBytes)} MiB vs. goal ≤ 1.15 × cached delta bytes + 50 MB = ${mib(1.15 * m.cachedDeltaBytes + 50e6)} MiB`,
      `- (e) event-loop delay p99: ${m.eventLoopDelayP99Ms.toFixed(1)} ms (goal ≤ 10 ms)`,
      `- (e) time split over ${m.split.batches} batches (${(m.split.tasks / Math.max(1, m.split.batches)).toFixed(1)} distinct tasks per batch): ORT ${m.kernel?.pipeline === 'custom-op' ? 'one session, side-path custom op included' : 'segments'} ${pct(m.split.ortMs)} %, side-path kernel between runs ${pct(m.split.kernelMs)} % (${m.kernel ? `${m.kernel.name}, ${m.kernel.threads} thread(s)` : '?'}), host (per-request inputs${m.kernel?.pipeline === 'custom-op' ? '' : ', cuts'}) ${pct(m.split.hostMs)} %; per batch ${(m.split.ortMs / Math.max(1, m.split.batches)).toFixed(0)} / ${(m.split.kernelMs / Math.max(1, m.split.batches)).toFixed(0)} / ${(m.split.hostMs / Math.max(1, m.split.batches)).toFixed(0)} ms.`,
    );
  }
  return [
    `#### p = ${p}${values === 'fp16' ? '' : `, ${values} deltas`}`,
    '',
    '| configuration | req/s | × (a) | req/s, old metric | CPU cores | p50 ms | p99 ms | mean batch | activations/s | activation ms | activation M nnz/s | RSS MiB | RSS above (a) MiB | cached deltas MiB | event-loop p99 ms | failed |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r} |`),
    '',
    ...goals,
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      'max-batch': { type: 'string' },
      'switch-ms': { type: 'string' },
      provider: { type: 'string' },
      p: { type: 'string', multiple: true },
      write: { type: 'boolean' },
      'open-loop-seconds': { type: 'string' },
      'open-loop-preload': { type: 'boolean' },
      configs: { type: 'string' },
      'mixed-pipeline': { type: 'string' },
      values: { type: 'string' },
    },
  });
  const provider = (values.provider ?? 'cpu') as Provider;
  if (!(provider in LAYOUT)) throw new Error(`--provider must be cpu or webgpu, got ${provider}`);
  const text = await runEngineBench({
    command: `node --import tsx bench/engine.ts ${process.argv.slice(2).join(' ')}`,
    executionProvider: provider,
    ...(values.p && { dropRates: values.p.map(Number) }),
    ...(values.seconds && { seconds: Number(values.seconds) }),
    ...(values.warmup && { warmup: Number(values.warmup) }),
    ...(values.concurrency && { concurrency: Number(values.concurrency) }),
    ...(values['max-batch'] && { maxBatch: Number(values['max-batch']) }),
    ...(values['switch-ms'] && { switchMs: Number(values['switch-ms']) }),
    ...(values['open-loop-seconds'] && { openLoopSeconds: Number(values['open-loop-seconds']) }),
    ...(values['open-loop-preload'] && { openLoopPreload: true }),
    ...(values.configs && { configs: values.configs.split(',') }),
    ...(values['mixed-pipeline'] && { mixedPipeline: values['mixed-pipeline'] as 'custom-op' | 'segments' }),
    ...(values.values && { values: values.values as FixtureValues }),
  });
  console.log(text);
  if (values.write) await replaceDocSection(provider === 'cpu' ? 'engine' : 'engine-webgpu', text);
}
