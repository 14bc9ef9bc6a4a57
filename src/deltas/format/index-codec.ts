/**
 * Compact kept-position streams of format version 2 (docs/delta-format.md §2.2).
 *
 * - `gaps` (4-, 8- or 16-bit symbols): for each kept position, d = position − previous position − 1
 *   (the first previous position is −1), written as as many all-ones symbols (15 / 255 / 65535)
 *   as it takes, each meaning "add this much and read on", then one symbol below that value. A
 *   gap that fits costs one symbol; a long one costs one more symbol per 15 (255, 65535) skipped.
 *   4-bit symbols are packed two per byte, the first in the low nibble; an odd count leaves a
 *   zero high nibble in the last byte.
 * - `bitmask` (U8): bit i of byte ⌊i/8⌋ (least significant bit first) is set when position i is
 *   kept; ⌈numel/8⌉ bytes, padding bits zero.
 *
 * The writer picks whichever is smallest for each tensor (see `chooseIndexEncoding`). Decoders
 * validate as they expand: a stream that ends early, runs past the tensor, keeps a different
 * number of entries than the metadata says, or has bytes left over is refused; every loop
 * consumes at least one symbol per step, so hostile input cannot make it spin.
 */
import { DS_ERR_DELTA_BAD_STREAM, DS_ERR_DELTA_INDEX_RANGE } from '../../core/errors.js';

export type GapSymbols = Uint8Array | Uint16Array;
export type IndexEncoding = 'gaps4' | 'gaps8' | 'gaps16' | 'bitmask';

function badStream(name: string, reason: string): Error {
  return new DS_ERR_DELTA_BAD_STREAM(JSON.stringify(name), reason);
}

/** Symbols `encodeGaps` writes for these indices with this symbol width, without writing them. */
export function gapSymbolCount(indices: Uint32Array, escape: number): number {
  let count = 0;
  let previous = -1;
  for (let k = 0; k < indices.length; k++) {
    const index = indices[k]!;
    count += 1 + Math.floor((index - previous - 1) / escape);
    previous = index;
  }
  return count;
}

/** The gap stream of strictly increasing indices, with 8- or 16-bit symbols. */
export function encodeGaps(indices: Uint32Array, bits: 8 | 16): GapSymbols {
  const escape = bits === 8 ? 0xff : 0xffff;
  const out =
    bits === 8 ? new Uint8Array(gapSymbolCount(indices, escape)) : new Uint16Array(gapSymbolCount(indices, escape));
  let at = 0;
  let previous = -1;
  for (let k = 0; k < indices.length; k++) {
    let gap = indices[k]! - previous - 1;
    previous = indices[k]!;
    while (gap >= escape) {
      out[at++] = escape;
      gap -= escape;
    }
    out[at++] = gap;
  }
  return out;
}

/** The 4-bit gap stream, two symbols per byte (low nibble first). */
export function encodeGaps4(indices: Uint32Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(gapSymbolCount(indices, 0xf) / 2));
  let at = 0;
  let previous = -1;
  const put = (symbol: number) => {
    out[at >>> 1] = out[at >>> 1]! | (symbol << ((at & 1) << 2));
    at++;
  };
  for (let k = 0; k < indices.length; k++) {
    let gap = indices[k]! - previous - 1;
    previous = indices[k]!;
    while (gap >= 0xf) {
      put(0xf);
      gap -= 0xf;
    }
    put(gap);
  }
  return out;
}

/**
 * `decodeGaps` for the 4-bit stream; the padding nibble of an odd count must be 0. Walks bytes,
 * low nibble then high, carrying escaped amounts in `pending` (a nibble-indexed loop measured
 * twice as slow).
 */
export function decodeGaps4(name: string, bytes: Uint8Array, nnz: number, numel: number): Uint32Array {
  const out = new Uint32Array(nnz);
  const length = bytes.length;
  let position = -1;
  let pending = 0;
  let k = 0;
  let i = 0;
  let highUsed = true;
  for (; i < length && k < nnz; i++) {
    const byte = bytes[i]!;
    const low = byte & 0xf;
    if (low === 0xf) pending += 0xf;
    else {
      position += pending + low + 1;
      pending = 0;
      if (position >= numel) throw pastTensor(name, k, position, numel);
      out[k++] = position;
      if (k === nnz) {
        highUsed = false;
        i++;
        break;
      }
    }
    const high = byte >>> 4;
    if (high === 0xf) pending += 0xf;
    else {
      position += pending + high + 1;
      pending = 0;
      if (position >= numel) throw pastTensor(name, k, position, numel);
      out[k++] = position;
    }
  }
  if (k < nnz) throw badStream(name, `the gap stream ends after ${k} of the ${nnz} kept entries the metadata lists`);
  const left = (length - i) * 2 + (highUsed ? 0 : 1);
  if (left > 1 || (left === 1 && bytes[length - 1]! >>> 4 !== 0)) {
    throw badStream(name, `the gap stream has ${left} symbol(s) left after the ${nnz} kept entries`);
  }
  return out;
}

