/**
 * Benchmark fixtures, generated on demand into bench/.work/ (git-ignored) and reused across
 * runs: the BERT-base-shaped synthetic encoder and 100 synthetic task deltas per drop rate.
 * A synthetic task's delta is a DARE mask over every weight with values drawn like a real SFT
 * delta (N(0, 0.002)) and rescaled by 1/(1 − p); what the engine does with it does not depend
 * on where the values came from.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SeededRng } from '../src/core/rng.js';
import { dareKeptIndices } from '../src/compress/dare.js';
import { encodeDelta } from '../src/deltas/format/delta-file.js';
import { quantizeDelta } from '../src/compress/quantize.js';
import type { Delta, TensorDelta } from '../src/deltas/types.js';
import { loadOnnxModel, saveOnnxModel } from '../src/onnx/model-file.js';
import { fingerprintWeights } from '../src/onnx/fingerprint.js';
import { readFloatWeights } from '../src/onnx/weights.js';
import { BERT_BASE_SHAPE, buildSyntheticEncoder } from '../src/onnx/synthetic.js';

export const WORK_DIR = new URL('.work', import.meta.url).pathname;
export const TASKS = 100;
export const DELTA_SCALE = 0.002;

export interface TaskFixture {
  readonly key: string;
  readonly uri: string;
  readonly sha256: string;
}

export interface Fixtures {
  readonly basePath: string;
  readonly tasks: readonly TaskFixture[];
}

/** The deltas' values: fp16 (format version 1), or int4 codes as `compress --values int4` writes them (version 2). */
export type FixtureValues = 'fp16' | 'int4';

export async function ensureFixtures(
  dropRate: number,
  log: (line: string) => void,
  values: FixtureValues = 'fp16',
): Promise<Fixtures> {
  await mkdir(WORK_DIR, { recursive: true });
  const basePath = join(WORK_DIR, 'bert-base.onnx');
  if (!existsSync(basePath)) {
    log('generating the BERT-base-shaped base model');
    await saveOnnxModel(buildSyntheticEncoder({ ...BERT_BASE_SHAPE, seed: 1 }), basePath);
  }
  const suffix = values === 'fp16' ? '' : `-${values}`;
  const manifestPath = join(WORK_DIR, `tasks-p${dropRate}${suffix}.json`);
  if (existsSync(manifestPath))
    return { basePath, tasks: JSON.parse(await readFile(manifestPath, 'utf8')) as TaskFixture[] };

  const weights = readFloatWeights(await loadOnnxModel(basePath));
  const fingerprint = fingerprintWeights(weights);
  const tasks: TaskFixture[] = [];
  for (let t = 0; t < TASKS; t++) {
    const fp16 = syntheticDelta(weights, fingerprint, dropRate, t);
    const bytes = encodeDelta(values === 'int4' ? quantizeDelta(fp16, 'int4') : fp16);
    const uri = `task-${t}-p${dropRate}${suffix}.safetensors`;
    await writeFile(join(WORK_DIR, uri), bytes);
    tasks.push({
      key: `task-${t}@p${dropRate}${suffix}`,
      uri,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
    if (t % 10 === 9) log(`wrote ${t + 1}/${TASKS} deltas at p=${dropRate}`);
  }
  await writeFile(manifestPath, JSON.stringify(tasks));
  return { basePath, tasks };
}

export function syntheticDelta(
  weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  fingerprint: string,
  dropRate: number,
  seed: number,
): Delta {
  const rng = new SeededRng(seed + 1000);
  const rescale = 1 / (1 - dropRate);
  const tensors: TensorDelta[] = [];
  for (const [name, weight] of [...weights].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const indices = dareKeptIndices(weight.data.length, dropRate, rng);
    const values = new Float32Array(indices.length);
    for (let k = 0; k < values.length; k++) values[k] = rng.nextNormal() * DELTA_SCALE * rescale;
    tensors.push({ kind: 'sparse', name, shape: weight.shape, indices, values, rescale });
  }
  return {
    metadata: {
      formatVersion: 1,
      baseFingerprint: fingerprint,
      method: 'dare',
      dropRate,
      rescale,
      seed,
      valueDtype: 'F16',
      sourceBaseSha256: null,
      sourceFinetunedSha256: null,
      extra: { synthetic: 'bench' },
    },
    tensors,
  };
}
