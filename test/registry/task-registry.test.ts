import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskSpec } from '../../src/core/config-types.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { readRegistryState } from '../../src/registry/registry-state.js';
import { writeFileAtomic } from '../../src/registry/atomic-write.js';

const sha = (c: string) => c.repeat(64);
const spec = (name: string, version: string, c = 'a', extra: Partial<TaskSpec> = {}): TaskSpec => ({
  name,
  version,
  uri: `${name}-${version}.safetensors`,
  sha256: sha(c),
  description: '',
  labels: null,
  numClasses: null,
  ...extra,
});
const ok = async () => undefined;

let dir: string;
let stateFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-registry-'));
  stateFile = join(dir, 'state', 'registry.json');
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const open = (declared: TaskSpec[] = [spec('alpha', '1'), spec('alpha', '2'), spec('beta', '1')]) =>
  TaskRegistry.open({ declared, stateFile });

test('declared tasks: lookup by name and version; the last declared version is the default', async () => {
  const registry = await open();
  assert.deepEqual(registry.names(), ['alpha', 'beta']);
  assert.deepEqual(
    registry.versions('alpha').map((v) => v.version),
    ['1', '2'],
  );
  assert.equal(registry.defaultVersion('alpha'), '2');
  assert.equal(registry.get('alpha')?.key, 'alpha@2');
  assert.equal(registry.get('alpha', '1')?.key, 'alpha@1');
  assert.equal(registry.get('alpha', '3'), undefined);
  assert.equal(registry.get('gamma'), undefined);
  assert.equal(registry.get('beta')?.origin, 'declared');
});

test('register → state after every step, persisted, and read back by a new instance', async () => {
  const registry = await open();
  const validated: string[] = [];
  const result = await registry.register(spec('gamma', '1', 'c', { labels: ['x', 'y'], numClasses: 2 }), {
    mustBeNew: true,
    validate: async (task) => {
      validated.push(task.key);
    },
  });
  assert.deepEqual(validated, ['gamma@1']);
  assert.equal(result.created, true);
  assert.equal(registry.get('gamma')?.origin, 'admin');

  await registry.register(spec('alpha', '3', 'd'), { makeDefault: false, validate: ok });
  assert.equal(registry.defaultVersion('alpha'), '2', 'makeDefault: false keeps the default');
  await registry.register(spec('beta', '2', 'e'), { validate: ok });
  assert.equal(registry.defaultVersion('beta'), '2');

  const reopened = await open();
  assert.deepEqual(reopened.names(), ['alpha', 'beta', 'gamma']);
  assert.deepEqual(reopened.get('gamma')?.labels, ['x', 'y']);
  assert.deepEqual(
    reopened.versions('alpha').map((v) => v.version),
    ['1', '2', '3'],
  );
  assert.equal(reopened.defaultVersion('alpha'), '2');
  assert.equal(reopened.defaultVersion('beta'), '2');
  const state = await readRegistryState(stateFile);
  assert.deepEqual(
    state.registered.map((t) => `${t.name}@${t.version}`),
    ['gamma@1', 'alpha@3', 'beta@2'],
  );
});

test('a failed validation changes nothing, in memory or on disk', async () => {
  const registry = await open();
  await registry.register(spec('gamma', '1'), { validate: ok });
  const before = await readFile(stateFile);
  await assert.rejects(
    registry.register(spec('delta', '1'), {
      validate: async () => {
        throw new Error('checksum mismatch');
      },
    }),
    /checksum mismatch/,
  );
  assert.equal(registry.has('delta'), false);
  assert.deepEqual(await readFile(stateFile), before);
  assert.deepEqual((await readdir(join(dir, 'state'))).sort(), ['registry.json'], 'no temp file left behind');
});

test('a state file that cannot be written fails the registration and changes nothing', async () => {
  const registry = await open();
  // A regular file where the state folder should be: every write fails (even as root).
  await writeFile(join(dir, 'state'), 'in the way');
  await assert.rejects(
    registry.register(spec('delta', '1'), { validate: ok }),
    (error: Error & { code?: string }) =>
      error.code === 'DS_ERR_REGISTRY_PERSIST_FAILED' && error.message.includes('nothing changed'),
  );
  assert.equal(registry.has('delta'), false);
  assert.equal(await readFile(join(dir, 'state'), 'utf8'), 'in the way');
});

test('versions are immutable: same delta is an update, a different one a conflict; POST refuses existing names', async () => {
  const registry = await open();
  await assert.rejects(
    registry.register(spec('alpha', '1', 'f'), { validate: ok }),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_TASK_VERSION_CONFLICT',
  );
  await assert.rejects(
    registry.register(spec('alpha', '9'), { mustBeNew: true, validate: ok }),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_TASK_EXISTS',
  );
  let validated = false;
  const update = await registry.register(spec('alpha', '1', 'a', { description: 'now documented' }), {
    makeDefault: false,
    validate: async () => {
      validated = true;
    },
  });
  assert.equal(update.created, false);
  assert.equal(validated, false, 'the same delta is not loaded again');
  assert.equal(registry.get('alpha', '1')?.description, 'now documented');
});

