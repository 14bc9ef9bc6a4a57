/**
 * Files we are told to read must be regular files: a FIFO at the state-file path (or the config,
 * the manifest, a delta under the file root) used to hang start-up silently (issue 22, item 10).
 * Every test here uses a real FIFO made with mkfifo, with no writer: reading it would block forever.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/core/config.js';
import { readInputFile } from '../../src/core/read-input-file.js';
import { NotRegularFileError, readRegularFile } from '../../src/core/regular-file.js';
import { loadManifest } from '../../src/registry/manifest.js';
import { readRegistryState } from '../../src/registry/registry-state.js';
import { FileDeltaSource } from '../../src/deltas/source/file-source.js';
import { loadOnnxModel } from '../../src/onnx/model-file.js';

let dir: string;
let fifo: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-fifo-'));
  fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
});
after(async () => {
  // A reader that did block (the bug) holds a libuv thread until a writer opens the FIFO: open
  // it for writing so a failing run ends instead of waiting for the test timeout.
  for (let i = 0; i < 8; i++) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      break; // ENXIO: no reader left
    }
  }
  await rm(dir, { recursive: true, force: true });
});

/** Rejects with 'hung' when `promise` neither resolves nor rejects within 5 s (a blocked open). */
async function settle<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown } | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 5000)));
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function assertRefused(what: string, promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const outcome = await settle(promise);
  assert.notEqual(outcome, 'hung', `${what}: reading a FIFO hung`);
  assert.ok(outcome !== 'hung' && !outcome.ok, `${what}: a FIFO was read as a file`);
  assert.match(String((outcome as { error: Error }).error.message), pattern, what);
}

test('readRegularFile reads regular files and refuses a FIFO, a folder and /dev/zero at once', async () => {
  const file = join(dir, 'plain.txt');
  await writeFile(file, 'hello');
  assert.equal(await readRegularFile(file, 'utf8'), 'hello');
  assert.deepEqual([...(await readRegularFile(file))], [...Buffer.from('hello')]);
  await assertRefused('fifo', readRegularFile(fifo), /pipe is a FIFO \(named pipe\), not a regular file/);
  await assertRefused('folder', readRegularFile(dir), /is a folder, not a regular file/);
  await assertRefused('/dev/zero', readRegularFile('/dev/zero'), /\/dev\/zero is a character device/);
  const outcome = await settle(readRegularFile(fifo));
  assert.ok(outcome !== 'hung' && !outcome.ok && outcome.error instanceof NotRegularFileError);
  await assert.rejects(readRegularFile(join(dir, 'missing')), { code: 'ENOENT' });
});

test('every file the gateway opens refuses a FIFO with a message naming it', async () => {
  await assertRefused('config', loadConfig({ path: fifo, env: {} }), /DS_ERR|configuration file .*pipe is a FIFO/);
  await assertRefused('manifest', loadManifest(fifo), /model manifest .*pipe is a FIFO/);
  await assertRefused('state file', readRegistryState(fifo), /pipe is a FIFO \(named pipe\), not a regular file/);
  await assertRefused('model', loadOnnxModel(fifo), /pipe is a FIFO/);
  await assertRefused('CLI input', readInputFile(fifo, 'delta file'), /delta file .*pipe.*FIFO/);
  const source = new FileDeltaSource({ root: dir });
  await assertRefused('delta file', source.fetch('pipe', 'a'.repeat(64)), /not a regular file/);
});
