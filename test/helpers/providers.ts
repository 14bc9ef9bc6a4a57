/**
 * Which execution providers the equivalence tests run on. `cpu` always; `webgpu` too, unless
 * DELTASERVE_TEST_WEBGPU=absent says on purpose that this machine has no Vulkan driver. Without
 * that, a missing driver FAILS the webgpu tests instead of skipping them, so CI (which sets
 * DELTASERVE_TEST_WEBGPU=required after installing lavapipe, .ci/webgpu.sh) can never pass
 * them vacuously.
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

export const WEBGPU_SETTING = process.env.DELTASERVE_TEST_WEBGPU ?? 'required';
if (WEBGPU_SETTING !== 'required' && WEBGPU_SETTING !== 'absent') {
  throw new Error(`DELTASERVE_TEST_WEBGPU must be "required" or "absent", got ${JSON.stringify(WEBGPU_SETTING)}`);
}

export interface TestProvider {
  readonly provider: ExecutionProvider;
  /** Largest absolute difference allowed against a CPU reference. */
  readonly tolerance: number;
  /** A reason to skip (only ever the explicit opt-out), or false. */
  readonly skip: string | false;
}

export const TEST_PROVIDERS: readonly TestProvider[] = [
  { provider: 'cpu', tolerance: 1e-5, skip: false },
  {
    provider: 'webgpu',
    tolerance: 1e-4,
    skip:
      WEBGPU_SETTING === 'absent'
        ? 'DELTASERVE_TEST_WEBGPU=absent: no Vulkan driver on this machine, on purpose'
        : false,
  },
];
