/**
 * The delta cache: decoded deltas keyed by `task@version`, bounded by bytes, loaded once per miss.
 *
 * Loading. A miss runs resolve(key) → source.fetch (which verifies the sha256) → decode → store,
 * through lru-cache's `fetchMethod`, so concurrent misses for one key share one load. A load that
 * fails (unknown task, fetch error, checksum mismatch, decoder error, no room) rejects every
 * waiter of that load with the same error and leaves nothing behind (lru-cache's defaults:
 * `noDeleteOnFetchRejection` and `allowStaleOnFetchRejection` off), so the next request loads
 * again. A caller's AbortSignal only stops that caller's wait: the shared load goes on for the
 * others (lru-cache would otherwise abort the load for everyone when its first caller aborts).
 *
 * The byte budget. `maxBytes` bounds the sum of four disjoint amounts, and the sum never exceeds
 * it, at any point between two steps of the event loop:
 *   - cachedBytes: entries in the LRU (lru-cache's `calculatedSize`; its placeholders for loads
 *     in flight weigh 0 via `backgroundFetchSize: 0`);
 *   - pinnedBytes: pinned entries, held in a Map outside the LRU;
 *   - heldBytes: entries evicted while acquired — no longer in the cache, still in memory for
 *     the batches holding them (vLLM #14497), so they count until their last release;
 *   - loadingBytes: decoded deltas granted room but not yet inserted by lru-cache (a few
 *     microtasks).
 * Room is made before insertion, by this class, not by lru-cache: once a delta is decoded and
 * validated, unacquired LRU entries are evicted least-recently-used first until it fits. If it
 * cannot fit even then (the rest is pinned or held), nothing is evicted and the load fails with
 * DS_ERR_CACHE_NO_ROOM; a delta larger than `maxBytes` fails with DS_ERR_CACHE_DELTA_TOO_LARGE.
 * lru-cache's own `maxSize` (= maxBytes) therefore never has to evict; it stays as a backstop.
 *
 * Pinning. lru-cache cannot refuse to evict an entry, so a pinned entry leaves the LRU for the
 * `pinned` Map (its bytes move from cachedBytes to pinnedBytes: the total is unchanged) and
 * returns to the LRU, as most recently used, on unpin. `maxPinnedBytes` (default maxBytes) caps
 * the pinned share; pinning past it fails with DS_ERR_CACHE_PIN_NO_ROOM. `evict(key)` on a pinned
 * key unpins it first: evict is the operator's explicit "drop this", it wins over an older pin.
 *
 * Reference counting. `tryAcquire(key)` returns a lease on what is cached now (it never loads:
 * `prefetch()` loads); while any lease on an entry is open, LRU pressure skips it (evicting it
 * would free no memory) and an explicit evict moves it to the held set instead of dropping it. A
 * miss on a held key re-adopts the held entry instead of loading a second copy. The engine's
 * worker leases a batch's deltas this way when the batch arrives, so no run waits for a fetch,
 * and leases the deltas of queued requests, so no load evicts them before they run.
 *
 * Concurrency: JavaScript runs this class on one thread; every bookkeeping step is synchronous,
 * so the invariants hold between any two awaits. In-flight loads are never cancelled by
 * `evict()`: it only affects loaded entries.
 */
import { raceAbort } from '../../core/race-abort.js';
import { LRUCache } from 'lru-cache';
import { performance } from 'node:perf_hooks';
import {
  DS_ERR_CACHE_BAD_OPTION,
  DS_ERR_CACHE_DELTA_TOO_LARGE,
  DS_ERR_CACHE_LOAD_CANCELLED,
  DS_ERR_CACHE_NO_ROOM,
  DS_ERR_CACHE_PIN_NO_ROOM,
  isError,
} from '../../core/errors.js';
import { integerOption } from '../../core/options.js';
import type { ResidentDelta, DeltaLocation } from '../types.js';
import type { DeltaSource, FetchStatus } from '../source/delta-source.js';
import { redactUri } from '../source/uri.js';
import { deltaByteSize } from './delta-size.js';

