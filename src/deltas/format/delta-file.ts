/**
 * The delta file: a safetensors container whose entries are each weight's sparse indices and
 * values (or dense values) and whose `__metadata__` describes the delta. Layout and rules are
 * specified in docs/delta-format.md; the names and metadata keys live in ./delta-schema.ts.
 *
 * `decodeDelta` validates everything before it returns anything, cheapest checks first
 * (container, metadata, base fingerprint, names and shapes against the base, entry dtypes and
 * counts) and the per-element passes last, so a wrong file is usually refused before its data
 * is touched, and a caller never holds a partially valid delta.
 *
 * Memory ownership: by default decoded `indices` and fp32 `values` are zero-copy views of
 * `bytes.buffer` (when aligned, which files written here always are if `bytes` starts 8-aligned,
 * as Node's file and network buffers do). Such a delta keeps the whole underlying buffer alive,
 * and the caller must not overwrite or reuse `bytes` while the delta is in use. Pass
 * `{ copy: true }` to get arrays that own their memory. fp16 values are always fresh arrays.
 * Input over a SharedArrayBuffer is copied once up front (views of it would not be safe).
 */
import {
  DS_ERR_DELTA_BAD_TENSOR,
  DS_ERR_DELTA_BASE_MISMATCH,
  DS_ERR_DELTA_COUNT_MISMATCH,
  DS_ERR_DELTA_SHAPE_MISMATCH,
  DS_ERR_DELTA_UNKNOWN_TENSOR,
} from '../../core/errors.js';
import { boundText, describeListBounded, quoteBounded } from '../../core/bounded-text.js';
import type {
  BaseWeightShapes,
  Delta,
  DeltaValueDtype,
  QuantizedValues,
  SparseTensorDelta,
  TensorDelta,
} from '../types.js';
import { checkFinite, checkSparseIndices, widenFloat16Checked } from './delta-checks.js';
import {
  checkDeltaMetadata,
  decodeDeltaMetadata,
  DENSE_SUFFIX,
  encodeDeltaMetadata,
  INDICES_SUFFIX,
  sortedTensors,
  type StoredSparseLayout,
  type TensorRecord,
  VALUES_SUFFIX,
} from './delta-schema.js';
import { INDEX_STREAMS, packSparse, SCALES_STREAM, valueStream, type PackedStream } from './delta-packed.js';
import { decodeBitmask, decodeGaps, decodeGaps4 } from './index-codec.js';
import { checkQuantizedLayout, checkScales, dequantizeValues } from './value-quant.js';
import { columnMajorPermutation, fromColumnMajor, permuted } from './column-order.js';
import { float32ArrayToFloat16 } from './float16.js';
import {
  entryView,
  parseSafetensors,
  SAFETENSORS_DTYPE_SIZE,
  shapeNumel,
  writeSafetensors,
  type SafetensorsEntry,
  type SafetensorsTensorInput,
} from './safetensors.js';

export { inspectDelta, type DeltaStats, type TensorStats } from './delta-inspect.js';

export interface DecodeDeltaOptions {
  /** Shapes of the base model's weights: every delta tensor must name one, with the same shape. */
  readonly baseShapes?: BaseWeightShapes;
  /** Fingerprint of the base in use; a delta made for another base is refused. */
  readonly expectedBaseFingerprint?: string;
  /** Return arrays that own their memory instead of views of `bytes.buffer`. Default false. */
  readonly copy?: boolean;
}

