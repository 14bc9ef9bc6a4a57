/**
 * Chooses how hard to clip quantized values by what the quantization does to the model's output,
 * not to the weights: each clip factor on a small grid is scored with the same label-free
 * objective as the q search (mean squared logit change against the fine-tuned model on the
 * calibration inputs) and the lowest wins. Clipping shrinks every group's scale, which rounds
 * the many small kept values more finely at the cost of the few largest; which side wins depends
 * on how the errors add up through the network, hence the forward passes.
 */
import { DEFAULT_GROUP, encodingOf, quantizeDelta, type ValueChoice } from '../compress/quantize.js';
import type { Delta } from '../deltas/types.js';
import { calibrationLoss } from './darex-q.js';
import type { SampleSet } from './dataset.js';
import type { LocalRunner } from './local-runner.js';

/** Clip factors tried (1 = no clipping, the weight-error bound of value-quant.ts). */
export const CLIP_GRID: Readonly<Record<'int8' | 'int4', readonly number[]>> = {
  int8: [1, 0.9],
  int4: [1, 0.9, 0.8, 0.7],
};

export interface QuantizedCalibration {
  readonly delta: Delta;
  readonly clip: number;
  readonly loss: number;
  readonly passes: number;
  readonly steps: readonly { clip: number; loss: number }[];
}

export async function calibrateQuantization(
  base: LocalRunner,
  calibration: SampleSet,
  target: Float32Array,
  delta: Delta,
  choice: ValueChoice,
  group = DEFAULT_GROUP,
): Promise<QuantizedCalibration> {
  if (encodingOf(choice) === null) {
    const plain = quantizeDelta(delta, choice);
    const loss = await calibrationLoss(base, calibration, target, plain);
    return { delta: plain, clip: 1, loss, passes: 1, steps: [{ clip: 1, loss }] };
  }
  const steps: { clip: number; loss: number }[] = [];
  let best: { delta: Delta; clip: number; loss: number } | null = null;
  for (const clip of CLIP_GRID[choice as 'int8' | 'int4']) {
    const candidate = quantizeDelta(delta, choice, group, clip);
    const loss = await calibrationLoss(base, calibration, target, candidate);
    steps.push({ clip, loss });
    if (best === null || loss < best.loss) best = { delta: candidate, clip, loss };
  }
  const chosen = best!;
  const extra = {
    ...chosen.delta.metadata.extra,
    quant_search: 'label-free: clip factor with the least mean squared logit change vs the fine-tuned model',
    quant_search_steps: JSON.stringify(steps.map((s) => [s.clip, s.loss])),
  };
  return {
    delta: { ...chosen.delta, metadata: { ...chosen.delta.metadata, extra } },
    clip: chosen.clip,
    loss: chosen.loss,
    passes: steps.length,
    steps,
  };
}
