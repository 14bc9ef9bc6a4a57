/**
 * Rewrites the base graph for mixed-task batches (see weight-uses.ts for the cases). The base
 * weights stay initializers; what varies per request enters as inputs whose leading dimension
 * is the batch:
 *   - `side` sites: the MatMul's output becomes `MatMul(X, W) + D`, D an input the engine fills
 *     with the kernel's per-request `X·Δ (+ Δb)` between segments;
 *   - additive/sliced/norm parameters: one input per weight, `[items, ...shape]`, reshaped
 *     in-graph to broadcast against the tensor it is added to (whatever that tensor's rank);
 *   - gathered tables: one input per Gather, shaped like its output, holding the Δ rows of the
 *     request's ids.
 * Each rewritten node keeps its original output name for its consumers, so the rest of the
 * graph is untouched.
 *
 * With `sidePath: 'custom-op'` (one ORT session, native/ort-custom-op) a side site instead keeps
 * its MatMul and bias Add as they are (ORT's MatMul+Add fusions stay) and gets
 * `Y = ai.deltaserve.SideAdd(Y0, X, item_deltas)` after them: the op adds each item's `X·Δ + Δb`
 * in place, reading the deltas by handle; `item_deltas` is one int64 input `[items]`.
 */
import onnxProto from 'onnx-proto';
import { filledFloatTensor, int64Tensor, readIntTensor, valueInfo } from '../../../onnx/graph-parts.js';
import { classifyWeightUses, constantTensor, consumersByTensor, type WeightUse } from './weight-uses.js';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type GraphProto = onnxProto.onnx.IGraphProto;
type TensorProto = onnxProto.onnx.ITensorProto;

export interface SideSitePlan {
  /** The input D is fed through (`[...X dims without the last, outDim]`). */
  readonly input: string;
  /** The MatMul's own output, `X·W`, to which D is added. */
  readonly base: string;
  /** The tensor X the kernel reads, produced by an earlier segment. */
  readonly x: string;
  readonly weight: string;
  readonly bias: string | null;
  /**
   * The base bias added right after the MatMul, folded into D (`D = X·Δ + b + Δb`) so the
   * site costs no more elementwise passes than the plain graph; its Add node is gone. Null when
   * the MatMul's output is not just biased.
   */
  readonly baseBias: string | null;
  readonly inDim: number;
  readonly outDim: number;
}

/** A per-request parameter input: `[items, ...itemShape]`, the request's Δ (`delta`) or the weight's full value (`value`). */
export interface ParamInputPlan {
  readonly input: string;
  readonly weight: string;
  readonly feeds: 'delta' | 'value';
  readonly itemShape: readonly number[];
}

export interface GatherInputPlan {
  /** Fed `[...ids dims, ...rowShape]` of Δ rows (zeros where a request's task leaves the table alone). */
  readonly input: string;
  readonly weight: string;
  readonly ids: string;
  readonly rowShape: readonly number[];
}

/** How a side site gets its per-request `X·Δ`: an input D filled between segments, or the custom op. */
export type SidePathStyle = 'segment-input' | 'custom-op';

/** The custom op's domain and name (native/ort-custom-op/side_op.h) and its per-item handle input. */
export const SIDE_OP_DOMAIN = 'ai.deltaserve';
export const SIDE_OP_TYPE = 'SideAdd';
export const ITEM_DELTAS_INPUT = 'deltaserve::item_deltas';

export interface MixedGraph {
  readonly graph: GraphProto;
  readonly sites: readonly SideSitePlan[];
  readonly params: readonly ParamInputPlan[];
  readonly gathers: readonly GatherInputPlan[];
  /** Patchable weights a delta may touch in a mixed batch; the rest, with why, below. */
  readonly served: ReadonlySet<string>;
  readonly unsupported: ReadonlyMap<string, string>;
}

export function rewriteForMixedBatches(
  graph: GraphProto,
  weights: ReadonlyMap<string, readonly number[]>,
  sidePath: SidePathStyle = 'segment-input',
): MixedGraph {
  const uses = classifyWeightUses(graph, weights);
  const builder = new RewriteBuilder(graph, weights, uses, sidePath);
  return builder.build();
}

class RewriteBuilder {
  private readonly sites: SideSitePlan[] = [];
  private readonly params: ParamInputPlan[] = [];
  private readonly gathers: GatherInputPlan[] = [];
  private readonly extraInitializers: TensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly paramInputs = new Map<string, string>();
  private counter = 0;

  constructor(
    private readonly graph: GraphProto,
    private readonly weights: ReadonlyMap<string, readonly number[]>,
    private readonly uses: Map<string, WeightUse>,
    private readonly sidePath: SidePathStyle,
  ) {}

