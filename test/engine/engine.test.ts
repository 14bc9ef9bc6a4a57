import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Engine, type EngineOptions } from '../../src/engine/engine.js';
import type { TaskRef } from '../../src/deltas/types.js';
import { encodeDelta } from '../../src/deltas/format/delta-file.js';
import { saveOnnxModel } from '../../src/onnx/model-file.js';
import { buildSyntheticEncoder } from '../../src/onnx/synthetic.js';
import { until } from '../helpers/until.js';
import {
  buildTinyZoo,
  maxAbsDiff,
  mergeIndependently,
  runPlain,
  tokenBatch,
  type TinyZoo,
} from '../helpers/tiny-models.js';
import { testEngineOptions } from '../helpers/engine-options.js';

let zoo: TinyZoo;
const refs: TaskRef[] = [];

before(async () => {
  zoo = await buildTinyZoo({ tasks: 4 });
  for (const [i, delta] of zoo.deltas.entries()) {
    const bytes = encodeDelta(delta);
    const file = `task-${i}.safetensors`;
    await writeFile(join(zoo.dir, file), bytes);
    refs.push({ key: `task-${i}@1`, uri: file, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  await writeFile(join(zoo.dir, 'corrupt.safetensors'), Buffer.from('not a delta at all'));
});
after(async () => zoo.cleanup());

function engineOptions(modelPath = zoo.basePath, overrides: Partial<EngineOptions> = {}): EngineOptions {
  return { ...testEngineOptions({ modelPath, deltaDir: zoo.dir, mode: 'patch' }), ...overrides };
}

const logits = (result: Awaited<ReturnType<Engine['infer']>>) => result.outputs.logits!.data as Float32Array;

test('infer through the worker matches independently merged models, concurrently across tasks', async () => {
  const engine = await Engine.start(engineOptions());
  try {
    assert.ok(engine.ready);
    assert.deepEqual(
      engine.modelIO.inputs.map((i) => i.name),
      ['input_ids'],
    );
    const inputs = tokenBatch(2, 5, 7);
    const expected = await Promise.all(zoo.deltas.map((d) => runPlain(mergeIndependently(zoo.base, d), inputs)));
    const baseExpected = await runPlain(zoo.base, inputs);
    const jobs = Array.from({ length: 40 }, (_, i) => i % 5);
    const results = await Promise.all(jobs.map((t) => engine.infer(t === 4 ? null : refs[t]!, tokenBatch(2, 5, 7))));
    results.forEach((result, i) => {
      const t = jobs[i]!;
      const want = t === 4 ? baseExpected : expected[t]!;
      assert.ok(maxAbsDiff(logits(result), want) <= 1e-5, `job ${i} (task ${t})`);
    });
    assert.ok(
      results.some((r) => r.batchSize > 1),
      'requests of one task were batched',
    );
    // The first request of each task waited for its delta: a miss with load timings.
    for (let t = 0; t < 4; t++) {
      const first = results[jobs.indexOf(t)]!;
      assert.equal(first.cacheHit, false);
      assert.ok(first.load !== undefined && first.load.ms >= 0 && first.load.decodeMs! >= 0);
    }
    const again = await engine.infer(refs[0]!, tokenBatch(1, 5, 7));
    assert.equal(again.cacheHit, true);
    assert.equal(again.load, undefined);
    const stats = await engine.stats();
    assert.equal(stats.worker!.cache.entries, 4);
    assert.ok(stats.worker!.cache.misses >= 4);
  } finally {
    await engine.close();
  }
});

test('a corrupt or checksum-mismatched delta fails only its task, with 503 naming it, and is never cached', async () => {
  const engine = await Engine.start(engineOptions());
  try {
    const corrupt: TaskRef = {
      key: 'broken@1',
      uri: 'corrupt.safetensors',
      sha256: createHash('sha256').update('not a delta at all').digest('hex'),
    };
    const mismatch: TaskRef = { ...refs[0]!, key: 'tampered@1', sha256: '0'.repeat(64) };
    const missing: TaskRef = { key: 'missing@1', uri: 'nope.safetensors', sha256: '0'.repeat(64) };
    for (const bad of [corrupt, mismatch, missing]) {
      await assert.rejects(
        engine.infer(bad, tokenBatch(1, 4, 1)),
        (e: Error & { code?: string; statusCode?: number }) => {
          assert.equal(e.code, 'DS_ERR_TASK_UNAVAILABLE');
          assert.equal(e.statusCode, 503);
          assert.match(e.message, new RegExp(bad.key));
          return true;
        },
      );
    }
    const ok = await engine.infer(refs[1]!, tokenBatch(1, 4, 1));
    assert.equal(ok.outputs.logits!.dims[0], 1);
    const stats = await engine.stats();
    assert.deepEqual(stats.worker!.cache.keys, ['task-1@1']);
    assert.equal(stats.worker!.cache.loadFailures, 3);
  } finally {
    await engine.close();
  }
});

test('pin, unpin, evict and stats', async () => {
  const engine = await Engine.start(engineOptions());
  try {
    await engine.pin(refs[2]!);
    let stats = await engine.stats();
    assert.deepEqual(stats.worker!.cache.pinned, ['task-2@1']);
    await engine.unpin('task-2@1');
    stats = await engine.stats();
    assert.deepEqual(stats.worker!.cache.pinned, []);
    assert.deepEqual(stats.worker!.cache.keys, ['task-2@1']);
    await engine.evict('task-2@1');
    stats = await engine.stats();
    assert.deepEqual(stats.worker!.cache.keys, []);
    // Evicted tasks load again on demand.
    await engine.infer(refs[2]!, tokenBatch(1, 3, 2));
  } finally {
    await engine.close();
  }
});

test('the worker dies mid-batch: its requests fail at once, the engine restarts, later requests succeed', async () => {
  const events: string[] = [];
  const engine = await Engine.start(engineOptions(zoo.basePath, { onEvent: (e) => events.push(e.type) }));
  try {
    await engine.crashWorkerOnNextBatch();
    const killed = performance.now();
    const inflight = Array.from({ length: 4 }, () => engine.infer(null, tokenBatch(2, 8, 3)));
    const outcomes = await Promise.allSettled(inflight);
    // The batch that was running fails with the crash; requests still queued behind it fail
    // because the engine is not ready: nobody waits for a reply that cannot come.
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected');
      const code = (o.reason as { code?: string }).code;
      assert.ok(code === 'DS_ERR_ENGINE_CRASHED' || code === 'DS_ERR_ENGINE_NOT_READY', code);
    }
    assert.ok(
      outcomes.some((o) => ((o as PromiseRejectedResult).reason as { code?: string }).code === 'DS_ERR_ENGINE_CRASHED'),
    );
    assert.ok(performance.now() - killed < 5000, 'failed without waiting for a timeout');
    assert.equal(engine.ready, false);
    await assert.rejects(
      engine.infer(null, tokenBatch(1, 4, 1)),
      (e: { code?: string }) => e.code === 'DS_ERR_ENGINE_NOT_READY',
    );
    await until(() => engine.ready, 'the restarted worker');
    assert.equal(engine.restartCount, 1);
    const after = await engine.infer(null, tokenBatch(1, 4, 1));
    assert.equal(after.outputs.logits!.dims[0], 1);
    assert.ok(events.includes('worker-exited'));
  } finally {
    await engine.close();
  }
});

test('a base model that cannot be loaded fails start-up with a clear error', async () => {
  const bad = join(zoo.dir, 'bad.onnx');
  await writeFile(bad, Buffer.from('garbage'));
  await assert.rejects(Engine.start(engineOptions(bad)), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'DS_ERR_ENGINE_START_FAILED');
    assert.match(e.message, /bad\.onnx/);
    return true;
  });
});

