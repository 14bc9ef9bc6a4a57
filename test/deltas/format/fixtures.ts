// Shared helpers for the format tests: a small valid delta, and ways to edit a valid file so
// that exactly one thing about it is wrong.
import assert from 'node:assert/strict';
import { SeededRng } from '../../../src/core/rng.js';
import {
  entryView,
  parseSafetensors,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsTensorInput,
} from '../../../src/deltas/format/safetensors.js';
import type { Delta, DeltaValueDtype, SparseTensorDelta } from '../../../src/deltas/types.js';
import { hasCode } from '../../helpers/errors.js';

export const FINGERPRINT = 'a'.repeat(64);

function randomSparse(rng: SeededRng, name: string, shape: number[], keep: number, rescale: number): SparseTensorDelta {
  const numel = shape.reduce((a, b) => a * b, 1);
  const indices: number[] = [];
  for (let i = 0; i < numel; i++) if (rng.nextFloat() < keep) indices.push(i);
  const values = Float32Array.from(indices, () => rng.nextNormal() * 0.004 * rescale);
  return { kind: 'sparse', name, shape, indices: Uint32Array.from(indices), values, rescale };
}

/** Two sparse weights and a dense head, like a tiny DARE'd encoder. */
export function sampleDelta(valueDtype: DeltaValueDtype = 'F32', seed = 7): Delta {
  const rng = new SeededRng(seed);
  return {
    metadata: {
      formatVersion: 1,
      baseFingerprint: FINGERPRINT,
      method: 'dare',
      dropRate: 0.9,
      rescale: 1 / (1 - 0.9),
      seed,
      valueDtype,
      sourceBaseSha256: 'b'.repeat(64),
      sourceFinetunedSha256: null,
      extra: { tool: 'test', note: 'ünïcode ✓' },
    },
    tensors: [
      randomSparse(rng, 'layer.0.query.weight', [16, 16], 0.1, 10),
      randomSparse(rng, 'layer.0.ffn.weight', [16, 64], 0.1, 10),
      {
        kind: 'dense',
        name: 'classifier.weight',
        shape: [2, 16],
        values: Float32Array.from({ length: 32 }, () => rng.nextNormal() * 0.01),
      },
    ],
  };
}

export function sampleBaseShapes(): Map<string, readonly number[]> {
  return new Map<string, readonly number[]>([
    ['layer.0.query.weight', [16, 16]],
    ['layer.0.ffn.weight', [16, 64]],
    ['classifier.weight', [2, 16]],
    ['embeddings.weight', [100, 16]],
  ]);
}

export function headerLength(file: Uint8Array): number {
  return Number(new DataView(file.buffer, file.byteOffset, file.byteLength).getBigUint64(0, true));
}

export function headerText(file: Uint8Array): string {
  return new TextDecoder().decode(file.subarray(8, 8 + headerLength(file)));
}

export type JsonHeader = Record<string, Record<string, unknown>>;

/** Replaces the header with `mutate(parsed header)` (or a raw string), keeping the data bytes. */
export function rewriteHeader(file: Uint8Array, mutate: ((header: JsonHeader) => unknown) | string): Uint8Array {
  const n = headerLength(file);
  const text = typeof mutate === 'string' ? mutate : JSON.stringify(mutate(JSON.parse(headerText(file)) as JsonHeader));
  const header = new TextEncoder().encode(text);
  const data = file.subarray(8 + n);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

export interface EditableEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: ArrayBufferView;
}

/**
 * Decomposes a valid file into entries and metadata, lets `edit` change them, and writes a
 * well-formed safetensors file again: the container stays valid, only the delta content changes.
 */
export function rebuild(
  file: Uint8Array,
  edit: (entries: Map<string, EditableEntry>, metadata: Record<string, string>) => void,
): Uint8Array {
  const parsed = parseSafetensors(file);
  const entries = new Map<string, EditableEntry>();
  for (const [name, entry] of parsed.tensors) {
    entries.set(name, {
      dtype: entry.dtype,
      shape: [...entry.shape],
      data: entryView(file, parsed.dataOffset, entry).slice(),
    });
  }
  const metadata = { ...parsed.metadata };
  edit(entries, metadata);
  const tensors: SafetensorsTensorInput[] = [...entries].map(([name, entry]) => ({ name, ...entry }));
  return writeSafetensors(tensors, metadata);
}

/** Asserts that `fn` throws an error with this `code` (and, optionally, a message matching). */
export function assertCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, hasCode(code, message));
}
