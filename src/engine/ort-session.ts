/**
 * The one place that talks to onnxruntime-node: creating a session for the prepared base and
 * converting between our tensors and `ort.Tensor`. Runs only inside the engine's worker
 * thread, because session creation and `run()` block the thread that calls them (docs/onnxruntime-facts.md §1).
 */
import * as ort from 'onnxruntime-node';
import type { ElementType, EngineTensor, NamedTensors, TensorData } from './tensors.js';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface OrtSessionOptions {
  readonly executionProvider: ExecutionProvider;
  /** CUDA device ordinal; the only CUDA option the node binding takes (docs/onnxruntime-facts.md §8). */
  readonly deviceId?: number;
  /** Threads ORT uses inside one operator; 0 lets ORT choose. */
  readonly intraOpThreads: number;
}

export async function createOrtSession(model: Uint8Array, options: OrtSessionOptions): Promise<ort.InferenceSession> {
  const executionProviders: ort.InferenceSession.ExecutionProviderConfig[] =
    options.executionProvider === 'cuda' ? [{ name: 'cuda', deviceId: options.deviceId ?? 0 }, 'cpu'] : ['cpu'];
  return ort.InferenceSession.create(model, {
    executionProviders,
    intraOpNumThreads: options.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
}

export function toOrtTensor(tensor: EngineTensor): ort.Tensor {
  return new ort.Tensor(tensor.type, tensor.data, tensor.dims);
}

export function fromOrtTensor(tensor: ort.Tensor): EngineTensor {
  const type = tensor.type as ElementType;
  return { type, dims: [...tensor.dims], data: tensor.data as TensorData };
}

export async function runSession(
  session: ort.InferenceSession,
  inputs: NamedTensors,
  extraFeeds: Readonly<Record<string, ort.Tensor>>,
): Promise<Record<string, EngineTensor>> {
  const feeds: Record<string, ort.Tensor> = { ...extraFeeds };
  for (const [name, tensor] of Object.entries(inputs)) feeds[name] = toOrtTensor(tensor);
  const results = await session.run(feeds);
  const outputs: Record<string, EngineTensor> = {};
  for (const [name, tensor] of Object.entries(results)) outputs[name] = fromOrtTensor(tensor);
  return outputs;
}
