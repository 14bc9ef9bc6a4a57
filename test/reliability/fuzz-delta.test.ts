/**
 * Fuzzing the delta decoder (`decodeDelta`, src/deltas/format) in-process with seeded mutations
 * of valid delta files (./fuzz-delta-mutations.ts): the zoo's real coarse4 delta (fp32 values,
 * checked against the real base's weight shapes and fingerprint) and the format tests' small
 * fp32 and fp16 deltas (checked with and without base shapes).
 *
 * Properties: decoding returns or throws one of the project's DS_ERR_* errors, nothing else (no
 * RangeError, TypeError, SyntaxError or out-of-memory from a hostile length or shape); it ends
 * within a bound; and what it returns is valid (every index inside its tensor, strictly
 * increasing, one value per index, every value finite, shapes matching the base when given).
 * 600 files in `npm run test:long` (and CI), 150 in `npm test` (./test-length.ts);
 * DELTASERVE_FUZZ_SCALE multiplies them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { decodeDelta, encodeDelta, type DecodeDeltaOptions } from '../../src/deltas/format/delta-file.js';
import type { Delta } from '../../src/deltas/types.js';
import { loadOnnxModel } from '../../src/onnx/model-file.js';
import { readFloatWeights, weightShapes } from '../../src/onnx/weights.js';
import { fingerprintWeights } from '../../src/onnx/fingerprint.js';
import { FINGERPRINT, sampleBaseShapes, sampleDelta } from '../deltas/format/fixtures.js';
import { deltaMutation, mutatedDelta } from './fuzz-delta-mutations.js';
import { ROOT, fuzzRuns, fuzzSeed, fuzzSettings, fuzzTimeoutMs } from './fuzz-gateway.js';
import { byLength } from './test-length.js';

const RUNS = fuzzRuns(byLength(150, 600));
const DECODE_BOUND_MS = 5_000;

interface Seed {
  readonly label: string;
  readonly bytes: Uint8Array;
  readonly options: DecodeDeltaOptions;
}

async function seeds(): Promise<Seed[]> {
  const model = await loadOnnxModel(join(ROOT, 'models/base/model.onnx'));
  const weights = readFloatWeights(model);
  const zooShapes: ReadonlyMap<string, readonly number[]> = weightShapes(model);
  const zoo = new Uint8Array(await readFile(join(ROOT, 'models/tasks/coarse4/delta.safetensors')));
  const small32 = encodeDelta(sampleDelta('F32'));
  const small16 = encodeDelta(sampleDelta('F16'));
  return [
    {
      label: 'zoo coarse4 vs the real base',
      bytes: zoo,
      options: { baseShapes: zooShapes, expectedBaseFingerprint: fingerprintWeights(weights) },
    },
    { label: 'zoo coarse4, no base', bytes: zoo, options: {} },
    {
      label: 'small F32 vs its base',
      bytes: small32,
      options: { baseShapes: sampleBaseShapes(), expectedBaseFingerprint: FINGERPRINT },
    },
    {
      label: 'small F16 vs its base',
      bytes: small16,
      options: { baseShapes: sampleBaseShapes(), expectedBaseFingerprint: FINGERPRINT },
    },
    { label: 'small F32, no base', bytes: small32, options: {} },
    { label: 'small F16, copy, no base', bytes: small16, options: { copy: true } },
  ];
}

/** What a decoded delta must satisfy; returns the first violation, or null. */
function invalidity(delta: Delta, options: DecodeDeltaOptions): string | null {
  for (const tensor of delta.tensors) {
    const numel = tensor.shape.reduce((a, b) => a * b, 1);
    if (!tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return `${tensor.name}: shape ${tensor.shape}`;
    const base = options.baseShapes?.get(tensor.name);
    if (options.baseShapes && (base === undefined || base.join() !== tensor.shape.join()))
      return `${tensor.name}: not a base weight of that shape`;
    if (!tensor.values.every(Number.isFinite)) return `${tensor.name}: a non-finite value`;
    if (tensor.kind === 'dense') {
      if (tensor.values.length !== numel)
        return `${tensor.name}: ${tensor.values.length} dense values for ${numel} elements`;
      continue;
    }
    if (tensor.indices.length !== tensor.values.length)
      return `${tensor.name}: ${tensor.indices.length} indices, ${tensor.values.length} values`;
    for (let i = 0; i < tensor.indices.length; i++) {
      if (tensor.indices[i]! >= numel) return `${tensor.name}: index ${tensor.indices[i]} ≥ ${numel}`;
      if (i > 0 && tensor.indices[i]! <= tensor.indices[i - 1]!)
        return `${tensor.name}: indices not increasing at ${i}`;
    }
  }
  return null;
}

test(
  `decodeDelta: ${RUNS} mutated delta files, only DS_ERR_* errors, bounded time, valid results`,
  { timeout: fuzzTimeoutMs(120_000) },
  async (t) => {
    const all = await seeds();
    for (const s of all)
      assert.equal(invalidity(decodeDelta(s.bytes, s.options), s.options), null, `${s.label} decodes before mutation`);
    const seed = fuzzSeed(424242);
    const codes = new Map<string, number>();
    let slowest = 0;
    const started = performance.now();
    fc.assert(
      fc.property(
        fc.nat(all.length - 1),
        fc.array(deltaMutation, { minLength: 1, maxLength: 4 }),
        (which, mutations) => {
          const s = all[which]!;
          const bytes = mutatedDelta(s.bytes, mutations);
          const began = performance.now();
          let outcome: string;
          try {
            const delta = decodeDelta(bytes, s.options);
            const problem = invalidity(delta, s.options);
            if (problem !== null) throw new Error(`${s.label}: decoded an invalid delta (${problem})`);
            outcome = 'decoded';
          } catch (error) {
            const code = (error as { code?: unknown }).code;
            if (typeof code !== 'string' || !code.startsWith('DS_ERR_'))
              throw new Error(`${s.label}: threw ${String(error)}`, { cause: error });
            outcome = code;
            // Error messages quote untrusted content bounded (issue 22, item 3).
            const message = String((error as Error).message);
            if (message.length > 2000)
              throw new Error(`${s.label}: a ${message.length}-character message (${code})`, { cause: error });
          }
          const ms = performance.now() - began;
          slowest = Math.max(slowest, ms);
          if (ms > DECODE_BOUND_MS) throw new Error(`${s.label}: decoding took ${ms.toFixed(0)} ms`);
          codes.set(outcome, (codes.get(outcome) ?? 0) + 1);
        },
      ),
      fuzzSettings(seed, RUNS),
    );
    const summary = [...codes]
      .sort(([, a], [, b]) => b - a)
      .map(([code, n]) => `${code}×${n}`)
      .join(' ');
    t.diagnostic(
      `decodeDelta: seed ${seed}, ${RUNS} files in ${((performance.now() - started) / 1000).toFixed(1)} s, slowest ${slowest.toFixed(1)} ms; ${summary}`,
    );
    // The mutations must reach past the container into the delta checks, not only break the header.
    assert.ok(codes.size >= 6, `only ${codes.size} distinct outcomes: ${summary}`);
  },
);
