/**
 * Retry-After across tasks (issue 22, item 11): the estimate must follow how the backlog will be
 * batched, not a per-request average taken from whatever batches ran before. A 7-task burst was
 * told 20 s when it drained in 1.8 s: the average came from small batches (light traffic, forced
 * switches), and the burst ran in full ones. Each case here measures the drain on an injected
 * clock (runBatch advances it by a cost model: fixed cost per batch + cost per request) and
 * compares the Retry-After given when the backlog was full with it: within 2×.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/scheduler/scheduler.js';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Case {
  readonly name: string;
  readonly tasks: number;
  readonly perTask: number;
  readonly fixedMs: number;
  readonly perRequestMs: number;
  readonly mixable: boolean;
  /** Light traffic before the burst: single requests, one batch each (what the average learned from). */
  readonly warmUp: number;
}

const CASES: readonly Case[] = [
  {
    name: '7 tasks, per-task batches, fixed cost dominates',
    tasks: 7,
    perTask: 64,
    fixedMs: 30,
    perRequestMs: 2,
    mixable: false,
    warmUp: 12,
  },
  {
    name: '7 tasks, per-task batches, per-request cost dominates',
    tasks: 7,
    perTask: 64,
    fixedMs: 4,
    perRequestMs: 6,
    mixable: false,
    warmUp: 12,
  },
  { name: '7 tasks, mixed batches', tasks: 7, perTask: 64, fixedMs: 30, perRequestMs: 2, mixable: true, warmUp: 12 },
  {
    name: '20 tasks of 9 requests each, per-task batches',
    tasks: 20,
    perTask: 9,
    fixedMs: 25,
    perRequestMs: 1,
    mixable: false,
    warmUp: 12,
  },
  {
    name: 'one task (was right already)',
    tasks: 1,
    perTask: 256,
    fixedMs: 30,
    perRequestMs: 2,
    mixable: false,
    warmUp: 12,
  },
];

async function measure(c: Case): Promise<{ retryAfterMs: number; drainedMs: number }> {
  let clock = 0;
  const total = c.tasks * c.perTask;
  const s = new Scheduler<string, string>({
    maxBatchSize: 8,
    maxQueueDelayMs: 0,
    maxQueuedPerTask: total,
    maxQueuedTotal: total,
    forcedSwitchWaitMs: 50,
    now: () => clock,
    ...(c.mixable && { mixable: () => true }),
    runBatch: async (_task, requests) => {
      await flush();
      clock += c.fixedMs + c.perRequestMs * requests.length;
      return requests;
    },
  });
  // Light traffic: one request at a time, each its own batch, round the tasks.
  for (let i = 0; i < c.warmUp; i++) await s.submit(`t${i % c.tasks}`, 'light');
  // The burst: every queue fills before the first of its batches starts.
  const burst: Promise<unknown>[] = [];
  for (let i = 0; i < c.perTask; i++) for (let t = 0; t < c.tasks; t++) burst.push(s.submit(`t${t}`, `r${i}`));
  const refused = await s.submit('t0', 'one too many').then(
    () => assert.fail('the queue was full'),
    (error: Error & { retryAfterSeconds?: number }) => error,
  );
  const start = clock;
  await Promise.all(burst);
  await s.drain();
  return { retryAfterMs: refused.retryAfterSeconds! * 1000, drainedMs: clock - start };
}

for (const c of CASES) {
  test(`Retry-After within 2× of the measured drain: ${c.name}`, async () => {
    const { retryAfterMs, drainedMs } = await measure(c);
    // Retry-After is whole seconds, at least 1: compare with the drain rounded up the same way.
    const measuredS = Math.max(1, Math.ceil(drainedMs / 1000));
    const ratio = retryAfterMs / 1000 / measuredS;
    assert.ok(
      ratio >= 0.5 && ratio <= 2,
      `Retry-After ${retryAfterMs / 1000} s for a backlog that drained in ${drainedMs} ms (${ratio.toFixed(2)} ×)`,
    );
  });
}
