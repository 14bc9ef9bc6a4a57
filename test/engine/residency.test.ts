/**
 * Residency in every mode (issue 19): a request never fails because its delta was evicted
 * between its load and its run. Queued requests hold their task's delta in the worker, so cache
 * pressure cannot evict it while a batch forms; a cache too small for one batch's deltas makes
 * requests wait for room, never fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, type AnyEngineEvent, type EngineOptions } from '../../src/engine/engine.js';
import type { ActivationMode } from '../../src/engine/runtime/activator.js';
import { deltaByteSize } from '../../src/deltas/cache/index.js';
import type { TaskRef } from '../../src/deltas/types.js';
import {
  buildTinyZoo,
  maxAbsDiff,
  mergeIndependently,
  writeTaskFiles,
  runPlain,
  tokenBatch,
  type TinyZoo,
} from '../helpers/tiny-models.js';
import { testEngineOptions } from '../helpers/engine-options.js';

let zoo: TinyZoo;
const refs: TaskRef[] = [];
let deltaBytes = 0;

before(async () => {
  zoo = await buildTinyZoo({ tasks: 6 });
  refs.push(...(await writeTaskFiles(zoo.dir, zoo.deltas)));
  deltaBytes = Math.max(...zoo.deltas.map(deltaByteSize));
});
after(async () => zoo.cleanup());

function options(
  mode: ActivationMode,
  cacheMaxBytes: number,
  events: AnyEngineEvent[],
  maxQueueDelayMs = 2,
): EngineOptions {
  return testEngineOptions({
    modelPath: zoo.basePath,
    deltaDir: zoo.dir,
    mode,
    cacheMaxBytes,
    maxQueueDelayMs,
    events,
  });
}

const logits = (result: Awaited<ReturnType<Engine['infer']>>) => result.outputs.logits!.data as Float32Array;

const residentBytes = new Map<ActivationMode, number>();
/**
 * The largest delta as `mode`'s cache holds it: mixed mode's one session keeps side weights in a
 * smaller form than decoded, so a budget "for two deltas" is counted in the mode's own bytes.
 */
async function residentDeltaBytes(mode: ActivationMode): Promise<number> {
  const known = residentBytes.get(mode);
  if (known !== undefined) return known;
  const engine = await Engine.start(options(mode, 64 * 1024 * 1024, []));
  let largest = 0;
  try {
    for (const ref of refs) {
      await engine.load(ref);
      const before = (await engine.stats()).worker!.cache.bytes;
      await engine.evict(ref.key);
      largest = Math.max(largest, before - (await engine.stats()).worker!.cache.bytes);
    }
  } finally {
    await engine.close();
  }
  assert.ok(largest > 0 && largest <= deltaBytes, `${mode}: ${largest} bytes resident, ${deltaBytes} decoded`);
  residentBytes.set(mode, largest);
  return largest;
}

for (const mode of ['patch', 'graph', 'mixed'] as const) {
  test(`${mode} mode: a cache smaller than one batch's deltas still completes every request, each equal to its merged model`, async () => {
    const events: AnyEngineEvent[] = [];
    // Room for two of the six deltas; a mixed batch of 8 would need up to six.
    const engine = await Engine.start(options(mode, Math.floor((await residentDeltaBytes(mode)) * 2.5), events));
    try {
      const jobs = Array.from({ length: 36 }, (_, i) => (i * 5) % 7); // 6 = the base
      const inputs = (i: number) => tokenBatch(1 + (i % 2), 5, 60 + i);
      const settled = await Promise.allSettled(
        jobs.map((t, i) => engine.infer(t === 6 ? null : refs[t]!, inputs(i), { deadline: Date.now() + 120_000 })),
      );
      const failures = settled.flatMap((r, i) => (r.status === 'rejected' ? [`job ${i}: ${String(r.reason)}`] : []));
      assert.deepEqual(failures, [], 'no request fails');
      for (const [i, t] of jobs.entries()) {
        const model = t === 6 ? zoo.base : mergeIndependently(zoo.base, zoo.deltas[t]!);
        const got = logits((settled[i] as PromiseFulfilledResult<Awaited<ReturnType<Engine['infer']>>>).value);
        assert.ok(maxAbsDiff(got, await runPlain(model, inputs(i))) <= 1e-5, `job ${i} (task ${t})`);
      }
      const stats = await engine.stats();
      assert.ok(stats.worker!.cache.bytes <= stats.worker!.cache.maxBytes);
      assert.ok(stats.worker!.cache.evictions > 0, 'the cache was too small: deltas were evicted');
      const ran = events.reduce((n, e) => n + (e.type === 'batch' ? e.size : 0), 0);
      assert.equal(ran, jobs.length, 'batch events count each request once, when it ran');
    } finally {
      await engine.close();
    }
  });
}

