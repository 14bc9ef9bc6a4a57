import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeAddon } from '../../../src/engine/runtime/mixed/kernel/native-kernel.js';
import type { SideJob } from '../../../src/engine/runtime/mixed/kernel/side-kernel.js';
import { kernelsUnderTest, NATIVE_SKIP } from './kernel-cases.js';

const IN = 4;
const OUT = 3;
const ROWS = 5;
const sparse = (indices: number[]) => ({
  kind: 'sparse' as const,
  indices: Uint32Array.from(indices),
  values: new Float32Array(indices.length).fill(1),
});
const job = (over: Partial<SideJob> = {}): SideJob => ({
  rowStart: 0,
  rowCount: ROWS,
  weight: sparse([0, 5, 11]),
  bias: null,
  ...over,
});

interface BadCall {
  readonly name: string;
  readonly message: RegExp;
  readonly x?: Float32Array;
  readonly inDim?: number;
  readonly out?: Float32Array;
  readonly outDim?: number;
  readonly jobs?: SideJob[];
}

const BAD: BadCall[] = [
  {
    name: 'x not a multiple of inDim',
    x: new Float32Array(ROWS * IN + 1),
    message: /x holds 21 values, not a multiple of inDim 4/,
  },
  {
    name: 'out of the wrong length',
    out: new Float32Array(ROWS * OUT - 1),
    message: /out holds 14 values, expected rows × outDim = 5 × 3 = 15/,
  },
  { name: 'inDim 0', inDim: 0, message: /inDim must be a positive integer, got 0/ },
  { name: 'outDim not an integer', outDim: 2.5, message: /outDim must be a positive integer, got 2.5/ },
  {
    name: 'x not a Float32Array',
    x: new Float64Array(ROWS * IN) as unknown as Float32Array,
    message: /x and out must be Float32Arrays/,
  },
  {
    name: 'rows past the batch',
    jobs: [job({ rowStart: 3, rowCount: 3 })],
    message: /job 0: rows 3..5 exceed the batch's 5 rows/,
  },
  {
    name: 'negative rowStart',
    jobs: [job({ rowStart: -1, rowCount: 1 })],
    message: /job 0: rowStart and rowCount must be non-negative integers/,
  },
  {
    name: 'overlapping jobs',
    jobs: [job({ rowStart: 0, rowCount: 3 }), job({ rowStart: 2, rowCount: 2 })],
    message: /jobs 0 and 1 share row 2; a row belongs to one job/,
  },
  {
    name: 'indices and values of different lengths',
    jobs: [job({ weight: { kind: 'sparse', indices: Uint32Array.of(0, 1), values: new Float32Array(3) } })],
    message: /job 0: sparse weight has 2 indices but 3 values/,
  },
  {
    name: 'an index past inDim × outDim',
    jobs: [job(), job({ rowStart: 0, rowCount: 0, weight: sparse([1, 12, 2]) })],
    message: /job 1: weight index 12 at position 1 is out of range for \[4, 3\] \(must be < 12\)/,
  },
  {
    name: 'a dense delta of the wrong size',
    jobs: [job({ weight: { kind: 'dense', values: new Float32Array(11) } })],
    message: /job 0: dense weight holds 11 values, expected inDim × outDim = 12/,
  },
  {
    name: 'a bias of the wrong size',
    jobs: [job({ bias: new Float32Array(4) })],
    message: /job 0: bias holds 4 values, expected outDim = 3/,
  },
];

for (const kernel of kernelsUnderTest()) {
  test(`${kernel.name} × ${kernel.threads}: bad calls throw a RangeError saying what is wrong and leave out untouched`, () => {
    for (const bad of BAD) {
      const out = bad.out ?? new Float32Array(ROWS * OUT).fill(7);
      assert.throws(
        () =>
          kernel.sideProduct(
            bad.x ?? new Float32Array(ROWS * IN).fill(1),
            bad.inDim ?? IN,
            out,
            bad.outDim ?? OUT,
            bad.jobs ?? [job()],
          ),
        (error: unknown) => error instanceof RangeError && bad.message.test(error.message),
        bad.name,
      );
      assert.ok(
        out.every((v) => v === 7 || bad.out !== undefined),
        `${bad.name}: out was written`,
      );
    }
  });
}

// The addon checks again what guards memory, for a caller that skips the wrapper or an array
// that changed in between.
test('native addon: called directly with inconsistent arguments, throws a RangeError', { skip: NATIVE_SKIP }, () => {
  const addon = loadNativeAddon();
  const path = addon.paths()[0]!;
  const x = new Float32Array(ROWS * IN);
  const out = new Float32Array(ROWS * OUT);
  const call = (over: {
    rowCounts?: Uint32Array;
    indices?: Uint32Array | null;
    values?: Float32Array | null;
    bias?: Float32Array | null;
    threads?: number;
    path?: string;
  }) =>
    addon.sideProduct(
      x,
      IN,
      out,
      OUT,
      Uint32Array.of(0),
      over.rowCounts ?? Uint32Array.of(ROWS),
      [over.indices === undefined ? Uint32Array.of(1) : over.indices],
      [over.values === undefined ? Float32Array.of(1) : over.values],
      [over.bias ?? null],
      over.threads ?? 1,
      (over.path ?? path) as typeof path,
    );
  assert.doesNotThrow(() => call({}));
  const bad: Array<[string, Parameters<typeof call>[0], RegExp]> = [
    ['rows past the batch', { rowCounts: Uint32Array.of(ROWS + 1) }, /job 0: rows out of range/],
    [
      'index out of range',
      { indices: Uint32Array.of(3, 12), values: Float32Array.of(1, 1) },
      /job 0: weight index 12 at position 1 is out of range/,
    ],
    [
      'lengths differ',
      { indices: Uint32Array.of(1, 2), values: Float32Array.of(1) },
      /job 0: indices and values differ in length/,
    ],
    [
      'dense of the wrong size',
      { indices: null, values: new Float32Array(5) },
      /job 0: dense values length is not inDim \* outDim/,
    ],
    ['bias of the wrong size', { bias: new Float32Array(2) }, /job 0: bias length is not outDim/],
    ['threads 0', { threads: 0 }, /threads must be a positive integer/],
    ['unknown path', { path: 'sse9' }, /path 'sse9' is not supported on this CPU/],
  ];
  for (const [name, over, message] of bad)
    assert.throws(
      () => call(over),
      (e: unknown) => e instanceof RangeError && message.test(e.message),
      name,
    );
});
