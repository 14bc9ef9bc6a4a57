/**
 * Property tests of the scheduler in simulated time: random arrivals, priorities, token counts,
 * deadlines, aborts and mixability, a fake clock (mock timers for setTimeout and Date) and a
 * runBatch that takes exactly R ms. Every accepted request must settle (no starvation), every
 * started one within the wait bound documented in src/scheduler/scheduler.ts, computed for that
 * request from the simulation's own record of what was queued when it became overdue.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { MIXED_BATCH, Scheduler } from '../../src/scheduler/scheduler.js';
import { batchOrder } from '../../src/scheduler/task-queue.js';
import { fuzzRuns, fuzzSeed } from '../reliability/fuzz-gateway.js';

interface Arrival {
  readonly at: number;
  readonly task: number;
  readonly priority: number;
  readonly tokens: number;
  /** Deadline, ms after arrival. */
  readonly deadlineIn: number | undefined;
  /** Abort, ms after arrival. */
  readonly abortIn: number | undefined;
}

interface Workload {
  readonly B: number;
  readonly W: number;
  readonly D: number;
  readonly R: number;
  readonly maxTokens: number | undefined;
  readonly maxQueuedTotal: number;
  readonly mixable: readonly boolean[];
  readonly arrivals: readonly Arrival[];
}

/** How the scheduler is told about mixing: not at all, "never", or the workload's flags. */
type Mixing = 'absent' | 'never' | 'flags';

interface SimRequest {
  readonly id: number;
  readonly task: string;
  readonly mixable: boolean;
  readonly tokens: number;
  readonly priority: number;
  readonly enqueuedAt: number;
  readonly seq: number;
  outcome: 'pending' | 'ok' | 'expired' | 'aborted' | 'overloaded' | `wrong result ${string}` | `unexpected ${string}`;
  /** When it left the queue: its batch started, it expired or it was aborted. */
  removedAt: number | undefined;
  startedAt: number | undefined;
}

interface BatchRecord {
  readonly at: number;
  readonly task: string;
  readonly ids: number[];
  readonly tasks: string[];
}

interface Trace {
  readonly requests: SimRequest[];
  readonly batches: BatchRecord[];
}

const taskName = (i: number): string => `t${i}`;
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** Simulated ms after the last arrival by which everything must have run: far beyond any bound drawn here. */
const DRAIN_LIMIT_MS = 50_000;

const workloadArb: fc.Arbitrary<Workload> = fc
  .record({
    B: fc.integer({ min: 1, max: 5 }),
    W: fc.integer({ min: 0, max: 80 }),
    D: fc.integer({ min: 0, max: 15 }),
    R: fc.integer({ min: 1, max: 12 }),
    maxTokens: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
    maxQueuedTotal: fc.integer({ min: 4, max: 60 }),
    mixable: fc.array(fc.boolean(), { minLength: 1, maxLength: 6, size: 'max' }),
    /** Arrivals fall in [0, span): a short span is a burst, a long one a trickle. */
    span: fc.integer({ min: 1, max: 250 }),
    arrivals: fc.array(
      fc.record({
        at: fc.nat(),
        task: fc.nat(),
        priority: fc.integer({ min: 0, max: 3 }),
        tokens: fc.integer({ min: 0, max: 20 }),
        deadlineIn: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined, freq: 4 }),
        abortIn: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined, freq: 6 }),
      }),
      { minLength: 1, maxLength: 60, size: 'max' },
    ),
  })
  .map(({ span, ...w }) => ({
    ...w,
    arrivals: w.arrivals
      .map((a) => ({ ...a, at: a.at % span, task: a.task % w.mixable.length }))
      .sort((a, b) => a.at - b.at),
  }));

