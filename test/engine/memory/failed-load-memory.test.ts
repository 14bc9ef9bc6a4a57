/**
 * Memory of failed large delta loads is given back (issue 22, item 5): four concurrent ~1 GiB
 * registrations, all correctly refused, once left RSS at 4.4 GiB for good. The engine runs in a
 * child process (its RSS is its own); three concurrent 160 MB deltas are refused and, a few
 * seconds later (and after a GC of the main thread, which cannot reach the worker's heap), RSS
 * must be back near where it started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** RSS allowed above the start once the failures settled (the peak is ≥ 480 MB above it). */
const SLACK_MB = 100;

test('RSS returns near its start after several large delta loads are refused', { timeout: 180_000 }, () => {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fileURLToPath(new URL('./failed-loads.child.ts', import.meta.url))],
    { encoding: 'utf8', env: { ...process.env, DELTA_MB: '160', LOADS: '3' } },
  );
  assert.equal(child.status, 0, child.stderr);
  const line = child.stdout.trim().split('\n').at(-1)!;
  const result = JSON.parse(line) as { startMb: number; peakMb: number; afterMb: number; codes: string[] };
  console.log(`failed-load memory: ${line}`);
  assert.deepEqual(result.codes, ['DS_ERR_TASK_UNAVAILABLE', 'DS_ERR_TASK_UNAVAILABLE', 'DS_ERR_TASK_UNAVAILABLE']);
  assert.ok(result.peakMb >= result.startMb + 300, `the loads did allocate: ${line}`);
  assert.ok(
    result.afterMb <= result.startMb + SLACK_MB,
    `RSS ${result.afterMb} MB after, ${result.startMb} MB at start`,
  );
});
