/** Shared helpers for the ONNX tests: temporary folders and running a model in onnxruntime-node. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-onnx-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Token ids `batch × seq`, deterministic and below `vocab`. */
export function tokenIds(batch: number, seq: number, vocab: number, salt = 0): ort.Tensor {
  const ids = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt((i * 7 + salt * 13 + 3) % vocab));
  return new ort.Tensor('int64', ids, [batch, seq]);
}

/** Runs the model (bytes or a file path) once on `input_ids` and returns its `logits`. */
export async function runLogits(
  model: Uint8Array | string,
  inputIds: ort.Tensor,
): Promise<{ dims: readonly number[]; data: Float32Array }> {
  const session =
    typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  try {
    const result = await session.run({ input_ids: inputIds });
    const logits = result['logits'];
    if (!logits) throw new Error('the model returned no logits');
    return { dims: logits.dims, data: logits.data as Float32Array };
  } finally {
    await session.release();
  }
}
