/**
 * Runs mixed-task batches: the base graph cut into segments (segments.ts), each an ORT session
 * with its weights as pre-packed initializers, and between segments the side-path kernel adding
 * each request's `X·Δ` of its own task. One pipeline serves every task whose delta touches only
 * weights it can apply per request (`unsupportedTensor` says which cannot).
 */
import * as ort from 'onnxruntime-node';
import type onnxProto from 'onnx-proto';
import { DS_ERR_INFER_BAD_INPUT } from '../../../core/errors.js';
import type { ResidentDelta } from '../../../deltas/types.js';
import { encodeOnnxModel } from '../../../onnx/model-file.js';
import { batchSizeOf, concatBatch, splitBatch } from '../batching.js';
import { createOrtSession, fromOrtTensor, toOrtTensor, type OrtSessionOptions } from '../ort-session.js';
import type { NamedTensors } from '../../tensors.js';
import type { MixedTimings } from '../../protocol.js';
import type { SideJob, SideKernel } from './kernel/side-kernel.js';
import { rewriteForMixedBatches, type SideSitePlan } from './mixed-rewrite.js';
import { asDecoded } from '../resident-form.js';
import {
  buildPerItemInputs,
  perItemPlans,
  tensorsByWeight,
  type ItemSpan,
  type PerItemPlans,
} from './request-feeds.js';
import { cutIntoSegments, type Segment } from './segments.js';

export interface MixedRequest {
  readonly inputs: NamedTensors;
  readonly delta: ResidentDelta | null;
}

/** Where one mixed batch's time went, ms. */
export type { MixedTimings };

interface RunnableSegment extends Omit<Segment, 'model'> {
  readonly session: ort.InferenceSession;
}

export class MixedPipeline {
  /** Per delta, per site (by D's input name): base bias + the task's bias delta. */
  private readonly siteBiases = new WeakMap<ResidentDelta, Map<string, Float32Array>>();
  private readonly scratchBuffers: Float32Array[] = [];
  private zeroRow = new Float32Array(0);

  private constructor(
    private readonly segments: readonly RunnableSegment[],
    /** Base values include each site's folded base bias. */
    private readonly plans: PerItemPlans,
    private readonly outputNames: readonly string[],
    readonly unsupported: ReadonlyMap<string, string>,
    readonly kernel: SideKernel,
  ) {}

  static async create(
    model: onnxProto.onnx.IModelProto,
    weights: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>,
    /** The model's other float weights (only the folded base biases are read from here). */
    others: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>,
    session: OrtSessionOptions,
    kernel: SideKernel,
  ): Promise<MixedPipeline> {
    const shapes = new Map([...weights].map(([name, w]) => [name, w.shape]));
    const mixed = rewriteForMixedBatches(model.graph!, shapes);
    const segments = cutIntoSegments(model, mixed.graph, mixed.sites);
    const runnable: RunnableSegment[] = [];
    for (const segment of segments) {
      // Spinning threads of ~50 idle sessions would steal the cores the running one needs, and
      // ~50 arenas each grown to the batch's peak activations measured 2–3 GB of RSS.
      const options = { ...session, allowSpinning: false, memoryArena: false };
      const { model: _encoded, ...rest } = segment; // ORT holds its own copy of the weights
      runnable.push({ ...rest, session: await createOrtSession(encodeOnnxModel(segment.model), options) });
    }
    const baseBiases = mixed.sites.flatMap((s) => (s.baseBias === null ? [] : [s.baseBias]));
    const plans = perItemPlans(mixed, weights, others, baseBiases);
    const outputNames = (model.graph!.output ?? []).map((o) => o.name ?? '');
    return new MixedPipeline(runnable, plans, outputNames, mixed.unsupported, kernel);
  }

  /** The first tensor of `delta` this pipeline cannot apply per request, with why; null when it serves the whole delta. */
  unsupportedTensor(delta: ResidentDelta): { name: string; reason: string } | null {
    for (const tensor of delta.tensors) {
      const reason = this.unsupported.get(tensor.name);
      if (reason !== undefined) return { name: tensor.name, reason };
    }
    return null;
  }

  async release(): Promise<void> {
    for (const segment of this.segments) await segment.session.release();
  }

