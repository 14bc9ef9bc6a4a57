/**
 * `patch` activation (the CPU default). The weights a delta may touch are graph inputs fed from
 * buffers this class owns; ORT wraps CPU input buffers without copying (BRIEF §3.2), so writing
 * a task's values into them changes the next run. Activating saves exactly the values it
 * overwrites; deactivating writes them back. Restoring saved values is exact where subtracting
 * the delta again would drift (BRIEF §3.4), so the base after any number of swaps is
 * bit-identical to the base at start-up.
 *
 * Not thread-safe by design: one worker thread owns the buffers and never runs a batch while
 * (de)activating.
 */
import type { Delta } from '../deltas/types.js';
import { assertDeltaFitsWeights, type ActivationStats, type Activator } from './activator.js';

interface SavedTensor {
  readonly weight: Float32Array;
  /** Sparse: overwritten values in index order; dense: a copy of the whole tensor. */
  readonly saved: Float32Array;
  readonly indices: Uint32Array | null;
}

export class PatchActivator implements Activator {
  readonly mode = 'patch' as const;
  private active: { key: string; saved: SavedTensor[] } | null = null;

  constructor(private readonly weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>) {}

  get activeKey(): string | null {
    return this.active?.key ?? null;
  }

  activate(key: string, delta: Delta): ActivationStats {
    if (this.active?.key === key) return { switched: false, nonzeros: 0, ms: 0 };
    // Everything is checked before anything is written: a bad delta leaves the base untouched.
    assertDeltaFitsWeights(delta, this.weights);
    const started = performance.now();
    const restored = this.restore();
    const saved: SavedTensor[] = [];
    let nonzeros = 0;
    for (const tensor of delta.tensors) {
      const weight = this.weights.get(tensor.name)!.data;
      if (tensor.kind === 'dense') {
        saved.push({ weight, saved: weight.slice(), indices: null });
        const values = tensor.values;
        for (let i = 0; i < weight.length; i++) weight[i] = weight[i]! + values[i]!;
        nonzeros += weight.length;
        continue;
      }
      const { indices, values } = tensor;
      const overwritten = new Float32Array(indices.length);
      for (let k = 0; k < indices.length; k++) {
        const i = indices[k]!;
        const original = weight[i]!;
        overwritten[k] = original;
        weight[i] = original + values[k]!;
      }
      saved.push({ weight, saved: overwritten, indices });
      nonzeros += indices.length;
    }
    this.active = { key, saved };
    return { switched: true, nonzeros: nonzeros + restored, ms: performance.now() - started };
  }

  deactivate(): ActivationStats {
    const started = performance.now();
    const restored = this.restore();
    return { switched: restored > 0, nonzeros: restored, ms: performance.now() - started };
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
