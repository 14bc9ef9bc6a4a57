/**
 * A PyTorch-style state dict saved as safetensors (`safetensors.torch.save_file(model.state_dict())`,
 * `save_pretrained`): tensor name → float values. F32 is read as is; F16, BF16 and F64 are
 * converted to fp32 (F16 and BF16 exactly, F64 rounded to nearest), and the caller is told which
 * dtypes were converted. Integer and bool tensors (`num_batches_tracked`, position ids) are not
 * weights: they are listed apart and never become part of a delta.
 */
import { readInputFile } from '../../core/read-input-file.js';
import { DS_ERR_STATE_DICT } from '../../core/errors.js';
import { float16ArrayToFloat32 } from '../../deltas/format/float16.js';
import { entryView, parseSafetensors, type SafetensorsDtype } from '../../deltas/format/safetensors.js';
import type { WeightTensor } from '../build-delta.js';

export interface StateDictTensor extends WeightTensor {
  /** The dtype stored in the file, before any conversion to fp32. */
  readonly dtype: 'F32' | 'F16' | 'BF16' | 'F64';
}

export interface StateDict {
  readonly path: string;
  readonly tensors: ReadonlyMap<string, StateDictTensor>;
  /** Dtypes other than F32 that were converted to fp32, with how many tensors each. */
  readonly converted: ReadonlyMap<string, number>;
  /** Non-float tensors (integers, bools): not weights, skipped. */
  readonly nonFloat: readonly string[];
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set(['F32', 'F16', 'BF16', 'F64']);

export async function readStateDict(path: string): Promise<StateDict> {
  return parseStateDict(await readInputFile(path, 'state dict'), path);
}

export function parseStateDict(bytes: Uint8Array, path: string): StateDict {
  let parsed;
  try {
    parsed = parseSafetensors(bytes);
  } catch (error) {
    throw new DS_ERR_STATE_DICT(path, `not a safetensors file: ${(error as Error).message}`);
  }
  const tensors = new Map<string, StateDictTensor>();
  const converted = new Map<string, number>();
  const nonFloat: string[] = [];
  for (const [name, entry] of parsed.tensors) {
    if (!FLOAT_DTYPES.has(entry.dtype)) {
      nonFloat.push(name);
      continue;
    }
    const raw = entryView(bytes, parsed.dataOffset, entry);
    let data: Float32Array;
    switch (entry.dtype) {
      case 'F32':
        data = Float32Array.from(raw as Float32Array);
        break;
      case 'F16':
        data = float16ArrayToFloat32(raw as Uint16Array);
        break;
      case 'BF16':
        data = bfloat16ToFloat32(raw as Uint16Array);
        break;
      default:
        data = Float32Array.from(raw as Float64Array);
    }
    if (entry.dtype !== 'F32') converted.set(entry.dtype, (converted.get(entry.dtype) ?? 0) + 1);
    tensors.set(name, { shape: [...entry.shape], data, dtype: entry.dtype as StateDictTensor['dtype'] });
  }
  if (tensors.size === 0)
    throw new DS_ERR_STATE_DICT(path, 'holds no float tensors (F32, F16, BF16 or F64): nothing to compare');
  return { path, tensors, converted, nonFloat: nonFloat.sort() };
}

/** bfloat16 is the top half of an fp32: widening is a shift. */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const wide = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) wide[i] = bits[i]! << 16;
  return new Float32Array(wide.buffer);
}

/** fp32 → bfloat16 bits, rounded to nearest even (NaN stays NaN): how torch's `.bfloat16()` rounds. */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) out[i] = (b >>> 16) | 0x0040;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** One line for stderr about converted dtypes, or null when everything was F32. */
export function conversionNote(dict: StateDict): string | null {
  if (dict.converted.size === 0) return null;
  const parts = [...dict.converted].map(([dtype, count]) => `${count} ${dtype}`).join(', ');
  return `${dict.path}: ${parts} tensor(s) converted to fp32 (exactly for F16/BF16); deltas are computed in fp32`;
}
