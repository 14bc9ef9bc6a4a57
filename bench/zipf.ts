/** Task popularity for load benchmarks: index k (0-based) drawn with probability ∝ 1 / (k + 1), Zipf(1.0), from a fixed seed. */
import { SeededRng } from '../src/core/rng.js';

export function zipfSampler(n: number, seed: number): () => number {
  const weights = Array.from({ length: n }, (_, k) => 1 / (k + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let acc = 0;
  for (const w of weights) cdf.push((acc += w / total));
  const rng = new SeededRng(seed);
  return () => {
    const u = rng.nextFloat();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
