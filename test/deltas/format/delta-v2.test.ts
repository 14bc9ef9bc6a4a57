// Format version 2: compact index streams, quantized values, v1 ⇄ v2 equivalence and the
// refusal of malformed or hostile v2 files (docs/delta-format.md §2.2–2.3).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SeededRng } from '../../../src/core/rng.js';
import { decodeDelta, encodeDelta, inspectDelta } from '../../../src/deltas/format/delta-file.js';
import { float16Table } from '../../../src/deltas/format/float16.js';
import { parseSafetensors } from '../../../src/deltas/format/safetensors.js';
import {
  chooseIndexEncoding,
  decodeBitmask,
  decodeGaps,
  decodeGaps4,
  encodeBitmask,
  encodeGaps4,
  encodeGaps,
  indexEncodingBytes,
} from '../../../src/deltas/format/index-codec.js';
import { dequantizeValues, qmaxOf, quantizeValues } from '../../../src/deltas/format/value-quant.js';
import type { Delta, QuantValueEncoding, SparseTensorDelta, TensorDelta } from '../../../src/deltas/types.js';
import { columnMajorPermutation, fromColumnMajor, permuted } from '../../../src/deltas/format/column-order.js';
import { quantizeTensor } from '../../../src/compress/quantize.js';
import { assertCode, rebuild, sampleBaseShapes, sampleDelta } from './fixtures.js';

const editMetadataOf = (file: Uint8Array, change: (metadata: Record<string, string>) => void): Uint8Array =>
  rebuild(file, (_entries, metadata) => change(metadata));

function asV2(delta: Delta, quantize?: { encoding: QuantValueEncoding; group: number }): Delta {
  const tensors = delta.tensors.map((t): TensorDelta => {
    if (t.kind === 'dense' || quantize === undefined) return t;
    const quantized = quantizeValues(t.values, quantize.encoding, quantize.group);
    return { ...t, values: dequantizeValues(t.name, quantized), quantized };
  });
  return { metadata: { ...delta.metadata, formatVersion: 2 }, tensors };
}

/** Version 2 with 2-D weights' codes grouped column by column, as `compress --values` writes them. */
function asV2Columns(delta: Delta, encoding: QuantValueEncoding, group: number): Delta {
  const tensors = delta.tensors.map((t): TensorDelta => (t.kind === 'dense' ? t : quantizeTensor(t, encoding, group)));
  return { metadata: { ...delta.metadata, formatVersion: 2 }, tensors };
}

/** base + delta, the way every activation path merges it. */
function merged(delta: Delta): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of sampleBaseShapes()) {
    const numel = shape.reduce((a, b) => a * b, 1);
    const weight = Float32Array.from({ length: numel }, (_, i) => Math.sin(i) * 0.1);
    const t = delta.tensors.find((x) => x.name === name);
    if (t?.kind === 'dense') t.values.forEach((v, i) => (weight[i] = weight[i]! + v));
    else if (t?.kind === 'sparse') t.indices.forEach((j, k) => (weight[j] = weight[j]! + t.values[k]!));
    out.set(name, weight);
  }
  return out;
}

function sortedUnique(rng: SeededRng, count: number, numel: number): Uint32Array {
  const set = new Set<number>();
  while (set.size < Math.min(count, numel)) set.add(Math.floor(rng.nextFloat() * numel));
  return Uint32Array.from([...set].sort((a, b) => a - b));
}

