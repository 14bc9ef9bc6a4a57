/**
 * Delta decode throughput: how fast the server turns a fetched delta file into a validated
 * in-memory Delta on a cache miss (goal: ≥ 1 GB/s of file on one core).
 *
 * Builds a BERT-base-like delta in memory (12 layers × (4 × 768×768 + 2 × 768×3072) at drop
 * rate 0.9, about 8.5 M nonzeros), encodes it as fp32 and fp16, then times `decodeDelta` with
 * the base-shape and fingerprint checks a server runs. Run: node --import tsx bench/decode.ts
 */
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { median } from '../loadtest/runner/stats.js';
import { SeededRng } from '../src/core/rng.js';
import { dareKeptIndices } from '../src/compress/dare.js';
import { quantizeDelta, type ValueChoice } from '../src/compress/quantize.js';
import { decodeDelta, encodeDelta, inspectDelta } from '../src/deltas/format/delta-file.js';
import { deltaByteSize } from '../src/deltas/cache/delta-size.js';
import type { BaseWeightShapes, Delta, DeltaValueDtype, SparseTensorDelta } from '../src/deltas/types.js';

const LAYERS = 12;
const HIDDEN = 768;
const INTERMEDIATE = 3072;
const DROP_RATE = 0.9;
/** The delta cache's default budget (config deltaCacheBytes): how many decoded deltas it holds. */
const CACHE_BYTES = 1024 ** 3;
const REPETITIONS = 7;
const FINGERPRINT = 'f'.repeat(64);

function bertLikeShapes(): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (let layer = 0; layer < LAYERS; layer++) {
    const prefix = `encoder.layer.${layer}`;
    for (const name of ['attention.query', 'attention.key', 'attention.value', 'attention.output']) {
      shapes.set(`${prefix}.${name}.weight`, [HIDDEN, HIDDEN]);
    }
    shapes.set(`${prefix}.intermediate.weight`, [HIDDEN, INTERMEDIATE]);
    shapes.set(`${prefix}.output.weight`, [INTERMEDIATE, HIDDEN]);
  }
  return shapes;
}

/** Kept positions drawn with geometric gaps (one draw per kept entry instead of per element). */
function sparseTensor(rng: SeededRng, name: string, shape: number[], dropRate = DROP_RATE): SparseTensorDelta {
  const numel = shape.reduce((a, b) => a * b, 1);
  const logDrop = Math.log(dropRate);
  const indices: number[] = [];
  for (let position = Math.floor(Math.log(rng.nextOpenFloat()) / logDrop); position < numel;) {
    indices.push(position);
    position += 1 + Math.floor(Math.log(rng.nextOpenFloat()) / logDrop);
  }
  const rescale = 1 / (1 - dropRate);
  const values = new Float32Array(indices.length);
  for (let i = 0; i < values.length; i++) values[i] = rng.nextNormal() * 0.003 * rescale;
  return { kind: 'sparse', name, shape, indices: Uint32Array.from(indices), values, rescale };
}

function buildDelta(shapes: Map<string, number[]>, valueDtype: DeltaValueDtype, dropRate = DROP_RATE): Delta {
  const rng = new SeededRng(1234);
  return {
    metadata: {
      formatVersion: 1,
      baseFingerprint: FINGERPRINT,
      method: 'dare',
      dropRate,
      rescale: 1 / (1 - dropRate),
      seed: 1234,
      valueDtype,
      sourceBaseSha256: null,
      sourceFinetunedSha256: null,
      extra: { generator: 'bench/decode.ts' },
    },
    tensors: [...shapes].map(([name, shape]) => sparseTensor(rng, name, shape, dropRate)),
  };
}

interface Row {
  readonly label: string;
  readonly fileBytes: number;
  readonly nnz: number;
  readonly medianMs: number;
}

function timeDecode(
  label: string,
  bytes: Uint8Array,
  baseShapes: BaseWeightShapes,
  copy: boolean,
  repetitions = REPETITIONS,
): Row & { memoryBytes: number } {
  const samples: number[] = [];
  let nnz = 0;
  let memoryBytes = 0;
  // One untimed warm-up run lets V8 optimise the validation loops, as a long-running server has.
  for (let rep = 0; rep <= repetitions; rep++) {
    const start = process.hrtime.bigint();
    const delta = decodeDelta(bytes, { baseShapes, expectedBaseFingerprint: FINGERPRINT, copy });
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    if (rep > 0) samples.push(elapsed);
    nnz = delta.tensors.reduce((sum, t) => sum + t.values.length, 0);
    memoryBytes = deltaByteSize(delta);
  }
  return { label, fileBytes: bytes.length, nnz, medianMs: median(samples), memoryBytes };
}

