/**
 * A fine-tune's state dict → the base ONNX's weights with the fine-tuned values put in, keyed by
 * initializer name: exactly what `--finetuned ft.onnx` would have given, so the delta is the same.
 * Initializers no fine-tune tensor maps to keep the base's values (they contribute no delta).
 *
 * Every fine-tune tensor must be mapped, ignored by an `--ignore` glob, or unchanged from the
 * base's state dict (then it contributes nothing and is skipped); anything else is an error that
 * lists each tensor with the reason the name map recorded for it.
 */
import { DS_ERR_NAME_MAP, DS_ERR_STATE_DICT } from '../../core/errors.js';
import { globToRegExp } from '../../core/glob.js';
import type { WeightMap, WeightTensor } from '../build-delta.js';
import { transpose } from './match-names.js';
import type { NameMap } from './name-map.js';
import type { StateDict } from './read-state-dict.js';

export interface FinetuneWeights {
  readonly weights: WeightMap;
  /** Fine-tune tensors mapped to an initializer. */
  readonly mapped: number;
  readonly ignored: readonly string[];
  /** Unmapped tensors whose values equal the base state dict's: no delta, skipped. */
  readonly unchanged: readonly string[];
  /** Mapped base tensors the fine-tune does not have (they keep the base's values). */
  readonly absent: readonly string[];
}

export function finetuneWeights(options: {
  readonly base: WeightMap;
  readonly map: NameMap;
  readonly finetuned: StateDict;
  /** The base's state dict, when given: lets unchanged unmapped tensors through. */
  readonly baseStateDict: StateDict | null;
  readonly ignore: readonly string[];
}): FinetuneWeights {
  const { base, map, finetuned, baseStateDict } = options;
  const ignore = options.ignore.map(globToRegExp);
  const weights = new Map<string, WeightTensor>(base);
  const written = new Map<string, string>();
  const ignored: string[] = [];
  const unchanged: string[] = [];
  const problems: string[] = [];

  for (const [name, tensor] of finetuned.tensors) {
    if (ignore.some((re) => re.test(name))) {
      ignored.push(name);
      continue;
    }
    const entry = map.tensors[name];
    if (!entry) {
      const before = baseStateDict?.tensors.get(name);
      if (before && sameValues(before.data, tensor.data) && sameShape(before.shape, tensor.shape)) {
        unchanged.push(name);
        continue;
      }
      const known = map.unmatched[name];
      problems.push(
        known
          ? `"${name}": ${known.reason}`
          : `"${name}" is not in the base's state dict (another architecture or a renamed module?); --ignore it or add it to a --name-map file`,
      );
      continue;
    }
    if (!sameShape(entry.shape, tensor.shape)) {
      problems.push(
        `"${name}" has shape [${tensor.shape.join(', ')}] but [${entry.shape.join(', ')}] in the base's state dict (a state dict of another base?)`,
      );
      continue;
    }
    const target = base.get(entry.initializer);
    if (!target) {
      throw new DS_ERR_NAME_MAP(
        `"${name}" maps to initializer "${entry.initializer}", which the base ONNX does not have (a name map of another base?)`,
      );
    }
    const data =
      entry.layout === 'transposed'
        ? transpose(tensor.data, tensor.shape[0]!, tensor.shape[1]!)
        : Float32Array.from(tensor.data);
    if (data.length !== target.data.length) {
      throw new DS_ERR_NAME_MAP(
        `"${name}" has ${data.length} values but initializer "${entry.initializer}" holds ${target.data.length}`,
      );
    }
    const earlier = written.get(entry.initializer);
    if (earlier !== undefined && !sameValues(weights.get(entry.initializer)!.data, data)) {
      problems.push(
        `"${name}" and "${earlier}" both map to initializer "${entry.initializer}" (tied weights) but differ in the fine-tune`,
      );
      continue;
    }
    written.set(entry.initializer, name);
    weights.set(entry.initializer, { shape: target.shape, data });
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 8).join('; ');
    const more = problems.length > 8 ? `; and ${problems.length - 8} more` : '';
    throw new DS_ERR_STATE_DICT(
      finetuned.path,
      `${problems.length} tensor(s) have no initializer to go to: ${shown}${more}`,
    );
  }
  const mappedNames = new Set(written.values());
  const absent = Object.keys(map.tensors).filter(
    (name) => !finetuned.tensors.has(name) && !ignored.includes(name) && !mappedNames.has(name),
  );
  return { weights, mapped: written.size, ignored, unchanged, absent: absent.sort() };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}
