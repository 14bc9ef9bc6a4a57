/**
 * The forms a cached delta's tensors take in the engine. The worker's cache holds what the runtime
 * asks for (EngineRuntime.residentForm): the one-session mixed pipeline keeps its side weights
 * grouped by column (or as int4 codes), patch mode keeps fp16-exact values as fp16; every other
 * reader takes tensors as decoded from the file.
 */
import type { Delta, ResidentDelta, ResidentTensorDelta, TensorDelta } from '../../deltas/types.js';
import { float16Table, float32ArrayToFloat16 } from '../../deltas/format/float16.js';

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
 * Patch mode's resident form: each sparse tensor whose values are all exactly fp16 (an fp16 file's
 * always are) kept as fp16, 6 bytes per kept entry instead of 8, the same values. Other tensors as
 * they are. (Int4 codes kept as codes were tried: patch activation walks them column by column,
 * 4 × slower per switch at p = 0.9 than the decoded form, docs/benchmarks.md.)
 */
export function patchResidentForm(delta: Delta): ResidentDelta {
  const widen = float16Table();
  const tensors = delta.tensors.map((tensor): ResidentTensorDelta => {
    if (tensor.kind !== 'sparse') return tensor;
    const halves = float32ArrayToFloat16(tensor.values);
    const bits = new Uint32Array(tensor.values.buffer, tensor.values.byteOffset, tensor.values.length);
    const wide = new Uint32Array(widen.buffer);
    for (let k = 0; k < halves.length; k++) if (wide[halves[k]!] !== bits[k]) return tensor;
    return { kind: 'sparse-f16', name: tensor.name, shape: tensor.shape, indices: tensor.indices, values: halves };
  });
  return { metadata: delta.metadata, tensors };
}

/**
 * What the cache keeps of a runtime's resident form: every tensor still held as decoded loses the
 * decoder's quantized form (codes, scales, a column-order record's positions). Its readers take
 * indices and values only, and the cache counts only those; the forms that read codes (the one
 * session's packed int4) have already taken what they need.
 */
export function withoutCodes(delta: ResidentDelta): ResidentDelta {
  return {
    metadata: delta.metadata,
    tensors: delta.tensors.map((tensor): ResidentTensorDelta => {
      if (tensor.kind !== 'sparse' || tensor.quantized === undefined) return tensor;
      const { kind, name, shape, indices, values, rescale } = tensor;
      return { kind, name, shape, indices, values, rescale };
    }),
  };
}
