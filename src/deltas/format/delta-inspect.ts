/**
 * Per-tensor and total statistics of a delta, as the CLI's `inspect` prints them. Sizes are what
 * `encodeDelta` would write, computed from the layout without encoding anything.
 */
import type { Delta, DeltaValueDtype, SparseTensorDelta, TensorDelta } from '../types.js';
import {
  CODES_SUFFIX,
  encodeDeltaMetadata,
  GAPS_SUFFIX,
  MASK_SUFFIX,
  SCALES_SUFFIX,
  sortedTensors,
  tensorEntrySpecs,
  VALUES_SUFFIX,
  type StoredSparseLayout,
} from './delta-schema.js';
import { chooseIndexEncoding, indexEncodingBytes } from './index-codec.js';
import { layoutSafetensors, SAFETENSORS_DTYPE_SIZE, shapeNumel, type SafetensorsTensorSpec } from './safetensors.js';

export interface TensorStats {
  readonly name: string;
  readonly kind: TensorDelta['kind'];
  readonly shape: readonly number[];
  /** Elements of the base weight. */
  readonly numel: number;
  /** Stored values (all `numel` of them for a dense tensor). */
  readonly nnz: number;
  /** nnz / numel (0 for an empty weight). */
  readonly density: number;
  /** Extremes and mean |value| over the stored values; null when nothing is stored. */
  readonly minValue: number | null;
  readonly maxValue: number | null;
  readonly meanAbs: number | null;
  /** Data bytes of this tensor's entries in the file (indices + values), header excluded. */
  readonly bytesOnDisk: number;
  /** bytesOnDisk × 8 / numel. */
  readonly bitsPerParam: number;
}

export interface DeltaStats {
  readonly tensors: readonly TensorStats[];
  readonly totals: {
    readonly tensorCount: number;
    readonly numel: number;
    readonly nnz: number;
    readonly density: number;
    readonly minValue: number | null;
    readonly maxValue: number | null;
    readonly meanAbs: number | null;
    /** Sum of the tensors' bytesOnDisk. */
    readonly dataBytes: number;
    /** Exact size of the encoded file, header included. */
    readonly fileBytes: number;
    /** fileBytes × 8 / numel: what the delta costs per parameter it covers. */
    readonly bitsPerParam: number;
  };
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/** Version 2 entry sizes of a sparse weight, as `encodeDelta` lays them out (no data written). */
function sparseSpecsV2(
  tensor: SparseTensorDelta,
  valueDtype: DeltaValueDtype,
): { layout: StoredSparseLayout; specs: SafetensorsTensorSpec[] } {
  const { name, indices } = tensor;
  const numel = shapeNumel(tensor.shape);
  const index = chooseIndexEncoding(indices, numel);
  const indexBytes = indexEncodingBytes(indices, numel)[index];
  const specs: SafetensorsTensorSpec[] = [
    index === 'bitmask'
      ? { name: name + MASK_SUFFIX, dtype: 'U8', shape: [indexBytes], byteLength: indexBytes }
      : index === 'gaps8'
        ? { name: name + GAPS_SUFFIX, dtype: 'U8', shape: [indexBytes], byteLength: indexBytes }
        : { name: name + GAPS_SUFFIX, dtype: 'U16', shape: [indexBytes / 2], byteLength: indexBytes },
  ];
  const nnz = indices.length;
  const q = tensor.quantized;
  if (q === undefined) {
    const size = SAFETENSORS_DTYPE_SIZE[valueDtype];
    specs.push({ name: name + VALUES_SUFFIX, dtype: valueDtype, shape: [nnz], byteLength: nnz * size });
    return { layout: { nnz, index, values: valueDtype }, specs };
  }
  specs.push(
    {
      name: name + CODES_SUFFIX,
      dtype: q.encoding === 'I8' ? 'I8' : 'U8',
      shape: [q.codes.length],
      byteLength: q.codes.length,
    },
    { name: name + SCALES_SUFFIX, dtype: 'F16', shape: [q.scales.length], byteLength: q.scales.length * 2 },
  );
  return { layout: { nnz, index, values: q.encoding, group: q.group }, specs };
}

/** Every entry's size and, for version 2, each sparse weight's stored layout. */
function entrySpecs(delta: Delta): {
  specs: Map<string, SafetensorsTensorSpec[]>;
  layouts: Map<string, StoredSparseLayout>;
} {
  const { valueDtype, formatVersion } = delta.metadata;
  const specs = new Map<string, SafetensorsTensorSpec[]>();
  const layouts = new Map<string, StoredSparseLayout>();
  for (const tensor of delta.tensors) {
    if (formatVersion === 2 && tensor.kind === 'sparse') {
      const v2 = sparseSpecsV2(tensor, valueDtype);
      specs.set(tensor.name, v2.specs);
      layouts.set(tensor.name, v2.layout);
    } else specs.set(tensor.name, tensorEntrySpecs(tensor, valueDtype));
  }
  return { specs, layouts };
}

/** Statistics of every tensor (sorted by name, like the file) and of the whole delta. */
export function inspectDelta(delta: Delta): DeltaStats {
  const { specs, layouts } = entrySpecs(delta);
  let totalNumel = 0;
  let totalNnz = 0;
  let totalData = 0;
  let totalAbs = 0;
  let min = Infinity;
  let max = -Infinity;
  const tensors = sortedTensors(delta).map((tensor): TensorStats => {
    const numel = shapeNumel(tensor.shape);
    const nnz = tensor.values.length;
    let tensorMin = Infinity;
    let tensorMax = -Infinity;
    let sumAbs = 0;
    for (const value of tensor.values) {
      if (value < tensorMin) tensorMin = value;
      if (value > tensorMax) tensorMax = value;
      sumAbs += Math.abs(value);
    }
    const bytesOnDisk = specs.get(tensor.name)!.reduce((n, spec) => n + spec.byteLength, 0);
    totalNumel += numel;
    totalNnz += nnz;
    totalData += bytesOnDisk;
    totalAbs += sumAbs;
    min = Math.min(min, tensorMin);
    max = Math.max(max, tensorMax);
    return {
      name: tensor.name,
      kind: tensor.kind,
      shape: [...tensor.shape],
      numel,
      nnz,
      density: ratio(nnz, numel),
      minValue: nnz === 0 ? null : tensorMin,
      maxValue: nnz === 0 ? null : tensorMax,
      meanAbs: nnz === 0 ? null : sumAbs / nnz,
      bytesOnDisk,
      bitsPerParam: ratio(bytesOnDisk * 8, numel),
    };
  });
  const { fileBytes } = layoutSafetensors([...specs.values()].flat(), encodeDeltaMetadata(delta, layouts));
  return {
    tensors,
    totals: {
      tensorCount: tensors.length,
      numel: totalNumel,
      nnz: totalNnz,
      density: ratio(totalNnz, totalNumel),
      minValue: totalNnz === 0 ? null : min,
      maxValue: totalNnz === 0 ? null : max,
      meanAbs: totalNnz === 0 ? null : totalAbs / totalNnz,
      dataBytes: totalData,
      fileBytes,
      bitsPerParam: ratio(fileBytes * 8, totalNumel),
    },
  };
}
