/**
 * Which task's queue runs next. Pure, so the policy can be tested on its own:
 *   1. Aging: if any queue other than the active task's has an oldest request that waited at
 *      least `forcedSwitchWaitMs`, choose among the overdue queues (the active one included, if it
 *      is overdue too) the one whose oldest request is oldest. Priority does not apply here:
 *      otherwise a stream of high-priority work could starve a queue forever.
 *   2. Otherwise, if the active task has queued work, keep it (no activation: the engine keeps
 *      its applied delta).
 *   3. Otherwise choose by highest priority among each queue's requests, then the fullest queue
 *      (a bigger batch per activation: under skewed popularity the oldest request is usually a
 *      cold task's lone one, and serving it first fragments batches), then oldest request, then
 *      task name (for determinism). Aging (1) still bounds every request's wait.
 */

export interface QueueView {
  readonly task: string;
  readonly size: number;
  readonly oldestEnqueuedAt: number;
  readonly topPriority: number;
}

export type ChoiceReason = 'active' | 'forced' | 'idle';

export interface TaskChoice {
  readonly task: string;
  /** `active`: kept the active task; `forced`: aging switched away from it; `idle`: the active task had no work. */
  readonly reason: ChoiceReason;
}

export function chooseTask(
  queues: readonly QueueView[],
  isActive: (task: string) => boolean,
  now: number,
  forcedSwitchWaitMs: number,
): TaskChoice | undefined {
  const waiting = queues.filter((q) => q.size > 0);
  if (waiting.length === 0) return undefined;
  const overdue = waiting.filter((q) => now - q.oldestEnqueuedAt >= forcedSwitchWaitMs);
  if (overdue.some((q) => !isActive(q.task))) {
    const pick = best(overdue, (a, b) => a.oldestEnqueuedAt - b.oldestEnqueuedAt || b.topPriority - a.topPriority);
    return { task: pick.task, reason: isActive(pick.task) ? 'active' : 'forced' };
  }
  const active = waiting.find((q) => isActive(q.task));
  if (active !== undefined) return { task: active.task, reason: 'active' };
  const pick = best(
    waiting,
    (a, b) => b.topPriority - a.topPriority || b.size - a.size || a.oldestEnqueuedAt - b.oldestEnqueuedAt,
  );
  return { task: pick.task, reason: 'idle' };
}

function best(queues: readonly QueueView[], compare: (a: QueueView, b: QueueView) => number): QueueView {
  const sorted = [...queues].sort((a, b) => compare(a, b) || (a.task < b.task ? -1 : a.task > b.task ? 1 : 0));
  return sorted[0]!;
}
