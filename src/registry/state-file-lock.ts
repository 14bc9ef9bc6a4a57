/**
 * A cross-process (and cross-machine, on a shared volume) lock around a change of the registry
 * state file, so replicas that share the file never lose each other's writes: each change runs
 * lock → read the latest file → apply → atomic rename → unlock.
 *
 * `proper-lockfile` does the locking: the lock is a directory beside the file (`mkdir` is atomic
 * on local and network file systems, where `O_EXCL` files are not always), its mtime is refreshed
 * while held, and a lock whose mtime is older than `staleMs` is taken over, so a replica killed
 * while holding it (kill -9, node lost) blocks the others for at most `staleMs`. Waiting for the
 * lock retries every 100 ms for twice `staleMs`, long enough to outlive a dead holder's lock.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { DS_ERR_REGISTRY_LOCKED, DS_ERR_REGISTRY_PERSIST_FAILED } from '../core/errors.js';

/** proper-lockfile's lower bound for `stale`. */
export const MIN_LOCK_STALE_MS = 5_000;
const RETRY_EVERY_MS = 100;

export interface HeldLock {
  /** False once another process took the lock over (ours looked stale): do not write. */
  stillHeld(): boolean;
}

/** Runs `work` holding the lock; failing to take it throws DS_ERR_REGISTRY_LOCKED (busy) or DS_ERR_REGISTRY_PERSIST_FAILED. */
export async function withStateFileLock<T>(
  path: string,
  staleMs: number,
  work: (lock: HeldLock) => Promise<T>,
): Promise<T> {
  let compromised: Error | null = null;
  let release: () => Promise<void>;
  try {
    await mkdir(dirname(path), { recursive: true });
    release = await lockfile.lock(path, {
      realpath: false, // the state file may not exist yet
      stale: staleMs,
      retries: {
        retries: Math.ceil((2 * staleMs) / RETRY_EVERY_MS),
        factor: 1,
        minTimeout: RETRY_EVERY_MS,
        maxTimeout: RETRY_EVERY_MS,
      },
      // The default throws from a timer, killing the process; a lost lock only fails this change.
      onCompromised: (error) => {
        compromised = error;
      },
    });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ELOCKED') throw new DS_ERR_REGISTRY_LOCKED(`${path}.lock`, 2 * staleMs);
    throw new DS_ERR_REGISTRY_PERSIST_FAILED(path, `cannot lock it: ${e.message}`);
  }
  try {
    return await work({ stillHeld: () => compromised === null });
  } finally {
    // Releasing a compromised lock rejects; there is nothing left to release then.
    await release().catch(() => undefined);
  }
}
