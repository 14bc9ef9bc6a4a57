/**
 * Version 2 keeps every sparse weight's streams in a handful of shared entries (`::gaps8`,
 * `::values`, `::codes4`, ...) and records each weight's slice of them in its `tensors` record.
 * One safetensors entry costs ~90 header bytes; with three per weight, the header of a small
 * model's p = 0.99 delta was four times its data. Shared entries make the header one record per
 * weight (docs/delta-format.md §2.2).
 */
import type { DeltaValueDtype, SparseTensorDelta } from '../types.js';
import { type StoredSparseLayout, type StoredValueEncoding } from './delta-schema.js';
import { columnPositionsFromIndices } from './column-order.js';
import { chooseIndexEncoding, encodeIndices, type IndexEncoding } from './index-codec.js';
import type { SafetensorsDtype, SafetensorsTensorInput } from './safetensors.js';

/** A shared stream: its entry name, its dtype, and which kinds of slices it holds. */
export interface PackedStream {
  readonly entry: string;
  readonly dtype: SafetensorsDtype;
}

export const INDEX_STREAMS: Readonly<Record<IndexEncoding, PackedStream>> = {
  gaps4: { entry: '::gaps4', dtype: 'U8' },
  gaps8: { entry: '::gaps8', dtype: 'U8' },
  gaps16: { entry: '::gaps16', dtype: 'U16' },
  bitmask: { entry: '::mask', dtype: 'U8' },
};

export function valueStream(values: StoredValueEncoding): PackedStream {
  switch (values) {
    case 'F32':
      return { entry: '::values', dtype: 'F32' };
    case 'F16':
      return { entry: '::values', dtype: 'F16' };
    case 'I8':
      return { entry: '::codes8', dtype: 'I8' };
    case 'I4':
      return { entry: '::codes4', dtype: 'U8' };
  }
}

export const SCALES_STREAM: PackedStream = { entry: '::scales', dtype: 'F16' };

type Chunk = Uint8Array | Uint16Array | Int8Array | Float32Array;

/** Collects slices per shared entry and hands out [begin, end) element ranges. */
class StreamBuilder {
  private readonly chunks = new Map<string, { dtype: SafetensorsDtype; parts: Chunk[]; length: number }>();

  append(stream: PackedStream, data: Chunk): [number, number] {
    let entry = this.chunks.get(stream.entry);
    if (entry === undefined) {
      entry = { dtype: stream.dtype, parts: [], length: 0 };
      this.chunks.set(stream.entry, entry);
    }
    const begin = entry.length;
    entry.parts.push(data);
    entry.length += data.length;
    return [begin, entry.length];
  }

  entries(): SafetensorsTensorInput[] {
    return [...this.chunks].map(([name, { dtype, parts, length }]) => {
      const first = parts[0]!;
      const Ctor = first.constructor as new (n: number) => Chunk;
      const out = new Ctor(length);
      let at = 0;
      for (const part of parts) {
        (out as Uint8Array).set(part, at);
        at += part.length;
      }
      return { name, dtype, shape: [length], data: out };
    });
  }
}

export interface PackedSparse {
  /** Each sparse weight's record fields, by name. */
  readonly layouts: Map<string, StoredSparseLayout>;
  /** Data bytes each sparse weight occupies in the shared entries, by name. */
  readonly bytes: Map<string, number>;
  readonly entries: SafetensorsTensorInput[];
}

/**
 * Lays out sparse weights (in the order given, which the caller makes canonical) into the shared
 * entries. `storedValues` turns fp32 values into what `valueDtype` stores (and checks them).
 */
export function packSparse(
  tensors: readonly SparseTensorDelta[],
  valueDtype: DeltaValueDtype,
  storedValues: (tensor: SparseTensorDelta) => Float32Array | Uint16Array,
): PackedSparse {
  const builder = new StreamBuilder();
  const layouts = new Map<string, StoredSparseLayout>();
  const bytes = new Map<string, number>();
  for (const tensor of tensors) {
    const numel = tensor.shape.reduce((a, b) => a * b, 1);
    const q = tensor.quantized;
    // Positions from the indices, not from `q.positions`: the indices are what the writer checked.
    const indices = q?.order === 'column' ? columnPositionsFromIndices(tensor.indices, tensor.shape) : tensor.indices;
    const index = chooseIndexEncoding(indices, numel);
    const indexData = encodeIndices(index, indices, numel);
    const indexAt = builder.append(INDEX_STREAMS[index], indexData);
    let size = indexData.byteLength;
    if (q === undefined) {
      const values = storedValues(tensor);
      const valuesAt = builder.append(valueStream(valueDtype), values);
      size += values.byteLength;
      layouts.set(tensor.name, {
        nnz: indices.length,
        index,
        indexAt,
        values: valueDtype,
        valuesAt,
      });
    } else {
      const valuesAt = builder.append(valueStream(q.encoding), q.codes);
      const scalesAt = builder.append(SCALES_STREAM, q.scales);
      size += q.codes.byteLength + q.scales.byteLength;
      layouts.set(tensor.name, {
        nnz: indices.length,
        index,
        indexAt,
        values: q.encoding,
        valuesAt,
        group: q.group,
        scalesAt,
        ...(q.order !== undefined && { order: q.order }),
      });
    }
    bytes.set(tensor.name, size);
  }
  return { layouts, bytes, entries: builder.entries() };
}
