/**
 * How long the reliability runs are. `npm test` runs each one short, so every class (fuzzing,
 * overload, kill -9 trials) is exercised whenever a person runs the tests; `npm run test:long`
 * runs the files that import this module again at full length (DELTASERVE_TEST_LONG=1), and CI
 * runs both. scripts/run-tests.mjs picks the long files by their importing this module.
 */
export const LONG_RUN = process.env.DELTASERVE_TEST_LONG === '1';

/** `short` in `npm test`, `full` in `npm run test:long`. */
export function byLength<T>(short: T, full: T): T {
  return LONG_RUN ? full : short;
}
