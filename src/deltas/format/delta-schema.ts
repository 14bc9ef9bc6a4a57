/**
 * What a delta file holds, independent of reading or writing bytes: the `__metadata__` keys and
 * how their string values map to `DeltaMetadata`, the per-tensor `tensors` map, and the names
 * and dtypes of each tensor's safetensors entries. `docs/delta-format.md` is the prose version.
 *
 * Safetensors metadata values must be strings, so numbers, null and maps are stored as JSON
 * text; plain strings (format, fingerprint, method, dtype, hashes) are stored as themselves.
 */
import { DS_ERR_DELTA_BAD_METADATA } from '../../core/errors.js';
import { boundText, jsonBounded, quoteBounded } from '../../core/bounded-text.js';
import { guardHeaderJsonText } from './header-guard.js';
import type { Delta, DeltaMetadata, DeltaMethod, DeltaValueDtype, QuantValueEncoding, TensorDelta } from '../types.js';
import type { IndexEncoding } from './index-codec.js';
import { SAFETENSORS_DTYPE_SIZE, type SafetensorsTensorSpec } from './safetensors.js';

export const DELTA_FORMAT = 'deltaserve.delta';
/** The version `encodeDelta` writes unless told otherwise, and every version `decodeDelta` reads. */
export const DELTA_FORMAT_VERSION = '1';
export const DELTA_FORMAT_VERSIONS = ['1', '2'] as const;

export const DELTA_METHODS: readonly DeltaMethod[] = ['dare', 'darex-q', 'magnitude', 'full'];
export const DELTA_VALUE_DTYPES: readonly DeltaValueDtype[] = ['F32', 'F16'];

export const INDICES_SUFFIX = '::indices';
export const VALUES_SUFFIX = '::values';
export const DENSE_SUFFIX = '::dense';

export const INDEX_ENCODINGS: readonly IndexEncoding[] = ['gaps4', 'gaps8', 'gaps16', 'bitmask'];
export type StoredValueEncoding = DeltaValueDtype | QuantValueEncoding;
export const STORED_VALUE_ENCODINGS: readonly StoredValueEncoding[] = ['F32', 'F16', 'I8', 'I4'];

/** How a version 2 sparse weight is stored (absent in version 1 and for dense weights). */
export interface StoredSparseLayout {
  /** Kept entries. */
  readonly nnz: number;
  readonly index: IndexEncoding;
  /** [begin, end) in elements of the shared index entry (src/deltas/format/delta-packed.ts). */
  readonly indexAt: readonly [number, number];
  readonly values: StoredValueEncoding;
  /** [begin, end) in elements of the shared values or codes entry. */
  readonly valuesAt: readonly [number, number];
  /** Kept entries per scale, for I8 and I4 only. */
  readonly group?: number;
  /** [begin, end) in the shared `::scales` entry, for I8 and I4 only. */
  readonly scalesAt?: readonly [number, number];
  /** `'column'`: index stream and codes list a 2-D weight's entries column by column (I8/I4 only). */
  readonly order?: 'column';
}

/** One weight's entry in the `tensors` metadata map. */
export interface TensorRecord {
  readonly shape: number[];
  readonly encoding: 'sparse' | 'dense';
  readonly rescale: number;
  /** Version 2 sparse weights only. */
  readonly layout?: StoredSparseLayout;
}

const REQUIRED_KEYS = [
  'format',
  'format_version',
  'base_fingerprint',
  'method',
  'drop_rate',
  'rescale',
  'seed',
  'value_dtype',
  'source_base_sha256',
  'source_finetuned_sha256',
  'tensors',
  'extra',
] as const;

function badMetadata(reason: string): Error {
  return new DS_ERR_DELTA_BAD_METADATA(reason);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((dim) => typeof dim === 'number' && Number.isSafeInteger(dim) && dim >= 0);
}

// ---- DeltaMetadata ⇄ strings ------------------------------------------------------------------

