/**
 * What the nesting bound of the JSON body parser (src/http/json-body.ts) costs a normal body:
 * JSON.parse alone against the bracket scan + JSON.parse, on ~4 MB infer bodies (flat FP32 data,
 * and nested integer images), medians of alternating runs in one process. Reported as the ratio.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../src/http/json-body.js';
import { machineLine } from './machine.js';
import { median } from '../loadtest/runner/stats.js';

const RUNS = 31;

function bodies(): [string, string][] {
  const flatRows = 700;
  const flat = JSON.stringify({
    inputs: [
      {
        name: 'pixels',
        shape: [flatRows, 1, 28, 28],
        datatype: 'FP32',
        data: Array.from({ length: flatRows * 784 }, (_, i) => ((i * 7919) % 1000) / 1000),
      },
    ],
  });
  const images = 1400;
  const nested = JSON.stringify({
    inputs: [
      {
        name: 'pixels',
        shape: [images, 1, 28, 28],
        datatype: 'FP32',
        data: Array.from({ length: images }, (_, r) => [
          Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => (r + x + y) % 256)),
        ]),
      },
    ],
  });
  return [
    ['flat FP32 values', flat],
    ['nested 28×28 integer images', nested],
  ];
}

export async function runJsonDepthBench(): Promise<string> {
  const load = loadavg()[0]!.toFixed(1);
  const lines = [
    machineLine('npm run bench -- json-depth'),
    `Shared machine: load average ${load} (1 min) when the run started.`,
    '',
    '| body | size | JSON.parse (median) | scan (median) | scan + parse ÷ parse |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const [name, body] of bodies()) {
    const parse: number[] = [];
    const scan: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let started = performance.now();
      JSON.parse(body);
      parse.push(performance.now() - started);
      started = performance.now();
      if (nestedDeeperThan(body, MAX_JSON_DEPTH)) throw new Error('a normal body was refused');
      scan.push(performance.now() - started);
    }
    const p = median(parse);
    const s = median(scan);
    lines.push(
      `| ${name} | ${(body.length / 1024 ** 2).toFixed(1)} MB | ${p.toFixed(1)} ms | ${s.toFixed(1)} ms | ${((p + s) / p).toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}
