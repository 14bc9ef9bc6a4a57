/**
 * Whether this machine has a WebGPU adapter onnxruntime can use: a child process creates a
 * WebGPU session on the tiny synthetic encoder, the engine's own way (createOrtSession), and
 * says whether it started. A child, because a broken driver can crash or hang the process
 * that loads it; creating the session is enough to find the adapter (running it would compile
 * shaders, seconds on lavapipe).
 *
 * `node --import tsx test/helpers/webgpu-probe.ts` prints the verdict as one JSON line;
 * scripts/run-tests.mjs runs it once per test run and hands the verdict to the test files.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type WebgpuVerdict = { readonly usable: true } | { readonly usable: false; readonly reason: string };

const SELF = fileURLToPath(import.meta.url);
const PROBE_TIMEOUT_MS = 120_000;

/** Runs the probe in a child process with `env` (the tests pass a broken VK_ICD_FILENAMES). */
export function probeWebgpu(env: NodeJS.ProcessEnv = process.env): WebgpuVerdict {
  const child = spawnSync(process.execPath, ['--import', 'tsx', SELF], {
    env,
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
  });
  const lastLine = child.stdout.trim().split('\n').pop() ?? '';
  try {
    return parseVerdict(lastLine);
  } catch {
    const why = child.error?.message ?? `the probe exited with ${child.status ?? child.signal}`;
    return { usable: false, reason: `${why}: ${child.stderr.trim().split('\n').slice(-3).join(' ')}` };
  }
}

export function parseVerdict(text: string): WebgpuVerdict {
  const value = JSON.parse(text) as { usable?: unknown; reason?: unknown };
  if (value.usable === true) return { usable: true };
  if (value.usable === false && typeof value.reason === 'string') return { usable: false, reason: value.reason };
  throw new Error(`not a WebGPU verdict: ${text}`);
}

async function probeHere(): Promise<WebgpuVerdict> {
  const { buildSyntheticEncoder, TINY_ENCODER } = await import('../../src/onnx/synthetic.js');
  const { onnx } = await import('../../src/onnx/proto.js');
  const { createOrtSession } = await import('../../src/engine/runtime/ort-session.js');
  const model = onnx.ModelProto.encode(buildSyntheticEncoder({ ...TINY_ENCODER, seed: 1 })).finish();
  try {
    const session = await createOrtSession(model, { executionProvider: 'webgpu', intraOpThreads: 1 });
    await session.release();
    return { usable: true };
  } catch (error) {
    return { usable: false, reason: (error as Error).message };
  }
}

if (process.argv[1] === SELF) {
  const verdict = await probeHere();
  process.stdout.write(`${JSON.stringify(verdict)}\n`);
}
