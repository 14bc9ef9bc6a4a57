/**
 * The runtime of mixed mode: a batch holds requests of any tasks, run by a MixedCore on the side
 * kernel the configuration asks for.
 */
import type { EngineEvent } from '../../protocol.js';
import type { WorkerOptions } from '../../worker-options.js';
import type { EngineRuntime, RuntimeBatch } from '../runtime.js';
import { sumActivations } from '../runtime.js';
import { loadSideKernel } from './kernel/load-kernel.js';
import { prepareMixedBase, type MixedCore, type MixedItem, type MixedPipelines } from './mixed-core.js';
import type { BaseOptions } from '../prepare-base.js';

export async function startMixedRuntime(
  options: WorkerOptions & { readonly base: BaseOptions },
  pipelines?: MixedPipelines,
): Promise<EngineRuntime> {
  // The kernel runs between ORT runs, by default on as many threads as ORT was given (0: ORT's
  // choice, all cores).
  const ortThreads = options.base.session.intraOpThreads;
  const threads = options.sideKernel?.threads || ortThreads;
  const { kernel, reason } = loadSideKernel({
    ...(threads > 0 && { threads }),
    ...(options.sideKernel && { prefer: options.sideKernel.kernel }),
  });
  const base = await prepareMixedBase(options.base, kernel, pipelines);
  const core = base.core;
  return {
    base,
    readyInfo: {
      io: base.io,
      fingerprint: base.fingerprint,
      mode: 'mixed',
      patchableWeights: base.patchableShapes.size,
      residentWeightBytes: 0,
      executionProvider: 'cpu',
      fallbackReason: null,
      kernel: {
        name: core.kernel.name,
        threads: core.kernel.threads,
        fallbackReason: base.path.path === 'custom-op' ? null : reason,
        pipeline: base.path.path,
        pipelineDetail: base.path.detail,
      },
    },
    activeKey: null,
    run: (items) => runMixed(core, items),
    forget: (key) => core.forget(key),
    residentForm: (delta) => core.residentForm(delta),
  };
}

async function runMixed(core: MixedCore, items: readonly MixedItem[]): Promise<RuntimeBatch> {
  const result = await core.run(items);
  const events: EngineEvent[] = [
    ...result.newFallbacks.map((fallback) => ({ type: 'mixed-fallback' as const, ...fallback })),
    ...result.activations.map(({ key, stats }) => ({
      type: 'activation' as const,
      key,
      nonzeros: stats.nonzeros,
      ms: stats.ms,
    })),
  ];
  return {
    outputs: result.outputs,
    inferMs: result.inferMs,
    activation: sumActivations(result.activations.map((a) => a.stats)),
    timings: result.timings,
    events,
  };
}
