/**
 * The argument checks every side kernel runs before it touches memory, with messages that say
 * what was wrong. Scanning a sparse delta's indices is separate ({@link checkIndices}): the JS
 * kernel calls it, the native addon does it at native speed.
 */
import type { SideJob } from './side-kernel.js';

/** Checks shapes, job rows and delta lengths; returns the number of rows of `x`. */
export function checkSideCall(
  x: Float32Array,
  inDim: number,
  out: Float32Array,
  outDim: number,
  jobs: readonly SideJob[],
): number {
  if (!(x instanceof Float32Array) || !(out instanceof Float32Array))
    throw new RangeError('side kernel: x and out must be Float32Arrays');
  if (!Number.isSafeInteger(inDim) || inDim < 1 || inDim > 0xffffffff)
    throw new RangeError(`side kernel: inDim must be a positive integer, got ${inDim}`);
  if (!Number.isSafeInteger(outDim) || outDim < 1 || outDim > 0xffffffff)
    throw new RangeError(`side kernel: outDim must be a positive integer, got ${outDim}`);
  if (x.length % inDim !== 0)
    throw new RangeError(`side kernel: x holds ${x.length} values, not a multiple of inDim ${inDim}`);
  const rows = x.length / inDim;
  if (out.length !== rows * outDim) {
    throw new RangeError(
      `side kernel: out holds ${out.length} values, expected rows × outDim = ${rows} × ${outDim} = ${rows * outDim}`,
    );
  }
  const spans: Array<readonly [number, number, number]> = [];
  jobs.forEach((job, k) => {
    const at = `side kernel: job ${k}`;
    const { rowStart, rowCount, weight, bias } = job;
    if (!Number.isSafeInteger(rowStart) || rowStart < 0 || !Number.isSafeInteger(rowCount) || rowCount < 0) {
      throw new RangeError(
        `${at}: rowStart and rowCount must be non-negative integers, got ${rowStart} and ${rowCount}`,
      );
    }
    if (rowStart + rowCount > rows)
      throw new RangeError(`${at}: rows ${rowStart}..${rowStart + rowCount - 1} exceed the batch's ${rows} rows`);
    if (rowCount > 0) spans.push([rowStart, rowStart + rowCount, k]);
    if (weight !== null) {
      if (!(weight.values instanceof Float32Array)) throw new RangeError(`${at}: weight values must be a Float32Array`);
      if (weight.kind === 'sparse') {
        if (!(weight.indices instanceof Uint32Array))
          throw new RangeError(`${at}: sparse weight indices must be a Uint32Array`);
        if (weight.indices.length !== weight.values.length) {
          throw new RangeError(
            `${at}: sparse weight has ${weight.indices.length} indices but ${weight.values.length} values`,
          );
        }
      } else if (weight.kind === 'dense') {
        if (weight.values.length !== inDim * outDim) {
          throw new RangeError(
            `${at}: dense weight holds ${weight.values.length} values, expected inDim × outDim = ${inDim * outDim}`,
          );
        }
      } else {
        throw new RangeError(
          `${at}: weight kind must be 'sparse' or 'dense', got ${String((weight as { kind: unknown }).kind)}`,
        );
      }
    }
    if (bias !== null) {
      if (!(bias instanceof Float32Array)) throw new RangeError(`${at}: bias must be a Float32Array`);
      if (bias.length !== outDim)
        throw new RangeError(`${at}: bias holds ${bias.length} values, expected outDim = ${outDim}`);
    }
  });
  spans.sort((a, b) => a[0] - b[0]);
  for (let s = 1; s < spans.length; s++) {
    const [start, , k] = spans[s]!;
    const [, previousEnd, previous] = spans[s - 1]!;
    if (start < previousEnd)
      throw new RangeError(`side kernel: jobs ${previous} and ${k} share row ${start}; a row belongs to one job`);
  }
  return rows;
}

/** Throws unless every index addresses a position of `[inDim, outDim]`. */
export function checkIndices(indices: Uint32Array, inDim: number, outDim: number, job: number): void {
  const positions = inDim * outDim;
  let max = 0;
  for (let e = 0; e < indices.length; e++) if (indices[e]! > max) max = indices[e]!;
  if (indices.length === 0 || max < positions) return;
  const e = indices.findIndex((index) => index >= positions);
  throw new RangeError(
    `side kernel: job ${job}: weight index ${indices[e]} at position ${e} is out of range for [${inDim}, ${outDim}] (must be < ${positions})`,
  );
}
