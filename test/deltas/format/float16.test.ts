import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  float16ArrayToFloat32,
  float16BitsToFloat32,
  float32ArrayToFloat16,
  float32BitsToFloat16Bits,
  float32ToFloat16Bits,
} from '../../../src/deltas/format/float16.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bitsOf(value: number): number {
  f32[0] = value;
  return u32[0]!;
}
function fromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/** Independent reference for widening: the IEEE definition, evaluated in doubles. */
function referenceHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

describe('float16', () => {
  it('widens every one of the 65536 half values exactly', () => {
    for (let h = 0; h < 65536; h++) {
      const widened = float16BitsToFloat32(h);
      const expected = referenceHalf(h);
      if (Number.isNaN(expected)) {
        assert.ok(Number.isNaN(widened), `0x${h.toString(16)} should widen to NaN`);
      } else {
        assert.ok(Object.is(widened, expected), `0x${h.toString(16)} widened to ${widened}, expected ${expected}`);
      }
    }
  });

  it('round-trips all 65536 half values bit for bit (NaNs come back quiet with their payload)', () => {
    for (let h = 0; h < 65536; h++) {
      const back = float32ToFloat16Bits(float16BitsToFloat32(h));
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      assert.equal(back, isNaN ? h | 0x200 : h, `0x${h.toString(16)} came back as 0x${back.toString(16)}`);
    }
  });

  it('rounds every midpoint between adjacent halves to the even one, and neighbours of it to the nearest', () => {
    for (const sign of [0, 0x8000]) {
      for (let h = 0; h < 0x7bff; h++) {
        const low = float16BitsToFloat32(sign | h);
        const high = float16BitsToFloat32(sign | (h + 1));
        const mid = (low + high) / 2; // 12 significant bits: exact in fp32
        const even = (h & 1) === 0 ? h : h + 1;
        assert.equal(float32ToFloat16Bits(mid), sign | even, `midpoint above 0x${h.toString(16)}`);
        const towardLow = fromBits(bitsOf(mid) - (Math.abs(mid) > 0 ? 1 : 0));
        const towardHigh = fromBits(bitsOf(mid) + 1);
        if (towardLow !== mid)
          assert.equal(float32ToFloat16Bits(towardLow), sign | h, `just inside 0x${h.toString(16)}`);
        assert.equal(float32ToFloat16Bits(towardHigh), sign | (h + 1), `just inside 0x${(h + 1).toString(16)}`);
      }
    }
  });

  it('handles the range edges, subnormals, signed zero, infinities and NaN', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65519.99, 0x7bff],
      [65520, 0x7c00], // the tie between 65504 and 2^16 goes to the even (infinite) side
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // tie with 0 → even (0)
      [2 ** -25 * 1.0000001, 0x0001],
      [1.5 * 2 ** -24, 0x0002], // tie → even
      [2.5 * 2 ** -24, 0x0002], // tie → even
      [1e-9, 0x0000],
      [-1e-9, 0x8000],
      [1 + 2 ** -11, 0x3c00], // tie → even
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even
      [0.1, 0x2e66],
      [2 ** -14 * (1 - 2 ** -11), 0x0400], // rounds up from the largest subnormal into the normals
    ];
    for (const [value, expected] of cases) {
      assert.equal(float32ToFloat16Bits(value), expected, `${value} → 0x${expected.toString(16)}`);
    }
    const nan = float32ToFloat16Bits(NaN);
    assert.equal(nan & 0x7c00, 0x7c00);
    assert.notEqual(nan & 0x3ff, 0);
    // A NaN whose payload sits only in the low fp32 bits must not turn into Inf.
    const lowPayloadNaN = float32BitsToFloat16Bits(0x7f800001);
    assert.ok(Number.isNaN(float16BitsToFloat32(lowPayloadNaN)));
  });

  it('converts arrays both ways and rejects a target of the wrong length', () => {
    const values = Float32Array.from([0, 1, -0.5, 0.000123, 70000, 3.14159]);
    const half = float32ArrayToFloat16(values);
    assert.deepEqual(
      [...half],
      [...values].map((v) => float32ToFloat16Bits(v)),
    );
    const back = float16ArrayToFloat32(half);
    assert.deepEqual(
      [...back],
      [...half].map((h) => float16BitsToFloat32(h)),
    );
    assert.equal(back[4], Infinity);
    // Works on a view that starts inside a larger buffer.
    const offsetView = new Float32Array(values.buffer, 8, 2);
    assert.deepEqual([...float32ArrayToFloat16(offsetView)], [half[2], half[3]]);
    assert.throws(() => float32ArrayToFloat16(values, new Uint16Array(2)), RangeError);
    assert.throws(() => float16ArrayToFloat32(half, new Float32Array(1)), RangeError);
  });
});
