/**
 * Structural checks on a decoded ModelProto, done before anything trusts it: protobuf decoding
 * accepts almost any bytes (unknown fields are skipped), so "it decoded" proves little. Checks
 * that need no file system happen here; external data is only located (and its location
 * vetted), reading it is `external-data.ts`'s job.
 */
import { posix, win32, isAbsolute } from 'node:path';
import { DS_ERR_ONNX_INVALID } from '../core/errors.js';
import { onnx } from './proto.js';
import {
  dataTypeName,
  elementCount,
  formatShape,
  int64ToNumber,
  isKnownDataType,
  rawByteLength,
  tensorShape,
} from './tensor-layout.js';

/** onnx-proto's DataType as plain numbers: the wire carries data types (21-23) its enum lacks. */
const DataType: Readonly<Record<keyof typeof onnx.TensorProto.DataType, number>> = onnx.TensorProto.DataType;

/** Bytes of one initializer that live in an external file, as the model describes them. */
export interface ExternalSlice {
  readonly tensor: onnx.ITensorProto;
  /** Relative path, exactly as written in the model. */
  readonly location: string;
  readonly offset: number;
  readonly length: number;
}

/**
 * Throws DS_ERR_ONNX_INVALID naming the first problem; returns the initializers whose data is
 * external, in graph order.
 */
export function validateModel(model: onnx.IModelProto, label: string): ExternalSlice[] {
  const fail = (reason: string): never => {
    throw new DS_ERR_ONNX_INVALID(label, reason);
  };
  const graph = model.graph;
  if (!graph) fail('the model has no graph (not an ONNX model, or the file is truncated)');
  if ((model.opsetImport ?? []).length === 0)
    fail('the model imports no opset (not an ONNX model, or the file is truncated)');
  const irVersion = model.irVersion === null || model.irVersion === undefined ? 0 : int64ToNumber(model.irVersion);
  if (irVersion === null || irVersion < 1)
    fail(`ir_version is ${String(model.irVersion)}, expected a positive integer`);

  const seen = new Set<string>();
  const external: ExternalSlice[] = [];
  for (const [index, tensor] of (graph?.initializer ?? []).entries()) {
    const name = tensor.name ?? '';
    if (name === '') fail(`initializer #${index} has no name`);
    if (seen.has(name)) fail(`initializer "${name}" is defined twice`);
    seen.add(name);
    const slice = checkInitializer(tensor, `initializer "${name}"`, fail);
    if (slice) external.push(slice);
  }
  return external;
}

function checkInitializer(
  tensor: onnx.ITensorProto,
  what: string,
  fail: (reason: string) => never,
): ExternalSlice | null {
  const shape = tensorShape(tensor);
  if (typeof shape === 'string') return fail(`${what}: ${shape}`);
  const count = elementCount(shape);
  if (count === null) return fail(`${what}: shape ${formatShape(shape)} has too many elements`);
  const dataType = tensor.dataType ?? 0;
  if (!isKnownDataType(dataType)) return fail(`${what}: ${dataTypeName(dataType)}`);
  const described = `${what} (${dataTypeName(dataType)} ${formatShape(shape)})`;
  const expectedBytes = rawByteLength(dataType, count);
  const rawBytes = tensor.rawData?.byteLength ?? 0;

  if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    if (expectedBytes === null) return fail(`${described} cannot be stored as external data`);
    if (rawBytes > 0) return fail(`${described} has both raw_data and external data`);
    return externalSlice(tensor, described, expectedBytes, fail);
  }
  if (
    tensor.dataLocation !== undefined &&
    tensor.dataLocation !== null &&
    tensor.dataLocation !== onnx.TensorProto.DataLocation.DEFAULT
  ) {
    return fail(`${described} has unknown data_location ${String(tensor.dataLocation)}`);
  }
  if (rawBytes > 0) {
    if (expectedBytes === null) return fail(`${described} uses raw_data, which strings cannot`);
    if (rawBytes !== expectedBytes)
      return fail(`${described} has ${rawBytes} bytes of raw_data, expected ${expectedBytes}`);
    return null;
  }
  const [field, held, expected] = typedField(tensor, dataType, count);
  if (held !== expected) {
    return fail(
      held === 0
        ? `${described} has no data (neither raw_data nor ${field}, and no external data)`
        : `${described} has ${held} values in ${field}, expected ${expected}`,
    );
  }
  return null;
}

/** The typed field onnx.proto assigns to a data type, how many values it holds and should hold. */
function typedField(tensor: onnx.ITensorProto, dataType: number, count: number): [string, number, number] {
  const packedPairs = Math.ceil(count / 2);
  switch (dataType) {
    case DataType.FLOAT:
      return ['float_data', tensor.floatData?.length ?? 0, count];
    case DataType.COMPLEX64:
      return ['float_data', tensor.floatData?.length ?? 0, 2 * count];
    case DataType.DOUBLE:
      return ['double_data', tensor.doubleData?.length ?? 0, count];
    case DataType.COMPLEX128:
      return ['double_data', tensor.doubleData?.length ?? 0, 2 * count];
    case DataType.INT64:
      return ['int64_data', tensor.int64Data?.length ?? 0, count];
    case DataType.UINT32:
    case DataType.UINT64:
      return ['uint64_data', tensor.uint64Data?.length ?? 0, count];
    case DataType.STRING:
      return ['string_data', tensor.stringData?.length ?? 0, count];
    case 21: // UINT4
    case 22: // INT4
    case 23: // FLOAT4E2M1: two elements per int32_data entry
      return ['int32_data', tensor.int32Data?.length ?? 0, packedPairs];
    default:
      return ['int32_data', tensor.int32Data?.length ?? 0, count];
  }
}

function externalSlice(
  tensor: onnx.ITensorProto,
  described: string,
  expectedBytes: number,
  fail: (reason: string) => never,
): ExternalSlice {
  const entries = new Map<string, string>();
  for (const entry of tensor.externalData ?? []) entries.set(entry.key ?? '', entry.value ?? '');
  const location = entries.get('location');
  if (location === undefined || location === '') return fail(`${described} is external but names no location`);
  const problem = externalLocationProblem(location);
  if (problem !== null) return fail(`${described}: ${problem}`);
  const offset = parseByteCount(entries.get('offset'), 0, `${described} external offset`, fail);
  const length = parseByteCount(entries.get('length'), expectedBytes, `${described} external length`, fail);
  if (length !== expectedBytes)
    return fail(`${described} has external length ${length} bytes, expected ${expectedBytes}`);
  return { tensor, location, offset, length };
}

/**
 * Why an external data location is unacceptable, or null when it is fine: it must name a file
 * inside the model's folder, so no absolute paths and no `..` escapes.
 */
export function externalLocationProblem(location: string): string | null {
  if (location.includes('\0')) return `external data location "${location}" contains a NUL byte`;
  if (isAbsolute(location) || posix.isAbsolute(location) || win32.isAbsolute(location)) {
    return `external data location "${location}" is an absolute path; only paths relative to the model's folder are allowed`;
  }
  const normalized = posix.normalize(location.replaceAll('\\', '/'));
  if (normalized === '..' || normalized.startsWith('../')) {
    return `external data location "${location}" escapes the model's folder`;
  }
  if (normalized === '.' || normalized.endsWith('/')) return `external data location "${location}" names no file`;
  return null;
}

function parseByteCount(
  text: string | undefined,
  fallback: number,
  what: string,
  fail: (reason: string) => never,
): number {
  if (text === undefined) return fallback;
  const value = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value)) return fail(`${what} is "${text}", not a byte count`);
  return value;
}
