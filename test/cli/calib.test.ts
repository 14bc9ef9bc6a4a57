/**
 * `deltaserve calib`: the calibration file built from a folder equals the zoo's for the same
 * inputs. coarse4's 256 calibration images are committed as PNG files (written by the Python
 * recipe's own PNG writer, models/recipe/state_dicts.py); the .npy and .json folders are
 * written here from the zoo's calibration file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibCommand } from '../../src/cli/commands/calib.js';
import { parseSafetensors, tensorView } from '../../src/deltas/format/safetensors.js';
import { loadSampleSet } from '../../src/eval/dataset.js';
import { writeNpy, parseNpy } from '../../src/eval/npy.js';
import { loadOnnxModel } from '../../src/onnx/model-file.js';
import { describeModelIO, type ModelIO } from '../../src/onnx/io-signature.js';
import { ROOT } from '../helpers/gateway-process.js';

const BASE = join(ROOT, 'models', 'base', 'model.onnx');
const ZOO_CALIB = join(ROOT, 'models', 'tasks', 'coarse4', 'calib.safetensors');
const PNG_DIR = join(ROOT, 'models', 'tasks', 'coarse4', 'calib-png');

let dir: string;
let io: ModelIO;
let zooImages: Uint8Array;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-calib-'));
  io = describeModelIO(await loadOnnxModel(BASE));
  const bytes = await readFile(ZOO_CALIB);
  zooImages = tensorView(bytes, parseSafetensors(bytes), 'images') as Uint8Array;
});
after(async () => rm(dir, { recursive: true, force: true }));

const imageFloats = (from: number, to: number) =>
  Float32Array.from(zooImages.subarray(from * 784, to * 784), (v) => v / 255);

test('PNG folder → the same images tensor as the zoo calibration file, and the same model inputs', async () => {
  const out = join(dir, 'from-png.safetensors');
  const summary = await calibCommand(['--base', BASE, '--inputs', PNG_DIR, '--out', out]);
  assert.deepEqual(summary.tensors, { images: { dtype: 'U8', shape: [256, 28, 28] } });
  const bytes = await readFile(out);
  const parsed = parseSafetensors(bytes);
  assert.equal(parsed.metadata.format, 'deltaserve.samples');
  assert.equal(parsed.metadata.layout, 'images');
  assert.ok(Buffer.from(tensorView(bytes, parsed, 'images') as Uint8Array).equals(Buffer.from(zooImages)));
  const [ours, zoo] = await Promise.all([loadSampleSet(out, io), loadSampleSet(ZOO_CALIB, io)]);
  assert.equal(ours.labels, null);
  assert.deepEqual(ours.inputs.pixels!.dims, zoo.inputs.pixels!.dims);
  assert.deepEqual(ours.inputs.pixels!.data, zoo.inputs.pixels!.data);
});

test('.npy samples and batches, and .json arrays → the model inputs of the zoo file, in name order', async () => {
  const npyDir = join(dir, 'npy');
  await mkdir(npyDir);
  for (let i = 0; i < 6; i++) await writeFile(join(npyDir, `s${i}.npy`), writeNpy(imageFloats(i, i + 1), [1, 28, 28]));
  await writeFile(join(npyDir, 's6-batch.npy'), writeNpy(imageFloats(6, 10), [4, 1, 28, 28]));
  assert.deepEqual(parseNpy(await readFile(join(npyDir, 's6-batch.npy'))).shape, [4, 1, 28, 28]);
  const out = join(dir, 'from-npy.safetensors');
  const summary = await calibCommand(['--base', BASE, '--inputs', npyDir, '--out', out]);
  assert.deepEqual(summary.tensors, { pixels: { dtype: 'F32', shape: [10, 1, 28, 28] } });
  const zoo = await loadSampleSet(ZOO_CALIB, io);
  const ours = await loadSampleSet(out, io);
  assert.deepEqual(ours.inputs.pixels!.data, (zoo.inputs.pixels!.data as Float32Array).subarray(0, 10 * 784));

  const jsonDir = join(dir, 'json');
  await mkdir(jsonDir);
  const nested = (from: number) => [
    [Array.from({ length: 28 }, (_, y) => Array.from(imageFloats(from, from + 1).subarray(y * 28, y * 28 + 28)))],
  ];
  await writeFile(join(jsonDir, 'a.json'), JSON.stringify(nested(0)));
  await writeFile(join(jsonDir, 'b.json'), JSON.stringify({ pixels: nested(1) }));
  const jsonOut = join(dir, 'from-json.safetensors');
  await calibCommand(['--base', BASE, '--inputs', jsonDir, '--out', jsonOut, '--limit', '2']);
  const fromJson = await loadSampleSet(jsonOut, io);
  assert.deepEqual(fromJson.inputs.pixels!.data, (zoo.inputs.pixels!.data as Float32Array).subarray(0, 2 * 784));
});

test('bad folders get one line naming the file', async () => {
  const mixed = join(dir, 'mixed');
  await mkdir(mixed);
  await copyFile(join(PNG_DIR, '0000.png'), join(mixed, 'a.png'));
  await writeFile(join(mixed, 'b.npy'), writeNpy(imageFloats(0, 1), [1, 28, 28]));
  const run = (inputs: string) => calibCommand(['--base', BASE, '--inputs', inputs, '--out', join(dir, 'x')]);
  await assert.rejects(run(mixed), /mixes PNG images with \.npy\/\.json tensors/);
  await writeFile(join(mixed, 'notes.txt'), 'hi');
  await assert.rejects(
    run(mixed),
    (e: Error & { code?: string }) =>
      e.code === 'DS_ERR_CALIB_INPUT' && /notes\.txt: not a \.png, \.npy or \.json/.test(e.message),
  );
  const wrong = join(dir, 'wrong');
  await mkdir(wrong);
  await writeFile(join(wrong, 'a.npy'), writeNpy(new Float32Array(30), [5, 6]));
  await assert.rejects(run(wrong), /a\.npy: shape \[5, 6\] fits neither one sample nor a batch of input "pixels"/);
  await writeFile(join(wrong, 'a.npy'), 'not numpy');
  await assert.rejects(run(wrong), /a\.npy: not a \.npy file/);
  await assert.rejects(run(join(dir, 'absent')), /cannot list the folder/);
});
