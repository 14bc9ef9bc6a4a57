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
import type { Delta, DeltaMetadata, DeltaMethod, DeltaValueDtype, TensorDelta } from '../types.js';
import { SAFETENSORS_DTYPE_SIZE, type SafetensorsTensorSpec } from './safetensors.js';

export const DELTA_FORMAT = 'deltaserve.delta';
export const DELTA_FORMAT_VERSION = '1';

export const DELTA_METHODS: readonly DeltaMethod[] = ['dare', 'darex-q', 'magnitude', 'full'];
export const DELTA_VALUE_DTYPES: readonly DeltaValueDtype[] = ['F32', 'F16'];

export const INDICES_SUFFIX = '::indices';
export const VALUES_SUFFIX = '::values';
export const DENSE_SUFFIX = '::dense';

/** One weight's entry in the `tensors` metadata map. */
export interface TensorRecord {
  readonly shape: number[];
  readonly encoding: 'sparse' | 'dense';
  readonly rescale: number;
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
  if (metadata.formatVersion !== 1)
    throw badMetadata(`formatVersion is ${boundText(String(metadata.formatVersion))}, this writer knows only 1`);
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

function tensorRecord(tensor: TensorDelta): TensorRecord {
  return {
    shape: [...tensor.shape],
    encoding: tensor.kind,
    rescale: tensor.kind === 'sparse' ? tensor.rescale : 1,
  };
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Tensors in the canonical (code-unit name) order used by both the file and the decoder. */
export function sortedTensors(delta: Delta): TensorDelta[] {
  return [...delta.tensors].sort((a, b) => compareCodeUnits(a.name, b.name));
}

/** The `__metadata__` map of a delta's file. Does not validate (see `checkDeltaMetadata`). */
export function encodeDeltaMetadata(delta: Delta): Record<string, string> {
  const m = delta.metadata;
  // fromEntries, not assignment: a key named "__proto__" must stay an ordinary key.
  const tensors = Object.fromEntries(sortedTensors(delta).map((tensor) => [tensor.name, tensorRecord(tensor)]));
  const extra = Object.fromEntries(
    Object.keys(m.extra)
      .sort(compareCodeUnits)
      .map((key) => [key, m.extra[key]]),
  );
  return {
    format: DELTA_FORMAT,
    format_version: DELTA_FORMAT_VERSION,
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

function parseTensorRecords(text: string): Map<string, TensorRecord> {
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
    records.set(name, { shape, encoding, rescale });
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
  if (get('format_version') !== DELTA_FORMAT_VERSION) {
    throw badMetadata(
      `format_version ${quoteBounded(get('format_version'))} is unknown; this reader knows ${JSON.stringify(DELTA_FORMAT_VERSION)}`,
    );
  }
  const seed = parseJsonValue('seed', get('seed'));
  if (seed !== null && typeof seed !== 'number')
    throw badMetadata(`seed is ${quoteBounded(get('seed'))}, not a JSON number or null`);
  const metadata: DeltaMetadata = {
    formatVersion: 1,
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
  return { metadata, tensors: parseTensorRecords(get('tensors')) };
}

// ---- entries ----------------------------------------------------------------------------------

/** The safetensors entries one tensor occupies, with their sizes: what the layout needs. */
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
