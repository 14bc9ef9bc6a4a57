/**
 * How the mixed engine can give each request its own task's value of a weight, decided from
 * the weight's consumers in the base graph. A weight the mode cannot serve per request makes
 * every task whose delta touches it fall back to per-task batches (patch mode).
 *
 *   side        W [in, out] read only as MatMul's B input: ORT computes X·W with W pre-packed,
 *               the side-path kernel adds X·Δ per request between segments.
 *   bias        b [out] read only by the Add right after a `side` MatMul: folded into that D.
 *   additive    P read only by Add (either operand) or as Expand's input: its output gets the
 *               request's Δ added, broadcast per batch item.
 *   sliced      P read only as Slice's data with constant axes (a position table cut to the
 *               sequence length): Δ is sliced the same way, one axis further out, and added.
 *   norm        LayerNormalization scale/bias: the graph normalises with (1, 0) and applies each
 *               request's scale and shift itself.
 *   gather      an embedding table read only by Gather(axis 0) with graph-input ids: the rows
 *               of Δ for the request's ids are added on the host side.
 */
import type onnxProto from 'onnx-proto';

type NodeProto = onnxProto.onnx.INodeProto;
type GraphProto = onnxProto.onnx.IGraphProto;

export type WeightUse =
  | { readonly kind: 'side'; readonly sites: readonly NodeProto[] }
  | { readonly kind: 'bias'; readonly site: NodeProto; readonly add: NodeProto }
  | { readonly kind: 'additive'; readonly consumers: readonly NodeProto[] }
  | { readonly kind: 'sliced'; readonly consumers: readonly NodeProto[] }
  | { readonly kind: 'norm'; readonly consumers: readonly NodeProto[] }
  | { readonly kind: 'gather'; readonly consumers: readonly NodeProto[] }
  | { readonly kind: 'unsupported'; readonly reason: string };

interface Consumer {
  readonly node: NodeProto;
  readonly index: number;
}

export function classifyWeightUses(
  graph: GraphProto,
  weights: ReadonlyMap<string, readonly number[]>,
): Map<string, WeightUse> {
  const consumers = consumersByTensor(graph);
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const graphInputs = new Set((graph.input ?? []).map((i) => i.name ?? '').filter((name) => !initializers.has(name)));
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const uses = new Map<string, WeightUse>();

  const sideSiteOf = (add: NodeProto): NodeProto | null => {
    for (const input of add.input ?? []) {
      const producer = producers.get(input);
      if (
        producer?.opType === 'MatMul' &&
        weights.has(producer.input?.[1] ?? '') &&
        (consumers.get(input) ?? []).length === 1 &&
        !graphOutputs.has(input)
      ) {
        return producer;
      }
    }
    return null;
  };
  const producers = new Map<string, NodeProto>();
  for (const node of graph.node ?? []) for (const output of node.output ?? []) producers.set(output, node);

  for (const [name, shape] of weights) {
    const uses_ = consumers.get(name) ?? [];
    uses.set(name, classifyOne(name, shape, uses_));
  }
  return uses;

  function classifyOne(name: string, shape: readonly number[], used: readonly Consumer[]): WeightUse {
    if (graphOutputs.has(name)) return { kind: 'unsupported', reason: `${name} is a graph output` };
    if (used.length === 0) return { kind: 'unsupported', reason: `${name} is not read by any node` };
    const ops = new Set(used.map((c) => c.node.opType));
    if (ops.size !== 1) return { kind: 'unsupported', reason: `${name} is read by ${[...ops].join(' and ')}` };
    const op = used[0]!.node.opType ?? '';
    switch (op) {
      case 'MatMul':
        if (shape.length === 2 && used.every((c) => c.index === 1))
          return { kind: 'side', sites: used.map((c) => c.node) };
        return { kind: 'unsupported', reason: `${name} is a MatMul operand other than a 2-D right-hand weight` };
      case 'Add': {
        if (used.length === 1 && shape.length === 1) {
          const site = sideSiteOf(used[0]!.node);
          if (site && site.input?.[1] !== name && lastDim(weights.get(site.input![1]!)) === shape[0]) {
            return { kind: 'bias', site, add: used[0]!.node };
          }
        }
        // The addend is per batch item, so the other operand must carry the batch (not be a constant).
        const constantOperand = used.find((c) => constantTensor(graph, c.node.input?.[1 - c.index] ?? '') !== null);
        if (constantOperand)
          return { kind: 'unsupported', reason: `${name} is added to a constant, which has no batch dimension` };
        return { kind: 'additive', consumers: used.map((c) => c.node) };
      }
      case 'Expand':
        if (used.every((c) => c.index === 0)) return { kind: 'additive', consumers: used.map((c) => c.node) };
        return { kind: 'unsupported', reason: `${name} is an Expand shape` };
      case 'Slice': {
        const ok = used.every((c) => c.index === 0 && constantTensor(graph, c.node.input?.[3] ?? '') !== null);
        if (!ok)
          return { kind: 'unsupported', reason: `${name} is sliced along axes that are not a constant initializer` };
        // Its per-item Δ keeps the table's full shape, so a leading 1 would add a dimension.
        if (shape[0] === 1)
          return { kind: 'unsupported', reason: `${name} is sliced and has a leading dimension of 1` };
        return { kind: 'sliced', consumers: used.map((c) => c.node) };
      }
      case 'LayerNormalization':
        if (used.every((c) => (c.index === 1 || c.index === 2) && (c.node.output ?? []).filter(Boolean).length === 1)) {
          return { kind: 'norm', consumers: used.map((c) => c.node) };
        }
        return { kind: 'unsupported', reason: `${name} is a LayerNormalization input other than scale or bias` };
      case 'Gather': {
        const ok = used.every(
          (c) => c.index === 0 && graphInputs.has(c.node.input?.[1] ?? '') && gatherAxis(c.node) === 0,
        );
        if (ok) return { kind: 'gather', consumers: used.map((c) => c.node) };
        return {
          kind: 'unsupported',
          reason: `${name} is gathered with ids that are not a graph input, or along an axis other than 0`,
        };
      }
      default:
        return {
          kind: 'unsupported',
          reason: `${name} is read by ${op}, which mixed batches cannot apply per request`,
        };
    }
  }
}

/** The value of an initializer or a Constant node's output, or null when `name` is computed. */
export function constantTensor(graph: GraphProto, name: string): onnxProto.onnx.ITensorProto | null {
  if (!name) return null;
  const initializer = (graph.initializer ?? []).find((t) => t.name === name);
  if (initializer) return initializer;
  const node = (graph.node ?? []).find((n) => n.opType === 'Constant' && n.output?.[0] === name);
  return (node?.attribute ?? []).find((a) => a.name === 'value')?.t ?? null;
}

function lastDim(weight: readonly number[] | undefined): number | undefined {
  return weight?.[weight.length - 1];
}

function gatherAxis(node: NodeProto): number {
  const axis = (node.attribute ?? []).find((a) => a.name === 'axis');
  return axis ? Number(axis.i ?? 0) : 0;
}

export function consumersByTensor(graph: GraphProto): Map<string, Consumer[]> {
  const consumers = new Map<string, Consumer[]>();
  for (const node of graph.node ?? []) {
    (node.input ?? []).forEach((input, index) => {
      if (!input) return;
      const list = consumers.get(input) ?? [];
      list.push({ node, index });
      consumers.set(input, list);
    });
  }
  return consumers;
}
