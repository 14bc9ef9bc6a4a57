/**
 * The one line a GPU provider's start-up failure turns into: which piece is missing, from
 * onnxruntime's own messages and what the Vulkan loader would find.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  describeVulkanProblem,
  providerStartFailure,
  vulkanDriverFiles,
} from '../../src/engine/runtime/provider-diagnosis.js';

// Messages as onnxruntime-node 1.30 throws them (measured on this project's machines).
const NO_ADAPTER = new Error(
  '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(...) adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters',
);
const NO_CUDA_LIBRARY = new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library');

test('the missing piece is named: loader, driver, or a driver that offers no usable adapter', () => {
  const cases = [
    {
      probe: { loaderFound: false, driverFiles: [], searched: ['/usr/share/vulkan/icd.d'] },
      want: /Vulkan loader libvulkan\.so\.1 is not installed \(.*apt-get install libvulkan1\)/,
    },
    {
      probe: { loaderFound: true, driverFiles: [], searched: ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d'] },
      want: /no Vulkan driver is installed \(no ICD manifest in \/etc\/vulkan\/icd\.d, \/usr\/share\/vulkan\/icd\.d\).*bookworm-backports/,
    },
    {
      probe: { loaderFound: true, driverFiles: ['lvp_icd.x86_64.json'], searched: ['/usr/share/vulkan/icd.d'] },
      want: /Vulkan drivers lvp_icd\.x86_64\.json offer no adapter WebGPU can use.*Mesa 22\.3/,
    },
  ];
  for (const { probe, want } of cases) {
    const line = describeVulkanProblem(probe);
    assert.match(line, want);
    assert.ok(!line.includes('\n'));
  }
});

test('onnxruntime errors that mean "this provider cannot start" are recognised; others are not', () => {
  assert.match(
    providerStartFailure('webgpu', NO_ADAPTER, { VK_DRIVER_FILES: '/nonexistent/icd.json' })!,
    /^no WebGPU adapter: /,
  );
  assert.match(
    providerStartFailure('cuda', NO_CUDA_LIBRARY)!,
    /CUDA provider libraries are not installed \(npm ci --onnxruntime-node-install=cuda12/,
  );
  assert.equal(
    providerStartFailure('webgpu', new Error('Load model from x.onnx failed: Protobuf parsing failed')),
    null,
  );
  assert.equal(providerStartFailure('cpu', NO_ADAPTER), null);
});

test('ICD manifests are found where VK_DRIVER_FILES points, replacing the default search', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-icd-'));
  try {
    await writeFile(join(dir, 'lvp_icd.json'), '{}');
    await writeFile(join(dir, 'notes.txt'), '');
    assert.deepEqual(vulkanDriverFiles({ VK_DRIVER_FILES: dir }).files, ['lvp_icd.json']);
    assert.deepEqual(vulkanDriverFiles({ VK_ICD_FILENAMES: join(dir, 'lvp_icd.json') }).files, ['lvp_icd.json']);
    assert.deepEqual(vulkanDriverFiles({ VK_DRIVER_FILES: join(dir, 'missing.json') }), {
      files: [],
      searched: [join(dir, 'missing.json')],
    });
    const defaults = vulkanDriverFiles({ XDG_DATA_DIRS: dir, XDG_CONFIG_DIRS: dir, XDG_DATA_HOME: dir }).searched;
    assert.ok(
      defaults.includes('/etc/vulkan/icd.d') && defaults.includes(join(dir, 'vulkan/icd.d')),
      defaults.join(' '),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
