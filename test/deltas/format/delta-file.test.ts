import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRng } from '../../../src/core/rng.js';
import { decodeDelta, encodeDelta } from '../../../src/deltas/format/delta-file.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../../src/deltas/format/float16.js';
import { parseSafetensors, tensorView } from '../../../src/deltas/format/safetensors.js';
import type { Delta, SparseTensorDelta, TensorDelta } from '../../../src/deltas/types.js';
import {
  assertCode,
  FINGERPRINT,
  headerLength,
  headerText,
  rebuild,
  rewriteHeader,
  sampleBaseShapes,
  sampleDelta,
  type EditableEntry,
  type JsonHeader,
} from './fixtures.js';

const QUERY = 'layer.0.query.weight';
const FFN = 'layer.0.ffn.weight';
const HEAD = 'classifier.weight';

function byName(delta: Delta): Map<string, TensorDelta> {
  return new Map(delta.tensors.map((t) => [t.name, t]));
}

function sparse(delta: Delta, name: string): SparseTensorDelta {
  const tensor = byName(delta).get(name);
  assert.ok(tensor?.kind === 'sparse', `${name} is sparse`);
  return tensor;
}

function entry(entries: Map<string, EditableEntry>, name: string): EditableEntry {
  const found = entries.get(name);
  assert.ok(found, `entry ${name} exists`);
  return found;
}

