import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRng } from '../../../src/core/rng.js';
import {
  layoutSafetensors,
  MAX_HEADER_BYTES,
  parseSafetensors,
  SAFETENSORS_DTYPE_SIZE,
  tensorView,
  writeSafetensors,
  type SafetensorsTensorInput,
} from '../../../src/deltas/format/safetensors.js';
import { assertCode, headerLength, headerText, rewriteHeader, type JsonHeader } from './fixtures.js';

function sampleTensors(): SafetensorsTensorInput[] {
  return [
    { name: 'bytes', dtype: 'U8', shape: [3], data: Uint8Array.from([1, 2, 255]) },
    { name: 'half', dtype: 'F16', shape: [3], data: Uint16Array.from([0x3c00, 0x0001, 0xfc00]) },
    { name: 'weights', dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2.5, 3e-8, 0, -0, 1e30]) },
    { name: 'ids', dtype: 'U32', shape: [2], data: Uint32Array.from([0, 0xffffffff]) },
    { name: 'big', dtype: 'I64', shape: [2], data: BigInt64Array.from([-1n, 2n ** 62n]) },
    { name: 'doubles', dtype: 'F64', shape: [1], data: Float64Array.from([Math.PI]) },
    { name: 'flags', dtype: 'BOOL', shape: [2], data: Uint8Array.from([0, 1]) },
    { name: 'signed', dtype: 'I8', shape: [1], data: Int8Array.from([-7]) },
    { name: 'shorts', dtype: 'I16', shape: [1], data: Int16Array.from([-300]) },
    { name: 'empty', dtype: 'F32', shape: [2, 0], data: new Float32Array(0) },
    { name: 'scalar', dtype: 'I32', shape: [], data: Int32Array.from([-42]) },
  ];
}
const sampleMetadata = { format: 'test', note: 'ünïcode ✓', empty: '' };

/** Three F32/U8 tensors at known offsets: a [0,16), b [16,32), c [32,40). */
function threeTensorFile(): Uint8Array {
  return writeSafetensors(
    [
      { name: 'a', dtype: 'F32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) },
      { name: 'b', dtype: 'F32', shape: [2, 2], data: Float32Array.from([5, 6, 7, 8]) },
      { name: 'c', dtype: 'U8', shape: [8], data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) },
    ],
    { kind: 'three' },
  );
}

function withHeaderLength(file: Uint8Array, low: number, high = 0): Uint8Array {
  const copy = file.slice();
  const view = new DataView(copy.buffer);
  view.setUint32(0, low, true);
  view.setUint32(4, high, true);
  return copy;
}

function withBytes(file: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const copy = file.slice();
  copy.set(bytes, at);
  return copy;
}

