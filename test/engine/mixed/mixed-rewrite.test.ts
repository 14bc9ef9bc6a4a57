import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteForMixedBatches } from '../../../src/engine/runtime/mixed/mixed-rewrite.js';
import { classifyWeightUses } from '../../../src/engine/runtime/mixed/weight-uses.js';
import { cutIntoSegments } from '../../../src/engine/runtime/mixed/segments.js';
import { readFloatWeights } from '../../../src/onnx/weights.js';
import { TINY_ENCODER, buildSyntheticEncoder } from '../../../src/onnx/synthetic.js';

const base = buildSyntheticEncoder({ ...TINY_ENCODER, seed: 3 });
const shapes = new Map([...readFloatWeights(base)].map(([name, w]) => [name, w.shape as readonly number[]]));

test('every weight of the synthetic encoder is served per request, each in the way its consumers allow', () => {
  const uses = classifyWeightUses(base.graph!, shapes);
  const kinds = (suffix: string) =>
    new Set([...uses].filter(([name]) => name.endsWith(suffix)).map(([, use]) => use.kind));
  assert.deepEqual(kinds('embeddings.token.weight'), new Set(['gather']));
  assert.deepEqual(kinds('embeddings.position.weight'), new Set(['sliced']));
  assert.deepEqual(kinds('norm.weight'), new Set(['norm']));
  assert.deepEqual(kinds('q.weight'), new Set(['side']));
  assert.deepEqual(kinds('q.bias'), new Set(['bias']));
  assert.deepEqual(kinds('classifier.weight'), new Set(['side']));
  assert.equal([...uses.values()].filter((u) => u.kind === 'unsupported').length, 0);
});

test('a weight read by an op the mode cannot apply per request is named with the reason', () => {
  const uses = classifyWeightUses(
    {
      node: [
        { opType: 'Mul', input: ['x', 'gain'], output: ['y'] },
        { opType: 'MatMul', input: ['gain2', 'w'], output: ['z'] },
      ],
      initializer: [],
      input: [],
      output: [],
    },
    new Map([
      ['gain', [4]],
      ['gain2', [4, 4]],
      ['w', [4, 4]],
    ]),
  );
  assert.deepEqual(uses.get('gain'), {
    kind: 'unsupported',
    reason: 'gain is read by Mul, which mixed batches cannot apply per request',
  });
  assert.equal(uses.get('gain2')?.kind, 'unsupported');
  assert.equal(uses.get('w')?.kind, 'side');
  const int64 = (name: string, values: number[]) => ({ name, dataType: 7, dims: [values.length], int64Data: values });
  const more = classifyWeightUses(
    {
      node: [
        { opType: 'Slice', input: ['table1', 'zero', 'end', 'axes'], output: ['sliced'] },
        { opType: 'Add', input: ['sliced', 'x'], output: ['y'] },
        { opType: 'Add', input: ['offset', 'constant'], output: ['z'] },
        { opType: 'Add', input: ['x', 'bias'], output: ['w'] },
      ],
      initializer: [
        int64('zero', [0]),
        int64('end', [4]),
        int64('axes', [1]),
        { name: 'constant', dataType: 1, dims: [4], floatData: [0, 0, 0, 0] },
      ],
      input: [{ name: 'x' }],
      output: [],
    },
    new Map([
      ['table1', [1, 8, 4]],
      ['offset', [4]],
      ['bias', [4]],
    ]),
  );
  assert.match((more.get('table1') as { reason: string }).reason, /leading dimension of 1/);
  assert.match((more.get('offset') as { reason: string }).reason, /added to a constant/);
  assert.equal(more.get('bias')?.kind, 'additive');
});

test('segments: each side-path MatMul runs one segment after the one producing its X, biases fold, nothing is left unserved', () => {
  const mixed = rewriteForMixedBatches(base.graph!, shapes);
  assert.equal(mixed.unsupported.size, 0);
  const linears = [...shapes.values()].filter((s) => s.length === 2).length - 2; // minus the two embedding tables
  assert.equal(mixed.sites.length, linears);
  assert.ok(
    mixed.sites.every((s) => s.baseBias !== null && s.bias === s.baseBias),
    'every linear has its bias folded',
  );
  const segments = cutIntoSegments(base, mixed.graph, mixed.sites);
  assert.equal(segments.flatMap((s) => s.sites).length, mixed.sites.length, 'every site takes its D in some segment');
  // Per layer: Q/K/V share a cut, then O, FFN up, FFN down; then the classifier; plus the embeddings' segment.
  assert.equal(segments.length, TINY_ENCODER.layers * 4 + 2);
  const producedIn = new Map<string, number>();
  segments.forEach((segment, k) => segment.outputs.forEach((name) => producedIn.set(name, k)));
  segments.forEach((segment, k) => {
    for (const site of segment.sites)
      assert.ok(producedIn.get(site.x)! < k, `${site.x} is produced before the segment that takes ${site.input}`);
  });
  const adds = mixed.graph.node!.filter((n) => n.opType === 'Add').length;
  const originalAdds = base.graph!.node!.filter((n) => n.opType === 'Add').length;
  // One more Add per LayerNorm (its shift, now per item), one for the gathered and one for the
  // sliced table; none per linear (the side path's Add replaces the bias Add).
  const norms = 2 * TINY_ENCODER.layers + 1;
  assert.equal(adds, originalAdds + norms + 2);
});
