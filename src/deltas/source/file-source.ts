/**
 * Reads deltas from the local file system, confined to one root folder. Plain paths are taken
 * relative to the root; `file://` URIs are absolute but must also lie inside it, so a registry
 * entry can never make the gateway read an arbitrary file. Containment is checked twice: on the
 * lexical path (so `../../etc/passwd` is refused even when it does not exist) and on the real
 * path (so a symlink inside the root cannot point outside it).
 */
import { realpath, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import {
  DS_ERR_SOURCE_BAD_OPTION,
  DS_ERR_SOURCE_BAD_URI,
  DS_ERR_SOURCE_FILE_MISSING,
  DS_ERR_SOURCE_FILE_UNREADABLE,
  DS_ERR_SOURCE_OUTSIDE_ROOT,
  DS_ERR_SOURCE_TOO_LARGE,
  isDsError,
} from '../../core/errors.js';
import type { DeltaSource, FetchStatus } from './delta-source.js';
import { StreamingSha256, normalizeSha256 } from './checksum.js';
import { errorCode, errorMessage, withUri } from './source-error.js';
import { schemeOf } from './uri.js';
import { DEFAULT_MAX_DELTA_BYTES } from './source-options.js';
import { integerOption } from '../../core/options.js';
import { openRegularFile } from '../../core/regular-file.js';
import { boundText, quoteBounded } from '../../core/bounded-text.js';

/** Bytes per read call: big enough to be cheap, small enough for an abort to act quickly. */
const READ_SLICE_BYTES = 8 * 1024 * 1024;

export interface FileDeltaSourceOptions {
  /** Folder every delta path must resolve into. */
  root: string;
  /** Largest file accepted, in bytes. Default 1 GiB. */
  maxBytes?: number;
}

export class FileDeltaSource implements DeltaSource {
  private readonly root: string;
  private readonly maxBytes: number;
  private realRoot: Promise<string> | undefined;

  constructor(options: FileDeltaSourceOptions) {
    if (typeof options.root !== 'string' || options.root === '') {
      throw new DS_ERR_SOURCE_BAD_OPTION('fileRoot', `expected a folder path, got ${JSON.stringify(options.root)}`);
    }
    this.root = resolve(options.root);
    this.maxBytes = integerOption(DS_ERR_SOURCE_BAD_OPTION, 'maxBytes', options.maxBytes ?? DEFAULT_MAX_DELTA_BYTES, 1);
  }

  async fetch(uri: string, expectedSha256: string, signal?: AbortSignal, status?: FetchStatus): Promise<Uint8Array> {
    const started = performance.now();
    const expected = normalizeSha256(uri, expectedSha256);
    signal?.throwIfAborted();
    const path = await this.containedRealPath(uri);
    const info = await stat(path).catch((error: unknown) => {
      throw withUri(new DS_ERR_SOURCE_FILE_UNREADABLE(boundText(uri, 300), errorMessage(error)), uri);
    });
    if (!info.isFile())
      throw withUri(new DS_ERR_SOURCE_FILE_UNREADABLE(boundText(uri, 300), 'not a regular file'), uri);
    if (info.size > this.maxBytes) {
      throw withUri(
        new DS_ERR_SOURCE_TOO_LARGE(boundText(uri, 300), this.maxBytes, `the file has ${info.size} bytes`),
        uri,
      );
    }

    const hash = new StreamingSha256();
    const bytes = await this.read(uri, path, hash, signal);
    hash.verify(uri, expected);
    if (status !== undefined) {
      status.attempts = 1;
      status.bytes = bytes.byteLength;
      status.verifyMs = hash.elapsedMs;
      status.transferMs = performance.now() - started - hash.elapsedMs;
      status.finalUri = uri;
    }
    return bytes;
  }

  /**
   * Reads the file into ONE buffer sized from the open handle, hashing as it goes. A stream of
   * 64 KiB chunks concatenated at the end allocated the file twice over, in pieces small enough
   * to fragment the allocator: RSS grew by hundreds of MB under delta churn.
   */
  private async read(uri: string, path: string, hash: StreamingSha256, signal?: AbortSignal): Promise<Uint8Array> {
    let handle: FileHandle | undefined;
    try {
      handle = await openRegularFile(path);
      const size = (await handle.stat()).size;
      if (size > this.maxBytes)
        throw withUri(
          new DS_ERR_SOURCE_TOO_LARGE(boundText(uri, 300), this.maxBytes, `the file has ${size} bytes`),
          uri,
        );
      const bytes = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        signal?.throwIfAborted();
        const { bytesRead } = await handle.read(bytes, filled, Math.min(READ_SLICE_BYTES, size - filled), filled);
        if (bytesRead === 0) break; // the file shrank: hash what is there, the checksum decides
        hash.update(bytes.subarray(filled, filled + bytesRead));
        filled += bytesRead;
      }
      const extra = await handle.read(new Uint8Array(1), 0, 1, filled);
      if (extra.bytesRead > 0)
        throw withUri(new DS_ERR_SOURCE_FILE_UNREADABLE(boundText(uri, 300), 'the file grew while being read'), uri);
      return filled === size ? bytes : bytes.subarray(0, filled);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (isDsError(error)) throw error;
      throw withUri(new DS_ERR_SOURCE_FILE_UNREADABLE(boundText(uri, 300), errorMessage(error)), uri);
    } finally {
      await handle?.close();
    }
  }

  private async containedRealPath(uri: string): Promise<string> {
    const lexical = this.lexicalPath(uri);
    this.realRoot ??= realpath(this.root).catch((error: unknown) => {
      this.realRoot = undefined;
      throw withUri(
        new DS_ERR_SOURCE_FILE_UNREADABLE(
          boundText(uri, 300),
          `delta root ${this.root} is not accessible: ${errorMessage(error)}`,
        ),
        uri,
      );
    });
    const realRoot = await this.realRoot;
    let real: string;
    try {
      real = await realpath(lexical);
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') {
        // The message reaches API clients (503 naming the task): say where relative to the root only.
        throw withUri(new DS_ERR_SOURCE_FILE_MISSING(boundText(uri, 300), 'no such file under the delta root'), uri);
      }
      throw withUri(new DS_ERR_SOURCE_FILE_UNREADABLE(boundText(uri, 300), errorMessage(error)), uri);
    }
    if (!isInside(realRoot, real)) {
      throw withUri(new DS_ERR_SOURCE_OUTSIDE_ROOT(boundText(uri, 300), this.root), uri);
    }
    return real;
  }

  private lexicalPath(uri: string): string {
    let path: string;
    if (schemeOf(uri) === 'file' && uri.toLowerCase().startsWith('file:')) {
      try {
        path = fileURLToPath(uri);
      } catch (error) {
        throw withUri(new DS_ERR_SOURCE_BAD_URI(boundText(uri, 300), errorMessage(error)), uri);
      }
    } else {
      if (uri === '' || uri.includes('\0'))
        throw withUri(new DS_ERR_SOURCE_BAD_URI(quoteBounded(uri, 300), 'empty path or NUL byte'), uri);
      path = resolve(this.root, uri);
    }
    if (!isInside(this.root, path)) throw withUri(new DS_ERR_SOURCE_OUTSIDE_ROOT(boundText(uri, 300), this.root), uri);
    return path;
  }
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}
