/**
 * Mixed-task batches in one ONNX Runtime session: the base graph whole, its weights pre-packed
 * initializers, and after each patchable linear the side path as a custom operator
 * (native/ort-custom-op: `Y = Y0 + X·Δ_item + Δb_item` in place, on ORT's own thread pool).
 * Per-request LayerNorm scale/shift, addends and embedding rows stay inputs of the same graph
 * (weight-uses.ts, mixed-rewrite.ts). One `Run` per batch: no cuts, one pool, ORT's fusions kept
 * wherever the op does not sit inside their pattern (docs/architecture.md, Mixed mode).
 * Same contract as the segment pipeline (mixed-pipeline.ts), which runs when the addon is absent.
 */
import type onnxProto from 'onnx-proto';
import type { Delta, ResidentDelta, ResidentTensorDelta } from '../../../../deltas/types.js';
import { encodeOnnxModel } from '../../../../onnx/model-file.js';
import { batchSizeOf, concatBatch, splitBatch } from '../../batching.js';
import type { OrtSessionOptions } from '../../ort-session.js';
import type { EngineTensor, NamedTensors } from '../../../tensors.js';
import type { MixedRequest, MixedTimings } from '../mixed-pipeline.js';
import { ITEM_DELTAS_INPUT, SIDE_OP_DOMAIN, rewriteForMixedBatches } from '../mixed-rewrite.js';
import { buildPerItemInputs, perItemPlans, type ItemSpan, type PerItemPlans } from '../request-feeds.js';
import { DeltaHandles } from './delta-handles.js';
import { columnCodesOf, columnPositionsOf } from '../../../../deltas/format/column-order.js';
import type { AddonFeed, AddonSession, OrtCustomOpAddon } from './ort-addon.js';

type Weights = ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;

export interface OneSessionOptions {
  /** Where ORT writes its optimised graph (to check which fusions survived the op). */
  readonly optimizedModelPath?: string;
}

export class OneSessionPipeline {
  readonly kernel: { readonly name: 'ort-custom-op'; readonly threads: number };

  private constructor(
    private readonly session: AddonSession,
    private readonly handles: DeltaHandles,
    private readonly addon: OrtCustomOpAddon,
    /** Weights the side ops multiply by (`[inDim, outDim]`), kept grouped by column in the cache. */
    private readonly sideWeights: ReadonlySet<string>,
    private readonly plans: PerItemPlans,
    private readonly outputNames: readonly string[],
    readonly unsupported: ReadonlyMap<string, string>,
    /** How many side ops the graph holds. */
    readonly sites: number,
    threads: number,
  ) {
    this.kernel = { name: 'ort-custom-op', threads };
  }

  static create(
    model: onnxProto.onnx.IModelProto,
    weights: Weights,
    others: Weights,
    sessionOptions: OrtSessionOptions,
    addon: OrtCustomOpAddon,
    options: OneSessionOptions = {},
  ): OneSessionPipeline {
    if (sessionOptions.executionProvider !== 'cpu')
      throw new Error('the custom-op session runs on the cpu execution provider only');
    const shapes = new Map([...weights].map(([name, w]) => [name, w.shape]));
    const mixed = rewriteForMixedBatches(model.graph!, shapes, 'custom-op');
    // Weights the rewrite replaced (LayerNorm scale/shift fed per item) leave the graph, rather
    // than ORT warning about each at start-up.
    const read = new Set((mixed.graph.node ?? []).flatMap((n) => n.input ?? []));
    const rewritten: onnxProto.onnx.IModelProto = {
      ...model,
      graph: { ...mixed.graph, initializer: (mixed.graph.initializer ?? []).filter((t) => read.has(t.name ?? '')) },
      opsetImport: [
        ...(model.opsetImport ?? []).filter((o) => o.domain !== SIDE_OP_DOMAIN),
        { domain: SIDE_OP_DOMAIN, version: 1 },
      ],
    };
    const session = addon.createSession(encodeOnnxModel(rewritten), {
      threads: sessionOptions.intraOpThreads,
      spinning: sessionOptions.allowSpinning ?? true,
      itemDeltasInput: ITEM_DELTAS_INPUT,
      ...(options.optimizedModelPath !== undefined && { optimizedModelPath: options.optimizedModelPath }),
    });
    const sideTensors = new Set(mixed.sites.flatMap((s) => (s.bias ? [s.weight, s.bias] : [s.weight])));
    const outputNames = (model.graph!.output ?? []).map((o) => o.name ?? '');
    return new OneSessionPipeline(
      session,
      new DeltaHandles(addon, sideTensors),
      addon,
      new Set(mixed.sites.map((s) => s.weight)),
      perItemPlans(mixed, weights, others),
      outputNames,
      mixed.unsupported,
      mixed.sites.length,
      sessionOptions.intraOpThreads,
    );
  }

