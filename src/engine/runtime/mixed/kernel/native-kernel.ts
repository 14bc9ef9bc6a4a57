/**
 * The native side kernel (native/side-kernel, built by scripts/build-native.mjs at install):
 * this wrapper is its only importer. It checks shapes here with readable messages; the addon
 * checks again what guards memory and scans the indices itself (at native speed).
 */
import { createRequire } from 'node:module';
import { checkSideCall } from './check-call.js';
import type { SideKernel, SideKernelName } from './side-kernel.js';

/** Instruction-set paths of the addon, chosen at run time from what the CPU supports. */
export type NativePath = 'avx512' | 'avx2' | 'baseline';

interface SideKernelAddon {
  /** Paths this CPU runs, best first. */
  paths(): NativePath[];
  sideProduct(
    x: Float32Array,
    inDim: number,
    out: Float32Array,
    outDim: number,
    rowStarts: Uint32Array,
    rowCounts: Uint32Array,
    indices: Array<Uint32Array | null>,
    values: Array<Float32Array | null>,
    biases: Array<Float32Array | null>,
    threads: number,
    path: NativePath,
  ): void;
}

/** The same depth below the repository root from src/ and from dist/. */
const ADDON_PATH = '../../../../../build/Release/deltaserve_side_kernel.node';

/** Loads the addon; throws (with the loader's message) when it was not built. */
export function loadNativeAddon(): SideKernelAddon {
  return createRequire(import.meta.url)(ADDON_PATH) as SideKernelAddon;
}

const NAMES: Record<NativePath, SideKernelName> = {
  avx512: 'native-avx512',
  avx2: 'native-avx2',
  baseline: 'native-baseline',
};

export interface NativeKernelOptions {
  /** Threads one call uses, the calling thread included (it computes too). */
  readonly threads: number;
  /** Force an instruction-set path (tests, benchmarks); default the best the CPU supports. */
  readonly path?: NativePath;
}

export function createNativeKernel(addon: SideKernelAddon, options: NativeKernelOptions): SideKernel {
  const supported = addon.paths();
  const path = options.path ?? supported[0]!;
  if (!supported.includes(path))
    throw new RangeError(
      `side kernel: path '${path}' is not supported on this CPU (supported: ${supported.join(', ')})`,
    );
  const threads = options.threads;
  return {
    name: NAMES[path],
    threads,
    sideProduct(x, inDim, out, outDim, jobs) {
      checkSideCall(x, inDim, out, outDim, jobs);
      const count = jobs.length;
      const rowStarts = new Uint32Array(count);
      const rowCounts = new Uint32Array(count);
      const indices = new Array<Uint32Array | null>(count);
      const values = new Array<Float32Array | null>(count);
      const biases = new Array<Float32Array | null>(count);
      for (let k = 0; k < count; k++) {
        const job = jobs[k]!;
        rowStarts[k] = job.rowStart;
        rowCounts[k] = job.rowCount;
        indices[k] = job.weight?.kind === 'sparse' ? job.weight.indices : null;
        values[k] = job.weight?.values ?? null;
        biases[k] = job.bias;
      }
      addon.sideProduct(x, inDim, out, outDim, rowStarts, rowCounts, indices, values, biases, threads, path);
    },
  };
}
