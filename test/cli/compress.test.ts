import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { compressCommand } from '../../src/cli/commands/compress.js';
import { evalCommand } from '../../src/cli/commands/eval.js';
import { inspectCommand } from '../../src/cli/commands/inspect.js';
import { decodeDelta, inspectDelta } from '../../src/deltas/format/delta-file.js';
import { writeSafetensors } from '../../src/deltas/format/safetensors.js';
import { saveOnnxModel } from '../../src/onnx/model-file.js';
import { syntheticFinetune } from '../../src/onnx/synthetic.js';
import { LocalRunner } from '../../src/eval/local-runner.js';
import { buildTinyZoo, maxAbsDiff, runPlain, tokenBatch, type TinyZoo } from '../helpers/tiny-models.js';
import type { SparseTensorDelta } from '../../src/deltas/types.js';

let zoo: TinyZoo;
let tunedPath: string;
const tunedModel = () => syntheticFinetune(zoo.base, { scale: 0.02, seed: 77 });

before(async () => {
  zoo = await buildTinyZoo({ tasks: 0 });
  tunedPath = join(zoo.dir, 'tuned.onnx');
  await saveOnnxModel(tunedModel(), tunedPath);
});
after(async () => zoo.cleanup());

const args = (out: string, ...rest: string[]) => [
  '--base',
  zoo.basePath,
  '--finetuned',
  tunedPath,
  '--out',
  join(zoo.dir, out),
  ...rest,
];

test('a p = 0 delta applied to the base reproduces the fine-tuned outputs within 1e-6', async () => {
  await compressCommand(args('p0.safetensors', '--drop-rate', '0'));
  const runner = await LocalRunner.open(zoo.basePath);
  try {
    const delta = decodeDelta(await readFile(join(zoo.dir, 'p0.safetensors')), {
      baseShapes: runner.base.patchableShapes,
      expectedBaseFingerprint: runner.base.fingerprint,
    });
    const inputs = tokenBatch(4, 8, 3);
    const expected = await runPlain(tunedModel(), inputs);
    const got = (await runner.run(inputs, delta)).logits!.data as Float32Array;
    assert.ok(maxAbsDiff(got, expected) <= 1e-6, `diff ${maxAbsDiff(got, expected)}`);
  } finally {
    await runner.close();
  }
});

test('the same seed writes byte-identical files; a different seed a different file', async () => {
  await compressCommand(args('a.safetensors', '--seed', '5'));
  await compressCommand(args('b.safetensors', '--seed', '5'));
  await compressCommand(args('c.safetensors', '--seed', '6'));
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => readFile(join(zoo.dir, `${n}.safetensors`))));
  assert.ok(a!.equals(b!));
  assert.ok(!a!.equals(c!));
});

test('fp16 files decode to values within fp16 rounding of the fp32 file', async () => {
  await compressCommand(args('f32.safetensors', '--seed', '1'));
  await compressCommand(args('f16.safetensors', '--seed', '1', '--dtype', 'f16'));
  const f32 = decodeDelta(await readFile(join(zoo.dir, 'f32.safetensors')));
  const f16 = decodeDelta(await readFile(join(zoo.dir, 'f16.safetensors')));
  assert.equal(f16.metadata.valueDtype, 'F16');
  assert.ok(f32.tensors.length > 0);
  assert.equal(f16.tensors.length, f32.tensors.length);
  f32.tensors.forEach((t, i) => {
    const other = f16.tensors[i]!;
    assert.equal(other.name, t.name);
    if (t.kind === 'sparse' && other.kind === 'sparse') assert.deepEqual(other.indices, t.indices);
    t.values.forEach((v, k) => assert.ok(Math.abs(v - other.values[k]!) <= Math.abs(v) * 1e-3 + 1e-7));
  });
});

