/**
 * Finds which ONNX initializer each tensor of the base's state dict became, by value: exporters
 * rename weights (`onnx::MatMul_1234`) and store nn.Linear weights transposed, but they copy the
 * values. A state-dict tensor maps to the initializer holding exactly its values — in the same
 * layout, transposed (2-D), or, failing both, the same row-major values under another shape.
 * Half-precision state dicts are compared with each initializer rounded to their dtype.
 *
 * Tensors with no such initializer are explained, not guessed: several equal candidates
 * (ambiguous), a contiguous block of a larger initializer (fused, e.g. Q/K/V concatenated),
 * a shape that some initializer has but no values that match (folded: scaled or merged by the
 * exporter), or a shape no initializer has.
 */
import { createHash } from 'node:crypto';
import { DS_ERR_NAME_MAP } from '../../core/errors.js';
import { float16ArrayToFloat32, float32ArrayToFloat16 } from '../../deltas/format/float16.js';
import type { WeightMap } from '../build-delta.js';
import type { NameMap, NameMapEntry, NameMapLayout, UnmatchedTensor } from './name-map.js';
import { bfloat16ToFloat32, float32ToBfloat16, type StateDict, type StateDictTensor } from './read-state-dict.js';

export interface MatchInputs {
  readonly stateDict: StateDict;
  readonly initializers: WeightMap;
  readonly baseFingerprint: string;
  readonly baseWeightsSha256: string | null;
  /** Names the ONNX file in errors. */
  readonly onnxLabel: string;
}

interface Candidate {
  readonly initializer: string;
  readonly layout: NameMapLayout;
}

export function matchStateDict(inputs: MatchInputs): NameMap {
  const { stateDict, initializers } = inputs;
  const indexes = new Map<StateDictTensor['dtype'], ValueIndex>();
  const indexFor = (dtype: StateDictTensor['dtype']) => {
    let index = indexes.get(dtype);
    if (!index) indexes.set(dtype, (index = buildIndex(initializers, dtype)));
    return index;
  };

  const tensors: Record<string, NameMapEntry> = {};
  const unmatched: Record<string, UnmatchedTensor> = {};
  for (const [name, tensor] of stateDict.tensors) {
    const index = indexFor(tensor.dtype);
    const digest = digestOf(tensor.data);
    const candidates = index.byShapeAndValue.get(`${tensor.shape.join(',')}|${digest}`) ?? [];
    let chosen: Candidate | undefined;
    if (candidates.length === 1) chosen = candidates[0];
    else if (candidates.length > 1) {
      // Equal values under several names (e.g. untouched zero biases): the same name decides.
      const named = candidates.filter((c) => c.initializer === name && c.layout === 'same');
      if (named.length === 1) chosen = named[0];
      else {
        unmatched[name] = {
          kind: 'ambiguous',
          reason: `its values match ${describeCandidates(candidates)}; say which in a --name-map file`,
        };
        continue;
      }
    } else {
      const reshaped = (index.byValue.get(digest) ?? []).filter((c) => c.layout === 'same');
      if (reshaped.length === 1) chosen = { initializer: reshaped[0]!.initializer, layout: 'reshaped' };
      else if (reshaped.length > 1) {
        unmatched[name] = {
          kind: 'ambiguous',
          reason: `its values match ${describeCandidates(reshaped)} under other shapes; say which in a --name-map file`,
        };
        continue;
      }
    }
    if (chosen) tensors[name] = { initializer: chosen.initializer, layout: chosen.layout, shape: [...tensor.shape] };
    else unmatched[name] = explainUnmatched(tensor, initializers, index);
  }

  const matched = Object.keys(tensors).length;
  if (matched === 0) {
    throw new DS_ERR_NAME_MAP(
      `${stateDict.path} does not hold the weights of ${inputs.onnxLabel}: none of its ${stateDict.tensors.size} tensors matches an initializer by value (a state dict of another base, or another checkpoint of it?)`,
    );
  }
  const used = new Set(Object.values(tensors).map((e) => e.initializer));
  return {
    version: 1,
    baseFingerprint: inputs.baseFingerprint,
    baseWeightsSha256: inputs.baseWeightsSha256,
    tensors,
    unmatched,
    unmappedInitializers: [...initializers.keys()].filter((n) => !used.has(n)).sort(),
  };
}

interface ValueIndex {
  /** "shape|digest" → initializers holding those values in that shape (as is, or transposed). */
  readonly byShapeAndValue: Map<string, Candidate[]>;
  /** digest of the row-major values (any shape) → initializers, layout 'same' only. */
  readonly byValue: Map<string, Candidate[]>;
  /** Initializers' values as the state dict's dtype would hold them. */
  readonly rounded: Map<string, Float32Array>;
}

function buildIndex(initializers: WeightMap, dtype: StateDictTensor['dtype']): ValueIndex {
  const byShapeAndValue = new Map<string, Candidate[]>();
  const byValue = new Map<string, Candidate[]>();
  const rounded = new Map<string, Float32Array>();
  const add = (map: Map<string, Candidate[]>, key: string, candidate: Candidate) => {
    const list = map.get(key);
    if (list) list.push(candidate);
    else map.set(key, [candidate]);
  };
  for (const [name, weight] of initializers) {
    const data = roundTo(weight.data, dtype);
    rounded.set(name, data);
    const digest = digestOf(data);
    add(byShapeAndValue, `${weight.shape.join(',')}|${digest}`, { initializer: name, layout: 'same' });
    add(byValue, digest, { initializer: name, layout: 'same' });
    if (weight.shape.length === 2) {
      const [rows, cols] = weight.shape as [number, number];
      const transposed = transpose(data, rows, cols);
      add(byShapeAndValue, `${cols},${rows}|${digestOf(transposed)}`, { initializer: name, layout: 'transposed' });
    }
  }
  return { byShapeAndValue, byValue, rounded };
}

