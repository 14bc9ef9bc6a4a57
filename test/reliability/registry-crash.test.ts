/**
 * Registry crash safety: a child process registers tasks in a loop against a state file
 * (TaskRegistry + writeFileAtomic) and is killed with SIGKILL after a random delay, many times,
 * each trial continuing from the state the previous one left. After each kill the file is
 * reopened as the gateway would: it must hold exactly the registrations that finished, plus at
 * most the one in progress — the old state or the new one, never a torn or partial one.
 *
 * Where each kill landed is read from what it left: a new temporary file (killed after the
 * temp file was created, before the rename), the registration in progress present in the state
 * (killed after the rename, before the child printed `done`), absent (killed before the temp
 * file was written), or no registration in progress.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRng } from '../../src/core/rng.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { ROOT } from './gateway-process.js';
import { byLength } from './test-length.js';

const TRIALS = Number(process.env.DELTASERVE_REGISTRY_CRASH_TRIALS ?? byLength(6, 30));
/** Kill delays after the child is ready, uniform in [0, MAX_DELAY_MS). */
const MAX_DELAY_MS = 60;

type Phase = 'before temp write' | 'between temp write and rename' | 'after rename' | 'between registrations';

interface Trial {
  readonly lastBegun: number;
  readonly lastDone: number;
}

function killAfterRandomDelay(stateFile: string, delayMs: number): Promise<Trial> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'test/reliability/registry-writer.ts'), stateFile],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | null = null;
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (timer === null && out.includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      if (signal !== 'SIGKILL') return reject(new Error(`the writer ended by itself (code ${code}): ${err}`));
      const numbers = (word: string) =>
        [...out.matchAll(new RegExp(`^${word} (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
      const start = numbers('ready')[0];
      if (start === undefined) return reject(new Error(`killed before it was ready: ${err}`));
      resolve({
        lastBegun: Math.max(start - 1, ...numbers('begin')),
        lastDone: Math.max(start - 1, ...numbers('done')),
      });
    });
  });
}

const temps = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.tmp'));

/** Independent state files killed in parallel (the child's start-up dominates a trial's time). */
const LANES = 3;

test(
  `registry state survives kill -9 at random points of registration (${TRIALS} trials): old or new, never torn`,
  { timeout: 30_000 + TRIALS * 10_000 },
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'deltaserve-registry-crash-'));
    const rng = new SeededRng(Number(process.env.DELTASERVE_REGISTRY_CRASH_SEED ?? 8));
    const phases: Record<Phase, number> = {
      'before temp write': 0,
      'between temp write and rename': 0,
      'after rename': 0,
      'between registrations': 0,
    };
    let registrations = 0;
    let trials = 0;
    const lane = async (index: number): Promise<void> => {
      const dir = join(root, `lane-${index}`);
      await mkdir(dir);
      const stateFile = join(dir, 'registry.json');
      while (trials < TRIALS) {
        const trial = trials++;
        const { lastBegun, lastDone } = await killAfterRandomDelay(stateFile, rng.nextFloat() * MAX_DELAY_MS);
        const newTemps = await temps(dir); // the registry removed older ones when it reopened
        // Temp files younger than the lock's staleness bound may be a live replica's write, so a
        // reopen keeps them; age this one as a restart after that bound would find it.
        const longAgo = new Date(Date.now() - 60_000);
        for (const temp of newTemps) await utimes(join(dir, temp), longAgo, longAgo);

        // Reopened as the gateway does at start-up: a torn file would throw DS_ERR_REGISTRY_STATE_INVALID.
        const registry = await TaskRegistry.open({ declared: [], stateFile });
        registry.close();
        assert.deepEqual(await temps(dir), [], "the reopened registry removed the dead writer's temp file");
        const sorted = registry.names().sort().join();
        const isOld =
          sorted ===
          Array.from({ length: lastDone + 1 }, (_, i) => `t${i}`)
            .sort()
            .join();
        const isNew =
          sorted ===
          Array.from({ length: lastBegun + 1 }, (_, i) => `t${i}`)
            .sort()
            .join();
        assert.ok(
          isOld || isNew,
          `trial ${trial}: state has ${registry.names().length} tasks; finished ${lastDone + 1}, begun ${lastBegun + 1}`,
        );
        for (const task of registry.all())
          assert.match(
            task.description,
            new RegExp(`^task ${task.name.slice(1)} \\.+$`),
            `trial ${trial}: ${task.name} intact`,
          );
        assert.ok(newTemps.length <= 1, `trial ${trial}: ${newTemps.length} temp files`);
        if (newTemps.length > 0)
          assert.ok(isOld, `trial ${trial}: a temp file not yet renamed, yet the new state was read`);

        const phase: Phase =
          lastBegun === lastDone
            ? 'between registrations'
            : newTemps.length > 0
              ? 'between temp write and rename'
              : isNew
                ? 'after rename'
                : 'before temp write';
        phases[phase]++;
      }
      const last = await TaskRegistry.open({ declared: [], stateFile });
      registrations += last.names().length;
      last.close();
    };
    try {
      await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i)));
    } finally {
      await rm(root, { recursive: true, force: true });
      console.log(
        `registry-crash: ${trials} kill -9 trials in ${LANES} lanes, ${registrations} registrations survived in the end, kills landed: ${JSON.stringify(phases)}`,
      );
    }
    assert.ok(
      phases['before temp write'] + phases['between temp write and rename'] + phases['after rename'] > 0,
      'some kill landed inside a registration',
    );
  },
);
