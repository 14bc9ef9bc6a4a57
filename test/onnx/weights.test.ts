import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeOnnxModel, encodeOnnxModel } from '../../src/onnx/model-file.js';
import { onnx } from '../../src/onnx/proto.js';
import { buildSyntheticEncoder, syntheticFinetune, TINY_ENCODER } from '../../src/onnx/synthetic.js';
import { assertSameGraph, readFloatWeights, weightShapes, withFloatWeights } from '../../src/onnx/weights.js';

const tiny = (seed = 3): onnx.ModelProto => buildSyntheticEncoder({ ...TINY_ENCODER, seed });
const incompatible = (message: RegExp) => ({ code: 'DS_ERR_ONNX_INCOMPATIBLE', message });

test('readFloatWeights returns every fp32 initializer with its shape', () => {
  const weights = readFloatWeights(tiny());
  assert.equal(weights.size, 4 + 2 * 16 + 2);
  assert.deepEqual(weights.get('embeddings.token.weight')?.shape, [50, 32]);
  assert.deepEqual(weights.get('layer.1.attn.q.weight')?.shape, [32, 32]);
  assert.deepEqual(weights.get('layer.0.ffn.up.weight')?.shape, [32, 64]);
  assert.deepEqual(weights.get('classifier.weight')?.shape, [32, 3]);
  assert.deepEqual([...weights.get('layer.0.attn.norm.weight')!.data], new Array<number>(32).fill(1));
  for (const [name, { shape, data }] of weights)
    assert.equal(
      data.length,
      shape.reduce((a, b) => a * b, 1),
      name,
    );
  assert.deepEqual(weightShapes(tiny()), new Map([...weights].map(([name, w]) => [name, w.shape])));
});

test('readFloatWeights copies unaligned raw_data and reads float_data', () => {
  const model = tiny();
  const bytes = encodeOnnxModel(model);
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  // Decoding from offset 1 leaves every raw_data view at an odd byte offset.
  const decoded = decodeOnnxModel(shifted.subarray(1), 'shifted');
  const expected = readFloatWeights(model);
  for (const [name, weight] of readFloatWeights(decoded)) assert.deepEqual(weight.data, expected.get(name)!.data, name);

  const head = decoded.graph!.initializer!.find((t) => t.name === 'classifier.bias')!;
  head.rawData = new Uint8Array(0);
  head.floatData = [0.5, -1.5, 2];
  assert.deepEqual(readFloatWeights(decoded).get('classifier.bias')!.data, Float32Array.from([0.5, -1.5, 2]));
});

test('withFloatWeights replaces named weights in a copy of the model', () => {
  const model = tiny();
  const before = Buffer.from(encodeOnnxModel(model));
  const values = Float32Array.from({ length: 96 }, (_, i) => i / 96);
  const replaced = withFloatWeights(model, new Map([['classifier.weight', values]]));
  values[0] = 42; // the model holds a copy

  const weights = readFloatWeights(replaced);
  assert.equal(weights.get('classifier.weight')!.data[0], 0);
  assert.equal(weights.get('classifier.weight')!.data[95], Math.fround(95 / 96));
  assert.deepEqual(weights.get('layer.0.attn.q.weight'), readFloatWeights(model).get('layer.0.attn.q.weight'));
  assert.ok(Buffer.from(encodeOnnxModel(model)).equals(before), 'the input model is unchanged');
  assert.deepEqual(weightShapes(decodeOnnxModel(encodeOnnxModel(replaced), 'replaced')), weightShapes(model));
});

test('withFloatWeights refuses unknown names and wrong lengths', () => {
  const model = tiny();
  assert.throws(
    () => withFloatWeights(model, new Map([['layer.9.attn.q.weight', new Float32Array(1024)]])),
    incompatible(/"layer\.9\.attn\.q\.weight" is not a float initializer of the model/),
  );
  assert.throws(
    () => withFloatWeights(model, new Map([['layer.0.attn.q.weight', new Float32Array(1000)]])),
    incompatible(/replacement for "layer\.0\.attn\.q\.weight" has 1000 values but its shape \[32, 32\] holds 1024/),
  );
});

test('assertSameGraph accepts a fine-tune and names the first difference otherwise', () => {
  const base = tiny();
  assertSameGraph(base, syntheticFinetune(base, { seed: 1 }));

  assert.throws(
    () => assertSameGraph(base, buildSyntheticEncoder({ ...TINY_ENCODER, hidden: 64, ffn: 128, seed: 3 })),
    incompatible(
      /weight "embeddings\.token\.weight" has shape \[50, 32\] in the base but \[50, 64\] in the fine-tuned model/,
    ),
  );
  assert.throws(
    () => assertSameGraph(base, buildSyntheticEncoder({ ...TINY_ENCODER, layers: 3, seed: 3 })),
    incompatible(/weight "layer\.2\.attn\.q\.weight" of the fine-tuned model is not in the base/),
  );
  assert.throws(
    () => assertSameGraph(buildSyntheticEncoder({ ...TINY_ENCODER, layers: 3, seed: 3 }), base),
    incompatible(/weight "layer\.2\.attn\.q\.weight" of the base is missing from the fine-tuned model/),
  );

  const rewired = decodeOnnxModel(encodeOnnxModel(base), 'rewired');
  const softmax = rewired.graph!.node!.findIndex((n) => n.opType === 'Softmax');
  rewired.graph!.node![softmax]!.opType = 'Sigmoid';
  assert.throws(
    () => assertSameGraph(base, rewired),
    incompatible(new RegExp(`node #${softmax} is Softmax\\(.*\\) in the base but Sigmoid\\(`)),
  );
});
