import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  DeltaCache,
  type CachedDelta,
  type DeltaCacheEvent,
  type DeltaCacheOptions,
  type DeltaLease,
} from '../../../src/deltas/cache/delta-cache.js';
import type { DeltaSource } from '../../../src/deltas/source/delta-source.js';
import type { Delta, DeltaMetadata } from '../../../src/deltas/types.js';
import {
  DS_ERR_CACHE_LOAD_CANCELLED,
  DS_ERR_DELTA_BAD_METADATA,
  DS_ERR_SOURCE_CHECKSUM_MISMATCH,
} from '../../../src/core/errors.js';
import { SeededRng } from '../../../src/core/rng.js';
import { hasCode } from '../../helpers/errors.js';
import { asDecoded } from '../../../src/engine/runtime/resident-form.js';

// --- what production does with the cache: load (prefetch), then lease what is cached (tryAcquire).

/** The entry for `key`, loaded on a miss. */
async function get(cache: DeltaCache, key: string, signal?: AbortSignal): Promise<CachedDelta> {
  return (await cache.prefetch(key, signal)).entry;
}

/** A lease as the engine's worker takes one: load, then lease what is cached now (not counted twice). */
async function acquire(cache: DeltaCache, key: string): Promise<DeltaLease> {
  await cache.prefetch(key);
  const lease = cache.tryAcquire(key, { quiet: true });
  if (lease === null) throw new DS_ERR_CACHE_LOAD_CANCELLED(key, 'evicted between its load and its lease');
  return lease;
}

/** Whether `key` is in the cache (pinned or not); held entries do not count. */
function has(cache: DeltaCache, key: string): boolean {
  return cache.list().some((row) => row.key === key && row.state !== 'held');
}

// --- fakes: a payload "FAKE" + JSON {entries}; a sparse delta of that many (u32, f32) pairs = 8 bytes each.

const MAGIC = 'FAKE';
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

function payload(entries: number, corrupt = false): Uint8Array {
  return new TextEncoder().encode((corrupt ? 'JUNK' : MAGIC) + JSON.stringify({ entries }));
}

