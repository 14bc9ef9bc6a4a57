import type { ResidentDelta } from '../types.js';

/** Bytes a delta holds in memory (decoded or in its resident form): the sum of its typed arrays' byteLengths. */
export function deltaByteSize(delta: ResidentDelta): number {
  let bytes = 0;
  for (const tensor of delta.tensors) {
    if (tensor.kind !== 'by-column') bytes += tensor.values.byteLength;
    if (tensor.kind === 'sparse' || tensor.kind === 'sparse-f16') bytes += tensor.indices.byteLength;
    if (tensor.kind === 'by-column') {
      bytes += tensor.starts.byteLength;
      bytes +=
        'entries' in tensor
          ? tensor.entries.byteLength + tensor.scales.byteLength + tensor.groupEnds.byteLength
          : tensor.rows.byteLength + tensor.values.byteLength;
    }
  }
  return bytes;
}