  build(): MixedGraph {
    const folds = this.biasFolds();
    const foldedAdds = new Set([...folds.values()].map((f) => f.add));
    // A patchable bias that cannot fold (its MatMul's output is read elsewhere too) is an addend like any other.
    for (const [name, use] of this.uses) {
      if (use.kind === 'bias' && ![...folds.values()].some((f) => f.bias === name))
        this.uses.set(name, { kind: 'additive', consumers: [use.add] });
    }
    const nodes: NodeProto[] = [];
    if (this.sidePath === 'custom-op') {
      this.addInput(ITEM_DELTAS_INPUT, onnx.TensorProto.DataType.INT64, ['items']);
      const foldOf = new Map([...folds].map(([matMul, fold]) => [fold.add, matMul]));
      for (const original of this.graph.node ?? []) {
        const matMul = foldOf.get(original);
        // The op follows the bias Add (before it, ORT would lose its MatMul+Add → Gemm fusions).
        if (matMul) nodes.push(...this.sideOpAfter(original, matMul, folds.get(matMul)!.bias));
        else if (folds.has(original)) nodes.push(original);
        else nodes.push(...this.rewriteNode(original, null));
      }
    } else {
      for (const original of this.graph.node ?? []) {
        if (!foldedAdds.has(original)) nodes.push(...this.rewriteNode(original, folds.get(original) ?? null));
      }
    }
    const served = new Set<string>();
    const unsupported = new Map<string, string>();
    for (const [name, use] of this.uses) {
      if (use.kind === 'unsupported') unsupported.set(name, use.reason);
      else served.add(name);
    }
    return {
      graph: {
        ...this.graph,
        node: nodes,
        initializer: [...(this.graph.initializer ?? []), ...this.extraInitializers],
        input: [...(this.graph.input ?? []), ...this.inputs],
      },
      sites: this.sites,
      params: this.params,
      gathers: this.gathers,
      served,
      unsupported,
    };
  }

  private useOf(name: string | undefined | null): WeightUse | undefined {
    return name ? this.uses.get(name) : undefined;
  }

  /**
   * Side-site MatMuls whose only consumer is `Add(Y, b)` with `b` a 1-D initializer of the
   * output width, which is not patchable or is this site's own bias.
   */
  private biasFolds(): Map<NodeProto, { add: NodeProto; bias: string }> {
    const consumers = consumersByTensor(this.graph);
    const outputs = new Set((this.graph.output ?? []).map((o) => o.name ?? ''));
    const folds = new Map<NodeProto, { add: NodeProto; bias: string }>();
    for (const node of this.graph.node ?? []) {
      if (node.opType !== 'MatMul' || this.useOf(node.input?.[1])?.kind !== 'side') continue;
      const output = node.output![0]!;
      const readers = consumers.get(output) ?? [];
      if (readers.length !== 1 || outputs.has(output) || readers[0]!.node.opType !== 'Add') continue;
      const add = readers[0]!.node;
      const bias = add.input![1 - readers[0]!.index] ?? '';
      const dims = this.initializerDims(bias);
      const outDim = this.weights.get(node.input![1]!)![1];
      if (dims.length !== 1 || dims[0] !== outDim || this.initializerType(bias) !== onnx.TensorProto.DataType.FLOAT)
        continue;
      const use = this.useOf(bias);
      if (use !== undefined && !(use.kind === 'bias' && use.site === node)) continue;
      folds.set(node, { add, bias });
    }
    return folds;
  }

