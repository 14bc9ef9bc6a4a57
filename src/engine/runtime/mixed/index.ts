/** Mixed mode, as the rest of the worker sees it: one door. */
export { startMixedRuntime } from './mixed-runtime.js';
