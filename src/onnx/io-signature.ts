/**
 * What a model takes and returns, in the Open Inference Protocol's (KServe V2) vocabulary:
 * the source of model metadata responses and of request validation.
 */
import { DS_ERR_ONNX_INVALID } from '../core/errors.js';
import { onnx } from './proto.js';
import { dataTypeName, int64ToNumber } from './tensor-layout.js';

/** KServe V2 tensor datatypes (BF16 is Triton's addition). */
export type KServeDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BF16'
  | 'BYTES';

const KSERVE_DATATYPES: Readonly<Record<number, KServeDatatype>> = {
  1: 'FP32',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'BYTES',
  9: 'BOOL',
  10: 'FP16',
  11: 'FP64',
  12: 'UINT32',
  13: 'UINT64',
  16: 'BF16',
};

export interface TensorSignature {
  readonly name: string;
  readonly datatype: KServeDatatype;
  /** Dimensions, -1 where the model leaves one open; null when the model declares no rank at all. */
  readonly shape: readonly number[] | null;
  /** Symbolic name of each dimension (`batch`, `seq`...), null for fixed or anonymous ones. */
  readonly dimNames: readonly (string | null)[] | null;
}

export interface ModelIO {
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
}

/**
 * Graph inputs (minus initializers listed as inputs, an old exporter habit that makes weights
 * look overridable) and graph outputs. Throws DS_ERR_ONNX_INVALID for an input or output that
 * is not a tensor, or whose element type has no KServe datatype.
 */
export function describeModelIO(model: onnx.IModelProto): ModelIO {
  const label = model.graph?.name || 'in-memory model';
  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (model.graph?.input ?? [])
    .filter((value) => !initializers.has(value.name ?? ''))
    .map((value) => signature(value, 'input', label));
  const outputs = (model.graph?.output ?? []).map((value) => signature(value, 'output', label));
  return { inputs, outputs };
}

function signature(value: onnx.IValueInfoProto, role: 'input' | 'output', label: string): TensorSignature {
  const name = value.name ?? '';
  const tensorType = value.type?.tensorType;
  if (!tensorType)
    throw new DS_ERR_ONNX_INVALID(
      label,
      `${role} "${name}" is not a tensor (sequences, maps and optionals cannot be served)`,
    );
  const datatype = KSERVE_DATATYPES[tensorType.elemType ?? 0];
  if (datatype === undefined) {
    throw new DS_ERR_ONNX_INVALID(
      label,
      `${role} "${name}" has element type ${dataTypeName(tensorType.elemType)}, which has no KServe datatype`,
    );
  }
  if (!tensorType.shape) return { name, datatype, shape: null, dimNames: null };
  const dims = tensorType.shape.dim ?? [];
  const shape = dims.map((dim) => {
    // Decoded messages inherit dimValue = 0 from the prototype when the dim is symbolic or
    // unknown, so only an own property means the model fixed the size.
    const fixed =
      Object.hasOwn(dim, 'dimValue') && dim.dimValue != null && !dim.dimParam ? int64ToNumber(dim.dimValue) : null;
    return fixed !== null && fixed >= 0 ? fixed : -1;
  });
  const dimNames = dims.map((dim) => dim.dimParam || null);
  return { name, datatype, shape, dimNames };
}
