/**
 * DAREx-q with one q per tensor: coordinate descent over per-tensor scale factors, each sweep
 * trying every tensor's factor a step down and a step up (multiplicatively) and keeping
 * whichever lowers the loss. The loss is the caller's — for the CLI and the zoo, the mean
 * squared change of the logits against the fine-tuned model on unlabelled calibration inputs,
 * DAREx-q's own objective; fitting each layer's output alone instead shrinks every scale
 * towards 0 (it reads the mask's noise as error) and is far worse (measured, issue 15).
 *
 * The pass count is fixed — 1 + 2 × tensors × sweeps — so a progress bar knows its end.
 */

export interface ScaleSearchOptions {
  /** Relative step per sweep: a factor f is tried at f·(1 − h) and f·(1 + h). */
  readonly steps?: readonly number[];
  readonly onProgress?: (step: ScaleSearchStep) => void;
}

export interface ScaleSearchStep {
  readonly pass: number;
  readonly passes: number;
  readonly tensor: string | null;
  readonly factor: number;
  readonly loss: number;
  /** Lowest loss so far. */
  readonly best: number;
}

export interface ScaleSearchResult {
  /** Factor per tensor, relative to the delta the search started from. */
  readonly factors: ReadonlyMap<string, number>;
  readonly initialLoss: number;
  readonly loss: number;
  readonly passes: number;
}

/** Two sweeps: the second mostly fine-tunes what the first moved (3 sweeps gained little on the zoo, at 1.5× the passes). */
export const DEFAULT_SCALE_STEPS: readonly number[] = [0.5, 0.25];

export function scaleSearchPasses(tensors: number, steps: readonly number[] = DEFAULT_SCALE_STEPS): number {
  return 1 + 2 * tensors * steps.length;
}

/** `lossFor(factors)`: the loss with each named tensor's values multiplied by its factor. */
export async function searchTensorScales(
  names: readonly string[],
  lossFor: (factors: ReadonlyMap<string, number>) => Promise<number>,
  options: ScaleSearchOptions = {},
): Promise<ScaleSearchResult> {
  const steps = options.steps ?? DEFAULT_SCALE_STEPS;
  for (const h of steps) if (!(h > 0 && h < 1)) throw new RangeError(`scale steps must be in (0, 1), got ${h}`);
  const passes = scaleSearchPasses(names.length, steps);
  const factors = new Map(names.map((name) => [name, 1]));
  let pass = 0;
  const score = async (tensor: string | null, factor: number, trial: ReadonlyMap<string, number>): Promise<number> => {
    let loss = await lossFor(trial);
    if (!Number.isFinite(loss)) loss = Number.POSITIVE_INFINITY;
    pass++;
    options.onProgress?.({ pass, passes, tensor, factor, loss, best: Math.min(loss, best) });
    return loss;
  };
  let best = Number.POSITIVE_INFINITY;
  best = await score(null, 1, factors);
  const initialLoss = best;

  for (const h of steps) {
    for (const name of names) {
      const current = factors.get(name)!;
      let chosen = current;
      for (const candidate of [current * (1 - h), current * (1 + h)]) {
        const loss = await score(name, candidate, new Map(factors).set(name, candidate));
        if (loss < best) {
          best = loss;
          chosen = candidate;
        }
      }
      factors.set(name, chosen);
    }
  }
  return { factors, initialLoss, loss: best, passes };
}
