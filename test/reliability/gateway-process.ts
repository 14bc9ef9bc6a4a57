/** The reliability suite's gateway process: shared with the soak benchmark, so it lives in loadtest/runner. */
export * from '../../loadtest/runner/local-gateway.js';
export { median, percentile } from '../../loadtest/runner/stats.js';
