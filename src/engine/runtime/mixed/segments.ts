/**
 * Cuts the rewritten graph into segments that run one after another, because the side-path
 * kernel runs between ORT runs (onnxruntime-node cannot load custom-op libraries): a site's
 * `MatMul(X, W) + D` must run in a later segment than the one producing X, since D is computed
 * from X on the host. A node's level is the highest level among its inputs, and one more than
 * X's for a site's MatMul; each level is a segment. Tensors crossing segments are outputs of the
 * producing segment and inputs of every later segment that reads them (CPU tensors pass by
 * reference, docs/onnxruntime-facts.md §2); weights stay initializers of the segment that reads
 * them, so ORT pre-packs them as in one session.
 */
import onnxProto from 'onnx-proto';
import { DS_ERR_ONNX_INVALID } from '../../../core/errors.js';
import type { SideSitePlan } from './mixed-rewrite.js';

const { onnx } = onnxProto;
type GraphProto = onnxProto.onnx.IGraphProto;
type NodeProto = onnxProto.onnx.INodeProto;
type ModelProto = onnxProto.onnx.IModelProto;

export interface Segment {
  readonly model: ModelProto;
  /** Names fed to this segment's run: graph inputs, per-request inputs, earlier segments' outputs. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Sites whose D this segment takes: computed from their X right before this run. */
  readonly sites: readonly SideSitePlan[];
  /** Tensors no segment after this one reads (the engine drops them after this run). */
  readonly lastUse: readonly string[];
}

export function cutIntoSegments(model: ModelProto, graph: GraphProto, sites: readonly SideSitePlan[]): Segment[] {
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const level = new Map<string, number>();
  for (const input of graph.input ?? []) level.set(input.name ?? '', 0);
  const siteByInput = new Map(sites.map((s) => [s.input, s]));
  const siteByBase = new Map(sites.map((s) => [s.base, s]));
  const nodesByLevel: NodeProto[][] = [];
  for (const node of graph.node ?? []) {
    let nodeLevel = 0;
    for (const input of node.input ?? []) {
      if (!input || initializers.has(input)) continue;
      const site = siteByInput.get(input);
      nodeLevel = Math.max(nodeLevel, site ? levelOf(site.x) + 1 : levelOf(input));
    }
    // A site's MatMul runs in the segment that takes its D, not in the one that produces X.
    const site = siteByBase.get(node.output?.[0] ?? '');
    if (site) nodeLevel = Math.max(nodeLevel, levelOf(site.x) + 1);
    for (const output of node.output ?? []) if (output) level.set(output, nodeLevel);
    (nodesByLevel[nodeLevel] ??= []).push(node);
  }

  const types = inferElementTypes(graph);
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const readers = new Map<string, number[]>();
  nodesByLevel.forEach((nodes, k) => {
    for (const node of nodes ?? [])
      for (const input of node.input ?? [])
        if (input && !initializers.has(input)) (readers.get(input) ?? readers.set(input, []).get(input)!).push(k);
  });
  const segments: Segment[] = [];
  const count = nodesByLevel.length;
  for (let k = 0; k < count; k++) {
    const nodes = nodesByLevel[k] ?? [];
    const produced = new Set(nodes.flatMap((n) => (n.output ?? []).filter(Boolean)));
    const inputs = new Set<string>();
    const usedInitializers = new Set<string>();
    for (const node of nodes) {
      for (const input of node.input ?? []) {
        if (!input || produced.has(input)) continue;
        if (initializers.has(input)) usedInitializers.add(input);
        else inputs.add(input);
      }
    }
    const outputs = [...produced].filter(
      (name) => graphOutputs.has(name) || (readers.get(name) ?? []).some((r) => r > k),
    );
    const valueInfo = (name: string) => {
      const elemType = types.get(name);
      if (elemType === undefined)
        throw new DS_ERR_ONNX_INVALID(
          'base',
          `mixed mode cannot tell the element type of ${name}, which crosses a segment boundary`,
        );
      return { name, type: { tensorType: { elemType } } };
    };
    const segmentGraph: GraphProto = {
      name: `${graph.name ?? 'graph'}::segment_${k}`,
      node: nodes,
      initializer: [...usedInitializers].map((name) => initializers.get(name)!),
      input: [...inputs].map(valueInfo),
      output: outputs.map(valueInfo),
    };
    const lastUse = [...inputs, ...outputs].filter(
      (name) => !graphOutputs.has(name) && Math.max(k, ...(readers.get(name) ?? [])) === k,
    );
    segments.push({
      model: onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create(segmentGraph) }),
      inputs: [...inputs],
      outputs,
      sites: sites.filter((s) => inputs.has(s.input)),
      lastUse,
    });
  }
  return segments.filter((s) => (s.model.graph?.node ?? []).length > 0);

  function levelOf(name: string): number {
    if (initializers.has(name)) return 0;
    const l = level.get(name);
    if (l === undefined)
      throw new DS_ERR_ONNX_INVALID(
        'base',
        `${name} is read before any node produces it (nodes must be in topological order)`,
      );
    return l;
  }
}

