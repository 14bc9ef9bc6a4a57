/**
 * Reading initializer bytes stored outside the protobuf (ONNX "external data": data_location
 * EXTERNAL plus location/offset/length keys, location relative to the model's folder), so that
 * a loaded model is self-contained, and writing them out again when saving.
 *
 * Locations were already vetted lexically by `validate.ts` (relative, no `..` escape). Symlinks
 * are deliberately followed: model caches (e.g. Hugging Face's) link snapshot files to blobs
 * stored elsewhere.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { fileKind, NotRegularFileError, openRegularFile } from '../core/regular-file.js';
import { type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DS_ERR_ONNX_INVALID } from '../core/errors.js';
import { onnx } from './proto.js';
import type { ExternalSlice } from './validate.js';

/** Reads every slice into its tensor's raw_data (async; one open per file). */
export async function resolveExternalData(
  slices: readonly ExternalSlice[],
  baseDir: string,
  label: string,
): Promise<void> {
  for (const [location, group] of groupByLocation(slices)) {
    const handle = await openExternal(location, baseDir, label);
    try {
      const { size } = await handle.stat();
      for (const slice of group) {
        checkFits(slice, size, label);
        const bytes = Buffer.allocUnsafeSlow(slice.length);
        let filled = 0;
        while (filled < slice.length) {
          const { bytesRead } = await handle.read(bytes, filled, slice.length - filled, slice.offset + filled);
          if (bytesRead === 0) throw shortFile(slice, slice.offset + filled, label);
          filled += bytesRead;
        }
        inline(slice.tensor, bytes);
      }
    } finally {
      await handle.close();
    }
  }
}

/** Synchronous twin of {@link resolveExternalData}, for `decodeOnnxModel`. */
export function resolveExternalDataSync(slices: readonly ExternalSlice[], baseDir: string, label: string): void {
  for (const [location, group] of groupByLocation(slices)) {
    const fd = openExternalSync(location, baseDir, label);
    try {
      const { size } = fstatSync(fd);
      for (const slice of group) {
        checkFits(slice, size, label);
        const bytes = Buffer.allocUnsafeSlow(slice.length);
        let filled = 0;
        while (filled < slice.length) {
          const bytesRead = readSync(fd, bytes, filled, slice.length - filled, slice.offset + filled);
          if (bytesRead === 0) throw shortFile(slice, slice.offset + filled, label);
          filled += bytesRead;
        }
        inline(slice.tensor, bytes);
      }
    } finally {
      closeSync(fd);
    }
  }
}

function groupByLocation(slices: readonly ExternalSlice[]): Map<string, ExternalSlice[]> {
  const groups = new Map<string, ExternalSlice[]>();
  for (const slice of slices) {
    const group = groups.get(slice.location);
    if (group) group.push(slice);
    else groups.set(slice.location, [slice]);
  }
  return groups;
}

async function openExternal(location: string, baseDir: string, label: string): Promise<FileHandle> {
  try {
    return await openRegularFile(join(baseDir, location));
  } catch (err) {
    throw cannotOpen(location, err, label);
  }
}

function openExternalSync(location: string, baseDir: string, label: string): number {
  try {
    // O_NONBLOCK: opening a FIFO must not block (see core/regular-file.ts); fstat refuses it below.
    const fd = openSync(join(baseDir, location), constants.O_RDONLY | constants.O_NONBLOCK);
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      closeSync(fd);
      throw new NotRegularFileError(join(baseDir, location), fileKind(stats));
    }
    return fd;
  } catch (err) {
    throw cannotOpen(location, err, label);
  }
}

function cannotOpen(location: string, err: unknown, label: string): Error {
  if (err instanceof NotRegularFileError)
    return new DS_ERR_ONNX_INVALID(label, `external data file "${location}" is ${err.kind}, not a regular file`);
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'does not exist' : `cannot be opened (${code ?? String(err)})`;
  return new DS_ERR_ONNX_INVALID(label, `external data file "${location}" ${reason}`);
}

function checkFits(slice: ExternalSlice, fileSize: number, label: string): void {
  if (slice.offset + slice.length > fileSize) throw shortFile(slice, fileSize, label);
}

function shortFile(slice: ExternalSlice, available: number, label: string): Error {
  return new DS_ERR_ONNX_INVALID(
    label,
    `initializer "${slice.tensor.name ?? ''}" needs bytes ${slice.offset}..${slice.offset + slice.length} of external data file ` +
      `"${slice.location}", which is too short (${available} bytes)`,
  );
}

function inline(tensor: onnx.ITensorProto, bytes: Uint8Array): void {
  tensor.rawData = bytes;
  tensor.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  tensor.externalData = [];
}
