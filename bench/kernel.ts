/**
 * Side-kernel throughput (issue 10): G MAC/s per core of each kernel path on a BERT-base-like
 * linear, 768 → 3072, 16 requests of 128 tokens, each with its own DARE delta (p = 0.99 and
 * 0.9) and bias, as one mixed batch hands them to the kernel between two ORT runs.
 * A MAC is one kept delta entry times one token; the time includes everything a call does
 * (argument checks, index scan, grouping by column, both transposes, writing all of `out`).
 * Run: node --import tsx bench/kernel.ts
 */
import { fileURLToPath } from 'node:url';
import { SeededRng } from '../src/core/rng.js';
import { createJsKernel } from '../src/engine/runtime/mixed/kernel/js-kernel.js';
import { kernelFromEnv } from '../src/engine/runtime/mixed/kernel/load-kernel.js';
import { createNativeKernel, loadNativeAddon } from '../src/engine/runtime/mixed/kernel/native-kernel.js';
import type { SideJob, SideKernel } from '../src/engine/runtime/mixed/kernel/side-kernel.js';
import { machineLine } from './machine.js';
import { median } from '../loadtest/runner/stats.js';

const IN_DIM = 768;
const OUT_DIM = 3072;
const TOKENS = 128;
const JOBS = 16;
const DROP_RATES = [0.99, 0.9] as const;
const THREADS = [1, 2] as const;
const REPETITIONS = { native: 7, js: 3 };

/** One request's delta: kept positions with geometric gaps, as DARE keeps them. */
function dareJob(rng: SeededRng, job: number, dropRate: number): SideJob {
  const logDrop = Math.log(dropRate);
  const kept: number[] = [];
  for (
    let p = Math.floor(Math.log(rng.nextOpenFloat()) / logDrop);
    p < IN_DIM * OUT_DIM;
    p += 1 + Math.floor(Math.log(rng.nextOpenFloat()) / logDrop)
  ) {
    kept.push(p);
  }
  const values = Float32Array.from(kept, () => (rng.nextNormal() * 0.003) / (1 - dropRate));
  return {
    rowStart: job * TOKENS,
    rowCount: TOKENS,
    weight: { kind: 'sparse', indices: Uint32Array.from(kept), values },
    bias: Float32Array.from({ length: OUT_DIM }, () => rng.nextNormal() * 0.01),
  };
}

interface Row {
  readonly kernel: string;
  readonly threads: number;
  readonly dropRate: number;
  readonly macs: number;
  readonly medianMs: number;
  readonly gmacs: number;
}

function timeKernel(
  kernel: SideKernel,
  x: Float32Array,
  out: Float32Array,
  jobs: SideJob[],
  macs: number,
  dropRate: number,
): Row {
  const repetitions = kernel.name === 'js' ? REPETITIONS.js : REPETITIONS.native;
  const samples: number[] = [];
  for (let rep = 0; rep <= repetitions; rep++) {
    const start = process.hrtime.bigint();
    kernel.sideProduct(x, IN_DIM, out, OUT_DIM, jobs);
    if (rep > 0) samples.push(Number(process.hrtime.bigint() - start) / 1e6); // first run: warm-up
  }
  const medianMs = median(samples);
  return {
    kernel: kernel.name,
    threads: kernel.threads,
    dropRate,
    macs,
    medianMs,
    gmacs: macs / (medianMs / 1e3) / 1e9,
  };
}

function kernels(): SideKernel[] {
  const list: SideKernel[] = [];
  if (kernelFromEnv() !== 'js') {
    const addon = loadNativeAddon();
    for (const path of addon.paths())
      for (const threads of THREADS) list.push(createNativeKernel(addon, { threads, path }));
  }
  list.push(createJsKernel());
  return list;
}

export async function runKernelBench(): Promise<string> {
  const rng = new SeededRng(10);
  const x = Float32Array.from({ length: JOBS * TOKENS * IN_DIM }, () => rng.nextNormal());
  const out = new Float32Array(JOBS * TOKENS * OUT_DIM);
  const rows: Row[] = [];
  for (const dropRate of DROP_RATES) {
    const jobs = Array.from({ length: JOBS }, (_, job) => dareJob(rng, job, dropRate));
    const macs = jobs.reduce((sum, job) => sum + (job.weight?.values.length ?? 0) * job.rowCount, 0);
    for (const kernel of kernels()) rows.push(timeKernel(kernel, x, out, jobs, macs, dropRate));
  }
  return [
    '### Side-path kernel (mixed engine), G MAC/s per core',
    '',
    machineLine('npm run bench -- kernel'),
    '',
    `One call: ${JOBS} requests × ${TOKENS} tokens, linear ${IN_DIM} → ${OUT_DIM}, each request its own DARE delta and bias; ` +
      `median of ${REPETITIONS.native} calls (JS: ${REPETITIONS.js}) after one warm-up. Time covers the whole call ` +
      '(checks, grouping by column, transposes, writing every output). Per core = total ÷ threads. The JS kernel runs on the calling thread only.',
    '',
    "For comparison, issue 10's probe: 14–17 G MAC/s on one core for the multiply-add loop alone in C at `-march=native` " +
      '(no transposes, no writing of `out`), 2.5 as WASM SIMD128, 0.44 in plain JS. Every path here gives the same bits ' +
      '(no fused multiply-add; test/engine/mixed/kernel-equivalence.test.ts). The machine is shared with other jobs, so compare rows of one run.',
    '',
    '| kernel | threads | drop rate p | M MAC | median ms | G MAC/s | G MAC/s per core |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.kernel} | ${row.threads} | ${row.dropRate} | ${(row.macs / 1e6).toFixed(0)} | ${row.medianMs.toFixed(1)} | ` +
        `${row.gmacs.toFixed(2)} | ${(row.gmacs / row.threads).toFixed(2)} |`,
    ),
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runKernelBench());
}
