/**
 * Issue 24's "done when": on the demo zoo, `compress --finetuned-weights` from the committed state
 * dicts (nn.Linear layout, timm-like names: models/recipe/state_dicts.py) writes the same delta,
 * bit for bit, as `compress --finetuned` from the ONNX fine-tunes, for every task and every
 * method. The only metadata that differs is source_finetuned_sha256 (the file the fine-tune was
 * read from), which is checked to be the state dict's sha256.
 *
 * The calibrated methods use 8 calibration samples: the search's passes are what cost time here,
 * and identity does not depend on how many samples there are.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressCommand } from '../../src/cli/commands/compress.js';
import { decodeDelta, encodeDelta } from '../../src/deltas/format/delta-file.js';
import { sha256File } from '../../src/onnx/fingerprint.js';
import { ROOT } from '../helpers/gateway-process.js';

const MODELS = join(ROOT, 'models');
const TASKS = ['rotated', 'inverted', 'coarse4', 'footwear', 'noisy', 'flipped', 'digits'];
const METHODS: Record<string, (task: string) => string[]> = {
  dare: () => ['--method', 'dare', '--drop-rate', '0.9', '--seed', '3'],
  magnitude: () => ['--method', 'magnitude', '--drop-rate', '0.9', '--dtype', 'f16'],
  'darex-q': (task) => [
    '--method',
    'darex-q',
    '--drop-rate',
    '0.99',
    '--calibration',
    join(MODELS, 'tasks', task, 'calib.safetensors'),
    '--calibration-size',
    '8',
  ],
  auto: (task) => [
    '--method',
    'auto',
    '--drop-rate',
    '0.99',
    '--calibration',
    join(MODELS, 'tasks', task, 'calib.safetensors'),
    '--calibration-size',
    '8',
  ],
};

let dir: string;
let basePath: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-state-dict-'));
  // A copy of the base, so the name-map cache is written here and not into models/.
  basePath = join(dir, 'model.onnx');
  await copyFile(join(MODELS, 'base', 'model.onnx'), basePath);
});
after(async () => rm(dir, { recursive: true, force: true }));

async function compressBoth(task: string, method: string): Promise<{ fromOnnx: Buffer; fromState: Buffer }> {
  const extra = METHODS[method]!(task);
  const onnxOut = join(dir, `${task}-${method}-onnx.safetensors`);
  const stateOut = join(dir, `${task}-${method}-state.safetensors`);
  await compressCommand([
    '--base',
    basePath,
    '--finetuned',
    join(MODELS, 'tasks', task, 'finetuned.onnx'),
    '--out',
    onnxOut,
    ...extra,
  ]);
  await compressCommand([
    '--base',
    basePath,
    '--finetuned-weights',
    join(MODELS, 'tasks', task, 'finetuned.safetensors'),
    '--base-weights',
    join(MODELS, 'base', 'model.safetensors'),
    '--out',
    stateOut,
    ...extra,
  ]);
  return { fromOnnx: await readFile(onnxOut), fromState: await readFile(stateOut) };
}

for (const method of Object.keys(METHODS)) {
  test(`${method}: every task's delta from the state dict equals the one from the ONNX fine-tune, bit for bit`, async () => {
    for (const task of TASKS) {
      const { fromOnnx, fromState } = await compressBoth(task, method);
      const onnxDelta = decodeDelta(fromOnnx);
      const stateDelta = decodeDelta(fromState);
      assert.ok(onnxDelta.tensors.length > 0, `${task}: an empty delta proves nothing`);
      assert.equal(
        stateDelta.metadata.sourceFinetunedSha256,
        await sha256File(join(MODELS, 'tasks', task, 'finetuned.safetensors')),
      );
      // Re-encoding the ONNX delta gives its own bytes, so the comparison below is of files.
      assert.ok(Buffer.from(encodeDelta(onnxDelta)).equals(fromOnnx), `${task}: the encoder is not canonical`);
      const sameSource = encodeDelta({
        ...stateDelta,
        metadata: { ...stateDelta.metadata, sourceFinetunedSha256: onnxDelta.metadata.sourceFinetunedSha256 },
      });
      assert.ok(
        Buffer.from(sameSource).equals(fromOnnx),
        `${task}/${method}: the state-dict delta differs from the ONNX delta beyond source_finetuned_sha256`,
      );
    }
  });
}

test('the name map found by value is cached beside the base and reused', async () => {
  const cache = `${basePath}.name-map.json`;
  const before = await stat(cache);
  await compressBoth('footwear', 'dare');
  assert.equal((await stat(cache)).mtimeMs, before.mtimeMs, 'a cached map for the same base was rewritten');
  const map = JSON.parse(await readFile(cache, 'utf8')) as {
    tensors: Record<string, unknown>;
    unmatched: unknown;
    unmappedInitializers: unknown;
  };
  assert.deepEqual(map.tensors['blocks.0.attn.qkv.weight'], {
    initializer: 'blocks.0.attn.qkv_weight',
    layout: 'transposed',
    shape: [192, 64],
  });
  assert.equal(Object.keys(map.tensors).length, 56);
  assert.deepEqual(map.unmatched, {});
  assert.deepEqual(map.unmappedInitializers, []);
});
