import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseTask, type QueueView } from '../../src/scheduler/task-choice.js';
import { TaskQueue, type QueuedRequest } from '../../src/scheduler/task-queue.js';

const q = (task: string, oldestEnqueuedAt: number, topPriority = 0, size = 1): QueueView => ({
  task,
  size,
  oldestEnqueuedAt,
  topPriority,
});
const activeIs = (name: string | undefined) => (task: string) => task === name;

test('task choice, table-driven', () => {
  const now = 1000;
  const W = 100;
  const cases: { name: string; queues: QueueView[]; active?: string; expect: [string, string] | undefined }[] = [
    { name: 'nothing queued', queues: [], expect: undefined },
    { name: 'empty queues are ignored', queues: [q('a', 0, 0, 0)], expect: undefined },
    {
      name: 'keeps the active task while nobody is overdue',
      queues: [q('a', 950), q('b', 920)],
      active: 'a',
      expect: ['a', 'active'],
    },
    {
      name: 'switches when another queue is overdue',
      queues: [q('a', 990), q('b', 900)],
      active: 'a',
      expect: ['b', 'forced'],
    },
    {
      name: 'among overdue queues the oldest wins, priority does not',
      queues: [q('a', 990), q('b', 850, 0), q('c', 880, 9)],
      active: 'a',
      expect: ['b', 'forced'],
    },
    {
      name: 'an overdue active queue older than the others stays',
      queues: [q('a', 800), q('b', 850)],
      active: 'a',
      expect: ['a', 'active'],
    },
    {
      name: 'no active work: highest priority first',
      queues: [q('a', 950, 0), q('b', 990, 5)],
      active: 'z',
      expect: ['b', 'idle'],
    },
    { name: 'no active work, equal priority: oldest first', queues: [q('a', 950), q('b', 940)], expect: ['b', 'idle'] },
    {
      name: 'no active work, equal priority: the fuller queue before the older one',
      queues: [q('a', 950, 0, 6), q('b', 940, 0, 1)],
      expect: ['a', 'idle'],
    },
    {
      name: 'no active work: priority before queue length',
      queues: [q('a', 950, 0, 6), q('b', 960, 1, 1)],
      expect: ['b', 'idle'],
    },
    { name: 'ties broken by task name', queues: [q('b', 950), q('a', 950)], expect: ['a', 'idle'] },
  ];
  for (const c of cases) {
    const choice = chooseTask(c.queues, activeIs(c.active), now, W);
    assert.deepEqual(choice === undefined ? undefined : [choice.task, choice.reason], c.expect, c.name);
  }
});

test('a batch takes overdue requests first, then by priority, then arrival', () => {
  const queue = new TaskQueue<QueuedRequest<string>>('a');
  const item = (request: string, priority: number, enqueuedAt: number, seq: number): QueuedRequest<string> => ({
    task: 'a',
    request,
    priority,
    deadline: undefined,
    enqueuedAt,
    seq,
  });
  queue.push(item('old-low', 0, 0, 0));
  queue.push(item('new-low', 0, 900, 1));
  queue.push(item('new-high', 5, 910, 2));
  queue.push(item('new-mid', 2, 920, 3));
  const first = queue.takeBatch(3, 1000, 200).map((i) => i.request); // only old-low is overdue
  assert.deepEqual(first, ['old-low', 'new-high', 'new-mid']);
  assert.deepEqual(
    queue.takeBatch(3, 1000, 200).map((i) => i.request),
    ['new-low'],
  );
  assert.equal(queue.size, 0);
});
