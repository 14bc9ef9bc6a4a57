/**
 * What the worker runs batches on, whatever the mode: patch and graph mode run one task per
 * batch on an EngineCore (per-task-runtime.ts), mixed mode any mix of tasks on a MixedCore
 * (mixed/). The worker's message loop leases deltas, serialises runs and answers messages; the
 * runtime only runs what it is given, and says what it did as events.
 */
import type { Delta, ResidentDelta } from '../../deltas/types.js';
import type { ModelIO } from '../../onnx/io-signature.js';
import type { EngineEvent, MixedTimings, ReadyInfo } from '../protocol.js';
import type { NamedTensors } from '../tensors.js';
import type { ActivationStats } from './activator.js';
import type { BatchDelta } from './engine-core.js';

/** One request of a batch, with its task's delta in memory (null: the base). */
export interface BatchItem {
  readonly task: BatchDelta | null;
  readonly inputs: NamedTensors;
}

export interface RuntimeBatch {
  /** One per item, in order. */
  readonly outputs: NamedTensors[];
  readonly inferMs: number;
  /** Activations this batch caused, summed (mixed mode: those of its per-task fallback). */
  readonly activation: ActivationStats;
  readonly timings: MixedTimings | null;
  /** What the batch did worth reporting: activations, tasks sent to the per-task fallback. */
  readonly events: readonly EngineEvent[];
}

export interface EngineRuntime {
  /** The base as deltas are checked against it when they are decoded. */
  readonly base: {
    readonly io: ModelIO;
    readonly fingerprint: string;
    readonly patchableShapes: ReadonlyMap<string, readonly number[]>;
  };
  /** The start-up report, less its duration (the worker measures that). */
  readonly readyInfo: Omit<ReadyInfo, 'startMs' | 'modeChoice'>;
  /** The task whose delta is applied now (mixed mode: none). */
  readonly activeKey: string | null;
  /** Runs one batch. Calls must not overlap (the worker serialises them). */
  run(items: readonly BatchItem[]): Promise<RuntimeBatch>;
  /** A task's delta was dropped on request: forget what was learnt about it. */
  forget(key: string): void;
  /** The form the cache keeps a freshly decoded delta in (this runtime's reader may want it regrouped). */
  residentForm(delta: Delta): ResidentDelta;
}

export const NO_ACTIVATION: ActivationStats = { switched: false, nonzeros: 0, ms: 0 };

/** Several activations as one figure (a reply carries one per batch). */
export function sumActivations(activations: readonly ActivationStats[]): ActivationStats {
  return activations.reduce(
    (sum, stats) => ({
      switched: sum.switched || stats.switched,
      nonzeros: sum.nonzeros + stats.nonzeros,
      ms: sum.ms + stats.ms,
    }),
    NO_ACTIVATION,
  );
}