describe('delta file round trip', () => {
  it('fp32: decode(encode(delta)) gives back the same metadata and exactly the same tensors', () => {
    const delta = sampleDelta('F32');
    const decoded = decodeDelta(encodeDelta(delta));
    assert.deepEqual(decoded.metadata, delta.metadata);
    assert.deepEqual(
      decoded.tensors.map((t) => t.name),
      delta.tensors.map((t) => t.name).sort(),
      'tensors come back sorted by name',
    );
    const originals = byName(delta);
    for (const tensor of decoded.tensors) {
      const original = originals.get(tensor.name)!;
      assert.equal(tensor.kind, original.kind);
      assert.deepEqual(tensor.shape, original.shape);
      assert.deepEqual(tensor.values, original.values);
      if (tensor.kind === 'sparse' && original.kind === 'sparse') {
        assert.deepEqual(tensor.indices, original.indices);
        assert.equal(tensor.rescale, original.rescale);
        assert.ok(tensor.indices.length > 0);
      }
    }
  });

  it('fp16: values come back rounded to the nearest half, exactly when representable', () => {
    const delta = sampleDelta('F16');
    const decoded = decodeDelta(encodeDelta(delta));
    assert.deepEqual(decoded.metadata, delta.metadata);
    const originals = byName(delta);
    for (const tensor of decoded.tensors) {
      const original = originals.get(tensor.name)!;
      assert.ok(tensor.values instanceof Float32Array);
      tensor.values.forEach((value, i) => {
        const exact = original.values[i]!;
        assert.equal(value, float16BitsToFloat32(float32ToFloat16Bits(exact)));
        // Relative error of round-to-nearest fp16 is at most 2^-11 for normals, 2^-25 absolute below.
        assert.ok(Math.abs(value - exact) <= Math.max(Math.abs(exact) * 2 ** -11, 2 ** -25), `${tensor.name}[${i}]`);
      });
      if (tensor.kind === 'sparse' && original.kind === 'sparse') assert.deepEqual(tensor.indices, original.indices);
    }

    const representable = Float32Array.from([0, -0, 1, -2, 0.5, 65504, 2 ** -24, 0.0009765625, -3.140625]);
    const exactDelta: Delta = {
      ...delta,
      tensors: [{ kind: 'dense', name: 'x', shape: [representable.length], values: representable }],
    };
    assert.deepEqual(decodeDelta(encodeDelta(exactDelta)).tensors[0]!.values, representable);
  });

  it('keeps null seed and unknown hashes, empty extra, empty sparse tensors and scalar dense tensors', () => {
    const delta: Delta = {
      metadata: { ...sampleDelta().metadata, method: 'magnitude', seed: null, sourceBaseSha256: null, extra: {} },
      tensors: [
        {
          kind: 'sparse',
          name: 'nothing.kept',
          shape: [4, 4],
          indices: new Uint32Array(0),
          values: new Float32Array(0),
          rescale: 1,
        },
        { kind: 'dense', name: 'scalar', shape: [], values: Float32Array.of(0.25) },
      ],
    };
    const decoded = decodeDelta(encodeDelta(delta));
    assert.deepEqual(decoded.metadata, delta.metadata);
    assert.deepEqual(
      decoded.tensors,
      [...delta.tensors].sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
  });

  it('is deterministic: same delta, same bytes, whatever the tensor and extra key order', () => {
    const delta = sampleDelta('F16');
    const shuffled: Delta = {
      metadata: { ...delta.metadata, extra: Object.fromEntries(Object.entries(delta.metadata.extra).reverse()) },
      tensors: [...delta.tensors].reverse(),
    };
    const bytes = encodeDelta(delta);
    assert.deepEqual(encodeDelta(delta), bytes);
    assert.deepEqual(encodeDelta(shuffled), bytes);
    assert.deepEqual(encodeDelta(decodeDelta(bytes)), bytes, 're-encoding a decoded delta reproduces the file');
  });
});

describe('delta file layout (what Python sees)', () => {
  it('is a plain safetensors file: JSON header, 8-aligned data, exact tiling, string metadata', () => {
    const delta = sampleDelta('F32');
    const file = encodeDelta(delta);
    const n = headerLength(file);
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(headerText(file)) as JsonHeader;
    const metadata = header['__metadata__'] as Record<string, unknown>;
    for (const value of Object.values(metadata)) assert.equal(typeof value, 'string');
    assert.equal(metadata['format'], 'deltaserve.delta');
    assert.equal(metadata['format_version'], '1');
    assert.equal(metadata['base_fingerprint'], FINGERPRINT);
    assert.equal(metadata['method'], 'dare');
    assert.equal(JSON.parse(metadata['drop_rate'] as string), 0.9);
    assert.equal(JSON.parse(metadata['rescale'] as string), 1 / (1 - 0.9));
    assert.equal(JSON.parse(metadata['seed'] as string), 7);
    assert.equal(metadata['value_dtype'], 'F32');
    assert.equal(metadata['source_base_sha256'], 'b'.repeat(64));
    assert.equal(metadata['source_finetuned_sha256'], '');
    assert.deepEqual(JSON.parse(metadata['extra'] as string), delta.metadata.extra);
    assert.deepEqual(JSON.parse(metadata['tensors'] as string), {
      [HEAD]: { shape: [2, 16], encoding: 'dense', rescale: 1 },
      [FFN]: { shape: [16, 64], encoding: 'sparse', rescale: 10 },
      [QUERY]: { shape: [16, 16], encoding: 'sparse', rescale: 10 },
    });

    const expectedEntries: Record<string, [string, number[]]> = {
      [`${HEAD}::dense`]: ['F32', [2, 16]],
      [`${FFN}::indices`]: ['U32', [sparse(delta, FFN).indices.length]],
      [`${FFN}::values`]: ['F32', [sparse(delta, FFN).indices.length]],
      [`${QUERY}::indices`]: ['U32', [sparse(delta, QUERY).indices.length]],
      [`${QUERY}::values`]: ['F32', [sparse(delta, QUERY).indices.length]],
    };
    const entries = Object.entries(header).filter(([name]) => name !== '__metadata__');
    assert.deepEqual(entries.map(([name]) => name).sort(), Object.keys(expectedEntries).sort());
    const spans = entries.map(([name, e]) => {
      assert.deepEqual([e['dtype'], e['shape']], expectedEntries[name], name);
      return e['data_offsets'] as [number, number];
    });
    spans.sort((a, b) => a[0] - b[0]);
    let cursor = 0;
    for (const [begin, end] of spans) {
      assert.equal(begin, cursor);
      assert.equal((8 + n + begin) % 4, 0, 'every fp32/u32 entry is 4-aligned in the file');
      cursor = end;
    }
    assert.equal(8 + n + cursor, file.length);

    // The bytes behind an entry are the little-endian arrays themselves.
    const parsed = parseSafetensors(file);
    assert.deepEqual(tensorView(file, parsed, `${QUERY}::indices`), sparse(delta, QUERY).indices);
  });

  it('stores fp16 values as F16 entries of raw half bits', () => {
    const delta = sampleDelta('F16');
    const file = encodeDelta(delta);
    const parsed = parseSafetensors(file);
    assert.equal(parsed.tensors.get(`${QUERY}::values`)?.dtype, 'F16');
    assert.equal(parsed.tensors.get(`${HEAD}::dense`)?.dtype, 'F16');
    const bits = tensorView(file, parsed, `${QUERY}::values`) as Uint16Array;
    assert.deepEqual(
      [...bits],
      [...sparse(delta, QUERY).values].map((v) => float32ToFloat16Bits(v)),
    );
  });
});

describe('delta file memory ownership', () => {
  it('by default returns views of the input buffer for fp32 values and indices', () => {
    const file = encodeDelta(sampleDelta('F32'));
    const decoded = decodeDelta(file);
    const query = sparse(decoded, QUERY);
    assert.equal(query.indices.buffer, file.buffer);
    assert.equal(query.values.buffer, file.buffer);
  });

  it('with copy: true returns arrays that do not share the input buffer', () => {
    const file = encodeDelta(sampleDelta('F32'));
    const decoded = decodeDelta(file, { copy: true });
    for (const tensor of decoded.tensors) {
      assert.notEqual(tensor.values.buffer, file.buffer);
      if (tensor.kind === 'sparse') assert.notEqual(tensor.indices.buffer, file.buffer);
    }
    const before = sparse(decoded, QUERY).values.slice();
    file.fill(0);
    assert.deepEqual(sparse(decoded, QUERY).values, before, 'overwriting the input leaves the delta intact');
  });

  it('never returns views of a SharedArrayBuffer', () => {
    const file = encodeDelta(sampleDelta('F32'));
    const shared = new Uint8Array(new SharedArrayBuffer(file.length));
    shared.set(file);
    const decoded = decodeDelta(shared);
    for (const tensor of decoded.tensors) assert.ok(tensor.values.buffer instanceof ArrayBuffer);
    assert.deepEqual(sparse(decoded, QUERY).indices, sparse(decodeDelta(file), QUERY).indices);
  });

  it('fp16 values are always fresh arrays', () => {
    const file = encodeDelta(sampleDelta('F16'));
    for (const tensor of decodeDelta(file).tensors) assert.notEqual(tensor.values.buffer, file.buffer);
  });

  it('decodes correctly from a misaligned or offset view of a larger buffer', () => {
    const delta = sampleDelta('F32');
    const file = encodeDelta(delta);
    for (const shift of [1, 2, 8]) {
      const big = new Uint8Array(file.length + shift);
      big.set(file, shift);
      const decoded = decodeDelta(big.subarray(shift));
      assert.deepEqual(sparse(decoded, QUERY).values, sparse(delta, QUERY).values, `shift ${shift}`);
      assert.deepEqual(sparse(decoded, FFN).indices, sparse(delta, FFN).indices, `shift ${shift}`);
    }
  });
});

describe('decodeDelta checks against the base', () => {
  const file = encodeDelta(sampleDelta('F32'));

  it('accepts a delta whose tensors are a subset of the base with equal shapes and fingerprint', () => {
    const decoded = decodeDelta(file, { baseShapes: sampleBaseShapes(), expectedBaseFingerprint: FINGERPRINT });
    assert.equal(decoded.tensors.length, 3);
  });

  it('refuses a delta made for another base', () => {
    assertCode(
      () => decodeDelta(file, { expectedBaseFingerprint: 'c'.repeat(64) }),
      'DS_ERR_DELTA_BASE_MISMATCH',
      /aaaa.*cccc/,
    );
  });

  it('refuses a tensor the base does not have', () => {
    const base = sampleBaseShapes();
    base.delete(FFN);
    assertCode(() => decodeDelta(file, { baseShapes: base }), 'DS_ERR_DELTA_UNKNOWN_TENSOR', /layer\.0\.ffn\.weight/);
  });

  it('refuses a tensor whose shape differs from the base weight (also when transposed)', () => {
    for (const shape of [
      [16, 17],
      [64, 16],
      [16, 64, 1],
    ]) {
      const base = sampleBaseShapes();
      base.set(FFN, shape);
      assertCode(() => decodeDelta(file, { baseShapes: base }), 'DS_ERR_DELTA_SHAPE_MISMATCH', /\[16, 64\]/);
    }
  });
});

describe('decodeDelta rejects malformed delta files with the exact error', () => {
  const f32 = encodeDelta(sampleDelta('F32'));
  const f16 = encodeDelta(sampleDelta('F16'));
  const queryNumel = 16 * 16;

  /** Edits one entry's data as an array of its own type. */
  function editData<T extends ArrayBufferView>(name: string, change: (data: T) => void, file = f32): Uint8Array {
    return rebuild(file, (entries) => change(entry(entries, name).data as T));
  }
  function editMetadata(change: (metadata: Record<string, string>) => void, file = f32): Uint8Array {
    return rebuild(file, (_entries, metadata) => change(metadata));
  }
  function editTensorsRecord(change: (records: Record<string, Record<string, unknown>>) => void): Uint8Array {
    return editMetadata((metadata) => {
      const records = JSON.parse(metadata['tensors']!) as Record<string, Record<string, unknown>>;
      change(records);
      metadata['tensors'] = JSON.stringify(records);
    });
  }
  const lastIndex = (data: Uint32Array): number => data.length - 1;

  const cases: { name: string; file: () => Uint8Array; code: string; message?: RegExp }[] = [
    // container
    { name: 'truncated in the header', file: () => f32.subarray(0, 100), code: 'DS_ERR_ST_TRUNCATED' },
    { name: 'truncated in the data', file: () => f32.subarray(0, f32.length - 10), code: 'DS_ERR_ST_TRUNCATED' },
    { name: 'truncated to 4 bytes', file: () => f32.subarray(0, 4), code: 'DS_ERR_ST_TRUNCATED' },
    {
      name: 'header length absurd',
      file: () => {
        const copy = f32.slice();
        new DataView(copy.buffer).setUint32(0, 200_000_000, true);
        return copy;
      },
      code: 'DS_ERR_ST_BAD_HEADER',
    },
    { name: 'header not JSON', file: () => rewriteHeader(f32, '{oops'), code: 'DS_ERR_ST_BAD_HEADER' },
    {
      name: 'unknown dtype',
      file: () => rewriteHeader(f32, (h: JsonHeader) => ((h[`${QUERY}::values`]!['dtype'] = 'F4'), h)),
      code: 'DS_ERR_ST_UNKNOWN_DTYPE',
    },
    {
      name: 'offsets out of bounds',
      file: () =>
        rewriteHeader(f32, (h: JsonHeader) => {
          // The last entry of the data buffer, moved far past its end.
          const [begin, end] = h[`${QUERY}::values`]!['data_offsets'] as [number, number];
          h[`${QUERY}::values`]!['data_offsets'] = [begin + (1 << 20), end + (1 << 20)];
          return h;
        }),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /outside/,
    },
    {
      name: 'overlapping offsets',
      file: () =>
        rewriteHeader(f32, (h: JsonHeader) => {
          const [begin, end] = h[`${QUERY}::values`]!['data_offsets'] as [number, number];
          h[`${QUERY}::values`]!['data_offsets'] = [begin - 4, end - 4];
          return h;
        }),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /overlaps/,
    },
    {
      name: 'gap between entries',
      file: () => rewriteHeader(f32, (h: JsonHeader) => (delete h[`${HEAD}::dense`], h)),
      code: 'DS_ERR_ST_BAD_OFFSETS',
      message: /belong to no tensor/,
    },
    // metadata
    {
      name: 'no metadata at all',
      file: () => rewriteHeader(f32, (h: JsonHeader) => (delete h['__metadata__'], h)),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /format/,
    },
    {
      name: 'another format',
      file: () => editMetadata((m) => void (m['format'] = 'mergekit')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /mergekit/,
    },
    {
      name: 'unknown format version',
      file: () => editMetadata((m) => void (m['format_version'] = '3')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /"3" is unknown/,
    },
    {
      name: 'missing seed key',
      file: () => editMetadata((m) => delete m['seed']),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /"seed"/,
    },
    {
      name: 'drop rate not a number',
      file: () => editMetadata((m) => void (m['drop_rate'] = 'ninety')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /drop_rate/,
    },
    {
      name: 'drop rate of 1',
      file: () => editMetadata((m) => void (m['drop_rate'] = '1')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /drop_rate/,
    },
    {
      name: 'rescale zero',
      file: () => editMetadata((m) => void (m['rescale'] = '0')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /rescale/,
    },
    {
      name: 'seed fractional',
      file: () => editMetadata((m) => void (m['seed'] = '1.5')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /seed/,
    },
    {
      name: 'seed a string',
      file: () => editMetadata((m) => void (m['seed'] = '"7"')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /seed/,
    },
    {
      name: 'unknown method',
      file: () => editMetadata((m) => void (m['method'] = 'ties')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /ties/,
    },
    {
      name: 'unknown value dtype',
      file: () => editMetadata((m) => void (m['value_dtype'] = 'BF16')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /BF16/,
    },
    {
      name: 'empty base fingerprint',
      file: () => editMetadata((m) => void (m['base_fingerprint'] = '')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /base_fingerprint/,
    },
    {
      name: 'extra not an object',
      file: () => editMetadata((m) => void (m['extra'] = '[]')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /extra/,
    },
    {
      name: 'extra value not a string',
      file: () => editMetadata((m) => void (m['extra'] = '{"a":1}')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /extra/,
    },
    {
      name: 'tensors not JSON',
      file: () => editMetadata((m) => void (m['tensors'] = '{')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /tensors/,
    },
    {
      name: 'tensor record shape invalid',
      file: () => editTensorsRecord((r) => void (r[QUERY]!['shape'] = [16, -16])),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /shape/,
    },
    {
      name: 'tensor record encoding unknown',
      file: () => editTensorsRecord((r) => void (r[QUERY]!['encoding'] = 'bitdelta')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /encoding/,
    },
    {
      name: 'tensor record rescale missing',
      file: () => editTensorsRecord((r) => delete r[QUERY]!['rescale']),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /rescale/,
    },
    // metadata and entries disagree
    {
      name: 'tensor in metadata without its values entry',
      file: () => rebuild(f32, (entries) => entries.delete(`${QUERY}::values`)),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /no "layer\.0\.query\.weight::values" entry/,
    },
    {
      name: 'tensor in metadata without any entry',
      file: () => rebuild(f32, (entries) => (entries.delete(`${HEAD}::dense`), undefined)),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /classifier/,
    },
    {
      name: 'entries without a metadata record',
      file: () => editTensorsRecord((r) => delete r[FFN]),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /no tensor in the metadata claims it/,
    },
    {
      name: 'stray extra entry',
      file: () =>
        rebuild(f32, (entries) => void entries.set('stray', { dtype: 'U8', shape: [1], data: Uint8Array.of(1) })),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /"stray"/,
    },
    {
      name: 'metadata says dense, file holds sparse entries',
      file: () => editTensorsRecord((r) => void (r[QUERY]!['encoding'] = 'dense')),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /::dense/,
    },
    {
      name: 'indices stored as I32',
      file: () => rebuild(f32, (entries) => void (entry(entries, `${QUERY}::indices`).dtype = 'I32')),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /dtype I32, expected U32/,
    },
    {
      name: 'values stored as F16 in an F32 delta',
      file: () =>
        rebuild(f32, (entries) => {
          const values = entry(entries, `${QUERY}::values`);
          values.dtype = 'F16';
          values.data = new Uint16Array((values.data as Float32Array).length);
        }),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /dtype F16, expected F32/,
    },
    {
      name: 'indices of rank 2',
      file: () =>
        rebuild(f32, (entries) => {
          const indices = entry(entries, `${QUERY}::indices`);
          indices.shape = [1, indices.shape[0]!];
        }),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /rank 1/,
    },
    {
      name: 'dense entry shape differs from its record',
      file: () => rebuild(f32, (entries) => void (entry(entries, `${HEAD}::dense`).shape = [16, 2])),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /\[16, 2\]/,
    },
    // data
    {
      name: 'one value fewer than indices',
      file: () =>
        rebuild(f32, (entries) => {
          const values = entry(entries, `${QUERY}::values`);
          values.data = (values.data as Float32Array).subarray(1);
          values.shape = [values.shape[0]! - 1];
        }),
      code: 'DS_ERR_DELTA_COUNT_MISMATCH',
    },
    {
      name: 'last index equals numel',
      file: () => editData<Uint32Array>(`${QUERY}::indices`, (d) => void (d[lastIndex(d)] = queryNumel)),
      code: 'DS_ERR_DELTA_INDEX_RANGE',
      message: /index 256 .* not below 256/,
    },
    {
      name: 'last index 2^32 - 1',
      file: () => editData<Uint32Array>(`${QUERY}::indices`, (d) => void (d[lastIndex(d)] = 0xffffffff)),
      code: 'DS_ERR_DELTA_INDEX_RANGE',
    },
    {
      name: 'out-of-range index before an order break is reported as out of range',
      file: () => editData<Uint32Array>(`${QUERY}::indices`, (d) => void (d[1] = queryNumel + 5)),
      code: 'DS_ERR_DELTA_INDEX_RANGE',
      message: /position 1/,
    },
    {
      name: 'two indices swapped',
      file: () =>
        editData<Uint32Array>(`${QUERY}::indices`, (d) => {
          [d[3], d[4]] = [d[4]!, d[3]!];
        }),
      code: 'DS_ERR_DELTA_INDEX_ORDER',
      message: /position 4 is below/,
    },
    {
      name: 'equal neighbouring indices',
      file: () => editData<Uint32Array>(`${QUERY}::indices`, (d) => void (d[6] = d[5]!)),
      code: 'DS_ERR_DELTA_INDEX_ORDER',
      message: /position 6 repeats/,
    },
    {
      name: 'NaN value',
      file: () => editData<Float32Array>(`${QUERY}::values`, (d) => void (d[2] = NaN)),
      code: 'DS_ERR_DELTA_NON_FINITE',
      message: /position 2 .*NaN/,
    },
    {
      name: '+Inf value',
      file: () => editData<Float32Array>(`${FFN}::values`, (d) => void (d[0] = Infinity)),
      code: 'DS_ERR_DELTA_NON_FINITE',
      message: /Infinity/,
    },
    {
      name: '-Inf in a dense tensor',
      file: () => editData<Float32Array>(`${HEAD}::dense`, (d) => void (d[31] = -Infinity)),
      code: 'DS_ERR_DELTA_NON_FINITE',
      message: /position 31/,
    },
    {
      name: 'fp16 NaN',
      file: () => editData<Uint16Array>(`${QUERY}::values`, (d) => void (d[1] = 0x7e00), f16),
      code: 'DS_ERR_DELTA_NON_FINITE',
      message: /position 1/,
    },
    {
      name: 'fp16 -Inf',
      file: () => editData<Uint16Array>(`${HEAD}::dense`, (d) => void (d[0] = 0xfc00), f16),
      code: 'DS_ERR_DELTA_NON_FINITE',
      message: /-Infinity/,
    },
  ];

  for (const { name, file, code, message } of cases) {
    it(`${name} → ${code}`, () => assertCode(() => decodeDelta(file()), code, message));
  }

  it('the files edited without a defect still decode (rebuild itself breaks nothing)', () => {
    assert.equal(decodeDelta(rebuild(f32, () => undefined)).tensors.length, 3);
    assert.equal(decodeDelta(rebuild(f16, () => undefined)).tensors.length, 3);
    assert.equal(decodeDelta(editMetadata((m) => void (m['unknown_future_key'] = 'x'))).tensors.length, 3);
  });
});

describe('encodeDelta refuses deltas it would not read back', () => {
  const base = sampleDelta('F32');
  const query = sparse(base, QUERY);
  const withTensor = (tensor: TensorDelta, metadata = base.metadata): Delta => ({ metadata, tensors: [tensor] });

  const cases: { name: string; delta: () => Delta; code: string; message?: RegExp }[] = [
    {
      name: 'duplicate tensor names',
      delta: () => ({ ...base, tensors: [query, query] }),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /twice/,
    },
    {
      name: 'count mismatch',
      delta: () => withTensor({ ...query, values: query.values.subarray(1) }),
      code: 'DS_ERR_DELTA_COUNT_MISMATCH',
    },
    {
      name: 'unsorted indices',
      delta: () => withTensor({ ...query, indices: query.indices.slice().reverse() }),
      code: 'DS_ERR_DELTA_INDEX_ORDER',
    },
    {
      name: 'index out of range',
      delta: () => withTensor({ ...query, shape: [2, 2] }),
      code: 'DS_ERR_DELTA_INDEX_RANGE',
    },
    {
      name: 'NaN value',
      delta: () => withTensor({ ...query, values: Float32Array.from(query.values, (v, i) => (i === 3 ? NaN : v)) }),
      code: 'DS_ERR_DELTA_NON_FINITE',
    },
    {
      name: 'rescale not positive',
      delta: () => withTensor({ ...query, rescale: 0 }),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /rescale/,
    },
    {
      name: 'dense values of the wrong length',
      delta: () => withTensor({ kind: 'dense', name: 'd', shape: [3], values: new Float32Array(2) }),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
    },
    {
      name: 'empty tensor name',
      delta: () => withTensor({ kind: 'dense', name: '', shape: [1], values: new Float32Array(1) }),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
    },
    {
      name: 'value overflowing fp16',
      delta: () =>
        withTensor(
          { kind: 'dense', name: 'd', shape: [2], values: Float32Array.of(1, 70000) },
          { ...base.metadata, valueDtype: 'F16' },
        ),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /70000 at position 1 .*fp16/,
    },
    {
      name: 'drop rate of 1',
      delta: () => ({ ...base, metadata: { ...base.metadata, dropRate: 1 } }),
      code: 'DS_ERR_DELTA_BAD_METADATA',
    },
    {
      name: 'seed out of range',
      delta: () => ({ ...base, metadata: { ...base.metadata, seed: -1 } }),
      code: 'DS_ERR_DELTA_BAD_METADATA',
    },
    {
      name: 'empty source hash',
      delta: () => ({ ...base, metadata: { ...base.metadata, sourceBaseSha256: '' } }),
      code: 'DS_ERR_DELTA_BAD_METADATA',
    },
  ];
  for (const { name, delta, code, message } of cases) {
    it(`${name} → ${code}`, () => assertCode(() => encodeDelta(delta()), code, message));
  }
});

describe('decodeDelta under random corruption (fuzz)', () => {
  it('every corrupted delta file either decodes or raises a DS_ERR_* error, never anything else', () => {
    const files = [encodeDelta(sampleDelta('F32', 3)), encodeDelta(sampleDelta('F16', 4))];
    const rng = new SeededRng(99);
    let decoded = 0;
    const codes = new Set<string>();
    for (let round = 0; round < 1500; round++) {
      const source = files[round % 2]!;
      const file = source.slice();
      const n = headerLength(file);
      const edits = 1 + rng.nextInt(3);
      for (let i = 0; i < edits; i++) {
        // Half the edits land in the data (indices/values), half in the header and metadata.
        const at = rng.nextInt(2) === 0 ? 8 + n + rng.nextInt(file.length - 8 - n) : 8 + rng.nextInt(n);
        file[at] = rng.nextInt(256);
      }
      const input = rng.nextInt(10) === 0 ? file.subarray(0, rng.nextInt(file.length)) : file;
      try {
        decodeDelta(input, { baseShapes: sampleBaseShapes(), expectedBaseFingerprint: FINGERPRINT });
        decoded++;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        assert.ok(typeof code === 'string' && code.startsWith('DS_ERR_'), `round ${round}: unexpected ${String(err)}`);
        codes.add(code);
      }
    }
    assert.ok(decoded > 0, 'some corruptions (e.g. in values) leave a valid delta');
    for (const code of ['DS_ERR_ST_BAD_HEADER', 'DS_ERR_DELTA_INDEX_ORDER', 'DS_ERR_DELTA_BAD_METADATA']) {
      assert.ok(codes.has(code), `fuzzing reached ${code} (reached: ${[...codes].join(', ')})`);
    }
  });
});
