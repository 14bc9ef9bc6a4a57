/**
 * Everything the engine does with a prepared base, independent of threads: activate the
 * batch's delta, run the batch, split the results. The worker wraps this in a message loop;
 * tests drive it directly.
 *
 * Concurrency: `run` calls must not overlap (the worker serialises them). The delta arrives
 * already in memory: the worker leases it from the cache before it accepts the batch and
 * releases the lease after the run, so eviction can never pull a delta out from under a
 * running batch (the vLLM #14497 failure) and no run ever waits for a fetch.
 */
import * as ort from 'onnxruntime-node';
import type { ResidentDelta } from '../../deltas/types.js';
import type { ActivationStats } from './activator.js';
import { batchSignature, batchSizeOf, concatBatch, splitBatch } from './batching.js';
import { assertInputsFit } from './check-inputs.js';
import { runSession } from './ort-session.js';
import type { PreparedBase } from './prepare-base.js';
import type { NamedTensors } from '../tensors.js';

/** The delta a batch runs with, keyed as the activator tracks it (`name@version`). */
export interface BatchDelta {
  readonly key: string;
  readonly delta: ResidentDelta;
}

export interface BatchResult {
  readonly outputs: NamedTensors[];
  readonly activation: ActivationStats;
  readonly inferMs: number;
}

export class EngineCore {
  private readonly weightTensors: Record<string, ort.Tensor>;
  private running = false;
  private graphFeeds: Record<string, ort.Tensor> | null = null;

  constructor(readonly base: PreparedBase) {
    this.weightTensors = {};
    for (const [name, weight] of base.weightFeeds) {
      // Wraps the buffer without copying: in-place patches are seen by the next run.
      this.weightTensors[name] = new ort.Tensor('float32', weight.data, weight.shape);
    }
  }

  get activeKey(): string | null {
    return this.base.activator.activeKey;
  }

  /** Runs requests for one task (`null` = the base model) as few ORT runs as their shapes allow. */
  async run(task: BatchDelta | null, requests: readonly NamedTensors[]): Promise<BatchResult> {
    if (this.running) throw new Error('EngineCore.run called while a run is in progress');
    this.running = true;
    try {
      for (const request of requests) assertInputsFit(this.base.io, request);
      const activation = task ? this.base.activator.activate(task.key, task.delta) : this.base.activator.deactivate();
      if (activation.switched) this.graphFeeds = null;
      const started = performance.now();
      const outputs = await this.runGrouped(requests);
      return { outputs, activation, inferMs: performance.now() - started };
    } finally {
      this.running = false;
    }
  }

  async release(): Promise<void> {
    await this.base.session.release();
  }

  private async runGrouped(requests: readonly NamedTensors[]): Promise<NamedTensors[]> {
    const groups = new Map<string, number[]>();
    requests.forEach((request, i) => {
      const signature = batchSignature(request);
      const group = groups.get(signature);
      if (group) group.push(i);
      else groups.set(signature, [i]);
    });
    const outputs = new Array<NamedTensors>(requests.length);
    const feeds = this.extraFeeds();
    for (const members of groups.values()) {
      const batch = members.map((i) => requests[i]!);
      const result = await runSession(this.base.session, concatBatch(batch), feeds);
      const pieces = splitBatch(result, batch.map(batchSizeOf));
      members.forEach((requestIndex, k) => (outputs[requestIndex] = pieces[k]!));
    }
    return outputs;
  }

  /** Weight buffers (patch) or the active delta's sparse inputs (graph), built once per activation. */
  private extraFeeds(): Record<string, ort.Tensor> {
    const activator = this.base.activator;
    if (activator.mode === 'patch') return this.weightTensors;
    if (this.graphFeeds === null) {
      this.graphFeeds = {};
      for (const [name, kind, data] of activator.deltaFeeds()) {
        this.graphFeeds[name] = new ort.Tensor(kind === 'indices' ? 'int32' : 'float32', data, [data.length]);
      }
    }
    return this.graphFeeds;
  }
}