describe('safetensors writer and reader', () => {
  it('round-trips every tensor and the metadata', () => {
    const file = writeSafetensors(sampleTensors(), sampleMetadata);
    const parsed = parseSafetensors(file);
    assert.deepEqual(parsed.metadata, sampleMetadata);
    assert.equal(parsed.tensors.size, sampleTensors().length);
    for (const input of sampleTensors()) {
      const entry = parsed.tensors.get(input.name);
      assert.ok(entry, input.name);
      assert.equal(entry.dtype, input.dtype);
      assert.deepEqual(entry.shape, input.shape);
      const view = tensorView(file, parsed, input.name);
      assert.deepEqual([...(view as Iterable<unknown>)], [...(input.data as unknown as Iterable<unknown>)], input.name);
    }
  });

  it('returns the typed array that matches each dtype', () => {
    const file = writeSafetensors(sampleTensors(), {});
    const parsed = parseSafetensors(file);
    const expected: Record<string, unknown> = {
      bytes: Uint8Array,
      half: Uint16Array,
      weights: Float32Array,
      ids: Uint32Array,
      big: BigInt64Array,
      doubles: Float64Array,
      flags: Uint8Array,
      signed: Int8Array,
      shorts: Int16Array,
      empty: Float32Array,
      scalar: Int32Array,
    };
    for (const [name, ctor] of Object.entries(expected))
      assert.equal(tensorView(file, parsed, name).constructor, ctor, name);
  });

  it('lays the file out as the Python reader expects: padded header, 8-aligned data, widest dtypes first, exact tiling', () => {
    const file = writeSafetensors(sampleTensors(), sampleMetadata);
    const n = headerLength(file);
    assert.equal((8 + n) % 8, 0);
    const text = headerText(file);
    assert.match(text, /^\{.*\} *$/);
    const header = JSON.parse(text) as JsonHeader;
    assert.deepEqual(header['__metadata__'], sampleMetadata);
    const entries = Object.entries(header)
      .filter(([name]) => name !== '__metadata__')
      .map(([name, e]) => ({
        name,
        dtype: e['dtype'] as keyof typeof SAFETENSORS_DTYPE_SIZE,
        offsets: e['data_offsets'] as [number, number],
      }))
      .sort((x, y) => x.offsets[0] - y.offsets[0] || x.offsets[1] - y.offsets[1]);
    let cursor = 0;
    let previousSize = Infinity;
    for (const { name, dtype, offsets } of entries) {
      assert.equal(offsets[0], cursor, `${name} starts where the previous tensor ended`);
      const size = SAFETENSORS_DTYPE_SIZE[dtype];
      assert.ok(size <= previousSize, `${name} (${dtype}) comes after wider dtypes`);
      assert.equal((8 + n + offsets[0]) % size, 0, `${name} is naturally aligned in the file`);
      previousSize = size;
      cursor = offsets[1];
    }
    assert.equal(8 + n + cursor, file.length, 'the tensors cover the data buffer to the last byte');
  });

  it('is deterministic: the order of tensors and metadata keys does not change the bytes', () => {
    const a = writeSafetensors(sampleTensors(), sampleMetadata);
    const b = writeSafetensors([...sampleTensors()].reverse(), { empty: '', note: 'ünïcode ✓', format: 'test' });
    assert.deepEqual(a, b);
    assert.equal(
      layoutSafetensors(
        sampleTensors().map((t) => ({ ...t, byteLength: t.data.byteLength })),
        sampleMetadata,
      ).fileBytes,
      a.length,
    );
  });

  it('omits __metadata__ when there is none and still reads the file', () => {
    const file = writeSafetensors([{ name: 'x', dtype: 'U8', shape: [1], data: Uint8Array.of(9) }], {});
    assert.ok(!headerText(file).includes('__metadata__'));
    assert.deepEqual(parseSafetensors(file).metadata, {});
  });

  it('gives zero-copy views of an aligned buffer and copies from a misaligned one', () => {
    const file = writeSafetensors(sampleTensors(), {});
    const parsed = parseSafetensors(file);
    const view = tensorView(file, parsed, 'weights');
    assert.equal(view.buffer, file.buffer);

    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    const misaligned = shifted.subarray(1);
    const parsedShifted = parseSafetensors(misaligned);
    for (const name of ['weights', 'big', 'half', 'bytes']) {
      const copy = tensorView(misaligned, parsedShifted, name);
      assert.deepEqual(
        [...(copy as Iterable<unknown>)],
        [...(tensorView(file, parsed, name) as Iterable<unknown>)],
        name,
      );
      if (name !== 'bytes') assert.notEqual(copy.buffer, shifted.buffer, `${name} is copied`);
    }
  });

  it('copies a misaligned entry correctly from a Node Buffer (whose slice() is a view, not a copy)', () => {
    const file = writeSafetensors(sampleTensors(), {});
    const parsed = parseSafetensors(file);
    const shifted = Buffer.alloc(file.length + 1);
    shifted.set(file, 1);
    const misaligned = shifted.subarray(1);
    const parsedShifted = parseSafetensors(misaligned);
    for (const name of ['weights', 'big', 'half']) {
      assert.deepEqual(
        [...(tensorView(misaligned, parsedShifted, name) as Iterable<unknown>)],
        [...(tensorView(file, parsed, name) as Iterable<unknown>)],
        name,
      );
    }
  });

  it('reads a file held in a SharedArrayBuffer', () => {
    const file = writeSafetensors(sampleTensors(), sampleMetadata);
    const shared = new Uint8Array(new SharedArrayBuffer(file.length));
    shared.set(file);
    const parsed = parseSafetensors(shared);
    assert.deepEqual(parsed.metadata, sampleMetadata);
    assert.deepEqual(
      [...(tensorView(shared, parsed, 'weights') as Float32Array)],
      [1, -2.5, Math.fround(3e-8), 0, -0, Math.fround(1e30)],
    );
  });

  it('refuses to write what it could not read back', () => {
    const f32 = (name: string, n: number): SafetensorsTensorInput => ({
      name,
      dtype: 'F32',
      shape: [n],
      data: new Float32Array(n),
    });
    assertCode(() => writeSafetensors([f32('x', 2), f32('x', 2)], {}), 'DS_ERR_ST_BAD_HEADER', /twice/);
    assertCode(() => writeSafetensors([f32('__metadata__', 1)], {}), 'DS_ERR_ST_BAD_HEADER', /reserved/);
    assertCode(() => writeSafetensors([{ ...f32('x', 2), shape: [3] }], {}), 'DS_ERR_ST_BAD_OFFSETS', /needs 12 bytes/);
    assertCode(() => writeSafetensors([{ ...f32('x', 2), shape: [-2] }], {}), 'DS_ERR_ST_BAD_HEADER', /non-negative/);
    assertCode(() => writeSafetensors([], { k: 1 as unknown as string }), 'DS_ERR_ST_BAD_HEADER', /not a string/);
  });

  it('refuses to look up a tensor the header does not list', () => {
    const file = threeTensorFile();
    assertCode(() => tensorView(file, parseSafetensors(file), 'zzz'), 'DS_ERR_ST_BAD_HEADER', /zzz/);
  });
});

