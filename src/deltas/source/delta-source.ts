/**
 * A delta source turns a URI into the verified bytes of a delta file. It knows nothing of tasks,
 * decoding or caching: the cache calls it on a miss and decodes what it returns.
 */

/** URI schemes a source can serve. A plain path (no scheme) counts as `file`. */
export type DeltaSourceScheme = 'file' | 'http' | 'https';

/**
 * Filled in by {@link DeltaSource.fetch} when the caller passes one (the lru-cache habit:
 * observability without callbacks). Hashing runs while the bytes stream in, so `verifyMs` is
 * the CPU time spent hashing, not a separate phase after the transfer; `transferMs` is the rest
 * of the fetch's wall time.
 */
export interface FetchStatus {
  /** Attempts made (1 when the first one succeeded). */
  attempts?: number;
  /** Bytes returned. */
  bytes?: number;
  /** Milliseconds spent in the sha256 hash (update + digest), summed over the successful attempt. */
  verifyMs?: number;
  /** Wall milliseconds of the whole fetch minus `verifyMs`. */
  transferMs?: number;
  /** The URI the bytes finally came from (differs from the requested one after redirects), redacted. */
  finalUri?: string;
}

export interface DeltaSource {
  /**
   * Resolves to the bytes behind `uri` once their sha256 equals `expectedSha256` (64 hex
   * digits, any case). Rejects with a `DS_ERR_SOURCE_*` error carrying a redacted `uri`
   * property, or with `signal.reason` when aborted.
   */
  fetch(uri: string, expectedSha256: string, signal?: AbortSignal, status?: FetchStatus): Promise<Uint8Array>;
  /** Releases pooled connections. Fetches after close fail. */
  close?(): Promise<void>;
}