  private rewriteNode(original: NodeProto, fold: { add: NodeProto; bias: string } | null): NodeProto[] {
    const node: NodeProto = { ...original, input: [...(original.input ?? [])], output: [...(original.output ?? [])] };
    switch (node.opType) {
      case 'MatMul': {
        const weight = node.input![1]!;
        if (this.useOf(weight)?.kind !== 'side') return [node];
        if (this.sidePath === 'custom-op') return this.sideOpAfter(original, node, null);
        const [inDim, outDim] = this.weights.get(weight)!;
        const output = node.output![0]!;
        const input = `${output}::side_delta`;
        const base = `${output}::base`;
        const patchableBias = fold && this.useOf(fold.bias)?.kind === 'bias' ? fold.bias : null;
        this.sites.push({
          input,
          base,
          x: node.input![0]!,
          weight,
          bias: patchableBias,
          baseBias: fold?.bias ?? null,
          inDim: inDim!,
          outDim: outDim!,
        });
        this.addInput(input, onnx.TensorProto.DataType.FLOAT, null); // any shape that broadcasts against X·W
        node.output![0] = base;
        // With a folded bias, the sum takes the bias Add's output name and that Add is dropped.
        return [
          node,
          {
            opType: 'Add',
            name: `${output}::add_side`,
            input: [base, input],
            output: [fold ? fold.add.output![0]! : output],
          },
        ];
      }
      case 'Add':
      case 'Expand':
      case 'Slice': {
        const operandIndex =
          node.opType === 'Add' ? node.input!.findIndex((i) => this.useOf(i)?.kind === 'additive') : 0;
        const weight = node.input![operandIndex];
        const use = this.useOf(weight);
        if (operandIndex < 0 || !weight || (use?.kind !== 'additive' && use?.kind !== 'sliced')) return [node];
        const output = node.output![0]!;
        const pre = `${output}::pre_delta`;
        node.output![0] = pre;
        if (use.kind === 'sliced') {
          const perItem = this.paramInput(weight, 'delta', this.weights.get(weight)!);
          const axes = `${output}::item_axes`;
          this.extraInitializers.push(this.shiftedAxes(node.input![3]!, axes));
          const sliced = `${output}::sliced_delta`;
          const sliceInputs = [
            perItem,
            node.input![1]!,
            node.input![2]!,
            axes,
            ...(node.input![4] ? [node.input![4]] : []),
          ];
          return [
            node,
            { opType: 'Slice', name: sliced, input: sliceInputs, output: [sliced] },
            { opType: 'Add', name: `${output}::add_delta`, input: [pre, sliced], output: [output] },
          ];
        }
        const itemShape = stripLeadingOnes(this.weights.get(weight)!);
        const perItem = this.paramInput(weight, 'delta', itemShape);
        const { nodes, output: adapted } = this.broadcastPerItem(perItem, pre, itemShape.length);
        return [
          node,
          ...nodes,
          { opType: 'Add', name: `${output}::add_delta`, input: [pre, adapted], output: [output] },
        ];
      }
      case 'LayerNormalization': {
        const scale = node.input![1]!;
        const shift = node.input![2] ?? '';
        const scaleServed = this.useOf(scale)?.kind === 'norm';
        const shiftServed = this.useOf(shift)?.kind === 'norm';
        if (!scaleServed && !shiftServed) return [node];
        const output = node.output![0]!;
        const normalized = `${output}::normalized`;
        const scaleShape = this.weights.get(scale) ?? this.initializerDims(scale);
        const ones = `${output}::unit_scale`;
        this.extraInitializers.push(filledFloatTensor(ones, scaleShape, 1));
        node.input = [node.input![0]!, ones];
        node.output = [normalized];
        const out: NodeProto[] = [node];
        const scaleOperand = scaleServed ? this.broadcastParam(scale, normalized, scaleShape, out) : scale;
        const scaled = `${output}::scaled`;
        out.push({ opType: 'Mul', name: scaled, input: [normalized, scaleOperand], output: [scaled] });
        if (shift) {
          const shiftOperand = shiftServed
            ? this.broadcastParam(shift, normalized, this.weights.get(shift)!, out)
            : shift;
          out.push({ opType: 'Add', name: `${output}::shifted`, input: [scaled, shiftOperand], output: [output] });
        } else {
          out.push({ opType: 'Identity', name: `${output}::shifted`, input: [scaled], output: [output] });
        }
        return out;
      }
      case 'Gather': {
        const table = node.input![0]!;
        if (this.useOf(table)?.kind !== 'gather') return [node];
        const output = node.output![0]!;
        const input = `${output}::gathered_delta`;
        const rowShape = this.weights.get(table)!.slice(1);
        this.gathers.push({ input, weight: table, ids: node.input![1]!, rowShape });
        this.addInput(input, onnx.TensorProto.DataType.FLOAT, null);
        const pre = `${output}::pre_delta`;
        node.output![0] = pre;
        return [node, { opType: 'Add', name: `${output}::add_delta`, input: [pre, input], output: [output] }];
      }
      default:
        return [node];
    }
  }

  /**
   * `producer` (a side MatMul, or the bias Add after it) now writes `Y0`; the custom op turns it
   * into the original output. `bias` is the folded bias, passed to the op only when patchable.
   */
  private sideOpAfter(producer: NodeProto, matMul: NodeProto, bias: string | null): NodeProto[] {
    const weight = matMul.input![1]!;
    const [inDim, outDim] = this.weights.get(weight)!;
    const output = producer.output![0]!;
    const base = `${output}::base`;
    const patchableBias = bias && this.useOf(bias)?.kind === 'bias' ? bias : null;
    this.sites.push({
      input: ITEM_DELTAS_INPUT,
      base,
      x: matMul.input![0]!,
      weight,
      bias: patchableBias,
      baseBias: null, // stays in the graph's own Add
      inDim: inDim!,
      outDim: outDim!,
    });
    const renamed: NodeProto = { ...producer, input: [...(producer.input ?? [])], output: [base] };
    const attribute = (name: string, value: string): onnxProto.onnx.IAttributeProto => ({
      name,
      type: onnx.AttributeProto.AttributeType.STRING,
      s: new TextEncoder().encode(value),
    });
    return [
      renamed,
      {
        opType: SIDE_OP_TYPE,
        domain: SIDE_OP_DOMAIN,
        name: `${output}::side_op`,
        input: [base, matMul.input![0]!, ITEM_DELTAS_INPUT],
        output: [output],
        attribute: [attribute('weight', weight), attribute('bias', patchableBias ?? '')],
      },
    ];
  }

