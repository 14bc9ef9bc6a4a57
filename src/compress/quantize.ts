/**
 * The last step of compression when values are quantized: every sparse weight's kept values
 * become group-wise I8 or I4 codes with fp16 scales (src/deltas/format/value-quant.ts), and the
 * delta moves to format version 2, which stores them. Dense weights (the classifier head) keep
 * the delta's value dtype. `clip` shrinks every group's scale by the same factor; the calibration
 * search in src/eval/quantize-search.ts picks it on the output error.
 */
import { columnMajorPermutation, permuted } from '../deltas/format/column-order.js';
import { dequantizeValues, quantizeValues } from '../deltas/format/value-quant.js';
import type { Delta, QuantValueEncoding, SparseTensorDelta, TensorDelta } from '../deltas/types.js';

/** What `compress --values` offers: fp16 keeps today's values (in format version 2). */
export type ValueChoice = 'fp16' | 'int8' | 'int4';
export const VALUE_CHOICES: readonly ValueChoice[] = ['fp16', 'int8', 'int4'];
export const DEFAULT_GROUP = 64;

export function encodingOf(choice: ValueChoice): QuantValueEncoding | null {
  return choice === 'int8' ? 'I8' : choice === 'int4' ? 'I4' : null;
}

/**
 * The delta in format version 2, its sparse values quantized when `choice` asks for it, and
 * sparse weights with no kept entry left out (they add nothing).
 */
export function quantizeDelta(delta: Delta, choice: ValueChoice, group = DEFAULT_GROUP, clip = 1): Delta {
  const encoding = encodingOf(choice);
  const metadata = {
    ...delta.metadata,
    formatVersion: 2 as const,
    valueDtype: delta.metadata.valueDtype,
    extra: {
      ...delta.metadata.extra,
      values: choice,
      ...(encoding !== null && { quant_group: String(group), quant_clip: String(clip) }),
    },
  };
  // A weight whose every entry was dropped changes nothing: leave it out rather than spend a
  // header record on it (a small model's p = 0.99 delta has dozens of such bias/norm vectors).
  const kept = delta.tensors.filter((tensor) => tensor.kind === 'dense' || tensor.indices.length > 0);
  if (encoding === null) return { metadata, tensors: kept };
  const tensors = kept.map((tensor): TensorDelta =>
    tensor.kind === 'dense' ? tensor : quantizeTensor(tensor, encoding, group, clip),
  );
  return { metadata, tensors };
}

/**
 * One sparse weight's values as codes. A 2-D weight's groups run column by column (`order:
 * 'column'`), the order the side-path kernel reads them in, so mixed mode's cache keeps the codes
 * as they are (docs/delta-format.md §2.4); other weights' run in index order.
 */
export function quantizeTensor(
  tensor: SparseTensorDelta,
  encoding: QuantValueEncoding,
  group: number,
  clip = 1,
): SparseTensorDelta {
  if (tensor.shape.length !== 2) {
    const quantized = quantizeValues(tensor.values, encoding, group, clip);
    return { ...tensor, values: dequantizeValues(tensor.name, quantized), quantized };
  }
  const listed = columnMajorPermutation(tensor.indices, tensor.shape[1]!);
  const quantized = {
    ...quantizeValues(permuted(tensor.values, listed), encoding, group, clip),
    order: 'column' as const,
  };
  const byColumn = dequantizeValues(tensor.name, quantized);
  const values = new Float32Array(byColumn.length);
  for (let k = 0; k < listed.length; k++) values[listed[k]!] = byColumn[k]!;
  return { ...tensor, values, quantized };
}
