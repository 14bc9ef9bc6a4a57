/**
 * Rewrites the base model's graph at start-up for the chosen activation mode, so users load a
 * plain ONNX file and never run a conversion step themselves.
 *
 * - patch: the patchable weights stop being initializers and become graph inputs with the same
 *   names; the engine feeds them from buffers it owns and patches in place.
 * - graph: the weights stay initializers (resident on the device under a GPU provider (CUDA, WebGPU), where
 *   onnxruntime-node copies every input on every run — docs/onnxruntime-facts.md §7) and each gets two small
 *   inputs, the active delta's indices and values, merged in-graph:
 *     W' = Reshape(ScatterElements(Reshape(W, [-1]), indices, values, axis=0, reduction=add), shape(W))
 *   Every consumer of W reads W' instead. ScatterElements' reduction needs opset ≥ 16, so the
 *   default-domain opset is raised to 16 when lower (ops this project's models use did not
 *   change meaning between 13 and 16; models below opset 13 are refused).
 *
 * Only top-level graph nodes are rewired; a weight used inside a subgraph (If/Loop) is refused
 * rather than silently left unpatched.
 */
import onnxProto from 'onnx-proto';
import { DS_ERR_ONNX_INVALID } from '../../core/errors.js';
import { int64Tensor, valueInfo } from '../../onnx/graph-parts.js';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;

export const deltaIndicesInput = (weight: string): string => `${weight}::delta_indices`;
export const deltaValuesInput = (weight: string): string => `${weight}::delta_values`;
const mergedName = (weight: string): string => `${weight}::merged`;
const FLAT_SHAPE = 'deltaserve::flat_shape';

export function exposeWeightsAsInputs(model: ModelProto, weights: ReadonlyMap<string, readonly number[]>): ModelProto {
  const graph = requireGraph(model);
  assertNoSubgraphUse(graph, weights);
  const initializer = graph.initializer.filter((t) => !weights.has(t.name ?? ''));
  const existingInputs = new Set(graph.input.map((i) => i.name));
  const input = [
    ...graph.input,
    ...[...weights]
      .filter(([name]) => !existingInputs.has(name))
      .map(([name, shape]) => valueInfo(name, onnx.TensorProto.DataType.FLOAT, shape)),
  ];
  return withGraph(model, { ...graph, initializer, input });
}

export function addSparseDeltaInputs(model: ModelProto, weights: ReadonlyMap<string, readonly number[]>): ModelProto {
  const graph = requireGraph(model);
  assertNoSubgraphUse(graph, weights);
  const renamed = (name: string): string => (weights.has(name) ? mergedName(name) : name);
  const mergeNodes: onnxProto.onnx.INodeProto[] = [];
  const shapes: onnxProto.onnx.ITensorProto[] = [int64Tensor(FLOAT_SHAPE_VALUE.name, FLOAT_SHAPE_VALUE.values)];
  const deltaInputs: onnxProto.onnx.IValueInfoProto[] = [];
  for (const [name, shape] of weights) {
    const shapeName = `${name}::shape`;
    shapes.push(int64Tensor(shapeName, shape));
    deltaInputs.push(
      valueInfo(deltaIndicesInput(name), onnx.TensorProto.DataType.INT32, ['nnz']),
      valueInfo(deltaValuesInput(name), onnx.TensorProto.DataType.FLOAT, ['nnz']),
    );
    mergeNodes.push(
      { opType: 'Reshape', input: [name, FLAT_SHAPE], output: [`${name}::flat`], name: `${name}::flatten` },
      {
        opType: 'ScatterElements',
        input: [`${name}::flat`, deltaIndicesInput(name), deltaValuesInput(name)],
        output: [`${name}::merged_flat`],
        name: `${name}::scatter_add`,
        attribute: [
          { name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 },
          { name: 'reduction', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('add') },
        ],
      },
      {
        opType: 'Reshape',
        input: [`${name}::merged_flat`, shapeName],
        output: [mergedName(name)],
        name: `${name}::unflatten`,
      },
    );
  }
  const node = [...mergeNodes, ...graph.node.map((n) => ({ ...n, input: (n.input ?? []).map(renamed) }))];
  const output = graph.output.map((o) => o); // graph outputs never name weights in models we accept
  const upgraded = withGraph(model, {
    ...graph,
    node,
    output,
    initializer: [...graph.initializer, ...shapes],
    input: [...graph.input, ...deltaInputs],
  });
  return withMinimumOpset(upgraded, 16);
}

const FLOAT_SHAPE_VALUE = { name: FLAT_SHAPE, values: [-1] };

function withMinimumOpset(model: ModelProto, minimum: number): ModelProto {
  const imports = model.opsetImport.map((o) => ({ ...o }));
  const main = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
  const version = Number(main?.version ?? 0);
  if (version < 13) throw new DS_ERR_ONNX_INVALID('base', `graph mode needs opset >= 13 (found ${version})`);
  if (main && version < minimum) main.version = minimum;
  return onnx.ModelProto.create({ ...model, opsetImport: imports });
}

function requireGraph(model: ModelProto): onnxProto.onnx.GraphProto {
  if (!model.graph) throw new DS_ERR_ONNX_INVALID('base', 'model has no graph');
  return model.graph as onnxProto.onnx.GraphProto;
}

function withGraph(model: ModelProto, graph: onnxProto.onnx.IGraphProto): ModelProto {
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create(graph) });
}

function assertNoSubgraphUse(graph: onnxProto.onnx.IGraphProto, weights: ReadonlyMap<string, unknown>): void {
  const visit = (g: onnxProto.onnx.IGraphProto, nested: boolean): void => {
    for (const node of g.node ?? []) {
      if (nested) {
        const used = (node.input ?? []).find((i) => weights.has(i));
        if (used)
          throw new DS_ERR_ONNX_INVALID(
            'base',
            `weight ${used} is used inside a subgraph, which delta activation does not support`,
          );
      }
      for (const attribute of node.attribute ?? []) {
        if (attribute.g) visit(attribute.g, true);
        for (const sub of attribute.graphs ?? []) visit(sub, true);
      }
    }
  };
  visit(graph, false);
}
