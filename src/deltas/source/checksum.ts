/**
 * sha256 of a delta computed while its bytes arrive, timing only the hashing itself so the
 * cache can report verification apart from transfer.
 */
import { createHash, type Hash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DS_ERR_SOURCE_BAD_SHA256, DS_ERR_SOURCE_CHECKSUM_MISMATCH } from '../../core/errors.js';
import { quoteBounded } from '../../core/bounded-text.js';
import { redactUri } from './uri.js';
import { withUri } from './source-error.js';

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** `expected` lower-cased, or a DS_ERR_SOURCE_BAD_SHA256 naming the URI. */
export function normalizeSha256(uri: string, expected: string): string {
  if (typeof expected !== 'string' || !SHA256_HEX.test(expected)) {
    throw withUri(new DS_ERR_SOURCE_BAD_SHA256(redactUri(uri), quoteBounded(String(expected))), uri);
  }
  return expected.toLowerCase();
}

export class StreamingSha256 {
  private readonly hash: Hash = createHash('sha256');
  /** Milliseconds spent inside the hash so far. */
  elapsedMs = 0;

  update(chunk: Uint8Array): void {
    const start = performance.now();
    this.hash.update(chunk);
    this.elapsedMs += performance.now() - start;
  }

  /** Throws DS_ERR_SOURCE_CHECKSUM_MISMATCH when the digest differs from `expected` (lower-case hex). */
  verify(uri: string, expected: string): void {
    const start = performance.now();
    const actual = this.hash.digest('hex');
    this.elapsedMs += performance.now() - start;
    if (actual !== expected) {
      throw withUri(new DS_ERR_SOURCE_CHECKSUM_MISMATCH(redactUri(uri), actual, expected), uri);
    }
  }
}
