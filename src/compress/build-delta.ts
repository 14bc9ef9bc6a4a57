/**
 * Turns a base and a fine-tuned set of weights into a Delta with one of the pruning methods.
 * Pure computation over typed arrays: reading models, choosing q and writing files live
 * elsewhere, so this is the piece tests can pin down exactly.
 *
 * Randomness: one SeededRng consumes the weights in sorted-name order, so a seed fixes the
 * whole mask regardless of the order a model file lists its initializers in.
 */
import { SeededRng } from '../core/rng.js';
import { DS_ERR_ONNX_INCOMPATIBLE } from '../core/errors.js';
import type { Delta, DeltaMethod, DeltaValueDtype, TensorDelta } from '../deltas/types.js';
import { assertDropRate, dareKeptIndices, gatherScaledDelta } from './dare.js';
import { importanceKept, type InputFeatureNorms } from './importance-mask.js';
import { largestMagnitudeIndices } from './magnitude.js';
import { buildTensorSelector, type TensorSelectionOptions } from './tensor-selection.js';

export interface WeightTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}
export type WeightMap = ReadonlyMap<string, WeightTensor>;

export type PruneMethod = Exclude<DeltaMethod, 'full'>;

/** Which random mask DARE and DAREx-q draw: uniform π = 1 − p, or importance-weighted π (see importance-mask.ts). */
export type MaskKind = 'uniform' | 'importance';
export const MASK_KINDS: readonly MaskKind[] = ['uniform', 'importance'];

export interface BuildDeltaOptions {
  readonly method: PruneMethod;
  /** Fraction of delta entries dropped, in [0, 1). */
  readonly dropRate: number;
  readonly seed: number;
  /** DAREx-q only: kept values are scaled by 1/q (DARE is q = 1 − p). */
  readonly q?: number;
  /** Random methods only; 'uniform' (DARE's) unless given. */
  readonly mask?: MaskKind;
  /** Importance masks: input-feature norms per weight name; weights without an entry use |δ| alone. */
  readonly inputNorms?: ReadonlyMap<string, InputFeatureNorms>;
  readonly valueDtype: DeltaValueDtype;
  readonly selection: TensorSelectionOptions;
  readonly baseFingerprint: string;
  readonly sourceBaseSha256?: string | null;
  readonly sourceFinetunedSha256?: string | null;
  readonly extra?: Readonly<Record<string, string>>;
}

/** The rescale each method applies to kept sparse values. */
export function rescaleFor(method: PruneMethod, dropRate: number, q?: number): number {
  switch (method) {
    case 'dare':
      return 1 / (1 - dropRate);
    case 'darex-q':
      if (q === undefined || !(q > 0 && q <= 1)) throw new RangeError(`darex-q needs q in (0, 1], got ${q}`);
      return 1 / q;
    case 'magnitude':
      return 1;
  }
}

