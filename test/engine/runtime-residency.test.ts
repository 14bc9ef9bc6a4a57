/**
 * The worker's residency bookkeeping without a worker thread: batch leases, holds of queued
 * tasks, and loads of held tasks that wait for room instead of failing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Residency } from '../../src/engine/runtime/residency.js';
import type { DeltaSource } from '../../src/deltas/source/delta-source.js';
import type { Delta, DeltaMetadata, TaskRef } from '../../src/deltas/types.js';
import { hasCode } from '../helpers/errors.js';

const metadata: DeltaMetadata = {
  formatVersion: 1,
  baseFingerprint: 'f'.repeat(64),
  method: 'dare',
  dropRate: 0.9,
  rescale: 10,
  seed: 1,
  valueDtype: 'F32',
  sourceBaseSha256: null,
  sourceFinetunedSha256: null,
  extra: {},
};

/** Every delta: 10 sparse (u32, f32) entries = 80 bytes in the cache. */
function decode(): Delta {
  const indices = Uint32Array.from({ length: 10 }, (_, i) => i);
  return {
    metadata,
    tensors: [{ kind: 'sparse', name: 'w', shape: [11], indices, values: new Float32Array(10), rescale: 10 }],
  };
}

const BYTES = new TextEncoder().encode('delta');
const SHA = createHash('sha256').update(BYTES).digest('hex');
const task = (name: string): TaskRef => ({ key: `${name}@1`, uri: `mem://${name}`, sha256: SHA });

function residency(maxBytes: number): { residency: Residency; fetches: string[] } {
  const fetches: string[] = [];
  const source: DeltaSource = {
    fetch: async (uri) => {
      fetches.push(uri);
      return BYTES;
    },
  };
  return { residency: new Residency({ maxBytes, source, decode }), fetches };
}

const cachedKeys = (r: Residency) =>
  r.cache
    .list()
    .filter((row) => row.state !== 'held')
    .map((row) => row.key)
    .sort();

test('a batch leases the cached deltas of its tasks and hands back the others; release is idempotent', async () => {
  const { residency: r } = residency(1000);
  await r.load(task('a'));
  const leases = r.leaseBatch([task('a'), null, task('b'), task('a')]);
  assert.ok(leases.of('a@1'));
  assert.equal(leases.of('b@1'), null, 'not cached: its requests are handed back');
  assert.equal(r.cache.list().find((row) => row.key === 'a@1')?.leases, 1, 'one lease per distinct task');
  leases.release();
  leases.release();
  assert.equal(r.cache.list().find((row) => row.key === 'a@1')?.leases, 0);
});

test('a held task keeps its delta while other loads need room; after release it may go', async () => {
  const { residency: r } = residency(200); // two deltas
  await r.load(task('a'));
  r.hold(task('a'));
  await r.load(task('b'));
  await r.load(task('c')); // needs room: b goes, not the held a
  assert.deepEqual(cachedKeys(r), ['a@1', 'c@1']);
  r.release('a@1');
  await r.load(task('d')); // a is the least recently used and no longer held
  assert.deepEqual(cachedKeys(r), ['c@1', 'd@1']);
});

test('a held task that is not cached yet is held as soon as its load brings it in', async () => {
  const { residency: r } = residency(200);
  r.hold(task('a'));
  await r.load(task('a'));
  await r.load(task('b'));
  await r.load(task('c'));
  assert.ok(cachedKeys(r).includes('a@1'));
});

test("a held task's load short of room waits for a hold to end, then loads; an unheld one fails at once", async () => {
  const { residency: r, fetches } = residency(200);
  r.hold(task('a'));
  r.hold(task('b'));
  await r.load(task('a'));
  await r.load(task('b'));
  await assert.rejects(r.load(task('x')), hasCode('DS_ERR_CACHE_NO_ROOM'), 'nobody holds x: no waiting');
  r.hold(task('c'));
  let loaded = false;
  const waiting = r.load(task('c')).then((lookup) => ((loaded = true), lookup));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(loaded, false, 'c waits: every byte is held');
  const tries = fetches.filter((uri) => uri === 'mem://c').length;
  r.release('a@1'); // a's requests ran
  const lookup = await waiting;
  assert.equal(lookup.hit, false);
  assert.deepEqual(cachedKeys(r), ['b@1', 'c@1']);
  assert.equal(fetches.filter((uri) => uri === 'mem://c').length, tries + 1, 'one more try, once there was room');
});

test('an explicit evict drops a held delta (its next load fetches it again) and keeps the task held', async () => {
  const { residency: r, fetches } = residency(200);
  r.hold(task('a'));
  await r.load(task('a'));
  r.evict('a@1');
  assert.deepEqual(cachedKeys(r), []);
  assert.equal(r.cache.stats().heldBytes, 0, 'the hold let go of the dropped delta');
  await r.load(task('a'));
  assert.equal(fetches.length, 2);
  await r.load(task('b'));
  await r.load(task('c'));
  assert.ok(cachedKeys(r).includes('a@1'), 'held again once loaded');
});
