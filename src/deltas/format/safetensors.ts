/**
 * A generic safetensors container: the layout Python's `safetensors` (and its Rust core) read.
 *
 *   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
 *   bytes [8, 8 + N)    UTF-8 JSON object: optional "__metadata__" (string → string) and, per
 *                       tensor, {"dtype", "shape", "data_offsets": [begin, end]}
 *   bytes [8 + N, end)  the data buffer; offsets are relative to its start, little-endian data
 *
 * The reader enforces what the Rust reader enforces: the tensors tile the data buffer exactly
 * (no gap, no overlap, no trailing byte) and each one spans product(shape) × dtype size bytes.
 * Every defect raises one of the DS_ERR_ST_* errors, never anything else, whatever the bytes.
 *
 * The writer pads the header with spaces so the data buffer starts 8-aligned and stores wider
 * dtypes first, so each tensor is naturally aligned whenever the file's buffer is: the reader
 * can then hand out typed-array views instead of copies. Output is canonical: tensors sorted by
 * (dtype size descending, name), metadata keys sorted, so equal inputs give equal bytes.
 */
import {
  DS_ERR_ST_BAD_HEADER,
  DS_ERR_ST_BAD_OFFSETS,
  DS_ERR_ST_TRUNCATED,
  DS_ERR_ST_UNKNOWN_DTYPE,
} from '../../core/errors.js';
import { boundText, describeListBounded, jsonBounded, quoteBounded } from '../../core/bounded-text.js';
import { guardHeaderJson } from './header-guard.js';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Typed-array views would read safetensors' little-endian data in the wrong byte order.
  throw new Error('deltaserve safetensors support requires a little-endian host');
}

/**
 * Every dtype this module reads and writes (safetensors' own names) and the typed array
 * `tensorView` returns for it (F16/BF16/F8 as raw bit patterns); element sizes follow from it.
 */
const DTYPE_ARRAYS = {
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
  F32: Float32Array,
  I32: Int32Array,
  U32: Uint32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I16: Int16Array,
  U16: Uint16Array,
  U8: Uint8Array,
  I8: Int8Array,
  BOOL: Uint8Array,
  F8_E4M3: Uint8Array,
  F8_E5M2: Uint8Array,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_ARRAYS;

/** The typed array `tensorView` returns for each dtype. */
export type SafetensorsArrayOf = { [D in SafetensorsDtype]: InstanceType<(typeof DTYPE_ARRAYS)[D]> };

/** Element size in bytes of each dtype. */
export const SAFETENSORS_DTYPE_SIZE = Object.fromEntries(
  Object.entries(DTYPE_ARRAYS).map(([dtype, array]) => [dtype, array.BYTES_PER_ELEMENT]),
) as Readonly<Record<SafetensorsDtype, number>>;

/** Header bytes beyond this are refused before decoding (same limit as the Rust reader). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInput {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Raw element data in host (little-endian) order; `byteLength` must be product(shape) × dtype size. */
  readonly data: ArrayBufferView;
}

export interface SafetensorsEntry {
  readonly dtype: SafetensorsDtype;
  readonly shape: number[];
  /** Byte offsets relative to the data buffer (add `dataOffset` for file offsets). */
  readonly begin: number;
  readonly end: number;
}

export interface ParsedSafetensors {
  readonly metadata: Record<string, string>;
  /** In data-buffer order. */
  readonly tensors: Map<string, SafetensorsEntry>;
  /** File offset of the data buffer: 8 + header length. */
  readonly dataOffset: number;
}

