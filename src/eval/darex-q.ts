/**
 * DAREx-q's label-free q choice run for real: one DARE mask, re-scaled per candidate q, scored
 * by how far the base + candidate's logits move from the fine-tuned model's on unlabelled
 * calibration inputs. Shared by `deltaserve compress --method darex-q` and `npm run zoo`.
 */
import { withRescale } from '../compress/build-delta.js';
import { meanSquaredDifference, searchQ, type QSearchResult, type QSearchStep } from '../compress/q-search.js';
import type { Delta } from '../deltas/types.js';
import { predictAll } from './accuracy.js';
import type { SampleSet } from './dataset.js';
import type { LocalRunner } from './local-runner.js';

export interface DarexQChoice {
  readonly delta: Delta;
  readonly search: QSearchResult;
}

/** `target`: the fine-tuned model's logits on `calibration` (predictAll of a runner on it). */
export async function chooseDarexQ(
  base: LocalRunner,
  calibration: SampleSet,
  target: Float32Array,
  dare: Delta,
  dropRate: number,
  onProgress?: (step: QSearchStep) => void,
): Promise<DarexQChoice> {
  const search = await searchQ(
    async (q) => meanSquaredDifference(await predictAll(base, calibration, withRescale(dare, 'darex-q', 1 / q)), target),
    { dropRate, ...(onProgress && { onProgress }) },
  );
  const delta = withRescale(dare, 'darex-q', 1 / search.q, {
    q_search: 'label-free: min mean squared logit change vs the fine-tuned model',
    q_search_samples: String(calibration.size),
    q_search_loss: String(search.loss),
    q_search_steps: JSON.stringify(search.steps.map((s) => [s.stage, s.q, s.loss])),
  });
  return { delta, search };
}
