/**
 * Images for the try-by-hand classify route → the model's pixel tensor.
 *
 * PNG (any colour type, up to `http.imageMaxPixels`): decoded in worker threads, see
 * png/png-decoder.ts and png/png-decode-job.ts (a large photo shrunk to 28×28 by bilinear
 * resampling aliases, a known limit of a try-by-hand route). JSON: an H×W array (or H·W flat)
 * of 0..255 values, or of 0..1 values when none exceeds 1.
 *
 * The model sees pixel / 255 (how the zoo was trained), laid out as its input expects:
 * [1, 1, H, W] or [1, H, W].
 */
import { DS_ERR_IMAGE_INVALID, DS_ERR_NOT_IMAGE_MODEL } from '../core/errors.js';
import type { EngineTensor } from '../engine/tensors.js';
import type { ModelIO } from '../onnx/io-signature.js';
import { describeValue } from './describe-value.js';

export interface ImageInput {
  readonly name: string;
  readonly height: number;
  readonly width: number;
  /** Dims of a batch of one, as the model takes it. */
  readonly dims: readonly number[];
}

/** The model's single float32 image input ([N,1,H,W] or [N,H,W] with fixed H, W), or a 400. */
export function imageInputOf(io: ModelIO, model: string): ImageInput {
  const fail = (reason: string): never => {
    throw new DS_ERR_NOT_IMAGE_MODEL(model, reason);
  };
  if (io.inputs.length !== 1)
    fail(`it takes ${io.inputs.length} inputs (${io.inputs.map((i) => i.name).join(', ')}), not one image`);
  const input = io.inputs[0]!;
  const shape = input.shape;
  if (input.datatype !== 'FP32') fail(`its input "${input.name}" is ${input.datatype}, not FP32 pixels`);
  if (shape === null) fail(`its input "${input.name}" declares no shape`);
  const s = shape!;
  const fourD = s.length === 4 && s[1] === 1;
  if (!fourD && s.length !== 3)
    fail(`its input "${input.name}" has shape [${s.join(', ')}], not [N, 1, H, W] or [N, H, W]`);
  const height = s[s.length - 2]!;
  const width = s[s.length - 1]!;
  if (height <= 0 || width <= 0) fail(`its input "${input.name}" has no fixed height and width`);
  return { name: input.name, height, width, dims: fourD ? [1, 1, height, width] : [1, height, width] };
}

/** A JSON image (H rows of W values, or H·W flat) → grey levels 0..255. */
export function jsonToGrey(image: unknown, width: number, height: number): Float32Array {
  if (!Array.isArray(image))
    throw new DS_ERR_IMAGE_INVALID(`"image" must be an array of ${height} rows of ${width} values`);
  const flat: unknown[] = image.every(Array.isArray) ? image.flat() : image;
  const nested = image.every(Array.isArray);
  if (nested && (image.length !== height || image.some((row: unknown[]) => row.length !== width))) {
    throw new DS_ERR_IMAGE_INVALID(
      `"image" must have ${height} rows of ${width} values, got ${image.length} rows of ${image.map((r: unknown[]) => r.length).join('/')}`.slice(
        0,
        200,
      ),
    );
  }
  if (flat.length !== width * height)
    throw new DS_ERR_IMAGE_INVALID(
      `"image" must hold ${width * height} values (${height}×${width}), got ${flat.length}`,
    );
  const grey = new Float32Array(flat.length);
  let max = 0;
  flat.forEach((value, i) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 255) {
      throw new DS_ERR_IMAGE_INVALID(
        `"image" value ${i} is ${describeValue(value)}, expected a number in [0, 255] (or [0, 1])`,
      );
    }
    grey[i] = value;
    max = Math.max(max, value);
  });
  if (max <= 1) for (let i = 0; i < grey.length; i++) grey[i]! *= 255;
  return grey;
}

/** Grey levels 0..255 → the model's input tensor (pixel / 255). */
export function greyToTensor(grey: Float32Array, input: ImageInput): EngineTensor {
  const data = new Float32Array(grey.length);
  for (let i = 0; i < grey.length; i++) data[i] = grey[i]! / 255;
  return { type: 'float32', dims: [...input.dims], data };
}
