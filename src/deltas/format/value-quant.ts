/**
 * Group-wise symmetric integer quantization of a sparse tensor's kept values (format version 2,
 * docs/delta-format.md §2.3): consecutive kept entries form groups of `group` (the last may be
 * shorter); each group has one fp16 scale s and each value is stored as an integer code c with
 * value = c × s. `I8` codes are signed bytes (c ∈ [−127, 127] when written, any I8 accepted when
 * read); `I4` codes are 4-bit two's-complement nibbles, two per byte, the even entry in the low
 * nibble (c ∈ [−7, 7] when written, −8 accepted when read).
 *
 * Bound (clip = 1): the scale is absmax/qmax rounded UP to fp16, so no code clips and every
 * value is within s/2 ≤ absmax/qmax × (1 + 2⁻¹⁰)/2 of the original (qmax = 127 or 7). With
 * clip < 1 the scale is clip × absmax/qmax and values beyond ±qmax × s are clipped to it.
 */
import { DS_ERR_DELTA_BAD_QUANT } from '../../core/errors.js';
import type { QuantizedValues, QuantValueEncoding } from '../types.js';
import { float16Table, float32ToFloat16Bits } from './float16.js';

export type { QuantizedValues, QuantValueEncoding };

export const MIN_GROUP = 1;
export const MAX_GROUP = 65536;

export function qmaxOf(encoding: QuantValueEncoding): number {
  return encoding === 'I8' ? 127 : 7;
}

export function codeBytes(encoding: QuantValueEncoding, count: number): number {
  return encoding === 'I8' ? count : Math.ceil(count / 2);
}

export function groupCount(count: number, group: number): number {
  return Math.ceil(count / group);
}

/** The smallest fp16 value ≥ x (x ≥ 0, finite, ≤ 65504), as bits. */
function float16AtLeast(x: number): number {
  let bits = float32ToFloat16Bits(x);
  if (float16Table()[bits]! < x) bits += 1;
  return bits;
}

/**
 * Quantizes `values` group-wise. `clip` (0, 1] shrinks each group's scale below absmax/qmax,
 * trading clipped extremes for finer steps (the compressor picks it on calibration data).
 * Throws RangeError for a scale beyond fp16's range or a bad group/clip.
 */
export function quantizeValues(
  values: Float32Array,
  encoding: QuantValueEncoding,
  group: number,
  clip = 1,
): QuantizedValues {
  if (!Number.isInteger(group) || group < MIN_GROUP || group > MAX_GROUP) {
    throw new RangeError(`group ${group} is not an integer in [${MIN_GROUP}, ${MAX_GROUP}]`);
  }
  if (!(clip > 0 && clip <= 1)) throw new RangeError(`clip ${clip} is not in (0, 1]`);
  const qmax = qmaxOf(encoding);
  const count = values.length;
  const scales = new Uint16Array(groupCount(count, group));
  const table = float16Table();
  const codes = encoding === 'I8' ? new Int8Array(count) : new Uint8Array(codeBytes('I4', count));
  for (let g = 0; g < scales.length; g++) {
    const start = g * group;
    const end = Math.min(count, start + group);
    let absmax = 0;
    for (let k = start; k < end; k++) absmax = Math.max(absmax, Math.abs(values[k]!));
    const wanted = (clip * absmax) / qmax;
    if (!(wanted <= 65504)) throw new RangeError(`group ${g} needs scale ${wanted}, beyond fp16's ±65504`);
    const bits = float16AtLeast(wanted);
    scales[g] = bits;
    const scale = table[bits]!;
    for (let k = start; k < end; k++) {
      const code = scale === 0 ? 0 : Math.max(-qmax, Math.min(qmax, Math.round(values[k]! / scale)));
      if (encoding === 'I8') codes[k] = code;
      else codes[k >>> 1] = codes[k >>> 1]! | ((code & 0xf) << ((k & 1) << 2));
    }
  }
  return { encoding, group, count, codes, scales };
}

function badQuant(name: string, reason: string): Error {
  return new DS_ERR_DELTA_BAD_QUANT(JSON.stringify(name), reason);
}

/** Checks the counts of a stored quantized tensor (before any data is read). */
export function checkQuantizedLayout(
  name: string,
  encoding: QuantValueEncoding,
  group: number,
  count: number,
  codeLength: number,
  scaleCount: number,
): void {
  if (!Number.isInteger(group) || group < MIN_GROUP || group > MAX_GROUP) {
    throw badQuant(name, `group ${group} is not an integer in [${MIN_GROUP}, ${MAX_GROUP}]`);
  }
  if (codeLength !== codeBytes(encoding, count)) {
    throw badQuant(
      name,
      `${encoding} codes take ${codeLength} bytes, expected ${codeBytes(encoding, count)} for ${count} kept entries`,
    );
  }
  if (scaleCount !== groupCount(count, group)) {
    throw badQuant(
      name,
      `${scaleCount} scales for ${count} kept entries in groups of ${group}, expected ${groupCount(count, group)}`,
    );
  }
}

/** Refuses the first scale that is not finite (an fp16 infinity or NaN). */
export function checkScales(name: string, scales: Uint16Array): void {
  let flags = 0;
  for (let g = 0; g < scales.length; g++) flags |= (scales[g]! & 0x7fff) + 0x400;
  if ((flags & 0x8000) !== 0) {
    const g = scales.findIndex((h) => (h & 0x7c00) === 0x7c00);
    throw badQuant(name, `scale ${g} is ${float16Table()[scales[g]!]}, not finite`);
  }
}

/**
 * Dequantizes to fp32 (exact: a small integer times an fp16 scale). Scales must be finite; the
 * first non-finite one is refused. Assumes `checkQuantizedLayout` passed.
 */
export function dequantizeValues(name: string, q: QuantizedValues, out = new Float32Array(q.count)): Float32Array {
  const table = float16Table();
  const { codes, scales, group, count } = q;
  checkScales(name, scales);
  if (q.encoding === 'I8') {
    for (let g = 0, k = 0; g < scales.length; g++) {
      const scale = table[scales[g]!]!;
      const end = Math.min(count, k + group);
      for (; k < end; k++) out[k] = codes[k]! * scale;
    }
    return out;
  }
  for (let g = 0, k = 0; g < scales.length; g++) {
    const scale = table[scales[g]!]!;
    const end = Math.min(count, k + group);
    for (; k < end; k++) out[k] = (((codes[k >>> 1]! >>> ((k & 1) << 2)) << 28) >> 28) * scale;
  }
  return out;
}
