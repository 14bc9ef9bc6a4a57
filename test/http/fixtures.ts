/**
 * Shared fixtures of the gateway tests: configurations built in code, delta files on disk for
 * the tiny synthetic encoder (test/helpers/tiny-models.ts) and for a tiny 28×28 image
 * classifier (so the classify route runs end to end), a fake engine for route tests, and a
 * server started on an ephemeral port.
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { sha256Hex } from '../../src/core/sha256.js';
import type { GatewayConfig } from '../../src/core/config.js';
import { validateConfig } from '../../src/core/config-validate.js';
import { DS_ERR_CONFIG_INVALID, DS_ERR_TASK_UNAVAILABLE } from '../../src/core/errors.js';
import type { Delta, TaskRef } from '../../src/deltas/types.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import type { AnyEngineEvent, EngineListener, InferOptions, InferResult } from '../../src/engine/engine.js';
import { serializeError, type ReadyInfo } from '../../src/engine/protocol.js';
import type { NamedTensors } from '../../src/engine/tensors.js';
import { PerTaskTasks, type PerTaskBatching } from '../../src/engine/per-task-batching.js';
import type { EngineStats, InferenceEngine } from '../../src/http/inference-engine.js';
import type { ModelIO } from '../../src/onnx/io-signature.js';
import { saveOnnxModel } from '../../src/onnx/model-file.js';
import { onnx } from '../../src/onnx/proto.js';
import { fingerprintWeights } from '../../src/onnx/fingerprint.js';
import { readFloatWeights } from '../../src/onnx/weights.js';
import { float32ToLittleEndian, int64ToLittleEndian } from '../../src/onnx/tensor-layout.js';
import { SeededRng } from '../../src/core/rng.js';
import { createLogger } from '../../src/server.js';

export const TENANT_A_KEY = 'key-of-tenant-a';
export const TENANT_B_KEY = 'key-of-tenant-b';
export const ADMIN_KEY = 'the-admin-key';

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** A validated config from a raw object (defaults filled in, paths resolved against `dir`). */
export function makeConfig(raw: Record<string, unknown>, dir = '/tmp'): GatewayConfig {
  return validateConfig(raw, {
    baseDir: dir,
    source: 'test',
    fail: (field, reason) => {
      throw new DS_ERR_CONFIG_INVALID('test', field, reason);
    },
  });
}

/** Two tenants and an admin key; tenant A sees `alpha` (+ aliases), tenant B sees `beta`. */
export function twoTenantRaw(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model: { path: 'model.onnx' },
    tenants: [
      {
        name: 'tenant-a',
        keySha256: [sha256Hex(TENANT_A_KEY)],
        tasks: ['alpha', 'base'],
        aliases: { 'my-alpha': 'alpha@1' },
      },
      { name: 'tenant-b', keySha256: [sha256Hex(TENANT_B_KEY)], tasks: ['beta'] },
    ],
    admin: { keySha256: [sha256Hex(ADMIN_KEY)] },
    logLevel: 'silent',
    ...extra,
  };
}

export { writeDelta, type DeltaFile } from '../helpers/tiny-models.js';

// --- a tiny image classifier: pixels [N,1,28,28] → flatten → MatMul [784,10] → + bias → logits

export const IMAGE_LABELS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

export interface ImageModel {
  readonly path: string;
  readonly fingerprint: string;
  readonly weights: ReturnType<typeof readFloatWeights>;
}

