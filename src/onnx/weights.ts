/**
 * The fp32 weights of a model as plain typed arrays: what deltas are computed from and applied
 * to. Only FLOAT initializers count as weights; integer constants (shapes, indices) and other
 * float types are left alone.
 */
import { DS_ERR_ONNX_INCOMPATIBLE, DS_ERR_ONNX_INVALID } from '../core/errors.js';
import { onnx } from './proto.js';
import {
  elementCount,
  float32FromLittleEndian,
  float32ToLittleEndian,
  formatShape,
  tensorShape,
} from './tensor-layout.js';

export interface FloatWeight {
  readonly shape: number[];
  /** Row-major values in a fresh, aligned array the caller owns. */
  readonly data: Float32Array;
}

/** Every FLOAT initializer, by name, in graph order; the arrays are copies. */
export function readFloatWeights(model: onnx.IModelProto): Map<string, FloatWeight> {
  const weights = new Map<string, FloatWeight>();
  for (const tensor of floatInitializers(model)) {
    const { name, shape, count } = describe(model, tensor);
    if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      throw invalid(model, `initializer "${name}" still references external data; load the model with loadOnnxModel`);
    }
    const raw = tensor.rawData;
    let data: Float32Array;
    if (raw && raw.byteLength > 0) {
      if (raw.byteLength !== count * 4)
        throw invalid(model, `initializer "${name}" has ${raw.byteLength} bytes of raw_data, expected ${count * 4}`);
      data = float32FromLittleEndian(raw);
    } else {
      const values = tensor.floatData ?? [];
      if (values.length !== count)
        throw invalid(model, `initializer "${name}" has ${values.length} values in float_data, expected ${count}`);
      data = Float32Array.from(values);
    }
    weights.set(name, { shape, data });
  }
  return weights;
}

/** Name → shape of every FLOAT initializer, without touching the data. */
export function weightShapes(model: onnx.IModelProto): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const tensor of floatInitializers(model)) {
    const { name, shape } = describe(model, tensor);
    shapes.set(name, shape);
  }
  return shapes;
}

/**
 * A new model whose named FLOAT initializers hold `replacements` (copied, as little-endian
 * raw_data). The input model is not modified; untouched sub-messages are shared with it, so
 * treat both as immutable.
 */
export function withFloatWeights(
  model: onnx.IModelProto,
  replacements: ReadonlyMap<string, Float32Array>,
): onnx.ModelProto {
  const shapes = weightShapes(model);
  for (const [name, values] of replacements) {
    const shape = shapes.get(name);
    if (shape === undefined) throw new DS_ERR_ONNX_INCOMPATIBLE(`"${name}" is not a float initializer of the model`);
    const count = elementCount(shape) ?? Number.NaN;
    if (values.length !== count) {
      throw new DS_ERR_ONNX_INCOMPATIBLE(
        `replacement for "${name}" has ${values.length} values but its shape ${formatShape(shape)} holds ${count}`,
      );
    }
  }
  const initializer = (model.graph?.initializer ?? []).map((tensor) => {
    const values =
      tensor.dataType === onnx.TensorProto.DataType.FLOAT ? replacements.get(tensor.name ?? '') : undefined;
    if (values === undefined) return tensor;
    return onnx.TensorProto.create({
      name: tensor.name ?? '',
      dims: tensor.dims ?? [],
      dataType: onnx.TensorProto.DataType.FLOAT,
      ...(tensor.docString ? { docString: tensor.docString } : {}),
      rawData: float32ToLittleEndian(values),
    });
  });
  return onnx.ModelProto.create({ ...model, graph: { ...model.graph, initializer } });
}

/**
 * Checks that `finetuned` is the same network as `base` with other weight values: the same
 * float initializer names and shapes, and the same nodes (op type, inputs, outputs) in the same
 * order. Throws DS_ERR_ONNX_INCOMPATIBLE naming the first difference.
 */
export function assertSameGraph(base: onnx.IModelProto, finetuned: onnx.IModelProto): void {
  const baseShapes = weightShapes(base);
  const tunedShapes = weightShapes(finetuned);
  for (const [name, shape] of baseShapes) {
    const other = tunedShapes.get(name);
    if (other === undefined)
      throw new DS_ERR_ONNX_INCOMPATIBLE(`weight "${name}" of the base is missing from the fine-tuned model`);
    if (formatShape(other) !== formatShape(shape)) {
      throw new DS_ERR_ONNX_INCOMPATIBLE(
        `weight "${name}" has shape ${formatShape(shape)} in the base but ${formatShape(other)} in the fine-tuned model`,
      );
    }
  }
  for (const name of tunedShapes.keys()) {
    if (!baseShapes.has(name))
      throw new DS_ERR_ONNX_INCOMPATIBLE(`weight "${name}" of the fine-tuned model is not in the base`);
  }
  const baseNodes = base.graph?.node ?? [];
  const tunedNodes = finetuned.graph?.node ?? [];
  for (let i = 0; i < Math.max(baseNodes.length, tunedNodes.length); i++) {
    const a = baseNodes[i];
    const b = tunedNodes[i];
    if (a === undefined || b === undefined) {
      throw new DS_ERR_ONNX_INCOMPATIBLE(
        `the base has ${baseNodes.length} nodes but the fine-tuned model has ${tunedNodes.length}`,
      );
    }
    const left = nodeSignature(a);
    const right = nodeSignature(b);
    if (left !== right)
      throw new DS_ERR_ONNX_INCOMPATIBLE(`node #${i} is ${left} in the base but ${right} in the fine-tuned model`);
  }
}

function nodeSignature(node: onnx.INodeProto): string {
  const op = node.domain ? `${node.domain}.${node.opType ?? ''}` : (node.opType ?? '');
  return `${op}(${(node.input ?? []).join(', ')}) -> (${(node.output ?? []).join(', ')})`;
}

function floatInitializers(model: onnx.IModelProto): onnx.ITensorProto[] {
  return (model.graph?.initializer ?? []).filter((t) => t.dataType === onnx.TensorProto.DataType.FLOAT);
}

function describe(
  model: onnx.IModelProto,
  tensor: onnx.ITensorProto,
): { name: string; shape: number[]; count: number } {
  const name = tensor.name ?? '';
  const shape = tensorShape(tensor);
  if (typeof shape === 'string') throw invalid(model, `initializer "${name}": ${shape}`);
  const count = elementCount(shape);
  if (count === null) throw invalid(model, `initializer "${name}" has too many elements (${formatShape(shape)})`);
  return { name, shape, count };
}

function invalid(model: onnx.IModelProto, reason: string): Error {
  return new DS_ERR_ONNX_INVALID(model.graph?.name || 'in-memory model', reason);
}
