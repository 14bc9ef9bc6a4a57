/**
 * The forms a cached delta's tensors take in the engine. The worker's cache holds what the runtime
 * asks for (EngineRuntime.residentForm): the one-session mixed pipeline keeps its side weights
 * grouped by column; every other reader takes tensors as decoded from the file.
 */
import type { ResidentTensorDelta, TensorDelta } from '../../deltas/types.js';

/**
 * The tensor as decoded. Throws when it is held grouped by column: only the one-session side op
 * reads that form, and only deltas it serves whole are regrouped, so reaching here is a bug.
 */
export function asDecoded(tensor: ResidentTensorDelta): TensorDelta {
  if (tensor.kind === 'by-column')
    throw new Error(`delta tensor ${tensor.name} is held grouped by column, a form only the one-session side op reads`);
  return tensor;
}