test('graph mode through the worker gives the same answers as patch mode', async () => {
  const options = engineOptions();
  const graph = await Engine.start({
    ...options,
    worker: { ...options.worker, base: { ...options.worker.base, mode: 'graph' } },
  });
  const patch = await Engine.start(options);
  try {
    for (const [i, ref] of refs.entries()) {
      const a = await graph.infer(ref, tokenBatch(3, 6, 8));
      const b = await patch.infer(ref, tokenBatch(3, 6, 8));
      const expected = await runPlain(mergeIndependently(zoo.base, zoo.deltas[i]!), tokenBatch(3, 6, 8));
      assert.ok(maxAbsDiff(logits(a), expected) <= 1e-5);
      assert.ok(maxAbsDiff(logits(b), expected) <= 1e-5);
    }
    assert.equal(graph.readyInfo!.mode, 'graph');
  } finally {
    await Promise.all([graph.close(), patch.close()]);
  }
});

test('restartWorker replaces the worker after the run in progress, without failing it', async () => {
  const path = join(zoo.dir, 'medium.onnx');
  await saveOnnxModel(
    buildSyntheticEncoder({ layers: 4, hidden: 256, ffn: 1024, heads: 4, vocab: 50, maxSeq: 128, labels: 3, seed: 3 }),
    path,
  );
  const engine = await Engine.start(engineOptions(path));
  try {
    const running = engine.infer(null, tokenBatch(16, 128, 3));
    await until(() => engine.schedulerStats().running > 0, 'the batch to start', 10_000, 1);
    await engine.restartWorker();
    assert.equal((await running).outputs.logits!.dims[0], 16);
    await until(() => engine.ready, 'the replacement worker');
    assert.equal((await engine.infer(null, tokenBatch(1, 4, 1))).outputs.logits!.dims[0], 1);
  } finally {
    await engine.close();
  }
});