const T = onnx.TensorProto.DataType;
const SAME_AS_FIRST = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'MatMul',
  'Gemm',
  'Relu',
  'Sigmoid',
  'Tanh',
  'Erf',
  'Exp',
  'Log',
  'Sqrt',
  'Neg',
  'Abs',
  'Softmax',
  'LogSoftmax',
  'LayerNormalization',
  'Reshape',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Flatten',
  'Slice',
  'Concat',
  'Gather',
  'GatherElements',
  'Expand',
  'Identity',
  'Split',
  'Tile',
  'Pad',
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'Max',
  'Min',
  'Clip',
  'Dropout',
  'Gelu',
  'FastGelu',
  'BiasGelu',
  'SkipLayerNormalization',
  'Conv',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'BatchNormalization',
  'Einsum',
  'CumSum',
  'Range',
  'Neg',
  'Reciprocal',
  'HardSigmoid',
  'LeakyRelu',
  'Elu',
  'Selu',
  'Softplus',
  'ScatterND',
  'ScatterElements',
  'Resize',
  'DepthToSpace',
  'SpaceToDepth',
  'InstanceNormalization',
  'GroupNormalization',
  'ReduceL2',
  'Floor',
  'Ceil',
  'Round',
  'Sin',
  'Cos',
  'Mod',
  'Trilu',
]);
const BOOL_OPS = new Set([
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'IsNaN',
  'IsInf',
]);
const INT64_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin']);

/** Element types of every tensor, from declared value infos and a forward pass over the ops this project's models use. */
export function inferElementTypes(graph: GraphProto): Map<string, number> {
  const types = new Map<string, number>();
  for (const info of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    const elemType = info.type?.tensorType?.elemType;
    if (elemType) types.set(info.name ?? '', elemType);
  }
  for (const tensor of graph.initializer ?? []) if (tensor.dataType) types.set(tensor.name ?? '', tensor.dataType);
  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    const inputs = node.input ?? [];
    const attr = (name: string) => (node.attribute ?? []).find((a) => a.name === name);
    let type: number | undefined;
    if (SAME_AS_FIRST.has(op)) type = types.get(inputs[0] ?? '');
    else if (op === 'Where') type = types.get(inputs[1] ?? '');
    else if (BOOL_OPS.has(op)) type = T.BOOL;
    else if (INT64_OPS.has(op)) type = T.INT64;
    else if (op === 'Cast') type = Number(attr('to')?.i ?? 0) || undefined;
    else if (op === 'ConstantOfShape') type = attr('value')?.t?.dataType ?? T.FLOAT;
    else if (op === 'Constant')
      type =
        attr('value')?.t?.dataType ??
        (attr('value_float') || attr('value_floats')
          ? T.FLOAT
          : attr('value_int') || attr('value_ints')
            ? T.INT64
            : undefined);
    for (const output of (node.output ?? []).slice(0, op === 'Split' ? undefined : 1)) {
      if (output && type !== undefined && !types.has(output)) types.set(output, type);
    }
  }
  return types;
}