export async function writeImageModel(dir: string, seed = 3): Promise<ImageModel> {
  const rng = new SeededRng(seed);
  const weight = Float32Array.from({ length: 784 * 10 }, () => (rng.nextFloat() - 0.5) * 0.01);
  const bias = new Float32Array(10);
  const tensor = (name: string, dims: number[], data: Float32Array): onnx.ITensorProto => ({
    name,
    dims,
    dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: float32ToLittleEndian(data),
  });
  const value = (name: string, dims: (string | number)[]): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'deltaserve-tests',
    graph: {
      name: 'tiny-image-classifier',
      node: [
        {
          name: 'shape',
          opType: 'Constant',
          output: ['flat_shape'],
          attribute: [
            {
              name: 'value',
              type: onnx.AttributeProto.AttributeType.TENSOR,
              t: {
                name: 'flat_shape',
                dims: [2],
                dataType: onnx.TensorProto.DataType.INT64,
                rawData: int64ToLittleEndian([-1, 784]),
              },
            },
          ],
        },
        { name: 'flatten', opType: 'Reshape', input: ['pixels', 'flat_shape'], output: ['flat'] },
        { name: 'matmul', opType: 'MatMul', input: ['flat', 'fc.weight'], output: ['projected'] },
        { name: 'add', opType: 'Add', input: ['projected', 'fc.bias'], output: ['logits'] },
      ],
      initializer: [tensor('fc.weight', [784, 10], weight), tensor('fc.bias', [10], bias)],
      input: [value('pixels', ['batch', 1, 28, 28])],
      output: [value('logits', ['batch', 10])],
    },
  });
  const path = join(dir, 'image-model.onnx');
  await saveOnnxModel(model, path);
  const weights = readFloatWeights(model);
  return { path, fingerprint: fingerprintWeights(weights), weights };
}

/** A delta that adds `boost` to one class's bias: every image then lands on that class. */
export function biasDelta(fingerprint: string, winner: number, boost = 50): Delta {
  return {
    metadata: {
      formatVersion: 1,
      baseFingerprint: fingerprint,
      method: 'magnitude',
      dropRate: 0.9,
      rescale: 1,
      seed: null,
      valueDtype: 'F32',
      sourceBaseSha256: null,
      sourceFinetunedSha256: null,
      extra: {},
    },
    tensors: [
      {
        kind: 'sparse',
        name: 'fc.bias',
        shape: [10],
        indices: Uint32Array.of(winner),
        values: Float32Array.of(boost),
        rescale: 1,
      },
    ],
  };
}

// --- a fake engine for route tests ----------------------------------------------------------

export const FAKE_IO: ModelIO = {
  inputs: [{ name: 'pixels', datatype: 'FP32', shape: [-1, 1, 28, 28], dimNames: ['batch', null, null, null] }],
  outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10], dimNames: ['batch', null] }],
};

export interface FakeCall {
  readonly task: TaskRef | null;
  readonly inputs: NamedTensors;
  readonly options: InferOptions;
}

/**
 * Answers every request with logits where class `winnerOf(task)` wins; `behaviour` can make a
 * call fail or wait (e.g. on a gate the test opens). Loads report what the real engine's worker
 * reports (a miss, then the load or its failure), so task states follow engine events here too;
 * `loadBehaviour` throws what the worker's load would fail with.
 */
export class FakeEngine implements InferenceEngine {
  ready = true;
  readonly restartCount = 0;
  readonly calls: FakeCall[] = [];
  readonly loaded: string[] = [];
  readonly pinned = new Set<string>();
  readonly evicted: string[] = [];
  behaviour: (call: FakeCall) => Promise<void> | void = () => undefined;
  loadBehaviour: (task: TaskRef) => Promise<void> | void = () => undefined;
  /** Logits per row in answers (large values make large answers). */
  outputWidth = 10;
  /** What admissionError() answers: set it to make the queues look full. */
  overloadedNow: Error | null = null;
  private readonly listeners = new Set<EngineListener>();
  private readonly perTask = new PerTaskTasks();
  readonly readyInfo: ReadyInfo = {
    io: FAKE_IO,
    fingerprint: 'ab'.repeat(32),
    mode: 'patch',
    modeChoice: null,
    kernel: null,
    patchableWeights: 2,
    residentWeightBytes: 0,
    startMs: 1,
    executionProvider: 'cpu',
    fallbackReason: null,
  };

