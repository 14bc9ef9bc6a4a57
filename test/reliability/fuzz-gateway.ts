/**
 * Shared by the fuzz and security suites: the demo zoo gateway as a real `deltaserve serve`
 * process on loopback, in a scratch copy of the zoo (so tests may drop delta files beside it and
 * keep registry state away from the repo), plus the fuzz run counts and seeds.
 *
 * Counts: each fuzz file has a CI count; `DELTASERVE_FUZZ_SCALE=N` multiplies all of them for a
 * longer run on demand, `DELTASERVE_FUZZ_SEED=S` replaces every file's fixed seed.
 */
import type { ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { ROOT, listeningUrl, serve } from '../helpers/gateway-process.js';

export { ROOT } from '../helpers/gateway-process.js';
export { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';

/** `base` × DELTASERVE_FUZZ_SCALE (default 1). */
export function fuzzRuns(base: number): number {
  const scale = Number(process.env.DELTASERVE_FUZZ_SCALE ?? '1');
  if (!Number.isFinite(scale) || scale <= 0)
    throw new Error(`DELTASERVE_FUZZ_SCALE must be a positive number, got ${process.env.DELTASERVE_FUZZ_SCALE}`);
  return Math.max(1, Math.round(base * scale));
}

/** A test's time bound for `baseMs` of CI-sized work, scaled like the run counts. */
export function fuzzTimeoutMs(baseMs: number): number {
  return fuzzRuns(baseMs);
}

/** The file's fixed seed, unless DELTASERVE_FUZZ_SEED overrides it. */
export function fuzzSeed(fixed: number): number {
  const text = process.env.DELTASERVE_FUZZ_SEED;
  return text === undefined || text === '' ? fixed : Number(text) | 0;
}

/** A scratch copy of the zoo: manifest, base model and every task's delta (~4 MB). */
export async function copyZoo(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-rel-'));
  const manifest = await readFile(join(ROOT, 'models/zoo.yaml'), 'utf8');
  const zoo = parse(manifest) as { base: { model: string }; tasks: { delta: string }[] };
  for (const file of [zoo.base.model, ...zoo.tasks.map((t) => t.delta)]) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await copyFile(join(ROOT, 'models', file), join(dir, file));
  }
  await writeFile(join(dir, 'zoo.yaml'), manifest);
  return dir;
}

export interface ZooGateway {
  readonly url: string;
  readonly dir: string;
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Still running (no exit seen). */
  readonly alive: () => boolean;
  /** SIGTERM, wait for the exit (SIGKILL after 10 s), remove the scratch folder. */
  readonly stop: () => Promise<number | null>;
}

export interface ZooGatewayOptions {
  /** Environment overrides (DELTASERVE_*). */
  readonly env?: Record<string, string>;
  /** A configuration written as `gateway.yaml` beside the zoo copy and used instead of the packaged demo one. */
  readonly config?: Record<string, unknown>;
}

/** `deltaserve serve` on a free loopback port over a copy of the zoo: the packaged demo config unless `config` is given. */
export async function startZooGateway(options: ZooGatewayOptions = {}): Promise<ZooGateway> {
  const dir = await copyZoo();
  const env = { ...options.env };
  if (options.config) {
    await writeFile(join(dir, 'gateway.yaml'), stringify(options.config));
    env.DELTASERVE_CONFIG = join(dir, 'gateway.yaml');
  }
  const served = serve([], {
    DELTASERVE_CONFIG: '',
    DELTASERVE_PORT: '0',
    DELTASERVE_MODEL_MANIFEST: join(dir, 'zoo.yaml'),
    DELTASERVE_REGISTRY_STATE_FILE: join(dir, 'state.json'),
    DELTASERVE_LOG_LEVEL: 'warn',
    ...env,
  });
  let exited = false;
  void served.exit.then(() => (exited = true));
  const stop = async (): Promise<number | null> => {
    if (!exited) served.child.kill('SIGTERM');
    const kill = setTimeout(() => served.child.kill('SIGKILL'), 10_000);
    const code = await served.exit;
    clearTimeout(kill);
    await rm(dir, { recursive: true, force: true });
    return code;
  };
  let url: string;
  try {
    url = await listeningUrl(served);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, dir, child: served.child, stdout: served.stdout, stderr: served.stderr, alive: () => !exited, stop };
}

/** GET /v2/health/live within `timeoutMs`: the status, or the error. */
export async function liveStatus(url: string, timeoutMs = 5_000): Promise<number | string> {
  try {
    const res = await request(`${url}/v2/health/live`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await res.body.dump();
    return res.statusCode;
  } catch (error) {
    return String(error);
  }
}

/**
 * fast-check settings for a fixed number of seeded runs. On a failure the error carries the seed
 * and counterexample path (enough to replay it: DELTASERVE_FUZZ_SEED=<seed>) and the property's
 * own message, cut short: the default report prints the whole generated value, which for a
 * 100,000-deep body is megabytes of brackets. No shrinking (`endOnFailure`): each run is a
 * request to a live process, and the first failing case is already specific.
 */
export function fuzzSettings<T>(seed: number, numRuns: number): import('fast-check').Parameters<T> {
  return {
    seed,
    numRuns,
    endOnFailure: true,
    reporter: (details) => {
      if (!details.failed) return;
      const cause =
        details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(
        `fuzz property failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}): ${cause.slice(0, 3_000)}`,
      );
    },
  };
}
