/** The scheduler as the engine uses it: one door; task choice, queues and mixed-batch filling stay inside. */
export {
  MIXED_BATCH,
  Scheduler,
  type OverloadedError,
  type SchedulerEvent,
  type SchedulerOptions,
  type SchedulerStats,
  type SubmitOptions,
} from './scheduler.js';
export type { ChoiceReason } from './task-choice.js';