test('a delta evicted while its request is queued is loaded outside the run: other tasks keep running', async () => {
  // Task 0's delta is served over HTTP: the first fetch is answered at once, later ones wait
  // until the test lets them go, so a reload of it stays in flight as long as the test wants.
  const bytes = encodeDelta(zoo.deltas[0]!);
  let fetches = 0;
  let letGo!: () => void;
  const stalled = new Promise<void>((resolve) => (letGo = resolve));
  const server = createServer((request, response) => {
    fetches++;
    const answer = () => response.end(bytes);
    if (fetches === 1) answer();
    else void stalled.then(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const remote: TaskRef = {
    ...refs[0]!,
    uri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/task-0.safetensors`,
  };
  const options = engineOptions();
  const engine = await Engine.start({
    ...options,
    worker: {
      ...options.worker,
      source: { fileRoot: zoo.dir, allowedSchemes: ['file', 'http'], allowedHosts: ['127.0.0.1'] },
    },
    // A lone request waits this long for its batch to fill: the window in which the test evicts.
    scheduler: { ...options.scheduler, maxQueueDelayMs: 500 },
  });
  const reloads: string[] = [];
  engine.subscribe((event) => event.type === 'delta-reload' && reloads.push(event.key));
  try {
    await engine.load(remote);
    await engine.load(refs[1]!);
    const inputs = () => tokenBatch(2, 5, 9);
    const queued = engine.infer(remote, inputs());
    let settled = false;
    void queued.finally(() => (settled = true)).catch(() => undefined);
    assert.equal(engine.schedulerStats().queued, 1, 'the request waits in its queue');
    await engine.evict(remote.key);
    assert.equal(engine.schedulerStats().queued, 1, 'evicted while still queued');

    // Task 1 arrives: task 0's batch goes first, finds its delta gone, and its reload stalls.
    const other = await Promise.race([
      engine.infer(refs[1]!, inputs()),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("task 1 waited for task 0's fetch")), 15_000).unref(),
      ),
    ]);
    const expectedOther = await runPlain(mergeIndependently(zoo.base, zoo.deltas[1]!), inputs());
    assert.ok(maxAbsDiff(logits(other), expectedOther) <= 1e-5);
    assert.equal(fetches, 2, 'task 0 is being fetched again');
    assert.equal(settled, false, 'task 0 still waits for its fetch');

    letGo();
    const result = await queued;
    assert.deepEqual(reloads, [remote.key], 'the reload is reported once, for its task');
    assert.equal(result.cacheHit, false);
    assert.ok(result.load !== undefined && result.load.fetchMs! >= 0 && result.load.ms > 0);
    const expected = await runPlain(mergeIndependently(zoo.base, zoo.deltas[0]!), inputs());
    assert.ok(maxAbsDiff(logits(result), expected) <= 1e-5);
  } finally {
    letGo();
    await engine.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
