import { rename, writeFile } from 'node:fs/promises';
import { DS_ERR_CLI_USAGE } from '../../core/errors.js';
import { buildDelta, MASK_KINDS, type MaskKind, type PruneMethod, type WeightMap } from '../../compress/build-delta.js';
import { DEFAULT_DENSE_PATTERNS } from '../../compress/tensor-selection.js';
import { encodeDelta } from '../../deltas/format/delta-file.js';
import type { Delta } from '../../deltas/types.js';
import { sha256File } from '../../onnx/fingerprint.js';
import { LocalRunner } from '../../eval/local-runner.js';
import { loadSampleSet, sliceSamples } from '../../eval/dataset.js';
import { predictAll } from '../../eval/accuracy.js';
import { calibrate, calibrationLoss, calibrationPasses, Q_SCOPES, type QScope } from '../../eval/darex-q.js';
import { inputFeatureNorms } from '../../eval/input-norms.js';
import { DEFAULT_GROUP, quantizeDelta, VALUE_CHOICES, type ValueChoice } from '../../compress/quantize.js';
import { calibrateQuantization } from '../../eval/quantize-search.js';
import type { SampleSet } from '../../eval/dataset.js';
import { listOption, numberOption, parseCommandArgs, progress, requireString } from '../args.js';
import { progressBar } from '../progress-bar.js';
import {
  checkCompressInputFlags,
  COMPRESS_INPUT_OPTIONS,
  COMPRESS_INPUT_USAGE,
  readCompressInputs,
} from './compress-inputs.js';

export const COMPRESS_USAGE = `usage: deltaserve compress --base BASE.onnx --finetuned FT.onnx --out DELTA.safetensors
${COMPRESS_INPUT_USAGE}
         [--method dare|darex-q|magnitude|auto] [--drop-rate P] [--seed N] [--dtype f32|f16]
         [--mask uniform|importance] [--q-scope global|tensor]
         [--q Q | --calibration SAMPLES.safetensors [--calibration-size N]]
         [--values fp16|int8|int4 [--group N]]
         [--include GLOB]... [--exclude GLOB]... [--dense GLOB]... [--no-dense]`;

type MethodChoice = PruneMethod | 'auto';
const METHODS: readonly MethodChoice[] = ['dare', 'darex-q', 'magnitude', 'auto'];

export interface CompressSummary {
  readonly out: string;
  readonly method: PruneMethod;
  readonly dropRate: number;
  readonly rescale: number;
  readonly q: number | null;
  readonly mask: MaskKind | null;
  readonly qScope: QScope | null;
  /** Calibration objective of the written delta (mean squared logit change), when calibrated. */
  readonly calibrationLoss: number | null;
  readonly calibrationPasses: number;
  /** --values: null when not given (format version 1, as before). */
  readonly values: ValueChoice | null;
  /** Clip factor the quantizer chose on the calibration inputs (1 without calibration). */
  readonly quantClip: number | null;
  readonly formatVersion: 1 | 2;
  readonly bytes: number;
  readonly tensors: number;
  readonly nonzeros: number;
  readonly compressSeconds: number;
}