/** Milliseconds spent in each step of one load (for traces). */
export interface DeltaLoadTimings {
  readonly resolveMs: number;
  /** Transfer time, without hashing. */
  readonly fetchMs: number;
  /** sha256 hashing, which runs interleaved with the transfer. */
  readonly verifyMs: number;
  readonly decodeMs: number;
  readonly totalMs: number;
}

export interface CachedDelta {
  readonly key: string;
  readonly delta: ResidentDelta;
  /** Bytes charged against the budget: the delta's typed arrays (at least 1: lru-cache needs positive sizes). */
  readonly bytes: number;
  /** Bytes of the file it was decoded from (what the cache would hold if it kept deltas as fetched). */
  readonly fileBytes: number;
  /** Source URI, redacted. */
  readonly uri: string;
  readonly sha256: string;
  /** Epoch ms when the load finished. */
  readonly loadedAt: number;
  readonly timings: DeltaLoadTimings;
}

/** An acquired delta: it stays in memory until `release()` (idempotent). */
export interface DeltaLease {
  readonly delta: ResidentDelta;
  readonly entry: CachedDelta;
  release(): void;
}

/** What a lookup found: the entry, and whether it was already cached (false: it waited for a load). */
export interface CacheLookup {
  readonly entry: CachedDelta;
  readonly hit: boolean;
}

export type DeltaCacheEvent =
  | { readonly type: 'hit'; readonly key: string; readonly bytes: number }
  | { readonly type: 'miss'; readonly key: string; /** joined a load already in flight */ readonly inflight: boolean }
  | {
      readonly type: 'load';
      readonly key: string;
      readonly bytes: number;
      readonly fileBytes: number;
      readonly ms: number;
      readonly timings: DeltaLoadTimings;
      readonly uri: string;
    }
  | { readonly type: 'load-failed'; readonly key: string; readonly ms: number; readonly error: unknown }
  | {
      readonly type: 'evict';
      readonly key: string;
      readonly bytes: number;
      readonly reason: 'pressure' | 'explicit';
      /** still acquired, kept in memory */ readonly held: boolean;
    };

export interface DeltaCacheStats {
  readonly hits: number;
  /** Requests that waited for a load, including those that joined one in flight. */
  readonly misses: number;
  /** Misses that joined a load already in flight instead of starting one. */
  readonly inflightDedups: number;
  /** Loads completed from the source. */
  readonly loads: number;
  readonly loadFailures: number;
  /** Held entries taken back into the cache on a miss instead of being loaded again. */
  readonly readoptions: number;
  readonly evictions: number;
  /** Entries in the cache (LRU + pinned). */
  readonly entries: number;
  readonly pinned: number;
  /** Entries evicted while acquired and not yet released. */
  readonly held: number;
  readonly cachedBytes: number;
  readonly pinnedBytes: number;
  readonly heldBytes: number;
  readonly loadingBytes: number;
  /** cachedBytes + pinnedBytes + heldBytes + loadingBytes; never above maxBytes. */
  readonly totalBytes: number;
  readonly maxBytes: number;
}

export interface DeltaCacheOptions {
  /** Byte budget for every decoded delta in memory (see the module doc). Positive integer. */
  maxBytes: number;
  /** Share of maxBytes that pinned deltas may take. Default: maxBytes. */
  maxPinnedBytes?: number;
  source: DeltaSource;
  /** key → where its delta lives. Throws (e.g. an unknown task) to fail the load. */
  resolve: (key: string) => DeltaLocation | Promise<DeltaLocation>;
  /** Validating decoder (e.g. `bytes => decodeDelta(bytes, { baseShapes })`). */
  decode: (bytes: Uint8Array) => ResidentDelta;
  /** Called synchronously for each event; must not throw (a throw is turned into a process warning). */
  onEvent?: (event: DeltaCacheEvent) => void;
}

type Place = 'loading' | 'lru' | 'pinned' | 'held' | 'gone';

