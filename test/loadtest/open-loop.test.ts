/**
 * The one open-loop driver (loadtest/runner/open-loop.ts) shared by the load runner, the
 * benchmarks and the overload test: arrivals are handed their scheduled time, never wait for
 * answers, and are dropped (not queued) beyond maxInFlight. No timing is asserted beyond order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOpenLoop, type Arrival } from '../../loadtest/runner/open-loop.js';
import { median, percentile, percentileOfSorted } from '../../loadtest/runner/stats.js';

test('each arrival gets its scheduled time; the next one does not wait for its answer', async () => {
  const seen: Arrival[] = [];
  const answers: (() => void)[] = [];
  const result = await runOpenLoop({
    offsetsMs: [0, 5, 10],
    startMs: performance.now(),
    send: (arrival) => {
      seen.push(arrival);
      // Answered only once every arrival has been sent: an open loop must not wait.
      const answered = new Promise<void>((resolve) => answers.push(resolve));
      if (answers.length === 3) for (const answer of answers) answer();
      return answered;
    },
  });
  assert.deepEqual(
    seen.map((a) => a.index),
    [0, 1, 2],
  );
  const gaps = seen.map((a) => a.scheduledMs - seen[0]!.scheduledMs);
  assert.deepEqual(
    gaps.map((g) => Math.round(g * 1e6) / 1e6),
    [0, 5, 10],
  );
  assert.equal(result.sent, 3);
  assert.deepEqual(result.dropped, []);
});

test('beyond maxInFlight an arrival is dropped and reported, not queued', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const dropped: number[] = [];
  const result = await runOpenLoop({
    offsetsMs: [0, 0, 0, 1],
    maxInFlight: 1,
    onDrop: (arrival) => {
      dropped.push(arrival.index);
      if (arrival.index === 3) release();
    },
    send: () => held,
  });
  assert.deepEqual(dropped, [1, 2, 3]);
  assert.deepEqual(
    result.dropped.map((a) => a.index),
    [1, 2, 3],
  );
  assert.equal(result.sent, 1);
});

test('stop ends the schedule early; a failing send fails the run once the rest are answered', async () => {
  let sent = 0;
  const stopped = await runOpenLoop({ offsetsMs: [0, 0, 0, 0], stop: () => sent >= 2, send: async () => void sent++ });
  assert.equal(stopped.sent, 2);
  let answered = 0;
  await assert.rejects(
    runOpenLoop({
      offsetsMs: [0, 0],
      send: async ({ index }) => {
        if (index === 0) throw new Error('send failed');
        answered++;
      },
    }),
    /send failed/,
  );
  assert.equal(answered, 1);
});

test('one percentile: linear interpolation between closest ranks, in any order; the median is p50', () => {
  assert.equal(percentile([4, 1, 3, 2], 50), 2.5);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(percentile([10, 20], 99), 19.9);
  assert.equal(percentileOfSorted([1, 2, 3, 4, 5], 25), 2);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('bench/ and test/ do not import each other (both may import loadtest/ and src/)', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const sources = (dir: string): string[] =>
    readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(dir, f));
  const offending = [
    ...sources('bench').filter((f) => /from '(\.\.\/)+test\//.test(readFileSync(join(root, f), 'utf8'))),
    ...sources('test').filter((f) => /from '(\.\.\/)+bench\//.test(readFileSync(join(root, f), 'utf8'))),
  ];
  assert.deepEqual(offending, []);
});
