import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelIO } from '../../src/onnx/io-signature.js';
import { decodeInputs, encodeOutputs } from '../../src/http/tensor-codec.js';
import { topLabels } from '../../src/http/classify.js';

const IO: ModelIO = {
  inputs: [
    { name: 'input_ids', datatype: 'INT64', shape: [-1, -1], dimNames: ['batch', 'seq'] },
    { name: 'mask', datatype: 'BOOL', shape: [-1, 4], dimNames: ['batch', null] },
  ],
  outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3], dimNames: ['batch', null] }],
};

const ids = (data: unknown[], shape = [1, 4]) => ({ name: 'input_ids', shape, datatype: 'INT64', data });
const mask = (data: unknown[] = [true, true, false, false], shape = [1, 4]) => ({
  name: 'mask',
  shape,
  datatype: 'BOOL',
  data,
});

test('decodes flat and nested data into typed arrays', () => {
  const flat = decodeInputs([ids([1, 2, 3, 4]), mask()], IO);
  assert.deepEqual(flat.input_ids, { type: 'int64', dims: [1, 4], data: BigInt64Array.of(1n, 2n, 3n, 4n) });
  assert.deepEqual(flat.mask, { type: 'bool', dims: [1, 4], data: Uint8Array.of(1, 1, 0, 0) });
  const nested = decodeInputs(
    [
      ids(
        [
          [1, 2],
          [3, 4],
        ],
        [2, 2],
      ),
      mask(
        [
          [true, false, true, false],
          [false, false, false, true],
        ],
        [2, 4],
      ),
    ],
    IO,
  );
  assert.deepEqual(nested.input_ids!.data, BigInt64Array.of(1n, 2n, 3n, 4n));
  assert.deepEqual(nested.mask!.dims, [2, 4]);
});

test('each problem is a 400 naming the input', () => {
  const cases: [unknown[], RegExp][] = [
    [[ids([1, 2, 3, 4])], /input "mask" is missing/],
    [
      [ids([1, 2, 3, 4]), mask(), { name: 'extra', shape: [1], datatype: 'FP32', data: [1] }],
      /input "extra" is not an input of the model \(inputs: input_ids, mask\)/,
    ],
    [[ids([1, 2, 3, 4]), ids([1, 2, 3, 4]), mask()], /given twice/],
    [[{ ...ids([1, 2, 3, 4]), datatype: 'INT32' }, mask()], /"input_ids" has datatype INT32 but the model takes INT64/],
    [[ids([1, 2, 3, 4], [4]), mask()], /rank 1.*rank 2/],
    [[ids([1, 2, 3, 4]), mask([true, true], [1, 2])], /dimension 1 must be 4/],
    [[ids([1, 2, 3]), mask()], /3 elements in data but shape \[1, 4\] needs 4/],
    [[ids([1, 2, 3, 4, 5]), mask()], /5 elements/],
    [[ids([1, 2.5, 3, 4]), mask()], /element 1 is 2.5, expected an integer/],
    [[ids([1, 2, 3, 4]), mask([1, 0, 1, 0])], /"mask" element 0 is 1, expected true or false/],
  ];
  for (const [inputs, message] of cases) {
    assert.throws(
      () => decodeInputs(inputs as never, IO),
      (error: Error & { code?: string; statusCode?: number }) => {
        assert.equal(error.code, 'DS_ERR_INFER_BAD_INPUT');
        assert.equal(error.statusCode, 400);
        assert.match(error.message, message);
        return true;
      },
    );
  }
});

test('FP32 values outside the FP32 range are 400s naming the element, however they are written', () => {
  const FLOAT_IO: ModelIO = { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1], dimNames: null }], outputs: [] };
  const body = (literal: string) =>
    JSON.parse(`[{"name":"x","shape":[2],"datatype":"FP32","data":[0.5,${literal}]}]`) as never;
  for (const literal of ['1e39', '-1e39', '1e308', '1e400', '-1e400', '9'.repeat(5000)]) {
    assert.throws(
      () => decodeInputs(body(literal), FLOAT_IO),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'DS_ERR_INFER_BAD_INPUT');
        assert.match(error.message, /input "x" element 1 is .*expected a finite number within the FP32 range/);
        assert.ok(error.message.length < 300, `the message stays short: ${error.message.length}`);
        return true;
      },
    );
  }
  const edge = decodeInputs(body('3.4028234e38'), FLOAT_IO);
  assert.ok(Number.isFinite(edge.x!.data[1]), 'the largest float32 is accepted');
});

test('a non-finite output is a 422 naming it, never a null in the JSON', () => {
  const outputs = { logits: { type: 'float32' as const, dims: [1, 3], data: Float32Array.of(0.5, Number.NaN, 2) } };
  assert.throws(
    () => encodeOutputs(outputs, IO),
    (error: Error & { code?: string; statusCode?: number }) => {
      assert.equal(error.code, 'DS_ERR_INFER_OUTPUT_NOT_FINITE');
      assert.equal(error.statusCode, 422);
      assert.match(error.message, /Output logits element 1 is NaN/);
      return true;
    },
  );
});

test('outputs are encoded flat with KServe datatypes; requested outputs filter', () => {
  const outputs = { logits: { type: 'float32' as const, dims: [1, 3], data: Float32Array.of(0.5, 1, 2) } };
  assert.deepEqual(encodeOutputs(outputs, IO), [
    { name: 'logits', shape: [1, 3], datatype: 'FP32', data: [0.5, 1, 2] },
  ]);
  assert.deepEqual(encodeOutputs(outputs, IO, []), []);
});

test('top labels: softmax over the first numClasses logits, sorted, cut at top', () => {
  const ranked = topLabels(Float32Array.of(1, 3, 2, 100), ['a', 'b', 'c', 'd'], 3, 2);
  assert.deepEqual(
    ranked.map((r) => r.label),
    ['b', 'c'],
  );
  const all = topLabels(Float32Array.of(1, 3, 2, 100), ['a', 'b', 'c', 'd'], 3, 10);
  assert.equal(all.length, 3, "the fourth logit is not one of the task's classes");
  assert.ok(Math.abs(all.reduce((s, r) => s + r.probability, 0) - 1) < 1e-12);
  assert.ok(Math.abs(all[0]!.probability - Math.exp(3) / (Math.exp(1) + Math.exp(3) + Math.exp(2))) < 1e-12);
  assert.deepEqual(
    topLabels(Float32Array.of(1000, 0), null, null, 1).map((r) => r.label),
    ['0'],
    'no overflow, index labels without names',
  );
});

test('an element that is an object nested far too deep is a 400 naming it, not a stack overflow (found by test/reliability/fuzz-http)', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = { a: deep };
  assert.throws(
    () => decodeInputs([ids([1, deep, 3, 4]), mask()], IO),
    (e: Error & { code?: string }) =>
      e.code === 'DS_ERR_INFER_BAD_INPUT' && /an object nested too deeply to show/.test(e.message),
  );
});
