/**
 * The runtime of patch and graph mode: every batch holds one task (the scheduler forms them that
 * way), run on one EngineCore with that task's delta activated.
 */
import type { EngineEvent } from '../protocol.js';
import { EngineCore } from './engine-core.js';
import { prepareBase, type BaseOptions } from './prepare-base.js';
import type { BatchItem, EngineRuntime, RuntimeBatch } from './runtime.js';
import { warmUpInputs } from './warm-up.js';
import { patchResidentForm } from './resident-form.js';

export async function startPerTaskRuntime(options: BaseOptions): Promise<EngineRuntime> {
  const base = await prepareBase(options);
  const core = new EngineCore(base);
  if (base.executionProvider !== 'cpu') {
    const warmUp = warmUpInputs(base.io);
    // Best effort: a model that cannot run on zero inputs reports that on real requests instead.
    if (warmUp) await core.run(null, [warmUp]).catch(() => undefined);
  }
  return {
    base,
    readyInfo: {
      io: base.io,
      fingerprint: base.fingerprint,
      mode: options.mode,
      patchableWeights: base.patchableShapes.size,
      residentWeightBytes: base.residentWeightBytes,
      executionProvider: base.executionProvider,
      fallbackReason: base.fallbackReason,
      kernel: null,
    },
    get activeKey() {
      return core.activeKey;
    },
    run: (items) => runOneTask(core, items),
    forget: () => undefined,
    // Patch mode adds each value to the weights itself, so it can widen fp16 values as it goes;
    // graph mode feeds float32 values to ORT and keeps deltas as decoded.
    residentForm: (delta) => (options.mode === 'patch' ? patchResidentForm(delta) : delta),
  };
}

async function runOneTask(core: EngineCore, items: readonly BatchItem[]): Promise<RuntimeBatch> {
  const task = items[0]?.task ?? null;
  if (items.some((item) => (item.task?.key ?? null) !== (task?.key ?? null)))
    throw new Error(`a ${core.base.activator.mode}-mode batch must hold one task`);
  const { outputs, activation, inferMs } = await core.run(
    task,
    items.map((item) => item.inputs),
  );
  const events: EngineEvent[] = activation.switched
    ? [{ type: 'activation', key: task?.key ?? null, nonzeros: activation.nonzeros, ms: activation.ms }]
    : [];
  return { outputs, inferMs, activation, timings: null, events };
}
