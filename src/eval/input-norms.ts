/**
 * ‖xᵢ‖ for the importance mask: the norm of each input feature of every MatMul weight over the
 * calibration inputs. The model is copied with the MatMuls' activation inputs added as graph
 * outputs and run through the engine's own CPU path (LocalRunner), like eval; only weights
 * that are MatMul's B operand as a 2-D [inputs, outputs] initializer get norms, which covers
 * the projections of transformer exports. Everything else (biases, norms, embeddings, Gemm
 * with transposed weights) falls back to |δ| alone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InputFeatureNorms } from '../compress/importance-mask.js';
import { loadOnnxModel, saveOnnxModel } from '../onnx/model-file.js';
import { onnx } from '../onnx/proto.js';
import { tensorShape } from '../onnx/tensor-layout.js';
import { sliceSamples, type SampleSet } from './dataset.js';
import { LocalRunner } from './local-runner.js';

/** Weight name → name of the activation it multiplies, for MatMul(x, W) with W a 2-D initializer. */
export function matMulActivations(model: onnx.IModelProto): Map<string, string> {
  const shapes = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', tensorShape(t)]));
  const taps = new Map<string, string>();
  for (const node of model.graph?.node ?? []) {
    if (node.opType !== 'MatMul' || (node.input?.length ?? 0) !== 2) continue;
    const [activation, weight] = node.input as [string, string];
    const shape = shapes.get(weight);
    if (!Array.isArray(shape) || shape.length !== 2 || shapes.has(activation)) continue;
    // A weight shared by two MatMuls would need both inputs' norms; keep the first use only.
    if (!taps.has(weight)) taps.set(weight, activation);
  }
  return taps;
}

/** The same model with `activations` as extra float outputs. */
export function withActivationOutputs(model: onnx.IModelProto, activations: Iterable<string>): onnx.ModelProto {
  const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const graph = copy.graph!;
  graph.output ??= [];
  const existing = new Set(graph.output.map((o) => o.name));
  for (const name of new Set(activations)) {
    if (existing.has(name)) continue;
    graph.output.push(
      onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }),
    );
  }
  return copy;
}

/** Input-feature norms of every MatMul weight of `modelPath` over `calibration`. */
export async function inputFeatureNorms(
  modelPath: string,
  calibration: SampleSet,
  batchSize = 32,
): Promise<Map<string, InputFeatureNorms>> {
  const model = await loadOnnxModel(modelPath);
  const taps = matMulActivations(model);
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-norms-'));
  try {
    const tapped = join(dir, 'tapped.onnx');
    await saveOnnxModel(withActivationOutputs(model, taps.values()), tapped);
    const runner = await LocalRunner.open(tapped);
    const sums = new Map<string, Float64Array>();
    try {
      for (let start = 0; start < calibration.size; start += batchSize) {
        const outputs = await runner.run(
          sliceSamples(calibration.inputs, start, Math.min(calibration.size, start + batchSize)),
          null,
        );
        for (const activation of new Set(taps.values())) {
          const tensor = outputs[activation];
          if (!tensor) throw new Error(`activation ${activation} was not returned by the tapped model`);
          const width = tensor.dims[tensor.dims.length - 1]!;
          const data = tensor.data as Float32Array;
          const sum = sums.get(activation) ?? new Float64Array(width);
          for (let k = 0; k < data.length; k++) sum[k % width] = sum[k % width]! + data[k]! * data[k]!;
          sums.set(activation, sum);
        }
      }
    } finally {
      await runner.close();
    }
    const norms = new Map<string, InputFeatureNorms>();
    const shapes = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', tensorShape(t)]));
    for (const [weight, activation] of taps) {
      const [rows, cols] = shapes.get(weight) as number[];
      const sum = sums.get(activation);
      if (!sum || sum.length !== rows) continue;
      norms.set(weight, { norms: Float32Array.from(sum, Math.sqrt), rowLength: cols! });
    }
    return norms;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