describe('safetensors reader rejects malformed files with the exact error', () => {
  const valid = threeTensorFile();
  const n = headerLength(valid);
  const dataOffset = 8 + n;
  const edit = (mutate: (h: JsonHeader) => void) =>
    rewriteHeader(valid, (h) => {
      mutate(h);
      return h;
    });

  const cases: { name: string; file: () => Uint8Array; code: string; message?: RegExp }[] = [
    { name: 'empty file', file: () => new Uint8Array(0), code: 'DS_ERR_ST_TRUNCATED' },
    { name: 'cut inside the length field', file: () => valid.subarray(0, 5), code: 'DS_ERR_ST_TRUNCATED' },
    { name: 'cut right after the length field', file: () => valid.subarray(0, 8), code: 'DS_ERR_ST_TRUNCATED' },
    { name: 'cut inside the header', file: () => valid.subarray(0, 8 + (n >> 1)), code: 'DS_ERR_ST_TRUNCATED' },
    { name: 'cut at the start of the data', file: () => valid.subarray(0, dataOffset), code: 'DS_ERR_ST_TRUNCATED' },
    { name: 'cut inside the data', file: () => valid.subarray(0, dataOffset + 20), code: 'DS_ERR_ST_TRUNCATED' },
    { name: 'last byte missing', file: () => valid.subarray(0, valid.length - 1), code: 'DS_ERR_ST_TRUNCATED' },
    {
      name: 'header length longer than the file',
      file: () => withHeaderLength(valid, valid.length),
      code: 'DS_ERR_ST_TRUNCATED',
    },
    {
      name: 'header length above 100 MB',
      file: () => withHeaderLength(valid, MAX_HEADER_BYTES + 1),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /limit/,
    },
    {
      name: 'header length with the high word set',
      file: () => withHeaderLength(valid, 16, 1),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /limit/,
    },
    {
      name: 'header length cutting the JSON short',
      file: () => withHeaderLength(valid, n - 8),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /JSON/,
    },
    {
      name: 'header not UTF-8',
      file: () => withBytes(valid, 9, [0xff, 0xfe]),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /UTF-8/,
    },
    {
      name: 'header not JSON',
      file: () => rewriteHeader(valid, '{"a": '),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /JSON/,
    },
    {
      name: 'header JSON is an array',
      file: () => rewriteHeader(valid, '[]'),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /not an object/,
    },
    { name: 'header JSON is null', file: () => rewriteHeader(valid, 'null'), code: 'DS_ERR_ST_BAD_HEADER' },
    {
      name: 'metadata is not an object',
      file: () => edit((h) => void (h['__metadata__'] = 'x' as never)),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /__metadata__/,
    },
    {
      name: 'metadata value is a number',
      file: () => edit((h) => void (h['__metadata__']!['kind'] = 3)),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /kind/,
    },
    {
      name: 'tensor entry is not an object',
      file: () => edit((h) => void (h['a'] = [] as never)),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /"a"/,
    },
    {
      name: 'dtype missing',
      file: () => edit((h) => delete h['a']!['dtype']),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /dtype/,
    },
    {
      name: 'dtype not a string',
      file: () => edit((h) => void (h['a']!['dtype'] = 4)),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /dtype/,
    },
    {
      name: 'unknown dtype',
      file: () => edit((h) => void (h['a']!['dtype'] = 'Q4_K')),
      code: 'DS_ERR_ST_UNKNOWN_DTYPE',
      message: /Q4_K/,
    },
    {
      name: 'lower-case dtype',
      file: () => edit((h) => void (h['a']!['dtype'] = 'f32')),
      code: 'DS_ERR_ST_UNKNOWN_DTYPE',
    },
    {
      name: 'shape missing',
      file: () => edit((h) => delete h['b']!['shape']),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /shape/,
    },
    {
      name: 'negative dimension',
      file: () => edit((h) => void (h['b']!['shape'] = [-2, -2])),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /shape/,
    },
    {
      name: 'fractional dimension',
      file: () => edit((h) => void (h['b']!['shape'] = [2.5, 2])),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /shape/,
    },
    {
      name: 'dimension as a string',
      file: () => edit((h) => void (h['b']!['shape'] = ['2', 2])),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /shape/,
    },
    {
      name: 'data_offsets missing',
      file: () => edit((h) => delete h['c']!['data_offsets']),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /data_offsets/,
    },
    {
      name: 'data_offsets of length 3',
      file: () => edit((h) => void (h['c']!['data_offsets'] = [32, 40, 48])),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /data_offsets/,
    },
    {
      name: 'negative data offset',
      file: () => edit((h) => void (h['a']!['data_offsets'] = [-16, 0])),
      code: 'DS_ERR_ST_BAD_HEADER',
      message: /data_offsets/,
    },
    {
      name: 'byte length is not numel × dtype size',
      file: () => edit((h) => void (h['c']!['shape'] = [9])),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /needs 9/,
    },
    {
      name: 'offsets ending before they begin',
      file: () => edit((h) => void (h['b']!['data_offsets'] = [32, 16])),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /end before/,
    },
    {
      name: 'offsets out of bounds',
      file: () => edit((h) => void (h['c']!['data_offsets'] = [1000, 1008])),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /outside/,
    },
    {
      name: 'overlapping offsets',
      file: () => edit((h) => void (h['b']!['data_offsets'] = [8, 24])),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /overlaps tensor "a"/,
    },
    {
      name: 'two tensors on the same bytes',
      file: () => edit((h) => void (h['b']!['data_offsets'] = [0, 16])),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /overlaps/,
    },
    {
      name: 'gap between tensors',
      file: () => edit((h) => delete h['b']),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /\[16, 32\) before tensor "c"/,
    },
    {
      name: 'gap at the start',
      file: () => edit((h) => delete h['a']),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /\[0, 16\)/,
    },
    {
      name: 'trailing bytes after the last tensor',
      file: () => Uint8Array.from([...valid, 0, 0, 0]),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /3 trailing bytes/,
    },
  ];
  for (const { name, file, code, message } of cases) {
    it(`${name} → ${code}`, () => assertCode(() => parseSafetensors(file()), code, message));
  }

  it('the unedited file parses (the edits above are what breaks them)', () => {
    assert.equal(parseSafetensors(valid).tensors.size, 3);
    assert.equal(parseSafetensors(edit(() => undefined)).tensors.size, 3);
  });
});