test('darex-q chooses q on unlabelled calibration samples and records it', async () => {
  const calibration = join(zoo.dir, 'calibration.safetensors');
  const tokens = tokenBatch(32, 8, 11).input_ids!;
  await writeFile(
    calibration,
    writeSafetensors([{ name: 'input_ids', dtype: 'I64', shape: [32, 8], data: tokens.data }], {}),
  );
  const summary = await compressCommand(
    args('darex.safetensors', '--method', 'darex-q', '--drop-rate', '0.95', '--calibration', calibration),
  );
  assert.ok(summary.q !== null && summary.q >= 0.05 && summary.q <= 1, `q=${summary.q}`);
  const delta = decodeDelta(await readFile(join(zoo.dir, 'darex.safetensors')));
  assert.equal(delta.metadata.method, 'darex-q');
  assert.ok(Math.abs(delta.metadata.rescale - 1 / summary.q) < 1e-9);
  assert.ok(delta.metadata.extra.q_search_steps!.length > 0);
  const sparse = delta.tensors.find((t) => t.kind === 'sparse') as SparseTensorDelta;
  assert.ok(Math.abs(sparse.rescale - 1 / summary.q) < 1e-9);
});

async function writeCalibration(name: string, samples: number, seed: number): Promise<string> {
  const path = join(zoo.dir, name);
  const tokens = tokenBatch(samples, 8, seed).input_ids!;
  await writeFile(
    path,
    writeSafetensors([{ name: 'input_ids', dtype: 'I64', shape: [samples, 8], data: tokens.data }], {}),
  );
  return path;
}

test('per-tensor scales lower the calibration objective against DARE on the same seed and mask; an importance-mask delta records how it was made', async () => {
  const calibration = await writeCalibration('calib-tensor.safetensors', 16, 12);
  const common = ['--drop-rate', '0.95', '--seed', '3', '--calibration', calibration];
  const dare = await compressCommand(args('cal-dare.safetensors', '--method', 'dare', ...common));
  const scaled = await compressCommand(
    args('cal-scaled.safetensors', '--method', 'darex-q', '--q-scope', 'tensor', ...common),
  );
  assert.ok(dare.calibrationLoss !== null && scaled.calibrationLoss !== null);
  assert.ok(
    scaled.calibrationLoss < dare.calibrationLoss,
    `per-tensor ${scaled.calibrationLoss} vs DARE ${dare.calibrationLoss}`,
  );
  assert.ok(scaled.calibrationPasses > 100, `${scaled.calibrationPasses} passes`);
  // Same seed, same mask: only the scales differ.
  const [dareDelta, scaledDelta] = await Promise.all(
    ['cal-dare', 'cal-scaled'].map(async (n) => decodeDelta(await readFile(join(zoo.dir, `${n}.safetensors`)))),
  );
  dareDelta!.tensors.forEach(
    (t, i) =>
      t.kind === 'sparse' && assert.deepEqual((scaledDelta!.tensors[i] as SparseTensorDelta).indices, t.indices),
  );

  const tensor = await compressCommand(
    args('cal-tensor.safetensors', '--method', 'darex-q', '--mask', 'importance', '--q-scope', 'tensor', ...common),
  );
  assert.ok(tensor.calibrationLoss !== null && Number.isFinite(tensor.calibrationLoss));

  // Metadata round-trips through the file: mask, scope, the calibration file's sha256, scales.
  const bytes = await readFile(join(zoo.dir, 'cal-tensor.safetensors'));
  const delta = decodeDelta(bytes);
  const { extra } = delta.metadata;
  assert.equal(delta.metadata.method, 'darex-q');
  assert.equal(extra.mask, 'importance');
  assert.equal(extra.q_scope, 'tensor');
  assert.equal(
    extra.calibration_sha256,
    createHash('sha256')
      .update(await readFile(calibration))
      .digest('hex'),
  );
  assert.equal(extra.calibration_samples, '16');
  const scales = JSON.parse(extra.scales!) as Record<string, number>;
  const sparse = delta.tensors.filter((t): t is SparseTensorDelta => t.kind === 'sparse');
  assert.ok(sparse.length > 5);
  for (const t of sparse) {
    // The per-tensor rescale is the tensor's scale relative to DARE's 1/(1 − p).
    assert.ok(
      Math.abs(scales[t.name]! / (1 - 0.95) - t.rescale) / t.rescale < 1e-3,
      `${t.name}: ${scales[t.name]} vs ${t.rescale}`,
    );
  }
  assert.ok(new Set(Object.values(scales)).size > 1, 'tensors got different scales');
  assert.equal(dare.mask, 'uniform');
  assert.equal(tensor.mask, 'importance');
  assert.equal(tensor.qScope, 'tensor');
});

