/**
 * `npm run load -- [options]`: the shared scenarios against a gateway, open-loop, without k6.
 * Progress on stderr, the text summary on stdout, summary.json and latency.svg in --out.
 * Exit 0 when every threshold held, 1 when one failed or a scenario aborted, 2 on bad usage or
 * a refused target.
 */
import { realpathSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SeededRng } from '../../src/core/rng.js';
import { SCENARIOS, thresholdsOf } from '../scenarios/scenarios.js';
import { arrivalOffsetsMs } from './arrivals.js';
import { summaryText, thresholdVerdicts } from '../scenarios/summary.js';
import { readLoadData } from './data-file.js';
import type { Progress } from './drive.js';
import { plotSvg } from './plot.js';
import { resolveScenarios, runLoad, type RunOptions } from './run.js';
import { TargetRefusedError, checkTarget } from './target.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
export const DEFAULT_SCENARIOS = 'steady,zipf,tenants,spike';

export const USAGE = `usage: npm run load -- [options]
  --base-url URL        gateway to load (default http://127.0.0.1:8080; loopback only unless --allow-remote)
  --data FILE           tasks, tenants, keys and payload (default loadtest/data/demo-zoo.json)
  --scenarios A,B       which scenarios, run in order (default ${DEFAULT_SCENARIOS}; known: ${SCENARIOS.map((s) => s.name).join(', ')})
  --rate-scale X        multiply every arrival rate by X
  --duration S          seconds per scenario (ramps are stretched to it)
  --p99-ms MS           replace every scenario's p99 SLO
  --slo-scale X         multiply every scenario's p95 and p99 SLO by X (a slower machine)
  --arrivals KIND       constant | poisson: override the arrival process of non-ramping scenarios
  --max-requests N      at most N arrivals per scenario (default 100000)
  --max-in-flight N     requests outstanding at most; further arrivals are dropped (default: per scenario)
  --timeout-ms MS       per-request timeout (default 30000)
  --seed N              seed of arrival gaps and task/tenant draws (default 1)
  --out DIR             where summary.json and latency.svg go (default load-results)
  --allow-remote        allow a target that is not a loopback address
  --quiet               no progress lines
  --dry-run             check everything, print the plan, send nothing`;

function positive(raw: string | undefined, name: string, integer = false): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value)))
    throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
  return value;
}

class UsageError extends Error {}

function progressLine(p: Progress): string {
  const p99 = p.recentP99Ms === null ? '–' : `${p.recentP99Ms.toFixed(0)} ms`;
  return `[${p.scenario}] ${p.elapsedS.toFixed(0)}/${p.durationS.toFixed(0)} s  sent ${p.sent}  ok ${p.ok}  429 ${p.rateLimited}  failed ${p.failed}  dropped ${p.dropped}  in flight ${p.inFlight}  p99(1 s) ${p99}`;
}

