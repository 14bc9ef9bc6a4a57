/**
 * The side-path kernel's definition in plain float64 JavaScript: what every real kernel is
 * compared with, and what pipeline tests run when they test the graph rather than the kernel.
 */
import type { SideJob, SideKernel } from '../../src/engine/runtime/mixed/kernel/side-kernel.js';

export const referenceSideKernel: SideKernel = {
  name: 'js',
  threads: 1,
  sideProduct(x, inDim, out, outDim, jobs: readonly SideJob[]) {
    out.fill(0);
    for (const job of jobs) {
      for (let r = job.rowStart; r < job.rowStart + job.rowCount; r++) {
        const acc = new Float64Array(outDim);
        const weight = job.weight;
        if (weight?.kind === 'dense') {
          for (let i = 0; i < inDim; i++)
            for (let j = 0; j < outDim; j++) acc[j]! += x[r * inDim + i]! * weight.values[i * outDim + j]!;
        } else if (weight) {
          weight.indices.forEach((flat, k) => {
            const i = Math.floor(flat / outDim);
            acc[flat % outDim]! += x[r * inDim + i]! * weight.values[k]!;
          });
        }
        for (let j = 0; j < outDim; j++) out[r * outDim + j] = acc[j]! + (job.bias?.[j] ?? 0);
      }
    }
  },
};
