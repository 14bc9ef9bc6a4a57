/**
 * DAREx-q's label-free choice of q (Deng et al., ICLR 2025): rescale the kept entries by 1/q
 * with q ≥ 1 − p, and pick the q whose pruned model's outputs move least from the fine-tuned
 * model's on a small unlabeled calibration batch. As in the paper's code, a coarse grid first,
 * then a finer grid around the coarse winner.
 *
 * The coarse grid is log-spaced between 1 − p and 1 because the useful q at high drop rates
 * sits within a small multiple of 1 − p (p = 0.99 → q around 0.01–0.05), where a linear grid
 * would spend almost every point on hopeless values.
 */

export interface QSearchOptions {
  readonly dropRate: number;
  readonly coarsePoints?: number;
  readonly finePoints?: number;
  readonly onProgress?: (step: QSearchStep) => void;
}

export interface QSearchStep {
  readonly stage: 'coarse' | 'fine';
  readonly q: number;
  readonly loss: number;
}

export interface QSearchResult {
  readonly q: number;
  readonly loss: number;
  readonly steps: readonly QSearchStep[];
}

/** `lossFor(q)`: distance of the 1/q-rescaled model's outputs from the fine-tuned model's. */
export async function searchQ(
  lossFor: (q: number) => Promise<number>,
  options: QSearchOptions,
): Promise<QSearchResult> {
  const low = 1 - options.dropRate;
  const coarse = logSpaced(low, 1, options.coarsePoints ?? 12);
  const steps: QSearchStep[] = [];
  const evaluate = async (stage: QSearchStep['stage'], q: number): Promise<QSearchStep> => {
    const step = { stage, q, loss: await lossFor(q) };
    if (!Number.isFinite(step.loss)) step.loss = Number.POSITIVE_INFINITY;
    steps.push(step);
    options.onProgress?.(step);
    return step;
  };

  let best: QSearchStep | undefined;
  for (const q of coarse) {
    const step = await evaluate('coarse', q);
    if (!best || step.loss < best.loss) best = step;
  }
  const at = coarse.indexOf(best!.q);
  const from = coarse[Math.max(0, at - 1)]!;
  const to = coarse[Math.min(coarse.length - 1, at + 1)]!;
  for (const q of linearSpaced(from, to, (options.finePoints ?? 8) + 2).slice(1, -1)) {
    if (q === best!.q) continue;
    const step = await evaluate('fine', q);
    if (step.loss < best!.loss) best = step;
  }
  return { q: best!.q, loss: best!.loss, steps };
}

export function logSpaced(from: number, to: number, points: number): number[] {
  if (points < 2) return [from];
  const a = Math.log(from);
  const b = Math.log(to);
  return Array.from({ length: points }, (_, i) => (i === points - 1 ? to : Math.exp(a + ((b - a) * i) / (points - 1))));
}

export function linearSpaced(from: number, to: number, points: number): number[] {
  if (points < 2) return [from];
  return Array.from({ length: points }, (_, i) => from + ((to - from) * i) / (points - 1));
}

/** Mean squared difference of two equally long output buffers: the search's default loss. */
export function meanSquaredDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`outputs differ in length: ${a.length} vs ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  return sum / Math.max(1, a.length);
}
