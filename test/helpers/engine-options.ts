/**
 * Engine options the engine tests share: one CPU thread, deltas from a folder of files, batches
 * of up to 8 that start 2 ms after their first request, restarts after 50 ms.
 */
import type { AnyEngineEvent, EngineOptions } from '../../src/engine/engine.js';
import type { ActivationModeChoice } from '../../src/engine/runtime/activator.js';

export interface TestEngineSetup {
  readonly modelPath: string;
  /** Where the delta files are (the file source's root). */
  readonly deltaDir: string;
  readonly mode: ActivationModeChoice;
  readonly cacheMaxBytes?: number;
  /** How long a batch may wait to fill (default 2 ms). */
  readonly maxQueueDelayMs?: number;
  /** Every engine event is pushed here. */
  readonly events?: AnyEngineEvent[];
}

export function testEngineOptions(setup: TestEngineSetup): EngineOptions {
  const events = setup.events;
  return {
    worker: {
      base: {
        modelPath: setup.modelPath,
        mode: setup.mode,
        patchable: [],
        session: { executionProvider: 'cpu', intraOpThreads: 1 },
      },
      cacheMaxBytes: setup.cacheMaxBytes ?? 64 * 1024 * 1024,
      source: { fileRoot: setup.deltaDir, allowedSchemes: ['file'] },
    },
    scheduler: {
      maxBatchSize: 8,
      maxQueueDelayMs: setup.maxQueueDelayMs ?? 2,
      maxQueuedPerTask: 100,
      maxQueuedTotal: 400,
      forcedSwitchWaitMs: 50,
    },
    restartDelayMs: 50,
    ...(events && { onEvent: (event: AnyEngineEvent) => events.push(event) }),
  };
}
