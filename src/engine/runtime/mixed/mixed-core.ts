/**
 * The worker's engine in `mixed` mode: one batch holds requests of any tasks. Requests whose
 * task delta the pipeline serves per request run together (grouped only by input shape); a task
 * whose delta touches a weight the pipeline cannot apply per request (mixed-rewrite.ts) runs in
 * per-task batches on a patch-mode session, created the first time such a task arrives (it holds
 * a second copy of the base weights, so a deployment that never needs it never pays for it).
 */
import type { ActivationStats } from '../activator.js';
import { batchSignature } from '../batching.js';
import { EngineCore, type BatchDelta } from '../engine-core.js';
import type { Delta, ResidentDelta } from '../../../deltas/types.js';
import { DS_ERR_ONNX_INVALID } from '../../../core/errors.js';
import type { ModelIO } from '../../../onnx/io-signature.js';
import { warmUpInputs } from '../warm-up.js';
import { assertDeltaFitsWeights } from '../activator.js';
import { assertInputsFit } from '../check-inputs.js';
import { loadBase, prepareBase, type BaseOptions } from '../prepare-base.js';
import type { NamedTensors } from '../../tensors.js';
import type { SideKernel } from './kernel/side-kernel.js';
import { MixedPipeline, type MixedRequest, type MixedTimings } from './mixed-pipeline.js';
import { loadOrtAddon } from './one-session/ort-addon.js';
import { OneSessionPipeline } from './one-session/one-session-pipeline.js';

/** What runs a mixed batch: one ORT session with the custom op, or the segment pipeline. */
export interface MixedBatchPipeline {
  readonly kernel: { readonly name: string; readonly threads: number };
  unsupportedTensor(delta: ResidentDelta): { name: string; reason: string } | null;
  run(requests: readonly MixedRequest[]): Promise<{ outputs: NamedTensors[]; timings: MixedTimings }>;
  release(): Promise<void>;
  /** Drops whatever the pipeline holds for this delta (the one session: the addon's views of it). */
  forgetDelta?(delta: ResidentDelta): void;
  /** The form this pipeline reads a delta it serves whole in (default: as decoded). */
  residentForm?(delta: Delta): ResidentDelta;
}

/** Which pipeline serves mixed batches, and why (logged at start-up). */
export interface MixedPathInfo {
  readonly path: 'custom-op' | 'segments';
  /** custom-op: ORT's version and the C API version used; segments: why the custom op does not run. */
  readonly detail: string;
}

export interface MixedItem {
  readonly task: BatchDelta | null;
  readonly inputs: NamedTensors;
}

export interface MixedBatchResult {
  readonly outputs: NamedTensors[];
  readonly inferMs: number;
  readonly timings: MixedTimings;
  /** Tasks of this batch that ran on the per-task fallback, with the tensor that sent them there (first time only). */
  readonly newFallbacks: readonly { key: string; tensor: string; reason: string }[];
  /** Activations of the fallback session, one per fallback task that switched (empty when none). */
  readonly activations: readonly { readonly key: string; readonly stats: ActivationStats }[];
}

export interface PreparedMixedBase {
  readonly core: MixedCore;
  readonly path: MixedPathInfo;
  readonly fingerprint: string;
  readonly io: ModelIO;
  readonly patchableShapes: ReadonlyMap<string, readonly number[]>;
}

