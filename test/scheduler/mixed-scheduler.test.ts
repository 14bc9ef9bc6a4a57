import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { MIXED_BATCH, Scheduler, type SchedulerEvent, type SchedulerOptions } from '../../src/scheduler/scheduler.js';
import { hasCode } from '../helpers/errors.js';
import { TEST_LIMITS } from './fixtures.js';

/** Requests are `task/name` strings, so every result names the request it answers. */
interface Run {
  task: string;
  requests: string[];
  tasks: string[];
  finish(): void;
  fail(error: unknown): void;
}

/** A runBatch whose batches finish only when the test says so. */
class Engine {
  runs: Run[] = [];
  runBatch = (task: string, requests: string[], tasks: string[]): Promise<string[]> =>
    new Promise((resolve, reject) =>
      this.runs.push({ task, requests, tasks, finish: () => resolve(requests.map((r) => `done:${r}`)), fail: reject }),
    );

  /** `[task, ...requests]` of every batch so far. */
  ran(): string[][] {
    return this.runs.map((r) => [r.task, ...r.requests]);
  }
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Finishes the latest batch and lets the next one start. */
async function next(engine: Engine): Promise<void> {
  engine.runs.at(-1)!.finish();
  await flush();
}

const taskOf = (request: string): string => request.split('/')[0]!;

function mixedScheduler(
  engine: Engine,
  options: Partial<SchedulerOptions<string, string>> = {},
  events?: SchedulerEvent[],
) {
  return new Scheduler<string, string>({
    ...TEST_LIMITS,
    runBatch: engine.runBatch,
    mixable: (task) => !task.startsWith('solo'),
    ...(events ? { onEvent: (e) => events.push(e) } : {}),
    ...options,
  });
}

const submitAll = (s: Scheduler<string, string>, requests: string[], priority?: Record<string, number>) =>
  requests.map((r) => s.submit(taskOf(r), r, { priority: priority?.[r] ?? 0 }));

function mockClock(t: TestContext, now = 1_000_000): void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now });
}

test("a mixed batch takes requests of many tasks: priority first, then arrival; runBatch gets MIXED_BATCH and each request's task", async () => {
  const engine = new Engine();
  const events: SchedulerEvent[] = [];
  const s = mixedScheduler(engine, {}, events);
  const replies = submitAll(s, ['a/1', 'b/1', 'c/1', 'a/2', 'b/2', 'd/1'], { 'c/1': 5, 'b/2': 2 });
  await flush();
  assert.deepEqual(engine.ran(), [[MIXED_BATCH, 'c/1', 'b/2', 'a/1', 'b/1']]);
  assert.deepEqual(engine.runs[0]!.tasks, ['c', 'b', 'a', 'b']);
  await next(engine);
  assert.deepEqual(engine.ran()[1], [MIXED_BATCH, 'a/2', 'd/1']);
  await next(engine);
  assert.deepEqual(
    await Promise.all(replies),
    ['a/1', 'b/1', 'c/1', 'a/2', 'b/2', 'd/1'].map((r) => `done:${r}`),
  );
  const batches = events.filter((e) => e.type === 'batch');
  assert.deepEqual(
    batches.map((e) => [e.task, e.size, e.tasks, e.activation]),
    [
      [MIXED_BATCH, 4, 3, true],
      [MIXED_BATCH, 2, 2, false],
    ],
    'a mixed batch after a mixed batch is no activation',
  );
  const dequeued = events.filter((e) => e.type === 'dequeued').map((e) => e.task);
  assert.deepEqual(dequeued, ['c', 'b', 'a', 'b', 'a', 'd'], "dequeued events name each request's own task");
  const stats = s.stats();
  assert.deepEqual([stats.batches, stats.mixedBatches, stats.activations, stats.completed], [2, 2, 1, 6]);
});

test('overdue requests of any task go first, oldest first, ahead of priority', async (t) => {
  mockClock(t);
  const engine = new Engine();
  const s = mixedScheduler(engine, { forcedSwitchWaitMs: 100, maxBatchSize: 3 });
  void s.submit('solo', 'solo/block');
  await flush();
  void s.submit('b', 'b/old');
  t.mock.timers.tick(10);
  void s.submit('a', 'a/old');
  t.mock.timers.tick(60);
  void submitAll(s, ['c/high', 'a/high'], { 'c/high': 9, 'a/high': 9 });
  t.mock.timers.tick(40); // b/old and a/old have waited 110 and 100 ms: overdue
  await next(engine);
  assert.deepEqual(engine.ran()[1], [MIXED_BATCH, 'b/old', 'a/old', 'c/high']);
});

