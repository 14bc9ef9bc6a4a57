/**
 * State dicts → ONNX initializers: reading (dtype conversion), matching by value (same layout,
 * transposed, reshaped; ambiguous, fused, folded, unknown shapes, another base) and putting a
 * fine-tune's values in (ignore globs, unchanged tensors, shape mismatches). The demo zoo's base
 * and its state dict (models/base/) are the fixture: 56 tensors, nn.Linear layout.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, type SafetensorsTensorInput } from '../../src/deltas/format/safetensors.js';
import { float32ArrayToFloat16 } from '../../src/deltas/format/float16.js';
import {
  conversionNote,
  float32ToBfloat16,
  parseStateDict,
  type StateDict,
} from '../../src/compress/state-dict/read-state-dict.js';
import { matchStateDict, transpose } from '../../src/compress/state-dict/match-names.js';
import { finetuneWeights } from '../../src/compress/state-dict/finetune-weights.js';
import { serializeNameMap, validateNameMap } from '../../src/compress/state-dict/name-map.js';
import { compressCommand } from '../../src/cli/commands/compress.js';
import type { WeightMap } from '../../src/compress/build-delta.js';
import { loadOnnxModel } from '../../src/onnx/model-file.js';
import { readFloatWeights } from '../../src/onnx/weights.js';
import { ROOT } from '../helpers/gateway-process.js';

const BASE_ONNX = join(ROOT, 'models', 'base', 'model.onnx');
const BASE_STATE = join(ROOT, 'models', 'base', 'model.safetensors');

let initializers: WeightMap;
let baseState: StateDict;

before(async () => {
  initializers = readFloatWeights(await loadOnnxModel(BASE_ONNX));
  baseState = parseStateDict(await readFile(BASE_STATE), 'base.safetensors');
});

/** A state dict built from (name → values, shape) with the given dtype. */
function stateDict(
  entries: Record<string, { shape: readonly number[]; data: Float32Array }>,
  dtype = 'F32',
): StateDict {
  const tensors: SafetensorsTensorInput[] = Object.entries(entries).map(([name, { shape, data }]) => ({
    name,
    dtype: dtype as 'F32',
    shape,
    data: dtype === 'F16' ? float32ArrayToFloat16(data) : dtype === 'BF16' ? float32ToBfloat16(data) : data,
  }));
  return parseStateDict(writeSafetensors(tensors, {}), `${dtype.toLowerCase()}.safetensors`);
}

const entriesOf = (dict: StateDict) =>
  Object.fromEntries([...dict.tensors].map(([name, t]) => [name, { shape: [...t.shape], data: t.data }]));

const match = (dict: StateDict) =>
  matchStateDict({
    stateDict: dict,
    initializers,
    baseFingerprint: 'fp',
    baseWeightsSha256: null,
    onnxLabel: 'model.onnx',
  });

test('the zoo base state dict maps all 56 tensors: nn.Linear weights transposed, the rest as they are', () => {
  const map = match(baseState);
  assert.equal(Object.keys(map.tensors).length, 56);
  assert.deepEqual(map.tensors['head.weight'], { initializer: 'head_weight', layout: 'transposed', shape: [10, 64] });
  assert.deepEqual(map.tensors['blocks.3.norm2.bias'], {
    initializer: 'blocks.3.norm2.bias',
    layout: 'same',
    shape: [64],
  });
  assert.deepEqual(map.unmappedInitializers, []);
  assert.deepEqual(validateNameMap(JSON.parse(serializeNameMap(map)), 'x'), map);
});

test('F16 and BF16 state dicts are converted to fp32 exactly, said so, and still matched', () => {
  const values = new Float32Array([1, -2.5, 0.1, 65504]);
  const f16 = stateDict({ w: { shape: [4], data: values } }, 'F16');
  assert.equal(f16.tensors.get('w')!.data[1], -2.5);
  assert.equal(f16.tensors.get('w')!.data[2], Math.fround(0.0999755859375));
  const bf16 = stateDict({ w: { shape: [4], data: values } }, 'BF16');
  assert.equal(bf16.tensors.get('w')!.data[0], 1);
  assert.equal(bf16.tensors.get('w')!.data[2], 0.10009765625);
  assert.match(conversionNote(bf16)!, /1 BF16 tensor\(s\) converted to fp32/);
  assert.equal(conversionNote(baseState), null);
  // A bf16 copy of the base still finds every initializer (compared at bf16 precision).
  const map = match(stateDict(entriesOf(baseState), 'BF16'));
  assert.equal(Object.keys(map.tensors).length, 56);
});

