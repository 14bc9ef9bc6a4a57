/**
 * Images for the try-by-hand classify route → the model's pixel tensor.
 *
 * PNG (any size, any colour type): decoded with pngjs to 8-bit RGBA, composited over black
 * (the zoo's images are light objects on a black background, so transparency reads as
 * background), converted to grey with the ITU-R BT.601 luma weights (0.299 R + 0.587 G +
 * 0.114 B), then resized to the model's H×W by BILINEAR interpolation with pixel centres
 * aligned (like PIL's bilinear without antialiasing; a large photo shrunk to 28×28 aliases, a
 * known limit of a try-by-hand route). JSON: an H×W array (or H·W flat) of 0..255 values,
 * or of 0..1 values when none exceeds 1.
 *
 * The model sees pixel / 255 (how the zoo was trained), laid out as its input expects:
 * [1, 1, H, W] or [1, H, W].
 */
import { PNG } from 'pngjs';
import { DS_ERR_IMAGE_INVALID, DS_ERR_NOT_IMAGE_MODEL } from '../core/errors.js';
import type { EngineTensor } from '../engine/tensors.js';
import type { ModelIO } from '../onnx/io-signature.js';

/** A decompressed PNG may not exceed this many pixels (a small PNG can inflate enormously). */
export const MAX_PNG_PIXELS = 4096 * 4096;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

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
  if (io.inputs.length !== 1) fail(`it takes ${io.inputs.length} inputs (${io.inputs.map((i) => i.name).join(', ')}), not one image`);
  const input = io.inputs[0]!;
  const shape = input.shape;
  if (input.datatype !== 'FP32') fail(`its input "${input.name}" is ${input.datatype}, not FP32 pixels`);
  if (shape === null) fail(`its input "${input.name}" declares no shape`);
  const s = shape!;
  const fourD = s.length === 4 && s[1] === 1;
  if (!fourD && s.length !== 3) fail(`its input "${input.name}" has shape [${s.join(', ')}], not [N, 1, H, W] or [N, H, W]`);
  const height = s[s.length - 2]!;
  const width = s[s.length - 1]!;
  if (height <= 0 || width <= 0) fail(`its input "${input.name}" has no fixed height and width`);
  return { name: input.name, height, width, dims: fourD ? [1, 1, height, width] : [1, height, width] };
}

/**
 * PNG bytes → grey levels 0..255 at the target size (bilinear). Decoding is asynchronous:
 * pngjs's async parser inflates with zlib off the event loop, where `PNG.sync.read` of a large
 * image would stall every other request.
 */
export async function pngToGrey(bytes: Uint8Array, width: number, height: number): Promise<Float32Array> {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 24 || !buffer.subarray(0, 8).equals(PNG_SIGNATURE)) throw new DS_ERR_IMAGE_INVALID('the body is not a PNG file (bad signature)');
  const declaredWidth = buffer.readUInt32BE(16);
  const declaredHeight = buffer.readUInt32BE(20);
  if (declaredWidth * declaredHeight > MAX_PNG_PIXELS) {
    throw new DS_ERR_IMAGE_INVALID(`the PNG is ${declaredWidth}×${declaredHeight}, more than ${MAX_PNG_PIXELS} pixels`);
  }
  let png: PNG;
  try {
    png = await new Promise<PNG>((resolve, reject) => {
      new PNG().parse(buffer, (error, parsed) => (error ? reject(error) : resolve(parsed)));
    });
  } catch (error) {
    throw new DS_ERR_IMAGE_INVALID(`the PNG cannot be decoded: ${(error as Error).message}`);
  }
  if (png.width === 0 || png.height === 0) throw new DS_ERR_IMAGE_INVALID('the PNG has no pixels');
  const grey = new Float32Array(png.width * png.height);
  const rgba = png.data;
  for (let i = 0; i < grey.length; i++) {
    const alpha = rgba[i * 4 + 3]! / 255;
    grey[i] = (0.299 * rgba[i * 4]! + 0.587 * rgba[i * 4 + 1]! + 0.114 * rgba[i * 4 + 2]!) * alpha;
  }
  return resizeBilinear(grey, png.width, png.height, width, height);
}

/** Bilinear resampling with pixel centres aligned ((x + 0.5) · scale − 0.5), edges clamped. */
export function resizeBilinear(src: Float32Array, srcWidth: number, srcHeight: number, width: number, height: number): Float32Array {
  if (srcWidth === width && srcHeight === height) return src;
  const out = new Float32Array(width * height);
  const sx = srcWidth / width;
  const sy = srcHeight / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), srcHeight - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, srcHeight - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), srcWidth - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, srcWidth - 1);
      const wx = fx - x0;
      const top = src[y0 * srcWidth + x0]! * (1 - wx) + src[y0 * srcWidth + x1]! * wx;
      const bottom = src[y1 * srcWidth + x0]! * (1 - wx) + src[y1 * srcWidth + x1]! * wx;
      out[y * width + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

/** A JSON image (H rows of W values, or H·W flat) → grey levels 0..255. */
export function jsonToGrey(image: unknown, width: number, height: number): Float32Array {
  if (!Array.isArray(image)) throw new DS_ERR_IMAGE_INVALID(`"image" must be an array of ${height} rows of ${width} values`);
  const flat: unknown[] = image.every(Array.isArray) ? image.flat() : image;
  const nested = image.every(Array.isArray);
  if (nested && (image.length !== height || image.some((row: unknown[]) => row.length !== width))) {
    throw new DS_ERR_IMAGE_INVALID(`"image" must have ${height} rows of ${width} values, got ${image.length} rows of ${image.map((r: unknown[]) => r.length).join('/')}`.slice(0, 200));
  }
  if (flat.length !== width * height) throw new DS_ERR_IMAGE_INVALID(`"image" must hold ${width * height} values (${height}×${width}), got ${flat.length}`);
  const grey = new Float32Array(flat.length);
  let max = 0;
  flat.forEach((value, i) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 255) {
      throw new DS_ERR_IMAGE_INVALID(`"image" value ${i} is ${JSON.stringify(value)}, expected a number in [0, 255] (or [0, 1])`);
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
