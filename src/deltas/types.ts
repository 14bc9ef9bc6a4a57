/**
 * The in-memory form of a task's delta: what the format reader produces, what the compressor
 * builds, what the cache holds and what the engine applies. Values are always decoded to fp32
 * in memory (a file may store fp16); they are the already-rescaled amounts to ADD to the base
 * weight, element by element.
 */

/** Storage precision of delta values on disk. */
export type DeltaValueDtype = 'F32' | 'F16';

/** Integer encodings of kept values in format version 2 (src/deltas/format/value-quant.ts). */
export type QuantValueEncoding = 'I8' | 'I4';

/**
 * Kept values stored as integer codes with one fp16 scale per group of consecutive entries:
 * value[k] = code[k] × scale[⌊k/group⌋]. I4 packs two codes per byte, even entry in the low nibble.
 */
export interface QuantizedValues {
  readonly encoding: QuantValueEncoding;
  /** Kept entries per scale. */
  readonly group: number;
  /** Kept entries (codes) in all. */
  readonly count: number;
  /** I8: one signed code per entry; I4: ⌈count/2⌉ bytes of two nibbles. */
  readonly codes: Int8Array | Uint8Array;
  /** fp16 bit patterns, ⌈count/group⌉ of them. */
  readonly scales: Uint16Array;
  /**
   * Which listing of the kept entries the codes (and their groups) follow: absent, the tensor's
   * `indices` order (row-major); `'column'`, a 2-D weight's entries column by column, rows
   * ascending (src/deltas/format/column-order.ts), the order the side-path kernel reads them in.
   */
  readonly order?: 'column';
  /**
   * With `order: 'column'`, as decoded from a file: the entries' column-major positions
   * (`j × rows + i`, strictly increasing), in the codes' order. A reader that takes the codes as
   * they are (the one session's cache) uses these and never needs `indices`/`values`, which the
   * decoder then computes only when first read.
   */
  readonly positions?: Uint32Array;
}

export type DeltaMethod = 'dare' | 'darex-q' | 'magnitude' | 'full';

/** A weight whose delta keeps only some entries: `weight.flat[indices[k]] += values[k]`. */
export interface SparseTensorDelta {
  readonly kind: 'sparse';
  readonly name: string;
  /** Shape of the base weight this applies to. */
  readonly shape: readonly number[];
  /** Flat (row-major) positions, strictly increasing, each < product(shape). */
  readonly indices: Uint32Array;
  readonly values: Float32Array;
  /**
   * This tensor's nominal rescale (1/(1-p) for DARE, 1/q for DAREx-q, times its own scale with
   * per-tensor scales, 1 for magnitude). Exact for uniform masks; with an importance mask each
   * kept value is δ/π · rescale · (1-p). Informational: applying a delta uses `values` only.
   */
  readonly rescale: number;
  /**
   * The integer form `values` came from, when they were quantized (format version 2 writes it
   * as is; `values` must equal its dequantization exactly).
   */
  readonly quantized?: QuantizedValues;
}

