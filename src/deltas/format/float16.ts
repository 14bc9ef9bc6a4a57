/**
 * IEEE 754 binary16 ("half", safetensors dtype F16) ⇄ binary32 conversion.
 *
 * Narrowing rounds to nearest, ties to even, like numpy's `astype(np.float16)` and PyTorch's
 * `.half()`: values at or above 65520 become ±Inf, values below half of the smallest subnormal
 * (2^-25, a tie that goes to even) become ±0, NaN stays NaN (quiet, top payload bits kept).
 *
 * Widening is exact and goes through a 65536-entry table (256 KiB, built on first use): the
 * delta decoder widens millions of values per file and a table load beats bit twiddling there.
 *
 * Half values travel as their raw bit patterns in `Uint16Array`s: JavaScript has no float16
 * typed array in Node 20.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Smallest |x| (as fp32 bits) that rounds to Inf in fp16: 65520 = 65504 + half an ulp. */
const F32_BITS_HALF_OVERFLOW = 0x477ff000;
/** 2^-14, the smallest normal fp16, as fp32 bits: below it the result is subnormal or zero. */
const F32_BITS_HALF_MIN_NORMAL = 0x38800000;
/** Exponent bias difference (127 - 15) shifted into the fp32 exponent field. */
const REBIAS = 112 << 23;

/** Converts fp32 bits (an unsigned 32-bit integer) to fp16 bits, round to nearest even. */
export function float32BitsToFloat16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00;
    // NaN: keep the top 10 payload bits and force the quiet bit so it cannot become Inf.
    return sign | 0x7c00 | 0x200 | ((abs >>> 13) & 0x3ff);
  }
  if (abs >= F32_BITS_HALF_OVERFLOW) return sign | 0x7c00;
  if (abs < F32_BITS_HALF_MIN_NORMAL) {
    // Subnormal (or zero) half: the result is round(|x| / 2^-24). |x| * 2^24 is exact in a double.
    scratchU32[0] = abs;
    const scaled = scratchF32[0]! * 16777216;
    let rounded = Math.floor(scaled);
    const rest = scaled - rounded;
    if (rest > 0.5 || (rest === 0.5 && (rounded & 1) === 1)) rounded += 1;
    // rounded may reach 1024 = 0x400, which is exactly the smallest normal half: still correct.
    return sign | rounded;
  }
  // Normal: rebias the exponent, then add just under half an ulp plus the lowest kept mantissa
  // bit, so that the truncating shift rounds to nearest with ties to even. A carry out of the
  // mantissa correctly bumps the exponent.
  const odd = (abs >>> 13) & 1;
  return sign | ((abs - REBIAS + 0xfff + odd) >>> 13);
}

/** Converts a number to fp16 bits (the number is first rounded to fp32, as a Float32Array would). */
export function float32ToFloat16Bits(value: number): number {
  scratchF32[0] = value;
  return float32BitsToFloat16Bits(scratchU32[0]!);
}

let widenTable: Float32Array | undefined;

/** The fp16-bits → fp32 table, built once. Exposed for hot loops that index it directly. */
export function float16Table(): Float32Array {
  if (widenTable !== undefined) return widenTable;
  const table = new Float32Array(65536);
  // Written as bit patterns so NaN payloads survive (storing a NaN number may canonicalise it).
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) {
      // Zero or subnormal: mantissa × 2^-24, exact in fp32.
      table[h] = mantissa * 5.960464477539063e-8;
      bits[h] = (bits[h]! | sign) >>> 0;
    } else if (exponent === 31) {
      bits[h] = (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
    } else {
      bits[h] = (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
    }
  }
  widenTable = table;
  return table;
}

/** Converts fp16 bits to the (exactly representable) fp32 value. */
export function float16BitsToFloat32(bits: number): number {
  return float16Table()[bits & 0xffff]!;
}

/** Narrows every element of `source` to fp16 bits (round to nearest even). */
export function float32ArrayToFloat16(source: Float32Array, target = new Uint16Array(source.length)): Uint16Array {
  if (target.length !== source.length) {
    throw new RangeError(`target holds ${target.length} elements but source holds ${source.length}`);
  }
  const bits = new Uint32Array(source.buffer, source.byteOffset, source.length);
  for (let i = 0; i < bits.length; i++) target[i] = float32BitsToFloat16Bits(bits[i]!);
  return target;
}

/** Widens every fp16 bit pattern of `source` to fp32 (exact). */
export function float16ArrayToFloat32(source: Uint16Array, target = new Float32Array(source.length)): Float32Array {
  if (target.length !== source.length) {
    throw new RangeError(`target holds ${target.length} elements but source holds ${source.length}`);
  }
  const table = float16Table();
  for (let i = 0; i < source.length; i++) target[i] = table[source[i]!]!;
  return target;
}