  get modelIO(): ModelIO {
    return FAKE_IO;
  }

  async infer(task: TaskRef | null, inputs: NamedTensors, options: InferOptions = {}): Promise<InferResult> {
    const call = { task, inputs, options };
    this.calls.push(call);
    await this.behaviour(call);
    const batch = inputs.pixels?.dims[0] ?? 1;
    const width = this.outputWidth;
    const data = new Float32Array(batch * width);
    const winner = task === null ? 0 : (Number(task.key.split('@')[1]) || 1) % 10;
    if (width > 10) data.fill(0.123456789);
    for (let b = 0; b < batch; b++) data[b * width + winner] = 5;
    return {
      outputs: { logits: { type: 'float32', dims: [batch, width], data } },
      queueMs: 0,
      cacheHit: true,
      activationMs: 0,
      batchSize: 1,
      inferMs: 0.1,
    };
  }

  subscribe(listener: EngineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: AnyEngineEvent): void {
    this.perTask.observe(event);
    for (const listener of this.listeners) listener(event);
  }

  perTaskBatchingOf(key: string): PerTaskBatching | null {
    return this.perTask.of(key);
  }

  admissionError(): Error | null {
    return this.overloadedNow;
  }

  async load(task: TaskRef): Promise<void> {
    this.emit({ type: 'cache', kind: 'miss', key: task.key });
    try {
      await this.loadBehaviour(task);
    } catch (error) {
      this.emit({ type: 'cache', kind: 'load-failed', key: task.key, ms: 1, error: serializeError(error) });
      throw new DS_ERR_TASK_UNAVAILABLE(task.key, (error as Error).message);
    }
    this.emit({
      type: 'cache',
      kind: 'load',
      key: task.key,
      bytes: 1,
      fileBytes: 1,
      ms: 1,
      phases: { fetch: 1, verify: 0, decode: 0 },
    });
    this.loaded.push(task.key);
  }

  async pin(task: TaskRef): Promise<void> {
    await this.load(task);
    this.pinned.add(task.key);
  }

  async unpin(key: string): Promise<void> {
    this.pinned.delete(key);
  }

  async evict(key: string): Promise<void> {
    this.pinned.delete(key);
    this.evicted.push(key);
    this.emit({ type: 'dropped', key });
  }

  async stats(): Promise<EngineStats> {
    return {
      worker: {
        activeKey: null,
        cache: {
          entries: this.loaded.length,
          bytes: 0,
          fileBytes: 0,
          maxBytes: 1,
          pinned: [...this.pinned],
          keys: [...new Set(this.loaded)],
          hits: 0,
          misses: 0,
          evictions: 0,
          loadFailures: 0,
        },
        rssBytes: 0,
        residentWeightBytes: 0,
      },
      queued: 0,
      restarts: 0,
      ready: this.ready,
    };
  }

  async close(): Promise<void> {
    this.ready = false;
  }
}

/** Flat 28×28 pixel request body for the fake engine's `pixels` input. */
/** A registry of one declared task, `alpha@1`, whose delta no test loads (the engine is a FakeEngine). */
export function alphaRegistry(): Promise<TaskRegistry> {
  return TaskRegistry.open({
    declared: [
      {
        name: 'alpha',
        version: '1',
        uri: 'alpha.safetensors',
        sha256: 'a'.repeat(64),
        description: '',
        labels: null,
        numClasses: null,
      },
    ],
    stateFile: null,
  });
}

export function pixelsBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array<number>(784).fill(0.5) }],
    ...extra,
  };
}

/** A logger whose lines are collected (to check what gets logged). */
export function capturingLogger(level: 'info' | 'silent' = 'info'): {
  logger: ReturnType<typeof createLogger>;
  lines: string[];
} {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: createLogger({ logLevel: level }, stream), lines };
}

export async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: '127.0.0.1', port: 0 });
}