async function simulate(t: TestContext, w: Workload, mixing: Mixing): Promise<Trace> {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const requests: SimRequest[] = [];
    const batches: BatchRecord[] = [];
    const s = new Scheduler<SimRequest, number>({
      maxBatchSize: w.B,
      maxQueueDelayMs: w.D,
      maxQueuedPerTask: w.maxQueuedTotal,
      maxQueuedTotal: w.maxQueuedTotal,
      forcedSwitchWaitMs: w.W,
      ...(w.maxTokens === undefined ? {} : { maxBatchTokens: w.maxTokens, tokensOf: (r: SimRequest) => r.tokens }),
      ...(mixing === 'absent'
        ? {}
        : { mixable: (task: string) => mixing === 'flags' && w.mixable[Number(task.slice(1))] === true }),
      runBatch: (task, batch, tasks) => {
        const at = Date.now();
        batches.push({ at, task, ids: batch.map((r) => r.id), tasks });
        for (const r of batch) {
          r.startedAt = at;
          r.removedAt = at;
        }
        return new Promise((resolve) => setTimeout(() => resolve(batch.map((r) => r.id)), w.R));
      },
    });
    const aborts: { at: number; controller: AbortController; request: SimRequest }[] = [];
    const settled: Promise<void>[] = [];
    const submit = (a: Arrival): void => {
      const request: SimRequest = {
        id: requests.length,
        task: taskName(a.task),
        mixable: w.mixable[a.task]!,
        tokens: a.tokens,
        priority: a.priority,
        enqueuedAt: Date.now(),
        seq: requests.length,
        outcome: 'pending',
        removedAt: undefined,
        startedAt: undefined,
      };
      requests.push(request);
      const controller = a.abortIn === undefined ? undefined : new AbortController();
      if (controller !== undefined) aborts.push({ at: Date.now() + a.abortIn!, controller, request });
      const deadline = a.deadlineIn === undefined ? undefined : Date.now() + a.deadlineIn;
      settled.push(
        s.submit(request.task, request, { priority: a.priority, deadline, signal: controller?.signal }).then(
          (result) => {
            request.outcome = result === request.id ? 'ok' : `wrong result ${result}`;
          },
          (error: { code?: string }) => {
            if (error.code === 'DS_ERR_OVERLOADED') request.outcome = 'overloaded';
            else if (error.code === 'DS_ERR_DEADLINE_EXCEEDED') {
              request.outcome = 'expired';
              request.removedAt = Date.now();
            } else if (error === ABORTED) request.outcome = 'aborted';
            else request.outcome = `unexpected ${inspect(error)}`;
          },
        ),
      );
    };

    let next = 0;
    const lastArrival = w.arrivals.at(-1)!.at;
    for (let now = 0; ;) {
      while (next < w.arrivals.length && w.arrivals[next]!.at === now) submit(w.arrivals[next++]!);
      for (const a of aborts) {
        if (a.at !== now || a.request.removedAt !== undefined) continue;
        a.controller.abort(ABORTED);
        // Aborting a request whose batch started already does nothing; one still queued leaves now.
        if (a.request.startedAt === undefined && a.request.outcome !== 'overloaded') a.request.removedAt = now;
      }
      await flush();
      const busy = s.stats().queued + s.stats().running > 0;
      if (next === w.arrivals.length && !busy) break;
      assert.ok(
        now < lastArrival + DRAIN_LIMIT_MS,
        `still ${s.stats().queued} queued ${DRAIN_LIMIT_MS} ms after the last arrival: starvation`,
      );
      // Nothing queued or running: jump to the next arrival or abort.
      const step = busy
        ? 1
        : Math.max(1, Math.min(w.arrivals[next]!.at, ...aborts.filter((a) => a.at > now).map((a) => a.at)) - now);
      t.mock.timers.tick(step);
      now += step;
    }
    await Promise.all(settled);
    return { requests, batches };
  } finally {
    t.mock.timers.reset();
  }
}

const ABORTED = new Error('aborted by the simulation');

/** The documented bound (src/scheduler/scheduler.ts) for one request, from what the simulation saw queued. */
function waitBound(w: Workload, mixing: Mixing, r: SimRequest, accepted: readonly SimRequest[]): number {
  const overdueAt = r.enqueuedAt + w.W;
  // Queued no later than r (same clock reading included) and still queued when r became overdue;
  // a request leaving at that very ms counts as still queued (the simulation cannot order them).
  const ahead = accepted.filter((q) => q !== r && q.enqueuedAt <= r.enqueuedAt && q.removedAt! >= overdueAt);
  const K = ahead.length;
  const mixed = mixing === 'flags';
  const stillQueued = [r, ...ahead];
  const perTaskQueues = new Set(stillQueued.filter((q) => !(mixed && q.mixable)).map((q) => q.task)).size;
  const tau = Math.max(0, ...stillQueued.filter((q) => mixed && q.mixable).map((q) => q.tokens));
  const Bm =
    !mixed || w.maxTokens === undefined || tau === 0 ? w.B : Math.min(w.B, Math.max(1, Math.floor(w.maxTokens / tau)));
  const N = mixed ? perTaskQueues + 1 : perTaskQueues;
  return w.W + w.D + w.R * (Math.ceil((K + 1) / Bm) + N);
}

