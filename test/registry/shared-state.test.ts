/**
 * Replicas sharing one registry state file, in one process: changes through either registry
 * reach the other within the poll interval, concurrent changes never lose each other, a file
 * that cannot be read or validated is never applied (last good state kept and reported), and a
 * lock left by a dead replica is taken over.
 */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskSpec } from '../../src/core/config-types.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { readRegistryState } from '../../src/registry/registry-state.js';
import { writeFileAtomic } from '../../src/registry/atomic-write.js';

const POLL_MS = 50;
/** Poll interval plus generous room for a loaded 2-core CI machine. */
const CONVERGE_MS = POLL_MS + 2000;

const spec = (name: string, version = '1', c = 'a'): TaskSpec => ({
  name,
  version,
  uri: `${name}.safetensors`,
  sha256: c.repeat(64),
  description: '',
  labels: null,
  numClasses: null,
});
const ok = async () => undefined;
const declared = [spec('alpha', '1'), spec('alpha', '2'), spec('beta')];

let dir: string;
let stateFile: string;
const open: TaskRegistry[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-shared-'));
  stateFile = join(dir, 'shared', 'registry.json');
});
afterEach(async () => {
  for (const registry of open.splice(0)) registry.close();
  await rm(dir, { recursive: true, force: true });
});

/** `watch: false` on the second replica: only the poll (what network volumes get) carries changes to it. */
async function replica(watch: boolean): Promise<TaskRegistry> {
  const registry = await TaskRegistry.open({
    declared,
    stateFile,
    sharing: { pollIntervalMs: POLL_MS, watch, lockStaleMs: 5000 },
  });
  open.push(registry);
  return registry;
}

async function until(what: string, condition: () => boolean, boundMs = CONVERGE_MS): Promise<number> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > boundMs) assert.fail(`${what}: not within ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - start;
}

const keysOf = (registry: TaskRegistry) =>
  registry.all().map((t) => `${t.key}${registry.defaultVersion(t.name) === t.version ? '*' : ''}`);

test('register, update and retire through either replica; the other converges within the poll bound', async () => {
  const a = await replica(true);
  const b = await replica(false);
  const removedAtB: string[] = [];
  b.onRemoved((keys) => removedAtB.push(...keys));

  await a.register(spec('gamma'), { validate: ok });
  await until('b sees gamma', () => b.has('gamma'));
  await b.register(spec('gamma', '2', 'b'), { validate: ok });
  await until('a sees gamma@2 as default', () => a.defaultVersion('gamma') === '2');
  await a.retire('alpha', '2');
  await until('b sees alpha@2 retired', () => b.get('alpha', '2') === undefined);
  assert.deepEqual(removedAtB, ['alpha@2'], 'b is told which version left, to evict its delta');
  assert.deepEqual(keysOf(a), keysOf(b));
  assert.equal(b.syncStatus().synced, true);
  assert.ok(b.syncStatus().reloads >= 2);
});

test('concurrent changes through two replicas never lose each other (lock → read latest → apply → rename)', async () => {
  const a = await replica(true);
  const b = await replica(true);
  const names = Array.from({ length: 16 }, (_, i) => `t${i}`);
  await Promise.all(names.map((name, i) => (i % 2 === 0 ? a : b).register(spec(name), { validate: ok })));
  await Promise.all([a.retire('beta'), b.retire('alpha', '1')]);
  const onDisk = await readRegistryState(stateFile);
  assert.deepEqual(onDisk.registered.map((t) => t.name).sort(), [...names].sort());
  assert.deepEqual([...onDisk.retired].sort(), ['alpha@1', 'beta@1']);
  await until('both agree', () => JSON.stringify(keysOf(a)) === JSON.stringify(keysOf(b)));
  assert.equal(a.all().length, 16 + 1);
});

test('an unreadable or invalid file is never applied: the last good state is served and the failure reported; writes refuse to overwrite it', async () => {
  const a = await replica(true);
  const b = await replica(false);
  await a.register(spec('gamma'), { validate: ok });
  await until('b sees gamma', () => b.has('gamma'));
  const good = await readFile(stateFile, 'utf8');

  // A half-written file (what a non-atomic writer or a torn copy leaves).
  await writeFile(stateFile, good.slice(0, good.length / 2));
  await until('b reports it', () => !b.syncStatus().synced);
  assert.match(b.syncStatus().error ?? '', /invalid/);
  assert.ok(b.has('gamma'), 'b keeps serving its last good state');
  await assert.rejects(
    a.register(spec('delta'), { validate: ok }),
    (e: Error & { code?: string }) => e.code === 'DS_ERR_REGISTRY_PERSIST_FAILED' && /not overwritten/.test(e.message),
  );
  assert.equal(
    await readFile(stateFile, 'utf8'),
    good.slice(0, good.length / 2),
    'the broken file was left for the operator',
  );

  await rm(stateFile);
  await until(
    'a missing file is an error too, not "every registration retired"',
    () => !b.syncStatus().synced && /gone/.test(b.syncStatus().error ?? ''),
  );
  assert.ok(b.has('gamma'));

  await writeFileAtomic(stateFile, good);
  await until('b is synced again', () => b.syncStatus().synced);
  assert.ok(b.has('gamma'));
  await a.register(spec('delta'), { validate: ok });
  await until('b sees delta', () => b.has('delta'));
});

test('a lock left behind by a dead replica is taken over once stale', async () => {
  const a = await replica(true);
  await mkdir(join(dir, 'shared'), { recursive: true });
  await mkdir(`${stateFile}.lock`);
  const old = new Date(Date.now() - 60_000);
  await utimes(`${stateFile}.lock`, old, old);
  await a.register(spec('gamma'), { validate: ok });
  assert.deepEqual(
    (await readRegistryState(stateFile)).registered.map((t) => t.name),
    ['gamma'],
  );
});