describe('index streams', () => {
  const rng = new SeededRng(3);
  const cases: [string, Uint32Array, number][] = [
    ['empty', new Uint32Array(0), 100],
    ['first and last position', Uint32Array.from([0, 99]), 100],
    ['gaps of exactly 255 and 256 (one escape)', Uint32Array.from([254, 510, 767]), 1000],
    ['gaps past 65535 (several escapes)', Uint32Array.from([5, 70_000, 300_000]), 300_001],
    ['dense run', Uint32Array.from({ length: 64 }, (_, i) => i), 64],
    ['random sparse', sortedUnique(rng, 500, 100_000), 100_000],
    ['random dense', sortedUnique(rng, 5000, 8000), 8000],
  ];
  for (const [label, indices, numel] of cases) {
    it(`${label}: every encoding gives the indices back`, () => {
      for (const bits of [8, 16] as const) {
        const gaps = encodeGaps(indices, bits);
        assert.deepEqual(decodeGaps('w', gaps, indices.length, numel), indices);
      }
      assert.deepEqual(decodeGaps4('w', encodeGaps4(indices), indices.length, numel), indices);
      assert.deepEqual(decodeBitmask('w', encodeBitmask(indices, numel), indices.length, numel), indices);
      const bytes = indexEncodingBytes(indices, numel);
      assert.equal(bytes.gaps4, encodeGaps4(indices).byteLength);
      assert.equal(bytes.gaps8, encodeGaps(indices, 8).byteLength);
      assert.equal(bytes.gaps16, encodeGaps(indices, 16).byteLength);
      assert.equal(
        bytes[chooseIndexEncoding(indices, numel)],
        Math.min(bytes.gaps4, bytes.gaps8, bytes.gaps16, bytes.bitmask),
      );
    });
  }

  it('a kept density above ~1/4 chooses the bitmask, ~1/10 the 4-bit gaps, ~1/100 the 8-bit gaps, ~1/10⁵ the 16-bit gaps', () => {
    assert.equal(chooseIndexEncoding(sortedUnique(rng, 5000, 10_000), 10_000), 'bitmask');
    assert.equal(chooseIndexEncoding(sortedUnique(rng, 1000, 10_000), 10_000), 'gaps4');
    assert.equal(chooseIndexEncoding(sortedUnique(rng, 1000, 100_000), 100_000), 'gaps8');
    assert.equal(chooseIndexEncoding(sortedUnique(rng, 100, 10_000_000), 10_000_000), 'gaps16');
  });

  it('malformed streams are refused with their own errors', () => {
    assertCode(
      () => decodeGaps('w', Uint8Array.from([1, 2]), 3, 100),
      'DS_ERR_DELTA_BAD_STREAM',
      /ends after 2 of the 3/,
    );
    assertCode(() => decodeGaps('w', Uint8Array.from([1, 255]), 2, 1000), 'DS_ERR_DELTA_BAD_STREAM', /ends after 1/);
    assertCode(
      () => decodeGaps('w', Uint8Array.from([1, 2, 3]), 2, 100),
      'DS_ERR_DELTA_BAD_STREAM',
      /1 symbol\(s\) left/,
    );
    assertCode(
      () => decodeGaps('w', Uint8Array.from([50, 60]), 2, 100),
      'DS_ERR_DELTA_INDEX_RANGE',
      /runs past the tensor/,
    );
    assertCode(
      () => decodeGaps4('w', Uint8Array.from([0x21]), 1, 100),
      'DS_ERR_DELTA_BAD_STREAM',
      /1 symbol\(s\) left/,
    );
    assertCode(
      () => decodeGaps4('w', Uint8Array.from([0x21, 0x03]), 2, 100),
      'DS_ERR_DELTA_BAD_STREAM',
      /2 symbol\(s\) left/,
    );
    assertCode(() => decodeGaps4('w', Uint8Array.from([0xff]), 1, 100), 'DS_ERR_DELTA_BAD_STREAM', /ends after 0/);
    assertCode(() => decodeGaps4('w', Uint8Array.from([0x0f, 0x0f]), 1, 10), 'DS_ERR_DELTA_INDEX_RANGE', /runs past/);
    assertCode(() => decodeBitmask('w', Uint8Array.from([0xff]), 9, 8), 'DS_ERR_DELTA_BAD_STREAM', /keeps 8 entries/);
    assertCode(() => decodeBitmask('w', Uint8Array.from([0xff]), 7, 8), 'DS_ERR_DELTA_BAD_STREAM', /more than the 7/);
    assertCode(() => decodeBitmask('w', Uint8Array.from([0x81]), 2, 7), 'DS_ERR_DELTA_INDEX_RANGE', /padding bit 7/);
    assertCode(() => decodeBitmask('w', Uint8Array.from([1, 0]), 1, 8), 'DS_ERR_DELTA_BAD_STREAM', /2 bytes/);
  });

  it('random gap streams and bitmasks either decode to in-range increasing indices or raise a DS_ERR_DELTA_* error (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(300), fc.nat(5000), (bytes, nnz, numel) => {
        try {
          const out = decodeGaps('w', bytes, nnz, numel);
          for (let k = 0; k < out.length; k++) {
            assert.ok(out[k]! < numel && (k === 0 || out[k]! > out[k - 1]!));
          }
        } catch (error) {
          assert.match((error as { code?: string }).code ?? '', /^DS_ERR_DELTA_/);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('value quantizers', () => {
  const rng = new SeededRng(11);
  const values = Float32Array.from({ length: 1000 }, () => rng.nextNormal() * 0.02);
  values[17] = 0.5; // one outlier: its group gets a coarse scale, the others do not
  for (const encoding of ['I8', 'I4'] as const) {
    for (const group of [1, 32, 64, 128, 1000, 4096]) {
      it(`${encoding}, group ${group}: every value within half a step (absmax/qmax × (1 + 2⁻¹⁰)/2 of its group)`, () => {
        const q = quantizeValues(values, encoding, group);
        const back = dequantizeValues('w', q);
        assert.equal(q.scales.length, Math.ceil(values.length / group));
        for (let k = 0; k < values.length; k++) {
          const start = Math.floor(k / group) * group;
          const absmax = Math.max(...Array.from(values.subarray(start, start + group), Math.abs));
          const bound = ((absmax / qmaxOf(encoding)) * (1 + 2 ** -10)) / 2;
          assert.ok(Math.abs(back[k]! - values[k]!) <= bound + 1e-12, `${k}: ${back[k]} vs ${values[k]}`);
        }
        // Dequantizing is exact: code × fp16 scale needs at most 18 significant bits.
        back.forEach((v) => assert.equal(v, Math.fround(v)));
      });
    }
  }

  it('clip < 1 trades the extremes for finer steps and never exceeds ±qmax × scale', () => {
    const q = quantizeValues(values, 'I4', 64, 0.5);
    const back = dequantizeValues('w', q);
    const table = float16Table();
    back.forEach((v, k) => assert.ok(Math.abs(v) <= 7 * table[q.scales[Math.floor(k / 64)]!]! + 1e-12));
    assert.ok(Math.abs(back[17]! - 0.5) > 0.1, 'the outlier is clipped');
  });

  it('an all-zero group gets scale 0 and codes 0', () => {
    const q = quantizeValues(new Float32Array(10), 'I4', 4);
    assert.deepEqual([...q.scales], [0, 0, 0]);
    assert.deepEqual([...dequantizeValues('w', q)], new Array(10).fill(0));
  });
});

describe('format version 2 files', () => {
  const shapes = sampleBaseShapes();
  for (const valueDtype of ['F32', 'F16'] as const) {
    it(`${valueDtype} values: v1 and v2 decode to the same indices and values, so the merged weights are equal`, () => {
      const v1 = decodeDelta(encodeDelta(sampleDelta(valueDtype)), { baseShapes: shapes });
      const file2 = encodeDelta(asV2(sampleDelta(valueDtype)));
      const v2 = decodeDelta(file2, { baseShapes: shapes });
      assert.equal(v2.metadata.formatVersion, 2);
      assert.deepEqual(v2.tensors, v1.tensors);
      assert.deepEqual(merged(v2), merged(v1));
      assert.ok(file2.length < encodeDelta(sampleDelta(valueDtype)).length);
      assert.equal(inspectDelta(v2).totals.fileBytes, file2.length);
    });
  }

  for (const encoding of ['I8', 'I4'] as const) {
    it(`${encoding} values: decoded values are exactly the dequantized codes, and re-encoding gives the same bytes`, () => {
      const delta = asV2(sampleDelta('F16'), { encoding, group: 32 });
      const file = encodeDelta(delta);
      const back = decodeDelta(file, { baseShapes: shapes });
      for (const t of back.tensors) {
        const source = delta.tensors.find((x) => x.name === t.name)!;
        if (t.kind === 'sparse') {
          assert.deepEqual(t.values, source.values);
          assert.equal(t.quantized?.encoding, encoding);
          assert.deepEqual(t.indices, (source as SparseTensorDelta).indices);
        }
      }
      assert.deepEqual(encodeDelta(back), file);
      assert.equal(inspectDelta(back).totals.fileBytes, file.length);
    });
  }

  for (const encoding of ['I8', 'I4'] as const) {
    it(`${encoding} codes in column order: the record says so, groups run column by column, and every reader gets row-major indices with the same values`, () => {
      const delta = asV2Columns(sampleDelta('F32'), encoding, 8);
      const file = encodeDelta(delta);
      const records = JSON.parse(parseSafetensors(file).metadata['tensors']!) as Record<string, { order?: string }>;
      assert.equal(records['layer.0.ffn.weight']!.order, 'column');
      assert.equal(records['classifier.weight']!.order, undefined);
      const back = decodeDelta(file, { baseShapes: shapes });
      for (const t of back.tensors) {
        if (t.kind !== 'sparse') continue;
        const source = delta.tensors.find((x) => x.name === t.name) as SparseTensorDelta;
        assert.deepEqual(t.indices, source.indices);
        assert.deepEqual(t.values, source.values);
        assert.equal(t.quantized?.order, 'column');
        // The k-th code is the k-th entry column by column, rows ascending.
        const listed = columnMajorPermutation(t.indices, t.shape[1]!);
        assert.deepEqual(dequantizeValues(t.name, t.quantized), permuted(t.values, listed));
        for (let k = 1; k < listed.length; k++) {
          const [a, b] = [t.indices[listed[k - 1]!]!, t.indices[listed[k]!]!];
          const cols = t.shape[1]!;
          assert.ok(a % cols < b % cols || (a % cols === b % cols && a < b));
        }
      }
      assert.deepEqual(encodeDelta(back), file);
      assert.equal(inspectDelta(back).totals.fileBytes, file.length);
      // The same values written as version 1 (fp32) merge to the same weights.
      const v1 = decodeDelta(
        encodeDelta({
          metadata: { ...delta.metadata, formatVersion: 1 },
          tensors: delta.tensors.map((t) => (t.kind === 'sparse' ? { ...t, quantized: undefined } : t)),
        }),
        { baseShapes: shapes },
      );
      assert.deepEqual(merged(back), merged(v1));
    });
  }

  it('column order round trips through its permutations for random shapes and densities', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer(),
        (rows, cols, seed) => {
          const rng = new SeededRng(seed >>> 0);
          const indices = sortedUnique(rng, Math.floor(rng.nextFloat() * rows * cols), rows * cols);
          const listed = columnMajorPermutation(indices, cols);
          const positions = Uint32Array.from(
            listed,
            (k) => (indices[k]! % cols) * rows + Math.floor(indices[k]! / cols),
          );
          for (let k = 1; k < positions.length; k++) assert.ok(positions[k - 1]! < positions[k]!);
          const back = fromColumnMajor(positions, rows, cols);
          assert.deepEqual(back.indices, indices);
          assert.deepEqual(
            back.from,
            Uint32Array.from(listed.keys()).map((_, k) => listed.indexOf(k)),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the writer refuses column-ordered codes on a weight that is not 2-D', () => {
    const delta = asV2Columns(sampleDelta('F16'), 'I4', 8);
    const t = delta.tensors.find((x) => x.kind === 'sparse') as SparseTensorDelta;
    const flat = { ...t, shape: [t.shape[0]! * t.shape[1]!] };
    assertCode(
      () => encodeDelta({ ...delta, tensors: delta.tensors.map((x) => (x === t ? flat : x)) }),
      'DS_ERR_DELTA_BAD_TENSOR',
      /column order/,
    );
  });

  it('the writer refuses values that differ from their quantized form, and quantized values in version 1', () => {
    const delta = asV2(sampleDelta('F16'), { encoding: 'I8', group: 16 });
    const t = delta.tensors.find((x) => x.kind === 'sparse') as SparseTensorDelta;
    const changed = {
      ...delta,
      tensors: delta.tensors.map((x) => (x === t ? { ...t, values: t.values.map((v) => v * 1.5) } : x)),
    };
    assertCode(() => encodeDelta(changed), 'DS_ERR_DELTA_BAD_TENSOR', /differs from its quantized form/);
    assertCode(
      () => encodeDelta({ ...delta, metadata: { ...delta.metadata, formatVersion: 1 } }),
      'DS_ERR_DELTA_BAD_TENSOR',
      /only format version 2/,
    );
  });

  const Q = 'layer.0.ffn.weight'; // 10 % kept: stored as 4-bit gaps
  const file = () => encodeDelta(asV2(sampleDelta('F16'), { encoding: 'I4', group: 16 }));
  const recordOf = (f: Uint8Array) =>
    (JSON.parse(parseSafetensors(f).metadata['tensors']!) as Record<string, Record<string, number[] | undefined>>)[Q]!;
  const editTensor = (edit: (record: Record<string, unknown>) => void) =>
    editMetadataOf(file(), (m) => {
      const tensors = JSON.parse(m['tensors']!) as Record<string, Record<string, unknown>>;
      edit(tensors[Q]!);
      m['tensors'] = JSON.stringify(tensors);
    });
  const malformed: { name: string; file: () => Uint8Array; code: string; message: RegExp }[] = [
    {
      name: 'group missing',
      file: () => editTensor((r) => delete r['group']),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /group/,
    },
    {
      name: 'group 0',
      file: () => editTensor((r) => (r['group'] = 0)),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /group/,
    },
    {
      name: 'group changed: scale count no longer matches',
      file: () => editTensor((r) => (r['group'] = 8)),
      code: 'DS_ERR_DELTA_BAD_QUANT',
      message: /scales/,
    },
    {
      name: 'nnz larger than the tensor',
      file: () => editTensor((r) => (r['nnz'] = 1e9)),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /nnz/,
    },
    {
      name: 'nnz one more: code bytes no longer match',
      file: () => editTensor((r) => (r['nnz'] = (r['nnz'] as number) + 2)),
      code: 'DS_ERR_DELTA_BAD_QUANT',
      message: /codes take/,
    },
    {
      name: 'unknown index encoding',
      file: () => editTensor((r) => (r['index'] = 'rle')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /index/,
    },
    {
      name: 'unknown value encoding',
      file: () => editTensor((r) => (r['values'] = 'I2')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /values/,
    },
    {
      name: 'scales_at one short',
      file: () =>
        editTensor((r) => (r['scales_at'] = [(r['scales_at'] as number[])[0], (r['scales_at'] as number[])[1]! - 1])),
      code: 'DS_ERR_DELTA_BAD_QUANT',
      message: /scales for/,
    },
    {
      name: 'order other than "column"',
      file: () => editTensor((r) => (r['order'] = 'row')),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /order/,
    },
    {
      name: 'column order with fp16 values',
      file: () =>
        editMetadataOf(encodeDelta(asV2(sampleDelta('F16'))), (m) => {
          const tensors = JSON.parse(m['tensors']!) as Record<string, Record<string, unknown>>;
          tensors[Q]!['order'] = 'column';
          m['tensors'] = JSON.stringify(tensors);
        }),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /order is given only with I8 or I4/,
    },
    {
      name: 'column order on a weight whose shape is not 2-D',
      file: () =>
        editTensor((r) => {
          r['order'] = 'column';
          r['shape'] = [16, 4, 16];
        }),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /needs a 2-D weight/,
    },
    {
      name: 'index_at missing',
      file: () => editTensor((r) => delete r['index_at']),
      code: 'DS_ERR_DELTA_BAD_METADATA',
      message: /index_at/,
    },
    {
      name: 'index_at past the shared entry',
      file: () => editTensor((r) => (r['index_at'] = [0, 1_000_000])),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /run past/,
    },
    {
      name: 'a scale is Inf',
      file: () =>
        rebuild(
          file(),
          (e) => void ((e.get('::scales')!.data as Uint16Array)[recordOf(file())['scales_at']![0]!] = 0x7c00),
        ),
      code: 'DS_ERR_DELTA_BAD_QUANT',
      message: /not finite/,
    },
    {
      name: 'gap stream runs past the tensor',
      file: () =>
        rebuild(file(), (e) => {
          const [begin, end] = recordOf(file())['index_at']!;
          (e.get('::gaps4')!.data as Uint8Array).fill(0xee, begin, end); // every gap 14: 15 apart
        }),
      code: 'DS_ERR_DELTA_INDEX_RANGE',
      message: /runs past/,
    },
    {
      name: 'gap stream one symbol short',
      file: () =>
        editTensor((r) => (r['index_at'] = [(r['index_at'] as number[])[0], (r['index_at'] as number[])[1]! - 1])),
      code: 'DS_ERR_DELTA_BAD_STREAM',
      message: /ends after/,
    },
    {
      name: 'the shared gaps stored as U16',
      file: () =>
        rebuild(file(), (e) => {
          const g = e.get('::gaps4')!;
          g.dtype = 'U16';
          g.data = Uint16Array.from(g.data as Uint8Array);
        }),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /dtype U16/,
    },
    {
      name: 'a v1 entry beside the v2 streams',
      file: () =>
        rebuild(file(), (e) => void e.set(`${Q}::indices`, { dtype: 'U32', shape: [1], data: Uint32Array.from([0]) })),
      code: 'DS_ERR_DELTA_BAD_TENSOR',
      message: /no tensor in the metadata claims it/,
    },
  ];
  for (const { name, file: make, code, message } of malformed) {
    it(`${name} → ${code}`, () => assertCode(() => decodeDelta(make(), { baseShapes: shapes }), code, message));
  }

  it('random byte edits and header edits of a v2 file (codes in index or column order) either decode or raise a DS_ERR_* error, never anything else (fuzz)', () => {
    const files = [file(), encodeDelta(asV2Columns(sampleDelta('F16'), 'I4', 16))];
    fc.assert(
      fc.property(
        fc.nat(1),
        fc.array(fc.tuple(fc.nat(files[1]!.length - 1), fc.nat(255)), { minLength: 1, maxLength: 8 }),
        (which, edits) => {
          const good = files[which]!;
          const bytes = good.slice();
          for (const [at, value] of edits) bytes[at % good.length] = value;
          try {
            decodeDelta(bytes, { baseShapes: shapes });
          } catch (error) {
            assert.match((error as { code?: string }).code ?? String(error), /^DS_ERR_(ST|DELTA)_/);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
