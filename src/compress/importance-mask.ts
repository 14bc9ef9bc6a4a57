/**
 * Importance-weighted random drop: entry (i, j) of a weight is kept with probability
 * πᵢⱼ = min(1, c · |δᵢⱼ| · ‖xᵢ‖), where ‖xᵢ‖ is the norm of the input feature i the entry
 * multiplies over unlabelled calibration activations (WANDA's importance), and c is chosen so
 * that Σ πᵢⱼ equals DARE's expected kept count n(1 − p). A kept entry is stored as δᵢⱼ / πᵢⱼ,
 * so E[δ̂] = δ exactly, as with DARE's uniform π = 1 − p — but the budget goes where the
 * delta moves the outputs most, which lowers the variance DARE pays at high p.
 */
import type { SeededRng } from '../core/rng.js';
import { assertDropRate } from './dare.js';

/**
 * How a weight's flat positions map to the input feature they multiply: a weight of shape
 * [rows, cols] fed as MatMul's B has feature `floor(k / cols)`; anything without a known
 * input (biases, norms, embeddings) has one feature for all entries (π ∝ |δ| only).
 */
export interface InputFeatureNorms {
  /** ‖xᵢ‖ per input feature. */
  readonly norms: Float32Array;
  /** Entries per feature row: flat position k belongs to feature floor(k / rowLength). */
  readonly rowLength: number;
}

/**
 * Keep probabilities πₖ = min(1, c·wₖ) with Σ πₖ = `expectedKept` (capped water-filling): the
 * capped set only grows from one iteration to the next, so the loop ends within a few passes.
 */
export function keepProbabilities(importance: Float32Array, expectedKept: number): Float32Array {
  const probabilities = new Float32Array(importance.length);
  let positive = 0;
  for (const w of importance) if (w > 0) positive++;
  if (expectedKept >= positive) {
    for (let k = 0; k < importance.length; k++) probabilities[k] = importance[k]! > 0 ? 1 : 0;
    return probabilities;
  }
  let cap = Number.POSITIVE_INFINITY; // entries with w >= cap are kept for sure
  for (;;) {
    let cappedCount = 0;
    let uncappedSum = 0;
    for (const w of importance) {
      if (w >= cap) cappedCount++;
      else uncappedSum += w;
    }
    const c = (expectedKept - cappedCount) / uncappedSum;
    const nextCap = 1 / c;
    let grows = false;
    for (const w of importance) {
      if (w < cap && w >= nextCap) {
        grows = true;
        break;
      }
    }
    if (!grows) {
      for (let k = 0; k < importance.length; k++)
        probabilities[k] = importance[k]! >= cap ? 1 : Math.min(1, importance[k]! * c);
      return probabilities;
    }
    cap = nextCap;
  }
}

/** |δₖ| · ‖x_feature(k)‖, with input norms floored at 1e-3 of their mean so no kept value explodes. */
export function importanceOf(delta: Float32Array, inputs: InputFeatureNorms | undefined): Float32Array {
  const out = new Float32Array(delta.length);
  if (!inputs) {
    for (let k = 0; k < delta.length; k++) out[k] = Math.abs(delta[k]!);
    return out;
  }
  let mean = 0;
  for (const n of inputs.norms) mean += n;
  mean /= Math.max(1, inputs.norms.length);
  const floor = mean * 1e-3;
  for (let k = 0; k < delta.length; k++) {
    const norm = Math.max(floor, inputs.norms[Math.floor(k / inputs.rowLength)]!);
    out[k] = Math.abs(delta[k]!) * norm;
  }
  return out;
}

export interface ImportanceSample {
  readonly indices: Uint32Array;
  /** δₖ / πₖ at each kept position: the unbiased estimate before any extra scale. */
  readonly values: Float32Array;
}

/** Draws one importance mask for `delta` at drop rate p: one uniform draw per entry with πₖ > 0. */
export function importanceKept(
  delta: Float32Array,
  inputs: InputFeatureNorms | undefined,
  dropRate: number,
  rng: SeededRng,
): ImportanceSample {
  assertDropRate(dropRate);
  if (inputs && inputs.norms.length * inputs.rowLength !== delta.length) {
    throw new RangeError(
      `input norms cover ${inputs.norms.length} × ${inputs.rowLength} entries, the weight has ${delta.length}`,
    );
  }
  const probabilities = keepProbabilities(importanceOf(delta, inputs), delta.length * (1 - dropRate));
  const indices: number[] = [];
  const values: number[] = [];
  for (let k = 0; k < delta.length; k++) {
    const pi = probabilities[k]!;
    if (pi <= 0) continue;
    if (pi >= 1 || rng.nextOpenFloat() < pi) {
      indices.push(k);
      values.push(delta[k]! / pi);
    }
  }
  return { indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}
