/**
 * The committed demo zoo is what `npm start` serves and what docs/compression.md claims: these
 * tests hold the files to the manifest and the manifest to the measurements.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { buildDelta } from '../../src/compress/build-delta.js';
import { evalCommand } from '../../src/cli/commands/eval.js';
import { LocalRunner } from '../../src/eval/local-runner.js';
import { loadSampleSet, sliceSamples } from '../../src/eval/dataset.js';
import { loadOnnxModel } from '../../src/onnx/model-file.js';
import { readFloatWeights } from '../../src/onnx/weights.js';

const MODELS = new URL('../../models', import.meta.url).pathname;

interface ManifestTask {
  name: string;
  version: string;
  delta: string;
  sha256: string;
  labels: string[];
  numClasses: number;
  accuracy: number;
  eval: string;
}
interface Manifest {
  base: { model: string; fingerprint: string; labels: string[] };
  tasks: ManifestTask[];
}
interface Report {
  tasks: { name: string; served: { accuracy: number; sha256: string } }[];
}

let manifest: Manifest;
let report: Report;
let runner: LocalRunner;

before(async () => {
  manifest = parse(await readFile(join(MODELS, 'zoo.yaml'), 'utf8')) as Manifest;
  report = JSON.parse(await readFile(join(MODELS, 'zoo-report.json'), 'utf8')) as Report;
  runner = await LocalRunner.open(join(MODELS, manifest.base.model));
});
after(async () => runner.close());

test('the manifest lists at least six tasks with labels, and the base fingerprint matches the model', () => {
  assert.ok(manifest.tasks.length >= 6);
  assert.equal(runner.base.fingerprint, manifest.base.fingerprint);
  for (const task of manifest.tasks) {
    assert.equal(task.labels.length, task.numClasses, task.name);
    assert.ok(task.numClasses >= 2 && task.numClasses <= 10, task.name);
  }
});

test('every served delta matches its checksum, and `eval` of the file gives the reported accuracy (to one sample)', async () => {
  for (const task of manifest.tasks) {
    const bytes = await readFile(join(MODELS, task.delta));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), task.sha256, `${task.name}: checksum`);
    // The CLI's own eval, as a user would run it. Equal on the machine that built the zoo; one
    // sample of slack because another CPU's kernels may round a near-tie logit the other way.
    const { accuracy, samples } = await evalCommand([
      '--base',
      join(MODELS, manifest.base.model),
      '--delta',
      join(MODELS, task.delta),
      '--data',
      join(MODELS, task.eval),
      '--classes',
      String(task.numClasses),
    ]);
    const reported = report.tasks.find((t) => t.name === task.name)!.served.accuracy;
    assert.ok(
      Math.abs(accuracy - reported) <= 1 / samples + 1e-12,
      `${task.name}: eval says ${accuracy}, the report ${reported}`,
    );
    assert.ok(Math.abs(accuracy - task.accuracy) <= 1 / samples + 1e-4, `${task.name}: manifest says ${task.accuracy}`);
  }
});

test('each fine-tuned ONNX and base + its p = 0 delta agree within 1e-5', async () => {
  const baseWeights = readFloatWeights(await loadOnnxModel(join(MODELS, manifest.base.model)));
  let adamrCompared = 0;
  for (const task of manifest.tasks) {
    // task.json says which tasks have an AdamR fine-tune; those files must be there.
    const info = JSON.parse(await readFile(join(MODELS, 'tasks', task.name, 'task.json'), 'utf8')) as {
      finetune: { adamr?: unknown };
    };
    const files = info.finetune.adamr ? ['finetuned.onnx', 'finetuned-adamr.onnx'] : ['finetuned.onnx'];
    adamrCompared += files.length - 1;
    for (const file of files) {
      const path = join(MODELS, 'tasks', task.name, file);
      const tuned = await loadOnnxModel(path);
      const full = buildDelta(baseWeights, readFloatWeights(tuned), {
        method: 'dare',
        dropRate: 0,
        seed: 0,
        valueDtype: 'F32',
        selection: { include: [], exclude: [], dense: [] },
        baseFingerprint: manifest.base.fingerprint,
      });
      const set = await loadSampleSet(join(MODELS, task.eval), runner.base.io);
      const inputs = sliceSamples(set.inputs, 0, 64);
      const direct = await LocalRunner.open(path);
      try {
        const expected = (await direct.run(inputs, null)).logits!.data as Float32Array;
        const got = (await runner.run(inputs, full)).logits!.data as Float32Array;
        let max = 0;
        for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i]! - expected[i]!));
        assert.ok(max <= 1e-5, `${task.name}/${file}: max abs diff ${max}`);
      } finally {
        await direct.close();
      }
    }
  }
  assert.ok(adamrCompared >= 2, `the issue asks for at least two AdamR fine-tunes, found ${adamrCompared}`);
});