test('retire one version or all; declared tasks stay retired after a restart; re-registering revives', async () => {
  const registry = await open();
  assert.deepEqual(await registry.retire('alpha', '2'), ['alpha@2']);
  assert.equal(registry.defaultVersion('alpha'), '1');
  await registry.register(spec('gamma', '1'), { validate: ok });
  assert.deepEqual(await registry.retire('gamma'), ['gamma@1']);
  await assert.rejects(
    registry.retire('gamma'),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_TASK_NOT_REGISTERED',
  );

  const reopened = await open();
  assert.deepEqual(
    reopened.versions('alpha').map((v) => v.version),
    ['1'],
  );
  assert.equal(reopened.has('gamma'), false);
  assert.deepEqual((await readRegistryState(stateFile)).registered, [], 'a retired admin task leaves the overlay');

  await reopened.register(spec('alpha', '2'), { validate: ok });
  assert.deepEqual(
    (await open()).versions('alpha').map((v) => v.version),
    ['1', '2'],
  );
});

test('a new declared task (a new zoo release) appears next to runtime registrations', async () => {
  const registry = await open();
  await registry.register(spec('gamma', '1'), { validate: ok });
  const next = await open([spec('alpha', '1'), spec('alpha', '2'), spec('beta', '1'), spec('zeta', '1')]);
  assert.deepEqual(next.names(), ['alpha', 'beta', 'gamma', 'zeta']);
});

test('a slow validation holds up no other registration; commits are serialised and both land', async () => {
  const registry = await open();
  let release!: () => void;
  const slow = new Promise<void>((resolve) => (release = resolve));
  const first = registry.register(spec('one', '1'), { validate: () => slow });
  await registry.register(spec('two', '1'), { validate: ok });
  assert.deepEqual(registry.names(), ['alpha', 'beta', 'two'], 'the quick change landed while the slow one validates');
  release();
  await first;
  assert.deepEqual(
    (await readRegistryState(stateFile)).registered.map((t) => t.name),
    ['two', 'one'],
  );
});

test('a change whose signal fired before its commit is not applied; one that cannot apply is refused before validating', async () => {
  const registry = await open();
  const controller = new AbortController();
  let validated = 0;
  const abandoned = registry.register(spec('late', '1'), {
    signal: controller.signal,
    validate: async () => {
      validated++;
      controller.abort(new Error('client gone'));
    },
  });
  await assert.rejects(abandoned, /client gone/);
  assert.equal(registry.has('late'), false);
  assert.deepEqual((await readRegistryState(stateFile)).registered, []);
  await assert.rejects(
    registry.register(spec('alpha', '3'), { mustBeNew: true, validate: async () => void validated++ }),
    /already registered/,
  );
  assert.equal(validated, 1, 'no fetch for a change that cannot apply');
});

test('a corrupt state file stops start-up with a clear error; a missing one is empty', async () => {
  assert.deepEqual((await open()).names(), ['alpha', 'beta']);
  await mkdir(join(dir, 'state'), { recursive: true });
  await writeFile(stateFile, '{"format": "something-else"}');
  await assert.rejects(
    open(),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_REGISTRY_STATE_INVALID' && e.message.includes('format'),
  );
  await writeFile(stateFile, '{ not json');
  await assert.rejects(open(), /Registry state file .* is invalid/);
});

test('writeFileAtomic replaces the whole file and leaves no temp file', async () => {
  const path = join(dir, 'x', 'file.json');
  await writeFileAtomic(path, 'first');
  await writeFileAtomic(path, 'second');
  assert.equal(await readFile(path, 'utf8'), 'second');
  assert.deepEqual(await readdir(join(dir, 'x')), ['file.json']);
});

test('temp files a killed writer left behind are removed when the registry opens; other files stay', async () => {
  await mkdir(join(dir, 'state'), { recursive: true });
  await writeFileAtomic(
    stateFile,
    JSON.stringify({
      format: 'deltaserve.registry-state',
      formatVersion: 1,
      registered: [],
      retired: [],
      defaults: {},
    }),
  );
  // What kill -9 between the temp write and the rename leaves (see test/reliability/registry-crash).
  const dead = join(dir, 'state', '.registry.json.4242.0a1b2c3d.tmp');
  await writeFile(dead, '{"half": ');
  const old = new Date(Date.now() - 60_000); // older than the lock's staleness bound
  await utimes(dead, old, old);
  // A young one may be a live replica's write in progress (it holds the lock): it stays.
  await writeFile(join(dir, 'state', '.registry.json.4343.0a1b2c3e.tmp'), '{"in progress": ');
  await writeFile(join(dir, 'state', 'notes.tmp'), 'not ours');
  (await open()).close();
  assert.deepEqual((await readdir(join(dir, 'state'))).sort(), [
    '.registry.json.4343.0a1b2c3e.tmp',
    'notes.tmp',
    'registry.json',
  ]);
});