/** A weight kept whole (e.g. a classifier head): `weight.flat[i] += values[i]` for every i. */
export interface DenseTensorDelta {
  readonly kind: 'dense';
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

export type TensorDelta = SparseTensorDelta | DenseTensorDelta;

/**
 * A sparse delta of a `[inDim, outDim]` weight regrouped by output column, the form the one-session
 * side op reads (native/ort-custom-op): column j's entries are `rows[starts[j]] … rows[starts[j+1] − 1]`,
 * rows ascending, with `values` at the same positions. Made once when the delta is loaded instead
 * of on every run: 3 bytes per kept entry where every row gap fits a byte and every value is
 * exactly an fp16 (an fp16 file at p ≤ ~0.97), up to 6, instead of 8; or, for int4 codes that run
 * column by column in the file, the codes themselves ({@link PackedI4ByColumn}). Only the engine's
 * delta cache holds it (see {@link ResidentDelta}); files never do.
 */
export type ByColumnTensorDelta = GroupedByColumn | PackedI4ByColumn;

interface ByColumnBase {
  readonly kind: 'by-column';
  readonly name: string;
  readonly shape: readonly number[];
  /** `outDim + 1` offsets into the entries. */
  readonly starts: Uint32Array;
}

export interface GroupedByColumn extends ByColumnBase {
  /**
   * Each entry's row (Uint16Array), or its gap from the previous row of its column (Uint8Array,
   * every gap ≥ 1, a column's first gap counted from row −1), used where every gap fits a byte.
   */
  readonly rows: Uint16Array | Uint8Array;
  /** fp16 bit patterns (Uint16Array), exactly the values decoded, or float32 values. */
  readonly values: Float32Array | Uint16Array;
}

/**
 * An int4 delta kept as its file's codes and scales (format v2 `order: "column"`): one byte per
 * entry, the high nibble its signed code, the low nibble its row gap − 1. Entries of code 0 are
 * left out (they add zero); a byte of code 0 is a bridge of 16 × (nibble + 1) rows instead, for a
 * gap longer than 16. Group g's fp16 scale `scales[g]` applies to the entries
 * `[groupEnds[g − 1], groupEnds[g])`, bridges included. About 1.3 bytes per kept entry at p = 0.9
 * (native/side-kernel/kernel.h, PackI4ByColumn).
 */
export interface PackedI4ByColumn extends ByColumnBase {
  readonly entries: Uint8Array;
  readonly scales: Uint16Array;
  readonly groupEnds: Uint32Array;
}

/**
 * A sparse delta whose values are all exactly fp16 (an fp16 file's always are), kept as fp16 bit
 * patterns: 6 bytes per kept entry instead of 8. What patch mode's cache holds; patch activation
 * widens each value as it adds it, so the weights get the same bits.
 */
export interface HalfSparseTensorDelta {
  readonly kind: 'sparse-f16';
  readonly name: string;
  readonly shape: readonly number[];
  /** As in {@link SparseTensorDelta}. */
  readonly indices: Uint32Array;
  /** fp16 bit patterns, one per index. */
  readonly values: Uint16Array;
}

export type ResidentTensorDelta = TensorDelta | ByColumnTensorDelta | HalfSparseTensorDelta;

export interface DeltaMetadata {
  /**
   * Version of the delta file format; readers refuse versions they do not know. 1: U32 indices
   * and F32/F16 values; 2: compact index streams and, per tensor, F16/F32 or quantized values.
   */
  readonly formatVersion: 1 | 2;
  /** sha256 (hex) of the base weights the delta applies to; see src/onnx/fingerprint.ts. */
  readonly baseFingerprint: string;
  readonly method: DeltaMethod;
  /** Drop rate p in [0, 1). */
  readonly dropRate: number;
  /** Global rescale factor applied to kept sparse values (per-tensor factors live on the tensors). */
  readonly rescale: number;
  /** RNG seed of the random drop, or null for deterministic methods. */
  readonly seed: number | null;
  readonly valueDtype: DeltaValueDtype;
  /** sha256 (hex) of the ONNX files the delta was computed from, when known. */
  readonly sourceBaseSha256: string | null;
  readonly sourceFinetunedSha256: string | null;
  /** Free-form provenance (tool version, q search results...), string to string. */
  readonly extra: Readonly<Record<string, string>>;
}

export interface Delta {
  readonly metadata: DeltaMetadata;
  readonly tensors: readonly TensorDelta[];
}

/**
 * A delta as the engine's cache holds it: decoded, with sparse weights possibly regrouped for the
 * runtime that reads them (EngineRuntime.residentForm). A {@link Delta} is one as it stands.
 */
export interface ResidentDelta {
  readonly metadata: DeltaMetadata;
  readonly tensors: readonly ResidentTensorDelta[];
}

/** Name → shape of every weight the base model exposes for patching. */
export type BaseWeightShapes = ReadonlyMap<string, readonly number[]>;

/** Where a task's delta lives and what its bytes must hash to. */
export interface DeltaLocation {
  readonly uri: string;
  readonly sha256: string;
}

/** A task version the engine may be asked to load: its cache key plus where its delta lives. */
export interface TaskRef extends DeltaLocation {
  /** `name@version`: the cache and activation key. */
  readonly key: string;
}
