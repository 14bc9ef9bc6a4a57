/**
 * Cost of the label-free calibrated compressions on the BERT-base-shaped synthetic encoder
 * (12 × 768 / 3072, ~86 M parameters): input-norm collection, the importance mask, one global
 * α (the q search, 20 passes) and per-tensor scales, each pass a full forward of the
 * calibration batch through the engine's CPU path (LocalRunner, patch mode). Calibration is
 * 4 random token sequences of 16 tokens, to keep the run to minutes on a shared 2-core machine;
 * a pass costs roughly in proportion to the tokens in it (256 × 128 tokens: ~500× more). The
 * per-tensor search runs one sweep here (its passes scale linearly with sweeps; the default is
 * two). Run: node --import tsx bench/calibrate.ts
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDelta } from '../src/compress/build-delta.js';
import { DEFAULT_DENSE_PATTERNS } from '../src/compress/tensor-selection.js';
import { SeededRng } from '../src/core/rng.js';
import { predictAll } from '../src/eval/accuracy.js';
import { calibrate, calibrationLoss } from '../src/eval/darex-q.js';
import type { SampleSet } from '../src/eval/dataset.js';
import { inputFeatureNorms } from '../src/eval/input-norms.js';
import { LocalRunner } from '../src/eval/local-runner.js';
import { saveOnnxModel } from '../src/onnx/model-file.js';
import { BERT_BASE_SHAPE, buildSyntheticEncoder, syntheticFinetune } from '../src/onnx/synthetic.js';
import { readFloatWeights } from '../src/onnx/weights.js';
import { fingerprintWeights } from '../src/onnx/fingerprint.js';
import { machineLine } from './machine.js';

const WORK = fileURLToPath(new URL('.work/calibrate', import.meta.url));
const SAMPLES = 4;
const TOKENS = 16;
const DROP_RATE = 0.99;

export async function runCalibrateBench(): Promise<string> {
  await mkdir(WORK, { recursive: true });
  const base = buildSyntheticEncoder({ ...BERT_BASE_SHAPE, seed: 1 });
  const tuned = syntheticFinetune(base, { seed: 2 });
  const basePath = join(WORK, 'base.onnx');
  const tunedPath = join(WORK, 'tuned.onnx');
  await saveOnnxModel(base, basePath);
  await saveOnnxModel(tuned, tunedPath);
  const baseWeights = readFloatWeights(base);
  const tunedWeights = readFloatWeights(tuned);
  const rng = new SeededRng(3);
  const calibration: SampleSet = {
    size: SAMPLES,
    inputs: {
      input_ids: {
        type: 'int64',
        dims: [SAMPLES, TOKENS],
        data: BigInt64Array.from({ length: SAMPLES * TOKENS }, () => BigInt(rng.nextInt(BERT_BASE_SHAPE.vocab))),
      },
    },
    labels: null,
    metadata: {},
  };
  const common = {
    method: 'dare' as const,
    dropRate: DROP_RATE,
    seed: 0,
    valueDtype: 'F32' as const,
    selection: { include: [], exclude: [], dense: DEFAULT_DENSE_PATTERNS },
    baseFingerprint: fingerprintWeights(baseWeights),
  };
  const timed = async <T>(work: () => Promise<T> | T): Promise<[T, number]> => {
    const started = performance.now();
    const result = await work();
    return [result, (performance.now() - started) / 1000];
  };

  const runner = await LocalRunner.open(basePath);
  const tunedRunner = await LocalRunner.open(tunedPath);
  const [target, targetSeconds] = await timed(() => predictAll(tunedRunner, calibration, null));
  await tunedRunner.close();
  const [norms, normSeconds] = await timed(() => inputFeatureNorms(tunedPath, calibration, SAMPLES));
  const [, uniformSeconds] = await timed(() => buildDelta(baseWeights, tunedWeights, common));
  const [importance, importanceSeconds] = await timed(() =>
    buildDelta(baseWeights, tunedWeights, { ...common, mask: 'importance', inputNorms: norms }),
  );
  const passSeconds: number[] = [];
  for (let i = 0; i < 3; i++)
    passSeconds.push((await timed(() => calibrationLoss(runner, calibration, target, { ...importance })))[1]);
  const [global, globalSeconds] = await timed(() =>
    calibrate(runner, calibration, target, importance, { scope: 'global', dropRate: DROP_RATE }),
  );
  const [tensor, tensorSeconds] = await timed(() =>
    calibrate(runner, calibration, target, importance, { scope: 'tensor', dropRate: DROP_RATE, steps: [0.5] }),
  );
  await runner.close();

  const sparse = importance.tensors.filter((t) => t.kind === 'sparse' && t.values.length > 0).length;
  const pass = Math.min(...passSeconds);
  const fullSweeps = 21 + 2 * sparse * 2;
  const row = (what: string, passes: number | string, seconds: number, loss: number | null) =>
    `| ${what} | ${passes} | ${seconds.toFixed(1)} | ${loss === null ? '–' : loss.toExponential(3)} |`;
  return [
    '### Calibrated compression cost (`compress --mask importance --q-scope global|tensor`)',
    '',
    machineLine('node --import tsx bench/calibrate.ts'),
    '',
    `BERT-base-shaped synthetic encoder (${sparse} sparse tensors), synthetic fine-tune, p = ${DROP_RATE}; calibration ${SAMPLES} sequences × ${TOKENS} tokens; every pass is a forward of the whole calibration batch through LocalRunner (patch mode, the engine's CPU path). One pass: ${(pass * 1000).toFixed(0)} ms (best of 3). Uniform (DARE) mask: ${uniformSeconds.toFixed(1)} s; fine-tuned model's logits once: ${targetSeconds.toFixed(1)} s.`,
    '',
    '| step | forward passes | seconds | calibration objective |',
    '|---|---:|---:|---:|',
    row('input-feature norms (tapped model)', 1, normSeconds, null),
    row('importance mask (build)', 0, importanceSeconds, global.maskLoss),
    row('importance mask + one global α', global.passes, globalSeconds, global.loss),
    row('importance mask + per-tensor scales, one sweep', tensor.passes, tensorSeconds, tensor.loss),
    row(
      'per-tensor scales, two sweeps (the default), extrapolated',
      fullSweeps,
      globalSeconds + ((tensorSeconds - globalSeconds) * (fullSweeps - 20)) / Math.max(1, tensor.passes - 20),
      null,
    ),
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runCalibrateBench());
}
