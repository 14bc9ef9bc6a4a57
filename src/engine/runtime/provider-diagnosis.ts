/**
 * Why a GPU execution provider could not start, in one line that names what is missing.
 *
 * onnxruntime says only where it failed ("webgpu_context.cc:136 ... Failed to get a WebGPU
 * adapter: No supported adapters", "Failed to load shared library"); an operator needs the
 * package to install. WebGPU on Linux runs on Vulkan (Dawn), which needs two things: the
 * Vulkan loader (`libvulkan.so.1`) and a driver (an ICD: a JSON manifest naming the vendor's
 * library, or Mesa's software device lavapipe) that offers an adapter Dawn accepts. We look
 * for both the way the loader does and say which one is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionProvider } from './ort-session.js';

type Env = Readonly<Record<string, string | undefined>>;

/** One line saying what is missing, or null when `error` is not a failure to start `provider`. */
export function providerStartFailure(
  provider: ExecutionProvider,
  error: unknown,
  env: Env = process.env,
): string | null {
  const message = error instanceof Error ? error.message : String(error);
  if (provider === 'webgpu' && /WebGPU (adapter|device)/i.test(message)) {
    // Only Linux runs WebGPU on Vulkan; elsewhere (Metal, D3D12) there is nothing of ours to probe.
    return process.platform === 'linux'
      ? `no WebGPU adapter: ${describeVulkanProblem(probeVulkan(env))}`
      : `no WebGPU adapter: ${firstLine(message)}`;
  }
  if (provider === 'cuda' && /Failed to load shared library|providers_(cuda|shared)/i.test(message)) {
    return 'the CUDA provider libraries are not installed (npm ci --onnxruntime-node-install=cuda12, with CUDA 12.x and cuDNN 9.x)';
  }
  if (provider === 'cuda' && /CUDA failure|CUDA-capable|cudaError/i.test(message)) {
    return `no usable CUDA device: ${firstLine(message)}`;
  }
  return null;
}

export interface VulkanProbe {
  /** Whether `libvulkan.so.1` is where the dynamic linker looks. */
  readonly loaderFound: boolean;
  /** ICD manifests the loader would read (file names only). */
  readonly driverFiles: readonly string[];
  /** Where they were looked for, for the message. */
  readonly searched: readonly string[];
}

export function describeVulkanProblem(probe: VulkanProbe): string {
  if (!probe.loaderFound) {
    return 'the Vulkan loader libvulkan.so.1 is not installed (Debian and Ubuntu: apt-get install libvulkan1)';
  }
  if (probe.driverFiles.length === 0) {
    return `no Vulkan driver is installed (no ICD manifest in ${probe.searched.join(', ')}): a GPU needs its vendor's driver, a machine without one Mesa's lavapipe (mesa-vulkan-drivers 25 from bookworm-backports)`;
  }
  return `Vulkan drivers ${probe.driverFiles.join(', ')} offer no adapter WebGPU can use (no device visible to them, or a driver too old: Debian bookworm's Mesa 22.3 lavapipe is, 25.0 from bookworm-backports works)`;
}

export function probeVulkan(env: Env = process.env): VulkanProbe {
  const { files, searched } = vulkanDriverFiles(env);
  return { loaderFound: vulkanLoaderFound(env), driverFiles: files, searched };
}

/** ICD manifests as the Vulkan loader finds them: VK_DRIVER_FILES (or the older VK_ICD_FILENAMES) replaces the search. */
export function vulkanDriverFiles(env: Env): { files: string[]; searched: string[] } {
  const explicit = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  const extra = (env.VK_ADD_DRIVER_FILES ?? '').split(':').filter(Boolean);
  const searched = explicit ? [...explicit.split(':').filter(Boolean), ...extra] : [...defaultIcdDirs(env), ...extra];
  const files = searched.flatMap((path) => {
    try {
      if (statSync(path).isDirectory()) return readdirSync(path).filter((name) => name.endsWith('.json'));
      return [path.split('/').pop()!];
    } catch {
      return [];
    }
  });
  return { files, searched };
}

function defaultIcdDirs(env: Env): string[] {
  const configDirs = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':');
  const dataDirs = (env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':');
  const dataHome = env.XDG_DATA_HOME || join(homedir(), '.local/share');
  return [...configDirs, '/etc', dataHome, ...dataDirs].filter(Boolean).map((dir) => join(dir, 'vulkan/icd.d'));
}

const LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];

function vulkanLoaderFound(env: Env): boolean {
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LIBRARY_DIRS];
  if (dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')))) return true;
  // Folders from /etc/ld.so.conf.d (NVIDIA's container toolkit adds some): ask the linker's cache.
  for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      return execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes(
        'libvulkan.so.1 ',
      );
    } catch {
      // not there: try the next
    }
  }
  return false;
}

function firstLine(message: string): string {
  return (
    message
      .split('\n')
      .find((line) => line.trim() !== '')
      ?.trim()
      .slice(0, 300) ?? message
  );
}