export type SafetensorsTypedArray =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(SAFETENSORS_DTYPE_SIZE, value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Product of a shape; exact below 2^53, and beyond that larger than any real byte count. */
export function shapeNumel(shape: readonly number[]): number {
  let numel = 1;
  for (const dim of shape) numel *= dim;
  return numel;
}

function describeShape(shape: readonly number[]): string {
  return describeListBounded(shape);
}

// ---- writing ----------------------------------------------------------------------------------

/** What the layout needs to know about a tensor: everything but its data. */
export interface SafetensorsTensorSpec {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
}

export interface SafetensorsLayout<S extends SafetensorsTensorSpec = SafetensorsTensorSpec> {
  /** The JSON header, space-padded to a multiple of 8 bytes. */
  readonly header: Uint8Array;
  /** Specs in data order with their offsets relative to the data buffer. */
  readonly tensors: readonly { readonly spec: S; readonly begin: number; readonly end: number }[];
  readonly dataBytes: number;
  readonly fileBytes: number;
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Everything about a file except its data: canonical tensor order, offsets, padded header.
 * Lets a caller size a file exactly without materialising it.
 */
export function layoutSafetensors<S extends SafetensorsTensorSpec>(
  tensors: readonly S[],
  metadata: Readonly<Record<string, string>>,
): SafetensorsLayout<S> {
  const seen = new Set<string>();
  for (const tensor of tensors) {
    const label = quoteBounded(tensor.name);
    if (tensor.name === '__metadata__') {
      throw new DS_ERR_ST_BAD_HEADER('"__metadata__" is reserved and cannot name a tensor');
    }
    if (seen.has(tensor.name)) throw new DS_ERR_ST_BAD_HEADER(`tensor name ${label} appears twice`);
    seen.add(tensor.name);
    if (!isSafetensorsDtype(tensor.dtype)) throw new DS_ERR_ST_UNKNOWN_DTYPE(label, String(tensor.dtype));
    if (!tensor.shape.every(isNonNegativeInteger)) {
      throw new DS_ERR_ST_BAD_HEADER(
        `tensor ${label} has shape ${describeShape(tensor.shape)}, not non-negative integers`,
      );
    }
    const expected = shapeNumel(tensor.shape) * SAFETENSORS_DTYPE_SIZE[tensor.dtype];
    if (tensor.byteLength !== expected) {
      throw new DS_ERR_ST_BAD_OFFSETS(
        `tensor ${label} (${tensor.dtype} ${describeShape(tensor.shape)}) needs ${expected} bytes but its data holds ${tensor.byteLength}`,
      );
    }
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new DS_ERR_ST_BAD_HEADER(`metadata value of ${quoteBounded(key)} is a ${typeof value}, not a string`);
    }
  }

  // Wider dtypes first keeps every tensor aligned to its element size (all sizes are powers of
  // two and the data buffer starts 8-aligned); names break ties so the order is canonical.
  const ordered = [...tensors].sort(
    (a, b) => SAFETENSORS_DTYPE_SIZE[b.dtype] - SAFETENSORS_DTYPE_SIZE[a.dtype] || compareCodeUnits(a.name, b.name),
  );
  let cursor = 0;
  const laidOut = ordered.map((spec) => {
    const begin = cursor;
    cursor += spec.byteLength;
    return { spec, begin, end: cursor };
  });

  // Entries built with fromEntries so that a name like "__proto__" stays an ordinary key.
  // JSON.stringify moves integer-like keys ahead of the rest; harmless, as readers go by offsets.
  const headerEntries: [string, unknown][] = [];
  const metadataKeys = Object.keys(metadata).sort(compareCodeUnits);
  if (metadataKeys.length > 0) {
    headerEntries.push(['__metadata__', Object.fromEntries(metadataKeys.map((key) => [key, metadata[key]]))]);
  }
  for (const { spec, begin, end } of laidOut) {
    headerEntries.push([spec.name, { dtype: spec.dtype, shape: [...spec.shape], data_offsets: [begin, end] }]);
  }
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(headerEntries)));
  const paddedLength = Math.ceil(json.length / 8) * 8;
  const padded = new Uint8Array(paddedLength).fill(0x20);
  padded.set(json);
  return { header: padded, tensors: laidOut, dataBytes: cursor, fileBytes: 8 + paddedLength + cursor };
}

/**
 * Serialises tensors and string metadata into a safetensors file. Deterministic: the input
 * order of tensors and of metadata keys does not affect the bytes.
 */
