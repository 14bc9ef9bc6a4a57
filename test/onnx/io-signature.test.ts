import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeModelIO } from '../../src/onnx/io-signature.js';
import { decodeOnnxModel, encodeOnnxModel } from '../../src/onnx/model-file.js';
import { onnx } from '../../src/onnx/proto.js';
import { buildSyntheticEncoder, TINY_ENCODER } from '../../src/onnx/synthetic.js';

const tiny = (): onnx.ModelProto => buildSyntheticEncoder({ ...TINY_ENCODER, seed: 1 });

const EXPECTED_IO = {
  inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [-1, -1], dimNames: ['batch', 'seq'] }],
  outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3], dimNames: ['batch', null] }],
};

test('describeModelIO on the synthetic encoder, built and decoded', () => {
  assert.deepEqual(describeModelIO(tiny()), EXPECTED_IO);
  // Decoded messages carry protobuf defaults on their prototypes; symbolic dims must stay -1.
  assert.deepEqual(describeModelIO(decodeOnnxModel(encodeOnnxModel(tiny()), 'tiny')), EXPECTED_IO);
});

test('initializers listed as graph inputs are not inputs', () => {
  const model = tiny();
  model.graph!.input!.push({
    name: 'classifier.bias',
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 3 }] } } },
  });
  assert.deepEqual(
    describeModelIO(model).inputs.map((i) => i.name),
    ['input_ids'],
  );
});

test('fixed, unknown and missing shapes', () => {
  const model = tiny();
  model.graph!.output = [
    {
      name: 'fixed',
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT16, shape: { dim: [{ dimValue: 4 }, {}] } } },
    },
    { name: 'rankless', type: { tensorType: { elemType: onnx.TensorProto.DataType.BOOL } } },
  ];
  const decoded = decodeOnnxModel(encodeOnnxModel(model), 'shapes');
  assert.deepEqual(describeModelIO(decoded).outputs, [
    { name: 'fixed', datatype: 'FP16', shape: [4, -1], dimNames: [null, null] },
    { name: 'rankless', datatype: 'BOOL', shape: null, dimNames: null },
  ]);
});

test('outputs KServe cannot carry are refused', () => {
  const complex = tiny();
  complex.graph!.output = [
    { name: 'z', type: { tensorType: { elemType: onnx.TensorProto.DataType.COMPLEX64, shape: { dim: [] } } } },
  ];
  assert.throws(() => describeModelIO(complex), {
    code: 'DS_ERR_ONNX_INVALID',
    message: /output "z" has element type COMPLEX64, which has no KServe datatype/,
  });

  const sequence = tiny();
  sequence.graph!.output = [{ name: 'seq', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } }];
  assert.throws(() => describeModelIO(sequence), {
    code: 'DS_ERR_ONNX_INVALID',
    message: /output "seq" is not a tensor/,
  });
});