test('--method auto writes the candidate with the lowest calibration objective and lists them all', async () => {
  const calibration = await writeCalibration('calib-auto.safetensors', 16, 13);
  const summary = await compressCommand(
    args('auto.safetensors', '--method', 'auto', '--drop-rate', '0.9', '--calibration', calibration),
  );
  const delta = decodeDelta(await readFile(join(zoo.dir, 'auto.safetensors')));
  const candidates = JSON.parse(delta.metadata.extra.auto_candidates!) as [string, number][];
  assert.equal(candidates.length, 4);
  assert.ok(
    candidates.every(([, loss]) => Number.isFinite(loss)),
    JSON.stringify(candidates),
  );
  const lowest = candidates.reduce((a, b) => (b[1] < a[1] ? b : a));
  assert.equal(delta.metadata.extra.auto_choice, lowest[0]);
  assert.equal(summary.calibrationLoss, lowest[1]);
});

test('eval reports accuracy of base and base + delta on a labelled set', async () => {
  await compressCommand(args('p0b.safetensors', '--drop-rate', '0'));
  const data = join(zoo.dir, 'labelled.safetensors');
  const inputs = tokenBatch(64, 6, 21);
  // Labels are what the fine-tuned model predicts, so base + its p = 0 delta must score 100 %.
  const logits = await runPlain(tunedModel(), inputs);
  const labels = Uint8Array.from({ length: 64 }, (_, s) => {
    const row = Array.from(logits.subarray(s * 3, s * 3 + 3));
    return row.indexOf(Math.max(...row));
  });
  await writeFile(
    data,
    writeSafetensors(
      [
        { name: 'input_ids', dtype: 'I64', shape: [64, 6], data: inputs.input_ids!.data },
        { name: 'labels', dtype: 'U8', shape: [64], data: labels },
      ],
      {},
    ),
  );
  const withDelta = await evalCommand([
    '--base',
    zoo.basePath,
    '--delta',
    join(zoo.dir, 'p0b.safetensors'),
    '--data',
    data,
  ]);
  assert.equal(withDelta.accuracy, 1);
  assert.equal(withDelta.samples, 64);
  const baseOnly = await evalCommand(['--base', zoo.basePath, '--data', data]);
  assert.ok(baseOnly.accuracy < 1);
});

test('inspect prints JSON (like every command), or a table with --table', async () => {
  await compressCommand(args('i.safetensors'));
  const json = JSON.parse(await inspectCommand(['--delta', join(zoo.dir, 'i.safetensors')])) as {
    metadata: { method: string };
    tensors: { name: string; kind: string }[];
  };
  assert.equal(json.metadata.method, 'dare');
  assert.ok(json.tensors.some((t) => t.name === 'classifier.weight' && t.kind === 'dense'));
  const text = await inspectCommand(['--delta', join(zoo.dir, 'i.safetensors'), '--table']);
  assert.match(text, /method: dare/);
  assert.match(text, /classifier\.weight\s+dense/);
  assert.match(text, /bits\/param/);
});

test('--values int4/int8 write format version 2: same kept positions as fp16, values within the quantizer bound, a smaller file, clip chosen on calibration', async () => {
  const calibration = await writeCalibration('quant-calibration.safetensors', 32, 21);
  const common = ['--method', 'darex-q', '--drop-rate', '0.9', '--calibration', calibration, '--seed', '3'];
  const plain = await compressCommand(args('q-f16.safetensors', ...common, '--dtype', 'f16'));
  const fp16 = await compressCommand(args('q-v2.safetensors', ...common, '--values', 'fp16'));
  const int8 = await compressCommand(args('q-i8.safetensors', ...common, '--values', 'int8'));
  const int4 = await compressCommand(args('q-i4.safetensors', ...common, '--values', 'int4', '--group', '32'));
  assert.equal(plain.formatVersion, 1);
  for (const s of [fp16, int8, int4]) assert.equal(s.formatVersion, 2);
  // Data bytes (the tiny test model's header, one entry per stream, outweighs its data).
  const dataBytes = async (name: string) =>
    inspectDelta(decodeDelta(await readFile(join(zoo.dir, name)))).totals.dataBytes;
  const sizes = await Promise.all(['q-f16', 'q-v2', 'q-i8', 'q-i4'].map((n) => dataBytes(`${n}.safetensors`)));
  assert.ok(sizes[1]! < sizes[0]! && sizes[2]! < sizes[1]! && sizes[3]! < sizes[2]!, JSON.stringify(sizes));
  assert.ok(int4.quantClip !== null && int4.quantClip > 0 && int4.quantClip <= 1);
  const read = async (name: string) => decodeDelta(await readFile(join(zoo.dir, name)));
  const [ref, v2, q8, q4] = await Promise.all(['q-f16', 'q-v2', 'q-i8', 'q-i4'].map((n) => read(`${n}.safetensors`)));
  assert.deepEqual(v2!.tensors, ref!.tensors, 'fp16 in version 2 decodes to exactly the version 1 fp16 delta');
  assert.equal(q4!.metadata.extra.quant_group, '32');
  for (const [q, qmax, clip] of [
    [q8!, 127, int8.quantClip!],
    [q4!, 7, int4.quantClip],
  ] as const) {
    ref!.tensors.forEach((t, i) => {
      const other = q.tensors[i]!;
      if (t.kind !== 'sparse' || other.kind !== 'sparse') return;
      assert.deepEqual(other.indices, t.indices);
      const absmax = t.values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      // Unclipped values round to within half a step; clipped ones lose at most (1 − clip) of the group's largest.
      const bound = (absmax / qmax) * 0.51 + absmax * (1 - clip) + 1e-7;
      t.values.forEach((v, k) => assert.ok(Math.abs(v - other.values[k]!) <= bound, `${t.name}[${k}]`));
    });
  }
});

