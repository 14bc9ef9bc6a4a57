/**
 * `graph` activation (for the GPU providers, CUDA and WebGPU; selectable on the CPU): the base weights stay
 * initializers and the active task's sparse delta is fed as two inputs per weight, merged
 * in-graph (see base-rewrite.ts). Activating only swaps which arrays are fed, so it costs
 * nothing here; the merge is paid on every run (cheap on a GPU, slow on a CPU — docs/onnxruntime-facts.md §5–6).
 *
 * Dense parts of a delta (a classifier head) are fed as a scatter over every position.
 */
import type { ResidentDelta } from '../../deltas/types.js';
import { asDecoded } from './resident-form.js';
import { assertDeltaFitsWeights, type ActivationStats, type Activator } from './activator.js';
import { deltaIndicesInput, deltaValuesInput } from './base-rewrite.js';

export interface SparseFeed {
  readonly indices: Int32Array;
  readonly values: Float32Array;
}

const EMPTY: SparseFeed = { indices: new Int32Array(0), values: new Float32Array(0) };

export class GraphActivator implements Activator {
  readonly mode = 'graph' as const;
  private active: { key: string; delta: ResidentDelta; feeds: Map<string, SparseFeed> } | null = null;
  private readonly everyPosition = new Map<number, Int32Array>();

  private readonly weights: ReadonlyMap<string, { readonly shape: readonly number[] }>;

  constructor(shapes: ReadonlyMap<string, readonly number[]>) {
    this.weights = new Map([...shapes].map(([name, shape]) => [name, { shape }]));
  }

  get activeKey(): string | null {
    return this.active?.key ?? null;
  }

  activate(key: string, delta: ResidentDelta): ActivationStats {
    if (this.active?.key === key && this.active.delta === delta) return { switched: false, nonzeros: 0, ms: 0 };
    assertDeltaFitsWeights(delta, this.weights);
    const started = performance.now();
    const feeds = new Map<string, SparseFeed>();
    let nonzeros = 0;
    for (const tensor of delta.tensors.map(asDecoded)) {
      if (tensor.kind === 'dense') {
        feeds.set(tensor.name, { indices: this.positions(tensor.values.length), values: tensor.values });
      } else {
        // Flat indices < 2^31 for any tensor ORT can hold on one device; the bits are the same.
        const indices = new Int32Array(tensor.indices.buffer, tensor.indices.byteOffset, tensor.indices.length);
        feeds.set(tensor.name, { indices, values: tensor.values });
      }
      nonzeros += tensor.values.length;
    }
    this.active = { key, delta, feeds };
    return { switched: true, nonzeros, ms: performance.now() - started };
  }

  deactivate(): ActivationStats {
    const switched = this.active !== null;
    this.active = null;
    return { switched, nonzeros: 0, ms: 0 };
  }

  /** The delta inputs for the next run, by input name: the active task's, empty elsewhere. */
  *deltaFeeds(): Generator<[inputName: string, kind: 'indices' | 'values', data: Int32Array | Float32Array]> {
    for (const name of this.weights.keys()) {
      const feed = this.active?.feeds.get(name) ?? EMPTY;
      yield [deltaIndicesInput(name), 'indices', feed.indices];
      yield [deltaValuesInput(name), 'values', feed.values];
    }
  }

  private positions(length: number): Int32Array {
    let positions = this.everyPosition.get(length);
    if (!positions) {
      positions = Int32Array.from({ length }, (_, i) => i);
      this.everyPosition.set(length, positions);
    }
    return positions;
  }
}
