/**
 * Magnitude pruning of a delta: keep exactly the `keep` entries of largest |δ| (ties broken by
 * lower index), with no rescale — rescaling magnitude-pruned deltas by 1/(1 − p) hurts
 * (DAREx paper, Deng et al., ICLR 2025). Selection is an O(n) quickselect on the magnitudes, not a sort.
 */

/** Sorted flat positions of the `keep` largest-magnitude entries of `delta`. */
export function largestMagnitudeIndices(delta: Float32Array, keep: number): Uint32Array {
  if (!Number.isInteger(keep) || keep < 0 || keep > delta.length) {
    throw new RangeError(`keep must be an integer in [0, ${delta.length}], got ${keep}`);
  }
  if (keep === 0) return new Uint32Array(0);
  if (keep === delta.length) return Uint32Array.from({ length: keep }, (_, i) => i);

  const magnitudes = new Float32Array(delta.length);
  for (let i = 0; i < delta.length; i++) magnitudes[i] = Math.abs(delta[i]!);
  const threshold = kthLargest(magnitudes, keep);

  let above = 0;
  for (let i = 0; i < delta.length; i++) if (Math.abs(delta[i]!) > threshold) above++;
  let tiesToTake = keep - above;

  const indices = new Uint32Array(keep);
  let count = 0;
  for (let i = 0; i < delta.length; i++) {
    const magnitude = Math.abs(delta[i]!);
    if (magnitude > threshold || (magnitude === threshold && tiesToTake-- > 0)) indices[count++] = i;
  }
  return indices;
}

/** The k-th largest value (1-based) of `values`; reorders `values` in place. */
function kthLargest(values: Float32Array, k: number): number {
  const target = values.length - k; // position in ascending order
  let low = 0;
  let high = values.length - 1;
  while (low < high) {
    const pivot = medianOfThree(values[low]!, values[(low + high) >>> 1]!, values[high]!);
    let i = low;
    let j = high;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const swap = values[i]!;
        values[i] = values[j]!;
        values[j] = swap;
        i++;
        j--;
      }
    }
    if (target <= j) high = j;
    else if (target >= i) low = i;
    else return values[target]!;
  }
  return values[target]!;
}

function medianOfThree(a: number, b: number, c: number): number {
  if (a < b) return b < c ? b : a < c ? c : a;
  return a < c ? a : b < c ? c : b;
}
