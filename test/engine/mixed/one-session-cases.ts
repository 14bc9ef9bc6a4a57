/**
 * Whether the custom-op addon must be there: CI fetches ONNX Runtime's headers at install, so a
 * missing build fails the one-session tests instead of skipping them, unless
 * `DELTASERVE_MIXED_PIPELINE=segments` says the segment fallback is what this run tests.
 */
import {
  loadOrtAddon,
  pipelineFromEnv,
  type OrtCustomOpAddon,
} from '../../../src/engine/runtime/mixed/one-session/ort-addon.js';

export const ONE_SESSION_EXPECTED = pipelineFromEnv() !== 'segments';
export const ONE_SESSION_SKIP = ONE_SESSION_EXPECTED
  ? false
  : 'DELTASERVE_MIXED_PIPELINE=segments: this run tests the segment fallback';

export function requireAddon(): OrtCustomOpAddon {
  const { addon, reason } = loadOrtAddon();
  if (!addon) throw new Error(`the custom-op addon did not load: ${reason}`);
  return addon;
}
