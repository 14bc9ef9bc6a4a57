/**
 * Int4 codes kept as the file has them (PackedI4ByColumn, src/deltas/types.ts), built and walked in
 * TypeScript for patch mode, which runs where the custom-op addon may be absent. The same layout as
 * the addon's `packI4ByColumn` (native/side-kernel/kernel.cc), which the one session uses; the
 * addon test pins its bytes and this module's test compares the two.
 */
import type { PackedI4ByColumn, QuantizedValues, SparseTensorDelta } from '../../deltas/types.js';

/** The layout without its kind, name and shape. */
export type PackedI4Arrays = Omit<PackedI4ByColumn, 'kind' | 'name' | 'shape'>;

/** The `[inDim, outDim]` tensor's codes as they stand when they run column by column, else null. */
export function columnCodesOf(tensor: SparseTensorDelta): QuantizedValues | null {
  const q = tensor.quantized;
  return q?.encoding === 'I4' && q.order === 'column' && tensor.shape.length === 2 ? q : null;
}

/**
 * Packs a `[inDim, outDim]` weight's int4 codes listed column by column (`positions` j × inDim + i,
 * strictly increasing, each < inDim × outDim; checked by the decoder): one byte per entry, code high
 * and row gap − 1 low, code-0 entries left out, gaps over 16 bridged by code-0 bytes of
 * 16 × (nibble + 1) rows.
 */
export function packI4ByColumn(
  positions: Uint32Array,
  q: QuantizedValues,
  inDim: number,
  outDim: number,
): PackedI4Arrays {
  const count = positions.length;
  const { codes, group } = q;
  const groups = Math.ceil(count / group);
  const starts = new Uint32Array(outDim + 1);
  const groupEnds = new Uint32Array(groups);
  // Two passes over the same walk: count (entries null), then write.
  const walk = (entries: Uint8Array | null): number => {
    let at = 0;
    let closed = 0;
    let j = 0;
    let columnEnd = inDim;
    let previous = -1;
    let nextGroup = group; // the first entry of the next group
    for (let k = 0; k < count; k++) {
      if (k === nextGroup) {
        groupEnds[closed++] = at;
        nextGroup += group;
      }
      const position = positions[k]!;
      for (; position >= columnEnd; columnEnd += inDim, previous = -1) starts[++j] = at;
      const code = (codes[k >>> 1]! >>> ((k & 1) << 2)) & 15;
      if (code === 0) continue;
      const row = position - (columnEnd - inDim);
      let gap = row - previous;
      for (; gap > 16; at++) {
        const bridge = Math.min(256, Math.floor((gap - 1) / 16) * 16);
        if (entries) entries[at] = bridge / 16 - 1;
        gap -= bridge;
      }
      if (entries) entries[at] = (code << 4) | (gap - 1);
      at++;
      previous = row;
    }
    while (j < outDim) starts[++j] = at;
    for (; closed < groups; closed++) groupEnds[closed] = at;
    return at;
  };
  const entries = new Uint8Array(walk(null));
  walk(entries);
  // A copy: the decoder's scales are a view of the file, which the cache must not keep alive.
  return { starts, entries, scales: q.scales.slice(), groupEnds };
}
