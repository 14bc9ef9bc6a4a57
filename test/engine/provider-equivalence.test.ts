/**
 * The engine in graph mode on every execution provider it supports here (test/helpers/providers.ts:
 * cpu, and webgpu on a Vulkan device — Mesa's lavapipe in CI), against models merged
 * independently of the engine and run on the plain CPU provider: synthetic deltas on the tiny
 * encoder and the demo zoo's served deltas on its ViT. One session per model and provider serves
 * the whole file, so WebGPU compiles its shaders once here (seconds on lavapipe).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { decodeDelta } from '../../src/deltas/format/delta-file.js';
import type { Delta } from '../../src/deltas/types.js';
import { loadSampleSet, sliceSamples } from '../../src/eval/dataset.js';
import { LocalRunner } from '../../src/eval/local-runner.js';
import { loadOnnxModel } from '../../src/onnx/model-file.js';
import type { onnx } from '../../src/onnx/proto.js';
import type { NamedTensors } from '../../src/engine/tensors.js';
import { SeededRng } from '../../src/core/rng.js';
import {
  buildTinyZoo,
  maxAbsDiff,
  mergeIndependently,
  runPlain,
  tokenBatch,
  type TinyZoo,
} from '../helpers/tiny-models.js';
import { TEST_PROVIDERS } from '../helpers/providers.js';

const MODELS = new URL('../../models', import.meta.url).pathname;
/** A delta must move the logits by more than this, or comparing within the tolerance proves nothing. */
const SMALLEST_EFFECT = 1e-2;

interface ZooTask {
  readonly name: string;
  readonly delta: Delta;
  readonly inputs: NamedTensors;
}

let tiny: TinyZoo;
let zooBase: onnx.ModelProto;
let zooTasks: ZooTask[];
const runners = new Map<string, LocalRunner>();

before(async () => {
  tiny = await buildTinyZoo({ tasks: 6 });
  const manifest = parse(await readFile(join(MODELS, 'zoo.yaml'), 'utf8')) as {
    base: { model: string; fingerprint: string };
    tasks: { name: string; delta: string; eval: string }[];
  };
  zooBase = await loadOnnxModel(join(MODELS, manifest.base.model));
  const cpu = await LocalRunner.open(join(MODELS, manifest.base.model), { mode: 'graph', intraOpThreads: 1 });
  try {
    zooTasks = [];
    for (const task of manifest.tasks) {
      const delta = decodeDelta(await readFile(join(MODELS, task.delta)), {
        baseShapes: cpu.base.patchableShapes,
        expectedBaseFingerprint: manifest.base.fingerprint,
      });
      const set = await loadSampleSet(join(MODELS, task.eval), cpu.base.io);
      zooTasks.push({ name: task.name, delta, inputs: sliceSamples(set.inputs, 0, 16) });
    }
  } finally {
    await cpu.close();
  }
});
after(async () => {
  for (const runner of runners.values()) await runner.close();
  await tiny?.cleanup();
});

/** The file's one runner per model and provider (created on first use, released at the end). */
async function runnerFor(
  model: 'tiny' | 'zoo',
  provider: (typeof TEST_PROVIDERS)[number]['provider'],
): Promise<LocalRunner> {
  const key = `${model}/${provider}`;
  let runner = runners.get(key);
  if (!runner) {
    runner = await LocalRunner.open(model === 'tiny' ? tiny.basePath : join(MODELS, 'base/model.onnx'), {
      mode: 'graph',
      intraOpThreads: 1,
      executionProvider: provider,
    });
    assert.equal(runner.base.executionProvider, provider, 'no silent fallback');
    runners.set(key, runner);
  }
  return runner;
}

const logits = (outputs: NamedTensors) => outputs.logits!.data as Float32Array;

for (const { provider, tolerance, skip } of TEST_PROVIDERS) {
  test(
    `${provider}: synthetic deltas and the base equal independently merged models within ${tolerance}`,
    { skip },
    async () => {
      const runner = await runnerFor('tiny', provider);
      const inputs = tokenBatch(4, 9, 11);
      const baseExpected = await runPlain(tiny.base, inputs);
      // Every task twice, interleaved, then the base: switching never leaves a previous delta behind.
      for (const t of [0, 1, 2, 3, 4, 5, 0, 3]) {
        const expected = await runPlain(mergeIndependently(tiny.base, tiny.deltas[t]!), inputs);
        assert.ok(maxAbsDiff(expected, baseExpected) > SMALLEST_EFFECT, `task ${t} changes the logits`);
        const diff = maxAbsDiff(logits(await runner.run(inputs, tiny.deltas[t]!)), expected);
        assert.ok(diff <= tolerance, `task ${t}: max abs diff ${diff}`);
      }
      const diff = maxAbsDiff(logits(await runner.run(inputs, null)), baseExpected);
      assert.ok(diff <= tolerance, `base: max abs diff ${diff}`);
    },
  );

  test(
    `${provider}: every demo zoo task's served delta equals base + delta merged independently within ${tolerance}, same predictions`,
    { skip },
    async () => {
      const runner = await runnerFor('zoo', provider);
      for (const task of zooTasks) {
        const expected = await runPlain(mergeIndependently(zooBase, task.delta), task.inputs);
        assert.ok(
          maxAbsDiff(expected, await runPlain(zooBase, task.inputs)) > SMALLEST_EFFECT,
          `${task.name} changes the logits`,
        );
        const got = logits(await runner.run(task.inputs, task.delta));
        const diff = maxAbsDiff(got, expected);
        assert.ok(diff <= tolerance, `${task.name}: max abs diff ${diff}`);
        assert.deepEqual(argmaxRows(got, 10), argmaxRows(expected, 10), `${task.name}: predictions`);
      }
    },
  );

  test(
    `${provider}: 100 random switches across the synthetic tasks and the base reproduce each first result bit for bit`,
    { skip },
    async () => {
      const runner = await runnerFor('tiny', provider);
      const inputs = tokenBatch(4, 9, 5);
      const choices: (Delta | null)[] = [null, ...tiny.deltas];
      const first = new Map<number, Float32Array>();
      const rng = new SeededRng(7);
      for (let i = 0; i < 100; i++) {
        const pick = rng.nextInt(choices.length);
        const out = logits(await runner.run(inputs, choices[pick]!));
        const seen = first.get(pick);
        if (seen) assert.deepEqual(out, seen, `switch ${i}, choice ${pick}`);
        else first.set(pick, out);
      }
      assert.equal(first.size, choices.length);
    },
  );
}

function argmaxRows(values: Float32Array, width: number): number[] {
  const rows: number[] = [];
  for (let r = 0; r < values.length / width; r++) {
    let best = 0;
    for (let c = 1; c < width; c++) if (values[r * width + c]! > values[r * width + best]!) best = c;
    rows.push(best);
  }
  return rows;
}
