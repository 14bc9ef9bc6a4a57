/**
 * The map from a state dict's tensor names to the base ONNX model's initializers, and what is
 * known about the tensors that have none. Written as JSON (cached beside the base, or given
 * with `--name-map`); `version` 1:
 *
 *   { "version": 1, "baseFingerprint": "<sha256 of the ONNX weights>",
 *     "baseWeightsSha256": "<sha256 of the base state-dict file>" | null,
 *     "tensors": { "<state-dict name>": { "initializer": "<ONNX name>", "layout": "same" | "transposed" | "reshaped",
 *                                         "shape": [<state-dict shape>] } },
 *     "unmatched": { "<state-dict name>": { "kind": "shape" | "value" | "fused" | "ambiguous", "reason": "..." } },
 *     "unmappedInitializers": [ "<ONNX names no state-dict tensor maps to>" ] }
 *
 * `transposed`: the state-dict tensor is the initializer's transpose (nn.Linear's [out, in]
 * against MatMul's [in, out]); `reshaped`: the same values in row-major order under another
 * shape (e.g. a bias stored as [1, n]).
 */
import { DS_ERR_NAME_MAP } from '../../core/errors.js';

export type NameMapLayout = 'same' | 'transposed' | 'reshaped';
export type UnmatchedKind = 'shape' | 'value' | 'fused' | 'ambiguous';

export interface NameMapEntry {
  readonly initializer: string;
  readonly layout: NameMapLayout;
  readonly shape: readonly number[];
}

export interface UnmatchedTensor {
  readonly kind: UnmatchedKind;
  readonly reason: string;
}

export interface NameMap {
  readonly version: 1;
  readonly baseFingerprint: string;
  readonly baseWeightsSha256: string | null;
  readonly tensors: Readonly<Record<string, NameMapEntry>>;
  readonly unmatched: Readonly<Record<string, UnmatchedTensor>>;
  readonly unmappedInitializers: readonly string[];
}

const LAYOUTS: readonly string[] = ['same', 'transposed', 'reshaped'];
const KINDS: readonly string[] = ['shape', 'value', 'fused', 'ambiguous'];

/** Checks a parsed JSON value is a NameMap; `label` names the file in errors. */
export function validateNameMap(value: unknown, label: string): NameMap {
  const fail = (why: string): never => {
    throw new DS_ERR_NAME_MAP(`${label}: ${why}`);
  };
  if (!isRecord(value)) return fail('not a JSON object');
  if (value.version !== 1) fail(`"version" must be 1, got ${JSON.stringify(value.version)}`);
  if (typeof value.baseFingerprint !== 'string' || value.baseFingerprint === '')
    fail('"baseFingerprint" must be the base ONNX weights fingerprint (a non-empty string)');
  if (value.baseWeightsSha256 !== null && typeof value.baseWeightsSha256 !== 'string')
    fail('"baseWeightsSha256" must be a string or null');
  if (!isRecord(value.tensors)) return fail('"tensors" must be an object of state-dict name → entry');
  for (const [name, entry] of Object.entries(value.tensors)) {
    if (
      !isRecord(entry) ||
      typeof entry.initializer !== 'string' ||
      !LAYOUTS.includes(entry.layout as string) ||
      !Array.isArray(entry.shape) ||
      !entry.shape.every((d) => Number.isInteger(d) && d >= 0)
    ) {
      fail(
        `tensors[${JSON.stringify(name)}] must be {"initializer": string, "layout": "same"|"transposed"|"reshaped", "shape": [ints]}`,
      );
    }
  }
  const unmatched = value.unmatched ?? {};
  if (!isRecord(unmatched)) return fail('"unmatched" must be an object');
  for (const [name, entry] of Object.entries(unmatched)) {
    if (!isRecord(entry) || !KINDS.includes(entry.kind as string) || typeof entry.reason !== 'string')
      fail(`unmatched[${JSON.stringify(name)}] must be {"kind": ..., "reason": string}`);
  }
  const unmapped = value.unmappedInitializers ?? [];
  if (!Array.isArray(unmapped) || !unmapped.every((n) => typeof n === 'string'))
    fail('"unmappedInitializers" must be an array of strings');
  return {
    version: 1,
    baseFingerprint: value.baseFingerprint as string,
    baseWeightsSha256: (value.baseWeightsSha256 as string | null | undefined) ?? null,
    tensors: value.tensors as Record<string, NameMapEntry>,
    unmatched: unmatched as Record<string, UnmatchedTensor>,
    unmappedInitializers: unmapped as string[],
  };
}

/** Canonical JSON text: keys sorted so equal maps give equal files. */
export function serializeNameMap(map: NameMap): string {
  const sorted = <T>(record: Readonly<Record<string, T>>) =>
    Object.fromEntries(
      Object.keys(record)
        .sort()
        .map((k) => [k, record[k]]),
    );
  const text = JSON.stringify(
    {
      version: map.version,
      baseFingerprint: map.baseFingerprint,
      baseWeightsSha256: map.baseWeightsSha256,
      tensors: sorted(map.tensors),
      unmatched: sorted(map.unmatched),
      unmappedInitializers: [...map.unmappedInitializers].sort(),
    },
    null,
    2,
  );
  // One line per shape: `"shape": [64, 49]` rather than one line per dimension.
  return `${text.replace(/\[\s+([\d,\s]*?)\s+\]/g, (_, dims: string) => `[${dims.split(/,\s*/).join(', ')}]`)}\n`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
