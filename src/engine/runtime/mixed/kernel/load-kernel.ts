/**
 * Picks the side kernel at start-up (`engine.sideKernel`): `auto`, the native addon when it
 * built, else the portable JS kernel with the reason (the caller logs it); `js`, the portable
 * kernel; `native`, the addon or an error. `DELTASERVE_KERNEL` (the same three words) wins over
 * the option, so the tests and the benchmarks, which start engines without a configuration file,
 * can be switched too (CI runs the tests with `js` as well).
 */
import { availableParallelism } from 'node:os';
import { createJsKernel } from './js-kernel.js';
import { createNativeKernel, loadNativeAddon, type NativePath } from './native-kernel.js';
import type { SideKernel } from './side-kernel.js';

export interface LoadSideKernelOptions {
  /** 'js' skips the addon; 'native' fails without it; 'auto' (default) falls back to JS when it is absent. */
  readonly prefer?: SideKernelChoice;
  /**
   * Threads one native call uses, the calling thread included; default
   * `os.availableParallelism()`. The JS kernel always runs on the calling thread alone.
   */
  readonly threads?: number;
  /** Force a native instruction-set path (tests, benchmarks). */
  readonly path?: NativePath;
}

export interface LoadedSideKernel {
  readonly kernel: SideKernel;
  /** Why the preferred kernel is not the one running; null when it is. */
  readonly reason: string | null;
}

/** Upper bound on threads, against a typo starting thousands of threads. */
const MAX_THREADS = 1024;

export type SideKernelChoice = 'auto' | 'native' | 'js';
export const SIDE_KERNEL_CHOICES: readonly SideKernelChoice[] = ['auto', 'native', 'js'];

/** What `DELTASERVE_KERNEL` asks for: 'auto', 'js', 'native' or nothing. */
export function kernelFromEnv(env: NodeJS.ProcessEnv = process.env): SideKernelChoice | undefined {
  const value = env.DELTASERVE_KERNEL;
  if (value === undefined || value === '') return undefined;
  if ((SIDE_KERNEL_CHOICES as readonly string[]).includes(value)) return value as SideKernelChoice;
  throw new RangeError(`DELTASERVE_KERNEL must be 'auto', 'js' or 'native', got '${value}'`);
}

export function loadSideKernel(options: LoadSideKernelOptions = {}): LoadedSideKernel {
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new RangeError(`side kernel: threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
  }
  const fromEnv = kernelFromEnv();
  const choice = fromEnv ?? options.prefer ?? 'auto';
  if (choice === 'js') {
    const reason = options.prefer === 'js' ? null : 'DELTASERVE_KERNEL=js forces the portable kernel';
    return { kernel: createJsKernel(), reason };
  }
  let addon;
  try {
    addon = loadNativeAddon();
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    if (choice === 'native') {
      const asked = fromEnv === 'native' ? 'DELTASERVE_KERNEL=native' : 'engine.sideKernel is native';
      throw new Error(`${asked} but the native side kernel did not load: ${message}`, { cause: error });
    }
    return {
      kernel: createJsKernel(),
      reason: `native side kernel not available (${message}); build it with \`node scripts/build-native.mjs\` (needs python3, make, g++)`,
    };
  }
  return { kernel: createNativeKernel(addon, { threads, ...(options.path && { path: options.path }) }), reason: null };
}