test('a weight equal to two initializers, or equal to its own transpose, is ambiguous and named', () => {
  const head = baseState.tensors.get('head.bias')!;
  const sym = new Float32Array(64 * 64);
  for (let r = 0; r < 64; r++) for (let c = 0; c < 64; c++) sym[r * 64 + c] = sym[c * 64 + r] = r + c * 0.5;
  const extra = new Map(initializers);
  extra.set('copy_of_head_bias', { shape: [10], data: head.data });
  extra.set('symmetric', { shape: [64, 64], data: sym });
  const map = matchStateDict({
    stateDict: stateDict({
      'head.bias': head,
      'sym.weight': { shape: [64, 64], data: sym },
      'norm.bias': baseState.tensors.get('norm.bias')!,
    }),
    initializers: extra,
    baseFingerprint: 'fp',
    baseWeightsSha256: null,
    onnxLabel: 'model.onnx',
  });
  assert.equal(map.unmatched['head.bias']!.kind, 'ambiguous');
  assert.match(map.unmatched['head.bias']!.reason, /"head_bias", "copy_of_head_bias"; say which in a --name-map/);
  assert.equal(map.unmatched['sym.weight']!.kind, 'ambiguous');
  assert.match(map.unmatched['sym.weight']!.reason, /"symmetric", "symmetric" \(transposed\)/);
});

test('Q/K/V saved apart but fused by the exporter are reported by name with what to do', () => {
  const qkv = baseState.tensors.get('blocks.1.attn.qkv.weight')!; // [192, 64]
  const qkvBias = baseState.tensors.get('blocks.1.attn.qkv.bias')!;
  const parts: Record<string, { shape: number[]; data: Float32Array }> = {
    'blocks.1.attn.proj.weight': entriesOf(baseState)['blocks.1.attn.proj.weight']!,
  };
  ['q', 'k', 'v'].forEach((p, i) => {
    parts[`blocks.1.attn.${p}.weight`] = { shape: [64, 64], data: qkv.data.slice(i * 4096, (i + 1) * 4096) };
    parts[`blocks.1.attn.${p}.bias`] = { shape: [64], data: qkvBias.data.slice(i * 64, (i + 1) * 64) };
  });
  const map = match(stateDict(parts));
  assert.equal(map.unmatched['blocks.1.attn.k.weight']!.kind, 'fused');
  assert.match(
    map.unmatched['blocks.1.attn.k.weight']!.reason,
    /fused it into initializer "blocks\.1\.attn\.qkv_weight" \(columns 64–127 of \[64, 192\], transposed\).*torch\.cat.*--ignore/,
  );
  assert.match(
    map.unmatched['blocks.1.attn.v.bias']!.reason,
    /"blocks\.1\.attn\.qkv_bias" \(elements 128–191 of \[192\]\)/,
  );
});

test('a folded (scaled) weight, a shape no initializer has, and a reshaped bias', () => {
  const fc1 = baseState.tensors.get('blocks.0.mlp.fc1.weight')!;
  const bias = baseState.tensors.get('norm.bias')!;
  const map = match(
    stateDict({
      'scaled.weight': { shape: fc1.shape, data: fc1.data.map((v) => v * 0.25) },
      'odd.weight': { shape: [3, 5, 7], data: new Float32Array(105) },
      'norm.bias': { shape: [1, 64], data: bias.data },
    }),
  );
  assert.equal(map.unmatched['scaled.weight']!.kind, 'value');
  assert.match(map.unmatched['scaled.weight']!.reason, /no initializer holds its values.*folded/);
  assert.equal(map.unmatched['odd.weight']!.kind, 'shape');
  assert.match(map.unmatched['odd.weight']!.reason, /shape \[3, 5, 7\] matches no initializer/);
  assert.deepEqual(map.tensors['norm.bias'], { initializer: 'norm.bias', layout: 'reshaped', shape: [1, 64] });
});

test("another base's state dict is refused in one line", () => {
  const other = Object.fromEntries(
    Object.entries(entriesOf(baseState)).map(([n, t]) => [n, { ...t, data: t.data.map((v) => v + 1e-3) }]),
  );
  assert.throws(
    () => match(stateDict(other)),
    (e: Error & { code?: string }) =>
      e.code === 'DS_ERR_NAME_MAP' && /none of its 56 tensors matches an initializer by value/.test(e.message),
  );
});