export function writeSafetensors(
  tensors: readonly SafetensorsTensorInput[],
  metadata: Readonly<Record<string, string>>,
): Uint8Array {
  const specs = tensors.map((tensor) => ({ ...tensor, byteLength: tensor.data.byteLength }));
  const layout = layoutSafetensors(specs, metadata);
  const out = new Uint8Array(layout.fileBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(layout.header.length), true);
  out.set(layout.header, 8);
  const dataStart = 8 + layout.header.length;
  for (const {
    spec: { data },
    begin,
  } of layout.tensors) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), dataStart + begin);
  }
  return out;
}

// ---- reading ----------------------------------------------------------------------------------

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseEntry(name: string, raw: unknown): SafetensorsEntry {
  const label = quoteBounded(name);
  if (!isPlainObject(raw)) throw new DS_ERR_ST_BAD_HEADER(`entry of tensor ${label} is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw;
  if (dtype === undefined) throw new DS_ERR_ST_BAD_HEADER(`tensor ${label} has no "dtype"`);
  if (typeof dtype !== 'string') throw new DS_ERR_ST_BAD_HEADER(`tensor ${label} has a non-string "dtype"`);
  if (!isSafetensorsDtype(dtype)) throw new DS_ERR_ST_UNKNOWN_DTYPE(label, quoteBounded(dtype));
  if (!Array.isArray(shape)) throw new DS_ERR_ST_BAD_HEADER(`tensor ${label} has no "shape" array`);
  if (!shape.every(isNonNegativeInteger)) {
    throw new DS_ERR_ST_BAD_HEADER(`tensor ${label} has shape ${jsonBounded(shape)}, not non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw new DS_ERR_ST_BAD_HEADER(
      `tensor ${label} needs "data_offsets": [begin, end] of non-negative integers, got ${jsonBounded(offsets)}`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin)
    throw new DS_ERR_ST_BAD_OFFSETS(`tensor ${label} has data_offsets [${begin}, ${end}] that end before they begin`);
  const expected = shapeNumel(shape) * SAFETENSORS_DTYPE_SIZE[dtype];
  if (end - begin !== expected) {
    throw new DS_ERR_ST_BAD_OFFSETS(
      `tensor ${label} spans ${end - begin} bytes but ${dtype} ${describeShape(shape)} needs ${expected}`,
    );
  }
  return { dtype, shape: shape, begin, end };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses and validates a safetensors file's header against its size. Does not touch the data
 * (cost is O(header)), so it is safe to call before deciding to read tensors.
 */
export function parseSafetensors(bytes: Uint8Array): ParsedSafetensors {
  if (bytes.length < 8) throw new DS_ERR_ST_TRUNCATED(`${bytes.length} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0 || low > MAX_HEADER_BYTES) {
    const declared = BigInt(high) * 4294967296n + BigInt(low);
    throw new DS_ERR_ST_BAD_HEADER(`declared header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerLength = low;
  if (8 + headerLength > bytes.length) {
    throw new DS_ERR_ST_TRUNCATED(
      `the header declares ${headerLength} bytes but only ${bytes.length - 8} follow the length field`,
    );
  }

  // Bounded before anything is decoded or parsed: this runs on the engine worker (header-guard.ts).
  guardHeaderJson(bytes.subarray(8, 8 + headerLength), 'the header');
  let text: string;
  try {
    // TextDecoder refuses views of a SharedArrayBuffer; the header is small, so copy then.
    const headerBytes = bytes.subarray(8, 8 + headerLength);
    text = utf8.decode(bytes.buffer instanceof ArrayBuffer ? headerBytes : headerBytes.slice());
  } catch {
    throw new DS_ERR_ST_BAD_HEADER('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw new DS_ERR_ST_BAD_HEADER(`header is not valid JSON (${boundText((err as Error).message)})`);
  }
  if (!isPlainObject(header)) throw new DS_ERR_ST_BAD_HEADER('header JSON is not an object');

  let metadata: Record<string, string> = {};
  const entries: [string, SafetensorsEntry][] = [];
  for (const [key, raw] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (!isPlainObject(raw)) throw new DS_ERR_ST_BAD_HEADER('"__metadata__" is not an object');
      for (const [metaKey, metaValue] of Object.entries(raw)) {
        if (typeof metaValue !== 'string') {
          throw new DS_ERR_ST_BAD_HEADER(`metadata value of ${quoteBounded(metaKey)} is not a string`);
        }
      }
      metadata = raw as Record<string, string>;
    } else {
      entries.push([key, parseEntry(key, raw)]);
    }
  }

  const dataOffset = 8 + headerLength;
  const dataLength = bytes.length - dataOffset;
  // Ties on begin put the empty tensor first, so zero-length tensors never look like overlaps.
  entries.sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const [name, entry] of entries) {
    const label = quoteBounded(name);
    if (entry.begin !== cursor) {
      const where =
        entry.end > dataLength
          ? `tensor ${label} at [${entry.begin}, ${entry.end}] lies outside the ${dataLength}-byte data buffer`
          : entry.begin < cursor
            ? `tensor ${label} at [${entry.begin}, ${entry.end}] overlaps tensor ${quoteBounded(previous)}, which ends at ${cursor}`
            : `bytes [${cursor}, ${entry.begin}) before tensor ${label} belong to no tensor`;
      throw new DS_ERR_ST_BAD_OFFSETS(where);
    }
    cursor = entry.end;
    previous = name;
  }
  if (cursor > dataLength) {
    throw new DS_ERR_ST_TRUNCATED(`the tensors need ${cursor} data bytes but the file holds ${dataLength}`);
  }
  if (cursor < dataLength) {
    throw new DS_ERR_ST_BAD_OFFSETS(`${dataLength - cursor} trailing bytes after the last tensor belong to no tensor`);
  }
  return { metadata, tensors: new Map(entries), dataOffset };
}

type TypedArrayConstructor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsTypedArray;
  new (buffer: ArrayBufferLike): SafetensorsTypedArray;
};

/**
 * A typed array over one tensor's data, flat. A zero-copy view of `bytes.buffer` when the data
 * is aligned to the element size there (always, for files from `writeSafetensors` held in an
 * 8-aligned buffer), otherwise a fresh copy. A view shares memory with `bytes`: writing to one
 * changes the other. `parsed` must come from `parseSafetensors(bytes)`.
 */
export function tensorView(bytes: Uint8Array, parsed: ParsedSafetensors, name: string): SafetensorsTypedArray {
  const entry = parsed.tensors.get(name);
  if (entry === undefined) throw new DS_ERR_ST_BAD_HEADER(`the header lists no tensor named ${quoteBounded(name)}`);
  return entryView(bytes, parsed.dataOffset, entry);
}

/** `tensorView` with the entry already looked up, typed by its dtype. */
export function entryView<D extends SafetensorsDtype>(
  bytes: Uint8Array,
  dataOffset: number,
  entry: SafetensorsEntry & { readonly dtype: D },
): SafetensorsArrayOf[D] {
  const Ctor: TypedArrayConstructor = DTYPE_ARRAYS[entry.dtype];
  const size = SAFETENSORS_DTYPE_SIZE[entry.dtype];
  const start = bytes.byteOffset + dataOffset + entry.begin;
  const length = (entry.end - entry.begin) / size;
  if (start % size === 0) return new Ctor(bytes.buffer, start, length) as SafetensorsArrayOf[D];
  // A misaligned entry is copied into its own buffer. Not `bytes.slice()`: on a Node Buffer that
  // returns a view of the same (pooled) memory, and the typed array would read from its start.
  const copy = new Uint8Array(bytes.subarray(dataOffset + entry.begin, dataOffset + entry.end));
  return new Ctor(copy.buffer, 0, length) as SafetensorsArrayOf[D];
}
