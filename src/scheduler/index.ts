export {
  MIXED_BATCH,
  Scheduler,
  type OverloadedError,
  type SchedulerEvent,
  type SchedulerOptions,
  type SchedulerStats,
  type SubmitOptions,
} from './scheduler.js';
export { chooseTask, type ChoiceReason, type QueueView, type TaskChoice } from './task-choice.js';
export { fillMixedBatch, type MixedBatchFill, type TokenBudget } from './mixed-batch.js';
export { TaskQueue, batchOrder, type BatchOrderKey, type QueuedRequest } from './task-queue.js';