function checkTrace(w: Workload, mixing: Mixing, trace: Trace): void {
  const accepted = trace.requests.filter((r) => r.outcome !== 'overloaded');
  for (const r of trace.requests)
    assert.ok(['ok', 'expired', 'aborted', 'overloaded'].includes(r.outcome), `request ${r.id}: ${r.outcome}`);
  const runs = new Map<number, number>();
  for (const b of trace.batches) for (const id of b.ids) runs.set(id, (runs.get(id) ?? 0) + 1);
  for (const r of accepted)
    assert.equal(
      runs.get(r.id) ?? 0,
      r.outcome === 'ok' ? 1 : 0,
      `request ${r.id} (${r.outcome}) ran ${runs.get(r.id) ?? 0} times`,
    );

  for (const b of trace.batches) {
    const members = b.ids.map((id) => trace.requests[id]!);
    assert.ok(members.length >= 1 && members.length <= w.B, `batch of ${members.length}`);
    assert.deepEqual(
      b.tasks,
      members.map((r) => r.task),
      "runBatch gets each request's task",
    );
    if (b.task === MIXED_BATCH) {
      assert.equal(mixing, 'flags', 'mixed batches only with mixable tasks');
      assert.ok(
        members.every((r) => r.mixable),
        'a mixed batch holds mixable tasks only',
      );
      const tokens = members.reduce((sum, r) => sum + r.tokens, 0);
      if (w.maxTokens !== undefined && members.length > 1)
        assert.ok(tokens <= w.maxTokens, `${tokens} tokens > ${w.maxTokens}`);
    } else {
      assert.ok(
        members.every((r) => r.task === b.task),
        'a per-task batch holds one task',
      );
      assert.ok(mixing !== 'flags' || !members[0]!.mixable, 'a mixable task never runs in a per-task batch');
    }
    const order = batchOrder(b.at, w.W);
    for (let i = 1; i < members.length; i++)
      assert.ok(order(members[i - 1]!, members[i]!) < 0, `batch at ${b.at} out of order`);
  }

  for (const r of accepted) {
    if (r.outcome !== 'ok') continue;
    const wait = r.startedAt! - r.enqueuedAt;
    const bound = waitBound(w, mixing, r, accepted);
    assert.ok(wait <= bound, `request ${r.id} (${r.task}) waited ${wait} ms > bound ${bound} ms`);
  }
}

test('property: mixed batches, random arrivals, priorities, tokens, deadlines and aborts: no starvation, every start within the documented bound', async (t) => {
  const outcomes = new Map<string, number>();
  let mixedBatches = 0;
  let overdueStarts = 0;
  let closest = 0;
  await fc.assert(
    fc.asyncProperty(workloadArb, async (w) => {
      const trace = await simulate(t, w, 'flags');
      checkTrace(w, 'flags', trace);
      for (const r of trace.requests) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
      mixedBatches += trace.batches.filter((b) => b.task === MIXED_BATCH).length;
      const accepted = trace.requests.filter((r) => r.outcome !== 'overloaded');
      for (const r of accepted) {
        if (r.outcome !== 'ok' || r.startedAt! - r.enqueuedAt < w.W) continue;
        overdueStarts++;
        closest = Math.max(closest, (r.startedAt! - r.enqueuedAt) / waitBound(w, 'flags', r, accepted));
      }
    }),
    { seed: fuzzSeed(20261203), numRuns: fuzzRuns(120) },
  );
  t.diagnostic(
    `outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; ${mixedBatches} mixed batches; ${overdueStarts} starts after becoming overdue; largest wait / bound ${closest.toFixed(2)}`,
  );
  assert.ok(mixedBatches > 100, 'the workloads exercised mixed batches');
});

test('property: without the mixable option, and with no task mixable, batches are per task and identical; the bound holds', async (t) => {
  await fc.assert(
    fc.asyncProperty(workloadArb, async (w) => {
      const absent = await simulate(t, w, 'absent');
      checkTrace(w, 'absent', absent);
      const never = await simulate(t, w, 'never');
      assert.deepEqual(never, absent, 'mixable: () => false schedules exactly as no mixable option');
    }),
    { seed: fuzzSeed(20261204), numRuns: fuzzRuns(60) },
  );
});