test('the token budget ends a mixed batch; the request that did not fit keeps its place', async () => {
  const engine = new Engine();
  const tokens: Record<string, number> = { 'a/1': 40, 'b/1': 50, 'c/1': 30, 'a/2': 5, 'b/2': 200 };
  const s = mixedScheduler(engine, { maxBatchSize: 8, maxBatchTokens: 100, tokensOf: (r) => tokens[r]! });
  const replies = submitAll(s, ['a/1', 'b/1', 'c/1', 'a/2', 'b/2']);
  await flush();
  assert.deepEqual(
    engine.ran(),
    [[MIXED_BATCH, 'a/1', 'b/1']],
    'c/1 would make 120 tokens; a/2 would fit but does not overtake c/1',
  );
  await next(engine);
  assert.deepEqual(engine.ran()[1], [MIXED_BATCH, 'c/1', 'a/2'], 'c/1 first; b/2 (200) would go over');
  await next(engine);
  assert.deepEqual(engine.ran()[2], [MIXED_BATCH, 'b/2'], 'a request over the budget runs alone');
  await next(engine);
  assert.equal((await Promise.all(replies)).length, 5);
});

test('non-mixable tasks get per-task batches beside mixed ones', async () => {
  const engine = new Engine();
  const events: SchedulerEvent[] = [];
  const s = mixedScheduler(engine, { maxBatchSize: 4 }, events);
  const replies = submitAll(s, ['a/1', 'solo1/1', 'b/1', 'solo1/2', 'solo2/1', 'c/1']);
  await flush();
  for (let i = 0; i < 3; i++) await next(engine);
  // No batch ran before, so the first choice is the fullest view: the mixed queue (3 requests).
  assert.deepEqual(engine.ran(), [
    [MIXED_BATCH, 'a/1', 'b/1', 'c/1'],
    ['solo1', 'solo1/1', 'solo1/2'],
    ['solo2', 'solo2/1'],
  ]);
  assert.deepEqual(engine.runs[1]!.tasks, ['solo1', 'solo1'], 'a per-task batch gets its task list too');
  assert.deepEqual(
    await Promise.all(replies),
    ['a/1', 'solo1/1', 'b/1', 'solo1/2', 'solo2/1', 'c/1'].map((r) => `done:${r}`),
  );
  const batches = events.filter((e) => e.type === 'batch');
  assert.deepEqual(
    batches.map((e) => [e.task, 'tasks' in e, e.activation]),
    [
      [MIXED_BATCH, true, true],
      ['solo1', false, true],
      ['solo2', false, true],
    ],
  );
  assert.deepEqual([s.stats().mixedBatches, s.stats().batches], [1, 3]);
});

test('while mixed batches keep coming, a waiting non-mixable task ages into a forced switch', async (t) => {
  mockClock(t);
  const engine = new Engine();
  const s = mixedScheduler(engine, { maxBatchSize: 2, forcedSwitchWaitMs: 100 });
  let n = 0;
  const mixedPair = (): void => void submitAll(s, [`a/${n++}`, `b/${n++}`]);
  mixedPair();
  await flush(); // the mixed queue is now the active one
  void s.submit('solo', 'solo/1');
  for (let i = 0; i < 10 && !engine.runs.some((r) => r.task === 'solo'); i++) {
    mixedPair();
    t.mock.timers.tick(30);
    await next(engine);
  }
  // Batches end at 30, 60, 90 ms (solo not yet overdue), 120 ms (overdue): solo is the 5th batch.
  assert.equal(
    engine.runs.findIndex((r) => r.task === 'solo'),
    4,
  );
  assert.ok(engine.runs.slice(0, 4).every((r) => r.task === MIXED_BATCH));
  assert.equal(s.stats().forcedSwitches, 1);
  assert.ok(s.stats().queued > 0, 'mixed work was still waiting when solo was chosen');
});

test('a partial mixed batch waits maxQueueDelayMs; it starts at once when full by size or tokens, or when a non-mixable task waits', async (t) => {
  mockClock(t);
  const engine = new Engine();
  const s = mixedScheduler(engine, {
    maxBatchSize: 4,
    maxQueueDelayMs: 100,
    maxBatchTokens: 10,
    tokensOf: (r) => (r.endsWith('big') ? 8 : 1),
  });
  void s.submit('a', 'a/1');
  t.mock.timers.tick(50);
  void s.submit('b', 'b/1');
  await flush();
  t.mock.timers.tick(49);
  await flush();
  assert.equal(engine.runs.length, 0, 'inside the delay of the oldest request');
  t.mock.timers.tick(1);
  await flush();
  assert.deepEqual(engine.ran(), [[MIXED_BATCH, 'a/1', 'b/1']]);
  await next(engine);

  void submitAll(s, ['a/2', 'b/2', 'c/2', 'd/2']);
  await flush();
  assert.deepEqual(engine.ran()[1], [MIXED_BATCH, 'a/2', 'b/2', 'c/2', 'd/2'], 'full by size');
  await next(engine);

  void submitAll(s, ['a/big', 'b/3', 'c/big']);
  await flush();
  assert.deepEqual(engine.ran()[2], [MIXED_BATCH, 'a/big', 'b/3'], 'full by tokens: c/big would make 17');
  await next(engine);
  assert.equal(engine.runs.length, 3, 'c/big alone is not full (8 of 10 tokens): it waits');
  t.mock.timers.tick(100);
  await flush();
  assert.deepEqual(engine.ran()[3], [MIXED_BATCH, 'c/big']);
  await next(engine);

  void s.submit('a', 'a/4');
  void s.submit('solo', 'solo/4');
  await flush();
  assert.deepEqual(engine.ran()[4], [MIXED_BATCH, 'a/4'], 'a non-mixable queue waits: no fill wait');
});

