/**
 * DARE's random drop (Yu et al. 2023): every delta entry is dropped independently with
 * probability p. Instead of drawing one Bernoulli per entry we draw the gaps between kept
 * entries, which are geometric: P(gap = k) = p^k (1 − p). The result has exactly the same
 * distribution as per-entry Bernoulli draws, but costs one random number per KEPT entry,
 * which is what makes compressing a 85 M-parameter model take well under a second.
 */
import type { SeededRng } from '../core/rng.js';

/** Sorted flat positions of the entries DARE keeps among `length` entries at drop rate p. */
export function dareKeptIndices(length: number, dropRate: number, rng: SeededRng): Uint32Array {
  assertDropRate(dropRate);
  if (dropRate === 0) return Uint32Array.from({ length }, (_, i) => i);
  const logDrop = Math.log(dropRate);
  // Expected count plus generous slack; grown if a rare draw needs more.
  let kept: Uint32Array = new Uint32Array(
    Math.min(length, Math.ceil(length * (1 - dropRate) + 8 * Math.sqrt(length) + 16)),
  );
  let count = 0;
  let position = Math.floor(Math.log(rng.nextOpenFloat()) / logDrop);
  while (position < length) {
    if (count === kept.length) kept = grow(kept, length);
    kept[count++] = position;
    position += 1 + Math.floor(Math.log(rng.nextOpenFloat()) / logDrop);
  }
  return kept.slice(0, count);
}

/** Values kept at `indices`, each multiplied by `rescale`: δ̂ = (1 − m) ⊙ δ · rescale. */
export function gatherScaledDelta(
  base: Float32Array,
  finetuned: Float32Array,
  indices: Uint32Array,
  rescale: number,
): Float32Array {
  const values = new Float32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    values[k] = (finetuned[i]! - base[i]!) * rescale;
  }
  return values;
}

export function assertDropRate(dropRate: number): void {
  if (!(dropRate >= 0 && dropRate < 1)) {
    throw new RangeError(`drop rate must be in [0, 1), got ${dropRate}`);
  }
}

function grow(array: Uint32Array, limit: number): Uint32Array {
  const bigger = new Uint32Array(Math.min(limit, array.length * 2 + 16));
  bigger.set(array);
  return bigger;
}
