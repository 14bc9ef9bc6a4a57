// Runs the test files in one `node --test` process: one summary, one exit code for CI. Node 20's
// test runner does not expand globs, so the files are collected here.
//
//   node scripts/run-tests.mjs [filter...]          every test file (or those whose path contains a filter)
//   node scripts/run-tests.mjs --long [filter...]   the reliability runs at full length (npm run test:long)
//
// The long runs are the files that read their length from test/reliability/test-length.ts:
// `npm test` runs them short, `--long` runs only them, with DELTASERVE_TEST_LONG=1.
//
// WebGPU: unless DELTASERVE_TEST_WEBGPU is set (CI sets `required`), the webgpu tests run only
// where a WebGPU adapter is usable. The probe (test/helpers/webgpu-probe.ts) runs once here and
// its verdict goes to the test files; without an adapter they are skipped and the run ends with
// one line saying why and how to run them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return collect(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const args = process.argv.slice(2);
const long = args.includes('--long');
const filters = args.filter((a) => a !== '--long');
const uses = (file, module) => readFileSync(file, 'utf8').includes(`/${module}'`);
const files = collect('test')
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .filter((f) => !long || uses(f, 'test-length.js'))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const env = { ...process.env, ...(long && { DELTASERVE_TEST_LONG: '1' }) };
let webgpuSkipped = null;
if (env.DELTASERVE_TEST_WEBGPU === undefined && files.some((f) => uses(f, 'providers.js'))) {
  const probe = spawnSync(process.execPath, ['--import', 'tsx', 'test/helpers/webgpu-probe.ts'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  let verdict;
  try {
    verdict = JSON.parse(probe.stdout.trim().split('\n').pop());
  } catch {
    const why = probe.error?.message ?? `exit ${probe.status ?? probe.signal}`;
    verdict = { usable: false, reason: `the WebGPU probe failed (${why}): ${probe.stderr?.trim().split('\n').pop()}` };
  }
  env.DELTASERVE_TEST_WEBGPU_VERDICT = JSON.stringify(verdict);
  if (verdict.usable !== true) webgpuSkipped = verdict.reason;
}

// Native addons: where npm ci could not build one (no compiler; no ONNX Runtime headers for the
// custom op) the tests run the fallback the gateway itself would run (DELTASERVE_KERNEL=js,
// DELTASERVE_MIXED_PIPELINE=segments) and the run ends with one line saying so, unless
// DELTASERVE_TEST_NATIVE=required (CI) makes a missing addon fail its tests. Variables already
// set are left alone (CI's fallback passes set them on purpose).
const nativeFallbacks = [];
if (env.DELTASERVE_TEST_NATIVE !== 'required' && (!env.DELTASERVE_KERNEL || !env.DELTASERVE_MIXED_PIPELINE)) {
  const probe = spawnSync(process.execPath, ['--import', 'tsx', 'test/helpers/native-probe.ts'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...env, DELTASERVE_KERNEL: '', DELTASERVE_MIXED_PIPELINE: '' },
  });
  let found;
  try {
    found = JSON.parse(probe.stdout.trim().split('\n').pop());
  } catch {
    const why = `the native probe failed (${probe.error?.message ?? `exit ${probe.status ?? probe.signal}`})`;
    found = { kernel: why, customOp: why };
  }
  if (found.kernel !== null && !env.DELTASERVE_KERNEL) {
    env.DELTASERVE_KERNEL = 'js';
    nativeFallbacks.push(`the native side kernel (${found.kernel}): DELTASERVE_KERNEL=js`);
  }
  if (found.customOp !== null && !env.DELTASERVE_MIXED_PIPELINE) {
    env.DELTASERVE_MIXED_PIPELINE = 'segments';
    nativeFallbacks.push(`the custom-op addon (${found.customOp}): DELTASERVE_MIXED_PIPELINE=segments`);
  }
}

// A test that hangs fails after this long instead of stalling CI (the slowest file takes ~1 min on 2 cores).
const TEST_TIMEOUT_MS = 300_000;
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    '--test-reporter=spec',
    ...files,
  ],
  { stdio: 'inherit', env },
);
if (webgpuSkipped !== null) {
  console.log(
    `\n⚠ WEBGPU TESTS SKIPPED: no usable WebGPU adapter here (${webgpuSkipped}). To run them install a Vulkan driver ` +
      `(a GPU's, or Mesa's lavapipe as .ci/webgpu.sh does; README "GPU paths"); ` +
      `DELTASERVE_TEST_WEBGPU=required makes a missing driver fail them, as in CI.`,
  );
}
for (const fallback of nativeFallbacks) {
  console.log(
    `\n⚠ NATIVE ADDON MISSING, ITS TESTS RAN ON THE FALLBACK: ${fallback} (README "Tests, lint and format"). ` +
      `DELTASERVE_TEST_NATIVE=required makes a missing addon fail its tests, as in CI.`,
  );
}
process.exit(result.status ?? 1);
