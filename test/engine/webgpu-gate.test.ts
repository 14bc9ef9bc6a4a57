/**
 * The gate in front of the webgpu tests (test/helpers/providers.ts): without a usable adapter a
 * person's `npm test` skips them with the reason, while DELTASERVE_TEST_WEBGPU=required (CI)
 * runs them anyway, so a missing driver fails them. The adapter is taken away with a Vulkan
 * driver list that names a file that does not exist, so this holds on a machine with lavapipe
 * or a GPU as well as on one with no Vulkan at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { webgpuSetting, webgpuSkip } from '../helpers/providers.js';
import { parseVerdict, probeWebgpu, type WebgpuVerdict } from '../helpers/webgpu-probe.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NO_DRIVER = '/nonexistent/deltaserve-no-such-icd.json';
const withoutAdapter = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, VK_DRIVER_FILES: NO_DRIVER, VK_ICD_FILENAMES: NO_DRIVER };
  delete env.DELTASERVE_TEST_WEBGPU; // CI exports `required`: each case sets its own below
  delete env.DELTASERVE_TEST_WEBGPU_VERDICT;
  delete env.VK_ADD_DRIVER_FILES;
  delete env.NODE_TEST_CONTEXT; // set by node --test; a child's own `--test` would refuse to run files
  return { ...env, ...extra };
};

const unusable: WebgpuVerdict = { usable: false, reason: 'no WebGPU adapter: test' };
const mustNotProbe = (): WebgpuVerdict => assert.fail('required and absent must not consult the probe');

test('the setting: unset is auto; required and absent as written; anything else is refused', () => {
  assert.equal(webgpuSetting({}), 'auto');
  assert.equal(webgpuSetting({ DELTASERVE_TEST_WEBGPU: 'required' }), 'required');
  assert.equal(webgpuSetting({ DELTASERVE_TEST_WEBGPU: 'absent' }), 'absent');
  assert.throws(() => webgpuSetting({ DELTASERVE_TEST_WEBGPU: 'yes' }), /must be "required", "absent" or unset/);
});

test('auto skips with the probe reason only when there is no adapter; required always runs; absent never', () => {
  assert.equal(
    webgpuSkip('auto', () => ({ usable: true })),
    false,
  );
  assert.match(webgpuSkip('auto', () => unusable) as string, /no usable WebGPU adapter \(no WebGPU adapter: test\)/);
  assert.equal(webgpuSkip('required', mustNotProbe), false);
  assert.match(webgpuSkip('absent', mustNotProbe) as string, /DELTASERVE_TEST_WEBGPU=absent/);
});

test('a verdict must be one: anything else fails to parse', () => {
  assert.deepEqual(parseVerdict('{"usable":true}'), { usable: true });
  assert.deepEqual(parseVerdict('{"usable":false,"reason":"r"}'), { usable: false, reason: 'r' });
  assert.throws(() => parseVerdict('{"usable":false}'), /not a WebGPU verdict/);
  assert.throws(() => parseVerdict('Warning: something'), SyntaxError);
});

test('the probe finds no adapter when the Vulkan driver list names nothing', () => {
  const verdict = probeWebgpu(withoutAdapter());
  assert.equal(verdict.usable, false);
  assert.match((verdict as { reason: string }).reason, /no WebGPU adapter/);
});

/** The real webgpu equivalence test, run in a child with no adapter. */
function equivalenceWithoutAdapter(setting: 'required' | undefined): { status: number | null; output: string } {
  const child = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      '--test-reporter=spec',
      '--test-name-pattern=^webgpu: synthetic deltas',
      'test/engine/provider-equivalence.test.ts',
    ],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: withoutAdapter(setting === undefined ? {} : { DELTASERVE_TEST_WEBGPU: setting }),
      timeout: 240_000,
    },
  );
  return { status: child.status, output: `${child.stdout}${child.stderr}` };
}

test('DELTASERVE_TEST_WEBGPU=required: the webgpu tests FAIL without an adapter, naming what is missing', () => {
  const { status, output } = equivalenceWithoutAdapter('required');
  assert.notEqual(status, 0, output);
  assert.match(output, /ℹ fail 1/, output);
  assert.match(output, /✖ webgpu: synthetic deltas/, output);
  assert.match(output, /no WebGPU adapter/, output);
});

test('unset: the webgpu tests are skipped without an adapter, with the reason, and the file passes', () => {
  const { status, output } = equivalenceWithoutAdapter(undefined);
  assert.equal(status, 0, output);
  assert.match(output, /ℹ fail 0/, output);
  assert.match(output, /﹣ webgpu: synthetic deltas [^\n]*# no usable WebGPU adapter/, output);
});
