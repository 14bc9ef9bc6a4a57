import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTelemetry, METRICS, type Telemetry } from '../../src/telemetry/index.js';
import { labelSetsOf, parseSamples, valueOf, type Sample } from './prometheus-text.js';

async function scrape(telemetry: Telemetry): Promise<Sample[]> {
  return parseSamples(await telemetry.renderPrometheus());
}

async function withTelemetry(run: (telemetry: Telemetry) => Promise<void>, maxLabelValues?: number): Promise<void> {
  const telemetry = buildTelemetry({
    serviceName: 'deltaserve-test',
    ...(maxLabelValues !== undefined && { maxLabelValues }),
  });
  try {
    await run(telemetry);
  } finally {
    await telemetry.shutdown();
  }
}

const REQUEST = METRICS.requestDuration.name;

test('requests: a histogram per task, tenant and status with exact count, sum and buckets', () =>
  withTelemetry(async (telemetry) => {
    telemetry.recordRequest({ task: 'sentiment', tenant: 'acme', status: 200, seconds: 0.004 });
    telemetry.recordRequest({ task: 'sentiment', tenant: 'acme', status: 200, seconds: 0.3 });
    telemetry.recordRequest({ task: 'sentiment', tenant: 'globex', status: 503, seconds: 2 });

    const samples = await scrape(telemetry);
    const acme = { task: 'sentiment', tenant: 'acme', status: '200' };
    assert.equal(valueOf(samples, `${REQUEST}_count`, acme), 2);
    assert.equal(valueOf(samples, `${REQUEST}_sum`, acme), 0.304);
    assert.equal(valueOf(samples, `${REQUEST}_bucket`, { ...acme, le: '0.005' }), 1);
    assert.equal(valueOf(samples, `${REQUEST}_bucket`, { ...acme, le: '0.25' }), 1);
    assert.equal(valueOf(samples, `${REQUEST}_bucket`, { ...acme, le: '0.5' }), 2);
    assert.equal(valueOf(samples, `${REQUEST}_bucket`, { ...acme, le: '+Inf' }), 2);
    assert.equal(valueOf(samples, `${REQUEST}_count`, { task: 'sentiment', tenant: 'globex', status: '503' }), 1);
    assert.equal(valueOf(samples, `${REQUEST}_sum`, { task: 'sentiment', tenant: 'globex', status: '503' }), 2);
  }));

test('requests with no resolved task or tenant are recorded as unknown', () =>
  withTelemetry(async (telemetry) => {
    telemetry.recordRequest({ task: null, tenant: 'acme', status: 404, seconds: 0.001 });
    telemetry.recordRequest({ task: null, tenant: 'acme', status: 404, seconds: 0.002 });
    telemetry.recordRequest({ task: null, tenant: null, status: 401, seconds: 0.001 });

    const samples = await scrape(telemetry);
    assert.equal(valueOf(samples, `${REQUEST}_count`, { task: 'unknown', tenant: 'acme', status: '404' }), 2);
    assert.equal(valueOf(samples, `${REQUEST}_count`, { task: 'unknown', tenant: 'unknown', status: '401' }), 1);
    assert.deepEqual(new Set(labelSetsOf(samples, `${REQUEST}_count`).map((l) => l.task)), new Set(['unknown']));
  }));

test('task labels past maxLabelValues are folded into other, known ones keep their series', () =>
  withTelemetry(async (telemetry) => {
    for (const task of ['a', 'b', 'c', 'd', 'a'])
      telemetry.recordRequest({ task, tenant: 't', status: 200, seconds: 0.01 });

    const samples = await scrape(telemetry);
    const tasks = labelSetsOf(samples, `${REQUEST}_count`)
      .map((l) => l.task)
      .sort();
    assert.deepEqual(tasks, ['a', 'b', 'other']);
    assert.equal(valueOf(samples, `${REQUEST}_count`, { task: 'a', tenant: 't', status: '200' }), 2);
    assert.equal(valueOf(samples, `${REQUEST}_count`, { task: 'other', tenant: 't', status: '200' }), 2);
  }, 2));

