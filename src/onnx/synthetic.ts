/**
 * Synthetic BERT-like encoders for tests and benchmarks, generated in memory from a seed (never
 * committed as files). The graph is what a PyTorch export of a post-LN BERT classifier looks
 * like at opset 17, minus the attention mask: token + position embeddings, LayerNormalization,
 * then per layer multi-head self-attention and a GELU feed-forward block, each followed by a
 * residual add and LayerNormalization, then the first token's state through a linear classifier.
 *
 * Only learnable weights are initializers (all fp32, readable names such as
 * `layer.3.attn.q.weight`); scalars and shape constants are Constant nodes, so "every float
 * initializer" means "every weight" for deltas and fine-tunes alike.
 */
import { DS_ERR_CLI_USAGE } from '../core/errors.js';
import { SeededRng } from '../core/rng.js';
import { onnx } from './proto.js';
import { float32ToLittleEndian, HOST_IS_LITTLE_ENDIAN, int64ToLittleEndian } from './tensor-layout.js';
import { readFloatWeights, withFloatWeights } from './weights.js';

export interface EncoderShape {
  readonly layers: number;
  readonly hidden: number;
  /** Width of the feed-forward block's inner layer. */
  readonly ffn: number;
  readonly heads: number;
  readonly vocab: number;
  /** Longest sequence the position table covers. */
  readonly maxSeq: number;
  /** Classifier outputs. */
  readonly labels: number;
}

export interface SyntheticEncoderOptions extends EncoderShape {
  readonly seed: number;
  /** Default-domain opset, 17 (the first with LayerNormalization) to 23; default 17. */
  readonly opset?: number;
}

/** BERT-base widths (~85 M parameters in the linear layers) with a small vocabulary. */
export const BERT_BASE_SHAPE: EncoderShape = {
  layers: 12,
  hidden: 768,
  ffn: 3072,
  heads: 12,
  vocab: 1024,
  maxSeq: 128,
  labels: 2,
};

/** Small enough for unit tests (~19 k parameters). */
export const TINY_ENCODER: EncoderShape = {
  layers: 2,
  hidden: 32,
  ffn: 64,
  heads: 4,
  vocab: 50,
  maxSeq: 16,
  labels: 3,
};

const WEIGHT_STD = 0.02;
const LAYER_NORM_EPSILON = 1e-12;

/** IR version of the ONNX release that introduced each opset (onnx/onnx docs/Versioning.md). */
const IR_VERSION_FOR_OPSET: Readonly<Record<number, number>> = { 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11 };

