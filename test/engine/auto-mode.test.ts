import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, MIXED_KEY, type AnyEngineEvent, type EngineOptions } from '../../src/engine/engine.js';
import type { TaskRef } from '../../src/deltas/types.js';
import { ONE_SESSION_EXPECTED } from './mixed/one-session-cases.js';
import {
  buildTinyZoo,
  maxAbsDiff,
  mergeIndependently,
  writeTaskFiles,
  runPlain,
  tokenBatch,
  type TinyZoo,
} from '../helpers/tiny-models.js';
import { testEngineOptions } from '../helpers/engine-options.js';

let zoo: TinyZoo;
const refs: TaskRef[] = [];

before(async () => {
  zoo = await buildTinyZoo({ tasks: 3 });
  refs.push(...(await writeTaskFiles(zoo.dir, zoo.deltas)));
});
after(async () => zoo.cleanup());

const autoOptions = (events: AnyEngineEvent[]): EngineOptions =>
  testEngineOptions({ modelPath: zoo.basePath, deltaDir: zoo.dir, mode: 'auto', events });

/** Starts with `DELTASERVE_MIXED_PIPELINE` set as given while the worker starts (it copies the environment then). */
async function startWithPipeline(value: string | undefined, events: AnyEngineEvent[]): Promise<Engine> {
  const saved = process.env.DELTASERVE_MIXED_PIPELINE;
  if (value === undefined) delete process.env.DELTASERVE_MIXED_PIPELINE;
  else process.env.DELTASERVE_MIXED_PIPELINE = value;
  try {
    return await Engine.start(autoOptions(events));
  } finally {
    if (saved === undefined) delete process.env.DELTASERVE_MIXED_PIPELINE;
    else process.env.DELTASERVE_MIXED_PIPELINE = saved;
  }
}

/** Concurrent requests of every task; each must equal its own merged model. */
async function serveAll(engine: Engine): Promise<void> {
  for (const ref of refs) await engine.load(ref);
  const jobs = Array.from({ length: 12 }, (_, i) => i % refs.length);
  const results = await Promise.all(jobs.map((t, i) => engine.infer(refs[t]!, tokenBatch(1, 5, 10 + i))));
  for (const [i, t] of jobs.entries()) {
    const want = await runPlain(mergeIndependently(zoo.base, zoo.deltas[t]!), tokenBatch(1, 5, 10 + i));
    const got = results[i]!.outputs.logits!.data as Float32Array;
    assert.ok(maxAbsDiff(got, want) <= 1e-5, `job ${i} (task ${t}): ${maxAbsDiff(got, want)}`);
  }
}

const batchKeys = (events: AnyEngineEvent[]) =>
  events.filter((e): e is Extract<AnyEngineEvent, { type: 'batch' }> => e.type === 'batch').map((e) => e.key);

test(
  'engine.mode auto serves in mixed mode where the one-session pipeline starts, and says so',
  { skip: ONE_SESSION_EXPECTED ? false : 'DELTASERVE_MIXED_PIPELINE=segments: no one-session pipeline in this run' },
  async () => {
    const events: AnyEngineEvent[] = [];
    const engine = await startWithPipeline(undefined, events);
    try {
      assert.equal(engine.readyInfo?.mode, 'mixed');
      assert.equal(engine.readyInfo?.kernel?.pipeline, 'custom-op');
      assert.match(engine.readyInfo?.modeChoice ?? '', /^auto: mixed/);
      await serveAll(engine);
      assert.ok(batchKeys(events).includes(MIXED_KEY), 'requests ran in mixed batches');
    } finally {
      await engine.close();
    }
  },
);

test('engine.mode auto serves in patch mode, with the reason, where only the segment pipeline could run', async () => {
  const events: AnyEngineEvent[] = [];
  const engine = await startWithPipeline('segments', events);
  try {
    assert.equal(engine.readyInfo?.mode, 'patch');
    assert.equal(engine.readyInfo?.kernel, null);
    assert.match(engine.readyInfo?.modeChoice ?? '', /^auto: patch, because .*DELTASERVE_MIXED_PIPELINE=segments/);
    await serveAll(engine);
    const keys = batchKeys(events);
    assert.ok(keys.length > 0 && !keys.includes(MIXED_KEY), `every batch held one task: ${keys.join(', ')}`);
  } finally {
    await engine.close();
  }
});

test('a configured mode is not second-guessed: modeChoice is null', async () => {
  const engine = await Engine.start(testEngineOptions({ modelPath: zoo.basePath, deltaDir: zoo.dir, mode: 'patch' }));
  try {
    assert.equal(engine.readyInfo?.mode, 'patch');
    assert.equal(engine.readyInfo?.modeChoice, null);
  } finally {
    await engine.close();
  }
});