/**
 * Format version 2 on the same BERT-shaped deltas at p = 0.9 and 0.99: file size, bits per
 * parameter, decode speed, and what one cached delta costs (decoded form, as the cache holds it
 * today: U32 index + F32 value per kept entry; and the file's data, the compressed form).
 */
function formatComparison(shapes: Map<string, number[]>): string[] {
  const params = [...shapes.values()].reduce((n, s) => n + s[0]! * s[1]!, 0);
  const lines = [
    '',
    `#### Format version 2 (compact indices, quantized values), median of 3; ${(params / 1e6).toFixed(1)} M parameters`,
    '',
    '| p | format / values | file MB | bits/param | decode ms | GB/s of file | decoded bytes / kept entry | decoded deltas in 1 GiB | file deltas in 1 GiB |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const dropRate of [0.9, 0.99]) {
    const delta = buildDelta(shapes, 'F16', dropRate);
    const variants: [string, Delta][] = [
      ['v1 fp16', delta],
      ...(['fp16', 'int8', 'int4'] as ValueChoice[]).map((v): [string, Delta] => [`v2 ${v}`, quantizeDelta(delta, v)]),
    ];
    for (const [label, variant] of variants) {
      const bytes = encodeDelta(variant);
      const row = timeDecode(label, bytes, shapes, false, 3);
      const data = inspectDelta(variant).totals.dataBytes;
      lines.push(
        `| ${dropRate} | ${label} | ${(bytes.length / 1e6).toFixed(2)} | ${((bytes.length * 8) / params).toFixed(3)} | ${row.medianMs.toFixed(1)} | ${(bytes.length / 1e9 / (row.medianMs / 1e3)).toFixed(2)} | ${(row.memoryBytes / row.nnz).toFixed(1)} | ${Math.floor(CACHE_BYTES / row.memoryBytes)} | ${Math.floor(CACHE_BYTES / data)} |`,
      );
    }
  }
  // Regenerating DARE's uniform mask from its seed instead of storing it: one RNG draw and a log
  // per kept entry (bench of the compressor's own generator), against the stored gap stream.
  const rng = new SeededRng(1234);
  const start = process.hrtime.bigint();
  let kept = 0;
  for (const [, shape] of shapes) kept += dareKeptIndices(shape[0]! * shape[1]!, 0.9, rng).length;
  const regenerateMs = Number(process.hrtime.bigint() - start) / 1e6;
  lines.push(
    '',
    `Regenerating a p = 0.9 uniform mask from its seed (${(kept / 1e6).toFixed(2)} M kept positions, src/compress/dare.ts): ${regenerateMs.toFixed(0)} ms, against the stored 4-bit gap stream it would replace (≈ 0.63 bytes per kept entry, ${((kept * 0.63 * 8) / params).toFixed(2)} bits/param) whose expansion is part of the decode times above.`,
  );
  return lines;
}

/** Runs the benchmark and returns the report as markdown. */
export async function runDecodeBench(): Promise<string> {
  const shapes = bertLikeShapes();
  const rows: Row[] = [];
  for (const valueDtype of ['F32', 'F16'] as const) {
    const bytes = encodeDelta(buildDelta(shapes, valueDtype));
    rows.push(timeDecode(`${valueDtype.toLowerCase()} values`, bytes, shapes, false));
    if (valueDtype === 'F32') rows.push(timeDecode('f32 values, copy: true', bytes, shapes, true));
  }
  const lines = [
    `### Delta decode (decodeDelta with baseShapes + fingerprint check), median of ${REPETITIONS}`,
    '',
    `BERT-base-like delta: ${LAYERS} layers × (4 × ${HIDDEN}×${HIDDEN} + 2 × ${HIDDEN}×${INTERMEDIATE}), drop rate ${DROP_RATE}.`,
    `CPU: ${cpus()[0]?.model ?? 'unknown'} · Node ${process.version} · \`node --import tsx bench/decode.ts\` · ${new Date().toISOString().slice(0, 10)} · load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' / ')} on ${cpus().length} cores (a shared machine: compare rows of one run, as ratios)`,
    '',
    '| values | file MB | nonzeros (M) | median decode ms | GB/s | M nonzeros/s |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.label} | ${(row.fileBytes / 1e6).toFixed(1)} | ${(row.nnz / 1e6).toFixed(2)} | ${row.medianMs.toFixed(1)} | ` +
        `${(row.fileBytes / 1e9 / (row.medianMs / 1e3)).toFixed(2)} | ${(row.nnz / 1e6 / (row.medianMs / 1e3)).toFixed(0)} |`,
    ),
    ...formatComparison(shapes),
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runDecodeBench());
}
