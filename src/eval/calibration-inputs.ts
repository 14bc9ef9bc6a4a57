/**
 * Unlabelled calibration inputs from a folder of files the user already has → a sample file
 * (docs/delta-format.md, "Sample files"). Files are taken in name order (UTF-16 code units):
 *
 * - `.png` (image bases: one float32 input [N,1,H,W] or [N,H,W]): decoded as the classify route
 *   decodes them (any colour type → grey, bilinear resize to H×W), rounded to 8-bit grey, written
 *   as `images` U8 [N, H, W] — the layout of the demo zoo's calib.safetensors.
 * - `.npy` (single-input models) and `.json`: model input values as the model takes them
 *   (already normalised), one sample or a batch with a leading sample axis. A JSON file is a
 *   nested array (single-input models) or an object {"<input name>": nested array, ...}.
 *   Written as one tensor per model input, named like it, in the input's dtype.
 *
 * Every problem names the file.
 */
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { DS_ERR_CALIB_INPUT } from '../core/errors.js';
import { readInputFile } from '../core/read-input-file.js';
import type { SafetensorsDtype, SafetensorsTensorInput } from '../deltas/format/safetensors.js';
import { imageInputOf } from '../http/image.js';
import { decodePngJob } from '../http/png/png-decode-job.js';
import type { ModelIO, TensorSignature } from '../onnx/io-signature.js';
import { parseNpy, type NpyArray } from './npy.js';

export interface CalibrationTensors {
  readonly samples: number;
  readonly layout: 'images' | 'inputs';
  readonly tensors: readonly SafetensorsTensorInput[];
  readonly files: number;
}

const EXTENSIONS = new Set(['.png', '.npy', '.json']);
/** Per-PNG pixel bound (the decoded image is held in memory once). */
const MAX_PNG_PIXELS = 4096 * 4096;

/** Input datatype → (safetensors dtype, typed array). */
const DTYPES: Readonly<Record<string, { dtype: SafetensorsDtype; make: (n: number) => NumericArray }>> = {
  FP32: { dtype: 'F32', make: (n) => new Float32Array(n) },
  INT64: { dtype: 'I64', make: (n) => new BigInt64Array(n) },
  INT32: { dtype: 'I32', make: (n) => new Int32Array(n) },
  UINT8: { dtype: 'U8', make: (n) => new Uint8Array(n) },
  BOOL: { dtype: 'BOOL', make: (n) => new Uint8Array(n) },
};
type NumericArray = Float32Array | BigInt64Array | Int32Array | Uint8Array;

export async function readCalibrationInputs(dir: string, io: ModelIO, limit = Infinity): Promise<CalibrationTensors> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
      .map((entry) => entry.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (error) {
    throw new DS_ERR_CALIB_INPUT(dir, `cannot list the folder: ${(error as Error).message}`);
  }
  const unknown = names.filter((n) => !EXTENSIONS.has(extname(n).toLowerCase()));
  if (unknown.length > 0)
    throw new DS_ERR_CALIB_INPUT(
      join(dir, unknown[0]!),
      `not a .png, .npy or .json file (${unknown.length} such file(s) in the folder)`,
    );
  if (names.length === 0) throw new DS_ERR_CALIB_INPUT(dir, 'the folder holds no .png, .npy or .json files');
  const pngs = names.filter((n) => extname(n).toLowerCase() === '.png');
  if (pngs.length > 0 && pngs.length < names.length)
    throw new DS_ERR_CALIB_INPUT(dir, 'mixes PNG images with .npy/.json tensors; use one kind per folder');
  const files = names.slice(0, Number.isFinite(limit) ? limit : names.length);
  return pngs.length > 0 ? readImages(dir, files, io) : readTensors(dir, files, io);
}

async function readImages(dir: string, files: readonly string[], io: ModelIO): Promise<CalibrationTensors> {
  let input;
  try {
    input = imageInputOf(io, 'the base');
  } catch (error) {
    throw new DS_ERR_CALIB_INPUT(dir, `PNG images need an image model: ${(error as Error).message}`);
  }
  const { width, height } = input;
  const images = new Uint8Array(files.length * width * height);
  for (const [i, name] of files.entries()) {
    const path = join(dir, name);
    const decoded = decodePngJob({
      bytes: await readInputFile(path, 'calibration image'),
      width,
      height,
      maxPixels: MAX_PNG_PIXELS,
    });
    if (!decoded.ok) throw new DS_ERR_CALIB_INPUT(path, decoded.reason);
    decoded.grey.forEach((v, k) => (images[i * width * height + k] = Math.min(255, Math.max(0, Math.round(v)))));
  }
  return {
    samples: files.length,
    layout: 'images',
    files: files.length,
    tensors: [{ name: 'images', dtype: 'U8', shape: [files.length, height, width], data: images }],
  };
}

