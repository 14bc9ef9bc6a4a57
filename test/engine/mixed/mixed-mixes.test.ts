/**
 * Mixed batches drawn at random against independently merged models: 16 distinct tasks,
 * repeated tasks, base-only requests, requests of several items, on the kernel the gateway
 * loads (native where it built) — and the same batches bit-identical on the portable kernel.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MixedPipeline, type MixedRequest } from '../../../src/engine/runtime/mixed/mixed-pipeline.js';
import { loadSideKernel } from '../../../src/engine/runtime/mixed/kernel/load-kernel.js';
import { NATIVE_EXPECTED } from './kernel-cases.js';
import { readFloatWeights } from '../../../src/onnx/weights.js';
import { SeededRng } from '../../../src/core/rng.js';
import {
  buildTinyZoo,
  mergeIndependently,
  runPlain,
  tokenBatch,
  maxAbsDiff,
  type TinyZoo,
} from '../../helpers/tiny-models.js';

const TASKS = 16;
let zoo: TinyZoo;
const expectedCache = new Map<string, Float32Array>();

before(async () => {
  zoo = await buildTinyZoo({ tasks: TASKS, dropRate: 0.9 });
});
after(async () => zoo.cleanup());

function drawBatch(
  rng: SeededRng,
  draw: number,
): { requests: MixedRequest[]; tasks: (number | null)[]; seeds: number[] } {
  const size = 1 + rng.nextInt(16);
  const tasks = Array.from({ length: size }, () => (rng.nextInt(5) === 0 ? null : rng.nextInt(TASKS)));
  const seeds = tasks.map((_, i) => draw * 100 + i);
  const requests = tasks.map((t, i) => ({
    inputs: tokenBatch(1 + rng.nextInt(2), 9, seeds[i]!),
    delta: t === null ? null : zoo.deltas[t]!,
  }));
  return { requests, tasks, seeds };
}

async function expected(task: number | null, request: MixedRequest, seed: number): Promise<Float32Array> {
  const key = `${task}:${seed}:${request.inputs.input_ids!.dims[0]}`;
  let value = expectedCache.get(key);
  if (!value) {
    value = await runPlain(task === null ? zoo.base : mergeIndependently(zoo.base, zoo.deltas[task]!), request.inputs);
    expectedCache.set(key, value);
  }
  return value;
}

test('random mixes of 16 tasks and the base equal their merged models, and the portable kernel gives the same bits', async () => {
  const weights = readFloatWeights(zoo.base);
  const session = { executionProvider: 'cpu' as const, intraOpThreads: 1 };
  const { kernel, reason } = loadSideKernel();
  if (NATIVE_EXPECTED)
    assert.notEqual(kernel.name, 'js', `native kernel expected (${reason}), else this compares JS with JS`);
  const { kernel: portable } = loadSideKernel({ prefer: 'js' });
  const served = await MixedPipeline.create(zoo.base, weights, weights, session, kernel);
  const reference = await MixedPipeline.create(zoo.base, weights, weights, session, portable);
  try {
    const rng = new SeededRng(2026);
    let distinctMax = 0;
    for (let draw = 0; draw < 12; draw++) {
      const { requests, tasks, seeds } = drawBatch(rng, draw);
      distinctMax = Math.max(distinctMax, new Set(tasks).size);
      const { outputs } = await served.run(requests);
      const { outputs: portableOutputs } = await reference.run(requests);
      for (const [i, request] of requests.entries()) {
        const got = outputs[i]!.logits!.data as Float32Array;
        const want = await expected(tasks[i]!, request, seeds[i]!);
        assert.ok(
          maxAbsDiff(got, want) <= 1e-5,
          `draw ${draw} request ${i} (task ${tasks[i]}): ${maxAbsDiff(got, want)}`,
        );
        assert.deepEqual(
          portableOutputs[i]!.logits!.data,
          got,
          `draw ${draw} request ${i}: ${kernel.name} and ${portable.name} differ`,
        );
      }
    }
    assert.ok(distinctMax >= 8, `the draws mixed many tasks in one batch (at most ${distinctMax})`);
  } finally {
    await served.release();
    await reference.release();
  }
});
