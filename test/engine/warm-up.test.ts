import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmUpInputs } from '../../src/engine/runtime/warm-up.js';

test('warm-up inputs are zeros with every open dimension 1, or none when an input has no rank or an unsupported type', () => {
  const inputs = warmUpInputs({
    inputs: [
      { name: 'input_ids', datatype: 'INT64', shape: [-1, -1], dimNames: ['batch', 'seq'] },
      { name: 'pixels', datatype: 'FP32', shape: [-1, 1, 28, 28], dimNames: null },
    ],
    outputs: [],
  })!;
  assert.deepEqual(inputs.input_ids!.dims, [1, 1]);
  assert.deepEqual(inputs.input_ids!.data, new BigInt64Array(1));
  assert.deepEqual(inputs.pixels!.dims, [1, 1, 28, 28]);
  assert.deepEqual(inputs.pixels!.data, new Float32Array(784));
  assert.equal(
    warmUpInputs({ inputs: [{ name: 'x', datatype: 'FP32', shape: null, dimNames: null }], outputs: [] }),
    null,
  );
  assert.equal(
    warmUpInputs({ inputs: [{ name: 'x', datatype: 'FP16', shape: [2], dimNames: null }], outputs: [] }),
    null,
  );
});