/** What a run would do: per scenario, its arrivals, how many requests and its thresholds. */
function planText(options: RunOptions): string {
  const lines = [
    `target ${options.baseUrl}, ${options.data.tasks.length} tasks, tenants ${options.data.tenants.map((t) => t.name).join(', ')}`,
  ];
  for (const [i, def] of resolveScenarios(options.scenarios, options).entries()) {
    const rng = new SeededRng((options.seed ?? 1) + i); // as runLoad seeds each scenario
    const a = def.arrivals;
    const shape =
      a.kind === 'ramping'
        ? `ramping from ${a.startRate} req/s through ${a.stages.map((s) => `${s.target} (${s.durationS} s)`).join(', ')}`
        : `${a.kind} ${a.rate} req/s for ${a.durationS} s`;
    const count = arrivalOffsetsMs(a, () => rng.nextFloat(), options.maxRequests ?? 100_000).length;
    const thresholds = Object.entries(thresholdsOf(def)).map(([metric, exprs]) => `${metric} ${exprs.join(' ')}`);
    lines.push(
      `${def.name}: ${shape}, ${count} requests${def.coldStart === true ? ', after unloading every task' : ''}; ${thresholds.join('; ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'base-url': { type: 'string', default: 'http://127.0.0.1:8080' },
        data: { type: 'string', default: join(HERE, '..', 'data', 'demo-zoo.json') },
        scenarios: { type: 'string', default: DEFAULT_SCENARIOS },
        'rate-scale': { type: 'string' },
        duration: { type: 'string' },
        'p99-ms': { type: 'string' },
        'slo-scale': { type: 'string' },
        arrivals: { type: 'string' },
        'max-requests': { type: 'string' },
        'max-in-flight': { type: 'string' },
        'timeout-ms': { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string', default: 'load-results' },
        'allow-remote': { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let options: RunOptions;
  try {
    const arrivals = values.arrivals;
    if (arrivals !== undefined && arrivals !== 'constant' && arrivals !== 'poisson')
      throw new UsageError(`--arrivals must be constant or poisson, got "${arrivals}"`);
    const scenarios = values.scenarios
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const known = new Set(SCENARIOS.map((s) => s.name));
    const unknown = scenarios.filter((s) => !known.has(s));
    if (scenarios.length === 0 || unknown.length > 0)
      throw new UsageError(
        `--scenarios: unknown ${unknown.join(', ') || '(none given)'}; known: ${[...known].join(', ')}`,
      );
    const seed = values.seed === undefined ? 1 : Number(values.seed);
    if (!Number.isInteger(seed) || seed < 0)
      throw new UsageError(`--seed must be a non-negative integer, got "${values.seed}"`);
    const url = await checkTarget(values['base-url'], values['allow-remote']);
    const rateScale = positive(values['rate-scale'], 'rate-scale');
    const durationS = positive(values.duration, 'duration');
    const p99Ms = positive(values['p99-ms'], 'p99-ms');
    const sloScale = positive(values['slo-scale'], 'slo-scale');
    const maxRequests = positive(values['max-requests'], 'max-requests', true);
    const maxInFlight = positive(values['max-in-flight'], 'max-in-flight', true);
    const requestTimeoutMs = positive(values['timeout-ms'], 'timeout-ms', true);
    options = {
      baseUrl: url.origin,
      data: await readLoadData(values.data),
      scenarios,
      overrides: {
        ...(rateScale !== undefined && { rateScale }),
        ...(durationS !== undefined && { durationS }),
        ...(p99Ms !== undefined && { p99Ms }),
        ...(sloScale !== undefined && { sloScale }),
      },
      seed,
      ...(arrivals !== undefined && { arrivals: arrivals }),
      ...(maxRequests !== undefined && { maxRequests }),
      ...(maxInFlight !== undefined && { maxInFlight }),
      ...(requestTimeoutMs !== undefined && { requestTimeoutMs }),
    };
  } catch (error) {
    if (error instanceof UsageError || error instanceof TargetRefusedError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${(error as Error).message}\n`);
    return 2;
  }

  if (values['dry-run']) {
    process.stdout.write(planText(options));
    return 0;
  }
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const names = options.scenarios.map((s) => (typeof s === 'string' ? s : s.name)).join(', ');
  log(`loading ${options.baseUrl}: ${names}`);
  const result = await runLoad({
    ...options,
    log,
    ...(!values.quiet && { onProgress: (p: Progress) => log(progressLine(p)) }),
  });
  const out = resolve(values.out);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'summary.json'), `${JSON.stringify(result.summary, null, 2)}\n`);
  await writeFile(
    join(out, 'latency.svg'),
    await plotSvg(result.samples, result.startedMs, `deltaserve load: ${names}`),
  );
  process.stdout.write(summaryText(result.summary));
  log(`wrote ${join(out, 'summary.json')} and ${join(out, 'latency.svg')}`);
  for (const reason of result.aborted) log(`aborted: ${reason}`);
  const failed = thresholdVerdicts(result.summary).filter((v) => !v.ok);
  for (const f of failed) log(`threshold failed: ${f.name}`);
  return failed.length === 0 && result.aborted.length === 0 ? 0 : 1;
}

// Real paths on both sides: started through a symlinked folder, argv[1] keeps the link while
// import.meta.url does not, and the runner would exit 0 having run nothing.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(resolve(process.argv[1]))) {
  process.exitCode = await main(process.argv.slice(2));
}
