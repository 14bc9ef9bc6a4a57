// docs/examples/read_delta.py, an independent numpy reader written from docs/delta-format.md,
// decodes every kind of file (versions 1 and 2, each index stream, each value encoding) and every
// served zoo delta to exactly what decodeDelta gives. CI installs python3-numpy (.ci/run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantizeDelta } from '../../../src/compress/quantize.js';
import { decodeDelta, encodeDelta } from '../../../src/deltas/format/delta-file.js';
import type { Delta } from '../../../src/deltas/types.js';
import { sampleDelta } from './fixtures.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
// Python with numpy is optional on a developer's machine: without it this test skips loudly,
// unless DELTASERVE_TEST_PYTHON=required (CI sets it) makes that a failure.
const SKIP_WITHOUT_NUMPY = (() => {
  if (process.env.DELTASERVE_TEST_PYTHON === 'required') return false;
  if (spawnSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0) return false;
  const reason =
    'SKIPPED, NOT TESTED: python3 with numpy not installed (apt-get install python3-numpy); ' +
    'set DELTASERVE_TEST_PYTHON=required to make this a failure';
  console.error(`\n*** ${reason} ***\n`);
  return reason;
})();

const sha = (array: ArrayBufferView) =>
  createHash('sha256')
    .update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength))
    .digest('hex');

/** A delta whose weights need each index stream: dense-ish (bitmask), sparse (gaps8), very sparse (gaps16). */
function streamsDelta(): Delta {
  const base = sampleDelta('F16', 5);
  const sparse = (name: string, numel: number, step: number) => {
    const indices = Uint32Array.from({ length: Math.floor(numel / step) }, (_, k) => k * step + (k % 3));
    const values = Float32Array.from(indices, (_, k) => Math.sin(k) * 0.01);
    return { kind: 'sparse' as const, name, shape: [numel], indices, values, rescale: 2 };
  };
  return {
    metadata: base.metadata,
    tensors: [
      sparse('dense.part', 4096, 3),
      sparse('tenth.part', 4096, 9),
      sparse('odd.part', 4096, 11),
      sparse('sparse.part', 4096, 40),
      sparse('rare.part', 2_000_000, 70_001),
    ],
  };
}

test(
  'the Python reader decodes every file kind and every served zoo delta exactly as decodeDelta does',
  { skip: SKIP_WITHOUT_NUMPY },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deltaserve-pyreader-'));
    try {
      const files: string[] = [];
      const write = async (name: string, bytes: Uint8Array) => {
        const path = join(dir, name);
        await writeFile(path, bytes);
        files.push(path);
      };
      await write('v1-f32.safetensors', encodeDelta(sampleDelta('F32')));
      await write('v1-f16.safetensors', encodeDelta(sampleDelta('F16')));
      await write('v2-f16.safetensors', encodeDelta(quantizeDelta(sampleDelta('F16'), 'fp16')));
      await write('v2-f32.safetensors', encodeDelta(quantizeDelta(sampleDelta('F32'), 'fp16')));
      await write('v2-i8.safetensors', encodeDelta(quantizeDelta(sampleDelta('F16'), 'int8', 32)));
      await write('v2-i4.safetensors', encodeDelta(quantizeDelta(sampleDelta('F16'), 'int4', 7)));
      await write('v2-streams.safetensors', encodeDelta(quantizeDelta(streamsDelta(), 'int4', 64)));
      for (const task of await readdir(join(ROOT, 'models/tasks'))) {
        const path = join(ROOT, 'models/tasks', task, 'delta.safetensors');
        if (existsSync(path)) files.push(path);
      }
      const streams = decodeDelta(encodeDelta(quantizeDelta(streamsDelta(), 'int4', 64)));
      assert.ok(streams.tensors.length === 5);

      const run = spawnSync(PYTHON, [join(ROOT, 'docs/examples/read_delta.py'), ...files], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const lines = run.stdout
        .trim()
        .split('\n')
        .map(
          (line) =>
            JSON.parse(line) as {
              file: string;
              format_version: number;
              tensors: Record<string, { kind: string; nnz: number; indices_sha256?: string; values_sha256: string }>;
            },
        );
      assert.equal(lines.length, files.length);
      const versions = new Set<number>();
      for (const line of lines) {
        const { readFileSync } = await import('node:fs');
        const delta = decodeDelta(readFileSync(line.file));
        versions.add(delta.metadata.formatVersion);
        assert.equal(line.format_version, delta.metadata.formatVersion, line.file);
        assert.deepEqual(Object.keys(line.tensors).sort(), delta.tensors.map((t) => t.name).sort(), line.file);
        for (const t of delta.tensors) {
          const got = line.tensors[t.name]!;
          assert.equal(got.kind, t.kind, `${line.file} ${t.name}`);
          assert.equal(got.values_sha256, sha(t.values), `${line.file} ${t.name}: values`);
          if (t.kind === 'sparse') assert.equal(got.indices_sha256, sha(t.indices), `${line.file} ${t.name}: indices`);
        }
      }
      assert.deepEqual([...versions].sort(), [1, 2]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
