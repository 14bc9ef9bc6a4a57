/**
 * Starts the runtime of the configured activation mode, and decides what `auto` means on this
 * machine for this base: mixed mode where its one-session pipeline (the custom-op addon) starts
 * and runs the base, because it serves mixed traffic faster than patch; patch on the CPU
 * otherwise (mixed on the segment pipeline loses to patch); graph on a GPU provider.
 */
import { DS_ERR_ONNX_INVALID } from '../../core/errors.js';
import type { WorkerOptions } from '../worker-options.js';
import type { ActivationMode } from './activator.js';
import { startMixedRuntime } from './mixed/index.js';
import { OneSessionUnavailable } from './mixed/mixed-core.js';
import { startPerTaskRuntime } from './per-task-runtime.js';
import type { EngineRuntime } from './runtime.js';

export interface StartedRuntime {
  readonly runtime: EngineRuntime;
  /** `auto`: which mode it chose and why; null when the mode was configured. */
  readonly modeChoice: string | null;
}

export async function startEngineRuntime(options: WorkerOptions): Promise<StartedRuntime> {
  const configured = options.base.mode;
  if (configured !== 'auto') return { runtime: await startIn(configured, options), modeChoice: null };
  if (options.base.session.executionProvider !== 'cpu') {
    const runtime = await startIn('graph', options);
    return { runtime, modeChoice: 'auto: graph, the mode of GPU providers' };
  }
  try {
    const runtime = await startIn('mixed', options, 'one-session');
    return { runtime, modeChoice: 'auto: mixed, on its one-session pipeline' };
  } catch (error) {
    // Anything else (a file that is not a model, a session that cannot start) fails patch too:
    // report it as it is.
    if (!(error instanceof OneSessionUnavailable) && !(error instanceof DS_ERR_ONNX_INVALID)) throw error;
    const runtime = await startIn('patch', options);
    return {
      runtime,
      modeChoice: `auto: patch, because mixed mode's one-session pipeline cannot serve here: ${error.message}`,
    };
  }
}

function startIn(mode: ActivationMode, options: WorkerOptions, pipelines?: 'one-session'): Promise<EngineRuntime> {
  const resolved = { ...options, base: { ...options.base, mode } };
  return mode === 'mixed' ? startMixedRuntime(resolved, pipelines) : startPerTaskRuntime(resolved.base);
}
