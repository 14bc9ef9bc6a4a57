/** The options the scheduler tests start from; each test overrides what it is about. */
export const TEST_LIMITS = {
  maxBatchSize: 4,
  maxQueueDelayMs: 0,
  maxQueuedPerTask: 100,
  maxQueuedTotal: 1000,
  forcedSwitchWaitMs: 1000,
} as const;
