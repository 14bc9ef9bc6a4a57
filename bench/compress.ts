/**
 * Compression throughput on the BERT-base-shaped synthetic encoder (12 × 768 / 3072,
 * ~85 M params in linear layers): `buildDelta` for DARE at p = 0.9 and 0.99 and magnitude
 * pruning at p = 0.9, excluding model generation and loading (goal: DARE ≥ 100 M params/s on
 * one core). Run: node --import tsx bench/compress.ts
 */
import { fileURLToPath } from 'node:url';
import { buildDelta, type PruneMethod } from '../src/compress/build-delta.js';
import { DEFAULT_DENSE_PATTERNS } from '../src/compress/tensor-selection.js';
import { readFloatWeights } from '../src/onnx/weights.js';
import { BERT_BASE_SHAPE, buildSyntheticEncoder, syntheticFinetune } from '../src/onnx/synthetic.js';
import { machineLine } from './machine.js';
import { median } from '../loadtest/runner/stats.js';

const REPETITIONS = 3;

export async function runCompressBench(): Promise<string> {
  const base = buildSyntheticEncoder({ ...BERT_BASE_SHAPE, seed: 1 });
  const tuned = syntheticFinetune(base, { seed: 2 });
  const baseWeights = readFloatWeights(base);
  const tunedWeights = readFloatWeights(tuned);
  const params = [...baseWeights.values()].reduce((n, w) => n + w.data.length, 0);
  const rows: string[] = [];
  const cases: [PruneMethod, number][] = [
    ['dare', 0.9],
    ['dare', 0.99],
    ['magnitude', 0.9],
  ];
  for (const [method, dropRate] of cases) {
    const times: number[] = [];
    let nonzeros = 0;
    for (let r = 0; r < REPETITIONS; r++) {
      const started = performance.now();
      const delta = buildDelta(baseWeights, tunedWeights, {
        method,
        dropRate,
        seed: r,
        valueDtype: 'F32',
        selection: { include: [], exclude: [], dense: DEFAULT_DENSE_PATTERNS },
        baseFingerprint: 'f'.repeat(64),
      });
      times.push(performance.now() - started);
      nonzeros = delta.tensors.reduce((n, t) => n + t.values.length, 0);
    }
    const ms = median(times);
    rows.push(
      `| ${method} | ${dropRate} | ${(params / 1e6).toFixed(1)} | ${(nonzeros / 1e6).toFixed(2)} | ${ms.toFixed(0)} | ${(params / 1e6 / (ms / 1000)).toFixed(0)} |`,
    );
  }
  return [
    '### Compression (`buildDelta`, one core)',
    '',
    machineLine('node --import tsx bench/compress.ts'),
    '',
    `BERT-base-shaped synthetic encoder, synthetic fine-tune (δ ~ N(0, 0.002)); median of ${REPETITIONS}; model generation and weight reading excluded.`,
    '',
    '| method | drop rate | M params | M nonzeros kept | median ms | M params/s |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runCompressBench());
}