test('deadlines and aborts remove requests from the mixed queue before they run', async (t) => {
  mockClock(t);
  const engine = new Engine();
  const events: SchedulerEvent[] = [];
  const s = mixedScheduler(engine, {}, events);
  void s.submit('solo', 'solo/block');
  await flush();
  const late = s.submit('a', 'a/late', { deadline: Date.now() + 50 });
  const controller = new AbortController();
  const gone = s.submit('b', 'b/gone', { signal: controller.signal });
  const kept = s.submit('c', 'c/kept', { deadline: Date.now() + 500 });
  controller.abort(new Error('client went away'));
  await assert.rejects(gone, /client went away/);
  t.mock.timers.tick(50);
  await assert.rejects(late, hasCode('DS_ERR_DEADLINE_EXCEEDED', 504));
  assert.deepEqual(s.stats().queuedByTask, { c: 1 });
  await next(engine);
  assert.deepEqual(engine.ran()[1], [MIXED_BATCH, 'c/kept']);
  await next(engine);
  assert.equal(await kept, 'done:c/kept');
  assert.deepEqual([s.stats().expired, s.stats().aborted], [1, 1]);
});

test('a failing mixed batch rejects its requests only', async () => {
  const engine = new Engine();
  const s = mixedScheduler(engine);
  const mixed = submitAll(s, ['a/1', 'b/1']);
  const solo = s.submit('solo', 'solo/1');
  await flush();
  engine.runs[0]!.fail(new Error('kernel failed'));
  for (const reply of mixed) await assert.rejects(reply, /kernel failed/);
  await flush();
  await next(engine);
  assert.equal(await solo, 'done:solo/1');
  assert.deepEqual([s.stats().failedBatches, s.stats().mixedBatches], [1, 1]);
});

test('mixing options: a throwing mixable counts as not mixable; bad token counts and reserved names are refused', async (t) => {
  const engine = new Engine();
  const warnings: string[] = [];
  const onWarning = (w: Error): number => warnings.push(w.message);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const s = mixedScheduler(engine, {
    mixable: (task) => {
      if (task === 'odd') throw new Error('no idea');
      return true;
    },
  });
  const replies = submitAll(s, ['odd/1', 'a/1', 'b/1']);
  await flush();
  await next(engine);
  await next(engine);
  await Promise.all(replies);
  assert.deepEqual(
    engine.ran().sort(),
    [
      [MIXED_BATCH, 'a/1', 'b/1'],
      ['odd', 'odd/1'],
    ].sort(),
  );
  await flush();
  assert.ok(
    warnings.some((w) => /mixable\(odd\) threw: Error: no idea/.test(w)),
    warnings.join('; '),
  );

  await assert.rejects(
    s.submit(MIXED_BATCH, 'x'),
    (e: unknown) => hasCode('DS_ERR_SCHEDULER_BAD_OPTION')(e) && /cannot be a task/.test((e as Error).message),
  );
  const counted = mixedScheduler(engine, {
    maxBatchTokens: 100,
    tokensOf: (r) => {
      if (r === 'a/throws') throw new Error('cannot count');
      return r === 'a/nan' ? Number.NaN : -1;
    },
  });
  await assert.rejects(counted.submit('a', 'a/throws'), /cannot count/);
  await assert.rejects(
    counted.submit('a', 'a/nan'),
    (e: unknown) => hasCode('DS_ERR_SCHEDULER_BAD_OPTION')(e) && /tokensOf.*returned NaN/.test((e as Error).message),
  );
  await assert.rejects(counted.submit('a', 'a/neg'), /returned -1/);
  assert.equal(counted.stats().queued, 0);

  assert.throws(
    () => mixedScheduler(engine, { maxBatchTokens: 100 }),
    (e: unknown) => hasCode('DS_ERR_SCHEDULER_BAD_OPTION')(e) && /needs tokensOf/.test((e as Error).message),
  );
  assert.throws(
    () => mixedScheduler(engine, { maxBatchTokens: 0, tokensOf: () => 1 }),
    hasCode('DS_ERR_SCHEDULER_BAD_OPTION'),
  );
  assert.throws(
    () => mixedScheduler(engine, { mixable: 'yes' as unknown as () => boolean }),
    hasCode('DS_ERR_SCHEDULER_BAD_OPTION'),
  );
});

test('without the mixable option a task may be named like MIXED_BATCH and runs per task, as before', async () => {
  const engine = new Engine();
  const s = new Scheduler<string, string>({
    maxBatchSize: 4,
    maxQueueDelayMs: 0,
    maxQueuedPerTask: 10,
    maxQueuedTotal: 10,
    forcedSwitchWaitMs: 100,
    runBatch: engine.runBatch,
  });
  const reply = s.submit(MIXED_BATCH, 'x');
  await flush();
  await next(engine);
  assert.equal(await reply, 'done:x');
  assert.equal(s.stats().mixedBatches, 0);
});
