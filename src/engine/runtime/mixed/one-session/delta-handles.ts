/**
 * The cache's decoded deltas, handed to the custom-op addon by reference: registered once per
 * delta object (the cache hands out the same object for every batch), the addon keeping views of
 * its typed arrays, no copy. A batch then passes only a handle per item.
 *
 * Lifetime. A delta is registered right before the first run that reads it, on the worker thread
 * that runs (runs are synchronous), so a registered view always points at live memory: the
 * batch's lease holds the delta during the run, and the addon's own references hold its arrays
 * after. The handle is released at once when the task is evicted explicitly (MixedCore.forget →
 * {@link DeltaHandles.release}), else when the delta object is collected (the cache dropped it
 * under pressure and no lease holds it); a delta released early is simply registered again by
 * the next run that reads it.
 */
import type { ResidentDelta } from '../../../../deltas/types.js';
import { asDecoded } from '../../resident-form.js';
import type { AddonDeltaTensor, OrtCustomOpAddon } from './ort-addon.js';

/** Handle 0: the item runs on the base (the op adds nothing). */
export const BASE_HANDLE = 0;

export class DeltaHandles {
  private readonly handles = new WeakMap<ResidentDelta, number>();
  private readonly finalizer: FinalizationRegistry<number>;
  private live = 0;

  constructor(
    private readonly addon: OrtCustomOpAddon,
    /** The weights the graph's side ops read (side weights and their biases); other tensors are not registered. */
    private readonly sideTensors: ReadonlySet<string>,
  ) {
    this.finalizer = new FinalizationRegistry((handle) => this.drop(handle));
  }

  /** How many deltas the addon holds now. */
  get registered(): number {
    return this.live;
  }

  handleOf(delta: ResidentDelta | null): number {
    if (delta === null) return BASE_HANDLE;
    const known = this.handles.get(delta);
    if (known !== undefined) return known;
    const tensors = delta.tensors
      .filter((t) => this.sideTensors.has(t.name))
      .map((t): AddonDeltaTensor => {
        if (t.kind === 'by-column') return { name: t.name, shape: t.shape, byColumn: t };
        const tensor = asDecoded(t);
        return {
          name: tensor.name,
          shape: tensor.shape,
          indices: tensor.kind === 'sparse' ? tensor.indices : null,
          values: tensor.values,
        };
      });
    if (tensors.length === 0) {
      this.handles.set(delta, BASE_HANDLE);
      return BASE_HANDLE;
    }
    const handle = this.addon.registerDelta(tensors);
    this.live++;
    this.handles.set(delta, handle);
    this.finalizer.register(delta, handle, delta);
    return handle;
  }

  /** Releases the addon's views of `delta` now (a later run registers it again). */
  release(delta: ResidentDelta): void {
    const handle = this.handles.get(delta);
    if (handle === undefined) return;
    this.handles.delete(delta);
    if (handle === BASE_HANDLE) return;
    this.finalizer.unregister(delta);
    this.drop(handle);
  }

  private drop(handle: number): void {
    if (this.addon.releaseDelta(handle)) this.live--;
  }
}