export async function prepareMixedBase(
  options: BaseOptions,
  kernel: SideKernel,
  pipelines: MixedPipelines = 'either',
): Promise<PreparedMixedBase> {
  if (options.session.executionProvider !== 'cpu')
    throw new Error('mixed mode runs on the cpu execution provider only');
  const { model, fingerprint, io, weights, patchable, patchableShapes } = await loadBase(options);
  const { pipeline, path } = await startPipeline(model, patchable, weights, options, kernel, pipelines);
  // One run of the base at start-up: a graph the rewrite cannot serve fails here, with its reason,
  // instead of failing every batch.
  const probe = warmUpInputs(io);
  if (probe) {
    await pipeline.run([{ inputs: probe, delta: null }]).catch(async (error: Error) => {
      await pipeline.release();
      throw new DS_ERR_ONNX_INVALID('base', `mixed mode cannot run it (${error.message}); use engine.mode patch`);
    });
  }
  // Started on the first task that needs it; it reads the file again rather than keep a second
  // copy of the weights in memory meanwhile, so it checks the file is still the same base.
  const startFallback = async () => {
    const base = await prepareBase({ ...options, mode: 'patch' });
    if (base.fingerprint !== fingerprint) {
      await base.session.release();
      throw new DS_ERR_ONNX_INVALID('base', `${options.modelPath} changed on disk since start-up; restart the gateway`);
    }
    return new EngineCore(base);
  };
  return {
    core: new MixedCore(pipeline, io, patchableShapes, startFallback, path),
    path,
    fingerprint,
    io,
    patchableShapes,
  };
}

/** Which pipelines may start: `one-session` fails where the custom-op session does not start (engine.mode auto then serves patch). */
export type MixedPipelines = 'either' | 'one-session';

/** Mixed mode asked for its one-session pipeline only, and that pipeline cannot start here. */
export class OneSessionUnavailable extends Error {}

/**
 * The one-session pipeline when the custom-op addon loaded and its session starts; else the
 * segment pipeline, with why. `DELTASERVE_MIXED_PIPELINE=custom-op` turns a fallback into an error.
 */
async function startPipeline(
  model: Awaited<ReturnType<typeof loadBase>>['model'],
  patchable: Awaited<ReturnType<typeof loadBase>>['patchable'],
  weights: Awaited<ReturnType<typeof loadBase>>['weights'],
  options: BaseOptions,
  kernel: SideKernel,
  pipelines: MixedPipelines,
): Promise<{ pipeline: MixedBatchPipeline; path: MixedPathInfo }> {
  const { addon, reason } = loadOrtAddon();
  let why = reason ?? '';
  if (addon) {
    try {
      const pipeline = OneSessionPipeline.create(model, patchable, weights, options.session, addon);
      return {
        pipeline,
        path: {
          path: 'custom-op',
          detail: `one session, ${pipeline.sites} side ops; ONNX Runtime ${addon.ortVersion}, C API ${addon.apiVersion}`,
        },
      };
    } catch (error) {
      if (process.env.DELTASERVE_MIXED_PIPELINE === 'custom-op') throw error;
      why = `the custom-op session did not start: ${(error as Error).message.split('\n')[0]}`;
    }
  }
  if (pipelines === 'one-session') throw new OneSessionUnavailable(why);
  const pipeline = await MixedPipeline.create(model, patchable, weights, options.session, kernel);
  return { pipeline, path: { path: 'segments', detail: why } };
}

export class MixedCore {
  private fallback: Promise<EngineCore> | null = null;
  /** Tasks already reported as running on the per-task fallback. */
  private readonly fallbackKeys = new Set<string>();
  private readonly shapes: ReadonlyMap<string, { readonly shape: readonly number[] }>;
  private running = false;
  private readonly verdicts = new WeakMap<ResidentDelta, { name: string; reason: string } | null>();
  /** The delta object each task key last ran with, weakly: an explicit evict releases what the pipeline holds of it. */
  private readonly lastDeltas = new Map<string, WeakRef<ResidentDelta>>();

  constructor(
    readonly pipeline: MixedBatchPipeline,
    private readonly io: ModelIO,
    shapes: ReadonlyMap<string, readonly number[]>,
    private readonly startFallback: () => Promise<EngineCore>,
    readonly path: MixedPathInfo = { path: 'segments', detail: '' },
  ) {
    this.shapes = new Map([...shapes].map(([name, shape]) => [name, { shape }]));
  }

  /** What computes the side path: the side kernel between segments, or the custom op inside the one session. */
  get kernel(): { readonly name: string; readonly threads: number } {
    return this.pipeline.kernel;
  }

  /** Forgets a task's fallback report, so a re-registered task under the same key is reported again. */
  forget(key: string): void {
    this.fallbackKeys.delete(key);
    const delta = this.lastDeltas.get(key)?.deref();
    this.lastDeltas.delete(key);
    if (delta) this.pipeline.forgetDelta?.(delta);
  }