test('a non-finite duration is dropped, a negative one counts as 0', () =>
  withTelemetry(async (telemetry) => {
    telemetry.recordRequest({ task: 'x', tenant: 't', status: 200, seconds: Number.NaN });
    telemetry.recordRequest({ task: 'x', tenant: 't', status: 200, seconds: -0.5 });

    const samples = await scrape(telemetry);
    assert.equal(valueOf(samples, `${REQUEST}_count`, { task: 'x', tenant: 't', status: '200' }), 1);
    assert.equal(valueOf(samples, `${REQUEST}_sum`, { task: 'x', tenant: 't', status: '200' }), 0);
  }));

test('cache events: hits, misses (in-flight joins included), evictions, failures and load phases by task name', () =>
  withTelemetry(async (telemetry) => {
    telemetry.recordEngineEvent({ type: 'cache', kind: 'miss', key: 'sentiment@3' });
    telemetry.recordEngineEvent({ type: 'cache', kind: 'miss-inflight', key: 'sentiment@3' });
    telemetry.recordEngineEvent({
      type: 'cache',
      kind: 'load',
      key: 'sentiment@3',
      bytes: 4096,
      fileBytes: 4096,
      ms: 120,
      phases: { fetch: 80, verify: 10, decode: 25 },
    });
    // A second load, of another version of the same task.
    telemetry.recordEngineEvent({
      type: 'cache',
      kind: 'load',
      key: 'sentiment@4',
      bytes: 2048,
      fileBytes: 2048,
      ms: 58,
      phases: { fetch: 40, verify: 5, decode: 10 },
    });
    telemetry.recordEngineEvent({ type: 'cache', kind: 'hit', key: 'sentiment@3', bytes: 4096 });
    telemetry.recordEngineEvent({ type: 'cache', kind: 'hit', key: 'sentiment@3', bytes: 4096 });
    telemetry.recordEngineEvent({ type: 'cache', kind: 'hit', key: 'ner@1', bytes: 100 });
    telemetry.recordEngineEvent({ type: 'cache', kind: 'evict', key: 'ner@1', bytes: 100 });
    telemetry.recordEngineEvent({ type: 'cache', kind: 'evict', key: 'ner@1', bytes: 100 });
    telemetry.recordEngineEvent({
      type: 'cache',
      kind: 'load-failed',
      key: 'broken@1',
      ms: 5,
      error: { name: 'Error', message: 'not found' },
    });
    // An explicit drop is not an eviction of its own: the worker's evict event was counted.
    telemetry.recordEngineEvent({ type: 'dropped', key: 'ner@1' });

    const samples = await scrape(telemetry);
    assert.equal(valueOf(samples, METRICS.cacheHits.name, { task: 'sentiment' }), 2);
    assert.equal(valueOf(samples, METRICS.cacheHits.name, { task: 'ner' }), 1);
    assert.equal(valueOf(samples, METRICS.cacheMisses.name, { task: 'sentiment' }), 2);
    assert.equal(valueOf(samples, METRICS.cacheEvictions.name, { task: 'ner' }), 2);
    assert.equal(valueOf(samples, METRICS.deltaLoadFailures.name, { task: 'broken' }), 1);

    const load = METRICS.deltaLoadDuration.name;
    const phase = (p: string) => ({ task: 'sentiment', phase: p });
    assert.equal(valueOf(samples, `${load}_count`, phase('fetch')), 2);
    assert.equal(valueOf(samples, `${load}_sum`, phase('fetch')), 0.12);
    assert.equal(valueOf(samples, `${load}_sum`, phase('verify')), 0.015);
    assert.equal(valueOf(samples, `${load}_sum`, phase('decode')), 0.035);
    // `total` is each load's own ms (120 and 58).
    assert.equal(valueOf(samples, `${load}_count`, phase('total')), 2);
    assert.equal(valueOf(samples, `${load}_sum`, phase('total')), 0.178);
    const phases = new Set(labelSetsOf(samples, `${load}_count`).map((l) => l.phase));
    assert.deepEqual(phases, new Set(['fetch', 'verify', 'decode', 'total']));
  }));

