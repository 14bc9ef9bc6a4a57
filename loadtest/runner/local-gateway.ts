/**
 * A real `deltaserve serve` process on loopback for the reliability suite and the soak benchmark:
 * written config, spawned by gateway-process.ts, its RSS read from /proc. Every wait is
 * bounded, and `stop()` (or the process exit hook) never leaves the child running.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';
import { sha256Hex } from '../../src/core/sha256.js';
import { ROOT, listeningUrl, serve } from './gateway-process.js';

export { ROOT };
export const ZOO = join(ROOT, 'models');
export const TENANT_HEADERS = { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' };
export const ADMIN_HEADERS = { authorization: `Bearer ${DEV_ADMIN_KEY}`, 'content-type': 'application/json' };

/** One all-zero 28×28 image as a V2 infer body (the zoo's input). */
export const INFER_BODY = JSON.stringify({
  inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array<number>(784).fill(0) }],
});

export interface GatewayProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly dir: string;
  stderr(): string;
  /** Resident set size of the gateway process, bytes (VmRSS). */
  rssBytes(): number;
  /** The exit code (or signal) once the process has ended; null while it runs. */
  exited(): string | null;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the scratch folder. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts a gateway on a free loopback port with the demo zoo's manifest, the development keys and
 * `overrides` merged over the top-level sections (one level deep).
 */
export async function startGateway(
  overrides: Record<string, unknown> = {},
  startTimeoutMs = 60_000,
): Promise<GatewayProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-rel-'));
  const base: Record<string, unknown> = {
    devMode: true,
    listen: { host: '127.0.0.1', port: 0 },
    model: { manifest: join(ZOO, 'zoo.yaml') },
    engine: { intraOpThreads: 1 },
    registry: { stateFile: join(dir, 'registry.json') },
    tenants: [{ name: 'dev', keySha256: [sha256Hex(DEV_TENANT_KEY)], tasks: ['*'] }],
    admin: { keySha256: [sha256Hex(DEV_ADMIN_KEY)] },
    logLevel: 'warn',
    shutdownGraceMs: 2000,
  };
  for (const [key, value] of Object.entries(overrides)) {
    const current = base[key];
    base[key] = isPlainObject(current) && isPlainObject(value) ? { ...current, ...value } : value;
  }
  const configPath = join(dir, 'gateway.yaml');
  await writeFile(configPath, stringify(base));
  const served = serve(['--config', configPath], { DELTASERVE_CONFIG: '' });
  const child = served.child;
  running.add(child);
  let exit: string | null = null;
  const ended = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = signal ?? String(code);
      running.delete(child);
      resolve();
    }),
  );
  let url: string;
  try {
    url = await listeningUrl(served, startTimeoutMs);
  } catch (error) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const pid = child.pid!;
  return {
    url,
    pid,
    child,
    dir,
    stderr: served.stderr,
    rssBytes: () => rssOf(pid),
    exited: () => exit,
    async stop(graceMs = 5000) {
      if (exit === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await ended;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** VmRSS of a process from /proc, in bytes. */
export function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
