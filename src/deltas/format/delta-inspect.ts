/**
 * Per-tensor and total statistics of a delta, as the CLI's `inspect` prints them. Sizes are what
 * `encodeDelta` would write, computed from the layout without encoding anything.
 */
import type { Delta, SparseTensorDelta, TensorDelta } from '../types.js';
import { packSparse } from './delta-packed.js';
import { encodeDeltaMetadata, sortedTensors, tensorEntrySpecs, type StoredSparseLayout } from './delta-schema.js';
import { float32ArrayToFloat16 } from './float16.js';
import { layoutSafetensors, shapeNumel, type SafetensorsTensorSpec } from './safetensors.js';

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
    /**
     * Bytes of the decoded form in memory (what the delta cache charges): a U32 index and an F32
     * value per kept entry, an F32 per dense element — whatever the file's format.
     */
    readonly memoryBytes: number;
  };
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/** Every entry's size, each tensor's data bytes and, for version 2, each sparse weight's layout. */
function entrySpecs(delta: Delta): {
  specs: SafetensorsTensorSpec[];
  bytes: Map<string, number>;
  layouts: Map<string, StoredSparseLayout>;
} {
  const { valueDtype, formatVersion } = delta.metadata;
  const specs: SafetensorsTensorSpec[] = [];
  const bytes = new Map<string, number>();
  const packed: SparseTensorDelta[] = [];
  for (const tensor of sortedTensors(delta)) {
    if (formatVersion === 2 && tensor.kind === 'sparse') {
      packed.push(tensor);
      continue;
    }
    const own = tensorEntrySpecs(tensor, valueDtype);
    specs.push(...own);
    bytes.set(
      tensor.name,
      own.reduce((n, spec) => n + spec.byteLength, 0),
    );
  }
  // Version 2 sizes depend on the index streams the writer would choose: lay them out for real.
  const stored = packSparse(packed, valueDtype, (t) =>
    valueDtype === 'F16' ? float32ArrayToFloat16(t.values) : t.values,
  );
  for (const entry of stored.entries) specs.push({ ...entry, byteLength: entry.data.byteLength });
  for (const [name, size] of stored.bytes) bytes.set(name, size);
  return { specs, bytes, layouts: stored.layouts };
}

/** Statistics of every tensor (sorted by name, like the file) and of the whole delta. */
export function inspectDelta(delta: Delta): DeltaStats {
  const { specs, bytes, layouts } = entrySpecs(delta);
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
    const bytesOnDisk = bytes.get(tensor.name)!;
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
  const { fileBytes } = layoutSafetensors(specs, encodeDeltaMetadata(delta, layouts));
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
      memoryBytes: delta.tensors.reduce(
        (n, t) => n + 4 * t.values.length + (t.kind === 'sparse' ? 4 * t.indices.length : 0),
        0,
      ),
    },
  };
}
