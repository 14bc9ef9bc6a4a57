/**
 * Loads the custom-op addon (native/ort-custom-op, build/Release/deltaserve_ort_custom_op.node)
 * and points it at the ONNX Runtime library onnxruntime-node already loaded: one runtime in the
 * process, one environment, and sessions of both kinds side by side. The only importer of the
 * addon; it types what the C++ trusts.
 *
 * `DELTASERVE_MIXED_PIPELINE=segments` forces the segment pipeline (CI runs the mixed tests both
 * ways); `=custom-op` makes a missing addon an error instead of a fallback.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { ElementType, TensorData } from '../../../tensors.js';

export interface AddonFeed {
  readonly name: string;
  readonly type: ElementType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export interface AddonTensor {
  readonly type: ElementType;
  readonly dims: number[];
  readonly data: TensorData;
}

export type AddonDeltaTensor =
  | {
      readonly name: string;
      readonly shape: readonly number[];
      /** Flat row-major positions (null: dense, `values` holds every element). */
      readonly indices: Uint32Array | null;
      readonly values: Float32Array;
    }
  | { readonly name: string; readonly shape: readonly number[]; readonly byColumn: ByColumnArrays };

/** A `[inDim, outDim]` sparse weight delta grouped by output column (see ByColumnTensorDelta). */
export interface GroupedArrays {
  readonly starts: Uint32Array;
  /** Rows (Uint16Array), or one-byte row gaps (Uint8Array) where every gap fits one; see ByColumnTensorDelta. */
  readonly rows: Uint16Array | Uint8Array;
  /** fp16 bit patterns (Uint16Array) when every value is exactly an fp16, else float32. */
  readonly values: Float32Array | Uint16Array;
}

/** Int4 codes packed by column, as PackedI4ByColumn describes; `scales` are the file's. */
export interface PackedI4Arrays {
  readonly starts: Uint32Array;
  readonly entries: Uint8Array;
  readonly scales: Uint16Array;
  readonly groupEnds: Uint32Array;
}

export type ByColumnArrays = GroupedArrays | PackedI4Arrays;

export interface AddonSessionOptions {
  /** ORT intra-op threads; 0 lets ORT choose. */
  readonly threads: number;
  readonly spinning: boolean;
  /** Where ORT writes the graph it optimised (diagnostics: which fusions survived). */
  readonly optimizedModelPath?: string;
  /** The int64 input holding each item's delta handle; checked against the registry before a run. */
  readonly itemDeltasInput?: string;
}

export interface AddonSession {
  /** Synchronous: call it from the engine worker thread, never the main thread. */
  run(feeds: readonly AddonFeed[], outputNames: readonly string[]): AddonTensor[];
  release(): void;
}

export interface OrtCustomOpAddon {
  /** ONNX Runtime's version (the library's) and the C API version the addon asked for (its headers'). */
  readonly ortVersion: string;
  readonly apiVersion: number;
  /** Keeps views of the arrays (no copy) until {@link releaseDelta}; returns the handle (≥ 1). */
  registerDelta(tensors: readonly AddonDeltaTensor[]): number;
  releaseDelta(handle: number): boolean;
  /**
   * Regroups a `[inDim, outDim]` weight's sparse delta (flat row-major indices, strictly increasing)
   * by output column into new arrays, natively; inDim ≤ 65536. Throws on an index out of range or order.
   */
  groupByColumn(indices: Uint32Array, values: Float32Array, inDim: number, outDim: number): GroupedArrays;
  /**
   * Packs a `[inDim, outDim]` weight's int4 codes that list its entries column by column (format v2
   * `order: "column"`; `positions` j × inDim + i, strictly increasing) with its scales, natively;
   * inDim ≤ 65536. Throws on a position out of range or order, or codes of the wrong length.
   */
  packI4ByColumn(
    positions: Uint32Array,
    codes: Uint8Array,
    scales: Uint16Array,
    group: number,
    inDim: number,
    outDim: number,
  ): PackedI4Arrays;
  createSession(model: Uint8Array, options: AddonSessionOptions): AddonSession;
}