test('mask, scope and auto combinations that cannot work are usage errors naming the missing piece', async () => {
  const cases: [string[], RegExp][] = [
    [['--mask', 'importance'], /--mask importance needs --calibration/],
    [['--mask', 'random'], /--mask must be one of uniform, importance/],
    [['--method', 'darex-q', '--q', '0.2', '--q-scope', 'tensor'], /--q-scope tensor needs --calibration/],
    [['--q-scope', 'tensor'], /--q-scope only applies to --method darex-q/],
    [['--method', 'darex-q', '--q-scope', 'block'], /--q-scope must be one of global, tensor/],
    [['--method', 'auto'], /--method auto needs --calibration/],
    [['--method', 'magnitude', '--mask', 'importance'], /do not apply to --method magnitude/],
    [['--values', 'int2'], /--values must be one of fp16, int8, int4/],
    [['--values', 'fp16', '--group', '32'], /--group only applies to --values int8 or int4/],
    [['--values', 'int4', '--group', '0'], /--group/],
  ];
  for (const [extra, pattern] of cases) {
    await assert.rejects(compressCommand(args('never.safetensors', ...extra)), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'DS_ERR_CLI_USAGE', extra.join(' '));
      assert.match(error.message, pattern);
      return true;
    });
  }
});

test('bad arguments and bad files give one clear line and a non-zero exit', () => {
  const cli = (...argv: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...argv], { encoding: 'utf8' });
  const cases: [string[], number, RegExp][] = [
    [['compress', '--base', zoo.basePath], 2, /missing --finetuned/],
    [['compress', ...args('x.safetensors', '--drop-rate', '1.5')], 2, /--drop-rate must be a number in \[0, 1\)/],
    [['compress', ...args('x.safetensors', '--method', 'nope')], 2, /--method must be one of/],
    [['compress', ...args('x.safetensors', '--method', 'darex-q')], 2, /needs --q or --calibration/],
    [['compress', '--bogus'], 2, /Unknown option/],
    [['inspect', '--delta', zoo.basePath], 1, /DS_ERR_ST_/],
    [
      ['inspect', '--delta', join(zoo.dir, 'missing.safetensors')],
      1,
      /^error \[DS_ERR_FILE_READ\]: Cannot read delta file .*missing\.safetensors: no such file$/m,
    ],
    [
      ['eval', '--base', zoo.basePath, '--data', join(zoo.dir, 'missing.safetensors')],
      1,
      /^error \[DS_ERR_FILE_READ\]: Cannot read sample set .*: no such file$/m,
    ],
    [['nope'], 2, /unknown command/],
  ];
  for (const [argv, code, pattern] of cases) {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...argv], { encoding: 'utf8' });
    assert.equal(result.status, code, `${argv.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
    assert.ok(result.stderr.startsWith('error'), result.stderr);
    // One line, except that usage mistakes append the command's usage text after it.
    if (code === 1) assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  }
  assert.equal(cli('compress', '--help').status, 0);
});