function pastTensor(name: string, k: number, position: number, numel: number): Error {
  return new DS_ERR_DELTA_INDEX_RANGE(
    JSON.stringify(name),
    `kept entry ${k} falls at flat index ${position}, not below ${numel} (the gap stream runs past the tensor)`,
  );
}

/**
 * Expands a gap stream into `nnz` flat positions, each < numel. Throws DS_ERR_DELTA_BAD_STREAM
 * if the stream holds fewer or more than `nnz` positions, and DS_ERR_DELTA_INDEX_RANGE at the
 * first position ≥ numel.
 */
export function decodeGaps(name: string, symbols: GapSymbols, nnz: number, numel: number): Uint32Array {
  const escape = symbols.BYTES_PER_ELEMENT === 1 ? 0xff : 0xffff;
  const out = new Uint32Array(nnz);
  const length = symbols.length;
  let at = 0;
  let position = -1;
  let k = 0;
  for (; k < nnz && at < length; k++) {
    let symbol = symbols[at++]!;
    let gap = symbol;
    while (symbol === escape && at < length) {
      symbol = symbols[at++]!;
      gap += symbol;
    }
    if (symbol === escape) break; // the stream ended inside a gap
    position += gap + 1;
    if (position >= numel) {
      throw new DS_ERR_DELTA_INDEX_RANGE(
        JSON.stringify(name),
        `kept entry ${k} falls at flat index ${position}, not below ${numel} (the gap stream runs past the tensor)`,
      );
    }
    out[k] = position;
  }
  if (k < nnz) throw badStream(name, `the gap stream ends after ${k} of the ${nnz} kept entries the metadata lists`);
  if (at < length) {
    throw badStream(name, `the gap stream has ${length - at} symbol(s) left after the ${nnz} kept entries`);
  }
  return out;
}

export function bitmaskBytes(numel: number): number {
  return Math.ceil(numel / 8);
}

export function encodeBitmask(indices: Uint32Array, numel: number): Uint8Array {
  const mask = new Uint8Array(bitmaskBytes(numel));
  for (let k = 0; k < indices.length; k++) {
    const index = indices[k]!;
    mask[index >>> 3] = mask[index >>> 3]! | (1 << (index & 7));
  }
  return mask;
}

/** Expands a bitmask; it must have exactly `nnz` bits set, none at or beyond `numel`. */
export function decodeBitmask(name: string, mask: Uint8Array, nnz: number, numel: number): Uint32Array {
  if (mask.length !== bitmaskBytes(numel)) {
    throw badStream(name, `the bitmask has ${mask.length} bytes, expected ⌈${numel}/8⌉ = ${bitmaskBytes(numel)}`);
  }
  const out = new Uint32Array(nnz);
  let k = 0;
  for (let byte = 0; byte < mask.length; byte++) {
    let bits = mask[byte]!;
    if (bits === 0) continue;
    const base = byte << 3;
    while (bits !== 0) {
      const low = bits & -bits;
      if (k === nnz) throw badStream(name, `the bitmask keeps more than the ${nnz} entries the metadata lists`);
      out[k++] = base + 31 - Math.clz32(low);
      bits ^= low;
    }
  }
  if (k < nnz) throw badStream(name, `the bitmask keeps ${k} entries but the metadata lists ${nnz}`);
  if (nnz > 0 && out[nnz - 1]! >= numel) {
    throw new DS_ERR_DELTA_INDEX_RANGE(
      JSON.stringify(name),
      `the bitmask sets padding bit ${out[nnz - 1]}, not below ${numel}`,
    );
  }
  return out;
}

/** Bytes each index encoding would take for these indices. */
export function indexEncodingBytes(indices: Uint32Array, numel: number): Record<IndexEncoding, number> {
  return {
    gaps4: Math.ceil(gapSymbolCount(indices, 0xf) / 2),
    gaps8: gapSymbolCount(indices, 0xff),
    gaps16: 2 * gapSymbolCount(indices, 0xffff),
    bitmask: bitmaskBytes(numel),
  };
}

/** The smallest encoding (ties: gaps8, gaps16, gaps4, then bitmask). */
export function chooseIndexEncoding(indices: Uint32Array, numel: number): IndexEncoding {
  const bytes = indexEncodingBytes(indices, numel);
  let best: IndexEncoding = 'gaps8';
  for (const encoding of ['gaps16', 'gaps4', 'bitmask'] as const) if (bytes[encoding] < bytes[best]) best = encoding;
  return best;
}

export function encodeIndices(encoding: IndexEncoding, indices: Uint32Array, numel: number): Uint8Array | Uint16Array {
  switch (encoding) {
    case 'gaps4':
      return encodeGaps4(indices);
    case 'gaps8':
      return encodeGaps(indices, 8);
    case 'gaps16':
      return encodeGaps(indices, 16);
    case 'bitmask':
      return encodeBitmask(indices, numel);
  }
}