interface RawAddon {
  init(libraryPath: string): string;
  apiVersion(): number;
  registerDelta(tensors: readonly AddonDeltaTensor[]): number;
  releaseDelta(handle: number): boolean;
  groupByColumn(indices: Uint32Array, values: Float32Array, inDim: number, outDim: number): GroupedArrays;
  packI4ByColumn(
    positions: Uint32Array,
    codes: Uint8Array,
    group: number,
    inDim: number,
    outDim: number,
  ): Omit<PackedI4Arrays, 'scales'>;
  Session: new (model: Uint8Array, options: AddonSessionOptions) => AddonSession;
}

export type MixedPipelineChoice = 'custom-op' | 'segments';

export interface LoadedOrtAddon {
  readonly addon: OrtCustomOpAddon | null;
  /** Why the segment pipeline runs instead (null when the addon loaded). */
  readonly reason: string | null;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..');
const ADDON_PATH = join(root, 'build', 'Release', 'deltaserve_ort_custom_op.node');

/** What `DELTASERVE_MIXED_PIPELINE` asks for. */
export function pipelineFromEnv(env: NodeJS.ProcessEnv = process.env): MixedPipelineChoice | undefined {
  const value = env.DELTASERVE_MIXED_PIPELINE;
  if (value === undefined || value === '') return undefined;
  if (value === 'custom-op' || value === 'segments') return value;
  throw new RangeError(`DELTASERVE_MIXED_PIPELINE must be 'custom-op' or 'segments', got '${value}'`);
}

/** onnxruntime-node's own libonnxruntime (the file its binding links), or null when this platform has none. */
export function onnxruntimeLibraryPath(): string | null {
  if (process.platform !== 'linux') return null;
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  const bin = join(pkg, 'bin');
  if (!existsSync(bin)) return null;
  for (const napi of readdirSync(bin).sort().reverse()) {
    const candidate = join(bin, napi, process.platform, process.arch, 'libonnxruntime.so.1');
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

let loaded: LoadedOrtAddon | null = null;

/** The addon, loaded once per thread; never throws unless `DELTASERVE_MIXED_PIPELINE=custom-op` demands it. */
export function loadOrtAddon(): LoadedOrtAddon {
  if (loaded) return loaded;
  const wanted = pipelineFromEnv();
  if (wanted === 'segments') {
    loaded = { addon: null, reason: 'DELTASERVE_MIXED_PIPELINE=segments forces the segment pipeline' };
    return loaded;
  }
  try {
    loaded = { addon: openAddon(), reason: null };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    if (wanted === 'custom-op')
      throw new Error(`DELTASERVE_MIXED_PIPELINE=custom-op but the custom-op addon did not load: ${message}`, {
        cause: error,
      });
    loaded = { addon: null, reason: message };
  }
  return loaded;
}

function openAddon(): OrtCustomOpAddon {
  if (!existsSync(ADDON_PATH))
    throw new Error(
      'the custom-op addon was not built (no ONNX Runtime headers at install?); see `node scripts/build-native.mjs`',
    );
  const library = onnxruntimeLibraryPath();
  if (library === null)
    throw new Error(`onnxruntime-node ships no libonnxruntime.so.1 for ${process.platform}-${process.arch}`);
  // The binding links the library: importing onnxruntime-node mapped it (the addon refuses a second copy).
  void ort.env;
  const require = createRequire(import.meta.url);
  const raw = require(ADDON_PATH) as RawAddon;
  const ortVersion = raw.init(library);
  return {
    ortVersion,
    apiVersion: raw.apiVersion(),
    registerDelta: (tensors) => raw.registerDelta(tensors),
    releaseDelta: (handle) => raw.releaseDelta(handle),
    groupByColumn: (indices, values, inDim, outDim) => raw.groupByColumn(indices, values, inDim, outDim),
    packI4ByColumn: (positions, codes, scales, group, inDim, outDim) => ({
      ...raw.packI4ByColumn(positions, codes, group, inDim, outDim),
      // A copy: decoded without `copy: true`, scales are a view of the file, which the cache must not keep alive.
      scales: scales.slice(),
    }),
    createSession: (model, options) => new raw.Session(model, options),
  };
}
