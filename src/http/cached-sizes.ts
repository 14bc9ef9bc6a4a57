/**
 * What each cached delta takes, in memory (the form the engine keeps it in) and as its file, for
 * the admin task listing: the two differ by the decode (8 bytes per kept entry decoded; 3–6 in
 * mixed mode's grouped form; ~1–2.5 in a version 2 file). Engine events are the only input, as for
 * TaskStates: a load sets the sizes, an eviction, an unload or a worker exit forgets them.
 */
import type { AnyEngineEvent } from '../engine/engine.js';

export interface CachedSize {
  /** Bytes in the cache, as the engine keeps the delta. */
  readonly memoryBytes: number;
  /** Bytes of the delta's file. */
  readonly fileBytes: number;
}

export class CachedSizes {
  private readonly sizes = new Map<string, CachedSize>();

  /** The sizes while the task version's delta is cached; null otherwise. */
  of(key: string): CachedSize | null {
    return this.sizes.get(key) ?? null;
  }

  onEngineEvent(event: AnyEngineEvent): void {
    if (event.type === 'cache' && event.kind === 'load')
      this.sizes.set(event.key, { memoryBytes: event.bytes, fileBytes: event.fileBytes });
    else if (event.type === 'cache' && event.kind === 'evict') this.sizes.delete(event.key);
    else if (event.type === 'dropped') this.sizes.delete(event.key);
    else if (event.type === 'worker-exited') this.sizes.clear();
  }
}
