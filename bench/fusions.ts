/**
 * `npm run bench -- fusions`: which of ONNX Runtime's graph fusions survive the one-session
 * rewrite (the side path as a custom op after each patchable linear). Each model is optimised
 * twice at level `all` with `optimizedModelFilePath` — the plain graph on onnxruntime-node, the
 * rewritten graph through the custom-op addon — and the optimised graphs' operators are counted.
 * Models: the demo zoo's ViT, and the BERT-base-shaped synthetic encoder cut to 2 layers (every
 * layer is the same pattern, so 2 show what 12 do at a fraction of the build time).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadOnnxModel, encodeOnnxModel } from '../src/onnx/model-file.js';
import { readFloatWeights } from '../src/onnx/weights.js';
import { BERT_BASE_SHAPE, buildSyntheticEncoder } from '../src/onnx/synthetic.js';
import type { onnx } from '../src/onnx/proto.js';
import { loadOrtAddon } from '../src/engine/runtime/mixed/one-session/ort-addon.js';
import { OneSessionPipeline } from '../src/engine/runtime/mixed/one-session/one-session-pipeline.js';

/** Operators worth watching: the fused ones ORT's CPU optimiser produces, and what they replace. */
const WATCHED = [
  'Attention',
  'MultiHeadAttention',
  'Gemm',
  'FusedMatMul',
  'MatMul',
  'MatMulAddFusion',
  'Gelu',
  'BiasGelu',
  'FastGelu',
  'LayerNormalization',
  'SkipLayerNormalization',
  'SimplifiedLayerNormalization',
  'Add',
  'Mul',
  'Div',
  'Erf',
  'Softmax',
  'Reshape',
  'Transpose',
  'SideAdd',
];

function countOps(model: onnx.IModelProto): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of model.graph?.node ?? []) counts.set(node.opType ?? '', (counts.get(node.opType ?? '') ?? 0) + 1);
  return counts;
}

async function optimisedPair(name: string, model: onnx.ModelProto, dir: string): Promise<string[]> {
  const { addon, reason } = loadOrtAddon();
  if (!addon) throw new Error(`the custom-op addon did not load: ${reason}`);
  const plainPath = join(dir, `${name}-plain.onnx`);
  const plain = await ort.InferenceSession.create(encodeOnnxModel(model), {
    graphOptimizationLevel: 'all',
    optimizedModelFilePath: plainPath,
    intraOpNumThreads: 1,
  });
  await plain.release();
  const onePath = join(dir, `${name}-one-session.onnx`);
  const weights = readFloatWeights(model);
  const pipeline = OneSessionPipeline.create(
    model,
    weights,
    weights,
    { executionProvider: 'cpu', intraOpThreads: 1 },
    addon,
    { optimizedModelPath: onePath },
  );
  await pipeline.release();
  const [a, b] = [countOps(await loadOnnxModel(plainPath)), countOps(await loadOnnxModel(onePath))];
  const ops = [...new Set([...a.keys(), ...b.keys()])].sort(
    (x, y) => WATCHED.indexOf(x) - WATCHED.indexOf(y) || x.localeCompare(y),
  );
  const changed = ops.filter((op) => (a.get(op) ?? 0) !== (b.get(op) ?? 0) || WATCHED.includes(op));
  return changed.map((op) => `| ${name} | ${op} | ${a.get(op) ?? 0} | ${b.get(op) ?? 0} |`);
}

export async function runFusionsBench(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-fusions-'));
  try {
    const vit = await loadOnnxModel(new URL('../models/base/model.onnx', import.meta.url).pathname);
    const bert = buildSyntheticEncoder({ ...BERT_BASE_SHAPE, layers: 2, seed: 1 });
    const rows = [
      ...(await optimisedPair('zoo ViT', vit, dir)),
      ...(await optimisedPair('BERT-base shape, 2 layers', bert, dir)),
    ];
    return [
      'Operators in the graph ONNX Runtime optimised (level `all`, CPU), plain model vs the one-session',
      'rewrite; `npm run bench -- fusions` (bench/fusions.ts).',
      '',
      '| model | operator | plain | one session |',
      '|---|---|---|---|',
      ...rows,
    ].join('\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await runFusionsBench());