  /**
   * The form the cache keeps a decoded delta in: the pipeline's, for a delta it serves whole; as
   * decoded for one that runs on the per-task fallback (which patches weights from its indices).
   */
  residentForm(delta: Delta): ResidentDelta {
    if (!this.pipeline.residentForm || this.pipeline.unsupportedTensor(delta) !== null) return delta;
    return this.pipeline.residentForm(delta);
  }

  async run(items: readonly MixedItem[]): Promise<MixedBatchResult> {
    if (this.running) throw new Error('MixedCore.run called while a run is in progress');
    this.running = true;
    try {
      const started = performance.now();
      const newFallbacks: { key: string; tensor: string; reason: string }[] = [];
      const mixedGroups = new Map<string, number[]>();
      const fallbackGroups = new Map<string, number[]>();
      items.forEach((item, i) => {
        assertInputsFit(this.io, item.inputs);
        const unsupported = item.task ? this.checked(item.task.delta) : null;
        if (item.task && this.lastDeltas.get(item.task.key)?.deref() !== item.task.delta)
          this.lastDeltas.set(item.task.key, new WeakRef(item.task.delta));
        if (item.task && unsupported) {
          if (!this.fallbackKeys.has(item.task.key)) {
            this.fallbackKeys.add(item.task.key);
            newFallbacks.push({ key: item.task.key, tensor: unsupported.name, reason: unsupported.reason });
          }
          push(fallbackGroups, `${item.task.key}\u0000${batchSignature(item.inputs)}`, i);
        } else {
          push(mixedGroups, batchSignature(item.inputs), i);
        }
      });
      const outputs = new Array<NamedTensors>(items.length);
      let timings: MixedTimings = { ortMs: 0, kernelMs: 0, hostMs: 0, segmentRuns: 0 };
      for (const members of mixedGroups.values()) {
        const result = await this.pipeline.run(
          members.map((i) => ({ inputs: items[i]!.inputs, delta: items[i]!.task?.delta ?? null })),
        );
        members.forEach((i, k) => (outputs[i] = result.outputs[k]!));
        timings = sumTimings(timings, result.timings);
      }
      const activations: { key: string; stats: ActivationStats }[] = [];
      for (const members of fallbackGroups.values()) {
        const core = await (this.fallback ??= this.startFallback());
        const result = await core.run(
          items[members[0]!]!.task,
          members.map((i) => items[i]!.inputs),
        );
        members.forEach((i, k) => (outputs[i] = result.outputs[k]!));
        if (result.activation.switched)
          activations.push({ key: items[members[0]!]!.task!.key, stats: result.activation });
      }
      return { outputs, inferMs: performance.now() - started, timings, newFallbacks, activations };
    } finally {
      this.running = false;
    }
  }

  /**
   * Checks a delta against the base once per delta object (the cache hands out the same object
   * for every batch) and remembers which tensor, if any, keeps it out of mixed batches.
   */
  private checked(delta: ResidentDelta): { name: string; reason: string } | null {
    let verdict = this.verdicts.get(delta);
    if (verdict === undefined) {
      assertDeltaFitsWeights(delta, this.shapes);
      verdict = this.pipeline.unsupportedTensor(delta);
      this.verdicts.set(delta, verdict);
    }
    return verdict;
  }

  async release(): Promise<void> {
    await this.pipeline.release();
    if (this.fallback) await (await this.fallback).release();
  }
}

function push(groups: Map<string, number[]>, key: string, index: number): void {
  const group = groups.get(key);
  if (group) group.push(index);
  else groups.set(key, [index]);
}

function sumTimings(a: MixedTimings, b: MixedTimings): MixedTimings {
  return {
    ortMs: a.ortMs + b.ortMs,
    kernelMs: a.kernelMs + b.kernelMs,
    hostMs: a.hostMs + b.hostMs,
    segmentRuns: a.segmentRuns + b.segmentRuns,
  };
}
