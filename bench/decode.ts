/**
 * Delta decode throughput: how fast the server turns a fetched delta file into a validated
 * in-memory Delta on a cache miss (goal: ≥ 1 GB/s of file on one core).
 *
 * Builds a BERT-base-like delta in memory (12 layers × (4 × 768×768 + 2 × 768×3072) at drop
 * rate 0.9, about 8.5 M nonzeros), encodes it as fp32 and fp16, then times `decodeDelta` with
 * the base-shape and fingerprint checks a server runs. Run: node --import tsx bench/decode.ts
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { median } from '../loadtest/runner/stats.js';
import { SeededRng } from '../src/core/rng.js';
import { decodeDelta, encodeDelta } from '../src/deltas/format/delta-file.js';
import type { BaseWeightShapes, Delta, DeltaValueDtype, SparseTensorDelta } from '../src/deltas/types.js';

const LAYERS = 12;
const HIDDEN = 768;
const INTERMEDIATE = 3072;
const DROP_RATE = 0.9;
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
function sparseTensor(rng: SeededRng, name: string, shape: number[]): SparseTensorDelta {
  const numel = shape.reduce((a, b) => a * b, 1);
  const logDrop = Math.log(DROP_RATE);
  const indices: number[] = [];
  for (let position = Math.floor(Math.log(rng.nextOpenFloat()) / logDrop); position < numel;) {
    indices.push(position);
    position += 1 + Math.floor(Math.log(rng.nextOpenFloat()) / logDrop);
  }
  const rescale = 1 / (1 - DROP_RATE);
  const values = new Float32Array(indices.length);
  for (let i = 0; i < values.length; i++) values[i] = rng.nextNormal() * 0.003 * rescale;
  return { kind: 'sparse', name, shape, indices: Uint32Array.from(indices), values, rescale };
}

function buildDelta(shapes: Map<string, number[]>, valueDtype: DeltaValueDtype): Delta {
  const rng = new SeededRng(1234);
  return {
    metadata: {
      formatVersion: 1,
      baseFingerprint: FINGERPRINT,
      method: 'dare',
      dropRate: DROP_RATE,
      rescale: 1 / (1 - DROP_RATE),
      seed: 1234,
      valueDtype,
      sourceBaseSha256: null,
      sourceFinetunedSha256: null,
      extra: { generator: 'bench/decode.ts' },
    },
    tensors: [...shapes].map(([name, shape]) => sparseTensor(rng, name, shape)),
  };
}

interface Row {
  readonly label: string;
  readonly fileBytes: number;
  readonly nnz: number;
  readonly medianMs: number;
}

function timeDecode(label: string, bytes: Uint8Array, baseShapes: BaseWeightShapes, copy: boolean): Row {
  const samples: number[] = [];
  let nnz = 0;
  // One untimed warm-up run lets V8 optimise the validation loops, as a long-running server has.
  for (let rep = 0; rep <= REPETITIONS; rep++) {
    const start = process.hrtime.bigint();
    const delta = decodeDelta(bytes, { baseShapes, expectedBaseFingerprint: FINGERPRINT, copy });
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    if (rep > 0) samples.push(elapsed);
    nnz = delta.tensors.reduce((sum, t) => sum + t.values.length, 0);
  }
  return { label, fileBytes: bytes.length, nnz, medianMs: median(samples) };
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
    `CPU: ${cpus()[0]?.model ?? 'unknown'} · Node ${process.version} · \`node --import tsx bench/decode.ts\``,
    '',
    '| values | file MB | nonzeros (M) | median decode ms | GB/s | M nonzeros/s |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.label} | ${(row.fileBytes / 1e6).toFixed(1)} | ${(row.nnz / 1e6).toFixed(2)} | ${row.medianMs.toFixed(1)} | ` +
        `${(row.fileBytes / 1e9 / (row.medianMs / 1e3)).toFixed(2)} | ${(row.nnz / 1e6 / (row.medianMs / 1e3)).toFixed(0)} |`,
    ),
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runDecodeBench());
}