test('activation, batch and scheduler events: counters and histograms by task, base model as task="base"', () =>
  withTelemetry(async (telemetry) => {
    telemetry.recordEngineEvent({ type: 'activation', key: 'sentiment@3', nonzeros: 1000, ms: 2 });
    telemetry.recordEngineEvent({ type: 'activation', key: 'sentiment@3', nonzeros: 1000, ms: 4 });
    telemetry.recordEngineEvent({ type: 'activation', key: null, nonzeros: 1000, ms: 1 });
    telemetry.recordEngineEvent({ type: 'batch', key: 'sentiment@3', size: 8, inferMs: 50 });
    telemetry.recordEngineEvent({ type: 'batch', key: 'sentiment@3', size: 3, inferMs: 20 });
    telemetry.recordEngineEvent({ type: 'batch', key: null, size: 1, inferMs: 5 });
    const scheduler = (event: Parameters<Telemetry['recordEngineEvent']>[0]) => telemetry.recordEngineEvent(event);
    scheduler({ type: 'scheduler', event: { type: 'enqueued', task: 'sentiment@3', depth: 1, queued: 1 } });
    scheduler({ type: 'scheduler', event: { type: 'dequeued', task: 'sentiment@3', waitMs: 7, priority: 0 } });
    scheduler({ type: 'scheduler', event: { type: 'dequeued', task: 'sentiment@3', waitMs: 13, priority: 0 } });
    scheduler({ type: 'scheduler', event: { type: 'dequeued', task: '@base', waitMs: 1, priority: 0 } });
    // Counted from the engine's batch event only, not twice.
    scheduler({
      type: 'scheduler',
      event: { type: 'batch', task: 'sentiment@3', size: 8, ms: 52, ok: true, activation: false, choice: 'active' },
    });
    scheduler({ type: 'scheduler', event: { type: 'rejected', task: 'sentiment@3', reason: 'overloaded' } });
    scheduler({ type: 'scheduler', event: { type: 'rejected', task: 'sentiment@3', reason: 'deadline' } });
    scheduler({ type: 'scheduler', event: { type: 'expired', task: 'sentiment@3', waitMs: 900 } });
    scheduler({ type: 'scheduler', event: { type: 'aborted', task: 'sentiment@3', waitMs: 3 } });
    scheduler({ type: 'scheduler', event: { type: 'rejected', task: '@base', reason: 'shutting-down' } });

    const samples = await scrape(telemetry);
    const sentiment = { task: 'sentiment' };
    assert.equal(valueOf(samples, METRICS.activations.name, sentiment), 2);
    assert.equal(valueOf(samples, METRICS.activations.name, { task: 'base' }), 1);
    assert.equal(valueOf(samples, `${METRICS.activationDuration.name}_count`, sentiment), 2);
    assert.equal(valueOf(samples, `${METRICS.activationDuration.name}_sum`, sentiment), 0.006);

    assert.equal(valueOf(samples, `${METRICS.batchSize.name}_count`, sentiment), 2);
    assert.equal(valueOf(samples, `${METRICS.batchSize.name}_sum`, sentiment), 11);
    assert.equal(valueOf(samples, `${METRICS.batchSize.name}_bucket`, { ...sentiment, le: '4' }), 1);
    assert.equal(valueOf(samples, `${METRICS.batchSize.name}_bucket`, { ...sentiment, le: '8' }), 2);
    assert.equal(valueOf(samples, `${METRICS.batchSize.name}_count`, { task: 'base' }), 1);
    assert.equal(valueOf(samples, `${METRICS.inferenceDuration.name}_sum`, sentiment), 0.07);

    assert.equal(valueOf(samples, `${METRICS.queueWait.name}_count`, sentiment), 2);
    assert.equal(valueOf(samples, `${METRICS.queueWait.name}_sum`, sentiment), 0.02);
    assert.equal(valueOf(samples, `${METRICS.queueWait.name}_count`, { task: 'base' }), 1);

    const dropped = METRICS.queueDropped.name;
    assert.equal(valueOf(samples, dropped, { task: 'sentiment', reason: 'overloaded' }), 1);
    assert.equal(
      valueOf(samples, dropped, { task: 'sentiment', reason: 'deadline' }),
      2,
      'rejected past deadline + expired in queue',
    );
    assert.equal(valueOf(samples, dropped, { task: 'sentiment', reason: 'aborted' }), 1);
    assert.equal(valueOf(samples, dropped, { task: 'base', reason: 'shutting_down' }), 1);
  }));

