import { rename, writeFile } from 'node:fs/promises';
import { DS_ERR_CLI_USAGE } from '../../core/errors.js';
import { buildDelta, type PruneMethod } from '../../compress/build-delta.js';
import { DEFAULT_DENSE_PATTERNS } from '../../compress/tensor-selection.js';
import { encodeDelta } from '../../deltas/format/delta-file.js';
import type { Delta } from '../../deltas/types.js';
import { loadOnnxModel } from '../../onnx/model-file.js';
import { assertSameGraph, readFloatWeights } from '../../onnx/weights.js';
import { fingerprintWeights, sha256File } from '../../onnx/fingerprint.js';
import { LocalRunner } from '../../eval/local-runner.js';
import { loadSampleSet, sliceSamples } from '../../eval/dataset.js';
import { predictAll } from '../../eval/accuracy.js';
import { chooseDarexQ } from '../../eval/darex-q.js';
import { listOption, numberOption, parseCommandArgs, progress, requireString } from '../args.js';

export const COMPRESS_USAGE = `usage: deltaserve compress --base BASE.onnx --finetuned FT.onnx --out DELTA.safetensors
         [--method dare|darex-q|magnitude] [--drop-rate P] [--seed N] [--dtype f32|f16]
         [--q Q | --calibration SAMPLES.safetensors [--calibration-size N]]
         [--include GLOB]... [--exclude GLOB]... [--dense GLOB]... [--no-dense]`;

const METHODS: readonly PruneMethod[] = ['dare', 'darex-q', 'magnitude'];

export interface CompressSummary {
  readonly out: string;
  readonly method: PruneMethod;
  readonly dropRate: number;
  readonly rescale: number;
  readonly q: number | null;
  readonly bytes: number;
  readonly tensors: number;
  readonly nonzeros: number;
  readonly compressSeconds: number;
}

export async function compressCommand(argv: string[]): Promise<CompressSummary> {
  const { values } = parseCommandArgs(
    argv,
    {
      base: { type: 'string' },
      finetuned: { type: 'string' },
      out: { type: 'string' },
      method: { type: 'string', default: 'dare' },
      'drop-rate': { type: 'string' },
      seed: { type: 'string' },
      dtype: { type: 'string', default: 'f32' },
      q: { type: 'string' },
      calibration: { type: 'string' },
      'calibration-size': { type: 'string' },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      dense: { type: 'string', multiple: true },
      'no-dense': { type: 'boolean', default: false },
    },
    COMPRESS_USAGE,
  );
  const basePath = requireString(values.base, 'base', COMPRESS_USAGE);
  const finetunedPath = requireString(values.finetuned, 'finetuned', COMPRESS_USAGE);
  const out = requireString(values.out, 'out', COMPRESS_USAGE);
  const method = values.method as PruneMethod;
  if (!METHODS.includes(method)) throw new DS_ERR_CLI_USAGE(`--method must be one of ${METHODS.join(', ')}, got ${JSON.stringify(values.method)}`);
  const dropRate = numberOption(values['drop-rate'], 'drop-rate', 0.9, (n) => n >= 0 && n < 1, 'a number in [0, 1)');
  const seed = numberOption(values.seed, 'seed', 0, (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32, 'an integer in [0, 2^32)');
  const dtype = String(values.dtype).toUpperCase();
  if (dtype !== 'F32' && dtype !== 'F16') throw new DS_ERR_CLI_USAGE(`--dtype must be f32 or f16, got ${JSON.stringify(values.dtype)}`);
  const givenQ = values.q === undefined ? undefined : numberOption(values.q, 'q', 1, (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  if (method !== 'darex-q' && (givenQ !== undefined || values.calibration !== undefined)) {
    throw new DS_ERR_CLI_USAGE('--q and --calibration only apply to --method darex-q');
  }
  if (method === 'darex-q' && givenQ === undefined && values.calibration === undefined) {
    throw new DS_ERR_CLI_USAGE('--method darex-q needs --q or --calibration (unlabelled samples to choose q on)');
  }
  const calibrationSize = numberOption(values['calibration-size'], 'calibration-size', 256, (n) => Number.isInteger(n) && n > 0, 'a positive integer');

  progress(`reading ${basePath} and ${finetunedPath}`);
  const [baseModel, tunedModel] = await Promise.all([loadOnnxModel(basePath), loadOnnxModel(finetunedPath)]);
  assertSameGraph(baseModel, tunedModel);
  const baseWeights = readFloatWeights(baseModel);
  const tunedWeights = readFloatWeights(tunedModel);
  const [sourceBaseSha256, sourceFinetunedSha256] = await Promise.all([sha256File(basePath), sha256File(finetunedPath)]);

  const started = performance.now();
  const selection = {
    include: listOption(values.include),
    exclude: listOption(values.exclude),
    dense: values['no-dense'] ? listOption(values.dense) : [...DEFAULT_DENSE_PATTERNS, ...listOption(values.dense)],
  };
  const common = {
    dropRate,
    seed,
    valueDtype: dtype as 'F32' | 'F16',
    selection,
    baseFingerprint: fingerprintWeights(baseWeights),
    sourceBaseSha256,
    sourceFinetunedSha256,
    extra: { tool: 'deltaserve compress' },
  };
  let delta: Delta;
  let q: number | null = null;
  if (method === 'darex-q' && givenQ === undefined) {
    // One DARE mask, re-scaled per candidate q, so the search compares rescales only.
    const dare = buildDelta(baseWeights, tunedWeights, { ...common, method: 'dare' });
    const choice = await chooseQ(basePath, finetunedPath, values.calibration as string, calibrationSize, dare, dropRate);
    q = choice.search.q;
    delta = choice.delta;
  } else {
    delta = buildDelta(baseWeights, tunedWeights, { ...common, method, ...(givenQ !== undefined && { q: givenQ }) });
    q = method === 'darex-q' ? givenQ! : null;
  }
  const compressSeconds = (performance.now() - started) / 1000;
  const bytes = encodeDelta(delta);
  const temporary = `${out}.tmp-${process.pid}`;
  await writeFile(temporary, bytes);
  await rename(temporary, out);
  const nonzeros = delta.tensors.reduce((n, t) => n + t.values.length, 0);
  return {
    out,
    method,
    dropRate,
    rescale: delta.metadata.rescale,
    q,
    bytes: bytes.length,
    tensors: delta.tensors.length,
    nonzeros,
    compressSeconds,
  };
}

async function chooseQ(basePath: string, finetunedPath: string, calibrationPath: string, size: number, dare: Delta, dropRate: number) {
  const base = await LocalRunner.open(basePath);
  const tuned = await LocalRunner.open(finetunedPath);
  try {
    const loaded = await loadSampleSet(calibrationPath, base.base.io);
    const count = Math.min(size, loaded.size);
    const calibration = { ...loaded, size: count, inputs: sliceSamples(loaded.inputs, 0, count), labels: null };
    const target = await predictAll(tuned, calibration, null);
    return await chooseDarexQ(base, calibration, target, dare, dropRate, (s) =>
      progress(`q search (${s.stage}): q=${s.q.toPrecision(4)} loss=${s.loss.toExponential(3)}`),
    );
  } finally {
    await Promise.all([base.close(), tuned.close()]);
  }
}
