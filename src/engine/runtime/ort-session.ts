/**
 * Creating onnxruntime-node sessions (the provider choice, its fallback and the one-line
 * diagnosis of a provider that cannot start) and converting between our tensors and
 * `ort.Tensor`. The other callers of onnxruntime-node build `ort.Tensor` feeds directly:
 * engine-core.ts and mixed/mixed-pipeline.ts (weights and delta feeds, no copy), and
 * prepare-base.ts holds the session type. Runs only inside the engine's worker
 * thread, because session creation and `run()` block the thread that calls them (docs/onnxruntime-facts.md §1).
 */
import * as ort from 'onnxruntime-node';
import { DS_ERR_PROVIDER_UNAVAILABLE, isError } from '../../core/errors.js';
import { providerStartFailure } from './provider-diagnosis.js';
import type { ElementType, EngineTensor, NamedTensors, TensorData } from '../tensors.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';

export interface OrtSessionOptions {
  readonly executionProvider: ExecutionProvider;
  /** Tried when `executionProvider` cannot start (no driver, no device); absent = that fails start-up. */
  readonly fallbackExecutionProvider?: ExecutionProvider;
  /** CUDA device ordinal; the only CUDA option the node binding takes (docs/onnxruntime-facts.md §8). */
  readonly deviceId?: number;
  /** Threads ORT uses inside one operator; 0 lets ORT choose. */
  readonly intraOpThreads: number;
  /** Whether idle intra-op threads spin waiting for work (ORT's default); off where many sessions run in turn. */
  readonly allowSpinning?: boolean;
  /** Whether the session keeps its own memory arena (ORT's default); off where many sessions would each grow one to the batch's peak. */
  readonly memoryArena?: boolean;
}

export interface StartedSession {
  readonly session: ort.InferenceSession;
  /** The provider the session runs on: the configured one, or the fallback. */
  readonly executionProvider: ExecutionProvider;
  /** Why the configured provider did not start, when the fallback runs instead; else null. */
  readonly fallbackReason: string | null;
}

/** A session on the configured provider, else on the fallback when the configuration names one. */
export async function startOrtSession(model: Uint8Array, options: OrtSessionOptions): Promise<StartedSession> {
  try {
    return {
      session: await createOrtSession(model, options),
      executionProvider: options.executionProvider,
      fallbackReason: null,
    };
  } catch (error) {
    const fallback = options.fallbackExecutionProvider;
    if (fallback === undefined || !isError(error, DS_ERR_PROVIDER_UNAVAILABLE)) throw error;
    const session = await createOrtSession(model, { ...options, executionProvider: fallback });
    return { session, executionProvider: fallback, fallbackReason: error.message };
  }
}

/** A session on exactly `options.executionProvider`; a provider that cannot start throws one line naming what is missing. */
export async function createOrtSession(model: Uint8Array, options: OrtSessionOptions): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(model, {
      executionProviders: providerList(options),
      intraOpNumThreads: options.intraOpThreads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // ORT warns on every GPU session that shape ops run on the CPU, which is by design.
      logSeverityLevel: options.executionProvider === 'cpu' ? 2 : 3,
      ...(options.memoryArena === false && { enableCpuMemArena: false }),
      ...(options.allowSpinning === false && {
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      }),
    });
  } catch (error) {
    const missing = providerStartFailure(options.executionProvider, error);
    if (missing === null) throw error;
    throw new DS_ERR_PROVIDER_UNAVAILABLE(options.executionProvider, missing);
  }
}

/** Nodes a GPU provider does not implement run on the CPU provider listed after it. */
function providerList(options: OrtSessionOptions): ort.InferenceSession.ExecutionProviderConfig[] {
  switch (options.executionProvider) {
    case 'cpu':
      return ['cpu'];
    case 'cuda':
      return [{ name: 'cuda', deviceId: options.deviceId ?? 0 }, 'cpu'];
    case 'webgpu':
      return [{ name: 'webgpu' }, 'cpu'];
  }
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
