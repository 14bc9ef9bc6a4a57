import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeDelta, inspectDelta } from '../../../src/deltas/format/delta-file.js';
import type { Delta } from '../../../src/deltas/types.js';
import { sampleDelta } from './fixtures.js';

function handMade(valueDtype: 'F32' | 'F16'): Delta {
  return {
    metadata: { ...sampleDelta().metadata, valueDtype },
    tensors: [
      {
        kind: 'sparse',
        name: 'w',
        shape: [4, 5],
        indices: Uint32Array.of(0, 7, 19),
        values: Float32Array.of(0.5, -1.5, 2),
        rescale: 10,
      },
      { kind: 'dense', name: 'head', shape: [2, 2], values: Float32Array.of(1, -1, 0, 0.5) },
      {
        kind: 'sparse',
        name: 'empty',
        shape: [8],
        indices: new Uint32Array(0),
        values: new Float32Array(0),
        rescale: 10,
      },
    ],
  };
}

describe('inspectDelta', () => {
  it('reports per-tensor counts, value statistics and sizes, sorted by name', () => {
    const stats = inspectDelta(handMade('F32'));
    assert.deepEqual(
      stats.tensors.map((t) => t.name),
      ['empty', 'head', 'w'],
    );
    const [empty, head, w] = stats.tensors;
    assert.deepEqual(w, {
      name: 'w',
      kind: 'sparse',
      shape: [4, 5],
      numel: 20,
      nnz: 3,
      density: 3 / 20,
      minValue: -1.5,
      maxValue: 2,
      meanAbs: 4 / 3,
      bytesOnDisk: 3 * (4 + 4),
      bitsPerParam: (24 * 8) / 20,
    });
    assert.equal(head?.kind, 'dense');
    assert.equal(head?.nnz, 4);
    assert.equal(head?.density, 1);
    assert.equal(head?.bytesOnDisk, 16);
    assert.equal(head?.meanAbs, 2.5 / 4);
    assert.equal(empty?.nnz, 0);
    assert.equal(empty?.minValue, null);
    assert.equal(empty?.meanAbs, null);
    assert.equal(empty?.bytesOnDisk, 0);
  });

  it('totals add up and fileBytes is exactly the size encodeDelta writes, for fp32 and fp16', () => {
    for (const dtype of ['F32', 'F16'] as const) {
      const delta = handMade(dtype);
      const { totals } = inspectDelta(delta);
      const valueSize = dtype === 'F32' ? 4 : 2;
      assert.equal(totals.tensorCount, 3);
      assert.equal(totals.numel, 20 + 4 + 8);
      assert.equal(totals.nnz, 7);
      assert.equal(totals.density, 7 / 32);
      assert.equal(totals.minValue, -1.5);
      assert.equal(totals.maxValue, 2);
      assert.equal(totals.meanAbs, 6.5 / 7);
      assert.equal(totals.dataBytes, 3 * 4 + 7 * valueSize);
      assert.equal(totals.fileBytes, encodeDelta(delta).length);
      assert.equal(totals.bitsPerParam, (totals.fileBytes * 8) / 32);
      assert.equal(totals.memoryBytes, 3 * 4 + 7 * 4, 'decoded: U32 index per sparse entry, F32 per value');
    }
    const sample = sampleDelta('F16');
    assert.equal(inspectDelta(sample).totals.fileBytes, encodeDelta(sample).length);
  });
});
