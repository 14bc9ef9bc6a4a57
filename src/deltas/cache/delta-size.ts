import type { Delta } from '../types.js';

/** Bytes a decoded delta holds in memory: the sum of its typed arrays' byteLengths. */
export function deltaByteSize(delta: Delta): number {
  let bytes = 0;
  for (const tensor of delta.tensors) {
    bytes += tensor.values.byteLength;
    if (tensor.kind === 'sparse') bytes += tensor.indices.byteLength;
  }
  return bytes;
}
