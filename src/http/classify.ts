/** Logits → the task's top labels: softmax over the task's first `numClasses` logits. */

export interface LabelProbability {
  readonly label: string;
  readonly probability: number;
}

export function topLabels(
  logits: ArrayLike<number>,
  labels: readonly string[] | null,
  numClasses: number | null,
  top: number,
): LabelProbability[] {
  const k = Math.min(numClasses ?? logits.length, logits.length);
  let max = -Infinity;
  for (let i = 0; i < k; i++) max = Math.max(max, logits[i]!);
  const exp = new Float64Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) {
    exp[i] = Math.exp(logits[i]! - max); // shifted by the max: no overflow
    sum += exp[i]!;
  }
  const ranked = Array.from({ length: k }, (_, i) => ({ label: labels?.[i] ?? String(i), probability: exp[i]! / sum }));
  ranked.sort((a, b) => b.probability - a.probability);
  return ranked.slice(0, Math.max(1, top));
}
