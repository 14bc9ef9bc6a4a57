/**
 * Small ONNX graph pieces the start-up rewrites build (graph and mixed modes): typed value
 * infos, constant tensors, and reading an integer constant back.
 */
import { DS_ERR_ONNX_INVALID } from '../core/errors.js';
import { onnx } from './proto.js';
import { int64ToNumber } from './tensor-layout.js';

/** A graph input/output declaration; `dims` null leaves the rank open. */
export function valueInfo(
  name: string,
  elemType: number,
  dims: readonly (number | string)[] | null,
): onnx.IValueInfoProto {
  const shape = dims && { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  return { name, type: { tensorType: { elemType, ...(shape && { shape }) } } };
}

export function int64Tensor(name: string, values: readonly number[]): onnx.ITensorProto {
  return { name, dataType: onnx.TensorProto.DataType.INT64, dims: [values.length], int64Data: [...values] };
}

/** A float tensor of `dims` with every element `value`. */
export function filledFloatTensor(name: string, dims: readonly number[], value: number): onnx.ITensorProto {
  const count = dims.reduce((a, b) => a * b, 1);
  return {
    name,
    dataType: onnx.TensorProto.DataType.FLOAT,
    dims: [...dims],
    floatData: new Array<number>(count).fill(value),
  };
}

/** The values of an INT32/INT64 constant (typed fields or raw little-endian data). */
export function readIntTensor(tensor: onnx.ITensorProto): number[] {
  const exact = (value: number | null): number => {
    if (value === null)
      throw new DS_ERR_ONNX_INVALID('base', `constant ${tensor.name ?? ''} holds an integer beyond 2^53`);
    return value;
  };
  if (tensor.int64Data && tensor.int64Data.length > 0) return tensor.int64Data.map((v) => exact(int64ToNumber(v)));
  if (tensor.int32Data && tensor.int32Data.length > 0) return [...tensor.int32Data];
  const raw = tensor.rawData;
  if (!raw) return [];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (tensor.dataType === onnx.TensorProto.DataType.INT32)
    return Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getInt32(i * 4, true));
  return Array.from({ length: raw.byteLength / 8 }, (_, i) =>
    exact(int64ToNumber(Number(view.getBigInt64(i * 8, true)))),
  );
}
