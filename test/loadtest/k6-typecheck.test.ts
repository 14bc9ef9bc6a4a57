/**
 * The k6 scripts are type-checked against @types/k6 with their own tsconfig (k6 is not Node),
 * and the check has teeth: deliberately broken scripts, next to a correct one in the same
 * project, each fail with the expected diagnostic while the correct one passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript-native', 'bin', 'tsc');

function tsc(project: string): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [TSC, '-p', project, '--pretty', 'false'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

test('the k6 scripts type-check against @types/k6', () => {
  const { status, output } = tsc('loadtest/k6/tsconfig.json');
  assert.equal(status, 0, output);
});

const BROKEN: Record<string, { source: string; diagnostic: RegExp }> = {
  'node-api.ts': {
    // k6 has no `process`: reading the environment goes through __ENV.
    source: `export default function (): void { const url: string = process.env.BASE_URL ?? ''; void url; }\n`,
    diagnostic: /node-api\.ts\(\d+,\d+\): error TS25(80|91): Cannot find name 'process'/,
  },
  'bad-options.ts': {
    source: [
      `import type { Options } from 'k6/options';`,
      `export const options: Options = { scenarios: { s: { executor: 'constant-arrival-rate', rate: '20', duration: '10s', preAllocatedVUs: 1 } } };`,
      '',
    ].join('\n'),
    diagnostic: /bad-options\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/,
  },
  'bad-http.ts': {
    source: `import http from 'k6/http';\nexport default function (): void { http.post(8080); }\n`,
    diagnostic:
      /bad-http\.ts\(\d+,\d+\): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string/,
  },
  'bad-shared.ts': {
    source: `import { SCENARIO } from '../scenarios/scenarios.ts';\nexport default function (): void { void SCENARIO; }\n`,
    diagnostic:
      /bad-shared\.ts\(\d+,\d+\): error TS2724: '"\.\.\/scenarios\/scenarios\.ts"' has no exported member named 'SCENARIO'/,
  },
};

test('deliberately broken k6 scripts fail the same check; a correct one beside them passes', () => {
  // Inside the repository, so `types: ["k6"]` resolves node_modules/@types/k6 as for the real scripts.
  const dir = mkdtempSync(join(ROOT, 'loadtest', '.typecheck-'));
  try {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: '../k6/tsconfig.json', include: ['./*.ts'] }));
    writeFileSync(
      join(dir, 'correct.ts'),
      [
        `import http from 'k6/http';`,
        `import { SCENARIOS, thresholdsOf } from '../scenarios/scenarios.ts';`,
        `export const options = { thresholds: thresholdsOf(SCENARIOS[0]!) };`,
        `export default function (): void { http.get(__ENV.BASE_URL ?? 'http://127.0.0.1:8080'); }`,
        '',
      ].join('\n'),
    );
    for (const [file, { source }] of Object.entries(BROKEN)) writeFileSync(join(dir, file), source);
    const { status, output } = tsc(join(dir, 'tsconfig.json'));
    assert.notEqual(status, 0, 'the broken scripts passed the type check');
    for (const [file, { diagnostic }] of Object.entries(BROKEN))
      assert.match(output, diagnostic, `${file}: expected diagnostic missing in\n${output}`);
    assert.doesNotMatch(output, /correct\.ts/, output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
