/**
 * DAREx-q's label-free rescaling run for real, on one fixed mask (DARE's uniform one or the
 * importance mask): how far the base + candidate's logits move from the fine-tuned model's on
 * unlabelled calibration inputs is the objective. Scope `global` searches one q for the whole
 * delta (DAREx-q as published); scope `tensor` starts from that q and refines one factor per
 * tensor by coordinate descent (src/compress/scale-search.ts). Shared by
 * `deltaserve compress` and `npm run zoo`.
 */
import { withRescale, withTensorScales } from '../compress/build-delta.js';
import { meanSquaredDifference, searchQ, type QSearchResult } from '../compress/q-search.js';
import { scaleSearchPasses, searchTensorScales, type ScaleSearchResult } from '../compress/scale-search.js';
import type { Delta } from '../deltas/types.js';
import { predictAll } from './accuracy.js';
import type { SampleSet } from './dataset.js';
import type { LocalRunner } from './local-runner.js';

export type QScope = 'global' | 'tensor';
export const Q_SCOPES: readonly QScope[] = ['global', 'tensor'];

/** Where the search is: `pass` of `passes` calibration forward passes, lowest loss so far. */
export type CalibrationProgress = (pass: number, passes: number, best: number) => void;

export interface CalibrationOptions {
  readonly scope: QScope;
  readonly dropRate: number;
  /** Coordinate-descent steps for scope `tensor` (default DEFAULT_SCALE_STEPS). */
  readonly steps?: readonly number[];
  readonly onProgress?: CalibrationProgress;
}

export interface CalibratedDelta {
  readonly delta: Delta;
  /** The global q (scope `tensor` refines from it). */
  readonly q: number;
  /** Objective of the mask as given (q = 1 − p), and of the result. */
  readonly maskLoss: number;
  readonly loss: number;
  readonly passes: number;
  readonly search: QSearchResult;
  readonly tensorSearch: ScaleSearchResult | null;
}

/** Calibration forward passes one `calibrate` call costs (at most, for the q search). */
export function calibrationPasses(scope: QScope, sparseTensors: number, steps?: readonly number[]): number {
  const qSearch = 12 + 8;
  return scope === 'global' ? qSearch : qSearch + scaleSearchPasses(sparseTensors, steps);
}

/** The calibration objective: mean squared logit change against `target` with `delta` applied. */
export async function calibrationLoss(
  base: LocalRunner,
  calibration: SampleSet,
  target: Float32Array,
  delta: Delta,
): Promise<number> {
  return meanSquaredDifference(await predictAll(base, calibration, delta), target);
}

/** `target`: the fine-tuned model's logits on `calibration` (predictAll of a runner on it). */
export async function calibrate(
  base: LocalRunner,
  calibration: SampleSet,
  target: Float32Array,
  masked: Delta,
  options: CalibrationOptions,
): Promise<CalibratedDelta> {
  const sparse = masked.tensors.filter((t) => t.kind === 'sparse' && t.values.length > 0).map((t) => t.name);
  const passes = calibrationPasses(options.scope, sparse.length, options.steps);
  let pass = 0;
  let best = Number.POSITIVE_INFINITY;
  const loss = async (delta: Delta) => {
    const value = await calibrationLoss(base, calibration, target, delta);
    best = Math.min(best, Number.isFinite(value) ? value : Number.POSITIVE_INFINITY);
    pass++;
    options.onProgress?.(pass, passes, best);
    return value;
  };

  const search = await searchQ(async (q) => loss(withRescale(masked, 'darex-q', 1 / q)), {
    dropRate: options.dropRate,
  });
  // The coarse grid starts at q = 1 − p (up to rounding in the log spacing): the mask as given.
  const maskLoss = search.steps[0]!.loss;
  const globalDelta = withRescale(masked, 'darex-q', 1 / search.q, {
    q_scope: 'global',
    q_search: 'label-free: min mean squared logit change vs the fine-tuned model',
    q_search_samples: String(calibration.size),
    q_search_loss: String(search.loss),
    q_search_steps: JSON.stringify(search.steps.map((s) => [s.stage, s.q, s.loss])),
  });
  if (options.scope === 'global') {
    return { delta: globalDelta, q: search.q, maskLoss, loss: search.loss, passes: pass, search, tensorSearch: null };
  }

  const tensorSearch = await searchTensorScales(
    sparse,
    async (factors) => loss(withTensorScales(globalDelta, factors)),
    {
      ...(options.steps && { steps: options.steps }),
    },
  );
  const refined = withTensorScales(globalDelta, tensorSearch.factors);
  const nominal = 1 - options.dropRate;
  const scales = Object.fromEntries(
    refined.tensors
      .filter((t) => t.kind === 'sparse')
      .map((t) => [t.name, Number((t.rescale * nominal).toPrecision(4))]),
  );
  const delta = withTensorScales(refined, new Map(), {
    q_scope: 'tensor',
    scale_search: 'coordinate descent per tensor on the same objective, from the global q',
    scale_search_loss: String(tensorSearch.loss),
    scale_search_passes: String(tensorSearch.passes),
    scales: JSON.stringify(scales),
  });
  return { delta, q: search.q, maskLoss, loss: tensorSearch.loss, passes: pass, search, tensorSearch };
}
