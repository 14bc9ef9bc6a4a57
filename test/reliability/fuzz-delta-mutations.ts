/**
 * Seeded mutations of a valid delta file (safetensors: 8-byte little-endian header length, JSON
 * header, data), for the decoder fuzz and the admin-registration fuzz. Each mutation is plain
 * data (fast-check prints it on failure) applied by `mutatedDelta`:
 *
 * - bytes: flip one, truncate, append garbage, overwrite the header-length prefix;
 * - header JSON: replace or delete one field of one entry (dtype, shape, data_offsets) or of the
 *   `__metadata__` map, including fields inside its `tensors` JSON string (shapes, rescale, kind),
 *   then write the header back with a correct length prefix so the damage reaches the decoder;
 * - data: overwrite one 4-byte word with NaN / Inf / huge floats or out-of-range / repeated indices;
 * - hostile structure (issue 22): deep nesting, tens of thousands of entries, long names, a huge
 *   rank, a long number, in the outer header or in the `tensors` JSON string, of a size drawn
 *   around each bound of src/deltas/format/header-guard.ts.
 */
import fc from 'fast-check';

export type DeltaMutation =
  | { kind: 'flip'; at: number; xor: number; inHeader: boolean }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: number[] }
  | { kind: 'header-length'; value: string }
  | { kind: 'header-field'; entry: number; field: number; value: unknown; remove: boolean }
  | { kind: 'record-field'; tensor: number; field: number; value: unknown; remove: boolean }
  | { kind: 'word'; at: number; value: number }
  | { kind: 'hostile'; shape: 'nest' | 'entries' | 'name' | 'rank' | 'number'; size: number; inTensors: boolean };

const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    '',
    'F64',
    'F16',
    'F32',
    'U32',
    'I64',
    'BOOL',
    'XX',
    -1,
    0,
    1,
    1.5,
    1e308,
    2 ** 32,
    2 ** 53,
    [],
    {},
    [0],
    [0, 0],
    [-1, 5],
    [5, 1],
    [0, 2 ** 40],
  ),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 100 }), fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 53, 1e30)), {
    maxLength: 4,
  }),
  fc.string({ maxLength: 12 }),
  fc.jsonValue({ maxDepth: 2 }),
);

export const deltaMutation: fc.Arbitrary<DeltaMutation> = fc.oneof(
  fc.record({
    kind: fc.constant('hostile' as const),
    shape: fc.constantFrom('nest' as const, 'entries' as const, 'name' as const, 'rank' as const, 'number' as const),
    // Around and far past each bound (depth 16, 65,536 entries, 1,024-byte names, rank 32, 64 digits).
    size: fc.constantFrom(10, 17, 33, 65, 1025, 70_000, 200_000),
    inTensors: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
    inHeader: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 64 }) }),
  fc.record({
    kind: fc.constant('header-length' as const),
    value: fc.constantFrom(
      '0',
      '1',
      '7',
      '-1',
      '+1',
      '+8',
      '100000000',
      '100000001',
      '9007199254740993',
      '18446744073709551615',
    ),
  }),
  fc.record({
    kind: fc.constant('header-field' as const),
    entry: fc.nat(),
    field: fc.nat(),
    value: oddValue,
    remove: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('record-field' as const),
    tensor: fc.nat(),
    field: fc.nat(),
    value: oddValue,
    remove: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('word' as const),
    at: fc.nat(),
    value: fc.constantFrom(
      0x7fc00000,
      0x7f800000,
      0xff800000,
      0x7f7fffff,
      0xffffffff,
      0,
      1,
      0x80000000,
      0x3c003c00,
      0x7c007c00,
    ),
  }),
);

interface Parts {
  header: Record<string, unknown>;
  data: Uint8Array;
}

function split(bytes: Uint8Array): Parts | null {
  if (bytes.length < 8) return null;
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (length > bytes.length - 8) return null;
  try {
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as unknown;
    if (typeof header !== 'object' || header === null || Array.isArray(header)) return null;
    return { header: header as Record<string, unknown>, data: bytes.subarray(8 + length) };
  } catch {
    return null;
  }
}

/** One hostile JSON value (`entries` and `name`: an object text, `{...}`). */
function hostileValue(shape: 'nest' | 'entries' | 'name' | 'rank' | 'number', size: number): string {
  switch (shape) {
    case 'nest':
      return '['.repeat(size) + ']'.repeat(size);
    case 'entries':
      return `{${Array.from({ length: size }, (_, i) => `"e${i}":{}`).join(',')}}`;
    case 'name':
      return `{"${'n'.repeat(size)}":{}}`;
    case 'rank':
      return `[${new Array(size).fill(1).join(',')}]`;
    case 'number':
      return '9'.repeat(size);
  }
}