test('worker events: the first start is not a restart, each replacement is', () =>
  withTelemetry(async (telemetry) => {
    telemetry.recordEngineEvent({ type: 'worker-started', ms: 300 });
    let samples = await scrape(telemetry);
    assert.equal(valueOf(samples, METRICS.engineRestarts.name) ?? 0, 0);
    assert.equal(valueOf(samples, `${METRICS.engineStartDuration.name}_sum`), 0.3);

    telemetry.recordEngineEvent({ type: 'worker-exited', reason: 'worker exited with code 1' });
    telemetry.recordEngineEvent({ type: 'worker-started', ms: 200 });
    telemetry.recordEngineEvent({ type: 'worker-exited', reason: 'killed' });
    telemetry.recordEngineEvent({ type: 'worker-started', ms: 100 });
    samples = await scrape(telemetry);
    assert.equal(valueOf(samples, METRICS.engineRestarts.name), 2);
    assert.equal(valueOf(samples, `${METRICS.engineStartDuration.name}_count`), 3);
  }));

test('gauges are read from the observe callbacks at each scrape (sync or async)', () =>
  withTelemetry(async (telemetry) => {
    let depth = {
      total: 5,
      byTask: { 'sentiment@3': 2, 'sentiment@4': 1, ner: 1, '@base': 1 } as Record<string, number>,
    };
    let ready = false;
    telemetry.observeQueueDepth(() => depth);
    telemetry.observeCache(async () => ({ bytes: 123_456, fileBytes: 45_678, entries: 3 }));
    telemetry.observeEngineReady(() => ready);

    let samples = await scrape(telemetry);
    assert.equal(valueOf(samples, METRICS.queueDepthAll.name), 5);
    assert.equal(valueOf(samples, METRICS.queueDepth.name, { task: 'sentiment' }), 3, 'versions of a task are summed');
    assert.equal(valueOf(samples, METRICS.queueDepth.name, { task: 'ner' }), 1);
    assert.equal(valueOf(samples, METRICS.queueDepth.name, { task: 'base' }), 1);
    assert.equal(valueOf(samples, METRICS.cacheBytes.name), 123_456);
    assert.equal(valueOf(samples, METRICS.cacheFileBytes.name), 45_678, 'the files of the same deltas, beside');
    assert.equal(valueOf(samples, METRICS.cacheEntries.name), 3);
    assert.equal(valueOf(samples, METRICS.engineReady.name), 0);

    depth = { total: 1, byTask: { ner: 1 } };
    ready = true;
    samples = await scrape(telemetry);
    assert.equal(valueOf(samples, METRICS.queueDepthAll.name), 1);
    assert.equal(
      valueOf(samples, METRICS.queueDepth.name, { task: 'sentiment' }),
      0,
      'a vanished queue reads as empty, not frozen',
    );
    assert.equal(valueOf(samples, METRICS.queueDepth.name, { task: 'ner' }), 1);
    assert.equal(valueOf(samples, METRICS.engineReady.name), 1);

    telemetry.observeEngineReady(() => false);
    samples = await scrape(telemetry);
    assert.equal(valueOf(samples, METRICS.engineReady.name), 0, 'a second observe call replaces the source');
  }));

test('a gauge source that throws reports nothing and does not break the scrape', () =>
  withTelemetry(async (telemetry) => {
    telemetry.observeCache(() => {
      throw new Error('worker is restarting');
    });
    telemetry.observeEngineReady(() => true);
    telemetry.recordRequest({ task: 'x', tenant: 't', status: 200, seconds: 0.01 });

    const samples = await scrape(telemetry);
    assert.equal(valueOf(samples, METRICS.cacheBytes.name), undefined);
    assert.equal(valueOf(samples, METRICS.engineReady.name), 1);
    assert.equal(valueOf(samples, `${REQUEST}_count`, { task: 'x', tenant: 't', status: '200' }), 1);
  }));

