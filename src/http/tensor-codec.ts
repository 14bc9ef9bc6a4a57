/**
 * Open Inference Protocol (KServe V2) JSON tensors ↔ engine tensors.
 *
 * Requests are checked against the model's signature before anything reaches the engine, and
 * every problem is a 400 (DS_ERR_INFER_BAD_INPUT) naming the input: unknown or missing inputs,
 * datatype, rank, fixed dimensions, element count, element values. `data` may be flat
 * (row-major) or nested; nesting is flattened without checking that it mirrors `shape` (the
 * protocol allows either), but the element count must equal the product of `shape`.
 *
 * Nothing is allocated for a tensor before its shape, its rows and its element count have been
 * checked against the data actually sent: an 82-byte body declaring shape [85598, 1, 28, 28]
 * with `data: []` used to allocate 256 MB before the count was compared.
 */
import { DS_ERR_INFER_BAD_INPUT, DS_ERR_INFER_OUTPUT_NOT_FINITE, DS_ERR_TOO_MANY_ROWS } from '../core/errors.js';
import {
  allocate,
  elementTypeOf,
  type ElementType,
  type EngineTensor,
  type NamedTensors,
  type TensorData,
} from '../engine/tensors.js';
import type { ModelIO, TensorSignature } from '../onnx/io-signature.js';
import { describeValue } from './describe-value.js';

export interface RequestTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: string;
  readonly data: readonly unknown[];
}

export interface ResponseTensor {
  readonly name: string;
  readonly shape: number[];
  readonly datatype: string;
  readonly data: (number | boolean)[];
}

const KSERVE_OF: Readonly<Record<ElementType, string>> = {
  float32: 'FP32',
  int64: 'INT64',
  int32: 'INT32',
  uint8: 'UINT8',
  bool: 'BOOL',
};

/** Largest tensor a JSON request may carry; far above what a body limit lets through anyway. */
const MAX_ELEMENTS = 64 * 1024 * 1024;
/** Deepest nesting of `data` (a tensor of rank 32 at most). */
const MAX_DATA_DEPTH = 32;

export interface DecodeLimits {
  /** Largest first dimension (rows) of any input; DS_ERR_TOO_MANY_ROWS (413) above. */
  readonly maxRows?: number;
}

export function decodeInputs(inputs: readonly RequestTensor[], io: ModelIO, limits: DecodeLimits = {}): NamedTensors {
  const bad = (message: string): never => {
    throw new DS_ERR_INFER_BAD_INPUT(message);
  };
  const expected = new Map(io.inputs.map((signature) => [signature.name, signature]));
  const tensors: Record<string, EngineTensor> = {};
  for (const input of inputs) {
    const signature = expected.get(input.name);
    if (!signature)
      bad(`input "${input.name}" is not an input of the model (inputs: ${io.inputs.map((s) => s.name).join(', ')})`);
    if (Object.hasOwn(tensors, input.name)) bad(`input "${input.name}" is given twice`);
    tensors[input.name] = decodeTensor(input, signature!, limits, bad);
  }
  for (const signature of io.inputs) {
    if (!Object.hasOwn(tensors, signature.name)) bad(`input "${signature.name}" is missing`);
  }
  return tensors;
}

function decodeTensor(
  input: RequestTensor,
  signature: TensorSignature,
  limits: DecodeLimits,
  bad: (message: string) => never,
): EngineTensor {
  const name = `input "${input.name}"`;
  if (input.datatype !== signature.datatype)
    bad(`${name} has datatype ${input.datatype} but the model takes ${signature.datatype}`);
  const type = elementTypeOf(signature.datatype);
  if (type === null) bad(`${name} has datatype ${signature.datatype}, which this server cannot carry`);
  checkShape(input.shape, signature, name, bad);
  const rows = input.shape[0];
  if (limits.maxRows !== undefined && rows !== undefined && rows > limits.maxRows)
    throw new DS_ERR_TOO_MANY_ROWS(`"${input.name}"`, rows, limits.maxRows);
  const count = input.shape.reduce((a, b) => a * b, 1);
  if (count > MAX_ELEMENTS) bad(`${name} has ${count} elements, more than ${MAX_ELEMENTS}`);
  const given = countElements(input.data, name, bad);
  if (given !== count)
    bad(`${name} has ${given} elements in data but shape [${input.shape.join(', ')}] needs ${count}`);
  const data = allocate(type, count);
  fill(data, type, input.data, name, bad);
  return { type: type, dims: [...input.shape], data };
}

/** How many values the (possibly nested) data holds, without looking at them. */
function countElements(data: readonly unknown[], name: string, bad: (message: string) => never): number {
  let n = 0;
  const stack: { list: readonly unknown[]; index: number }[] = [{ list: data, index: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.index >= top.list.length) {
      stack.pop();
      continue;
    }
    const value = top.list[top.index++];
    if (Array.isArray(value)) {
      if (stack.length > MAX_DATA_DEPTH) bad(`${name} data is nested more than ${MAX_DATA_DEPTH} levels deep`);
      stack.push({ list: value, index: 0 });
      continue;
    }
    n++;
  }
  return n;
}

