import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeDelta } from '../../src/compress/quantize.js';
import { decodeDelta, encodeDelta } from '../../src/deltas/format/delta-file.js';
import type { Delta, SparseTensorDelta } from '../../src/deltas/types.js';
import { sampleDelta } from '../deltas/format/fixtures.js';

function withEmptyWeight(delta: Delta): Delta {
  const empty: SparseTensorDelta = {
    kind: 'sparse',
    name: 'layer.0.empty.bias',
    shape: [16],
    indices: new Uint32Array(0),
    values: new Float32Array(0),
    rescale: 10,
  };
  return { ...delta, tensors: [...delta.tensors, empty] };
}

describe('quantizeDelta', () => {
  for (const choice of ['fp16', 'int8', 'int4'] as const) {
    it(`${choice}: format version 2, sparse weights with no kept entry left out, dense weights untouched, provenance in extra`, () => {
      const source = withEmptyWeight(sampleDelta('F16'));
      const out = quantizeDelta(source, choice, 32);
      assert.equal(out.metadata.formatVersion, 2);
      assert.equal(out.metadata.extra.values, choice);
      assert.equal(out.metadata.extra.quant_group, choice === 'fp16' ? undefined : '32');
      assert.deepEqual(
        out.tensors.map((t) => t.name),
        source.tensors.filter((t) => t.kind === 'dense' || t.indices.length > 0).map((t) => t.name),
      );
      for (const t of out.tensors) {
        const before = source.tensors.find((x) => x.name === t.name)!;
        if (t.kind === 'dense') assert.equal(t.values, before.values);
        else {
          assert.equal(t.indices, (before as SparseTensorDelta).indices);
          assert.equal(t.quantized?.encoding, choice === 'int8' ? 'I8' : choice === 'int4' ? 'I4' : undefined);
        }
      }
      // Quantized values are exactly what the file holds (fp16 ones round when written).
      const back = decodeDelta(encodeDelta(out));
      for (const t of out.tensors) {
        if (t.kind === 'sparse' && t.quantized)
          assert.deepEqual(back.tensors.find((x) => x.name === t.name)!.values, t.values);
      }
    });
  }
});
