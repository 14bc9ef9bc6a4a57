import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { parseManifest } from '../../src/registry/manifest.js';

const FP = 'c'.repeat(64);
const SHA = 'd'.repeat(64);

function manifest(patch: Record<string, unknown> = {}): string {
  return stringify({
    base: { model: 'base/model.onnx', fingerprint: FP, labels: ['a', 'b'] },
    tasks: [
      {
        name: 'rotated',
        version: 1,
        description: 'turned',
        delta: 'tasks/rotated/delta.safetensors',
        sha256: SHA,
        labels: ['a', 'b'],
        numClasses: 2,
      },
    ],
    ...patch,
  });
}

test('paths resolve against the manifest; deltas become file:// URLs; versions become strings', () => {
  const zoo = parseManifest(manifest(), '/srv/models/zoo.yaml');
  assert.equal(zoo.base.modelPath, '/srv/models/base/model.onnx');
  assert.equal(zoo.base.fingerprint, FP);
  assert.deepEqual(zoo.base.labels, ['a', 'b']);
  assert.deepEqual(zoo.tasks, [
    {
      name: 'rotated',
      version: '1',
      uri: 'file:///srv/models/tasks/rotated/delta.safetensors',
      sha256: SHA,
      description: 'turned',
      labels: ['a', 'b'],
      numClasses: 2,
    },
  ]);
});

test('provenance fields of a generated manifest are ignored', () => {
  const zoo = parseManifest(
    manifest({
      base: { model: 'm.onnx', fingerprint: FP, parameters: 205066 },
      tasks: [
        {
          name: 't',
          version: '1',
          delta: 'd.safetensors',
          sha256: SHA,
          method: 'dare',
          dropRate: 0.95,
          accuracy: 0.98,
          eval: 'e.safetensors',
        },
      ],
      generatedBy: 'npm run zoo',
    }),
    '/m/zoo.yaml',
  );
  assert.equal(zoo.tasks[0]?.name, 't');
});

test('http(s) delta URLs are kept as they are', () => {
  const zoo = parseManifest(
    manifest({ tasks: [{ name: 't', version: '1', delta: 'https://deltas.example.com/t.safetensors', sha256: SHA }] }),
    '/m/zoo.yaml',
  );
  assert.equal(zoo.tasks[0]?.uri, 'https://deltas.example.com/t.safetensors');
  assert.equal(zoo.tasks[0]?.numClasses, null);
});

test('a bad manifest names its file, the field and the reason', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ base: { fingerprint: FP } }, /base\.model: is required/],
    [{ base: { model: 'm.onnx', fingerprint: 'xyz' } }, /base\.fingerprint: expected 64 hex/],
    [{ tasks: [{ name: 'rotated', version: '1', delta: 'a', sha256: 'nope' }] }, /tasks\[0\]\.sha256/],
    [{ tasks: [{ name: 'rotated', delta: 'a', sha256: SHA }] }, /tasks\[0\]\.version: is required/],
    [
      {
        tasks: [
          { name: 'r', version: '1', delta: 'a', sha256: SHA },
          { name: 'r', version: '1', delta: 'b', sha256: SHA },
        ],
      },
      /tasks\[1\]: r@1 is declared twice/,
    ],
  ];
  for (const [patch, reason] of cases) {
    assert.throws(
      () => parseManifest(manifest(patch), '/m/zoo.yaml'),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'DS_ERR_MANIFEST_INVALID');
        assert.match(error.message, /\/m\/zoo\.yaml/);
        assert.match(error.message, reason);
        return true;
      },
    );
  }
});
