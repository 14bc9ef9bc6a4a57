/** Accuracy and output-distance measurements over a sample set, in chunks. */
import type { Delta } from '../deltas/types.js';
import type { NamedTensors } from '../engine/tensors.js';
import type { LocalRunner } from './local-runner.js';
import { sliceSamples, type SampleSet } from './dataset.js';

export interface AccuracyOptions {
  /** Only the first `classes` logits compete (tasks with fewer classes than the base head). */
  readonly classes?: number;
  readonly batchSize?: number;
  readonly outputName?: string;
}

export async function predictAll(
  runner: LocalRunner,
  set: SampleSet,
  delta: Delta | null,
  options: AccuracyOptions = {},
): Promise<Float32Array> {
  const batch = options.batchSize ?? 256;
  const outputName = options.outputName ?? runner.base.io.outputs[0]!.name;
  const parts: Float32Array[] = [];
  for (let start = 0; start < set.size; start += batch) {
    const outputs: NamedTensors = await runner.run(
      sliceSamples(set.inputs, start, Math.min(set.size, start + batch)),
      delta,
    );
    parts.push(outputs[outputName]!.data as Float32Array);
  }
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** Fraction of samples whose arg-max over the first `classes` logits equals the label. */
export function accuracyOf(logits: Float32Array, labels: Uint8Array, classes?: number): number {
  const width = logits.length / labels.length;
  const k = classes ?? width;
  let correct = 0;
  for (let s = 0; s < labels.length; s++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[s * width + c]! > logits[s * width + best]!) best = c;
    if (best === labels[s]) correct++;
  }
  return correct / labels.length;
}
