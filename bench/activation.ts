/**
 * `node --import tsx bench/activation.ts [--rounds N] [--p 0.99 --p 0.9]`: what a patch-mode task
 * switch costs with the delta as patch mode's cache holds it (fp16-exact values kept as fp16,
 * widened as they are added) against the same delta decoded to float32, in the same run.
 * BERT-base-shaped encoder and its fp16 delta files (bench/.work fixtures, `npm run bench --
 * engine` makes them); one switch = activate a task, then deactivate (restore the base). Per
 * round, tasks 0..7 in turn in each form; medians over rounds of the mean switch.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeDelta } from '../src/deltas/format/delta-file.js';
import { deltaByteSize } from '../src/deltas/cache/delta-size.js';
import type { ResidentDelta } from '../src/deltas/types.js';
import { PatchActivator } from '../src/engine/runtime/patch-activator.js';
import { patchResidentForm } from '../src/engine/runtime/resident-form.js';
import { loadOnnxModel } from '../src/onnx/model-file.js';
import { readFloatWeights } from '../src/onnx/weights.js';
import { percentile } from '../loadtest/runner/stats.js';
import { WORK_DIR } from './engine-fixtures.js';
import { machineLine } from './machine.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, p: { type: 'string', multiple: true } },
});
const rounds = Number(values.rounds);
const dropRates = (values.p ?? ['0.99', '0.9']).map(Number);
const TASKS = 8;

const weights = readFloatWeights(await loadOnnxModel(join(WORK_DIR, 'bert-base.onnx')));
const activator = new PatchActivator(weights);
const rows: string[] = [];
for (const p of dropRates) {
  const decoded = await Promise.all(
    Array.from({ length: TASKS }, async (_, t) =>
      decodeDelta(await readFile(join(WORK_DIR, `task-${t}-p${p}.safetensors`)), { copy: true }),
    ),
  );
  const forms: [string, ResidentDelta[]][] = [
    ['decoded, float32 values', decoded],
    ['as patch mode caches it (fp16 values)', decoded.map(patchResidentForm)],
  ];
  const times = new Map<string, number[]>();
  for (let round = 0; round <= rounds; round++) {
    for (const [name, deltas] of forms) {
      const started = performance.now();
      for (const [t, delta] of deltas.entries()) {
        activator.activate(`${name}-${t}`, delta);
        activator.deactivate();
      }
      // Round 0 warms both forms up (the scratch buffers grow once) and is not counted.
      if (round > 0) times.set(name, [...(times.get(name) ?? []), (performance.now() - started) / TASKS]);
    }
  }
  const first = percentile(times.get(forms[0]![0])!, 50);
  for (const [name, deltas] of forms) {
    const ms = percentile(times.get(name)!, 50);
    const mb = deltas.reduce((sum, d) => sum + deltaByteSize(d), 0) / deltas.length / 1e6;
    rows.push(
      `| p = ${p} | ${name} | ${mb.toFixed(1)} | ${ms.toFixed(1)} | ${(first / ms).toFixed(2)} | ${times
        .get(name)!
        .map((x) => x.toFixed(1))
        .join(', ')} |`,
    );
  }
}
console.log(
  [
    machineLine(`node --import tsx bench/activation.ts ${process.argv.slice(2).join(' ')}`),
    '',
    `Patch-mode task switches (activate, then restore the base) on the BERT-base-shaped encoder, ${TASKS} tasks per round, ${rounds} rounds after one warm-up round, one thread.`,
    '',
    '| drop rate | delta held | MB per delta | median ms per switch | speed × decoded | each round, ms |',
    '|---|---|---:|---:|---:|---|',
    ...rows,
  ].join('\n'),
);