function describeShape(shape: readonly number[]): string {
  return describeListBounded(shape);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

function badTensor(name: string, reason: string): Error {
  return new DS_ERR_DELTA_BAD_TENSOR(quoteBounded(name), reason);
}

// ---- encoding ---------------------------------------------------------------------------------

function checkTensorForEncoding(tensor: TensorDelta): void {
  const { name, shape } = tensor;
  if (typeof name !== 'string' || name.length === 0) throw badTensor(String(name), 'has an empty name');
  if (!shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
    throw badTensor(name, `has shape ${describeShape(shape)}, not non-negative integers`);
  }
  const numel = shapeNumel(shape);
  if (tensor.kind === 'dense') {
    if (tensor.values.length !== numel) {
      throw badTensor(
        name,
        `is dense with ${tensor.values.length} values but shape ${describeShape(shape)} holds ${numel}`,
      );
    }
    checkFinite(name, tensor.values, null);
    return;
  }
  if (!Number.isFinite(tensor.rescale) || tensor.rescale <= 0) {
    throw badTensor(name, `has rescale ${tensor.rescale}, not a finite number > 0`);
  }
  if (tensor.indices.length !== tensor.values.length) {
    throw new DS_ERR_DELTA_COUNT_MISMATCH(quoteBounded(name), tensor.indices.length, tensor.values.length);
  }
  checkSparseIndices(name, tensor.indices, shape, numel);
  checkFinite(name, tensor.values, tensor.indices);
}

function storedValues(name: string, values: Float32Array, valueDtype: DeltaValueDtype): Float32Array | Uint16Array {
  if (valueDtype === 'F32') return values;
  const half = float32ArrayToFloat16(values);
  for (let i = 0; i < half.length; i++) {
    if ((half[i]! & 0x7c00) === 0x7c00) {
      throw badTensor(name, `value ${values[i]} at position ${i} is outside the fp16 range (±65504)`);
    }
  }
  return half;
}

/** Checks a quantized tensor's codes against its values: the file must decode to exactly `values`. */
function checkQuantized(tensor: SparseTensorDelta, q: QuantizedValues): void {
  const { name } = tensor;
  if (q.count !== tensor.values.length) {
    throw badTensor(name, `has ${tensor.values.length} values but its quantized form holds ${q.count}`);
  }
  checkQuantizedLayout(name, q.encoding, q.group, q.count, q.codes.length, q.scales.length);
  if (q.order === 'column' && tensor.shape.length !== 2) {
    throw badTensor(name, `has codes in column order but shape ${describeShape(tensor.shape)}, not 2-D`);
  }
  const listed = q.order === 'column' ? columnMajorPermutation(tensor.indices, tensor.shape[1]!) : null;
  const values = listed === null ? tensor.values : permuted(tensor.values, listed);
  const exact = dequantizeValues(name, q);
  for (let k = 0; k < exact.length; k++) {
    if (exact[k] !== values[k]) {
      throw badTensor(name, `value ${values[k]} at position ${k} differs from its quantized form ${exact[k]}`);
    }
  }
}

/**
 * Serialises a delta. Validates it first with the decoder's rules (and refuses values that
 * overflow fp16), so it never writes a file `decodeDelta` would reject. Canonical: tensor
 * order in `delta.tensors` and key order in `extra` do not affect the bytes.
 */
export function encodeDelta(delta: Delta): Uint8Array {
  checkDeltaMetadata(delta.metadata);
  const { valueDtype, formatVersion } = delta.metadata;
  const seen = new Set<string>();
  const entries: SafetensorsTensorInput[] = [];
  const packed: SparseTensorDelta[] = [];
  for (const tensor of sortedTensors(delta)) {
    if (seen.has(tensor.name)) throw badTensor(tensor.name, 'appears twice in the delta');
    seen.add(tensor.name);
    checkTensorForEncoding(tensor);
    if (formatVersion === 2 && tensor.kind === 'sparse') {
      if (tensor.quantized !== undefined) checkQuantized(tensor, tensor.quantized);
      packed.push(tensor);
      continue;
    }
    if (tensor.kind === 'sparse' && tensor.quantized !== undefined) {
      throw badTensor(tensor.name, 'has quantized values, which only format version 2 stores');
    }
    const values = storedValues(tensor.name, tensor.values, valueDtype);
    if (tensor.kind === 'dense') {
      entries.push({ name: tensor.name + DENSE_SUFFIX, dtype: valueDtype, shape: tensor.shape, data: values });
    } else {
      entries.push({
        name: tensor.name + INDICES_SUFFIX,
        dtype: 'U32',
        shape: [tensor.indices.length],
        data: tensor.indices,
      });
      entries.push({ name: tensor.name + VALUES_SUFFIX, dtype: valueDtype, shape: [values.length], data: values });
    }
  }
  const { layouts, entries: shared } = packSparse(packed, valueDtype, (t) =>
    storedValues(t.name, t.values, valueDtype),
  );
  return writeSafetensors([...entries, ...shared], encodeDeltaMetadata(delta, layouts));
}

// ---- decoding ---------------------------------------------------------------------------------

/** A tensor whose structure has been checked but whose data has not been read yet. */
type PlannedTensor =
  | {
      readonly name: string;
      readonly record: TensorRecord;
      readonly kind: 'sparse';
      readonly indices: SafetensorsEntry;
      readonly values: SafetensorsEntry;
    }
  | { readonly name: string; readonly record: TensorRecord; readonly kind: 'dense'; readonly values: SafetensorsEntry }
  | {
      readonly name: string;
      readonly record: TensorRecord;
      readonly kind: 'sparse2';
      readonly layout: StoredSparseLayout;
      /** The weight's slices of the shared entries (src/deltas/format/delta-packed.ts). */
      readonly index: SafetensorsEntry;
      /** F32/F16 values, or the I8/I4 codes with their scales. */
      readonly values: SafetensorsEntry;
      readonly scales: SafetensorsEntry | null;
    };

function takeEntry(
  entries: ReadonlyMap<string, SafetensorsEntry>,
  consumed: Set<string>,
  name: string,
  suffix: string,
  dtype: string,
): SafetensorsEntry {
  const entryName = name + suffix;
  const entry = entries.get(entryName);
  if (entry === undefined)
    throw badTensor(name, `is listed in the metadata but the file has no ${quoteBounded(entryName)} entry`);
  if (entry.dtype !== dtype)
    throw badTensor(name, `entry ${quoteBounded(entryName)} has dtype ${entry.dtype}, expected ${dtype}`);
  consumed.add(entryName);
  return entry;
}

function requireRank1(name: string, suffix: string, entry: SafetensorsEntry): number {
  if (entry.shape.length !== 1) {
    throw badTensor(
      name,
      `entry ${quoteBounded(name + suffix)} has shape ${describeShape(entry.shape)}, expected rank 1 [nnz]`,
    );
  }
  return entry.shape[0]!;
}

/**
 * A weight's slice of a shared version 2 entry, as an entry of its own: the dtype must be the
 * stream's, the range inside it, and its length what the layout implies.
 */
function sliceOf(
  name: string,
  entries: ReadonlyMap<string, SafetensorsEntry>,
  consumed: Set<string>,
  stream: PackedStream,
  [begin, end]: readonly [number, number],
  what: string,
): SafetensorsEntry {
  const entry = entries.get(stream.entry);
  if (entry === undefined)
    throw badTensor(name, `stores its ${what} in ${JSON.stringify(stream.entry)}, which the file does not have`);
  if (entry.dtype !== stream.dtype)
    throw badTensor(name, `entry ${JSON.stringify(stream.entry)} has dtype ${entry.dtype}, expected ${stream.dtype}`);
  if (entry.shape.length !== 1) throw badTensor(name, `entry ${JSON.stringify(stream.entry)} is not rank 1`);
  if (end > entry.shape[0]!) {
    throw badTensor(
      name,
      `its ${what} [${begin}, ${end}) run past the ${entry.shape[0]} elements of ${JSON.stringify(stream.entry)}`,
    );
  }
  consumed.add(stream.entry);
  const size = SAFETENSORS_DTYPE_SIZE[stream.dtype];
  return {
    dtype: stream.dtype,
    shape: [end - begin],
    begin: entry.begin + begin * size,
    end: entry.begin + end * size,
  };
}

function planSparseV2(
  name: string,
  record: TensorRecord,
  layout: StoredSparseLayout,
  entries: ReadonlyMap<string, SafetensorsEntry>,
  consumed: Set<string>,
  valueDtype: DeltaValueDtype,
): PlannedTensor {
  const index = sliceOf(name, entries, consumed, INDEX_STREAMS[layout.index], layout.indexAt, 'index stream');
  if (layout.values === 'I8' || layout.values === 'I4') {
    const codes = sliceOf(name, entries, consumed, valueStream(layout.values), layout.valuesAt, 'codes');
    const scales = sliceOf(name, entries, consumed, SCALES_STREAM, layout.scalesAt!, 'scales');
    checkQuantizedLayout(name, layout.values, layout.group!, layout.nnz, codes.shape[0]!, scales.shape[0]!);
    return { name, record, kind: 'sparse2', layout, index, values: codes, scales };
  }
  if (layout.values !== valueDtype) {
    throw badTensor(name, `stores ${layout.values} values but the delta's value_dtype is ${valueDtype}`);
  }
  const values = sliceOf(name, entries, consumed, valueStream(layout.values), layout.valuesAt, 'values');
  if (values.shape[0] !== layout.nnz)
    throw new DS_ERR_DELTA_COUNT_MISMATCH(JSON.stringify(name), layout.nnz, values.shape[0] ?? 0);
  return { name, record, kind: 'sparse2', layout, index, values, scales: null };
}

function planTensor(
  name: string,
  record: TensorRecord,
  entries: ReadonlyMap<string, SafetensorsEntry>,
  consumed: Set<string>,
  valueDtype: DeltaValueDtype,
): PlannedTensor {
  if (record.encoding === 'dense') {
    const values = takeEntry(entries, consumed, name, DENSE_SUFFIX, valueDtype);
    if (!sameShape(values.shape, record.shape)) {
      throw badTensor(
        name,
        `entry has shape ${describeShape(values.shape)} but the metadata says ${describeShape(record.shape)}`,
      );
    }
    return { name, record, kind: 'dense', values };
  }
  if (record.layout !== undefined) return planSparseV2(name, record, record.layout, entries, consumed, valueDtype);
  const indices = takeEntry(entries, consumed, name, INDICES_SUFFIX, 'U32');
  const values = takeEntry(entries, consumed, name, VALUES_SUFFIX, valueDtype);
  const indexCount = requireRank1(name, INDICES_SUFFIX, indices);
  const valueCount = requireRank1(name, VALUES_SUFFIX, values);
  if (indexCount !== valueCount) throw new DS_ERR_DELTA_COUNT_MISMATCH(quoteBounded(name), indexCount, valueCount);
  return { name, record, kind: 'sparse', indices, values };
}

function decodeIndices(
  name: string,
  layout: StoredSparseLayout,
  stream: ReturnType<typeof entryView>,
  numel: number,
): Uint32Array {
  switch (layout.index) {
    case 'gaps4':
      return decodeGaps4(name, stream as Uint8Array, layout.nnz, numel);
    case 'gaps8':
    case 'gaps16':
      return decodeGaps(name, stream as Uint8Array | Uint16Array, layout.nnz, numel);
    case 'bitmask':
      return decodeBitmask(name, stream as Uint8Array, layout.nnz, numel);
  }
}

/**
 * Parses and fully validates a delta file. Throws the specific DS_ERR_ST_* / DS_ERR_DELTA_*
 * error for the first problem found. Tensors come back sorted by name (code-unit order).
 * See the module comment for which arrays share memory with `bytes`.
 */
export function decodeDelta(input: Uint8Array, options: DecodeDeltaOptions = {}): Delta {
  // Another thread could change shared memory between validation and use, and ORT refuses
  // typed arrays over a SharedArrayBuffer: take a private copy first.
  const bytes = input.buffer instanceof ArrayBuffer ? input : input.slice();
  const parsed = parseSafetensors(bytes);
  const { metadata, tensors: records } = decodeDeltaMetadata(parsed.metadata);
  const { baseShapes, expectedBaseFingerprint } = options;
  if (expectedBaseFingerprint !== undefined && metadata.baseFingerprint !== expectedBaseFingerprint) {
    throw new DS_ERR_DELTA_BASE_MISMATCH(boundText(metadata.baseFingerprint), boundText(expectedBaseFingerprint));
  }

  const consumed = new Set<string>();
  const plans: PlannedTensor[] = [];
  for (const [name, record] of records) {
    if (baseShapes !== undefined) {
      const baseShape = baseShapes.get(name);
      if (baseShape === undefined) throw new DS_ERR_DELTA_UNKNOWN_TENSOR(quoteBounded(name));
      if (!sameShape(record.shape, baseShape)) {
        throw new DS_ERR_DELTA_SHAPE_MISMATCH(
          quoteBounded(name),
          describeShape(record.shape),
          describeShape(baseShape),
        );
      }
    }
    plans.push(planTensor(name, record, parsed.tensors, consumed, metadata.valueDtype));
  }
  for (const entryName of parsed.tensors.keys()) {
    if (!consumed.has(entryName))
      throw badTensor(entryName, 'is an entry of the file but no tensor in the metadata claims it');
  }

  const own = options.copy === true;
  const { dataOffset } = parsed;
  const ownView = <T extends Uint8Array | Int8Array | Uint16Array>(view: T): T =>
    own && view.buffer === bytes.buffer ? (view.slice() as T) : view;
  const floatValues = (plan: { name: string; values: SafetensorsEntry }, indices: Uint32Array | null): Float32Array => {
    if (plan.values.dtype === 'F16') {
      return widenFloat16Checked(plan.name, entryView(bytes, dataOffset, { ...plan.values, dtype: 'F16' }), indices);
    }
    const view = entryView(bytes, dataOffset, { ...plan.values, dtype: 'F32' });
    checkFinite(plan.name, view, indices);
    return own && view.buffer === bytes.buffer ? view.slice() : view;
  };
  const tensors: TensorDelta[] = plans.map((plan) => {
    const shape = [...plan.record.shape];
    if (plan.kind === 'dense') return { kind: 'dense', name: plan.name, shape, values: floatValues(plan, null) };
    if (plan.kind === 'sparse2') {
      const { layout } = plan;
      const numel = shapeNumel(shape);
      const stored = decodeIndices(plan.name, layout, entryView(bytes, dataOffset, plan.index), numel);
      const base = { kind: 'sparse', name: plan.name, shape, indices: stored, rescale: plan.record.rescale } as const;
      if (plan.scales === null) return { ...base, values: floatValues(plan, stored) };
      const quantized: QuantizedValues = {
        encoding: layout.values as QuantizedValues['encoding'],
        group: layout.group!,
        count: layout.nnz,
        codes: ownView(
          layout.values === 'I8'
            ? entryView(bytes, dataOffset, { ...plan.values, dtype: 'I8' })
            : entryView(bytes, dataOffset, { ...plan.values, dtype: 'U8' }),
        ),
        scales: ownView(entryView(bytes, dataOffset, { ...plan.scales, dtype: 'F16' })),
      };
      if (layout.order === 'column') {
        checkScales(plan.name, quantized.scales);
        return inRowOrderWhenRead(plan.name, shape, plan.record.rescale, {
          ...quantized,
          order: 'column',
          positions: stored,
        });
      }
      return { ...base, values: dequantizeValues(plan.name, quantized), quantized };
    }
    const view = entryView(bytes, dataOffset, { ...plan.indices, dtype: 'U32' });
    checkSparseIndices(plan.name, view, shape, shapeNumel(shape));
    const indices = own && view.buffer === bytes.buffer ? view.slice() : view;
    return {
      kind: 'sparse',
      name: plan.name,
      shape,
      indices,
      values: floatValues(plan, indices),
      rescale: plan.record.rescale,
    };
  });
  return { metadata, tensors };
}

/**
 * A column-order record (positions j × rows + i, codes in that order) as a row-major sparse tensor
 * whose `indices` and `values` are computed when first read, then kept: a cache that keeps the
 * codes (the one session's) reads `quantized.positions` and never pays for the reordering (two
 * counting passes and a gather: a BERT-base p = 0.9 int4 delta decoded in ~0.5 s with it, ~0.1 s
 * without). Everything was validated before this is called.
 */
function inRowOrderWhenRead(
  name: string,
  shape: number[],
  rescale: number,
  quantized: QuantizedValues & { readonly positions: Uint32Array },
): SparseTensorDelta {
  let rowOrder: { indices: Uint32Array; values: Float32Array } | null = null;
  const inRowOrder = () => {
    if (rowOrder === null) {
      const byRow = fromColumnMajor(quantized.positions, shape[0]!, shape[1]!);
      rowOrder = { indices: byRow.indices, values: permuted(dequantizeValues(name, quantized), byRow.from) };
    }
    return rowOrder;
  };
  const tensor = { kind: 'sparse', name, shape, rescale, quantized } as const;
  return Object.defineProperties(tensor, {
    indices: { enumerable: true, get: () => inRowOrder().indices },
    values: { enumerable: true, get: () => inRowOrder().values },
  }) as unknown as SparseTensorDelta;
}
