/**
 * API key → owner, without storing keys and without leaking through timing: the configuration
 * holds only sha256 hex digests; a presented key is hashed and compared with EVERY stored digest
 * by `crypto.timingSafeEqual` (no early exit), so the time taken does not depend on which
 * digest, if any, matched or on how many leading bytes agreed.
 */
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '../core/sha256.js';

export class KeyRing<T> {
  private readonly entries: readonly { readonly digest: Buffer; readonly owner: T }[];

  constructor(entries: Iterable<readonly [sha256Hex: string, owner: T]>) {
    this.entries = [...entries].map(([hex, owner]) => ({ digest: Buffer.from(hex, 'hex'), owner }));
  }

  lookup(key: string): T | null {
    const digest = sha256(key);
    let found: T | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, digest) && found === null) found = entry.owner;
    }
    return found;
  }
}

/** The key from `Authorization: Bearer <key>`, or null when the header is absent or another scheme. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1] ?? null;
}