describe('safetensors reader under random corruption (fuzz)', () => {
  const valid = writeSafetensors(sampleTensors(), sampleMetadata);
  const n = headerLength(valid);
  const rng = new SeededRng(2024);
  const pick = <T>(items: readonly T[]): T => items[rng.nextInt(items.length)]!;
  const strangeValues: unknown[] = [
    -1,
    0,
    1,
    2.5,
    1e300,
    2 ** 53,
    '',
    'F32',
    'Q4',
    null,
    true,
    [],
    [1],
    [0, 8],
    [8, 0],
    {},
    { a: 1 },
  ];

  function mutateBytes(): Uint8Array {
    const file = valid.slice();
    const kind = rng.nextInt(5);
    if (kind === 0) return file.subarray(0, rng.nextInt(file.length));
    if (kind === 1) {
      new DataView(file.buffer).setUint32(
        rng.nextInt(2) * 4,
        rng.nextInt(2) === 0 ? rng.nextUint32() : rng.nextInt(n * 2),
        true,
      );
      return file;
    }
    const count = 1 + rng.nextInt(4);
    for (let i = 0; i < count; i++) {
      // Mostly inside the header, where the structure is; sometimes anywhere.
      const at = kind === 4 ? rng.nextInt(file.length) : 8 + rng.nextInt(n);
      file[at] =
        kind === 3 ? pick([0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x30, 0x39, 0x2d, 0x20]) : rng.nextInt(256);
    }
    return file;
  }

  function mutateJson(): Uint8Array {
    return rewriteHeader(valid, (header) => {
      const names = Object.keys(header);
      const entry = header[pick(names)]!;
      const keys = Object.keys(entry);
      const action = rng.nextInt(3);
      if (action === 0 && keys.length > 0) delete entry[pick(keys)];
      else if (action === 1 && keys.length > 0) entry[pick(keys)] = pick(strangeValues);
      else entry[pick(['dtype', 'shape', 'data_offsets', 'extra'])] = pick(strangeValues);
      return header;
    });
  }

  it('every corrupted file either parses or raises a DS_ERR_ST_* error, never anything else', () => {
    let parsedCount = 0;
    const codes = new Set<string>();
    for (let round = 0; round < 4000; round++) {
      const file = round % 2 === 0 ? mutateBytes() : mutateJson();
      try {
        const parsed = parseSafetensors(file);
        for (const name of parsed.tensors.keys()) tensorView(file, parsed, name);
        parsedCount++;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        assert.ok(
          typeof code === 'string' && code.startsWith('DS_ERR_ST_'),
          `round ${round}: unexpected ${String(err)}`,
        );
        codes.add(code);
      }
    }
    // The fuzzer must actually reach both outcomes and the main error kinds to mean anything.
    assert.ok(parsedCount > 0, 'some mutations leave a valid file');
    for (const code of [
      'DS_ERR_ST_TRUNCATED',
      'DS_ERR_ST_BAD_HEADER',
      'DS_ERR_ST_BAD_OFFSETS',
      'DS_ERR_ST_UNKNOWN_DTYPE',
    ]) {
      assert.ok(codes.has(code), `fuzzing reached ${code}`);
    }
  });
});
