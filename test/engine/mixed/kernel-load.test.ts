import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { kernelFromEnv, loadSideKernel } from '../../../src/engine/mixed/kernel/load-kernel.js';
import { loadNativeAddon } from '../../../src/engine/mixed/kernel/native-kernel.js';
import { NATIVE_EXPECTED, NATIVE_SKIP } from './kernel-cases.js';

test('loadSideKernel: the native kernel on its best path, threads = available parallelism by default', { skip: NATIVE_SKIP }, () => {
  const { kernel, reason } = loadSideKernel();
  assert.equal(reason, null);
  assert.equal(kernel.name, `native-${loadNativeAddon().paths()[0]}`);
  assert.equal(kernel.threads, availableParallelism());
  assert.equal(loadSideKernel({ threads: 2, path: 'baseline' }).kernel.name, 'native-baseline');
});

test('loadSideKernel: DELTASERVE_KERNEL=js forces the JS kernel and says so', { skip: NATIVE_EXPECTED ? 'native expected: DELTASERVE_KERNEL is not js' : false }, () => {
  const { kernel, reason } = loadSideKernel({ threads: 4 });
  assert.equal(kernel.name, 'js');
  assert.equal(kernel.threads, 1);
  assert.match(reason ?? '', /DELTASERVE_KERNEL=js/);
});

test('loadSideKernel: prefer js gives the JS kernel without a reason', () => {
  const loaded = loadSideKernel({ prefer: 'js' });
  assert.equal(loaded.kernel.name, 'js');
  if (NATIVE_EXPECTED) assert.equal(loaded.reason, null);
});

test('loadSideKernel: threads and DELTASERVE_KERNEL are validated', () => {
  for (const threads of [0, 1.5, -2, 5000]) {
    assert.throws(() => loadSideKernel({ threads }), /threads must be an integer from 1 to 1024/, String(threads));
  }
  assert.throws(() => kernelFromEnv({ DELTASERVE_KERNEL: 'wasm' }), /DELTASERVE_KERNEL must be 'js' or 'native', got 'wasm'/);
  assert.equal(kernelFromEnv({}), undefined);
  assert.equal(kernelFromEnv({ DELTASERVE_KERNEL: 'native' }), 'native');
});
