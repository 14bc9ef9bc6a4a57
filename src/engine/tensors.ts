/**
 * The tensors requests carry into the engine and results carry back: plain typed arrays with
 * dims, so they cross the worker boundary by transfer (no copy) and map straight onto
 * `ort.Tensor`.
 */
export type ElementType = 'float32' | 'int64' | 'int32' | 'uint8' | 'bool';

export type TensorData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

export interface EngineTensor {
  readonly type: ElementType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export type NamedTensors = Readonly<Record<string, EngineTensor>>;

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function allocate(type: ElementType, length: number): TensorData {
  switch (type) {
    case 'float32':
      return new Float32Array(length);
    case 'int64':
      return new BigInt64Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'uint8':
    case 'bool':
      return new Uint8Array(length);
  }
}

/** The ArrayBuffers behind a set of tensors, for `postMessage(..., transferList)`. */
export function transferablesOf(sets: readonly NamedTensors[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const set of sets) {
    for (const tensor of Object.values(set)) {
      const buffer = tensor.data.buffer;
      // Only transfer buffers the tensor covers completely: a view into a larger pooled buffer
      // (e.g. Node's Buffer pool) must be copied, or transferring would detach unrelated data.
      if (
        buffer instanceof ArrayBuffer &&
        tensor.data.byteOffset === 0 &&
        tensor.data.byteLength === buffer.byteLength
      ) {
        buffers.add(buffer);
      }
    }
  }
  return [...buffers];
}

const BY_KSERVE_DATATYPE: Readonly<Record<string, ElementType>> = {
  FP32: 'float32',
  INT64: 'int64',
  INT32: 'int32',
  UINT8: 'uint8',
  BOOL: 'bool',
};

/** The engine element type for a KServe datatype, or null when the engine cannot carry it. */
export function elementTypeOf(datatype: string): ElementType | null {
  return BY_KSERVE_DATATYPE[datatype] ?? null;
}