  /** The first tensor of `delta` this pipeline cannot apply per request, with why; null when it serves the whole delta. */
  unsupportedTensor(delta: ResidentDelta): { name: string; reason: string } | null {
    for (const tensor of delta.tensors) {
      const reason = this.unsupported.get(tensor.name);
      if (reason !== undefined) return { name: tensor.name, reason };
    }
    return null;
  }

  /**
   * The delta with its side weights grouped by output column, as the op reads them: made once per
   * load here rather than on every run (8–32 % of a kernel call: bench/native/kernel-grouping.cc), and
   * 3 to 6 bytes per kept entry instead of 8 (rows as byte gaps where they fit, values that are all
   * exactly fp16 kept as fp16), or the file's int4 codes where they run column by column. The arrays
   * as decoded become garbage.
   */
  residentForm(delta: Delta): ResidentDelta {
    const tensors = delta.tensors.map((t): ResidentTensorDelta => {
      if (t.kind !== 'sparse' || !this.sideWeights.has(t.name) || t.shape.length !== 2 || t.shape[0]! > 65536) return t;
      const [inDim, outDim] = t.shape as [number, number];
      const q = columnCodesOf(t);
      if (q !== null) {
        // The file's codes and scales as they are: ~1.3 bytes per kept entry at p = 0.9 instead of 3.
        const positions = columnPositionsOf(t);
        const packed = this.addon.packI4ByColumn(positions, q.codes as Uint8Array, q.scales, q.group, inDim, outDim);
        return { kind: 'by-column', name: t.name, shape: t.shape, ...packed };
      }
      const grouped = this.addon.groupByColumn(t.indices, t.values, inDim, outDim);
      return { kind: 'by-column', name: t.name, shape: t.shape, ...grouped };
    });
    return { metadata: delta.metadata, tensors };
  }

  /** Deltas the addon holds views of now. */
  get registeredDeltas(): number {
    return this.handles.registered;
  }

  /** Drops the addon's views of a delta now (the next run that reads it registers it again). */
  forgetDelta(delta: ResidentDelta): void {
    this.handles.release(delta);
  }

  async release(): Promise<void> {
    this.session.release();
  }

  /** Runs requests of any tasks (all with the same input signature) as one batch: one ORT run. */
  async run(requests: readonly MixedRequest[]): Promise<{ outputs: NamedTensors[]; timings: MixedTimings }> {
    const started = performance.now();
    const spans: ItemSpan[] = requests.map((r) => ({ items: batchSizeOf(r.inputs), delta: r.delta }));
    const joined = concatBatch(requests.map((r) => r.inputs));
    const feeds: AddonFeed[] = Object.entries(joined).map(([name, t]) => ({ name, ...t }));
    for (const input of buildPerItemInputs(this.plans, joined, spans)) feeds.push({ ...input, type: 'float32' });
    const itemDeltas = new BigInt64Array(spans.reduce((n, s) => n + s.items, 0));
    let item = 0;
    for (const span of spans) {
      const handle = BigInt(this.handles.handleOf(span.delta));
      itemDeltas.fill(handle, item, item + span.items);
      item += span.items;
    }
    feeds.push({ name: ITEM_DELTAS_INPUT, type: 'int64', dims: [itemDeltas.length], data: itemDeltas });
    const hostDone = performance.now();
    const results = this.session.run(feeds, this.outputNames);
    const ortMs = performance.now() - hostDone;
    const outputs: Record<string, EngineTensor> = {};
    this.outputNames.forEach((name, k) => (outputs[name] = results[k]!));
    const pieces = splitBatch(
      outputs,
      spans.map((s) => s.items),
    );
    const hostMs = performance.now() - started - ortMs;
    return { outputs: pieces, timings: { ortMs, kernelMs: 0, hostMs, segmentRuns: 1 } };
  }
}
