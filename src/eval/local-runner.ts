/**
 * Runs a base model with any delta in this thread, for the command-line tools (eval, the
 * DAREx-q search, accuracy tables). It is the engine's own code path — the same base
 * preparation, `patch` activation and batching — without the worker, cache and scheduler,
 * so what the tools measure is what the gateway serves.
 */
import type { Delta } from '../deltas/types.js';
import { EngineCore, type BatchDelta } from '../engine/runtime/engine-core.js';
import { prepareBase, type PreparedBase } from '../engine/runtime/prepare-base.js';
import type { NamedTensors } from '../engine/tensors.js';
import type { ActivationMode } from '../engine/runtime/activator.js';
import type { ExecutionProvider } from '../engine/runtime/ort-session.js';

export class LocalRunner {
  private readonly core: EngineCore;
  private readonly keys = new WeakMap<Delta, string>();
  private nextKey = 0;

  private constructor(base: PreparedBase) {
    this.core = new EngineCore(base);
  }

  static async open(
    modelPath: string,
    options: { mode?: ActivationMode; intraOpThreads?: number; executionProvider?: ExecutionProvider } = {},
  ): Promise<LocalRunner> {
    const base = await prepareBase({
      modelPath,
      mode: options.mode ?? 'patch',
      patchable: [],
      session: { executionProvider: options.executionProvider ?? 'cpu', intraOpThreads: options.intraOpThreads ?? 0 },
    });
    return new LocalRunner(base);
  }

  get base(): PreparedBase {
    return this.core.base;
  }

  /** Outputs for `inputs` (one batch, any size) with `delta` active, or the plain base for null. */
  async run(inputs: NamedTensors, delta: Delta | null): Promise<NamedTensors> {
    let task: BatchDelta | null = null;
    if (delta) {
      const key = this.keys.get(delta) ?? `local-${this.nextKey++}`;
      this.keys.set(delta, key);
      task = { key, delta };
    }
    const result = await this.core.run(task, [inputs]);
    return result.outputs[0]!;
  }

  async close(): Promise<void> {
    await this.core.release();
  }
}
