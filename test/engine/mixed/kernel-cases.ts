/**
 * Shared by the side-kernel tests: random batches, the kernels under test, and a float64
 * reference of the contract in src/engine/runtime/mixed/kernel/side-kernel.ts.
 */
import { SeededRng } from '../../../src/core/rng.js';
import { createJsKernel } from '../../../src/engine/runtime/mixed/kernel/js-kernel.js';
import { kernelFromEnv } from '../../../src/engine/runtime/mixed/kernel/load-kernel.js';
import { createNativeKernel, loadNativeAddon } from '../../../src/engine/runtime/mixed/kernel/native-kernel.js';
import type { SideJob, SideKernel, WeightDelta } from '../../../src/engine/runtime/mixed/kernel/side-kernel.js';

/**
 * The native kernel must be there unless `DELTASERVE_KERNEL=js` says the fallback is forced:
 * CI builds the addon, so a missing build fails these tests instead of skipping them.
 */
export const NATIVE_EXPECTED = kernelFromEnv() !== 'js';
export const NATIVE_SKIP = NATIVE_EXPECTED ? false : 'DELTASERVE_KERNEL=js: the native kernel is not expected here';

/** JS, then every native path this CPU runs with 1 and 3 threads (when native is expected). */
export function kernelsUnderTest(): SideKernel[] {
  const kernels: SideKernel[] = [createJsKernel()];
  if (!NATIVE_EXPECTED) return kernels;
  const addon = loadNativeAddon();
  for (const path of addon.paths())
    for (const threads of [1, 3]) kernels.push(createNativeKernel(addon, { threads, path }));
  return kernels;
}

export type WeightKind = 'sparse' | 'dense' | 'empty' | 'none';

export interface JobSpec {
  readonly rows: number;
  readonly weight: WeightKind;
  readonly bias: boolean;
  /** Share of positions kept in a sparse delta. */
  readonly density?: number;
  /** Sparse indices in random order instead of increasing. */
  readonly shuffled?: boolean;
}

export interface Case {
  readonly name: string;
  readonly inDim: number;
  readonly outDim: number;
  readonly jobs: readonly JobSpec[];
  /** Rows before each job that no job covers (they must come out 0). */
  readonly gap?: number;
}

export interface Batch {
  readonly x: Float32Array;
  readonly rows: number;
  readonly jobs: SideJob[];
}

function weightOf(rng: SeededRng, spec: JobSpec, inDim: number, outDim: number): WeightDelta | null {
  const value = () => Math.fround(rng.nextFloat() * 2 - 1);
  if (spec.weight === 'none') return null;
  if (spec.weight === 'dense') return { kind: 'dense', values: Float32Array.from({ length: inDim * outDim }, value) };
  const kept: number[] = [];
  if (spec.weight === 'sparse') {
    for (let p = 0; p < inDim * outDim; p++) if (rng.nextFloat() < (spec.density ?? 0.1)) kept.push(p);
  }
  if (spec.shuffled) {
    for (let k = kept.length - 1; k > 0; k--) {
      const r = rng.nextInt(k + 1);
      [kept[k], kept[r]] = [kept[r]!, kept[k]!];
    }
  }
  return { kind: 'sparse', indices: Uint32Array.from(kept), values: Float32Array.from(kept, value) };
}

export function makeBatch(c: Case, seed: number): Batch {
  const rng = new SeededRng(seed);
  const jobs: SideJob[] = [];
  let row = 0;
  for (const spec of c.jobs) {
    row += c.gap ?? 0;
    jobs.push({
      rowStart: row,
      rowCount: spec.rows,
      weight: weightOf(rng, spec, c.inDim, c.outDim),
      bias: spec.bias ? Float32Array.from({ length: c.outDim }, () => rng.nextFloat() - 0.5) : null,
    });
    row += spec.rows;
  }
  const rows = row + (c.gap ?? 0);
  const x = Float32Array.from({ length: rows * c.inDim }, () => rng.nextFloat() * 4 - 2);
  return { x, rows, jobs };
}

/** x·Δ + Δb per job in float64, with Σ|terms| per element for the error bound. */
export function reference(batch: Batch, inDim: number, outDim: number): { values: Float64Array; scale: Float64Array } {
  const values = new Float64Array(batch.rows * outDim);
  const scale = new Float64Array(batch.rows * outDim);
  for (const job of batch.jobs) {
    for (let r = job.rowStart; r < job.rowStart + job.rowCount; r++) {
      const add = (position: number, v: number) => {
        const i = Math.floor(position / outDim);
        const j = position % outDim;
        const term = v * batch.x[r * inDim + i]!;
        values[r * outDim + j] = values[r * outDim + j]! + term;
        scale[r * outDim + j] = scale[r * outDim + j]! + Math.abs(term);
      };
      if (job.weight?.kind === 'sparse')
        job.weight.indices.forEach((position, k) => add(position, job.weight!.values[k]!));
      if (job.weight?.kind === 'dense') job.weight.values.forEach((v, position) => add(position, v));
      if (job.bias !== null) {
        for (let j = 0; j < outDim; j++) {
          values[r * outDim + j] = values[r * outDim + j]! + job.bias[j]!;
          scale[r * outDim + j] = scale[r * outDim + j]! + Math.abs(job.bias[j]!);
        }
      }
    }
  }
  return { values, scale };
}

/** Runs a kernel into an `out` first filled with NaN, so that every value must be written. */
export function runKernel(kernel: SideKernel, batch: Batch, inDim: number, outDim: number): Float32Array {
  const out = new Float32Array(batch.rows * outDim).fill(Number.NaN);
  kernel.sideProduct(batch.x, inDim, out, outDim, batch.jobs);
  return out;
}