export function buildDelta(base: WeightMap, finetuned: WeightMap, options: BuildDeltaOptions): Delta {
  assertDropRate(options.dropRate);
  const rescale = rescaleFor(options.method, options.dropRate, options.q);
  const mask = options.mask ?? 'uniform';
  if (mask === 'importance' && options.method === 'magnitude')
    throw new RangeError('an importance mask applies to dare and darex-q, not magnitude');
  const select = buildTensorSelector(options.selection);
  const rng = new SeededRng(options.seed);
  const tensors: TensorDelta[] = [];

  for (const name of [...base.keys()].sort()) {
    const baseWeight = base.get(name)!;
    const tunedWeight = finetuned.get(name);
    if (!tunedWeight) throw new DS_ERR_ONNX_INCOMPATIBLE(`weight ${name} is missing from the fine-tuned model`);
    if (!sameShape(baseWeight.shape, tunedWeight.shape)) {
      throw new DS_ERR_ONNX_INCOMPATIBLE(
        `weight ${name} has shape [${tunedWeight.shape}] in the fine-tuned model but [${baseWeight.shape}] in the base`,
      );
    }
    const treatment = select(name);
    if (treatment === 'skip' || !differs(baseWeight.data, tunedWeight.data)) continue;
    if (treatment === 'dense') {
      tensors.push({
        kind: 'dense',
        name,
        shape: [...baseWeight.shape],
        values: subtract(tunedWeight.data, baseWeight.data),
      });
      continue;
    }
    if (mask === 'importance') {
      // δ/π is the unbiased estimate; DARE's own factor 1/(1 − p) is the nominal rescale, so a
      // DAREx-q q scales it by (1 − p)/q exactly as it scales DARE's uniform 1/(1 − p).
      const sample = importanceKept(
        subtract(tunedWeight.data, baseWeight.data),
        options.inputNorms?.get(name),
        options.dropRate,
        rng,
      );
      const shrink = rescale * (1 - options.dropRate);
      if (shrink !== 1) for (let k = 0; k < sample.values.length; k++) sample.values[k] = sample.values[k]! * shrink;
      tensors.push({
        kind: 'sparse',
        name,
        shape: [...baseWeight.shape],
        indices: sample.indices,
        values: sample.values,
        rescale,
      });
      continue;
    }
    const indices = keptIndices(options, baseWeight.data, tunedWeight.data, rng);
    tensors.push({
      kind: 'sparse',
      name,
      shape: [...baseWeight.shape],
      indices,
      values: gatherScaledDelta(baseWeight.data, tunedWeight.data, indices, rescale),
      rescale,
    });
  }
  for (const name of finetuned.keys()) {
    if (!base.has(name))
      throw new DS_ERR_ONNX_INCOMPATIBLE(`weight ${name} of the fine-tuned model is not in the base`);
  }

  return {
    metadata: {
      formatVersion: 1,
      baseFingerprint: options.baseFingerprint,
      method: options.method,
      dropRate: options.dropRate,
      rescale,
      seed: options.method === 'magnitude' ? null : options.seed,
      valueDtype: options.valueDtype,
      sourceBaseSha256: options.sourceBaseSha256 ?? null,
      sourceFinetunedSha256: options.sourceFinetunedSha256 ?? null,
      extra: { ...(options.method !== 'magnitude' && { mask }), ...options.extra },
    },
    tensors,
  };
}

/** Same mask, new rescale: DAREx-q's search re-scales one DARE mask for many q. */
export function withRescale(delta: Delta, method: PruneMethod, rescale: number, extra?: Record<string, string>): Delta {
  const tensors = delta.tensors.map((tensor): TensorDelta => {
    if (tensor.kind === 'dense') return tensor;
    const factor = rescale / tensor.rescale;
    const { quantized: _stale, ...plain } = tensor; // rescaled values are no longer the codes' values
    return { ...plain, values: tensor.values.map((v) => v * factor), rescale };
  });
  return { metadata: { ...delta.metadata, method, rescale, extra: { ...delta.metadata.extra, ...extra } }, tensors };
}

/**
 * Same mask, one extra factor per named tensor (others unchanged): what the per-tensor scale
 * search tries and finally keeps. Each tensor's `rescale` is multiplied by the same factor.
 */
export function withTensorScales(
  delta: Delta,
  factors: ReadonlyMap<string, number>,
  extra?: Record<string, string>,
): Delta {
  const tensors = delta.tensors.map((tensor): TensorDelta => {
    const factor = factors.get(tensor.name);
    if (tensor.kind === 'dense' || factor === undefined || factor === 1) return tensor;
    const { quantized: _stale, ...plain } = tensor; // rescaled values are no longer the codes' values
    return { ...plain, values: tensor.values.map((v) => v * factor), rescale: tensor.rescale * factor };
  });
  return { metadata: { ...delta.metadata, extra: { ...delta.metadata.extra, ...extra } }, tensors };
}

function keptIndices(options: BuildDeltaOptions, base: Float32Array, tuned: Float32Array, rng: SeededRng): Uint32Array {
  if (options.method === 'magnitude') {
    const keep = Math.round(base.length * (1 - options.dropRate));
    return largestMagnitudeIndices(subtract(tuned, base), keep);
  }
  return dareKeptIndices(base.length, options.dropRate, rng);
}

function subtract(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

function differs(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return true;
  return false;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