export function buildSyntheticEncoder(options: SyntheticEncoderOptions): onnx.ModelProto {
  const opset = options.opset ?? 17;
  checkOptions(options, opset);
  const { layers, hidden, ffn, heads, vocab, maxSeq, labels } = options;
  const g = new GraphBuilder(new SeededRng(options.seed));

  const headDim = hidden / heads;
  const scale = g.constFloat('attn_scale', 1 / Math.sqrt(headDim));
  const half = g.constFloat('half', 0.5);
  const one = g.constFloat('one', 1);
  const invSqrt2 = g.constFloat('inv_sqrt2', Math.SQRT1_2);
  const splitHeads = g.constInt64('split_heads_shape', [0, 0, heads, headDim]);
  const mergeHeads = g.constInt64('merge_heads_shape', [0, 0, hidden]);
  const zero = g.constInt64('zero', [0]);
  const firstToken = g.constInt64('first_token', 0);

  const tokens = g.op('Gather', [g.normal('embeddings.token.weight', [vocab, hidden]), 'input_ids']);
  const seqLen = g.op('Shape', ['input_ids'], [intAttribute('start', 1), intAttribute('end', 2)]);
  const positions = g.op('Slice', [g.normal('embeddings.position.weight', [maxSeq, hidden]), zero, seqLen, zero]);
  let x = g.layerNorm('embeddings.norm', g.op('Add', [tokens, positions]), hidden);

  for (let l = 0; l < layers; l++) {
    const p = `layer.${l}`;
    const heads4d = (name: string, perm: number[]): string =>
      g.op(
        'Transpose',
        [g.op('Reshape', [g.linear(`${p}.attn.${name}`, x, hidden, hidden), splitHeads])],
        [intsAttribute('perm', perm)],
      );
    const q = heads4d('q', [0, 2, 1, 3]); // [batch, heads, seq, headDim]
    const kT = heads4d('k', [0, 2, 3, 1]); // [batch, heads, headDim, seq]
    const v = heads4d('v', [0, 2, 1, 3]);
    const scores = g.op('Mul', [g.op('MatMul', [q, kT]), scale]);
    const context = g.op('MatMul', [g.op('Softmax', [scores], [intAttribute('axis', -1)]), v]);
    const merged = g.op('Reshape', [g.op('Transpose', [context], [intsAttribute('perm', [0, 2, 1, 3])]), mergeHeads]);
    const attended = g.linear(`${p}.attn.o`, merged, hidden, hidden);
    x = g.layerNorm(`${p}.attn.norm`, g.op('Add', [x, attended]), hidden);

    const up = g.linear(`${p}.ffn.up`, x, hidden, ffn);
    // GELU, erf form: 0.5 · u · (1 + erf(u / √2)); a Gelu op only exists from opset 20.
    const gelu = g.op('Mul', [g.op('Mul', [up, half]), g.op('Add', [g.op('Erf', [g.op('Mul', [up, invSqrt2])]), one])]);
    const down = g.linear(`${p}.ffn.down`, gelu, ffn, hidden);
    x = g.layerNorm(`${p}.ffn.norm`, g.op('Add', [x, down]), hidden);
  }

  const pooled = g.op('Gather', [x, firstToken], [intAttribute('axis', 1)]);
  const logits = g.linear('classifier', pooled, hidden, labels, 'logits');

  return onnx.ModelProto.create({
    irVersion: IR_VERSION_FOR_OPSET[opset] ?? 8,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'deltaserve-synthetic',
    metadataProps: [{ key: 'deltaserve.synthetic', value: JSON.stringify({ ...options, opset }) }],
    graph: {
      name: `synthetic-encoder-${layers}x${hidden}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [tensorValue('input_ids', onnx.TensorProto.DataType.INT64, ['batch', 'seq'])],
      output: [tensorValue(logits, onnx.TensorProto.DataType.FLOAT, ['batch', labels])],
    },
  });
}

export interface SyntheticFinetuneOptions {
  /**
   * Standard deviation of the N(0, scale) noise added to every float weight, hence of the delta
   * (fine-tuned − base). Default 0.002, the size of a typical SFT delta (the DARE paper: ±0.002–0.005).
   * Unlike a real fine-tune's delta the noise is i.i.d. and carries no task signal: good for
   * sizes, speeds and DARE's reconstruction error, not for accuracy studies.
   */
  readonly scale?: number;
  readonly seed: number;
}

/** A "fine-tune" of `model`: same graph, every float initializer plus N(0, scale) noise. */
export function syntheticFinetune(model: onnx.IModelProto, options: SyntheticFinetuneOptions): onnx.ModelProto {
  const scale = options.scale ?? 0.002;
  if (!(scale >= 0) || !Number.isFinite(scale))
    throw new DS_ERR_CLI_USAGE(`syntheticFinetune: scale must be a finite number ≥ 0, got ${scale}`);
  const rng = new SeededRng(options.seed);
  const tuned = new Map<string, Float32Array>();
  for (const [name, { data }] of readFloatWeights(model)) {
    addGaussian(rng, data, scale);
    tuned.set(name, data);
  }
  return withFloatWeights(model, tuned);
}

function checkOptions(options: SyntheticEncoderOptions, opset: number): void {
  const fail = (reason: string): never => {
    throw new DS_ERR_CLI_USAGE(`buildSyntheticEncoder: ${reason}`);
  };
  for (const key of ['layers', 'hidden', 'ffn', 'heads', 'vocab', 'maxSeq', 'labels'] as const) {
    const value = options[key];
    const least = key === 'layers' ? 0 : 1;
    if (!Number.isInteger(value) || value < least) fail(`${key} must be an integer ≥ ${least}, got ${value}`);
  }
  if (options.hidden % options.heads !== 0)
    fail(`hidden (${options.hidden}) must be divisible by heads (${options.heads})`);
  if (IR_VERSION_FOR_OPSET[opset] === undefined) fail(`opset must be an integer from 17 to 23, got ${opset}`);
}

/** Adds N(0, std) to every element (Box–Muller, both values of each pair used). */
function addGaussian(rng: SeededRng, target: Float32Array, std: number): void {
  const n = target.length;
  for (let i = 0; i < n; i += 2) {
    const radius = std * Math.sqrt(-2 * Math.log(rng.nextOpenFloat()));
    const angle = 2 * Math.PI * rng.nextFloat();
    target[i]! += radius * Math.cos(angle);
    if (i + 1 < n) target[i + 1]! += radius * Math.sin(angle);
  }
}

function tensorValue(name: string, elemType: number, dims: readonly (string | number)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** Collects nodes and initializers; generated names are unique per node. */
class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(private readonly rng: SeededRng) {}

  /** Adds a node with one output and returns that output's name. */
  op(opType: string, inputs: string[], attribute: onnx.IAttributeProto[] = [], output?: string): string {
    const name = `${opType.toLowerCase()}_${this.counter++}`;
    const out = output ?? `${name}_out`;
    this.nodes.push({
      name,
      opType,
      input: inputs,
      output: [out],
      attribute,
    });
    return out;
  }

  /** MatMul by an [inputs, outputs] weight, plus a bias: `${prefix}.weight`, `${prefix}.bias`. */
  linear(prefix: string, x: string, inputs: number, outputs: number, output?: string): string {
    const product = this.op('MatMul', [x, this.normal(`${prefix}.weight`, [inputs, outputs])]);
    return this.op('Add', [product, this.filled(`${prefix}.bias`, [outputs], 0)], [], output);
  }

  layerNorm(prefix: string, x: string, width: number): string {
    return this.op(
      'LayerNormalization',
      [x, this.filled(`${prefix}.weight`, [width], 1), this.filled(`${prefix}.bias`, [width], 0)],
      [intAttribute('axis', -1), floatAttribute('epsilon', LAYER_NORM_EPSILON)],
    );
  }

  normal(name: string, dims: number[]): string {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    addGaussian(this.rng, data, WEIGHT_STD);
    return this.weight(name, dims, data);
  }

  filled(name: string, dims: number[], value: number): string {
    return this.weight(name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value));
  }

  constFloat(name: string, value: number): string {
    return this.constant(name, {
      dataType: onnx.TensorProto.DataType.FLOAT,
      dims: [],
      rawData: float32ToLittleEndian([value]),
    });
  }

  /** An int64 constant: a scalar for a number, a 1-D tensor for an array. */
  constInt64(name: string, value: number | number[]): string {
    const values = Array.isArray(value) ? value : [value];
    const dims = Array.isArray(value) ? [value.length] : [];
    return this.constant(name, {
      dataType: onnx.TensorProto.DataType.INT64,
      dims,
      rawData: int64ToLittleEndian(values),
    });
  }

  private constant(name: string, tensor: onnx.ITensorProto): string {
    this.nodes.push({
      name: `const.${name}`,
      opType: 'Constant',
      output: [name],
      attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { name, ...tensor } }],
    });
    return name;
  }

  private weight(name: string, dims: number[], data: Float32Array): string {
    // Little-endian hosts can hand the array's memory to protobuf as is: it is ours alone.
    const rawData = HOST_IS_LITTLE_ENDIAN
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : float32ToLittleEndian(data);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData });
    return name;
  }
}

function intAttribute(name: string, value: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

function intsAttribute(name: string, values: number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}

function floatAttribute(name: string, value: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value };
}
