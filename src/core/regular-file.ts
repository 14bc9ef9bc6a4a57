/**
 * Opening a file we are told to read (configuration, model manifest, model, registry state file,
 * a delta under the file root, a CLI argument) only when it is a regular file.
 *
 * Opening a FIFO for reading blocks until a writer appears, and reading a character device never
 * ends: a FIFO at the state-file path hung start-up silently (issue 22, item 10). The file is
 * opened with O_NONBLOCK (which makes opening a FIFO return at once and changes nothing for a
 * regular file) and checked with fstat on the same descriptor, so nothing can be swapped in
 * between the check and the read.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';

/** Thrown for anything but a regular file; `code` lets callers tell it from ENOENT and the like. */
export class NotRegularFileError extends Error {
  readonly code = 'ENOTREGULAR';
  constructor(
    readonly path: string,
    readonly kind: string,
  ) {
    super(`${path} is ${kind}, not a regular file`);
    this.name = 'NotRegularFileError';
  }
}

/** What a non-regular file is, in words. */
export function fileKind(stats: Stats): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** Opens `path` for reading; rejects with NotRegularFileError unless it is a regular file (symlinks followed). */
export async function openRegularFile(path: string): Promise<FileHandle> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new NotRegularFileError(path, fileKind(stats));
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** `readFile` for regular files only (see `openRegularFile`); other errors are Node's own (ENOENT, EACCES...). */
export async function readRegularFile(path: string): Promise<Buffer>;
export async function readRegularFile(path: string, encoding: 'utf8'): Promise<string>;
export async function readRegularFile(path: string, encoding?: 'utf8'): Promise<Buffer | string> {
  const handle = await openRegularFile(path);
  try {
    return encoding === undefined ? await handle.readFile() : await handle.readFile(encoding);
  } finally {
    await handle.close();
  }
}