for (const mode of ['patch', 'mixed'] as const) {
  test(`${mode} mode: a delta evicted while a batch is forming never reaches a run`, async () => {
    const events: AnyEngineEvent[] = [];
    // Room for two deltas. A batch waits up to a minute to fill, so it forms until the test fills
    // it (8 requests): nothing here depends on timing.
    const engine = await Engine.start(
      options(mode, Math.floor((await residentDeltaBytes(mode)) * 2.5), events, 60_000),
    );
    try {
      const inputs = (i: number) => tokenBatch(1 + (i % 2), 5, 9 + i);
      await engine.load(refs[0]!);
      const first = engine.infer(refs[0]!, inputs(0));
      assert.equal(engine.schedulerStats().queued, 1, 'the request waits for its batch to fill');
      // Loads of other tasks need room: task 0 is the least recently used, but held for its request.
      await engine.load(refs[1]!);
      await engine.load(refs[2]!);
      await engine.load(refs[3]!);
      assert.equal(engine.schedulerStats().queued, 1, 'still forming');
      const { worker } = await engine.stats();
      assert.ok(worker!.cache.keys.includes(refs[0]!.key), `task 0 stayed resident: ${worker!.cache.keys.join(', ')}`);
      assert.ok(worker!.cache.evictions >= 2, 'the other loads evicted each other instead');
      // Seven more requests fill the batch, which runs.
      const rest = Array.from({ length: 7 }, (_, i) => engine.infer(refs[0]!, inputs(i + 1)));
      const results = [await first, ...(await Promise.all(rest))];
      assert.ok(
        results.every((r) => r.cacheHit && r.batchSize === 8),
        `one batch of 8 found the delta it was queued with: ${JSON.stringify(results.map((r) => [r.cacheHit, r.batchSize]))}`,
      );
      assert.deepEqual(
        events.filter((e) => e.type === 'delta-reload'),
        [],
        'no request waited for a reload',
      );
      for (const [i, result] of results.entries()) {
        const want = await runPlain(mergeIndependently(zoo.base, zoo.deltas[0]!), inputs(i));
        assert.ok(maxAbsDiff(logits(result), want) <= 1e-5, `request ${i}`);
      }
      // The hold ends with the request: task 0 may be evicted again.
      await engine.load(refs[4]!);
      await engine.load(refs[5]!);
      assert.ok(!(await engine.stats()).worker!.cache.keys.includes(refs[0]!.key), 'released after its run');
    } finally {
      await engine.close();
    }
  });
}

test('a cold request is refused at once when the queues are full, before its delta loads', async () => {
  const events: AnyEngineEvent[] = [];
  const base = options('patch', 64 * 1024 * 1024, events, 60_000);
  const engine = await Engine.start({ ...base, scheduler: { ...base.scheduler, maxQueuedTotal: 1 } });
  const queued = engine.infer(null, tokenBatch(1, 5, 1)); // fills the queue (its batch waits to fill)
  try {
    await assert.rejects(engine.infer(refs[0]!, tokenBatch(1, 5, 2)), { code: 'DS_ERR_OVERLOADED' });
    assert.deepEqual(
      events.filter((e) => e.type === 'cache'),
      [],
      'nothing was loaded for it',
    );
  } finally {
    // Closing runs the batch that waits a minute to fill: queued work finishes, promptly.
    const closing = engine.close(60_000);
    assert.ok(Object.keys((await queued).outputs).length > 0, 'the queued request ran when the engine closed');
    await closing;
  }
});
