/**
 * Picks the side kernel at start-up: the native addon when it built, else the portable JS kernel
 * with the reason (the caller logs it). `DELTASERVE_KERNEL=js` forces the fallback (CI runs the
 * tests that way too); `DELTASERVE_KERNEL=native` makes a missing addon an error instead.
 */
import { availableParallelism } from 'node:os';
import { createJsKernel } from './js-kernel.js';
import { createNativeKernel, loadNativeAddon, type NativePath } from './native-kernel.js';
import type { SideKernel } from './side-kernel.js';

export interface LoadSideKernelOptions {
  /** 'js' skips the addon. Default 'native' (falls back to JS when absent). */
  readonly prefer?: 'native' | 'js';
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

/** What `DELTASERVE_KERNEL` asks for: 'js', 'native' or nothing. */
export function kernelFromEnv(env: NodeJS.ProcessEnv = process.env): 'native' | 'js' | undefined {
  const value = env.DELTASERVE_KERNEL;
  if (value === undefined || value === '') return undefined;
  if (value === 'js' || value === 'native') return value;
  throw new RangeError(`DELTASERVE_KERNEL must be 'js' or 'native', got '${value}'`);
}

export function loadSideKernel(options: LoadSideKernelOptions = {}): LoadedSideKernel {
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new RangeError(`side kernel: threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
  }
  const fromEnv = kernelFromEnv();
  if (fromEnv === 'js') return { kernel: createJsKernel(), reason: 'DELTASERVE_KERNEL=js forces the portable kernel' };
  if (options.prefer === 'js') return { kernel: createJsKernel(), reason: null };
  let addon;
  try {
    addon = loadNativeAddon();
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    if (fromEnv === 'native')
      throw new Error(`DELTASERVE_KERNEL=native but the native side kernel did not load: ${message}`, {
        cause: error,
      });
    return {
      kernel: createJsKernel(),
      reason: `native side kernel not available (${message}); build it with \`node scripts/build-native.mjs\` (needs python3, make, g++)`,
    };
  }
  return { kernel: createNativeKernel(addon, { threads, ...(options.path && { path: options.path }) }), reason: null };
}
