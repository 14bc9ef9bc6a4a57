/**
 * The forms a cached delta's tensors take in the engine. The worker's cache holds what the runtime
 * asks for (EngineRuntime.residentForm): the one-session mixed pipeline keeps its side weights
 * grouped by column (or as int4 codes), patch mode keeps int4 codes that run by column as those
 * codes and fp16-exact values as fp16; every other reader takes tensors as decoded from the file.
 */
import type { Delta, ResidentDelta, ResidentTensorDelta, TensorDelta } from '../../deltas/types.js';
import { float16Table, float32ArrayToFloat16 } from '../../deltas/format/float16.js';
import { columnCodesOf, packI4ByColumn } from './packed-i4.js';
import { columnPositionsOf } from '../../deltas/format/column-order.js';

/**
 * The tensor as decoded. Throws when it is held grouped by column or as fp16: only the one-session
 * side op and patch activation read those forms, and each reads only what its runtime made, so
 * reaching here is a bug.
 */
export function asDecoded(tensor: ResidentTensorDelta): TensorDelta {
  if (tensor.kind === 'by-column')
    throw new Error(`delta tensor ${tensor.name} is held grouped by column, a form only the one-session side op reads`);
  if (tensor.kind === 'sparse-f16')
    throw new Error(`delta tensor ${tensor.name} is held with fp16 values, a form only patch activation reads`);
  return tensor;
}

/**
 * Patch mode's resident form: each 2-D tensor whose int4 codes run column by column kept as those
 * codes (packed-i4.ts: ~1.3 bytes per kept entry at p = 0.9), each other sparse tensor whose values
 * are all exactly fp16 (an fp16 file's always are) kept as fp16 (6 bytes per kept entry instead of
 * 8), the same values either way. Other tensors as they are.
 */
export function patchResidentForm(delta: Delta): ResidentDelta {
  const widen = float16Table();
  const tensors = delta.tensors.map((tensor): ResidentTensorDelta => {
    if (tensor.kind !== 'sparse') return tensor;
    const codes = columnCodesOf(tensor);
    if (codes !== null) {
      const packed = packI4ByColumn(columnPositionsOf(tensor), codes, tensor.shape[0]!, tensor.shape[1]!);
      return { kind: 'by-column', name: tensor.name, shape: tensor.shape, ...packed };
    }
    const halves = float32ArrayToFloat16(tensor.values);
    const bits = new Uint32Array(tensor.values.buffer, tensor.values.byteOffset, tensor.values.length);
    const wide = new Uint32Array(widen.buffer);
    for (let k = 0; k < halves.length; k++) if (wide[halves[k]!] !== bits[k]) return tensor;
    return { kind: 'sparse-f16', name: tensor.name, shape: tensor.shape, indices: tensor.indices, values: halves };
  });
  return { metadata: delta.metadata, tensors };
}