function checkShape(
  shape: readonly number[],
  signature: TensorSignature,
  name: string,
  bad: (message: string) => never,
): void {
  shape.forEach((dim, i) => {
    if (!Number.isSafeInteger(dim) || dim < 0)
      bad(`${name} has shape [${shape.join(', ')}]: dimension ${i} must be a non-negative integer`);
  });
  if (signature.shape === null) return;
  const want = `[${signature.shape.map((d) => (d < 0 ? '-1' : String(d))).join(', ')}]`;
  if (shape.length !== signature.shape.length)
    bad(
      `${name} has shape [${shape.join(', ')}] (rank ${shape.length}) but the model takes rank ${signature.shape.length}: ${want}`,
    );
  signature.shape.forEach((dim, i) => {
    if (dim >= 0 && shape[i] !== dim)
      bad(`${name} has shape [${shape.join(', ')}] but dimension ${i} must be ${dim} (model shape ${want}, -1 = any)`);
  });
}

/** Writes the (possibly nested) values into `target`, checking each (its size was checked by countElements). */
function fill(
  target: TensorData,
  type: ElementType,
  data: readonly unknown[],
  name: string,
  bad: (message: string) => never,
): void {
  let n = 0;
  const capacity = target.length;
  const stack: { list: readonly unknown[]; index: number }[] = [{ list: data, index: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.index >= top.list.length) {
      stack.pop();
      continue;
    }
    const value = top.list[top.index++];
    if (Array.isArray(value)) {
      stack.push({ list: value, index: 0 });
      continue;
    }
    if (n < capacity) write(target, type, n, value, name, bad);
    n++;
  }
}

function write(
  target: TensorData,
  type: ElementType,
  i: number,
  value: unknown,
  name: string,
  bad: (message: string) => never,
): void {
  const at = `${name} element ${i}`;
  switch (type) {
    case 'float32':
      // JSON numbers beyond ±3.4e38 (or 1e400, which JSON.parse reads as Infinity) would become
      // ±Infinity in float32 and answer 200 with nulls: refuse them here.
      if (typeof value !== 'number' || !Number.isFinite(Math.fround(value)))
        bad(`${at} is ${describeValue(value)}, expected a finite number within the FP32 range (±3.4028235e38)`);
      (target as Float32Array)[i] = value;
      return;
    case 'int64':
      if (typeof value !== 'number' || !Number.isSafeInteger(value))
        bad(`${at} is ${describeValue(value)}, expected an integer`);
      (target as BigInt64Array)[i] = BigInt(value);
      return;
    case 'int32':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < -2147483648 || value > 2147483647)
        bad(`${at} is ${describeValue(value)}, expected a 32-bit integer`);
      (target as Int32Array)[i] = value;
      return;
    case 'uint8':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255)
        bad(`${at} is ${describeValue(value)}, expected an integer in [0, 255]`);
      (target as Uint8Array)[i] = value;
      return;
    case 'bool':
      if (typeof value !== 'boolean') bad(`${at} is ${describeValue(value)}, expected true or false`);
      (target as Uint8Array)[i] = value ? 1 : 0;
      return;
  }
}

/** Engine outputs → response tensors (flat data), optionally only the requested names. */
export function encodeOutputs(outputs: NamedTensors, io: ModelIO, requested?: readonly string[]): ResponseTensor[] {
  const names = requested ?? io.outputs.map((o) => o.name).filter((n) => Object.hasOwn(outputs, n));
  return names.map((name) => {
    const tensor = outputs[name];
    if (!tensor)
      throw new DS_ERR_INFER_BAD_INPUT(
        `output "${name}" is not an output of the model (outputs: ${io.outputs.map((o) => o.name).join(', ')})`,
      );
    if (tensor.type === 'float32') {
      const at = (tensor.data as Float32Array).findIndex((v) => !Number.isFinite(v));
      // JSON has no NaN or Infinity: they would be sent as null. Say so instead.
      if (at >= 0) throw new DS_ERR_INFER_OUTPUT_NOT_FINITE(name, at, String(tensor.data[at]));
    }
    return { name, shape: [...tensor.dims], datatype: KSERVE_OF[tensor.type], data: toJsonArray(tensor) };
  });
}

/**
 * Checks requested output names before running anything: each must be an output of the model,
 * and named once (200,000 copies of one name turned a 3.6 MB request into a 50 MB answer).
 */
export function checkRequestedOutputs(requested: readonly string[], io: ModelIO): void {
  const known = new Set(io.outputs.map((o) => o.name));
  const seen = new Set<string>();
  for (const name of requested) {
    if (!known.has(name))
      throw new DS_ERR_INFER_BAD_INPUT(
        `output "${describeName(name)}" is not an output of the model (outputs: ${[...known].join(', ')})`,
      );
    if (seen.has(name)) throw new DS_ERR_INFER_BAD_INPUT(`output "${name}" is requested twice`);
    seen.add(name);
  }
}

/** A name a client sent, cut short for a message. */
function describeName(name: string): string {
  return name.length > 100 ? `${name.slice(0, 100)}…` : name;
}

function toJsonArray(tensor: EngineTensor): (number | boolean)[] {
  const { data, type } = tensor;
  if (type === 'bool') return Array.from(data as Uint8Array, (v) => v !== 0);
  if (type === 'int64') return Array.from(data as BigInt64Array, (v) => Number(v));
  return Array.from(data as Float32Array | Int32Array | Uint8Array);
}
