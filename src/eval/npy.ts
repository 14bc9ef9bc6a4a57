/**
 * NumPy's .npy format (versions 1–3): magic "\x93NUMPY", major and minor version, a header
 * length (u16 in version 1, u32 after), a Python-literal dict
 * {'descr': '<f4', 'fortran_order': False, 'shape': (28, 28), } and the C-order data.
 * Read: little-endian or byte-order-free numeric dtypes and bools; written: what `calib` tests need.
 */
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type NpyValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

const DESCRS: Readonly<Record<string, { size: number; view: (buffer: ArrayBuffer, n: number) => NpyValues }>> = {
  '<f4': { size: 4, view: (b, n) => new Float32Array(b, 0, n) },
  '<f8': { size: 8, view: (b, n) => new Float64Array(b, 0, n) },
  '|i1': { size: 1, view: (b, n) => new Int8Array(b, 0, n) },
  '|u1': { size: 1, view: (b, n) => new Uint8Array(b, 0, n) },
  '|b1': { size: 1, view: (b, n) => new Uint8Array(b, 0, n) },
  '<i2': { size: 2, view: (b, n) => new Int16Array(b, 0, n) },
  '<u2': { size: 2, view: (b, n) => new Uint16Array(b, 0, n) },
  '<i4': { size: 4, view: (b, n) => new Int32Array(b, 0, n) },
  '<u4': { size: 4, view: (b, n) => new Uint32Array(b, 0, n) },
  '<i8': { size: 8, view: (b, n) => new BigInt64Array(b, 0, n) },
  '<u8': { size: 8, view: (b, n) => new BigUint64Array(b, 0, n) },
};

export interface NpyArray {
  readonly descr: string;
  readonly shape: number[];
  readonly values: NpyValues;
}

/** Throws an Error with a one-line reason for anything it does not read. */
export function parseNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error('not a .npy file (bad magic)');
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new Error(`.npy version ${major} is not known`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  if (headerStart + headerLength > bytes.length) throw new Error('.npy header is truncated');
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new Error(`.npy header is not a dict with descr, fortran_order and shape: ${header.trim().slice(0, 120)}`);
  if (fortran === 'True') throw new Error('.npy data is in Fortran order; save it with np.ascontiguousarray first');
  const kind = DESCRS[descr.replace(/^=/, '<')];
  if (!kind) throw new Error(`.npy dtype ${descr} is not read (use float32, float64, bool or little-endian integers)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`.npy shape (${shapeText}) is not integers`);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  if (bytes.length - start !== count * kind.size)
    throw new Error(
      `.npy data holds ${bytes.length - start} bytes, but shape (${shapeText}) of ${descr} needs ${count * kind.size}`,
    );
  // A copy that owns its buffer (Buffer.slice would return a view of a larger, shared one).
  const copy = Uint8Array.prototype.slice.call(bytes, start).buffer;
  return { descr, shape, values: kind.view(copy, count) };
}

/** A version-1 .npy file of float32 or uint8 values (C order). */
export function writeNpy(values: Float32Array | Uint8Array, shape: readonly number[]): Uint8Array {
  const descr = values instanceof Float32Array ? '<f4' : '|u1';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + values.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 10 + header.length);
  return out;
}