class Entry implements CachedDelta {
  refs = 0;
  place: Place = 'loading';

  constructor(
    readonly key: string,
    readonly delta: ResidentDelta,
    readonly bytes: number,
    readonly fileBytes: number,
    readonly uri: string,
    readonly sha256: string,
    readonly loadedAt: number,
    readonly timings: DeltaLoadTimings,
  ) {}
}

/** Times an entry that keeps being evicted between its load and its use is fetched again before giving up. */
const MAX_LOOKUPS = 3;

export class DeltaCache {
  private readonly maxBytes: number;
  private readonly maxPinnedBytes: number;
  private readonly source: DeltaSource;
  private readonly resolveLocation: DeltaCacheOptions['resolve'];
  private readonly decode: DeltaCacheOptions['decode'];
  private readonly onEvent: DeltaCacheOptions['onEvent'];
  private readonly lru: LRUCache<string, Entry>;
  private readonly pinned = new Map<string, Entry>();
  private readonly held = new Map<string, Entry>();
  private pinnedBytes = 0;
  private heldBytes = 0;
  private loadingBytes = 0;
  private counters = { hits: 0, misses: 0, inflightDedups: 0, loads: 0, loadFailures: 0, readoptions: 0, evictions: 0 };

  constructor(options: DeltaCacheOptions) {
    this.maxBytes = integerOption(DS_ERR_CACHE_BAD_OPTION, 'maxBytes', options.maxBytes, 1);
    this.maxPinnedBytes = integerOption(
      DS_ERR_CACHE_BAD_OPTION,
      'maxPinnedBytes',
      options.maxPinnedBytes ?? options.maxBytes,
      1,
    );
    if (this.maxPinnedBytes > this.maxBytes) {
      throw new DS_ERR_CACHE_BAD_OPTION(
        'maxPinnedBytes',
        `${this.maxPinnedBytes} is more than maxBytes (${this.maxBytes})`,
      );
    }
    for (const name of ['resolve', 'decode'] as const) {
      if (typeof options[name] !== 'function') throw new DS_ERR_CACHE_BAD_OPTION(name, 'expected a function');
    }
    if (typeof options.source?.fetch !== 'function')
      throw new DS_ERR_CACHE_BAD_OPTION('source', 'expected a DeltaSource');
    this.source = options.source;
    this.resolveLocation = options.resolve;
    this.decode = options.decode;
    this.onEvent = options.onEvent;
    this.lru = new LRUCache<string, Entry>({
      maxSize: this.maxBytes,
      sizeCalculation: (entry) => entry.bytes,
      backgroundFetchSize: 0,
      noDeleteOnFetchRejection: false,
      allowStaleOnFetchRejection: false,
      fetchMethod: (key, _stale, { signal }) => this.load(key, signal),
      onInsert: (entry) => this.inserted(entry),
      dispose: (entry, _key, reason) => this.disposed(entry, reason),
    });
  }

  /**
   * A lease on `key` if it is in the cache now (a hit), else null; never loads and never waits.
   * For callers that must not block on a fetch: load first ({@link prefetch}), then try again.
   * A lease taken to keep a delta resident rather than to use it (`quiet`) is not a hit: it
   * neither counts nor emits one, nor refreshes the entry's recency.
   */
  tryAcquire(key: string, options: { quiet?: boolean } = {}): DeltaLease | null {
    const quiet = options.quiet === true;
    const entry = this.pinned.get(key) ?? (quiet ? this.lru.peek(key) : this.lru.get(key));
    if (entry === undefined) return null;
    if (!quiet) {
      this.counters.hits++;
      this.emit({ type: 'hit', key, bytes: entry.bytes });
    }
    return this.lease(entry);
  }

  /** Loads `key` into the cache if it is not there; rejects with the load's error. */
  async prefetch(key: string, signal?: AbortSignal): Promise<CacheLookup> {
    return this.lookup(key, signal);
  }