  /** Runs requests of any tasks (all with the same input signature) as one batch. */
  async run(requests: readonly MixedRequest[]): Promise<{ outputs: NamedTensors[]; timings: MixedTimings }> {
    let ortMs = 0;
    let kernelMs = 0;
    const started = performance.now();
    const spans: ItemSpan[] = requests.map((r) => ({ items: batchSizeOf(r.inputs), delta: r.delta }));
    const joined = concatBatch(requests.map((r) => r.inputs));
    const live = new Map<string, ort.Tensor>();
    for (const [name, tensor] of Object.entries(joined)) live.set(name, toOrtTensor(tensor));
    for (const { name, dims, data } of buildPerItemInputs(this.plans, joined, spans))
      live.set(name, new ort.Tensor('float32', data, dims));
    for (const segment of this.segments) {
      const kernelStarted = performance.now();
      segment.sites.forEach((site, slot) => live.set(site.input, this.sideDelta(site, live.get(site.x)!, spans, slot)));
      const runStarted = performance.now();
      kernelMs += runStarted - kernelStarted;
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of segment.inputs) feeds[name] = live.get(name)!;
      const results = await segment.session.run(feeds);
      ortMs += performance.now() - runStarted;
      for (const [name, tensor] of Object.entries(results)) live.set(name, tensor);
      for (const name of segment.lastUse) live.delete(name);
    }
    const outputs: Record<string, ReturnType<typeof fromOrtTensor>> = {};
    for (const name of this.outputNames) outputs[name] = fromOrtTensor(live.get(name)!);
    const pieces = splitBatch(
      outputs,
      spans.map((s) => s.items),
    );
    const hostMs = performance.now() - started - ortMs - kernelMs;
    return { outputs: pieces, timings: { ortMs, kernelMs, hostMs, segmentRuns: this.segments.length } };
  }

  /**
   * D for one site: each request's rows of X times its task's Δ plus its bias (the folded base
   * bias + the task's Δb). D only has to broadcast against `X·W`, so it is as small as the batch
   * allows: one bias row when no request changes this site (the plain graph's own bias add),
   * one row per item when only biases differ, full rows only when some request's Δ touches W.
   */
  private sideDelta(site: SideSitePlan, x: ort.Tensor, spans: readonly ItemSpan[], slot: number): ort.Tensor {
    const dims = x.dims;
    const items = dims[0] ?? 0;
    const totalItems = spans.reduce((n, s) => n + s.items, 0);
    if (dims[dims.length - 1] !== site.inDim || items !== totalItems || dims.length < 2) {
      throw new DS_ERR_INFER_BAD_INPUT(
        `mixed batches need ${site.x} as [batch, ..., ${site.inDim}] with the batch first; it has shape [${dims}]`,
      );
    }
    const weights = spans.map((span) => {
      const tensor = span.delta ? tensorsByWeight(span.delta).get(site.weight) : undefined;
      return tensor && asDecoded(tensor);
    });
    const biases = spans.map((span) => this.siteBias(site, span.delta));
    const baseBias = site.baseBias ? this.plans.baseValues.get(site.baseBias)! : null;
    const outDim = site.outDim;
    if (weights.every((w) => w === undefined)) {
      if (biases.every((b) => b === baseBias))
        return new ort.Tensor('float32', baseBias ?? this.zeros(outDim), [outDim]);
      const perItem = this.scratch(slot, items * outDim);
      let item = 0;
      spans.forEach((span, k) => {
        for (let i = 0; i < span.items; i++, item++) perItem.set(biases[k] ?? this.zeros(outDim), item * outDim);
      });
      return new ort.Tensor('float32', perItem, [items, ...dims.slice(1, -1).map(() => 1), outDim]);
    }
    const xData = x.data as Float32Array;
    const rowsPerItem = xData.length / site.inDim / items;
    const out = this.scratch(slot, items * rowsPerItem * outDim);
    const weighted: SideJob[] = [];
    const biasOnly: { rowStart: number; rowCount: number; bias: Float32Array }[] = [];
    let item = 0;
    spans.forEach((span, k) => {
      const rowStart = item * rowsPerItem;
      const rowCount = span.items * rowsPerItem;
      const weight = weights[k];
      const bias = biases[k] ?? null;
      if (weight) {
        weighted.push({ rowStart, rowCount, weight, bias }); // a decoded TensorDelta is a WeightDelta
      } else if (bias) {
        biasOnly.push({ rowStart, rowCount, bias });
      }
      item += span.items;
    });
    // The kernel zeroes the rows it is not given, so the bias-only rows are written after it.
    this.kernel.sideProduct(xData, site.inDim, out, outDim, weighted);
    for (const { rowStart, rowCount, bias } of biasOnly) fillRows(out, bias, rowStart, rowCount);
    return new ort.Tensor('float32', out, [...dims.slice(0, -1), outDim]);
  }

  private zeros(length: number): Float32Array {
    if (this.zeroRow.length < length) this.zeroRow = new Float32Array(length);
    return this.zeroRow.subarray(0, length);
  }

  /**
   * D's buffer: one per site of a segment, reused by every segment and batch (D lives only
   * during its segment's run, and runs never overlap). Fresh zeroed buffers cost a page fault
   * per 4 KiB, tens of megabytes per batch.
   */
  private scratch(slot: number, length: number): Float32Array {
    let buffer = this.scratchBuffers[slot];
    if (!buffer || buffer.length < length) {
      buffer = new Float32Array(length);
      this.scratchBuffers[slot] = buffer;
    }
    return buffer.subarray(0, length);
  }

  /**
   * What D adds to every row for a request: the folded base bias plus the task's bias delta
   * (built once per delta and site), or just the task's bias delta when no bias was folded.
   */
  private siteBias(site: SideSitePlan, delta: ResidentDelta | null): Float32Array | null {
    const base = site.baseBias ? this.plans.baseValues.get(site.baseBias)! : null;
    const resident = delta && site.bias ? tensorsByWeight(delta).get(site.bias) : undefined;
    if (!resident) return base;
    const tensor = asDecoded(resident);
    let cached = this.siteBiases.get(delta!);
    if (!cached) this.siteBiases.set(delta!, (cached = new Map<string, Float32Array>()));
    let sum = cached.get(site.input);
    if (!sum) {
      sum = base ? base.slice() : new Float32Array(site.outDim);
      if (tensor.kind === 'dense') tensor.values.forEach((v, j) => (sum![j] = sum![j]! + v));
      else tensor.indices.forEach((j, k) => (sum![j] = sum![j]! + tensor.values[k]!));
      cached.set(site.input, sum);
    }
    return sum;
  }
}

/** Writes `row` into rows [start, start + count) of a row-major buffer, doubling the copied block each step. */
function fillRows(buffer: Float32Array, row: Float32Array, start: number, count: number): void {
  if (count === 0) return;
  const width = row.length;
  const begin = start * width;
  buffer.set(row, begin);
  for (let filled = 1; filled < count;) {
    const step = Math.min(filled, count - filled);
    buffer.copyWithin(begin + filled * width, begin, begin + step * width);
    filled += step;
  }
}
