/**
 * Which execution providers the equivalence tests run on. `cpu` always; `webgpu` as
 * DELTASERVE_TEST_WEBGPU says:
 *   - unset (a person's `npm test`): when this machine has a usable WebGPU adapter
 *     (test/helpers/webgpu-probe.ts); without one the webgpu tests are skipped with the reason,
 *     and scripts/run-tests.mjs prints one line saying why and how to run them;
 *   - `required` (CI sets it after installing lavapipe, .ci/webgpu.sh): always, so a missing
 *     driver FAILS them and they can never pass vacuously there;
 *   - `absent`: never (skipped on purpose, no probe).
 *
 * Tolerance, webgpu against a CPU reference: 1e-4 absolute on logits. The WebGPU kernels sum
 * in a different order (tiled MatMul, tree reductions in Softmax and LayerNormalization), so
 * float32 results differ from the CPU's by rounding: measured at most 4.3e-6 on the demo zoo's
 * logits (|logits| up to ~9) and 6e-8 on the synthetic encoder. 1e-4 leaves 20x headroom for
 * other inputs and drivers, and stays far below what every checked delta changes (> 1e-2, asserted
 * in the tests), so a delta applied wrongly or not at all still fails. The CPU against the CPU
 * keeps the tighter 1e-5 of the other engine tests.
 */
import type { ExecutionProvider } from '../../src/engine/runtime/ort-session.js';
import { parseVerdict, probeWebgpu, type WebgpuVerdict } from './webgpu-probe.js';

export type WebgpuSetting = 'auto' | 'required' | 'absent';

export function webgpuSetting(env: NodeJS.ProcessEnv = process.env): WebgpuSetting {
  const value = env.DELTASERVE_TEST_WEBGPU ?? 'auto';
  if (value !== 'auto' && value !== 'required' && value !== 'absent') {
    throw new Error(`DELTASERVE_TEST_WEBGPU must be "required", "absent" or unset, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The skip reason for the webgpu tests, or false to run them. */
export function webgpuSkip(setting: WebgpuSetting, verdict: () => WebgpuVerdict): string | false {
  if (setting === 'required') return false;
  if (setting === 'absent') return 'DELTASERVE_TEST_WEBGPU=absent: no Vulkan driver on this machine, on purpose';
  const found = verdict();
  return found.usable ? false : `no usable WebGPU adapter (${found.reason})`;
}

/** run-tests.mjs probes once per run and passes the verdict on; a file run alone probes itself. */
function verdictOnce(): WebgpuVerdict {
  const handed = process.env.DELTASERVE_TEST_WEBGPU_VERDICT;
  return handed ? parseVerdict(handed) : probeWebgpu();
}

export interface TestProvider {
  readonly provider: ExecutionProvider;
  /** Largest absolute difference allowed against a CPU reference. */
  readonly tolerance: number;
  /** A reason to skip (the opt-out, or no adapter outside `required`), or false. */
  readonly skip: string | false;
}

export const TEST_PROVIDERS: readonly TestProvider[] = [
  { provider: 'cpu', tolerance: 1e-5, skip: false },
  {
    provider: 'webgpu',
    tolerance: 1e-4,
    skip: webgpuSkip(webgpuSetting(), verdictOnce),
  },
];