/** Why no initializer holds `tensor`: fused into a larger one, folded, or a shape no initializer has. */
function explainUnmatched(tensor: StateDictTensor, initializers: WeightMap, index: ValueIndex): UnmatchedTensor {
  const fused = findFusion(tensor, initializers, index);
  if (fused) {
    return {
      kind: 'fused',
      reason: `the exporter fused it into initializer "${fused.name}" (${fused.where}); a delta is keyed by initializers, so either save the fine-tune with that fused tensor (e.g. torch.cat of its parts, mapped in a --name-map file) or export the base without fusing (torch.onnx.export without optimisation passes), or --ignore it and lose its fine-tuning`,
    };
  }
  const shape = tensor.shape.join(',');
  const numel = tensor.data.length;
  const sameShape = [...initializers].filter(([, w]) => {
    const s = w.shape.join(',');
    return s === shape || (w.shape.length === 2 && `${w.shape[1]},${w.shape[0]}` === shape) || w.data.length === numel;
  });
  if (sameShape.length > 0) {
    return {
      kind: 'value',
      reason: `no initializer holds its values (${sameShape.length} have its size, e.g. "${sameShape[0]![0]}"): the exporter folded it (scaled, merged with a neighbour or a constant), or the base state dict is not this ONNX's base; export with do_constant_folding=False, or --ignore it`,
    };
  }
  return {
    kind: 'shape',
    reason: `its shape [${tensor.shape.join(', ')}] matches no initializer, not even transposed (not part of the exported graph?); --ignore it if the export dropped it on purpose`,
  };
}

/** The initializer (with where) that holds `tensor` or its transpose as a contiguous block of rows or columns. */
function findFusion(
  tensor: StateDictTensor,
  initializers: WeightMap,
  index: ValueIndex,
): { name: string; where: string } | null {
  const blocks: { data: Float32Array; rows: number; cols: number; note: string }[] = [];
  if (tensor.shape.length === 1) blocks.push({ data: tensor.data, rows: 1, cols: tensor.data.length, note: '' });
  if (tensor.shape.length === 2) {
    const [rows, cols] = tensor.shape as [number, number];
    blocks.push({ data: tensor.data, rows, cols, note: '' });
    blocks.push({ data: transpose(tensor.data, rows, cols), rows: cols, cols: rows, note: ', transposed' });
  }
  for (const [name, weight] of initializers) {
    const data = index.rounded.get(name)!;
    const [rows, cols] = weight.shape.length === 1 ? [1, weight.shape[0]!] : (weight.shape as [number, number]);
    if (weight.shape.length > 2 || data.length <= tensor.data.length) continue;
    for (const block of blocks) {
      const where = blockOffset(data, rows, cols, block);
      if (where) return { name, where: `${where} of [${weight.shape.join(', ')}]${block.note}` };
    }
  }
  return null;
}

function blockOffset(
  data: Float32Array,
  rows: number,
  cols: number,
  block: { data: Float32Array; rows: number; cols: number },
): string | null {
  if (block.cols === cols && block.rows < rows) {
    const span = block.rows * cols;
    for (let r = 0; r + block.rows <= rows; r++) {
      if (equalRange(data, r * cols, block.data, 0, span)) return `rows ${r}–${r + block.rows - 1}`;
    }
  }
  if (block.rows === rows && block.cols < cols) {
    for (let c = 0; c + block.cols <= cols; c++) {
      let all = true;
      for (let r = 0; r < rows && all; r++)
        all = equalRange(data, r * cols + c, block.data, r * block.cols, block.cols);
      if (all) return rows === 1 ? `elements ${c}–${c + block.cols - 1}` : `columns ${c}–${c + block.cols - 1}`;
    }
  }
  return null;
}

function equalRange(a: Float32Array, aStart: number, b: Float32Array, bStart: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (a[aStart + k] !== b[bStart + k]) return false;
  return true;
}

function describeCandidates(candidates: readonly Candidate[]): string {
  const shown = candidates.slice(0, 4).map((c) => `"${c.initializer}"${c.layout === 'same' ? '' : ` (${c.layout})`}`);
  return `${candidates.length} initializers: ${shown.join(', ')}${candidates.length > 4 ? ', ...' : ''}`;
}

/** Row-major [rows, cols] → [cols, rows]. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

function roundTo(data: Float32Array, dtype: StateDictTensor['dtype']): Float32Array {
  if (dtype === 'F16') return float16ArrayToFloat32(float32ArrayToFloat16(data));
  if (dtype === 'BF16') return bfloat16ToFloat32(float32ToBfloat16(data));
  return data;
}

function digestOf(data: Float32Array): string {
  // -0 and +0 differ in bits but not in value; a weight stored either way is the same weight.
  const canonical = data.some((v) => Object.is(v, -0)) ? data.map((v) => (v === 0 ? 0 : v)) : data;
  return createHash('sha256')
    .update(new Uint8Array(canonical.buffer, canonical.byteOffset, canonical.byteLength))
    .digest('hex');
}