test('every metric in METRICS is exported under its name and Prometheus type, with HELP and no UNIT lines', () =>
  withTelemetry(async (telemetry) => {
    telemetry.recordRequest({ task: 'x', tenant: 't', status: 200, seconds: 0.01 });
    for (const event of [
      { type: 'worker-started', ms: 1 },
      { type: 'worker-started', ms: 1 },
      { type: 'activation', key: 'x@1', nonzeros: 1, ms: 1 },
      { type: 'batch', key: 'x@1', size: 1, inferMs: 1 },
      { type: 'batch', key: '@mixed', size: 3, inferMs: 1, tasks: 2 },
      { type: 'mixed-fallback', key: 'x@1', tensor: 'conv.weight', reason: 'read by Conv' },
      { type: 'delta-reload', key: 'x@1' },
      { type: 'scheduler', event: { type: 'dequeued', task: 'x@1', waitMs: 1, priority: 0 } },
      { type: 'scheduler', event: { type: 'rejected', task: 'x@1', reason: 'overloaded' } },
      { type: 'cache', kind: 'hit', key: 'x@1', bytes: 1 },
      { type: 'cache', kind: 'miss', key: 'x@1' },
      { type: 'cache', kind: 'evict', key: 'x@1', bytes: 1 },
      {
        type: 'cache',
        kind: 'load',
        key: 'x@1',
        bytes: 1,
        fileBytes: 1,
        ms: 1,
        phases: { fetch: 1, verify: 0, decode: 0 },
      },
      { type: 'cache', kind: 'load-failed', key: 'x@1', ms: 1, error: { name: 'Error', message: 'no' } },
    ] as const) {
      telemetry.recordEngineEvent(event);
    }
    telemetry.observeQueueDepth(() => ({ total: 0, byTask: { 'x@1': 0 } }));
    telemetry.observeCache(() => ({ bytes: 0, fileBytes: 0, entries: 0 }));
    telemetry.observeEngineReady(() => true);
    telemetry.observeRouting(() => ({
      residentKeys: ['x@1'],
      residentBytes: 10,
      capacityBytes: 100,
      queued: 0,
      running: 0,
      registeredTasks: 1,
    }));
    telemetry.observeRegistrySync(() => ({ synced: true, lastSyncAt: Date.now() }));

    const text = await telemetry.renderPrometheus();
    assert.match(
      text,
      /\ndeltaserve_mixed_fallback_tasks_total\{[^}]*task="x"[^}]*\} 1\n/,
      'the fallback is counted for its task',
    );
    assert.match(
      text,
      /\ndeltaserve_delta_reloads_total\{[^}]*task="x"[^}]*\} 1\n/,
      'a request that waited for its delta to load again is counted for its task',
    );
    assert.match(
      text,
      /\ndeltaserve_batch_tasks_count(\{[^}]*\})? 1\n/,
      'one mixed batch recorded (per-task batches are not)',
    );
    assert.match(text, /\ndeltaserve_batch_tasks_sum(\{[^}]*\})? 2\n/, 'with its two tasks');
    for (const spec of Object.values(METRICS)) {
      assert.ok(text.includes(`\n# TYPE ${spec.name} ${spec.kind}\n`), `${spec.name} exported as ${spec.kind}`);
      assert.ok(text.includes(`\n# HELP ${spec.name} ${spec.description}\n`), `${spec.name} has its description`);
      assert.ok(spec.kind !== 'counter' || spec.name.endsWith('_total'), `counter ${spec.name} ends in _total`);
      assert.ok(
        spec.kind === 'counter' || !spec.name.endsWith('_total'),
        `${spec.kind} ${spec.name} does not end in _total`,
      );
      assert.match(spec.name, /^deltaserve_[a-z_]+$/);
    }
    assert.doesNotMatch(text, /^# UNIT /m);
    assert.match(text, /^target_info\{service_name="deltaserve-test"\} 1$/m);
    assert.doesNotMatch(text, /otel_scope_name/);
  }));

test('event-loop delay: a blocked HTTP thread shows in the max and p99 of the window since the previous scrape', () =>
  withTelemetry(async (telemetry) => {
    await scrape(telemetry); // starts a fresh window
    await new Promise((resolve) => setTimeout(resolve, 30));
    const blockedUntil = performance.now() + 80;
    while (performance.now() < blockedUntil) {
      // busy: the sampling timer cannot fire
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
    const samples = await scrape(telemetry);
    const max = valueOf(samples, METRICS.eventLoopDelay.name, { quantile: '1' })!;
    assert.ok(max >= 0.05, `max ${max} s after an 80 ms block`);
    assert.ok(valueOf(samples, METRICS.eventLoopDelay.name, { quantile: '0.99' })! > 0);
    assert.ok(valueOf(samples, METRICS.eventLoopDelay.name, { quantile: '0.5' })! <= max);
  }));