function fakeDecode(bytes: Uint8Array): Delta {
  const text = new TextDecoder().decode(bytes);
  if (!text.startsWith(MAGIC)) throw new DS_ERR_DELTA_BAD_METADATA('missing magic prefix');
  const { entries } = JSON.parse(text.slice(MAGIC.length)) as { entries: number };
  const indices = Uint32Array.from({ length: entries }, (_, i) => i);
  return {
    metadata,
    tensors: [
      { kind: 'sparse', name: 'w', shape: [entries + 1], indices, values: new Float32Array(entries), rescale: 10 },
    ],
  };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** In-memory source keyed by URI; verifies sha256 like the real ones; can hold fetches behind a gate. */
class FakeSource implements DeltaSource {
  readonly files = new Map<string, Uint8Array>();
  fetches: string[] = [];
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  open(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  async fetch(uri: string, expectedSha256: string): Promise<Uint8Array> {
    this.fetches.push(uri);
    if (this.gate !== undefined) await this.gate;
    const bytes = this.files.get(uri);
    if (bytes === undefined) throw new Error(`fake source has no ${uri}`);
    const actual = sha256(bytes);
    if (actual !== expectedSha256) throw new DS_ERR_SOURCE_CHECKSUM_MISMATCH(uri, actual, expectedSha256);
    return bytes;
  }
}

interface Harness {
  cache: DeltaCache;
  source: FakeSource;
  events: DeltaCacheEvent[];
  /** key → registered payload (the registry's view: uri + sha256 of the good bytes). */
  add(key: string, entries: number): void;
}

function harness(maxBytes: number, extra: Partial<DeltaCacheOptions> = {}): Harness {
  const source = new FakeSource();
  const registry = new Map<string, { uri: string; sha256: string }>();
  const events: DeltaCacheEvent[] = [];
  const cache = new DeltaCache({
    maxBytes,
    source,
    resolve: (key) => {
      const location = registry.get(key);
      if (location === undefined) throw new Error(`unknown task ${key}`);
      return location;
    },
    decode: fakeDecode,
    onEvent: (event) => events.push(event),
    ...extra,
  });
  return {
    cache,
    source,
    events,
    add(key, entries) {
      const bytes = payload(entries);
      const uri = `mem://${key}`;
      source.files.set(uri, bytes);
      registry.set(key, { uri, sha256: sha256(bytes) });
    },
  };
}

function assertWithinBudget(cache: DeltaCache): void {
  const s = cache.stats();
  assert.equal(s.totalBytes, s.cachedBytes + s.pinnedBytes + s.heldBytes + s.loadingBytes);
  assert.ok(s.totalBytes <= s.maxBytes, `total ${s.totalBytes} > max ${s.maxBytes}`);
  assert.ok(s.cachedBytes >= 0 && s.pinnedBytes >= 0 && s.heldBytes >= 0 && s.loadingBytes >= 0, JSON.stringify(s));
}

test('a miss loads through resolve → fetch → decode, then hits; entry carries both sizes and timings', async () => {
  const h = harness(1000);
  h.add('a@1', 10);
  const entry = await get(h.cache, 'a@1');
  assert.equal(entry.bytes, 80);
  assert.equal(entry.fileBytes, h.source.files.get('mem://a@1')!.length, 'the fetched file, beside what it decoded to');
  const load = h.events.find((e) => e.type === 'load');
  assert.ok(load?.type === 'load' && load.bytes === 80 && load.fileBytes === entry.fileBytes);
  assert.equal(entry.delta.tensors.length, 1);
  assert.equal(entry.uri, 'mem://a@1');
  for (const ms of Object.values(entry.timings)) assert.ok(ms >= 0);
  assert.equal(await get(h.cache, 'a@1'), entry);
  assert.equal(h.source.fetches.length, 1);
  const s = h.cache.stats();
  assert.deepEqual([s.hits, s.misses, s.loads, s.entries, s.cachedBytes], [1, 1, 1, 1, 80]);
  assert.deepEqual(
    h.events.map((e) => e.type),
    ['miss', 'load', 'hit'],
  );
  assert.equal(has(h.cache, 'a@1'), true);
  assert.equal(has(h.cache, 'b@1'), false);
});

test('concurrent misses for one key load once and all get the same entry', async () => {
  const h = harness(1000);
  h.add('a@1', 10);
  h.source.hold();
  const waiters = Array.from({ length: 5 }, () => get(h.cache, 'a@1'));
  assert.equal(has(h.cache, 'a@1'), false, 'a load in flight is not "in the cache"');
  h.source.open();
  const entries = await Promise.all(waiters);
  assert.equal(h.source.fetches.length, 1);
  assert.ok(entries.every((e) => e === entries[0]));
  const s = h.cache.stats();
  assert.equal(s.misses, 5);
  assert.equal(s.inflightDedups, 4);
  assert.equal(s.loads, 1);
});

test('least recently used entries are evicted first to make room', async () => {
  const h = harness(250); // room for three 80-byte deltas
  for (const k of ['a', 'b', 'c', 'd']) h.add(`${k}@1`, 10);
  await get(h.cache, 'a@1');
  await get(h.cache, 'b@1');
  await get(h.cache, 'c@1');
  await get(h.cache, 'a@1'); // a is now most recent; b is the oldest
  await get(h.cache, 'd@1');
  assert.deepEqual(
    ['a@1', 'b@1', 'c@1', 'd@1'].map((k) => has(h.cache, k)),
    [true, false, true, true],
  );
  const evict = h.events.find((e) => e.type === 'evict');
  assert.deepEqual(evict, { type: 'evict', key: 'b@1', bytes: 80, reason: 'pressure', held: false });
  assert.equal(h.cache.stats().evictions, 1);
});

test('the byte bound holds after every step of a random workload, also between concurrent loads', async () => {
  const rng = new SeededRng(7);
  const max = 2000;
  // The cache turns a throwing listener into a warning, so collect violations instead.
  const violations: string[] = [];
  const check = (event: DeltaCacheEvent): void => {
    try {
      assertWithinBudget(h.cache);
    } catch (error) {
      violations.push(`${event.type} ${event.key}: ${(error as Error).message}`);
    }
  };
  const h = harness(max, { onEvent: check, maxPinnedBytes: 1200 });
  const keys = Array.from({ length: 24 }, (_, i) => `t${i}@1`);
  keys.forEach((k) => h.add(k, 1 + rng.nextInt(120))); // 8 .. 968 bytes
  const leases: { release(): void }[] = [];
  const tolerated = new Set(['DS_ERR_CACHE_NO_ROOM', 'DS_ERR_CACHE_PIN_NO_ROOM', 'DS_ERR_CACHE_LOAD_CANCELLED']);
  const swallow = (error: unknown): void => {
    if (!tolerated.has((error as { code?: string }).code ?? '')) throw error;
  };
  for (let step = 0; step < 400; step++) {
    const key = keys[rng.nextInt(keys.length)]!;
    const op = rng.nextInt(10);
    if (op < 3) await get(h.cache, key).catch(swallow);
    else if (op < 5)
      await Promise.all([0, 1, 2].map(() => get(h.cache, keys[rng.nextInt(keys.length)]!).catch(swallow)));
    else if (op < 6) await acquire(h.cache, key).then((l) => leases.push(l), swallow);
    else if (op < 7) leases.splice(rng.nextInt(leases.length + 1), 1)[0]?.release();
    else if (op < 8) await h.cache.pin(key).catch(swallow);
    else if (op < 9) h.cache.unpin(key);
    else h.cache.evict(key);
    assertWithinBudget(h.cache);
  }
  for (const lease of leases) lease.release();
  assertWithinBudget(h.cache);
  assert.deepEqual(violations, []);
  const s = h.cache.stats();
  assert.equal(s.heldBytes, 0, 'every held byte is returned on release');
  assert.ok(s.loads > 10 && s.evictions > 10, `the workload exercised loads and evictions: ${JSON.stringify(s)}`);
});

test('pinned entries survive pressure and come back to the LRU on unpin', async () => {
  const h = harness(250);
  for (const k of ['p', 'a', 'b', 'c', 'd']) h.add(`${k}@1`, 10);
  await h.cache.pin('p@1');
  for (const k of ['a', 'b', 'c', 'd']) await get(h.cache, `${k}@1`);
  assert.equal(has(h.cache, 'p@1'), true);
  const s = h.cache.stats();
  assert.deepEqual([s.pinned, s.pinnedBytes, s.cachedBytes], [1, 80, 160]);
  assert.equal(h.source.fetches.filter((u) => u === 'mem://p@1').length, 1);
  assert.equal(h.cache.unpin('p@1'), true);
  assert.equal(h.cache.unpin('p@1'), false);
  assert.deepEqual([h.cache.stats().pinnedBytes, h.cache.stats().cachedBytes], [0, 240]);
});

test('evict on a pinned key unpins it first', async () => {
  const h = harness(1000);
  h.add('p@1', 10);
  await h.cache.pin('p@1');
  assert.equal(h.cache.evict('p@1'), true);
  assert.equal(has(h.cache, 'p@1'), false);
  assert.deepEqual([h.cache.stats().pinned, h.cache.stats().pinnedBytes, h.cache.stats().totalBytes], [0, 0, 0]);
  assert.equal(h.cache.evict('p@1'), false);
});

test('pinning past maxPinnedBytes, or a delta that cannot get room, fails clearly', async () => {
  const h = harness(300, { maxPinnedBytes: 100 });
  h.add('a@1', 10);
  h.add('b@1', 10);
  await h.cache.pin('a@1');
  await assert.rejects(
    h.cache.pin('b@1'),
    hasCode('DS_ERR_CACHE_PIN_NO_ROOM', /takes 80 bytes and 80 of the 100 bytes/),
  );
  assert.equal(has(h.cache, 'b@1'), true, 'b was loaded, just not pinned');

  const full = harness(200);
  full.add('a@1', 10);
  full.add('big@1', 20);
  await full.cache.pin('a@1');
  await assert.rejects(full.cache.pin('big@1'), hasCode('DS_ERR_CACHE_PIN_NO_ROOM', /needs 160 bytes/));
  assertWithinBudget(full.cache);
});

test('a delta larger than the whole cache is refused, not cached, and evicts nothing', async () => {
  const h = harness(500);
  h.add('small@1', 10);
  h.add('huge@1', 100);
  await get(h.cache, 'small@1');
  await assert.rejects(
    get(h.cache, 'huge@1'),
    hasCode('DS_ERR_CACHE_DELTA_TOO_LARGE', /huge@1 takes 800 bytes.*\(500 bytes\)/),
  );
  assert.equal(has(h.cache, 'huge@1'), false);
  assert.equal(has(h.cache, 'small@1'), true);
  await assert.rejects(get(h.cache, 'huge@1'), hasCode('DS_ERR_CACHE_DELTA_TOO_LARGE'));
  assert.equal(h.source.fetches.filter((u) => u === 'mem://huge@1').length, 2, 'refusals are not cached either');
  assert.equal(h.cache.stats().loadFailures, 2);
});

test('a corrupt delta is never cached; every waiter gets the error; the next request loads again', async () => {
  const h = harness(1000);
  h.add('a@1', 10);
  const good = h.source.files.get('mem://a@1')!;
  // Registry sha256 matches the corrupt bytes, so the decoder is the one that refuses them.
  const corrupt = payload(10, true);
  h.source.files.set('mem://a@1', corrupt);
  let registrySha = sha256(corrupt);
  const cache = new DeltaCache({
    maxBytes: 1000,
    source: h.source,
    resolve: () => ({ uri: 'mem://a@1', sha256: registrySha }),
    decode: fakeDecode,
  });
  h.source.hold();
  const waiters = Array.from({ length: 3 }, () => get(cache, 'a@1'));
  h.source.open();
  const results = await Promise.allSettled(waiters);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    hasCode('DS_ERR_DELTA_BAD_METADATA', (e) => assert.equal((e as { deltaKey?: string }).deltaKey, 'a@1'))(r.reason);
  }
  assert.equal(has(cache, 'a@1'), false);
  assert.equal(cache.stats().totalBytes, 0);
  assert.equal(h.source.fetches.length, 1);

  await assert.rejects(get(cache, 'a@1'), hasCode('DS_ERR_DELTA_BAD_METADATA'));
  assert.equal(h.source.fetches.length, 2, 'the failed load was retried, not served from cache');

  // Once the file is fixed (and registered with its new sha256), the next request loads it.
  h.source.files.set('mem://a@1', good);
  registrySha = sha256(good);
  const entry = await get(cache, 'a@1');
  assert.equal(h.source.fetches.length, 3);
  assert.equal(entry.sha256, registrySha);
  assert.equal(has(cache, 'a@1'), true);
});

test('a checksum mismatch is never cached and reaches every waiter', async () => {
  const h = harness(1000);
  h.add('a@1', 10);
  h.source.files.set('mem://a@1', payload(11)); // the bytes changed behind the registry's back
  h.source.hold();
  const waiters = [get(h.cache, 'a@1'), acquire(h.cache, 'a@1'), h.cache.prefetch('a@1')];
  h.source.open();
  for (const r of await Promise.allSettled(waiters)) {
    assert.equal(r.status, 'rejected');
    hasCode('DS_ERR_SOURCE_CHECKSUM_MISMATCH')(r.reason);
  }
  assert.equal(has(h.cache, 'a@1'), false);
  h.add('a@1', 10); // fixed upstream
  assert.equal((await get(h.cache, 'a@1')).bytes, 80);
  const s = h.cache.stats();
  assert.deepEqual([s.loadFailures, s.loads], [1, 1]);
  assert.deepEqual(
    h.events.filter((e) => e.type === 'load-failed').map((e) => e.key),
    ['a@1'],
  );
});

test('a lease keeps an evicted delta alive, counted as held, until release', async () => {
  const h = harness(250);
  for (const k of ['a', 'b', 'c', 'd']) h.add(`${k}@1`, 10);
  const lease = await acquire(h.cache, 'a@1');
  await get(h.cache, 'b@1');
  await get(h.cache, 'c@1');
  await get(h.cache, 'd@1'); // pressure: a is oldest but acquired, so b goes
  assert.equal(has(h.cache, 'a@1'), true);
  assert.equal(has(h.cache, 'b@1'), false);

  assert.equal(h.cache.evict('a@1'), true); // explicit: a leaves the cache, stays in memory
  assert.equal(has(h.cache, 'a@1'), false);
  assert.deepEqual([h.cache.stats().held, h.cache.stats().heldBytes], [1, 80]);
  assert.equal(asDecoded(lease.delta.tensors[0]!).values.length, 10);
  assert.deepEqual(
    h.cache.list().find((r) => r.key === 'a@1'),
    {
      key: 'a@1',
      bytes: 80,
      fileBytes: lease.entry.fileBytes,
      state: 'held',
      leases: 1,
      uri: 'mem://a@1',
      loadedAt: lease.entry.loadedAt,
    },
  );

  lease.release();
  lease.release(); // idempotent
  assert.deepEqual([h.cache.stats().held, h.cache.stats().heldBytes], [0, 0]);
  assertWithinBudget(h.cache);
});

test('a miss on a held key takes the held copy back instead of loading a second one', async () => {
  const h = harness(1000);
  h.add('a@1', 10);
  const lease = await acquire(h.cache, 'a@1');
  h.cache.evict('a@1');
  const again = await get(h.cache, 'a@1');
  assert.equal(again, lease.entry);
  assert.equal(h.source.fetches.length, 1);
  assert.deepEqual([h.cache.stats().readoptions, h.cache.stats().heldBytes, h.cache.stats().cachedBytes], [1, 0, 80]);
  lease.release();
  assert.equal(has(h.cache, 'a@1'), true);
});

test('when pinned and held bytes leave no room, the load fails without evicting anything', async () => {
  const h = harness(200);
  for (const k of ['p', 'a', 'b']) h.add(`${k}@1`, 10);
  await h.cache.pin('p@1');
  const lease = await acquire(h.cache, 'a@1');
  await assert.rejects(
    get(h.cache, 'b@1'),
    hasCode('DS_ERR_CACHE_NO_ROOM', /needs 80 bytes.*40 of 200 bytes are free; 80 are pinned, 80 are held/),
  );
  assert.equal(has(h.cache, 'a@1'), true);
  lease.release();
  await get(h.cache, 'b@1'); // now a can go
  assert.equal(has(h.cache, 'a@1'), false);
  assertWithinBudget(h.cache);
});

test("one caller's abort does not cancel the load the others wait for", async () => {
  const h = harness(1000);
  h.add('a@1', 10);
  h.source.hold();
  const controller = new AbortController();
  const first = get(h.cache, 'a@1', controller.signal);
  const second = get(h.cache, 'a@1');
  controller.abort(new Error('client left'));
  await assert.rejects(first, /client left/);
  h.source.open();
  assert.equal((await second).bytes, 80);
  assert.equal(has(h.cache, 'a@1'), true);
  await assert.rejects(get(h.cache, 'a@1', AbortSignal.abort(new Error('already gone'))), /already gone/);
});

test('resolve failures propagate and are counted', async () => {
  const h = harness(1000);
  await assert.rejects(get(h.cache, 'ghost@1'), /unknown task ghost@1/);
  assert.equal(h.cache.stats().loadFailures, 1);
  assert.equal(h.source.fetches.length, 0);
});

test('bad options are refused at construction', () => {
  const base = { source: new FakeSource(), resolve: () => ({ uri: 'x', sha256: 'y' }), decode: fakeDecode };
  assert.throws(() => new DeltaCache({ ...base, maxBytes: 0 }), hasCode('DS_ERR_CACHE_BAD_OPTION', /maxBytes/));
  assert.throws(
    () => new DeltaCache({ ...base, maxBytes: 10, maxPinnedBytes: 11 }),
    hasCode('DS_ERR_CACHE_BAD_OPTION', /maxPinnedBytes/),
  );
});

// --- tryAcquire: the lease the engine's worker takes when a batch arrives (and to hold queued tasks' deltas).

test('tryAcquire never loads: null on a miss or a load in flight, a counted hit once cached', async () => {
  const h = harness(1000);
  h.add('a@1', 10);
  assert.equal(h.cache.tryAcquire('a@1'), null);
  assert.equal(h.source.fetches.length, 0, 'no fetch started');
  h.source.hold();
  const loading = h.cache.prefetch('a@1');
  assert.equal(h.cache.tryAcquire('a@1'), null, 'a load in flight is not resident');
  h.source.open();
  await loading;
  const before = h.cache.stats().hits;
  const lease = h.cache.tryAcquire('a@1');
  assert.ok(lease);
  assert.equal(asDecoded(lease.delta.tensors[0]!).values.length, 10);
  assert.equal(h.cache.stats().hits, before + 1);
  assert.equal(h.events.at(-1)?.type, 'hit');
  assert.equal(h.cache.list().find((r) => r.key === 'a@1')?.leases, 1);
  lease.release();
  lease.release(); // idempotent
  assert.equal(h.cache.list().find((r) => r.key === 'a@1')?.leases, 0);
});

test('a quiet tryAcquire is no hit: no count, no event, no recency change', async () => {
  const h = harness(200); // room for two deltas of 80 bytes
  for (const k of ['a', 'b', 'c']) h.add(`${k}@1`, 10);
  await get(h.cache, 'a@1');
  await get(h.cache, 'b@1');
  const events = h.events.length;
  const hits = h.cache.stats().hits;
  const lease = h.cache.tryAcquire('a@1', { quiet: true });
  assert.ok(lease);
  assert.deepEqual([h.events.length, h.cache.stats().hits], [events, hits]);
  lease.release();
  await get(h.cache, 'c@1'); // a stayed least recently used: it goes, b stays
  assert.deepEqual(
    ['a@1', 'b@1', 'c@1'].map((k) => has(h.cache, k)),
    [false, true, true],
  );
});

test('a tryAcquire lease survives pressure: the load that needs room evicts the unleased entries', async () => {
  const h = harness(250); // room for three deltas of 80 bytes
  for (const k of ['a', 'b', 'c', 'd']) h.add(`${k}@1`, 10);
  await get(h.cache, 'a@1');
  await get(h.cache, 'b@1');
  await get(h.cache, 'c@1');
  const lease = h.cache.tryAcquire('a@1', { quiet: true })!; // a is the least recently used
  await get(h.cache, 'd@1');
  assert.deepEqual(
    ['a@1', 'b@1', 'c@1', 'd@1'].map((k) => has(h.cache, k)),
    [true, false, true, true],
    'b went instead of the leased a',
  );
  lease.release();
  assertWithinBudget(h.cache);
});

test('when every entry is leased, a load fails with DS_ERR_CACHE_NO_ROOM and evicts nothing; a release makes room', async () => {
  const h = harness(200);
  for (const k of ['a', 'b', 'c']) h.add(`${k}@1`, 10);
  await get(h.cache, 'a@1');
  await get(h.cache, 'b@1');
  const leases = [h.cache.tryAcquire('a@1')!, h.cache.tryAcquire('b@1')!];
  await assert.rejects(get(h.cache, 'c@1'), hasCode('DS_ERR_CACHE_NO_ROOM', /160 are held by running batches/));
  assert.deepEqual([has(h.cache, 'a@1'), has(h.cache, 'b@1')], [true, true]);
  leases[0]!.release();
  await get(h.cache, 'c@1');
  assert.deepEqual(
    ['a@1', 'b@1', 'c@1'].map((k) => has(h.cache, k)),
    [false, true, true],
  );
  leases[1]!.release();
  assertWithinBudget(h.cache);
});

test('an explicit evict of a tryAcquire-leased entry holds it until release; tryAcquire then misses until it loads again', async () => {
  const h = harness(1000);
  h.add('a@1', 10);
  await get(h.cache, 'a@1');
  const lease = h.cache.tryAcquire('a@1')!;
  assert.equal(h.cache.evict('a@1'), true);
  assert.equal(h.cache.tryAcquire('a@1'), null, 'a held entry is not in the cache');
  assert.deepEqual([h.cache.stats().held, h.cache.stats().heldBytes], [1, 80]);
  assert.equal(asDecoded(lease.delta.tensors[0]!).values.length, 10, 'the running batch still reads it');
  await get(h.cache, 'a@1'); // re-adopted, not fetched again
  assert.equal(h.source.fetches.length, 1);
  assert.equal(h.cache.stats().readoptions, 1);
  const again = h.cache.tryAcquire('a@1');
  assert.ok(again);
  lease.release();
  again.release();
  assertWithinBudget(h.cache);
  assert.equal(h.cache.stats().heldBytes, 0);
});

test('tryAcquire leases pinned entries; unpin or evict of a pinned, leased entry keeps the lease valid', async () => {
  const h = harness(250);
  for (const k of ['p', 'a', 'b', 'c']) h.add(`${k}@1`, 10);
  await h.cache.pin('p@1');
  const lease = h.cache.tryAcquire('p@1');
  assert.ok(lease, 'a pinned entry is resident');
  assert.equal(h.cache.list().find((r) => r.key === 'p@1')?.state, 'pinned');
  await get(h.cache, 'a@1');
  await get(h.cache, 'b@1');
  await get(h.cache, 'c@1'); // pressure: a goes, the pinned p never does
  assert.deepEqual([has(h.cache, 'p@1'), has(h.cache, 'a@1')], [true, false]);
  assert.equal(h.cache.evict('p@1'), true); // unpins, then evicts: held by the lease
  assert.equal(h.cache.tryAcquire('p@1'), null);
  assert.equal(h.cache.list().find((r) => r.key === 'p@1')?.state, 'held');
  lease.release();
  assert.equal(
    h.cache.list().some((r) => r.key === 'p@1'),
    false,
  );
  assertWithinBudget(h.cache);
});

test('availableBytes counts free bytes and unleased entries; a load short of room says how many bytes it needs', async () => {
  const h = harness(200);
  for (const k of ['a', 'b', 'c']) h.add(`${k}@1`, 10);
  assert.equal(h.cache.availableBytes(), 200);
  await get(h.cache, 'a@1');
  await get(h.cache, 'b@1');
  assert.equal(h.cache.availableBytes(), 200, 'unleased entries can be evicted');
  const leases = [h.cache.tryAcquire('a@1')!, h.cache.tryAcquire('b@1')!];
  assert.equal(h.cache.availableBytes(), 40);
  await assert.rejects(get(h.cache, 'c@1'), (error: { code?: string; neededBytes?: number }) => {
    assert.equal(error.code, 'DS_ERR_CACHE_NO_ROOM');
    assert.equal(error.neededBytes, 80);
    return true;
  });
  leases[0]!.release();
  assert.equal(h.cache.availableBytes(), 120, 'a released lease makes its entry evictable again');
  leases[1]!.release();
});
