/**
 * Labelled (or unlabelled) sample sets for eval and calibration, stored as safetensors.
 * Two layouts are understood:
 * - image sets (the demo zoo's): `images` U8 [N, H, W] and optional `labels` U8 [N]; images
 *   are fed as float32 `x / 255`, reshaped to the model's single image input (e.g. [N, 1, H, W]);
 * - model-shaped sets: one tensor per model input, named like the input, plus optional `labels`.
 */
import { readInputFile } from '../core/read-input-file.js';
import { DS_ERR_DATASET_INVALID } from '../core/errors.js';
import { parseSafetensors, tensorView } from '../deltas/format/safetensors.js';
import type { ModelIO } from '../onnx/io-signature.js';
import { elementTypeOf, type EngineTensor, type NamedTensors } from '../engine/tensors.js';

export interface SampleSet {
  readonly size: number;
  readonly inputs: NamedTensors;
  readonly labels: Uint8Array | null;
  readonly metadata: Readonly<Record<string, string>>;
}

export async function loadSampleSet(path: string, io: ModelIO): Promise<SampleSet> {
  const bytes = await readInputFile(path, 'sample set');
  let parsed;
  try {
    parsed = parseSafetensors(bytes);
  } catch (error) {
    throw new DS_ERR_DATASET_INVALID(path, (error as Error).message);
  }
  const labels = parsed.tensors.has('labels') ? (tensorView(bytes, parsed, 'labels') as Uint8Array) : null;
  if (labels && parsed.tensors.get('labels')!.dtype !== 'U8')
    throw new DS_ERR_DATASET_INVALID(path, 'labels must be U8');

  if (parsed.tensors.has('images')) {
    const entry = parsed.tensors.get('images')!;
    if (entry.dtype !== 'U8') throw new DS_ERR_DATASET_INVALID(path, `images must be U8, got ${entry.dtype}`);
    const input = io.inputs.length === 1 ? io.inputs[0]! : undefined;
    if (!input || input.datatype !== 'FP32' || !input.shape) {
      throw new DS_ERR_DATASET_INVALID(path, 'image sets need a model with exactly one float32 input');
    }
    const [count, ...pixelShape] = entry.shape;
    const rowSize = pixelShape.reduce((a, b) => a * b, 1);
    const modelRow = input.shape.slice(1);
    if (modelRow.some((d) => d < 0) || modelRow.reduce((a, b) => a * b, 1) !== rowSize) {
      throw new DS_ERR_DATASET_INVALID(
        path,
        `images of shape [${pixelShape}] do not fit input ${input.name} [${input.shape}]`,
      );
    }
    const pixels = tensorView(bytes, parsed, 'images') as Uint8Array;
    const data = new Float32Array(pixels.length);
    for (let i = 0; i < pixels.length; i++) data[i] = pixels[i]! / 255;
    const tensor: EngineTensor = { type: 'float32', dims: [count!, ...modelRow], data };
    return finish(path, count!, { [input.name]: tensor }, labels, parsed.metadata);
  }

  const inputs: Record<string, EngineTensor> = {};
  let count = -1;
  for (const input of io.inputs) {
    const entry = parsed.tensors.get(input.name);
    if (!entry) throw new DS_ERR_DATASET_INVALID(path, `no tensor named like model input ${input.name}`);
    const type = elementTypeOf(input.datatype);
    if (!type)
      throw new DS_ERR_DATASET_INVALID(
        path,
        `model input ${input.name} has datatype ${input.datatype}, which the engine cannot feed`,
      );
    const data = tensorView(bytes, parsed, input.name);
    inputs[input.name] = { type, dims: entry.shape, data: data as EngineTensor['data'] };
    if (count >= 0 && entry.shape[0] !== count) throw new DS_ERR_DATASET_INVALID(path, 'inputs differ in sample count');
    count = entry.shape[0] ?? 0;
  }
  return finish(path, count, inputs, labels, parsed.metadata);
}

function finish(
  path: string,
  size: number,
  inputs: NamedTensors,
  labels: Uint8Array | null,
  metadata: Record<string, string>,
): SampleSet {
  if (labels && labels.length !== size)
    throw new DS_ERR_DATASET_INVALID(path, `${labels.length} labels for ${size} samples`);
  return { size, inputs, labels, metadata };
}

/** Samples [start, end) of every input, as a new batch. */
export function sliceSamples(inputs: NamedTensors, start: number, end: number): NamedTensors {
  const out: Record<string, EngineTensor> = {};
  for (const [name, tensor] of Object.entries(inputs)) {
    const row = tensor.dims.slice(1).reduce((a, b) => a * b, 1);
    out[name] = {
      type: tensor.type,
      dims: [end - start, ...tensor.dims.slice(1)],
      data: tensor.data.slice(start * row, end * row),
    };
  }
  return out;
}
