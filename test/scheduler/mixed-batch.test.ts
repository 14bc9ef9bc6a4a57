import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fillMixedBatch, type TokenBudget } from '../../src/scheduler/mixed-batch.js';
import { batchOrder, type QueuedRequest } from '../../src/scheduler/task-queue.js';
import { fuzzRuns, fuzzSeed } from '../reliability/fuzz-gateway.js';

interface Item extends QueuedRequest<string> {
  readonly tokens: number;
}

const item = (request: string, task: string, priority: number, enqueuedAt: number, seq: number, tokens = 1): Item => ({
  task,
  request,
  priority,
  deadline: undefined,
  enqueuedAt,
  seq,
  tokens,
});
const budgetOf = (maxTokens: number): TokenBudget<Item> => ({ maxTokens, tokensOf: (i) => i.tokens });
const names = (items: readonly Item[]): string[] => items.map((i) => i.request);

test('a mixed batch takes overdue requests of any task oldest first, then by priority, then arrival', () => {
  const now = 1000;
  const W = 200;
  const candidates = [
    item('b-new-low', 'b', 0, 950, 5),
    item('a-old', 'a', 0, 700, 1),
    item('c-new-high', 'c', 9, 960, 6),
    item('b-old', 'b', 0, 600, 0),
    item('a-new-mid', 'a', 3, 900, 4),
    item('c-old-high', 'c', 9, 790, 2),
  ];
  const { batch, full } = fillMixedBatch(candidates, 5, now, W, undefined);
  assert.deepEqual(names(batch), ['b-old', 'a-old', 'c-old-high', 'c-new-high', 'a-new-mid']);
  assert.equal(full, true, 'maxSize reached');
  const partial = fillMixedBatch(candidates, 8, now, W, undefined);
  assert.equal(partial.batch.length, 6);
  assert.equal(partial.full, false, 'room left and no budget');
});

test('the token budget stops the batch at the first request that does not fit, always takes one, and skips nothing', () => {
  const now = 0;
  const W = 1000;
  const candidates = [
    item('r0', 'a', 0, 0, 0, 300),
    item('r1', 'b', 0, 0, 1, 500),
    item('r2', 'a', 0, 0, 2, 100),
    item('r3', 'c', 0, 0, 3, 50),
  ];
  const first = fillMixedBatch(candidates, 8, now, W, budgetOf(900));
  assert.deepEqual(names(first.batch), ['r0', 'r1', 'r2'], '300 + 500 + 100 = 900 fits exactly');
  assert.equal(first.full, true);
  const tight = fillMixedBatch(candidates, 8, now, W, budgetOf(700));
  assert.deepEqual(names(tight.batch), ['r0'], 'r1 does not fit; r2 and r3 would, but do not overtake it');
  assert.equal(tight.full, true);
  const huge = fillMixedBatch(
    [item('big', 'a', 0, 0, 0, 5000), item('small', 'b', 0, 0, 1, 1)],
    8,
    now,
    W,
    budgetOf(700),
  );
  assert.deepEqual(names(huge.batch), ['big'], 'a request over the budget runs alone');
  const roomy = fillMixedBatch(candidates, 8, now, W, budgetOf(10_000));
  assert.deepEqual([roomy.batch.length, roomy.full], [4, false]);
});

const itemsArb = fc
  .array(
    fc.record({
      task: fc.constantFrom('a', 'b', 'c', 'd'),
      priority: fc.integer({ min: 0, max: 3 }),
      age: fc.integer({ min: 0, max: 100 }),
      tokens: fc.integer({ min: 0, max: 40 }),
    }),
    { maxLength: 30 },
  )
  .map((specs) => {
    // Arrival order follows the clock, as in the scheduler (seq increases with enqueuedAt).
    const ordered = [...specs].sort((x, y) => y.age - x.age);
    return ordered.map((s, seq) => item(`r${seq}`, s.task, s.priority, 100 - s.age, seq, s.tokens));
  });

test('property: a mixed batch is a prefix of the batch order, within maxSize and the token budget', () => {
  fc.assert(
    fc.property(
      itemsArb,
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 100 }),
      fc.option(fc.integer({ min: 1, max: 120 }), { nil: undefined }),
      (items, maxSize, W, maxTokens) => {
        const now = 100;
        const budget = maxTokens === undefined ? undefined : budgetOf(maxTokens);
        const { batch, full } = fillMixedBatch(items, maxSize, now, W, budget);
        const ordered = [...items].sort(batchOrder(now, W));
        assert.deepEqual(batch, ordered.slice(0, batch.length), 'a prefix of the order');
        assert.ok(batch.length <= maxSize);
        assert.equal(batch.length === 0, items.length === 0, 'takes at least one request when any waits');
        const tokens = batch.reduce((sum, i) => sum + i.tokens, 0);
        if (maxTokens !== undefined && batch.length > 1)
          assert.ok(tokens <= maxTokens, `${tokens} tokens over the budget ${maxTokens}`);
        const next = ordered[batch.length];
        if (next !== undefined) {
          // Stopped early: by size, or because the next request would not fit.
          assert.ok(batch.length === maxSize || (maxTokens !== undefined && tokens + next.tokens > maxTokens));
          assert.equal(full, true);
        } else {
          assert.equal(full, batch.length === maxSize || (maxTokens !== undefined && tokens >= maxTokens));
        }
      },
    ),
    { seed: fuzzSeed(20261202), numRuns: fuzzRuns(300) },
  );
});
