/**
 * `deltaserve serve` as a child process, for the tests and benchmarks that need real processes
 * (signals, replicas, load): shared here so that bench/ and test/ need not import each other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Served {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<number | null>;
}

/** Runs `serve` from the sources (or `entry`, e.g. the compiled bin) with `env` added. */
export function serve(
  args: string[],
  env: Record<string, string>,
  entry = ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts')],
): Served {
  // DELTASERVE_GATEWAY_CPUS=0 runs the gateway under `taskset -c 0`: the load generator (this
  // process, e.g. under `taskset -c 1`) then stays off the gateway's cores (docs/reliability.md).
  const cpus = process.env.DELTASERVE_GATEWAY_CPUS;
  const command = cpus ? 'taskset' : process.execPath;
  const commandArgs = [...(cpus ? ['-c', cpus, process.execPath] : []), ...entry, 'serve', ...args];
  const child = spawn(command, commandArgs, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

/** The URL the process prints once it listens; rejects if it exits first or `timeoutMs` passes. */
export async function listeningUrl(served: Served, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = /listening on (http:\/\/\S+)/.exec(served.stdout());
    if (match) return match[1]!;
    if (Date.now() > deadline) throw new Error(`serve did not listen within ${timeoutMs} ms: ${served.stderr()}`);
    const exited = await Promise.race([
      served.exit.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 20)),
    ]);
    if (exited) throw new Error(`serve exited early: ${served.stderr()}`);
  }
}
