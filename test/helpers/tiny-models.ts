/**
 * A tiny synthetic base model on disk plus fine-tuned deltas of it, built in memory per test
 * file (never committed). Deltas are made with the real compressor, so engine tests exercise
 * what the gateway serves.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildDelta, type PruneMethod } from '../../src/compress/build-delta.js';
import type { Delta, TaskRef } from '../../src/deltas/types.js';
import { encodeDelta } from '../../src/deltas/format/delta-file.js';
import { encodeOnnxModel, saveOnnxModel } from '../../src/onnx/model-file.js';
import { fingerprintWeights } from '../../src/onnx/fingerprint.js';
import { readFloatWeights, withFloatWeights } from '../../src/onnx/weights.js';
import { TINY_ENCODER, buildSyntheticEncoder, syntheticFinetune } from '../../src/onnx/synthetic.js';
import type { onnx } from '../../src/onnx/proto.js';
import { SeededRng } from '../../src/core/rng.js';
import type { NamedTensors } from '../../src/engine/tensors.js';

export interface TinyZoo {
  readonly dir: string;
  readonly basePath: string;
  readonly base: onnx.ModelProto;
  readonly fingerprint: string;
  readonly deltas: Delta[];
  cleanup(): Promise<void>;
}

export async function buildTinyZoo(options: {
  tasks: number;
  dropRate?: number;
  method?: PruneMethod;
  scale?: number;
  seed?: number;
}): Promise<TinyZoo> {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-test-'));
  const seed = options.seed ?? 1;
  const base = buildSyntheticEncoder({ ...TINY_ENCODER, seed });
  const basePath = join(dir, 'base.onnx');
  await saveOnnxModel(base, basePath);
  const baseWeights = readFloatWeights(base);
  const fingerprint = fingerprintWeights(baseWeights);
  const deltas: Delta[] = [];
  for (let t = 0; t < options.tasks; t++) {
    const tuned = readFloatWeights(syntheticFinetune(base, { scale: options.scale ?? 0.02, seed: seed * 1000 + t }));
    deltas.push(
      buildDelta(baseWeights, tuned, {
        method: options.method ?? 'dare',
        dropRate: options.dropRate ?? 0.9,
        seed: t,
        valueDtype: 'F32',
        selection: { include: [], exclude: [], dense: ['classifier*'] },
        baseFingerprint: fingerprint,
      }),
    );
  }
  return { dir, basePath, base, fingerprint, deltas, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface DeltaFile {
  readonly file: string;
  readonly sha256: string;
  readonly bytes: Uint8Array;
}

/** Encodes `delta` into `dir/file`. */
export async function writeDelta(dir: string, file: string, delta: Delta): Promise<DeltaFile> {
  const bytes = encodeDelta(delta);
  await writeFile(join(dir, file), bytes);
  return { file, sha256: createHash('sha256').update(bytes).digest('hex'), bytes };
}

/** Writes delta i as `task-<i>.safetensors` in `dir` and returns the engine's refs to them (`task-<i>@1`). */
export async function writeTaskFiles(dir: string, deltas: readonly Delta[]): Promise<TaskRef[]> {
  const refs: TaskRef[] = [];
  for (const [i, delta] of deltas.entries()) {
    const { file, sha256 } = await writeDelta(dir, `task-${i}.safetensors`, delta);
    refs.push({ key: `task-${i}@1`, uri: file, sha256 });
  }
  return refs;
}

/** base + delta merged independently of the engine: plain float32 adds into a copy of each weight. */
export function mergeIndependently(base: onnx.ModelProto, delta: Delta): onnx.ModelProto {
  const weights = readFloatWeights(base);
  const merged = new Map<string, Float32Array>();
  for (const tensor of delta.tensors) {
    const data = weights.get(tensor.name)!.data.slice();
    if (tensor.kind === 'dense') tensor.values.forEach((v, i) => (data[i] = data[i]! + v));
    else tensor.indices.forEach((i, k) => (data[i] = data[i]! + tensor.values[k]!));
    merged.set(tensor.name, data);
  }
  return withFloatWeights(base, merged);
}

export async function runPlain(model: onnx.ModelProto, inputs: NamedTensors): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeOnnxModel(model));
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const out = await session.run(feeds);
    return out.logits!.data as Float32Array;
  } finally {
    await session.release();
  }
}

export function tokenBatch(batch: number, seq: number, seed: number): NamedTensors {
  const rng = new SeededRng(seed);
  const data = BigInt64Array.from({ length: batch * seq }, () => BigInt(rng.nextInt(TINY_ENCODER.vocab)));
  return { input_ids: { type: 'int64', dims: [batch, seq], data } };
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