export async function compressCommand(argv: string[]): Promise<CompressSummary> {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    return await compress(argv, cleanups);
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

async function compress(argv: string[], cleanups: (() => Promise<void>)[]): Promise<CompressSummary> {
  const { values } = parseCommandArgs(
    argv,
    {
      ...COMPRESS_INPUT_OPTIONS,
      out: { type: 'string' },
      method: { type: 'string', default: 'dare' },
      'drop-rate': { type: 'string' },
      seed: { type: 'string' },
      dtype: { type: 'string' },
      values: { type: 'string' },
      group: { type: 'string' },
      q: { type: 'string' },
      calibration: { type: 'string' },
      'calibration-size': { type: 'string' },
      mask: { type: 'string' },
      'q-scope': { type: 'string' },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      dense: { type: 'string', multiple: true },
      'no-dense': { type: 'boolean', default: false },
    },
    COMPRESS_USAGE,
  );
  checkCompressInputFlags(values, COMPRESS_USAGE);
  const out = requireString(values.out, 'out', COMPRESS_USAGE);
  const method = values.method as MethodChoice;
  if (!METHODS.includes(method))
    throw new DS_ERR_CLI_USAGE(`--method must be one of ${METHODS.join(', ')}, got ${JSON.stringify(values.method)}`);
  const dropRate = numberOption(values['drop-rate'], 'drop-rate', 0.9, (n) => n >= 0 && n < 1, 'a number in [0, 1)');
  const seed = numberOption(
    values.seed,
    'seed',
    0,
    (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32,
    'an integer in [0, 2^32)',
  );
  const valueChoice = values.values === undefined ? null : (values.values as ValueChoice);
  if (valueChoice !== null && !VALUE_CHOICES.includes(valueChoice))
    throw new DS_ERR_CLI_USAGE(
      `--values must be one of ${VALUE_CHOICES.join(', ')}, got ${JSON.stringify(values.values)}`,
    );
  if (values.group !== undefined && valueChoice !== 'int8' && valueChoice !== 'int4')
    throw new DS_ERR_CLI_USAGE('--group only applies to --values int8 or int4');
  const group = numberOption(
    values.group,
    'group',
    DEFAULT_GROUP,
    (n) => Number.isInteger(n) && n >= 1 && n <= 65536,
    'an integer in [1, 65536]',
  );
  // --values writes format version 2, whose unquantized values are fp16 unless --dtype f32 says otherwise.
  const dtype = String(values.dtype ?? (valueChoice === null ? 'f32' : 'f16')).toUpperCase();
  if (dtype !== 'F32' && dtype !== 'F16')
    throw new DS_ERR_CLI_USAGE(`--dtype must be f32 or f16, got ${JSON.stringify(values.dtype)}`);
  const valueDtype: 'F32' | 'F16' = dtype;
  const givenQ =
    values.q === undefined ? undefined : numberOption(values.q, 'q', 1, (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const mask = (values.mask ?? 'uniform') as MaskKind;
  if (!MASK_KINDS.includes(mask))
    throw new DS_ERR_CLI_USAGE(`--mask must be one of ${MASK_KINDS.join(', ')}, got ${JSON.stringify(values.mask)}`);
  const qScope = (values['q-scope'] ?? 'global') as QScope;
  if (!Q_SCOPES.includes(qScope))
    throw new DS_ERR_CLI_USAGE(
      `--q-scope must be one of ${Q_SCOPES.join(', ')}, got ${JSON.stringify(values['q-scope'])}`,
    );
  const calibrationPath = values.calibration as string | undefined;
  checkCombination(method, {
    givenQ,
    calibrationPath,
    mask: values.mask as string | undefined,
    qScope: values['q-scope'] as string | undefined,
  });
  const calibrationSize = numberOption(
    values['calibration-size'],
    'calibration-size',
    256,
    (n) => Number.isInteger(n) && n > 0,
    'a positive integer',
  );

  const inputs = await readCompressInputs(values, COMPRESS_USAGE);
  cleanups.push(() => inputs.cleanup());
  const { basePath, baseWeights, tunedWeights, sourceBaseSha256, sourceFinetunedSha256 } = inputs;

  const started = performance.now();
  const selection = {
    include: listOption(values.include),
    exclude: listOption(values.exclude),
    dense: values['no-dense'] ? listOption(values.dense) : [...DEFAULT_DENSE_PATTERNS, ...listOption(values.dense)],
  };
  const common = {
    dropRate,
    seed,
    valueDtype,
    selection,
    baseFingerprint: inputs.baseFingerprint,
    sourceBaseSha256,
    sourceFinetunedSha256,
    extra: { tool: 'deltaserve compress' },
  };
  let result: { delta: Delta; q: number | null; loss: number | null; passes: number; clip: number | null };
  if (calibrationPath === undefined) {
    const built = buildDelta(baseWeights, tunedWeights, {
      ...common,
      method: method as PruneMethod,
      ...(givenQ !== undefined && { q: givenQ }),
    });
    const delta = valueChoice === null ? built : quantizeDelta(built, valueChoice, group);
    result = {
      delta,
      q: method === 'darex-q' ? givenQ! : null,
      loss: null,
      passes: 0,
      clip: valueChoice === null ? null : 1,
    };
  } else {
    const calibrationSha256 = await sha256File(calibrationPath);
    const withCalibration = { ...common, extra: { ...common.extra, calibration_sha256: calibrationSha256 } };
    const finetunedPath = await inputs.finetunedModelPath();
    result = await withCalibrationRunners(
      basePath,
      finetunedPath,
      calibrationPath,
      calibrationSize,
      async (session) => {
        const calibrated = await calibratedDelta(session, baseWeights, tunedWeights, withCalibration, {
          method,
          mask,
          qScope,
          dropRate,
        });
        if (valueChoice === null) return { ...calibrated, clip: null };
        progress(`quantizing values to ${valueChoice} (groups of ${group}), clip chosen on the calibration inputs`);
        const { base, calibration, target } = session;
        const quantized = await calibrateQuantization(base, calibration, target, calibrated.delta, valueChoice, group);
        return {
          delta: quantized.delta,
          q: calibrated.q,
          loss: quantized.loss,
          passes: calibrated.passes + quantized.passes,
          clip: quantized.clip,
        };
      },
    );
  }
  const { delta } = result;
  const compressSeconds = (performance.now() - started) / 1000;
  const bytes = encodeDelta(delta);
  const temporary = `${out}.tmp-${process.pid}`;
  await writeFile(temporary, bytes);
  await rename(temporary, out);
  const nonzeros = delta.tensors.reduce((n, t) => n + t.values.length, 0);
  return {
    out,
    method: delta.metadata.method as PruneMethod,
    dropRate,
    rescale: delta.metadata.rescale,
    q: result.q,
    mask: (delta.metadata.extra.mask as MaskKind | undefined) ?? null,
    qScope: (delta.metadata.extra.q_scope as QScope | undefined) ?? null,
    calibrationLoss: result.loss,
    calibrationPasses: result.passes,
    values: valueChoice,
    quantClip: result.clip,
    formatVersion: delta.metadata.formatVersion,
    bytes: bytes.length,
    tensors: delta.tensors.length,
    nonzeros,
    compressSeconds,
  };
}

function checkCombination(
  method: MethodChoice,
  given: {
    givenQ: number | undefined;
    calibrationPath: string | undefined;
    mask: string | undefined;
    qScope: string | undefined;
  },
): void {
  if (
    method === 'magnitude' &&
    (given.givenQ !== undefined ||
      given.calibrationPath !== undefined ||
      given.mask !== undefined ||
      given.qScope !== undefined)
  ) {
    throw new DS_ERR_CLI_USAGE('--q, --calibration, --mask and --q-scope do not apply to --method magnitude');
  }
  if (given.givenQ !== undefined && method !== 'darex-q')
    throw new DS_ERR_CLI_USAGE('--q only applies to --method darex-q');
  if (given.givenQ !== undefined && given.calibrationPath !== undefined)
    throw new DS_ERR_CLI_USAGE('give --q or --calibration, not both');
  if (given.qScope !== undefined && method !== 'darex-q')
    throw new DS_ERR_CLI_USAGE('--q-scope only applies to --method darex-q');
  if (given.qScope === 'tensor' && given.calibrationPath === undefined)
    throw new DS_ERR_CLI_USAGE('--q-scope tensor needs --calibration (unlabelled samples to fit the scales on)');
  if (method === 'darex-q' && given.givenQ === undefined && given.calibrationPath === undefined) {
    throw new DS_ERR_CLI_USAGE('--method darex-q needs --q or --calibration (unlabelled samples to choose q on)');
  }
  if (given.mask === 'importance' && given.calibrationPath === undefined)
    throw new DS_ERR_CLI_USAGE('--mask importance needs --calibration (unlabelled samples for the input norms)');
  if (method === 'auto' && given.calibrationPath === undefined)
    throw new DS_ERR_CLI_USAGE('--method auto needs --calibration (unlabelled samples to compare the candidates on)');
  if (method === 'auto' && given.mask !== undefined)
    throw new DS_ERR_CLI_USAGE('--method auto tries both masks; drop --mask');
}

interface CalibrationSession {
  readonly base: LocalRunner;
  readonly calibration: SampleSet;
  /** The fine-tuned model's logits on the calibration inputs. */
  readonly target: Float32Array;
  readonly finetunedPath: string;
}

async function withCalibrationRunners<T>(
  basePath: string,
  finetunedPath: string,
  calibrationPath: string,
  size: number,
  work: (session: CalibrationSession) => Promise<T>,
): Promise<T> {
  const base = await LocalRunner.open(basePath);
  try {
    const loaded = await loadSampleSet(calibrationPath, base.base.io);
    const count = Math.min(size, loaded.size);
    const calibration = { ...loaded, size: count, inputs: sliceSamples(loaded.inputs, 0, count), labels: null };
    const tuned = await LocalRunner.open(finetunedPath);
    let target: Float32Array;
    try {
      target = await predictAll(tuned, calibration, null);
    } finally {
      await tuned.close();
    }
    return await work({ base, calibration, target, finetunedPath });
  } finally {
    await base.close();
  }
}

type BuildCommon = Omit<Parameters<typeof buildDelta>[2], 'method' | 'q' | 'mask' | 'inputNorms'>;

/** Builds the mask(s) the options ask for and rescales them on the calibration objective. */
async function calibratedDelta(
  session: CalibrationSession,
  baseWeights: WeightMap,
  tunedWeights: WeightMap,
  common: BuildCommon,
  choice: { method: MethodChoice; mask: MaskKind; qScope: QScope; dropRate: number },
): Promise<{ delta: Delta; q: number | null; loss: number | null; passes: number }> {
  const { base, calibration, target } = session;
  const masks = choice.method === 'auto' ? MASK_KINDS : [choice.mask];
  const norms = masks.includes('importance') ? await inputFeatureNorms(session.finetunedPath, calibration) : undefined;
  const maskDelta = (mask: MaskKind) =>
    buildDelta(baseWeights, tunedWeights, {
      ...common,
      method: 'dare',
      mask,
      ...(norms && { inputNorms: norms }),
      extra: { ...common.extra, calibration_samples: String(calibration.size) },
    });

  if (choice.method === 'dare') {
    const delta = maskDelta(choice.mask);
    return { delta, q: null, loss: await calibrationLoss(base, calibration, target, delta), passes: 1 };
  }
  const sparseCount = (delta: Delta) => delta.tensors.filter((t) => t.kind === 'sparse' && t.values.length > 0).length;
  // auto: DAREx-q with one q on DARE's mask, and per-tensor scales on the importance mask; the
  // unscaled masks are scored on the way (q = 1 − p is on the q grid).
  const plans: { mask: MaskKind; scope: QScope }[] =
    choice.method === 'auto'
      ? [
          { mask: 'uniform', scope: 'global' },
          { mask: 'importance', scope: 'tensor' },
        ]
      : [{ mask: choice.mask, scope: choice.qScope }];
  const deltas = plans.map((plan) => ({ plan, delta: maskDelta(plan.mask) }));
  const total = deltas.reduce((n, d) => n + calibrationPasses(d.plan.scope, sparseCount(d.delta)), 0);
  const bar = progressBar('calibrating');
  let done = 0;
  const candidates: { name: string; delta: Delta; q: number | null; loss: number }[] = [];
  for (const { plan, delta } of deltas) {
    const offset = done;
    const result = await calibrate(base, calibration, target, delta, {
      scope: plan.scope,
      dropRate: choice.dropRate,
      onProgress: (pass, _passes, best) => {
        done = offset + pass;
        bar.update(done, total, `${plan.mask}/${plan.scope} best loss ${best.toExponential(3)}`);
      },
    });
    candidates.push({ name: `dare+${plan.mask}`, delta, q: null, loss: result.maskLoss });
    candidates.push({
      name: `darex-q+${plan.mask}+${plan.scope}`,
      delta: result.delta,
      q: result.q,
      loss: result.loss,
    });
  }
  bar.finish(`${done} passes`);
  const pick =
    choice.method === 'auto'
      ? candidates.reduce((a, b) => (b.loss < a.loss ? b : a))
      : candidates[candidates.length - 1]!;
  const delta =
    choice.method === 'auto'
      ? {
          ...pick.delta,
          metadata: {
            ...pick.delta.metadata,
            extra: {
              ...pick.delta.metadata.extra,
              auto_choice: pick.name,
              auto_candidates: JSON.stringify(candidates.map((c) => [c.name, c.loss])),
            },
          },
        }
      : pick.delta;
  return { delta, q: pick.q, loss: pick.loss, passes: done };
}