/** Range and type checks shared by the encoder (on what it is given) and the decoder (on what it parsed). */
export function checkDeltaMetadata(metadata: DeltaMetadata): void {
  if (metadata.formatVersion !== 1 && metadata.formatVersion !== 2)
    throw badMetadata(`formatVersion is ${boundText(String(metadata.formatVersion))}, this writer knows 1 and 2`);
  if (typeof metadata.baseFingerprint !== 'string' || metadata.baseFingerprint.length === 0) {
    throw badMetadata('base_fingerprint is empty');
  }
  if (!DELTA_METHODS.includes(metadata.method)) {
    throw badMetadata(`method ${quoteBounded(String(metadata.method))} is not one of ${DELTA_METHODS.join(', ')}`);
  }
  if (typeof metadata.dropRate !== 'number' || !(metadata.dropRate >= 0 && metadata.dropRate < 1)) {
    throw badMetadata(`drop_rate ${boundText(String(metadata.dropRate))} is not a number in [0, 1)`);
  }
  if (typeof metadata.rescale !== 'number' || !Number.isFinite(metadata.rescale) || metadata.rescale <= 0) {
    throw badMetadata(`rescale ${boundText(String(metadata.rescale))} is not a finite number > 0`);
  }
  const seed = metadata.seed;
  if (seed !== null && !(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) {
    throw badMetadata(`seed ${boundText(String(seed))} is neither null nor an integer in [0, 2^32)`);
  }
  if (!DELTA_VALUE_DTYPES.includes(metadata.valueDtype)) {
    throw badMetadata(`value_dtype ${quoteBounded(String(metadata.valueDtype))} is not F32 or F16`);
  }
  for (const [key, hash] of [
    ['source_base_sha256', metadata.sourceBaseSha256],
    ['source_finetuned_sha256', metadata.sourceFinetunedSha256],
  ] as const) {
    // "" is how the file spells "unknown", so an empty hash could not round-trip.
    if (hash !== null && (typeof hash !== 'string' || hash.length === 0))
      throw badMetadata(`${key} must be null or a non-empty string`);
  }
  if (!isPlainObject(metadata.extra)) throw badMetadata('extra is not an object');
  for (const [key, value] of Object.entries(metadata.extra)) {
    if (typeof value !== 'string') throw badMetadata(`extra[${quoteBounded(key)}] is a ${typeof value}, not a string`);
  }
}

function tensorRecord(tensor: TensorDelta, layout: StoredSparseLayout | undefined): Record<string, unknown> {
  return {
    shape: [...tensor.shape],
    encoding: tensor.kind,
    rescale: tensor.kind === 'sparse' ? tensor.rescale : 1,
    ...(layout !== undefined && {
      nnz: layout.nnz,
      index: layout.index,
      index_at: layout.indexAt,
      values: layout.values,
      values_at: layout.valuesAt,
      ...(layout.group !== undefined && { group: layout.group, scales_at: layout.scalesAt }),
      ...(layout.order !== undefined && { order: layout.order }),
    }),
  };
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Tensors in the canonical (code-unit name) order used by both the file and the decoder. */
export function sortedTensors(delta: Delta): TensorDelta[] {
  return [...delta.tensors].sort((a, b) => compareCodeUnits(a.name, b.name));
}

/**
 * The `__metadata__` map of a delta's file. Does not validate (see `checkDeltaMetadata`).
 * `layouts` (version 2) gives each sparse weight's stored layout by name.
 */
export function encodeDeltaMetadata(
  delta: Delta,
  layouts: ReadonlyMap<string, StoredSparseLayout> = new Map(),
): Record<string, string> {
  const m = delta.metadata;
  // fromEntries, not assignment: a key named "__proto__" must stay an ordinary key.
  const tensors = Object.fromEntries(
    sortedTensors(delta).map((tensor) => [tensor.name, tensorRecord(tensor, layouts.get(tensor.name))]),
  );
  const extra = Object.fromEntries(
    Object.keys(m.extra)
      .sort(compareCodeUnits)
      .map((key) => [key, m.extra[key]]),
  );
  return {
    format: DELTA_FORMAT,
    format_version: String(m.formatVersion),
    base_fingerprint: m.baseFingerprint,
    method: m.method,
    drop_rate: JSON.stringify(m.dropRate),
    rescale: JSON.stringify(m.rescale),
    seed: JSON.stringify(m.seed),
    value_dtype: m.valueDtype,
    source_base_sha256: m.sourceBaseSha256 ?? '',
    source_finetuned_sha256: m.sourceFinetunedSha256 ?? '',
    tensors: JSON.stringify(tensors),
    extra: JSON.stringify(extra),
  };
}

function parseJsonValue(key: string, text: string): unknown {
  // A metadata string holding JSON is a second document to parse: bounded the same way as the header.
  guardHeaderJsonText(text, `metadata ${JSON.stringify(key)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw badMetadata(`${key} is not valid JSON: ${quoteBounded(text, 80)}`);
  }
}

function parseNumber(key: string, text: string): number {
  const value = parseJsonValue(key, text);
  if (typeof value !== 'number') throw badMetadata(`${key} is ${quoteBounded(text, 80)}, not a JSON number`);
  return value;
}

function parseRange(label: string, key: string, value: unknown): [number, number] {
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    !value.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0) ||
    value[0] > value[1]
  ) {
    throw badMetadata(`${label}.${key} is ${jsonBounded(value)}, not [begin, end] with 0 ≤ begin ≤ end`);
  }
  return [value[0] as number, value[1] as number];
}

function parseLayout(label: string, record: Record<string, unknown>, shape: readonly number[]): StoredSparseLayout {
  const { nnz, index, values, group, order } = record;
  const numel = shape.reduce((a, b) => a * b, 1);
  if (typeof nnz !== 'number' || !Number.isSafeInteger(nnz) || nnz < 0 || nnz > numel) {
    throw badMetadata(`${label}.nnz is ${jsonBounded(nnz)}, not an integer in [0, ${numel}]`);
  }
  if (!INDEX_ENCODINGS.includes(index as IndexEncoding)) {
    throw badMetadata(`${label}.index is ${jsonBounded(index)}, not one of ${INDEX_ENCODINGS.join(', ')}`);
  }
  if (!STORED_VALUE_ENCODINGS.includes(values as StoredValueEncoding)) {
    throw badMetadata(`${label}.values is ${jsonBounded(values)}, not one of ${STORED_VALUE_ENCODINGS.join(', ')}`);
  }
  const quantized = values === 'I8' || values === 'I4';
  if (quantized !== (group !== undefined)) {
    throw badMetadata(`${label}.group must be given exactly when values are I8 or I4`);
  }
  if (group !== undefined && (typeof group !== 'number' || !Number.isInteger(group) || group < 1 || group > 65536)) {
    throw badMetadata(`${label}.group is ${jsonBounded(group)}, not an integer in [1, 65536]`);
  }
  if (order !== undefined) {
    if (order !== 'column') throw badMetadata(`${label}.order is ${jsonBounded(order)}, not "column"`);
    if (!quantized) throw badMetadata(`${label}.order is given only with I8 or I4 values`);
    if (shape.length !== 2)
      throw badMetadata(`${label}.order "column" needs a 2-D weight, not shape ${jsonBounded(shape)}`);
  }
  return {
    nnz,
    index: index as IndexEncoding,
    indexAt: parseRange(label, 'index_at', record['index_at']),
    values: values as StoredValueEncoding,
    valuesAt: parseRange(label, 'values_at', record['values_at']),
    ...(group !== undefined && {
      group: group,
      scalesAt: parseRange(label, 'scales_at', record['scales_at']),
    }),
    ...(order !== undefined && { order: 'column' as const }),
  };
}

function parseTensorRecords(text: string, version: 1 | 2): Map<string, TensorRecord> {
  const raw = parseJsonValue('tensors', text);
  if (!isPlainObject(raw)) throw badMetadata('tensors is not a JSON object');
  const records = new Map<string, TensorRecord>();
  for (const name of Object.keys(raw).sort(compareCodeUnits)) {
    const record = raw[name];
    const label = `tensors[${quoteBounded(name)}]`;
    if (name.length === 0) throw badMetadata('tensors has an entry with an empty name');
    if (!isPlainObject(record)) throw badMetadata(`${label} is not an object`);
    const { shape, encoding, rescale } = record;
    if (!isShape(shape))
      throw badMetadata(`${label}.shape is ${jsonBounded(shape)}, not an array of non-negative integers`);
    if (encoding !== 'sparse' && encoding !== 'dense') {
      throw badMetadata(`${label}.encoding is ${jsonBounded(encoding)}, not "sparse" or "dense"`);
    }
    if (typeof rescale !== 'number' || !Number.isFinite(rescale) || rescale <= 0) {
      throw badMetadata(`${label}.rescale is ${jsonBounded(rescale)}, not a finite number > 0`);
    }
    if (version === 2 && encoding === 'sparse') {
      const layout = parseLayout(label, record, shape);
      records.set(name, { shape, encoding, rescale, layout });
    } else records.set(name, { shape, encoding, rescale });
  }
  return records;
}

function parseExtra(text: string): Record<string, string> {
  const raw = parseJsonValue('extra', text);
  if (!isPlainObject(raw)) throw badMetadata('extra is not a JSON object');
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') throw badMetadata(`extra[${quoteBounded(key)}] is not a string`);
  }
  return Object.fromEntries(Object.entries(raw)) as Record<string, string>;
}

/**
 * Reads and validates a delta's `__metadata__`. Tensor records come back keyed by name in
 * code-unit order. Unknown extra keys are ignored (room for additive changes within version 1).
 */
export function decodeDeltaMetadata(raw: Readonly<Record<string, string>>): {
  metadata: DeltaMetadata;
  tensors: Map<string, TensorRecord>;
} {
  if (!Object.hasOwn(raw, 'format')) throw badMetadata(`no "format" key: not a ${DELTA_FORMAT} file`);
  if (raw['format'] !== DELTA_FORMAT)
    throw badMetadata(`format is ${quoteBounded(String(raw['format']))}, not ${JSON.stringify(DELTA_FORMAT)}`);
  for (const key of REQUIRED_KEYS) {
    if (!Object.hasOwn(raw, key)) throw badMetadata(`required key ${JSON.stringify(key)} is missing`);
  }
  const get = (key: (typeof REQUIRED_KEYS)[number]): string => raw[key]!;
  const version = get('format_version');
  if (!(DELTA_FORMAT_VERSIONS as readonly string[]).includes(version)) {
    throw badMetadata(
      `format_version ${quoteBounded(version)} is unknown; this reader knows ${DELTA_FORMAT_VERSIONS.map((v) => JSON.stringify(v)).join(' and ')}`,
    );
  }
  const formatVersion = version === '2' ? 2 : 1;
  const seed = parseJsonValue('seed', get('seed'));
  if (seed !== null && typeof seed !== 'number')
    throw badMetadata(`seed is ${quoteBounded(get('seed'))}, not a JSON number or null`);
  const metadata: DeltaMetadata = {
    formatVersion,
    baseFingerprint: get('base_fingerprint'),
    method: get('method') as DeltaMethod,
    dropRate: parseNumber('drop_rate', get('drop_rate')),
    rescale: parseNumber('rescale', get('rescale')),
    seed,
    valueDtype: get('value_dtype') as DeltaValueDtype,
    sourceBaseSha256: get('source_base_sha256') === '' ? null : get('source_base_sha256'),
    sourceFinetunedSha256: get('source_finetuned_sha256') === '' ? null : get('source_finetuned_sha256'),
    extra: parseExtra(get('extra')),
  };
  checkDeltaMetadata(metadata);
  return { metadata, tensors: parseTensorRecords(get('tensors'), formatVersion) };
}

// ---- entries ----------------------------------------------------------------------------------

/** The safetensors entries one tensor occupies in version 1, with their sizes: what the layout needs. */
export function tensorEntrySpecs(tensor: TensorDelta, valueDtype: DeltaValueDtype): SafetensorsTensorSpec[] {
  const valueSize = SAFETENSORS_DTYPE_SIZE[valueDtype];
  if (tensor.kind === 'dense') {
    return [
      {
        name: tensor.name + DENSE_SUFFIX,
        dtype: valueDtype,
        shape: tensor.shape,
        byteLength: tensor.values.length * valueSize,
      },
    ];
  }
  const nnz = tensor.indices.length;
  return [
    { name: tensor.name + INDICES_SUFFIX, dtype: 'U32', shape: [nnz], byteLength: nnz * 4 },
    {
      name: tensor.name + VALUES_SUFFIX,
      dtype: valueDtype,
      shape: [tensor.values.length],
      byteLength: tensor.values.length * valueSize,
    },
  ];
}