function join(parts: Parts, rawHeader?: string): Uint8Array {
  let text = rawHeader ?? JSON.stringify(parts.header);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8); // keep the data 8-aligned
  const header = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + header.length + parts.data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(parts.data, 8 + header.length);
  return out;
}

/** Replaces or removes the `field`-th key of `target` (modulo its key count). */
function editObject(target: Record<string, unknown>, field: number, value: unknown, remove: boolean): void {
  const keys = Object.keys(target);
  if (keys.length === 0) return;
  const key = keys[field % keys.length]!;
  if (remove) delete target[key];
  else target[key] = value;
}

function applyOne(bytes: Uint8Array, m: DeltaMutation): Uint8Array {
  switch (m.kind) {
    case 'flip': {
      if (bytes.length === 0) return bytes;
      const out = bytes.slice();
      const headerLength = out.length >= 8 ? Number(new DataView(out.buffer).getBigUint64(0, true)) : 0;
      const span = m.inHeader ? Math.max(1, Math.min(out.length, 8 + headerLength)) : out.length;
      const at = m.at % span;
      out[at] = out[at]! ^ m.xor;
      return out;
    }
    case 'truncate':
      return bytes.slice(0, m.at % (bytes.length + 1));
    case 'append': {
      const out = new Uint8Array(bytes.length + m.bytes.length);
      out.set(bytes);
      out.set(m.bytes, bytes.length);
      return out;
    }
    case 'header-length': {
      if (bytes.length < 8) return bytes;
      const out = bytes.slice();
      const view = new DataView(out.buffer);
      const current = view.getBigUint64(0, true);
      const value = m.value.startsWith('+') || m.value === '-1' ? current + BigInt(m.value) : BigInt(m.value);
      view.setBigUint64(0, BigInt.asUintN(64, value), true);
      return out;
    }
    case 'header-field': {
      const parts = split(bytes);
      if (parts === null) return bytes;
      const entries = Object.keys(parts.header);
      if (entries.length === 0) return bytes;
      const entry = parts.header[entries[m.entry % entries.length]!];
      if (typeof entry === 'object' && entry !== null && !Array.isArray(entry))
        editObject(entry as Record<string, unknown>, m.field, m.value, m.remove);
      else editObject(parts.header, m.entry, m.value, m.remove);
      return join(parts);
    }
    case 'record-field': {
      const parts = split(bytes);
      const metadata = parts?.header.__metadata__ as Record<string, unknown> | undefined;
      if (parts === null || typeof metadata?.tensors !== 'string') return bytes;
      let records: Record<string, Record<string, unknown>>;
      try {
        records = JSON.parse(metadata.tensors) as Record<string, Record<string, unknown>>;
      } catch {
        return bytes;
      }
      const names = Object.keys(records);
      if (names.length === 0) return bytes;
      const record = records[names[m.tensor % names.length]!];
      if (typeof record === 'object' && record !== null) editObject(record, m.field, m.value, m.remove);
      metadata.tensors = JSON.stringify(records);
      return join(parts);
    }
    case 'hostile': {
      const parts = split(bytes);
      if (parts === null) return bytes;
      const value = hostileValue(m.shape, m.size);
      const metadata = parts.header.__metadata__ as Record<string, unknown> | undefined;
      if (m.inTensors && typeof metadata?.tensors === 'string') {
        let records: Record<string, unknown>;
        try {
          records = JSON.parse(metadata.tensors) as Record<string, unknown>; // an earlier mutation may have broken it
        } catch {
          return bytes;
        }
        const name = Object.keys(records)[0] ?? 'w';
        metadata.tensors =
          m.shape === 'entries' || m.shape === 'name'
            ? `{${value.slice(1)}`
            : JSON.stringify({ ...records, [name]: '@' }).replace('"@"', value);
      } else {
        const text = JSON.stringify(parts.header);
        const hostile =
          m.shape === 'entries' || m.shape === 'name'
            ? `${value.slice(0, -1)},${text.slice(1)}`
            : `{"h":${value},${text.slice(1)}`;
        return join({ header: {}, data: parts.data }, hostile);
      }
      return join(parts);
    }
    case 'word': {
      const parts = split(bytes);
      if (parts === null || parts.data.length < 4) return bytes;
      const out = bytes.slice();
      const dataStart = bytes.length - parts.data.length;
      const at = dataStart + 4 * (m.at % Math.floor(parts.data.length / 4));
      new DataView(out.buffer).setUint32(at, m.value >>> 0, true);
      return out;
    }
  }
}

export function mutatedDelta(original: Uint8Array, mutations: readonly DeltaMutation[]): Uint8Array {
  return mutations.reduce<Uint8Array>((bytes, m) => applyOne(bytes, m), original);
}
