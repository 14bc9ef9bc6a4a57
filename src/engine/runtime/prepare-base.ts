/**
 * Start-up: from a plain ONNX file to a running session plus what activation needs.
 * Reads the model (external data included), fingerprints its weights (deltas name the base they
 * were made for), picks the patchable weights, rewrites the graph for the activation mode and
 * creates the session. The JS copies of weights are kept only in `patch` mode, where they ARE
 * the weights the session reads.
 */
import type * as ort from 'onnxruntime-node';
import { loadOnnxModel, encodeOnnxModel } from '../../onnx/model-file.js';
import { readFloatWeights } from '../../onnx/weights.js';
import { fingerprintWeights } from '../../onnx/fingerprint.js';
import { describeModelIO, type ModelIO } from '../../onnx/io-signature.js';
import { globToRegExp } from '../../core/glob.js';
import type { ActivationMode, Activator } from './activator.js';
import { addSparseDeltaInputs, exposeWeightsAsInputs } from './base-rewrite.js';
import { PatchActivator } from './patch-activator.js';
import { GraphActivator } from './graph-activator.js';
import { startOrtSession, type ExecutionProvider, type OrtSessionOptions } from './ort-session.js';

export interface BaseOptions {
  readonly modelPath: string;
  readonly mode: ActivationMode;
  /** Globs over weight names that deltas may touch; empty means every float weight. */
  readonly patchable: readonly string[];
  readonly session: OrtSessionOptions;
}

export interface PreparedBase {
  readonly session: ort.InferenceSession;
  readonly activator: PatchActivator | GraphActivator;
  /** Fingerprint of the ORIGINAL base weights, as recorded in deltas. */
  readonly fingerprint: string;
  readonly io: ModelIO;
  /** Name → shape of the weights deltas may touch; what delta files are validated against. */
  readonly patchableShapes: ReadonlyMap<string, readonly number[]>;
  /** Weight buffers fed as inputs (patch mode only). */
  readonly weightFeeds: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
  /** Bytes held by the base in this process outside ORT (patch mode weight buffers). */
  readonly residentWeightBytes: number;
  /** The provider the session runs on, and why the configured one did not start (null = it did). */
  readonly executionProvider: ExecutionProvider;
  readonly fallbackReason: string | null;
}

/** The base model read from disk, with the weights deltas may touch. */
export interface LoadedBase {
  readonly model: Awaited<ReturnType<typeof loadOnnxModel>>;
  readonly fingerprint: string;
  readonly io: ModelIO;
  /** Every float weight of the model. */
  readonly weights: ReadonlyMap<string, { shape: number[]; data: Float32Array }>;
  readonly patchable: ReadonlyMap<string, { shape: number[]; data: Float32Array }>;
  readonly patchableShapes: ReadonlyMap<string, readonly number[]>;
}

export async function loadBase(options: Pick<BaseOptions, 'modelPath' | 'patchable'>): Promise<LoadedBase> {
  const model = await loadOnnxModel(options.modelPath);
  const weights = readFloatWeights(model);
  const fingerprint = fingerprintWeights(weights);
  const io = describeModelIO(model);
  const patterns = options.patchable.map(globToRegExp);
  const patchable = new Map(
    [...weights].filter(([name]) => patterns.length === 0 || patterns.some((re) => re.test(name))),
  );
  const patchableShapes = new Map([...patchable].map(([name, w]) => [name, w.shape as readonly number[]]));
  return { model, fingerprint, io, weights, patchable, patchableShapes };
}

export async function prepareBase(options: BaseOptions): Promise<PreparedBase> {
  if (options.mode === 'mixed')
    throw new Error('prepareBase serves the per-task modes; mixed mode starts with prepareMixedBase');
  const { model, fingerprint, io, patchable, patchableShapes } = await loadBase(options);

  if (options.mode === 'patch') {
    const { session, ...provider } = await startOrtSession(
      encodeOnnxModel(exposeWeightsAsInputs(model, patchableShapes)),
      options.session,
    );
    const residentWeightBytes = [...patchable.values()].reduce((n, w) => n + w.data.byteLength, 0);
    return {
      session,
      ...provider,
      activator: new PatchActivator(patchable),
      fingerprint,
      io,
      patchableShapes,
      weightFeeds: patchable,
      residentWeightBytes,
    };
  }
  const { session, ...provider } = await startOrtSession(
    encodeOnnxModel(addSparseDeltaInputs(model, patchableShapes)),
    options.session,
  );
  return {
    session,
    ...provider,
    activator: new GraphActivator(patchableShapes),
    fingerprint,
    io,
    patchableShapes,
    weightFeeds: new Map(),
    residentWeightBytes: 0,
  };
}

export type { Activator };
