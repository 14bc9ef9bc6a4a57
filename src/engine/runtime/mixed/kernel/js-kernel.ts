/**
 * The portable side kernel: the native kernel's algorithm in TypeScript, one thread, for machines
 * where the addon did not build. Same summation order per output element as every native path
 * — products `Math.fround(v · x)` added in the delta's index order onto +0, then the bias, each
 * sum rounded to float32 — so its results are bit-identical to theirs.
 */
import { checkIndices, checkSideCall } from './check-call.js';
import type { SideJob, SideKernel, WeightDelta } from './side-kernel.js';

/** Tokens per block, as in native/side-kernel/kernel.cc (keeps the scratch small). */
const TOKEN_BLOCK = 64;

export function createJsKernel(): SideKernel {
  let scratch = new Float32Array(0);
  return {
    name: 'js',
    threads: 1,
    sideProduct(x, inDim, out, outDim, jobs) {
      const rows = checkSideCall(x, inDim, out, outDim, jobs);
      jobs.forEach((job, k) => {
        if (job.weight?.kind === 'sparse') checkIndices(job.weight.indices, inDim, outDim, k);
      });
      const covered = new Uint8Array(rows);
      for (const job of jobs) covered.fill(1, job.rowStart, job.rowStart + job.rowCount);
      for (let r = 0; r < rows; r++) if (covered[r] === 0) out.fill(0, r * outDim, (r + 1) * outDim);
      for (const job of jobs) {
        const block = Math.min(job.rowCount, TOKEN_BLOCK);
        if (job.weight !== null && scratch.length < (inDim + outDim) * block)
          scratch = new Float32Array((inDim + outDim) * block);
        runJob(x, inDim, out, outDim, job, scratch);
      }
    },
  };
}

function runJob(
  x: Float32Array,
  inDim: number,
  out: Float32Array,
  outDim: number,
  job: SideJob,
  scratch: Float32Array,
): void {
  const { rowStart, rowCount, weight, bias } = job;
  if (weight === null || (weight.kind === 'sparse' && weight.indices.length === 0)) {
    for (let r = rowStart; r < rowStart + rowCount; r++) {
      if (bias === null) out.fill(0, r * outDim, (r + 1) * outDim);
      else for (let j = 0; j < outDim; j++) out[r * outDim + j] = 0 + bias[j]!;
    }
    return;
  }
  for (let t0 = 0; t0 < rowCount; t0 += TOKEN_BLOCK) {
    const n = Math.min(TOKEN_BLOCK, rowCount - t0);
    const xt = scratch.subarray(0, inDim * n);
    const dt = scratch.subarray(inDim * n, (inDim + outDim) * n);
    const first = rowStart + t0;
    for (let t = 0; t < n; t++) {
      const row = (first + t) * inDim;
      for (let i = 0; i < inDim; i++) xt[i * n + t] = x[row + i]!;
    }
    dt.fill(0);
    accumulate(weight, outDim, xt, dt, n);
    for (let t = 0; t < n; t++) {
      const row = (first + t) * outDim;
      if (bias === null) for (let j = 0; j < outDim; j++) out[row + j] = dt[j * n + t]!;
      else for (let j = 0; j < outDim; j++) out[row + j] = dt[j * n + t]! + bias[j]!;
    }
  }
}

/** dt[j·n + t] += v · xt[i·n + t] per nonzero in index order (dense: every (i, j) row-major). */
function accumulate(weight: WeightDelta, outDim: number, xt: Float32Array, dt: Float32Array, n: number): void {
  const { values } = weight;
  const indices = weight.kind === 'sparse' ? weight.indices : null;
  const count = values.length;
  for (let k = 0; k < count; k++) {
    const index = indices === null ? k : indices[k]!;
    const i = Math.floor(index / outDim);
    const d = (index - i * outDim) * n;
    const s = i * n;
    const v = values[k]!;
    // The product rounds to float32 before the sum (as the native code's separate multiply);
    // the store into a Float32Array rounds the sum.
    for (let t = 0; t < n; t++) dt[d + t] = dt[d + t]! + Math.fround(v * xt[s + t]!);
  }
}
