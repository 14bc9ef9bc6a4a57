/**
 * Identities of weights and files. A delta records the fingerprint of the base weights it was
 * computed from; the gateway recomputes it at load and refuses a delta made for another base.
 *
 * Weight fingerprint encoding (sha256 over, all integers little-endian):
 *   "deltaserve.weights.v1\n", u32 tensor count, then per tensor in name order
 *   (JavaScript's default sort: UTF-16 code units):
 *   u32 name byte length, UTF-8 name, u32 rank, rank × u64 dims, u64 data byte length,
 *   fp32 little-endian data.
 * Every variable-length part is length-prefixed, so no two weight sets share an encoding.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { DS_ERR_FILE_READ, DS_ERR_ONNX_INVALID } from '../core/errors.js';
import { elementCount, float32ToLittleEndian, formatShape, HOST_IS_LITTLE_ENDIAN } from './tensor-layout.js';

const FINGERPRINT_MAGIC = 'deltaserve.weights.v1\n';

export function fingerprintWeights(
  weights: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>,
): string {
  const hash = createHash('sha256');
  hash.update(FINGERPRINT_MAGIC, 'utf8');
  hash.update(u32(weights.size));
  for (const name of [...weights.keys()].sort()) {
    const { shape, data } = weights.get(name)!;
    const count = elementCount(shape);
    if (count !== data.length) {
      throw new DS_ERR_ONNX_INVALID(
        'weight set',
        `weight "${name}" has ${data.length} values but its shape ${formatShape(shape)} holds ${String(count)}`,
      );
    }
    const nameBytes = Buffer.from(name, 'utf8');
    hash.update(u32(nameBytes.byteLength));
    hash.update(nameBytes);
    hash.update(u32(shape.length));
    for (const dim of shape) hash.update(u64(dim));
    hash.update(u64(data.byteLength));
    updateWithFloats(hash, data);
  }
  return hash.digest('hex');
}

/** sha256 (hex) of a file's bytes, streamed so multi-GB files need no memory. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (err) {
    throw new DS_ERR_FILE_READ(path, (err as Error).message);
  }
  return hash.digest('hex');
}

function updateWithFloats(hash: Hash, data: Float32Array): void {
  if (HOST_IS_LITTLE_ENDIAN) hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  else hash.update(float32ToLittleEndian(data));
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value);
  return bytes;
}

function u64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  return bytes;
}
