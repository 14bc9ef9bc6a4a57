import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ITEM_DELTAS_INPUT,
  SIDE_OP_DOMAIN,
  SIDE_OP_TYPE,
  rewriteForMixedBatches,
} from '../../../src/engine/runtime/mixed/mixed-rewrite.js';
import { readFloatWeights } from '../../../src/onnx/weights.js';
import { TINY_ENCODER, buildSyntheticEncoder } from '../../../src/onnx/synthetic.js';

test('the custom-op rewrite keeps each MatMul and its bias Add and puts SideAdd after the Add', () => {
  const base = buildSyntheticEncoder({ ...TINY_ENCODER, seed: 3 });
  const weights = readFloatWeights(base);
  const shapes = new Map([...weights].map(([name, w]) => [name, w.shape]));
  const mixed = rewriteForMixedBatches(base.graph!, shapes, 'custom-op');
  const nodes = mixed.graph.node ?? [];
  const ops = nodes.filter((n) => n.opType === SIDE_OP_TYPE);
  const matMuls = (base.graph!.node ?? []).filter((n) => n.opType === 'MatMul' && shapes.has(n.input?.[1] ?? ''));
  assert.equal(ops.length, matMuls.length, 'one op per patchable linear');
  assert.equal(
    nodes.filter((n) => n.opType === 'MatMul').length,
    (base.graph!.node ?? []).filter((n) => n.opType === 'MatMul').length,
  );
  const byOutput = new Map(nodes.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
  const text = (bytes: Uint8Array | null | undefined) => new TextDecoder().decode(bytes ?? new Uint8Array());
  for (const op of ops) {
    assert.equal(op.domain, SIDE_OP_DOMAIN);
    assert.equal(op.input![2], ITEM_DELTAS_INPUT);
    const producer = byOutput.get(op.input![0]!)!;
    const weight = text(op.attribute!.find((a) => a.name === 'weight')!.s);
    const bias = text(op.attribute!.find((a) => a.name === 'bias')!.s);
    // Y0 comes from the bias Add (ORT keeps MatMul+Add fusions), or the MatMul itself when unbiased.
    if (producer.opType === 'Add') {
      assert.equal(byOutput.get(producer.input![0]!)?.input?.[1], weight);
      assert.equal(bias, producer.input![1]);
    } else {
      assert.equal(producer.opType, 'MatMul');
      assert.equal(bias, '');
    }
    assert.equal(shapes.has(weight), true);
  }
  assert.ok(
    (mixed.graph.input ?? []).some((i) => i.name === ITEM_DELTAS_INPUT),
    'the per-item handles are a graph input',
  );
  assert.equal(mixed.unsupported.size, 0);
});
