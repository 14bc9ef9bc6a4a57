import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createJsKernel } from '../../../src/engine/runtime/mixed/kernel/js-kernel.js';
import { kernelFromEnv, loadSideKernel } from '../../../src/engine/runtime/mixed/kernel/load-kernel.js';
import { loadNativeAddon } from '../../../src/engine/runtime/mixed/kernel/native-kernel.js';
import { NATIVE_EXPECTED, NATIVE_SKIP } from './kernel-cases.js';

test(
  'loadSideKernel: the native kernel on its best path, threads = available parallelism by default',
  { skip: NATIVE_SKIP },
  () => {
    const { kernel, reason } = loadSideKernel();
    assert.equal(reason, null);
    assert.equal(kernel.name, `native-${loadNativeAddon().paths()[0]}`);
    assert.equal(kernel.threads, availableParallelism());
    assert.equal(loadSideKernel({ threads: 2, path: 'baseline' }).kernel.name, 'native-baseline');
  },
);

test(
  'loadSideKernel: DELTASERVE_KERNEL=js forces the JS kernel and says so',
  { skip: NATIVE_EXPECTED ? 'native expected: DELTASERVE_KERNEL is not js' : false },
  () => {
    const { kernel, reason } = loadSideKernel({ threads: 4 });
    assert.equal(kernel.name, 'js');
    assert.equal(kernel.threads, 1);
    assert.match(reason ?? '', /DELTASERVE_KERNEL=js/);
  },
);

test('loadSideKernel: prefer js gives the JS kernel without a reason', () => {
  const loaded = loadSideKernel({ prefer: 'js' });
  assert.equal(loaded.kernel.name, 'js');
  if (NATIVE_EXPECTED) assert.equal(loaded.reason, null);
});

test(
  'loadSideKernel: prefer native (engine.sideKernel: native) gives the native kernel on its threads',
  { skip: NATIVE_SKIP },
  () => {
    const loaded = loadSideKernel({ prefer: 'native', threads: 2 });
    assert.notEqual(loaded.kernel.name, 'js');
    assert.equal(loaded.kernel.threads, 2);
    assert.equal(loaded.reason, null);
  },
);

test('loadSideKernel: threads and DELTASERVE_KERNEL are validated', () => {
  for (const threads of [0, 1.5, -2, 5000]) {
    assert.throws(() => loadSideKernel({ threads }), /threads must be an integer from 1 to 1024/, String(threads));
  }
  assert.throws(
    () => kernelFromEnv({ DELTASERVE_KERNEL: 'wasm' }),
    /DELTASERVE_KERNEL must be 'auto', 'js' or 'native', got 'wasm'/,
  );
  assert.equal(kernelFromEnv({}), undefined);
  assert.equal(kernelFromEnv({ DELTASERVE_KERNEL: 'native' }), 'native');
  assert.equal(kernelFromEnv({ DELTASERVE_KERNEL: 'auto' }), 'auto');
});

// The engine runs the kernel inside a worker thread: the addon keeps one thread pool per Node
// environment and must give that worker's results and let it exit.
test(
  'native addon: runs in a worker thread with its own pool, and the worker exits',
  { skip: NATIVE_SKIP },
  async () => {
    const addonPath = fileURLToPath(new URL('../../../build/Release/deltaserve_side_kernel.node', import.meta.url));
    const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const addon = require(workerData.addonPath);
    const x = Float32Array.from({ length: 40 * 8 }, (_, e) => (e % 7) - 3);
    const out = new Float32Array(40 * 5);
    const values = Float32Array.from({ length: 8 * 5 }, (_, e) => (e % 5) / 4);
    addon.sideProduct(x, 8, out, 5, Uint32Array.of(0, 20), Uint32Array.of(20, 20), [null, Uint32Array.of(3, 17)],
      [values, Float32Array.of(0.5, -2)], [null, null], 3, addon.paths()[0]);
    parentPort.postMessage(out);`;
    const worker = new Worker(source, { eval: true, workerData: { addonPath } });
    const [fromWorker] = (await once(worker, 'message')) as [Float32Array];
    const exited = once(worker, 'exit');
    await worker.terminate();
    await exited;
    const x = Float32Array.from({ length: 40 * 8 }, (_, e) => (e % 7) - 3);
    const expected = new Float32Array(40 * 5);
    createJsKernel().sideProduct(x, 8, expected, 5, [
      {
        rowStart: 0,
        rowCount: 20,
        weight: { kind: 'dense', values: Float32Array.from({ length: 8 * 5 }, (_, e) => (e % 5) / 4) },
        bias: null,
      },
      {
        rowStart: 20,
        rowCount: 20,
        weight: { kind: 'sparse', indices: Uint32Array.of(3, 17), values: Float32Array.of(0.5, -2) },
        bias: null,
      },
    ]);
    assert.deepEqual(fromWorker, expected);
  },
);
