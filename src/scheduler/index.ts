export {
  Scheduler,
  type OverloadedError,
  type SchedulerEvent,
  type SchedulerOptions,
  type SchedulerStats,
  type SubmitOptions,
} from './scheduler.js';
export { chooseTask, type ChoiceReason, type QueueView, type TaskChoice } from './task-choice.js';
export { TaskQueue, type QueuedRequest } from './task-queue.js';