  private broadcastParam(weight: string, target: string, shape: readonly number[], out: NodeProto[]): string {
    const perItem = this.paramInput(weight, 'value', shape);
    const { nodes, output } = this.broadcastPerItem(perItem, target, shape.length);
    out.push(...nodes);
    return output;
  }

  /** One input per weight, shared by all its consumers. */
  private paramInput(weight: string, feeds: 'delta' | 'value', itemShape: readonly number[]): string {
    const key = `${weight}::${feeds}`;
    let input = this.paramInputs.get(key);
    if (!input) {
      input = `${weight}::per_request_${feeds}`;
      this.paramInputs.set(key, input);
      this.params.push({ input, weight, feeds, itemShape });
      this.addInput(input, onnx.TensorProto.DataType.FLOAT, ['items', ...itemShape]);
    }
    return input;
  }

  /**
   * Reshapes `[items, ...itemShape]` to `[items, 1, …, 1, ...itemShape]` with as many ones as
   * make its rank equal the target's, so it broadcasts item by item against the target.
   */
  private broadcastPerItem(perItem: string, target: string, itemRank: number): { nodes: NodeProto[]; output: string } {
    const id = `${perItem}::to_${target}::${this.counter++}`;
    const names = {
      shape: `${id}::target_shape`,
      rank: `${id}::target_rank`,
      pad: `${id}::pad`,
      ones: `${id}::ones`,
      own: `${id}::own_shape`,
      head: `${id}::items`,
      tail: `${id}::item_dims`,
      full: `${id}::shape`,
      out: `${id}::broadcast`,
    };
    const int64 = (name: string, values: number[]) => this.extraInitializers.push(int64Tensor(name, values));
    const [c0, c1, cEnd, cPad] = [`${id}::c0`, `${id}::c1`, `${id}::cend`, `${id}::cpad`];
    int64(c0, [0]);
    int64(c1, [1]);
    int64(cEnd, [Number.MAX_SAFE_INTEGER]);
    int64(cPad, [itemRank + 1]);
    const nodes: NodeProto[] = [
      { opType: 'Shape', name: names.shape, input: [target], output: [names.shape] },
      { opType: 'Shape', name: names.rank, input: [names.shape], output: [names.rank] },
      { opType: 'Sub', name: names.pad, input: [names.rank, cPad], output: [names.pad] },
      {
        opType: 'ConstantOfShape',
        name: names.ones,
        input: [names.pad],
        output: [names.ones],
        attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: int64Tensor('one', [1]) }],
      },
      { opType: 'Shape', name: names.own, input: [perItem], output: [names.own] },
      { opType: 'Slice', name: names.head, input: [names.own, c0, c1], output: [names.head] },
      { opType: 'Slice', name: names.tail, input: [names.own, c1, cEnd], output: [names.tail] },
      {
        opType: 'Concat',
        name: names.full,
        input: [names.head, names.ones, names.tail],
        output: [names.full],
        attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
      },
      { opType: 'Reshape', name: names.out, input: [perItem, names.full], output: [names.out] },
    ];
    return { nodes, output: names.out };
  }

  private shiftedAxes(axesName: string, name: string): TensorProto {
    const values = readIntTensor(constantTensor(this.graph, axesName)!);
    return int64Tensor(
      name,
      values.map((a) => (a < 0 ? a : a + 1)),
    );
  }

  private initializerType(name: string): number | undefined {
    return (this.graph.initializer ?? []).find((t) => t.name === name)?.dataType ?? undefined;
  }

  private initializerDims(name: string): number[] {
    const tensor = (this.graph.initializer ?? []).find((t) => t.name === name);
    return (tensor?.dims ?? []).map(Number);
  }

  /** `dims` null: any rank. */
  private addInput(name: string, elemType: number, dims: readonly (string | number)[] | null): void {
    this.inputs.push(valueInfo(name, elemType, dims));
  }
}

function stripLeadingOnes(shape: readonly number[]): number[] {
  let start = 0;
  while (start < shape.length - 1 && shape[start] === 1) start++;
  return shape.slice(start);
}
