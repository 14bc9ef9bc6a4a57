/**
 * The interface both activation modes share: make one task's delta the one the next run
 * sees, or none (the base). Exactly one task is active at a time.
 */
import {
  DS_ERR_DELTA_SHAPE_MISMATCH,
  DS_ERR_DELTA_UNKNOWN_TENSOR,
  DS_ERR_DELTA_INDEX_RANGE,
} from '../../core/errors.js';
import type { ResidentDelta } from '../../deltas/types.js';

export type ActivationMode = 'patch' | 'graph' | 'mixed';
/** What configuration may ask for: a mode, or `auto` (start-runtime.ts says what it picks). */
export type ActivationModeChoice = ActivationMode | 'auto';

export interface ActivationStats {
  /** False when the task was already active (nothing done). */
  readonly switched: boolean;
  /** Values written or restored (patch) or fed (graph). */
  readonly nonzeros: number;
  readonly ms: number;
}

export interface Activator {
  readonly mode: ActivationMode;
  readonly activeKey: string | null;
  activate(key: string, delta: ResidentDelta): ActivationStats;
  deactivate(): ActivationStats;
}

/**
 * Second line of defence after the file reader: the delta must name only patchable weights,
 * with their shapes, and (cheaply, last index only, since indices are sorted) stay in range.
 */
export function assertDeltaFitsWeights(
  delta: ResidentDelta,
  weights: ReadonlyMap<string, { readonly shape: readonly number[] }>,
): void {
  for (const tensor of delta.tensors) {
    const weight = weights.get(tensor.name);
    if (!weight) throw new DS_ERR_DELTA_UNKNOWN_TENSOR(tensor.name);
    if (weight.shape.length !== tensor.shape.length || weight.shape.some((d, i) => d !== tensor.shape[i])) {
      throw new DS_ERR_DELTA_SHAPE_MISMATCH(tensor.name, `[${tensor.shape}]`, `[${weight.shape}]`);
    }
    const numel = weight.shape.reduce((a, b) => a * b, 1);
    if (tensor.kind === 'dense') {
      if (tensor.values.length !== numel)
        throw new DS_ERR_DELTA_SHAPE_MISMATCH(tensor.name, `${tensor.values.length} values`, `[${weight.shape}]`);
    } else if (tensor.kind === 'by-column') {
      // Built from a checked sparse tensor by the addon, which checked its rows again.
      continue;
    } else if (tensor.indices.length > 0 && tensor.indices[tensor.indices.length - 1]! >= numel) {
      throw new DS_ERR_DELTA_INDEX_RANGE(tensor.name, `${tensor.indices[tensor.indices.length - 1]} >= ${numel}`);
    }
  }
}
