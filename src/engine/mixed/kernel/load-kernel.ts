// TEMPORARY (replaced by the kernel branch): the portable loop only.
import type { SideKernel } from './side-kernel.js';

const js: SideKernel = {
  name: 'js',
  threads: 1,
  sideProduct(x, inDim, out, outDim, jobs) {
    out.fill(0);
    for (const job of jobs) {
      const n = job.rowCount;
      const xt = new Float32Array(inDim * n);
      const dt = new Float32Array(outDim * n);
      for (let r = 0; r < n; r++) for (let i = 0; i < inDim; i++) xt[i * n + r] = x[(job.rowStart + r) * inDim + i]!;
      const w = job.weight;
      if (w && w.kind === 'sparse') {
        for (let k = 0; k < w.indices.length; k++) {
          const f = w.indices[k]!;
          const i = Math.floor(f / outDim);
          const j = f - i * outDim;
          const v = w.values[k]!;
          for (let t = 0; t < n; t++) dt[j * n + t] = dt[j * n + t]! + v * xt[i * n + t]!;
        }
      } else if (w) {
        for (let i = 0; i < inDim; i++) for (let j = 0; j < outDim; j++) for (let t = 0; t < n; t++) dt[j * n + t] = dt[j * n + t]! + w.values[i * outDim + j]! * xt[i * n + t]!;
      }
      for (let r = 0; r < n; r++) for (let j = 0; j < outDim; j++) out[(job.rowStart + r) * outDim + j] = dt[j * n + r]! + (job.bias?.[j] ?? 0);
    }
  },
};

export function loadSideKernel(_options: { prefer?: 'native' | 'js'; threads?: number } = {}): { kernel: SideKernel; reason: string | null } {
  return { kernel: js, reason: 'temporary' };
}
