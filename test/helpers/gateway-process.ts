/** `deltaserve serve` as a child process: shared with the benchmarks, so it lives in loadtest/runner. */
export * from '../../loadtest/runner/gateway-process.js';
