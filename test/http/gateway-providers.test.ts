/**
 * The demo zoo served through the whole gateway (`bootGateway` as `deltaserve serve` does:
 * manifest, worker thread, scheduler, delta cache, real HTTP) on every execution provider the
 * tests cover (test/helpers/providers.ts: cpu, and webgpu on a Vulkan device — lavapipe in CI),
 * in graph mode, and on the CPU in mixed and patch mode, with concurrent requests across every task and the base. Each answer must
 * equal the base + that task's delta merged independently and run on the plain CPU provider.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { parse } from 'yaml';
import { sha256Hex } from '../../src/core/sha256.js';
import { decodeDelta } from '../../src/deltas/format/delta-file.js';
import { loadSampleSet, sliceSamples } from '../../src/eval/dataset.js';
import { describeModelIO } from '../../src/onnx/io-signature.js';
import { loadOnnxModel } from '../../src/onnx/model-file.js';
import { readFloatWeights } from '../../src/onnx/weights.js';
import { bootGateway } from '../../src/server.js';
import { mergeIndependently, maxAbsDiff, runPlain } from '../helpers/tiny-models.js';
import { TEST_PROVIDERS } from '../helpers/providers.js';
import { makeConfig } from './fixtures.js';

const MODELS = new URL('../../models', import.meta.url).pathname;
const SAMPLES = 8;
const PER_REQUEST = 2;

interface Case {
  readonly model: string;
  /** `SAMPLES` images, flat, and the reference logits for them. */
  readonly pixels: Float32Array;
  readonly expected: Float32Array;
}

const cases: Case[] = [];

before(async () => {
  const manifest = parse(await readFile(join(MODELS, 'zoo.yaml'), 'utf8')) as {
    base: { model: string };
    tasks: { name: string; delta: string; eval: string }[];
  };
  const base = await loadOnnxModel(join(MODELS, manifest.base.model));
  const io = describeModelIO(base);
  const baseShapes = new Map([...readFloatWeights(base)].map(([name, w]) => [name, w.shape as readonly number[]]));
  for (const task of manifest.tasks) {
    const inputs = sliceSamples((await loadSampleSet(join(MODELS, task.eval), io)).inputs, 0, SAMPLES);
    const delta = decodeDelta(await readFile(join(MODELS, task.delta)), { baseShapes });
    const expected = await runPlain(mergeIndependently(base, delta), inputs);
    assert.ok(
      maxAbsDiff(expected, await runPlain(base, inputs)) > 1e-2,
      `${task.name}: its delta changes the logits, so a gateway ignoring it fails`,
    );
    cases.push({ model: task.name, pixels: inputs.pixels!.data as Float32Array, expected });
    if (cases.length === 1)
      cases.push({
        model: 'base',
        pixels: inputs.pixels!.data as Float32Array,
        expected: await runPlain(base, inputs),
      });
  }
});

const RUNS = [
  ...TEST_PROVIDERS.map(({ provider, tolerance, skip }) => ({ provider, mode: 'graph' as const, tolerance, skip })),
  // Mixed mode: the batches below hold requests of every task and the base at once.
  { provider: 'cpu' as const, mode: 'mixed' as const, tolerance: 1e-5, skip: false },
  // Patch mode keeps the fp16 zoo deltas' values as fp16 in its cache and widens them as it patches.
  { provider: 'cpu' as const, mode: 'patch' as const, tolerance: 1e-5, skip: false },
];

for (const { provider, mode, tolerance, skip } of RUNS) {
  test(
    `${provider}, ${mode} mode: the gateway serves every demo zoo task and the base over HTTP, equal to independently merged models within ${tolerance}`,
    { skip },
    async () => {
      const config = makeConfig({
        listen: { host: '127.0.0.1', port: 0 },
        model: { manifest: join(MODELS, 'zoo.yaml') },
        engine: { executionProvider: provider, mode, intraOpThreads: 1 },
        batching: { maxBatchSize: 16 },
        tenants: [{ name: 'client', keySha256: [sha256Hex('client-key')], tasks: ['*'] }],
        logLevel: 'silent',
        shutdownGraceMs: 2000,
      });
      const gateway = await bootGateway(config);
      try {
        assert.equal(
          gateway.engine.readyInfo?.executionProvider,
          provider,
          'runs on the configured provider, no fallback',
        );
        assert.equal(gateway.engine.readyInfo?.mode, mode);
        const url = await gateway.listen();
        // Every request at once: the scheduler batches and switches tasks (or mixes them) under load.
        const jobs = cases.flatMap((c) => Array.from({ length: SAMPLES / PER_REQUEST }, (_, k) => ({ c, k })));
        const answers = await Promise.all(jobs.map(({ c, k }) => infer(url, c, k)));
        jobs.forEach(({ c, k }, i) => {
          const rows = c.expected.length / SAMPLES;
          const want = c.expected.subarray(k * PER_REQUEST * rows, (k + 1) * PER_REQUEST * rows);
          const diff = maxAbsDiff(answers[i]!, want);
          assert.ok(diff <= tolerance, `${c.model} request ${k}: max abs diff ${diff}`);
        });
        const stats = gateway.engine.schedulerStats();
        if (mode === 'mixed') {
          assert.ok(stats.mixedBatches > 0, 'batches held several tasks');
          const metadata = await request(`${url}/v2/models/${cases[0]!.model}`, {
            headers: { authorization: 'Bearer client-key' },
          });
          const body = (await metadata.body.json()) as { parameters: { batching: string } };
          assert.equal(body.parameters.batching, 'mixed');
        } else {
          assert.equal(stats.mixedBatches, 0);
        }
      } finally {
        await gateway.shutdown();
      }
    },
  );
}

async function infer(url: string, c: Case, k: number): Promise<Float32Array> {
  const size = c.pixels.length / SAMPLES;
  const data = Array.from(c.pixels.subarray(k * PER_REQUEST * size, (k + 1) * PER_REQUEST * size));
  const response = await request(`${url}/v2/models/${c.model}/infer`, {
    method: 'POST',
    headers: { authorization: `Bearer client-key`, 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'pixels', shape: [PER_REQUEST, 1, 28, 28], datatype: 'FP32', data }] }),
  });
  const body = (await response.body.json()) as { outputs?: { name: string; shape: number[]; data: number[] }[] };
  assert.equal(response.statusCode, 200, `${c.model}: ${JSON.stringify(body)}`);
  const logits = body.outputs!.find((o) => o.name === 'logits')!;
  assert.deepEqual(logits.shape, [PER_REQUEST, 10]);
  return Float32Array.from(logits.data);
}