async function readTensors(dir: string, files: readonly string[], io: ModelIO): Promise<CalibrationTensors> {
  const parts = new Map<string, { values: number[][]; shape: number[] | null }>(
    io.inputs.map((input) => [input.name, { values: [], shape: null }]),
  );
  let samples = 0;
  for (const name of files) {
    const path = join(dir, name);
    const bytes = await readInputFile(path, 'calibration input');
    const arrays = extname(name).toLowerCase() === '.npy' ? npyArrays(bytes, path, io) : jsonArrays(bytes, path, io);
    let count: number | null = null;
    for (const input of io.inputs) {
      const array = arrays.get(input.name);
      if (!array) throw new DS_ERR_CALIB_INPUT(path, `has no values for model input "${input.name}"`);
      const rows = sampleRows(array, input, path);
      if (count !== null && rows.count !== count)
        throw new DS_ERR_CALIB_INPUT(path, `its inputs hold different numbers of samples (${count} and ${rows.count})`);
      count = rows.count;
      const part = parts.get(input.name)!;
      if (part.shape && part.shape.join(',') !== rows.sampleShape.join(','))
        throw new DS_ERR_CALIB_INPUT(
          path,
          `input "${input.name}" has sample shape [${rows.sampleShape.join(', ')}] but earlier files had [${part.shape.join(', ')}]`,
        );
      part.shape = rows.sampleShape;
      part.values.push(array.values);
    }
    samples += count!;
  }
  const tensors = io.inputs.map((input): SafetensorsTensorInput => {
    const kind = DTYPES[input.datatype];
    if (!kind)
      throw new DS_ERR_CALIB_INPUT(dir, `model input "${input.name}" is ${input.datatype}, which calib cannot write`);
    const { values, shape } = parts.get(input.name)!;
    const flat = values.flat();
    const data = kind.make(flat.length);
    flat.forEach((v, i) => {
      if (data instanceof BigInt64Array) data[i] = BigInt(Math.trunc(v));
      else data[i] = v;
    });
    return { name: input.name, dtype: kind.dtype, shape: [samples, ...shape!], data };
  });
  return { samples, layout: 'inputs', files: files.length, tensors };
}

interface ValuesWithShape {
  readonly values: number[];
  readonly shape: readonly number[];
}

/** One sample (shape = the input's per-sample shape) or a batch (one more leading axis). */
function sampleRows(array: ValuesWithShape, input: TensorSignature, path: string) {
  const sample = input.shape?.slice(1) ?? null;
  const fits = (shape: readonly number[]) =>
    sample === null || (shape.length === sample.length && shape.every((d, i) => sample[i]! < 0 || sample[i] === d));
  if (fits(array.shape)) return { count: 1, sampleShape: [...array.shape] };
  if (array.shape.length >= 1 && fits(array.shape.slice(1)))
    return { count: array.shape[0]!, sampleShape: array.shape.slice(1) };
  throw new DS_ERR_CALIB_INPUT(
    path,
    `shape [${array.shape.join(', ')}] fits neither one sample nor a batch of input "${input.name}" [${input.shape?.join(', ')}]`,
  );
}

function npyArrays(bytes: Uint8Array, path: string, io: ModelIO): Map<string, ValuesWithShape> {
  if (io.inputs.length !== 1)
    throw new DS_ERR_CALIB_INPUT(
      path,
      `.npy files suit single-input models; this one takes ${io.inputs.length}: use .json`,
    );
  let array: NpyArray;
  try {
    array = parseNpy(bytes);
  } catch (error) {
    throw new DS_ERR_CALIB_INPUT(path, (error as Error).message);
  }
  return new Map([[io.inputs[0]!.name, { values: Array.from(array.values, Number), shape: array.shape }]]);
}

function jsonArrays(bytes: Uint8Array, path: string, io: ModelIO): Map<string, ValuesWithShape> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new DS_ERR_CALIB_INPUT(path, `not JSON: ${(error as Error).message}`);
  }
  const byInput: Record<string, unknown> =
    Array.isArray(value) && io.inputs.length === 1
      ? { [io.inputs[0]!.name]: value }
      : typeof value === 'object' && value !== null && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : {};
  const arrays = new Map<string, ValuesWithShape>();
  for (const input of io.inputs) {
    if (!(input.name in byInput)) continue;
    arrays.set(input.name, nestedArray(byInput[input.name], `${path}: "${input.name}"`));
  }
  if (arrays.size === 0)
    throw new DS_ERR_CALIB_INPUT(
      path,
      `must be an object {"${io.inputs.map((i) => i.name).join('", "')}": nested arrays}${io.inputs.length === 1 ? ' or a nested array' : ''}`,
    );
  return arrays;
}

/** A rectangular nested array of finite numbers (or booleans) → flat values and shape. */
function nestedArray(value: unknown, label: string): ValuesWithShape {
  const shape: number[] = [];
  for (let level: unknown = value; Array.isArray(level); level = level[0]) shape.push(level.length);
  const values: number[] = [];
  const walk = (node: unknown, depth: number) => {
    if (depth === shape.length) {
      const number = typeof node === 'boolean' ? Number(node) : node;
      if (typeof number !== 'number' || !Number.isFinite(number))
        throw new DS_ERR_CALIB_INPUT(label, `holds ${JSON.stringify(node)}, not a finite number`);
      values.push(number);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth])
      throw new DS_ERR_CALIB_INPUT(label, `is not a rectangular array of shape [${shape.join(', ')}]`);
    for (const child of node) walk(child, depth + 1);
  };
  walk(value, 0);
  return { values, shape };
}
