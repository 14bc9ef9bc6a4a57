import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, type SchedulerEvent, type SchedulerOptions } from '../../src/scheduler/scheduler.js';
import { SeededRng } from '../../src/core/rng.js';
import { hasCode } from '../helpers/errors.js';
import { TEST_LIMITS } from './fixtures.js';

interface Call {
  task: string;
  requests: string[];
  resolve(results: string[]): void;
  reject(error: unknown): void;
}

/** A runBatch whose batches finish only when the test says so. */
class FakeEngine {
  calls: Call[] = [];
  runBatch = (task: string, requests: string[]): Promise<string[]> =>
    new Promise((resolve, reject) => this.calls.push({ task, requests, resolve, reject }));

  /** Finishes the oldest unfinished batch with `task:request` results. */
  finish(index = this.calls.length - 1): void {
    const call = this.calls[index]!;
    call.resolve(call.requests.map((r) => `${call.task}:${r}`));
  }

  ran(): string[][] {
    return this.calls.map((c) => [c.task, ...c.requests]);
  }
}

/** Lets queued microtasks (the scheduler's pump, promise continuations) run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function scheduler(
  engine: FakeEngine,
  options: Partial<SchedulerOptions<string, string>> = {},
  events?: SchedulerEvent[],
) {
  return new Scheduler<string, string>({
    ...TEST_LIMITS,
    runBatch: engine.runBatch,
    ...(events ? { onEvent: (e) => events.push(e) } : {}),
    ...options,
  });
}

function mockClock(t: TestContext, now = 1_000_000): void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now });
}

test('batches up to maxBatchSize requests of one task, in order', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 3 });
  const replies = Array.from({ length: 7 }, (_, i) => s.submit('a', `r${i}`));
  await flush();
  assert.deepEqual(engine.ran(), [['a', 'r0', 'r1', 'r2']]);
  assert.equal(s.stats().queued, 4);
  assert.equal(s.stats().running, 3);
  engine.finish();
  await flush();
  engine.finish();
  await flush();
  engine.finish();
  assert.deepEqual(await Promise.all(replies), ['a:r0', 'a:r1', 'a:r2', 'a:r3', 'a:r4', 'a:r5', 'a:r6']);
  assert.deepEqual(
    engine.ran().map((c) => c.length - 1),
    [3, 3, 1],
  );
  assert.deepEqual(s.stats().batchSizes, [0, 1, 0, 2]);
  assert.equal(s.stats().batches, 3);
  assert.equal(s.stats().completed, 7);
});

test('a partial batch waits maxQueueDelayMs for more requests, a full one starts at once', async (t) => {
  mockClock(t);
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 4, maxQueueDelayMs: 100 });
  void s.submit('a', 'r0');
  await flush();
  t.mock.timers.tick(60);
  void s.submit('a', 'r1');
  await flush();
  t.mock.timers.tick(39);
  await flush();
  assert.equal(engine.calls.length, 0, 'still inside the delay of the oldest request');
  t.mock.timers.tick(1);
  await flush();
  assert.deepEqual(engine.ran(), [['a', 'r0', 'r1']]);
  engine.finish();
  await flush();

  for (const r of ['r2', 'r3', 'r4', 'r5']) void s.submit('a', r);
  await flush();
  assert.deepEqual(engine.ran()[1], ['a', 'r2', 'r3', 'r4', 'r5'], 'a full batch does not wait');
});

test('a partial batch does not wait while another task is queued', async (t) => {
  mockClock(t);
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 4, maxQueueDelayMs: 100 });
  void s.submit('a', 'r0');
  void s.submit('b', 'r1');
  await flush();
  assert.equal(engine.calls.length, 1);
  assert.equal(engine.calls[0]!.requests.length, 1);
});

test('a hot task cannot starve a cold one: aging forces a switch', async (t) => {
  mockClock(t);
  const engine = new FakeEngine();
  const events: SchedulerEvent[] = [];
  const s = scheduler(engine, { maxBatchSize: 2, forcedSwitchWaitMs: 100 }, events);
  let n = 0;
  const hot = (): void => void s.submit('hot', `h${n++}`);
  hot();
  hot();
  await flush(); // hot is now the active task
  void s.submit('cold', 'c0');
  // Keep the hot queue non-empty; each batch takes 30 ms.
  for (let i = 0; i < 10 && !engine.calls.some((c) => c.task === 'cold'); i++) {
    hot();
    hot();
    t.mock.timers.tick(30);
    engine.finish();
    await flush();
  }
  const coldIndex = engine.calls.findIndex((c) => c.task === 'cold');
  assert.ok(coldIndex > 0, 'cold ran');
  // Batches end at 30, 60, 90 ms (cold not yet overdue), 120 ms (overdue): cold is the 5th batch.
  assert.equal(coldIndex, 4);
  assert.equal(s.stats().queuedByTask.hot! > 0, true, 'hot still had work when cold was chosen');
  const batch = events.find((e) => e.type === 'batch' && e.task === 'cold');
  assert.equal(batch, undefined, 'the cold batch is still running');
  assert.equal(s.stats().forcedSwitches, 1);
  assert.equal(s.stats().activations, 2, 'hot once, cold once');
});

test('without aging the active task keeps the engine (control for the test above)', async (t) => {
  mockClock(t);
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 2, forcedSwitchWaitMs: 10_000 });
  let n = 0;
  void s.submit('hot', `h${n++}`);
  await flush();
  void s.submit('cold', 'c0');
  for (let i = 0; i < 8; i++) {
    void s.submit('hot', `h${n++}`);
    t.mock.timers.tick(30);
    engine.finish();
    await flush();
  }
  assert.ok(engine.calls.every((c) => c.task === 'hot'));
});

test('priority: among idle queues the highest priority goes first, and first within a batch', async () => {
  // After a task's batch, that task stays active while it has work (d0 right after d1, d2).
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 2 });
  void s.submit('z', 'block');
  await flush();
  void s.submit('a', 'a-low', { priority: 0 });
  void s.submit('b', 'b-high', { priority: 5 });
  void s.submit('c', 'c-mid', { priority: 1 });
  void s.submit('d', 'd0', { priority: 0 });
  void s.submit('d', 'd1', { priority: 3 });
  void s.submit('d', 'd2', { priority: 2 });
  await flush();
  for (let i = 0; i < 6 && engine.calls.length > i; i++) {
    engine.finish(i);
    await flush();
  }
  assert.deepEqual(engine.ran(), [
    ['z', 'block'],
    ['b', 'b-high'],
    ['d', 'd1', 'd2'],
    ['d', 'd0'],
    ['c', 'c-mid'],
    ['a', 'a-low'],
  ]);
});

test('per-task and total bounds reject with DS_ERR_OVERLOADED and a retry-after', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxQueuedPerTask: 2, maxQueuedTotal: 3 });
  void s.submit('z', 'running');
  await flush();
  const queued = [s.submit('a', 'a1'), s.submit('a', 'a2')];
  await assert.rejects(s.submit('a', 'a3'), (e: unknown) => {
    hasCode('DS_ERR_OVERLOADED', 503)(e);
    const err = e as Error & { retryAfterSeconds: number };
    assert.ok(Number.isInteger(err.retryAfterSeconds) && err.retryAfterSeconds >= 1);
    assert.match(err.message, /task a has 2 queued requests \(maxQueuedPerTask 2\)/);
    return true;
  });
  const b = s.submit('b', 'b1');
  await assert.rejects(
    s.submit('c', 'c1'),
    (e: unknown) => hasCode('DS_ERR_OVERLOADED')(e) && /maxQueuedTotal 3/.test((e as Error).message),
  );
  assert.equal(s.stats().rejectedOverloaded, 2);
  assert.equal(s.stats().queued, 3);
  engine.finish(0);
  await flush();
  engine.finish(1);
  await flush();
  engine.finish(2);
  assert.deepEqual(await Promise.all([...queued, b]), ['a:a1', 'a:a2', 'b:b1']);
});

test('a deadline passing while queued rejects with DS_ERR_DEADLINE_EXCEEDED; the request never runs', async (t) => {
  mockClock(t);
  const engine = new FakeEngine();
  const events: SchedulerEvent[] = [];
  const s = scheduler(engine, {}, events);
  void s.submit('z', 'running');
  await flush();
  const late = s.submit('a', 'late', { deadline: Date.now() + 50 });
  const fine = s.submit('a', 'fine', { deadline: Date.now() + 500 });
  let settled = false;
  late.catch(() => (settled = true));
  t.mock.timers.tick(49);
  await flush();
  assert.equal(settled, false);
  t.mock.timers.tick(1);
  await assert.rejects(
    late,
    (e: unknown) => hasCode('DS_ERR_DEADLINE_EXCEEDED', 504)(e) && /task a .* 50 ms/.test((e as Error).message),
  );
  assert.equal(s.stats().queued, 1, 'removed from its queue by its timer');
  assert.deepEqual(
    events.filter((e) => e.type === 'expired'),
    [{ type: 'expired', task: 'a', waitMs: 50 }],
  );
  engine.finish(0);
  await flush();
  engine.finish(1);
  assert.equal(await fine, 'a:fine');
  assert.deepEqual(engine.ran(), [
    ['z', 'running'],
    ['a', 'fine'],
  ]);
  await assert.rejects(s.submit('a', 'past', { deadline: Date.now() - 1 }), hasCode('DS_ERR_DEADLINE_EXCEEDED'));
});

test('a deadline beyond the timer range does not expire early', async () => {
  // Real timers on purpose: Node fires a setTimeout over 2^31 - 1 ms after 1 ms (mock timers do not).
  const engine = new FakeEngine();
  const s = scheduler(engine);
  void s.submit('z', 'running');
  await flush();
  let rejected = false;
  const far = s.submit('a', 'far', { deadline: Date.now() + 40 * 24 * 3600 * 1000 });
  far.catch(() => (rejected = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(rejected, false, 'still queued');
  engine.finish(0);
  await flush();
  engine.finish(1);
  assert.equal(await far, 'a:far');
});

test('an aborted request is removed from its queue and rejected with the reason', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine);
  void s.submit('z', 'running');
  await flush();
  const controller = new AbortController();
  const gone = s.submit('a', 'gone', { signal: controller.signal });
  const kept = s.submit('a', 'kept');
  controller.abort(new Error('client disconnected'));
  await assert.rejects(gone, /client disconnected/);
  assert.equal(s.stats().queued, 1);
  assert.equal(s.stats().aborted, 1);
  engine.finish(0);
  await flush();
  engine.finish(1);
  assert.equal(await kept, 'a:kept');
  assert.deepEqual(engine.ran()[1], ['a', 'kept']);
  await assert.rejects(s.submit('a', 'x', { signal: AbortSignal.abort(new Error('already')) }), /already/);
});

test('a failing runBatch rejects that batch only and the scheduler goes on', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 2 });
  const a = [s.submit('a', 'a1'), s.submit('a', 'a2')];
  const b = s.submit('b', 'b1');
  await flush();
  engine.calls[0]!.reject(new Error('ORT exploded'));
  for (const p of a) await assert.rejects(p, /ORT exploded/);
  await flush();
  engine.finish(1);
  assert.equal(await b, 'b:b1');
  assert.equal(s.stats().failedBatches, 1);
  assert.equal(s.stats().completed, 1);
});

test('runBatch returning the wrong number of results rejects the whole batch', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine);
  const replies = [s.submit('a', 'a1'), s.submit('a', 'a2')];
  await flush();
  engine.calls[0]!.resolve(['only one']);
  for (const p of replies) {
    await assert.rejects(
      p,
      (e: unknown) =>
        hasCode('DS_ERR_SCHEDULER_BAD_BATCH_RESULT', 500)(e) &&
        /returned 1 results for 2 requests/.test((e as Error).message),
    );
  }
});

test('drain waits for queued and running work; close refuses new work and lets queued work finish', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 1 });
  await s.drain(); // idle: resolves at once
  const replies = [s.submit('a', 'a1'), s.submit('a', 'a2')];
  let drained = false;
  const draining = s.drain().then(() => (drained = true));
  await flush();
  engine.finish(0);
  await flush();
  assert.equal(drained, false);
  const closing = s.close();
  await assert.rejects(s.submit('a', 'a3'), hasCode('DS_ERR_SHUTTING_DOWN', 503));
  engine.finish(1);
  await Promise.all([draining, closing]);
  assert.equal(drained, true);
  assert.deepEqual(await Promise.all(replies), ['a:a1', 'a:a2']);
});

test('close runs a batch that is waiting to fill at once: no request can join it any more', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 8, maxQueueDelayMs: 3_600_000 });
  const reply = s.submit('a', 'a1');
  await flush();
  assert.equal(engine.calls.length, 0, 'the batch waits to fill');
  const closing = s.close();
  await flush();
  assert.equal(engine.calls.length, 1, 'closing started the waiting batch');
  engine.finish(0);
  await closing;
  assert.equal(await reply, 'a:a1');
});

test('close with rejectQueued drops queued requests and waits for the running batch', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxBatchSize: 1 });
  const running = s.submit('a', 'a1');
  const queued = s.submit('a', 'a2');
  await flush();
  const closing = s.close({ rejectQueued: true });
  await assert.rejects(queued, hasCode('DS_ERR_SHUTTING_DOWN'));
  engine.finish(0);
  await closing;
  assert.equal(await running, 'a:a1');
  assert.equal(engine.calls.length, 1);
});

test('events report queue waits, activations follow isActive', async (t) => {
  mockClock(t);
  const engine = new FakeEngine();
  const events: SchedulerEvent[] = [];
  let applied = 'b';
  const s = scheduler(engine, { maxQueueDelayMs: 20, isActive: (task) => task === applied }, events);
  void s.submit('b', 'b1');
  await flush();
  t.mock.timers.tick(20);
  await flush();
  engine.finish(0);
  await flush();
  void s.submit('a', 'a1');
  await flush();
  t.mock.timers.tick(20);
  await flush();
  applied = 'a';
  engine.finish(1);
  await flush();
  const summary = events
    .filter((e) => e.type === 'dequeued' || e.type === 'batch')
    .map((e) => (e.type === 'batch' ? `${e.type}:${e.task}:${e.activation}` : `${e.type}:${e.task}:${e.waitMs}`));
  assert.deepEqual(summary, ['dequeued:b:20', 'batch:b:false', 'dequeued:a:20', 'batch:a:true']);
  assert.equal(s.stats().activations, 1);
});

test('every request starts within the documented worst-case wait (simulated time)', async (t) => {
  mockClock(t, 0);
  const rng = new SeededRng(42);
  const B = 4;
  const W = 60;
  const D = 5;
  const R = 10;
  const maxQueuedTotal = 24;
  const tasks = ['hot', 't1', 't2', 't3'];
  const waits: number[] = [];
  const s = new Scheduler<number, number>({
    maxBatchSize: B,
    maxQueueDelayMs: D,
    maxQueuedPerTask: maxQueuedTotal,
    maxQueuedTotal,
    forcedSwitchWaitMs: W,
    runBatch: (_task, requests) => new Promise((resolve) => setTimeout(() => resolve(requests), R)),
    onEvent: (e) => {
      if (e.type === 'dequeued') waits.push(e.waitMs);
    },
  });
  const settled: Promise<unknown>[] = [];
  for (let ms = 0; ms < 1500; ms++) {
    // Mostly hot traffic, near saturation, with random priorities that must not defeat aging.
    if (rng.nextFloat() < 0.45) {
      const task = rng.nextFloat() < 0.7 ? 'hot' : tasks[1 + rng.nextInt(3)]!;
      settled.push(s.submit(task, ms, { priority: rng.nextInt(3) }).catch(() => undefined));
    }
    t.mock.timers.tick(1);
    await flush();
  }
  for (let i = 0; i < 2000 && s.stats().queued + s.stats().running > 0; i++) {
    t.mock.timers.tick(1);
    await flush();
  }
  await Promise.all(settled);
  const bound = W + D + R * (Math.ceil(maxQueuedTotal / B) + tasks.length);
  assert.ok(waits.length > 300, `enough requests ran: ${waits.length}`);
  assert.ok(Math.max(...waits) <= bound, `max wait ${Math.max(...waits)} ms > bound ${bound} ms`);
  assert.ok(s.stats().forcedSwitches > 0, 'aging was exercised');
});

test('bad options are refused at construction', () => {
  const engine = new FakeEngine();
  assert.throws(() => scheduler(engine, { maxBatchSize: 0 }), hasCode('DS_ERR_SCHEDULER_BAD_OPTION'));
  assert.throws(() => scheduler(engine, { maxQueueDelayMs: -1 }), hasCode('DS_ERR_SCHEDULER_BAD_OPTION'));
  assert.throws(() => scheduler(engine, { maxQueuedTotal: 1.5 }), hasCode('DS_ERR_SCHEDULER_BAD_OPTION'));
});

test('Retry-After: 1 s before anything was measured, then the time the queue ahead drains in at the measured rate; clients honouring it are served', async () => {
  let clock = 0;
  const BATCH_MS = 400;
  const s = new Scheduler<string, string>({
    maxBatchSize: 4,
    maxQueueDelayMs: 0,
    maxQueuedPerTask: 64,
    maxQueuedTotal: 64,
    forcedSwitchWaitMs: 1000,
    now: () => clock,
    runBatch: async (_task, requests) => {
      await flush();
      clock += BATCH_MS; // each batch of 4 "takes" 400 ms of the injected clock
      return requests;
    },
  });
  const burst = () =>
    Array.from({ length: 70 }, (_, i) =>
      s.submit('a', `r${i}`).then(
        () => null,
        (e: Error & { retryAfterSeconds?: number; code?: string }) => e,
      ),
    );

  const first = await Promise.all(burst());
  const firstRefusals = first.filter((e) => e !== null);
  assert.equal(firstRefusals.length, 6);
  // A fresh server used to assume one second per batch: (64 / 4 + 1) × 1 s = 17 s for a queue that drains in 6.4 s.
  assert.ok(
    firstRefusals.every((e) => e.code === 'DS_ERR_OVERLOADED' && e.retryAfterSeconds === 1),
    JSON.stringify(firstRefusals.map((e) => e.retryAfterSeconds)),
  );

  const rejectedAt = clock;
  const second = burst();
  const refusals = (await Promise.all(second)).filter((e) => e !== null);
  const drainedMs = clock - rejectedAt;
  assert.equal(refusals.length, 6);
  const retryAfter = refusals[0]!.retryAfterSeconds!;
  assert.ok(
    retryAfter >= drainedMs / 1000 && retryAfter <= Math.ceil(drainedMs / 1000) + 1,
    `Retry-After ${retryAfter} s for a queue that drained in ${drainedMs} ms`,
  );
  // A client that waits Retry-After finds room.
  assert.equal(await s.submit('a', 'after-retry'), 'after-retry');
});

test('admissionError: null while the total queue has room, DS_ERR_OVERLOADED with Retry-After once it is full', async () => {
  const engine = new FakeEngine();
  const s = scheduler(engine, { maxQueuedPerTask: 3, maxQueuedTotal: 3 });
  void s.submit('z', 'running');
  await flush();
  assert.equal(s.admissionError(), null);
  const queued = [s.submit('a', 'a1'), s.submit('b', 'b1'), s.submit('c', 'c1')];
  const error = s.admissionError();
  assert.ok(error, 'full');
  hasCode('DS_ERR_OVERLOADED', 503)(error);
  assert.ok(error.retryAfterSeconds >= 1);
  engine.finish(0);
  await flush();
  assert.equal(s.admissionError(), null, 'room again once a batch is taken');
  for (let i = 1; i < 4; i++) {
    await flush();
    engine.finish(i);
  }
  await Promise.all(queued);
});
