/**
 * The contract of the mixed engine's side-path kernel: for one patched linear `Y = X·W (+ b)`
 * and a batch whose requests belong to different tasks, computes each request's own
 * `D = X·Δ_task (+ Δb_task)` so that `X·W + D` equals the request's merged model. Base weights
 * never pass through here: ORT keeps them pre-packed; only the sparse delta is applied.
 *
 * Layout. `x` holds `rows × inDim` values, token-major (row r, feature i at `x[r * inDim + i]`),
 * exactly as ORT returns the tensor at a graph cut. `out` holds `rows × outDim` values the same
 * way. A job owns a contiguous range of rows (one request's tokens). A sparse weight delta is the
 * delta file's own form: flat row-major positions into `[inDim, outDim]`, strictly increasing,
 * with their values (so the cache needs no second layout).
 */

export interface SparseWeightDelta {
  readonly kind: 'sparse';
  /** Flat positions `i * outDim + j`, strictly increasing, each < inDim * outDim. */
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

export interface DenseWeightDelta {
  readonly kind: 'dense';
  /** All `inDim * outDim` values, row-major. */
  readonly values: Float32Array;
}

export type WeightDelta = SparseWeightDelta | DenseWeightDelta;

export interface SideJob {
  /** First row of `x` / `out` that belongs to this request. */
  readonly rowStart: number;
  readonly rowCount: number;
  /** The request's task delta for W (null: the task leaves W unchanged). */
  readonly weight: WeightDelta | null;
  /** The request's task delta for the bias, `outDim` values added to every row (null: none). */
  readonly bias: Float32Array | null;
}

export type SideKernelName = 'native-avx512' | 'native-avx2' | 'native-baseline' | 'js';

export interface SideKernel {
  /** Which implementation runs (logged at start-up and reported by the benchmark). */
  readonly name: SideKernelName;
  /** Threads one call may use. */
  readonly threads: number;
  /**
   * Overwrites `out` (all `rows × outDim` values): rows of a job get `x_rows · Δ + Δb`; rows no
   * job covers, or whose job has neither delta, are set to 0. Synchronous.
   * Throws a RangeError (never reads or writes out of bounds) when a job's rows, a delta's
   * length or an index do not fit the dimensions.
   */
  sideProduct(x: Float32Array, inDim: number, out: Float32Array, outDim: number, jobs: readonly SideJob[]): void;
}
