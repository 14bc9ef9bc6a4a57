/**
 * How a TensorProto's elements map to bytes: element sizes per ONNX data type, shape arithmetic
 * on int64 dims, and little-endian conversion of fp32 data (ONNX `raw_data` is always
 * little-endian, whatever the host).
 */
import { endianness } from 'node:os';
import { onnx, type Int64 } from './proto.js';

const DataType = onnx.TensorProto.DataType;

export const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

/** ONNX data type numbers this module knows, with names as onnx.proto spells them. */
const DATA_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'FLOAT',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'STRING',
  9: 'BOOL',
  10: 'FLOAT16',
  11: 'DOUBLE',
  12: 'UINT32',
  13: 'UINT64',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  16: 'BFLOAT16',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
  23: 'FLOAT4E2M1',
};

/** Bytes per element in `raw_data`; 4-bit types pack two elements per byte. */
const BITS_PER_ELEMENT: Readonly<Record<number, number>> = {
  1: 32,
  2: 8,
  3: 8,
  4: 16,
  5: 16,
  6: 32,
  7: 64,
  9: 8,
  10: 16,
  11: 64,
  12: 32,
  13: 64,
  14: 64,
  15: 128,
  16: 16,
  17: 8,
  18: 8,
  19: 8,
  20: 8,
  21: 4,
  22: 4,
  23: 4,
};

export function dataTypeName(dataType: number | null | undefined): string {
  return DATA_TYPE_NAMES[dataType ?? 0] ?? `unknown data type ${String(dataType)}`;
}

export function isKnownDataType(dataType: number | null | undefined): boolean {
  return DATA_TYPE_NAMES[dataType ?? 0] !== undefined;
}

/** Converts a protobuf int64 to a number, or returns null when it is not a safe integer. */
export function int64ToNumber(value: Int64): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : null;
  const high = value.unsigned ? value.high >>> 0 : value.high | 0;
  const result = high * 4294967296 + (value.low >>> 0);
  return Number.isSafeInteger(result) ? result : null;
}

/** The tensor's dims as numbers, or a reason why they are unusable. */
export function tensorShape(tensor: onnx.ITensorProto): number[] | string {
  const shape: number[] = [];
  for (const [axis, dim] of (tensor.dims ?? []).entries()) {
    const value = int64ToNumber(dim);
    if (value === null || value < 0) return `dimension ${axis} is ${String(dim)}, not a non-negative integer`;
    shape.push(value);
  }
  return shape;
}

/** Element count of a shape, or null when it exceeds what a JS number counts exactly. */
export function elementCount(shape: readonly number[]): number | null {
  let count = 1;
  for (const dim of shape) count *= dim;
  return Number.isSafeInteger(count) ? count : null;
}

/** Bytes `raw_data` (or an external slice) must hold, or null for STRING / unknown types. */
export function rawByteLength(dataType: number | null | undefined, count: number): number | null {
  if (dataType === DataType.STRING) return null;
  const bits = BITS_PER_ELEMENT[dataType ?? 0];
  if (bits === undefined) return null;
  return Math.ceil((count * bits) / 8);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Copies little-endian fp32 bytes into a fresh (hence aligned) Float32Array. */
export function float32FromLittleEndian(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength / 4);
  if (HOST_IS_LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/** Little-endian bytes of fp32 values; a copy, so later writes to `values` do not leak in. */
export function float32ToLittleEndian(values: Float32Array | readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  if (HOST_IS_LITTLE_ENDIAN) {
    new Float32Array(bytes.buffer).set(values);
  } else {
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] ?? 0, true);
  }
  return bytes;
}

/** Little-endian bytes of int64 values given as safe integers. */
export function int64ToLittleEndian(values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (const [i, value] of values.entries()) view.setBigInt64(i * 8, BigInt(value), true);
  return bytes;
}
