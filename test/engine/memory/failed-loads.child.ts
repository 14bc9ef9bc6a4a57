/**
 * Child process of failed-load-memory.test.ts (its own RSS): starts an engine on a tiny model,
 * loads several large deltas that are all refused (422: a weight the base does not have the shape
 * of), then reports RSS at the start, at the peak, and after the failures settled and a GC of the
 * main thread. Prints one JSON line.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../src/engine/engine.js';
import { writeSafetensors } from '../../../src/deltas/format/safetensors.js';
import { encodeDeltaMetadata } from '../../../src/deltas/format/delta-schema.js';
import { writeImageModel, biasDelta } from '../../http/fixtures.js';

const DELTA_MB = Number(process.env.DELTA_MB ?? 160);
const LOADS = Number(process.env.LOADS ?? 3);
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const gc = (globalThis as { gc?: () => void }).gc!;

const dir = await mkdtemp(join(tmpdir(), 'deltaserve-mem-'));
try {
  const model = await writeImageModel(dir);
  // A well-formed delta file whose only tensor is far larger than the base weight it names.
  const metadata = encodeDeltaMetadata({ ...biasDelta(model.fingerprint, 1), tensors: [] });
  const numel = (DELTA_MB * 2 ** 20) / 4;
  metadata.tensors = JSON.stringify({ 'fc.bias': { shape: [numel], encoding: 'dense', rescale: 1 } });
  const bytes = writeSafetensors(
    [{ name: 'fc.bias::dense', dtype: 'F32', shape: [numel], data: new Float32Array(numel) }],
    metadata,
  );
  await writeFile(join(dir, 'big.safetensors'), bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');

  const engine = await Engine.start({
    worker: {
      base: {
        modelPath: model.path,
        mode: 'patch',
        patchable: [],
        session: { executionProvider: 'cpu', intraOpThreads: 1 },
      },
      cacheMaxBytes: 64 * 2 ** 20,
      source: { fileRoot: dir, allowedSchemes: ['file'], maxBytes: 2 ** 31 },
    },
    scheduler: {
      maxBatchSize: 4,
      maxQueueDelayMs: 0,
      maxQueuedPerTask: 16,
      maxQueuedTotal: 64,
      forcedSwitchWaitMs: 50,
    },
  });
  gc();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const start = process.memoryUsage().rss;
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const outcomes = await Promise.allSettled(
    Array.from({ length: LOADS }, (_, i) => engine.load({ key: `big-${i}@1`, uri: 'big.safetensors', sha256 })),
  );
  clearInterval(sampler);
  const codes = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as { code?: string }).code : 'loaded'));
  gc();
  // The worker's own heap: what it does by itself after the failures, within a couple of seconds.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  gc();
  const after = process.memoryUsage().rss;
  await engine.close?.();
  console.log(
    JSON.stringify({
      startMb: mb(start),
      peakMb: mb(peak),
      afterMb: mb(after),
      deltaMb: DELTA_MB,
      loads: LOADS,
      codes,
    }),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