  /**
   * Keeps `key` in the cache until {@link unpin} or {@link evict}, loading it first if needed.
   * Fails with DS_ERR_CACHE_PIN_NO_ROOM when the pinned share would pass maxPinnedBytes or
   * the delta cannot be loaded for lack of room.
   */
  async pin(key: string, signal?: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.pinned.has(key)) return;
      const resident = this.lru.peek(key) ?? this.held.get(key);
      if (resident !== undefined) {
        this.pinResident(resident);
        return;
      }
      if (attempt > MAX_LOOKUPS)
        throw new DS_ERR_CACHE_LOAD_CANCELLED(key, `evicted before it could be pinned, ${MAX_LOOKUPS} times`);
      try {
        await this.lookup(key, signal);
      } catch (error) {
        if (isError(error, DS_ERR_CACHE_NO_ROOM)) {
          const refused = new DS_ERR_CACHE_PIN_NO_ROOM(key, error.message);
          refused.cause = error;
          throw refused;
        }
        throw error;
      }
    }
  }

  /** Returns a pinned entry to the LRU as most recently used. False if `key` was not pinned. */
  unpin(key: string): boolean {
    const entry = this.pinned.get(key);
    if (entry === undefined) return false;
    this.pinned.delete(key);
    this.pinnedBytes -= entry.bytes;
    entry.place = 'lru';
    this.lru.set(key, entry);
    return true;
  }

  /**
   * Removes `key` from the cache (unpinning it first). An acquired entry stays in memory, held,
   * until released. A load in flight is not cancelled. False if `key` was not cached.
   */
  evict(key: string): boolean {
    this.unpin(key);
    const entry = this.lru.peek(key);
    if (entry === undefined) return false;
    this.removeFromLru(entry, 'explicit');
    return true;
  }

  /**
   * Bytes a load could have now: free, plus what LRU pressure could evict (entries nobody
   * leases). A load that failed with DS_ERR_CACHE_NO_ROOM (its `neededBytes`) can succeed once
   * this reaches that size.
   */
  availableBytes(): number {
    let reclaimable = 0;
    for (const entry of this.lru.values()) if (entry !== undefined && entry.refs === 0) reclaimable += entry.bytes;
    return this.maxBytes - this.totalBytes() + reclaimable;
  }

  stats(): DeltaCacheStats {
    const cachedBytes = this.lru.calculatedSize;
    return {
      ...this.counters,
      entries: this.lru.size + this.pinned.size,
      pinned: this.pinned.size,
      held: this.held.size,
      cachedBytes,
      pinnedBytes: this.pinnedBytes,
      heldBytes: this.heldBytes,
      loadingBytes: this.loadingBytes,
      totalBytes: cachedBytes + this.pinnedBytes + this.heldBytes + this.loadingBytes,
      maxBytes: this.maxBytes,
    };
  }

  /** What is in memory and why, for admin listings: cached (most recent first), pinned, held. */
  list(): {
    key: string;
    bytes: number;
    fileBytes: number;
    state: 'cached' | 'pinned' | 'held';
    leases: number;
    uri: string;
    loadedAt: number;
  }[] {
    const row = (entry: Entry, state: 'cached' | 'pinned' | 'held') => ({
      key: entry.key,
      bytes: entry.bytes,
      fileBytes: entry.fileBytes,
      state,
      leases: entry.refs,
      uri: entry.uri,
      loadedAt: entry.loadedAt,
    });
    return [
      ...[...this.lru.values()].map((e) => row(e, 'cached')),
      ...[...this.pinned.values()].map((e) => row(e, 'pinned')),
      ...[...this.held.values()].map((e) => row(e, 'held')),
    ];
  }

  private totalBytes(): number {
    return this.lru.calculatedSize + this.pinnedBytes + this.heldBytes + this.loadingBytes;
  }

  private lease(entry: Entry): DeltaLease {
    entry.refs++;
    let open = true;
    return {
      delta: entry.delta,
      entry,
      release: () => {
        if (!open) return;
        open = false;
        this.release(entry);
      },
    };
  }

  private async lookup(key: string, signal?: AbortSignal): Promise<{ entry: Entry; hit: boolean }> {
    signal?.throwIfAborted();
    const pinned = this.pinned.get(key);
    if (pinned !== undefined) {
      this.counters.hits++;
      this.emit({ type: 'hit', key, bytes: pinned.bytes });
      return { entry: pinned, hit: true };
    }
    const status: LRUCache.Status<string, Entry> = {};
    const pending = this.lru.fetch(key, { status });
    // lru-cache sets status.fetch synchronously: 'hit', 'miss' (this call started the load) or
    // 'inflight' (it joined one).
    const hit = status.fetch === 'hit';
    if (hit) {
      this.counters.hits++;
      this.emit({ type: 'hit', key, bytes: this.lru.peek(key)?.bytes ?? 0 });
    } else {
      const inflight = status.fetch === 'inflight';
      this.counters.misses++;
      if (inflight) this.counters.inflightDedups++;
      this.emit({ type: 'miss', key, inflight });
    }
    const entry = await (signal === undefined ? pending : raceAbort(pending, signal));
    if (entry === undefined) throw new DS_ERR_CACHE_LOAD_CANCELLED(key, 'lru-cache dropped the load');
    return { entry, hit };
  }

  /** lru-cache's fetchMethod: the whole miss pipeline. */
  private async load(key: string, signal: AbortSignal): Promise<Entry> {
    const start = performance.now();
    const heldEntry = this.held.get(key);
    if (heldEntry !== undefined) {
      this.held.delete(key);
      this.heldBytes -= heldEntry.bytes;
      this.counters.readoptions++;
      this.grantRoom(heldEntry, signal);
      return heldEntry;
    }
    let uri: string | undefined;
    try {
      const location = await this.resolveLocation(key);
      uri = location.uri;
      const resolved = performance.now();
      const status: FetchStatus = {};
      const bytes = await this.source.fetch(location.uri, location.sha256, signal, status);
      const fetched = performance.now();
      signal.throwIfAborted();
      const delta = this.decode(bytes);
      const decoded = performance.now();
      const size = Math.max(1, deltaByteSize(delta));
      if (size > this.maxBytes) throw new DS_ERR_CACHE_DELTA_TOO_LARGE(key, size, this.maxBytes);
      this.makeRoom(key, size);
      const verifyMs = status.verifyMs ?? 0;
      const timings: DeltaLoadTimings = {
        resolveMs: resolved - start,
        fetchMs: status.transferMs ?? fetched - resolved - verifyMs,
        verifyMs,
        decodeMs: decoded - fetched,
        totalMs: decoded - start,
      };
      const entry = new Entry(
        key,
        delta,
        size,
        bytes.length,
        redactUri(location.uri),
        location.sha256.toLowerCase(),
        Date.now(),
        timings,
      );
      this.grantRoom(entry, signal);
      this.counters.loads++;
      this.emit({
        type: 'load',
        key,
        bytes: size,
        fileBytes: entry.fileBytes,
        ms: timings.totalMs,
        timings,
        uri: entry.uri,
      });
      return entry;
    } catch (error) {
      this.counters.loadFailures++;
      if (typeof error === 'object' && error !== null) {
        const tagged = error as { deltaKey?: string; uri?: string };
        tagged.deltaKey ??= key;
        if (uri !== undefined) tagged.uri ??= redactUri(uri);
      }
      this.emit({ type: 'load-failed', key, ms: performance.now() - start, error });
      throw error;
    }
  }

  /**
   * Evicts unacquired LRU entries, least recently used first, until `size` more bytes fit.
   * Checks first, so a delta that cannot fit evicts nothing.
   */
  private makeRoom(key: string, size: number): void {
    const free = this.maxBytes - this.totalBytes();
    if (free >= size) return;
    const victims: Entry[] = [];
    let reclaimable = 0;
    for (const entry of this.lru.rvalues()) {
      if (entry === undefined || entry.refs > 0) continue;
      victims.push(entry);
      reclaimable += entry.bytes;
      if (free + reclaimable >= size) break;
    }
    if (free + reclaimable < size) {
      let inUse = this.heldBytes;
      for (const entry of this.lru.values()) if (entry !== undefined && entry.refs > 0) inUse += entry.bytes;
      const error = new DS_ERR_CACHE_NO_ROOM(
        key,
        size,
        `${free} of ${this.maxBytes} bytes are free; ${this.pinnedBytes} are pinned, ${inUse} are held by running batches, ${this.loadingBytes} belong to other loads`,
      );
      throw Object.assign(error, { neededBytes: size });
    }
    for (const victim of victims) this.removeFromLru(victim, 'pressure');
  }

  /** Counts `entry` as loading until lru-cache inserts it, or gives the bytes back if the load is dropped. */
  private grantRoom(entry: Entry, signal: AbortSignal): void {
    entry.place = 'loading';
    this.loadingBytes += entry.bytes;
    signal.addEventListener(
      'abort',
      () => {
        if (entry.place !== 'loading') return;
        this.loadingBytes -= entry.bytes;
        this.dropOrHold(entry);
      },
      { once: true },
    );
  }

  private inserted(entry: Entry): void {
    if (entry.place !== 'loading') return;
    this.loadingBytes -= entry.bytes;
    entry.place = 'lru';
  }

  /** lru-cache removed an entry on its own (only as a backstop: this class makes room first). */
  private disposed(entry: Entry, reason: LRUCache.DisposeReason): void {
    if (entry.place !== 'lru') return;
    this.counters.evictions++;
    const held = this.dropOrHold(entry);
    this.emit({
      type: 'evict',
      key: entry.key,
      bytes: entry.bytes,
      reason: reason === 'delete' ? 'explicit' : 'pressure',
      held,
    });
  }

  private removeFromLru(entry: Entry, reason: 'pressure' | 'explicit'): void {
    // Marked before the delete so the dispose hook knows this removal is already handled.
    entry.place = 'gone';
    this.lru.delete(entry.key);
    const held = this.dropOrHold(entry);
    this.counters.evictions++;
    this.emit({ type: 'evict', key: entry.key, bytes: entry.bytes, reason, held });
  }

  /** Takes an entry that left the cache out of memory accounting, unless a lease holds it. True if held. */
  private dropOrHold(entry: Entry): boolean {
    if (entry.refs > 0) {
      entry.place = 'held';
      this.held.set(entry.key, entry);
      this.heldBytes += entry.bytes;
      return true;
    }
    entry.place = 'gone';
    return false;
  }

  private pinResident(entry: Entry): void {
    if (this.pinnedBytes + entry.bytes > this.maxPinnedBytes) {
      throw new DS_ERR_CACHE_PIN_NO_ROOM(
        entry.key,
        `it takes ${entry.bytes} bytes and ${this.pinnedBytes} of the ${this.maxPinnedBytes} bytes allowed for pinned deltas are taken`,
      );
    }
    if (entry.place === 'lru') {
      entry.place = 'pinned';
      this.lru.delete(entry.key);
    } else if (entry.place === 'held') {
      this.held.delete(entry.key);
      this.heldBytes -= entry.bytes;
    }
    entry.place = 'pinned';
    this.pinned.set(entry.key, entry);
    this.pinnedBytes += entry.bytes;
  }

  private release(entry: Entry): void {
    entry.refs--;
    if (entry.refs === 0 && entry.place === 'held') {
      this.held.delete(entry.key);
      this.heldBytes -= entry.bytes;
      entry.place = 'gone';
    }
  }

  private emit(event: DeltaCacheEvent): void {
    if (this.onEvent === undefined) return;
    try {
      this.onEvent(event);
    } catch (error) {
      process.emitWarning(`delta cache onEvent listener threw on a ${event.type} event: ${String(error)}`);
    }
  }
}
