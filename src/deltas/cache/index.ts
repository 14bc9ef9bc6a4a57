export {
  DeltaCache,
  type CacheLookup,
  type CachedDelta,
  type DeltaCacheEvent,
  type DeltaCacheOptions,
  type DeltaCacheStats,
  type DeltaLease,
  type DeltaLoadTimings,
} from './delta-cache.js';
export { deltaByteSize } from './delta-size.js';
