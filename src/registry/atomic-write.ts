/**
 * Replaces a file so that a crash at any moment leaves either the old bytes or the new ones,
 * never a mix: write a temporary file beside it, fsync it, rename it over the target (atomic on
 * POSIX within one file system), then fsync the folder so the rename itself is durable.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`); // see TEMP_NAME
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
}

/** `.<file>.<pid>.<8 hex>.tmp`: the temporary files writeFileAtomic makes beside `<file>`. */
const TEMP_NAME = /^\.(.+)\.\d+\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes the temporary files a writer killed before its rename left beside `path` (each as large
 * as the file), once they are older than `olderThanMs`: with replicas sharing the file, a younger
 * one may belong to a live writer that holds the lock (whose staleness bound this should be).
 */
export async function removeStaleTempFiles(path: string, olderThanMs: number): Promise<void> {
  const dir = dirname(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return; // no folder yet: nothing was ever written
  }
  const mine = names.filter((name) => TEMP_NAME.exec(name)?.[1] === basename(path));
  const cutoff = Date.now() - olderThanMs;
  await Promise.all(
    mine.map(async (name) => {
      const file = join(dir, name);
      const { mtimeMs } = await stat(file).catch(() => ({ mtimeMs: Infinity }));
      if (mtimeMs < cutoff) await unlink(file).catch(() => undefined);
    }),
  );
}

async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms (Windows) cannot open or fsync a folder; the rename is still atomic there.
  } finally {
    await handle?.close();
  }
}
