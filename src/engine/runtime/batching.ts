/**
 * Joins requests for one task into one ORT run along the batch dimension (dim 0) and splits
 * the outputs back. Requests can share a run only when every input has the same dims after
 * the first; the engine groups them by that signature.
 */
import { allocate, elementCount, type EngineTensor, type NamedTensors, type TensorData } from '../tensors.js';

/** Requests with equal signatures can be concatenated. */
export function batchSignature(inputs: NamedTensors): string {
  return Object.keys(inputs)
    .sort()
    .map((name) => {
      const t = inputs[name]!;
      return `${name}:${t.type}:${t.dims.slice(1).join('x')}`;
    })
    .join('|');
}

export function batchSizeOf(inputs: NamedTensors): number {
  const first = Object.values(inputs)[0];
  return first?.dims[0] ?? 0;
}

export function concatBatch(requests: readonly NamedTensors[]): NamedTensors {
  if (requests.length === 1) return requests[0]!;
  const names = Object.keys(requests[0]!);
  const joined: Record<string, EngineTensor> = {};
  for (const name of names) {
    const parts = requests.map((r) => r[name]!);
    const first = parts[0]!;
    const total = parts.reduce((n, p) => n + p.dims[0]!, 0);
    const data = allocate(
      first.type,
      parts.reduce((n, p) => n + p.data.length, 0),
    );
    let offset = 0;
    for (const part of parts) {
      (data as Float32Array).set(part.data as Float32Array, offset);
      offset += part.data.length;
    }
    joined[name] = { type: first.type, dims: [total, ...first.dims.slice(1)], data };
  }
  return joined;
}

/** Splits every output along dim 0 into pieces of the given batch sizes. */
export function splitBatch(outputs: NamedTensors, sizes: readonly number[]): NamedTensors[] {
  if (sizes.length === 1) return [outputs];
  const total = sizes.reduce((a, b) => a + b, 0);
  const pieces: Record<string, EngineTensor>[] = sizes.map(() => ({}));
  for (const [name, tensor] of Object.entries(outputs)) {
    if (tensor.dims[0] !== total) {
      throw new RangeError(`output ${name} has leading dim ${tensor.dims[0]}, expected the batch size ${total}`);
    }
    const row = elementCount(tensor.dims.slice(1));
    let start = 0;
    sizes.forEach((size, i) => {
      const data = tensor.data.slice(start * row, (start + size) * row) as TensorData;
      pieces[i]![name] = { type: tensor.type, dims: [size, ...tensor.dims.slice(1)], data };
      start += size;
    });
  }
  return pieces;
}
