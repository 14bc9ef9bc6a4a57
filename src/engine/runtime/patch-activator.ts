/**
 * `patch` activation (the CPU default). The weights a delta may touch are graph inputs fed from
 * buffers this class owns; ORT wraps CPU input buffers without copying (docs/onnxruntime-facts.md §2), so writing
 * a task's values into them changes the next run. Activating saves exactly the values it
 * overwrites; deactivating writes them back. Restoring saved values is exact where subtracting
 * the delta again would drift (docs/onnxruntime-facts.md §4), so the base after any number of swaps is
 * bit-identical to the base at start-up.
 *
 * The saved values go into one scratch buffer per weight, reused across activations and grown
 * to the largest delta seen for that weight: allocating them anew made ~nnz × 4 bytes of garbage
 * per task switch (34 MB at p = 0.9 on a BERT-base), which showed up as RSS far above the cache.
 *
 * Not thread-safe by design: one worker thread owns the buffers and never runs a batch while
 * (de)activating.
 */
import type { ResidentDelta } from '../../deltas/types.js';
import { float16Table } from '../../deltas/format/float16.js';
import { asDecoded } from './resident-form.js';
import { assertDeltaFitsWeights, type ActivationStats, type Activator } from './activator.js';

interface SavedTensor {
  readonly weight: Float32Array;
  /** Sparse: overwritten values in index order; dense: a copy of the whole tensor. */
  readonly saved: Float32Array;
  readonly indices: Uint32Array | null;
}

export class PatchActivator implements Activator {
  readonly mode = 'patch' as const;
  private active: { key: string; delta: ResidentDelta; saved: SavedTensor[] } | null = null;
  private readonly scratch = new Map<string, Float32Array>();

  constructor(private readonly weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>) {}

  get activeKey(): string | null {
    return this.active?.key ?? null;
  }

  activate(key: string, delta: ResidentDelta): ActivationStats {
    if (this.active?.key === key && this.active.delta === delta) return { switched: false, nonzeros: 0, ms: 0 };
    // Everything is checked before anything is written: a bad delta leaves the base untouched.
    assertDeltaFitsWeights(delta, this.weights);
    const started = performance.now();
    const restored = this.restore();
    const saved: SavedTensor[] = [];
    let nonzeros = 0;
    for (const resident of delta.tensors) {
      const weight = this.weights.get(resident.name)!.data;
      if (resident.kind === 'sparse-f16') {
        // Widened through the fp16 table as they are added: 4-9 % slower per switch than float32
        // values on BERT-base-sized deltas (bench/activation.ts), for 25 % less memory per delta.
        const { indices, values } = resident;
        const widen = float16Table();
        const overwritten = this.scratchFor(resident.name, indices.length);
        for (let k = 0; k < indices.length; k++) {
          const i = indices[k]!;
          const original = weight[i]!;
          overwritten[k] = original;
          weight[i] = original + widen[values[k]!]!;
        }
        saved.push({ weight, saved: overwritten, indices });
        nonzeros += indices.length;
        continue;
      }
      const tensor = asDecoded(resident);
      if (tensor.kind === 'dense') {
        const copy = this.scratchFor(tensor.name, weight.length);
        copy.set(weight);
        saved.push({ weight, saved: copy, indices: null });
        const values = tensor.values;
        for (let i = 0; i < weight.length; i++) weight[i] = weight[i]! + values[i]!;
        nonzeros += weight.length;
        continue;
      }
      const { indices, values } = tensor;
      const overwritten = this.scratchFor(tensor.name, indices.length);
      for (let k = 0; k < indices.length; k++) {
        const i = indices[k]!;
        const original = weight[i]!;
        overwritten[k] = original;
        weight[i] = original + values[k]!;
      }
      saved.push({ weight, saved: overwritten, indices });
      nonzeros += indices.length;
    }
    this.active = { key, delta, saved };
    return { switched: true, nonzeros: nonzeros + restored, ms: performance.now() - started };
  }

  deactivate(): ActivationStats {
    const started = performance.now();
    const restored = this.restore();
    return { switched: restored > 0, nonzeros: restored, ms: performance.now() - started };
  }

  /** A reusable buffer of exactly `length` values for saving `name`'s overwritten values. */
  private scratchFor(name: string, length: number): Float32Array {
    let buffer = this.scratch.get(name);
    if (!buffer || buffer.length < length) {
      buffer = new Float32Array(length);
      this.scratch.set(name, buffer);
    }
    return buffer.subarray(0, length);
  }

  /** Writes back what the active task overwrote; returns how many values it restored. */
  private restore(): number {
    if (!this.active) return 0;
    let restored = 0;
    for (const { weight, saved, indices } of this.active.saved) {
      if (indices === null) {
        weight.set(saved);
        restored += saved.length;
        continue;
      }
      for (let k = 0; k < indices.length; k++) weight[indices[k]!] = saved[k]!;
      restored += indices.length;
    }
    this.active = null;
    return restored;
  }
}
