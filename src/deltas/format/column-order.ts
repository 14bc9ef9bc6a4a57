/**
 * Column order for a 2-D weight's kept entries (format version 2, `"order": "column"`,
 * docs/delta-format.md §2.4). A `[rows, cols]` weight's kept entries are listed column by column,
 * rows ascending within a column: the order in which the side-path kernel reads them, so that
 * quantization groups of consecutive entries are groups the kernel meets one after another and the
 * cache can keep the codes as the file has them. Positions in that order are `j × rows + i` for
 * the entry at row i, column j (strictly increasing, like row-major positions in row order).
 */
import type { QuantizedValues, SparseTensorDelta } from '../types.js';

/**
 * For kept entries listed in row-major order (`indices` strictly increasing, each < rows × cols):
 * their column-major listing, as positions into the row-major list. A stable counting sort by column.
 */
export function columnMajorPermutation(indices: Uint32Array, cols: number): Uint32Array {
  const starts = new Uint32Array(cols + 1);
  for (let k = 0; k < indices.length; k++) starts[(indices[k]! % cols) + 1]!++;
  for (let j = 0; j < cols; j++) starts[j + 1]! += starts[j]!;
  const permutation = new Uint32Array(indices.length);
  for (let k = 0; k < indices.length; k++) permutation[starts[indices[k]! % cols]!++] = k;
  return permutation;
}

/** The column-major positions (`j × rows + i`) of the entries `permutation` lists, in its order. */
export function columnMajorPositions(
  indices: Uint32Array,
  permutation: Uint32Array,
  rows: number,
  cols: number,
): Uint32Array {
  const positions = new Uint32Array(permutation.length);
  for (let k = 0; k < permutation.length; k++) {
    const index = indices[permutation[k]!]!;
    const i = Math.floor(index / cols);
    positions[k] = (index - i * cols) * rows + i;
  }
  return positions;
}

/**
 * From column-major positions (strictly increasing, each < rows × cols): the same entries' row-major
 * indices in row-major order, and for each the place of the entry in the column-major list (so
 * `values[k] = columnValues[from[k]]`). A stable counting sort by row.
 */
export function fromColumnMajor(
  positions: Uint32Array,
  rows: number,
  cols: number,
): { indices: Uint32Array; from: Uint32Array } {
  const starts = new Uint32Array(rows + 1);
  for (let k = 0; k < positions.length; k++) starts[(positions[k]! % rows) + 1]!++;
  for (let i = 0; i < rows; i++) starts[i + 1]! += starts[i]!;
  const indices = new Uint32Array(positions.length);
  const from = new Uint32Array(positions.length);
  for (let k = 0; k < positions.length; k++) {
    const position = positions[k]!;
    const j = Math.floor(position / rows);
    const i = position - j * rows;
    const slot = starts[i]!++;
    indices[slot] = i * cols + j;
    from[slot] = k;
  }
  return { indices, from };
}

/** `values` listed in `permutation`'s order: `out[k] = values[permutation[k]]`. */
export function permuted(values: Float32Array, permutation: Uint32Array): Float32Array {
  const out = new Float32Array(permutation.length);
  for (let k = 0; k < permutation.length; k++) out[k] = values[permutation[k]!]!;
  return out;
}

/** The column-major positions of a `[rows, cols]` weight's entries given by row-major `indices`, ascending. */
export function columnPositionsFromIndices(indices: Uint32Array, shape: readonly number[]): Uint32Array {
  const [rows, cols] = shape as [number, number];
  return columnMajorPositions(indices, columnMajorPermutation(indices, cols), rows, cols);
}

/** A column-order tensor's positions: as the decoder kept them, else from its row-major indices. */
export function columnPositionsOf(tensor: SparseTensorDelta): Uint32Array {
  return tensor.quantized?.positions ?? columnPositionsFromIndices(tensor.indices, tensor.shape);
}

/** The 2-D tensor's int4 codes when they run column by column (the one session's cache keeps those as they are), else null. */
export function columnCodesOf(tensor: SparseTensorDelta): QuantizedValues | null {
  const q = tensor.quantized;
  return q?.encoding === 'I4' && q.order === 'column' && tensor.shape.length === 2 ? q : null;
}
