/**
 * Reading and writing ONNX model files. A model comes back from here validated and
 * self-contained: initializers stored as external data are read into `raw_data`, so later
 * stages (weight extraction, session creation from bytes) never touch the file system again.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { readRegularFile } from '../core/regular-file.js';
import { dirname, join, posix, resolve } from 'node:path';
import { DS_ERR_FILE_READ, DS_ERR_ONNX_INVALID } from '../core/errors.js';
import { resolveExternalData, resolveExternalDataSync } from './external-data.js';
import { onnx } from './proto.js';
import { float32ToLittleEndian } from './tensor-layout.js';
import { externalLocationProblem, validateModel, type ExternalSlice } from './validate.js';

/** protobuf messages cannot exceed 2 GiB; bigger models must keep their weights outside. */
const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;

/** Float initializers above this size go to the external data file when one is asked for. */
const EXTERNAL_THRESHOLD_BYTES = 1024;

/**
 * Offsets in the external data file: large tensors start on a page boundary so a runtime may
 * map them; small ones only on a cache line, to keep the file compact.
 */
const PAGE_ALIGN_FROM_BYTES = 1024 * 1024;
const PAGE_BYTES = 4096;
const SMALL_ALIGN_BYTES = 64;

export interface DecodeOptions {
  /** Folder external data locations are relative to; without it, external data is refused. */
  readonly baseDir?: string;
}

export interface SaveOptions {
  /**
   * File (relative to the model's folder, and inside it) that receives every fp32 initializer
   * larger than 1 KiB; the model then references it as external data. Needed for models whose
   * weights exceed protobuf's 2 GiB message limit.
   */
  readonly externalDataFile?: string;
}

/** Reads, decodes, validates and inlines the external data of the model at `path`. */
export async function loadOnnxModel(path: string): Promise<onnx.ModelProto> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path);
  } catch (err) {
    throw new DS_ERR_FILE_READ(path, (err as Error).message);
  }
  const model = decodeStructure(bytes, path);
  const slices = validateModel(model, path);
  await resolveExternalData(slices, dirname(path), path);
  return model;
}

/**
 * Decodes and validates model bytes; `label` names the model in errors. External data is read
 * (synchronously) only when `options.baseDir` says where it lives, and refused otherwise.
 */
export function decodeOnnxModel(bytes: Uint8Array, label: string, options: DecodeOptions = {}): onnx.ModelProto {
  const model = decodeStructure(bytes, label);
  const slices = validateModel(model, label);
  if (slices.length > 0) {
    if (options.baseDir === undefined) throw externalWithoutBaseDir(slices, label);
    resolveExternalDataSync(slices, options.baseDir, label);
  }
  return model;
}

/** Serialises a self-contained model (refuses one over the 2 GiB protobuf limit). */
export function encodeOnnxModel(model: onnx.IModelProto): Uint8Array {
  const payload = initializerPayloadBytes(model);
  if (payload > PROTOBUF_LIMIT_BYTES) {
    throw new DS_ERR_ONNX_INVALID(
      model.graph?.name || 'in-memory model',
      `its initializers hold ${payload} bytes, over protobuf's 2 GiB message limit; save it with an external data file`,
    );
  }
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Writes `model` to `path` (and the external data file, if asked) through temporary files
 * renamed into place, so a reader never sees half a model. The model itself is not modified.
 */
export async function saveOnnxModel(model: onnx.IModelProto, path: string, options: SaveOptions = {}): Promise<void> {
  for (const tensor of model.graph?.initializer ?? []) {
    if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      throw new DS_ERR_ONNX_INVALID(
        path,
        `initializer "${tensor.name ?? ''}" still references external data; load the model with loadOnnxModel first`,
      );
    }
  }
  if (options.externalDataFile === undefined) {
    await writeAtomically(path, (tmp) => writeFile(tmp, encodeOnnxModel(model)));
    return;
  }
  const location = posix.normalize(options.externalDataFile.replaceAll('\\', '/'));
  const problem = externalLocationProblem(location);
  if (problem !== null) throw new DS_ERR_ONNX_INVALID(path, `cannot save: ${problem}`);

  const dataPath = join(dirname(path), location);
  if (resolve(dataPath) === resolve(path))
    throw new DS_ERR_ONNX_INVALID(path, `cannot save: the external data file "${location}" is the model file itself`);

  const { model: referencing, slices } = splitExternal(model, location);
  await mkdir(dirname(dataPath), { recursive: true });
  await writeAtomically(dataPath, async (tmp) => {
    const handle = await open(tmp, 'w');
    try {
      for (const slice of slices) await handle.write(slice.bytes, 0, slice.bytes.byteLength, slice.offset);
    } finally {
      await handle.close();
    }
  });
  await writeAtomically(path, (tmp) => writeFile(tmp, encodeOnnxModel(referencing)));
}

function decodeStructure(bytes: Uint8Array, label: string): onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new DS_ERR_ONNX_INVALID(label, `the bytes are not an ONNX protobuf (${(err as Error).message})`);
  }
}

function externalWithoutBaseDir(slices: readonly ExternalSlice[], label: string): Error {
  const first = slices[0];
  return new DS_ERR_ONNX_INVALID(
    label,
    `initializer "${first?.tensor.name ?? ''}" is stored in external file "${first?.location ?? ''}" but no base folder was given to read it from`,
  );
}

function initializerPayloadBytes(model: onnx.IModelProto): number {
  let total = 0;
  for (const t of model.graph?.initializer ?? []) {
    total += (t.rawData?.byteLength ?? 0) + 4 * ((t.floatData?.length ?? 0) + (t.int32Data?.length ?? 0));
    total += 8 * ((t.int64Data?.length ?? 0) + (t.doubleData?.length ?? 0) + (t.uint64Data?.length ?? 0));
  }
  return total;
}

interface PlannedSlice {
  readonly bytes: Uint8Array;
  readonly offset: number;
}

/** A shallow copy of `model` whose large fp32 initializers point into `location`, and their bytes. */
function splitExternal(model: onnx.IModelProto, location: string): { model: onnx.ModelProto; slices: PlannedSlice[] } {
  const slices: PlannedSlice[] = [];
  let end = 0;
  const initializer = (model.graph?.initializer ?? []).map((tensor) => {
    if (tensor.dataType !== onnx.TensorProto.DataType.FLOAT) return tensor;
    const bytes =
      tensor.rawData && tensor.rawData.byteLength > 0 ? tensor.rawData : float32ToLittleEndian(tensor.floatData ?? []);
    if (bytes.byteLength <= EXTERNAL_THRESHOLD_BYTES) return tensor;
    const align = bytes.byteLength >= PAGE_ALIGN_FROM_BYTES ? PAGE_BYTES : SMALL_ALIGN_BYTES;
    const offset = Math.ceil(end / align) * align;
    end = offset + bytes.byteLength;
    slices.push({ bytes, offset });
    return onnx.TensorProto.create({
      name: tensor.name ?? '',
      dims: tensor.dims ?? [],
      dataType: onnx.TensorProto.DataType.FLOAT,
      ...(tensor.docString ? { docString: tensor.docString } : {}),
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.byteLength) },
      ],
    });
  });
  return { model: onnx.ModelProto.create({ ...model, graph: { ...model.graph, initializer } }), slices };
}

async function writeAtomically(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await write(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
