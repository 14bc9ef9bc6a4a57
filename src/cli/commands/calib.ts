/**
 * `deltaserve calib`: a calibration sample file (unlabelled inputs for DAREx-q, importance masks
 * and `--method auto`) from a folder of inputs the user already has. Reading the folder is
 * src/eval/calibration-inputs.ts; the file layout is docs/delta-format.md's "Sample files".
 */
import { rename, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { writeSafetensors } from '../../deltas/format/safetensors.js';
import { readCalibrationInputs } from '../../eval/calibration-inputs.js';
import { loadOnnxModel } from '../../onnx/model-file.js';
import { describeModelIO } from '../../onnx/io-signature.js';
import { numberOption, parseCommandArgs, progress, requireString } from '../args.js';

export const CALIB_USAGE = `usage: deltaserve calib --base BASE.onnx --inputs DIR --out CALIB.safetensors [--limit N]
  DIR holds .png images (image bases) or .npy / .json tensors (model input values), taken in name order`;

export interface CalibSummary {
  readonly out: string;
  readonly samples: number;
  readonly layout: 'images' | 'inputs';
  readonly tensors: Record<string, { dtype: string; shape: number[] }>;
  readonly bytes: number;
}

export async function calibCommand(argv: string[]): Promise<CalibSummary> {
  const { values } = parseCommandArgs(
    argv,
    { base: { type: 'string' }, inputs: { type: 'string' }, out: { type: 'string' }, limit: { type: 'string' } },
    CALIB_USAGE,
  );
  const basePath = requireString(values.base, 'base', CALIB_USAGE);
  const dir = requireString(values.inputs, 'inputs', CALIB_USAGE);
  const out = requireString(values.out, 'out', CALIB_USAGE);
  const limit = numberOption(
    values.limit,
    'limit',
    Infinity,
    (n) => Number.isInteger(n) && n > 0,
    'a positive integer',
  );
  const io = describeModelIO(await loadOnnxModel(basePath));
  progress(`reading calibration inputs from ${dir}`);
  const read = await readCalibrationInputs(dir, io, limit);
  const bytes = writeSafetensors(read.tensors, {
    format: 'deltaserve.samples',
    format_version: '1',
    purpose: 'unlabelled calibration inputs (no labels)',
    source: `deltaserve calib: ${read.files} file(s) from ${basename(dir)}`,
    layout: read.layout,
  });
  const temporary = `${out}.tmp-${process.pid}`;
  await writeFile(temporary, bytes);
  await rename(temporary, out);
  return {
    out,
    samples: read.samples,
    layout: read.layout,
    tensors: Object.fromEntries(read.tensors.map((t) => [t.name, { dtype: t.dtype, shape: [...t.shape] }])),
    bytes: bytes.length,
  };
}