test('fine-tune weights: transposed back into place; unmapped tensors fail unless ignored or unchanged', () => {
  const map = match(baseState);
  const tuned = entriesOf(baseState);
  tuned['head.weight'] = { shape: [10, 64], data: tuned['head.weight']!.data.map((v) => v + 1) };
  tuned['extra.lora_A'] = { shape: [4, 64], data: new Float32Array(256).fill(0.5) };
  const dict = stateDict(tuned);
  assert.throws(
    () => finetuneWeights({ base: initializers, map, finetuned: dict, baseStateDict: baseState, ignore: [] }),
    (e: Error & { code?: string }) =>
      e.code === 'DS_ERR_STATE_DICT' &&
      /1 tensor\(s\) have no initializer to go to: "extra\.lora_A" is not in the base's state dict/.test(e.message),
  );
  const result = finetuneWeights({
    base: initializers,
    map,
    finetuned: dict,
    baseStateDict: baseState,
    ignore: ['extra.*'],
  });
  assert.deepEqual(result.ignored, ['extra.lora_A']);
  const head = result.weights.get('head_weight')!;
  const expected = transpose(tuned['head.weight'].data, 10, 64);
  assert.deepEqual(head.data, expected);
  assert.deepEqual(head.shape, [64, 10]);
  assert.deepEqual(result.weights.get('norm.bias')!.data, initializers.get('norm.bias')!.data);

  // An unmapped tensor whose value did not change contributes nothing and passes.
  const partial = { ...map, tensors: { ...map.tensors } };
  delete (partial.tensors as Record<string, unknown>)['norm.weight'];
  const ok = finetuneWeights({
    base: initializers,
    map: partial,
    finetuned: dict,
    baseStateDict: baseState,
    ignore: ['extra.*'],
  });
  assert.deepEqual(ok.unchanged, ['norm.weight']);

  const wrongShape = stateDict({ 'head.bias': { shape: [12], data: new Float32Array(12) } });
  assert.throws(
    () => finetuneWeights({ base: initializers, map, finetuned: wrongShape, baseStateDict: baseState, ignore: [] }),
    /"head\.bias" has shape \[12\] but \[10\] in the base's state dict \(a state dict of another base\?\)/,
  );
});

test('compress: one clear line for a missing base state dict, a name map of another base, and bad files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-sd-'));
  const ft = join(ROOT, 'models', 'tasks', 'footwear', 'finetuned.safetensors');
  const common = ['--base', BASE_ONNX, '--finetuned-weights', ft, '--out', join(dir, 'd.safetensors')];
  await assert.rejects(compressCommand(common), /--finetuned-weights needs --base-weights/);
  await assert.rejects(
    compressCommand([...common, '--finetuned', BASE_ONNX, '--base-weights', BASE_STATE]),
    /give exactly one of --finetuned \(ONNX\) and --finetuned-weights/,
  );
  const mapPath = join(dir, 'map.json');
  const map = { ...match(baseState), baseFingerprint: 'f'.repeat(64) };
  await writeFile(mapPath, serializeNameMap(map));
  await assert.rejects(
    compressCommand([...common, '--name-map', mapPath]),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_NAME_MAP' && /a name map of another base/.test(e.message),
  );
  const notSafetensors = join(dir, 'x.safetensors');
  await writeFile(notSafetensors, 'hello');
  await assert.rejects(
    compressCommand([
      ...common.slice(0, 2),
      '--finetuned-weights',
      notSafetensors,
      '--base-weights',
      BASE_STATE,
      '--out',
      join(dir, 'e'),
    ]),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_STATE_DICT' && /not a safetensors file/.test(e.message),
  );
});

test('a BF16 fine-tune is converted to fp32 and compressed, and stderr says so in one line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-sd-bf16-'));
  const tuned = parseStateDict(
    await readFile(join(ROOT, 'models', 'tasks', 'footwear', 'finetuned.safetensors')),
    'footwear.safetensors',
  );
  const bf16 = join(dir, 'footwear-bf16.safetensors');
  await writeFile(
    bf16,
    writeSafetensors(
      [...tuned.tensors].map(([name, t]) => ({ name, dtype: 'BF16', shape: t.shape, data: float32ToBfloat16(t.data) })),
      {},
    ),
  );
  const result = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/bin.ts',
      'compress',
      '--base',
      BASE_ONNX,
      '--base-weights',
      BASE_STATE,
      '--name-map',
      join(ROOT, 'models', 'base', 'model.onnx.name-map.json'),
      '--finetuned-weights',
      bf16,
      '--method',
      'magnitude',
      '--drop-rate',
      '0.9',
      '--out',
      join(dir, 'd.safetensors'),
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /footwear-bf16\.safetensors: 56 BF16 tensor\(s\) converted to fp32/);
  assert.equal((JSON.parse(result.stdout) as { tensors: number }).tensors, 56);
});
