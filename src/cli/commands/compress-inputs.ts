/**
 * Where `compress` gets its weights: the base ONNX, and the fine-tune either as an ONNX file of
 * the same graph (`--finetuned`) or as a PyTorch-style state dict (`--finetuned-weights`, mapped
 * onto the base's initializers through the name map). Either way the caller gets the same thing:
 * both weight sets keyed by initializer name, and a fine-tuned ONNX file to run for calibration
 * (for a state dict, the base graph with the fine-tuned values, written to a temporary folder).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DS_ERR_CLI_USAGE } from '../../core/errors.js';
import type { WeightMap } from '../../compress/build-delta.js';
import { finetuneWeights } from '../../compress/state-dict/finetune-weights.js';
import { conversionNote, readStateDict } from '../../compress/state-dict/read-state-dict.js';
import { resolveNameMap } from '../../compress/state-dict/resolve-name-map.js';
import { loadOnnxModel, saveOnnxModel } from '../../onnx/model-file.js';
import { fingerprintWeights, sha256File } from '../../onnx/fingerprint.js';
import { assertSameGraph, readFloatWeights, withFloatWeights } from '../../onnx/weights.js';
import { listOption, progress } from '../args.js';

export const COMPRESS_INPUT_OPTIONS = {
  base: { type: 'string' },
  finetuned: { type: 'string' },
  'finetuned-weights': { type: 'string' },
  'base-weights': { type: 'string' },
  'name-map': { type: 'string' },
  ignore: { type: 'string', multiple: true },
} as const;

export const COMPRESS_INPUT_USAGE = `       (--finetuned FT.onnx | --finetuned-weights FT.safetensors (--base-weights BASE.safetensors | --name-map MAP.json)
         [--ignore GLOB]...)`;

export interface CompressInputs {
  readonly basePath: string;
  readonly baseWeights: WeightMap;
  readonly tunedWeights: WeightMap;
  readonly baseFingerprint: string;
  readonly sourceBaseSha256: string;
  /** sha256 of the fine-tune's file: the ONNX model or the state dict. */
  readonly sourceFinetunedSha256: string;
  /** A fine-tuned ONNX model to run (calibration targets, input norms). */
  finetunedModelPath(): Promise<string>;
  /** Removes what finetunedModelPath() wrote. */
  cleanup(): Promise<void>;
}

type InputValues = { [K in keyof typeof COMPRESS_INPUT_OPTIONS]?: unknown };

/** Usage mistakes in the input flags, before anything is read. */
export function checkCompressInputFlags(values: InputValues, usage: string): void {
  const basePath = values.base;
  if (typeof basePath !== 'string' || basePath === '') throw new DS_ERR_CLI_USAGE(`missing --base\n${usage}`);
  const onnxPath = values.finetuned as string | undefined;
  const statePath = values['finetuned-weights'] as string | undefined;
  if (onnxPath === undefined && statePath === undefined)
    throw new DS_ERR_CLI_USAGE(`missing --finetuned FT.onnx (or --finetuned-weights FT.safetensors)\n${usage}`);
  if (onnxPath !== undefined && statePath !== undefined)
    throw new DS_ERR_CLI_USAGE(`give exactly one of --finetuned (ONNX) and --finetuned-weights (state dict)\n${usage}`);
  const stateOnly = ['base-weights', 'name-map', 'ignore'] as const;
  if (onnxPath !== undefined && stateOnly.some((flag) => values[flag] !== undefined))
    throw new DS_ERR_CLI_USAGE('--base-weights, --name-map and --ignore go with --finetuned-weights');
  if (statePath !== undefined && values['base-weights'] === undefined && values['name-map'] === undefined)
    throw new DS_ERR_CLI_USAGE(
      '--finetuned-weights needs --base-weights BASE.safetensors (the base state dict, to find the names by value) or --name-map',
    );
}

export async function readCompressInputs(values: InputValues, usage: string): Promise<CompressInputs> {
  checkCompressInputFlags(values, usage);
  const basePath = values.base as string;
  const onnxPath = values.finetuned as string | undefined;
  const statePath = values['finetuned-weights'] as string | undefined;

  if (onnxPath !== undefined) {
    progress(`reading ${basePath} and ${onnxPath}`);
    const [baseModel, tunedModel] = await Promise.all([loadOnnxModel(basePath), loadOnnxModel(onnxPath)]);
    assertSameGraph(baseModel, tunedModel);
    const baseWeights = readFloatWeights(baseModel);
    const [sourceBaseSha256, sourceFinetunedSha256] = await Promise.all([sha256File(basePath), sha256File(onnxPath)]);
    return {
      basePath,
      baseWeights,
      tunedWeights: readFloatWeights(tunedModel),
      baseFingerprint: fingerprintWeights(baseWeights),
      sourceBaseSha256,
      sourceFinetunedSha256,
      finetunedModelPath: async () => onnxPath,
      cleanup: async () => {},
    };
  }

  progress(`reading ${basePath} and the state dict ${statePath}`);
  const baseModel = await loadOnnxModel(basePath);
  const baseWeights = readFloatWeights(baseModel);
  const baseFingerprint = fingerprintWeights(baseWeights);
  const { map, baseStateDict } = await resolveNameMap({
    basePath,
    baseWeights,
    baseFingerprint,
    baseStateDictPath: values['base-weights'] as string | undefined,
    nameMapPath: values['name-map'] as string | undefined,
    log: progress,
  });
  const finetuned = await readStateDict(statePath!);
  for (const dict of [baseStateDict, finetuned]) {
    const note = dict && conversionNote(dict);
    if (note) progress(note);
  }
  if (finetuned.nonFloat.length > 0)
    progress(
      `${statePath}: ${finetuned.nonFloat.length} non-float tensor(s) skipped (${finetuned.nonFloat.slice(0, 3).join(', ')})`,
    );
  const tuned = finetuneWeights({
    base: baseWeights,
    map,
    finetuned,
    baseStateDict,
    ignore: listOption(values.ignore),
  });
  progress(
    `${statePath}: ${tuned.mapped} initializer(s) from the state dict` +
      (tuned.ignored.length ? `, ${tuned.ignored.length} tensor(s) ignored` : '') +
      (tuned.unchanged.length ? `, ${tuned.unchanged.length} unmapped but unchanged` : '') +
      (tuned.absent.length ? `, ${tuned.absent.length} mapped tensor(s) absent (base values kept)` : ''),
  );
  const [sourceBaseSha256, sourceFinetunedSha256] = await Promise.all([sha256File(basePath), sha256File(statePath!)]);
  let dir: string | null = null;
  let written: Promise<string> | null = null;
  const writeFinetuned = async () => {
    dir = await mkdtemp(join(tmpdir(), 'deltaserve-finetuned-'));
    const path = join(dir, 'finetuned.onnx');
    const replacements = new Map([...tuned.weights].map(([name, w]) => [name, w.data]));
    await saveOnnxModel(withFloatWeights(baseModel, replacements), path);
    return path;
  };
  return {
    basePath,
    baseWeights,
    tunedWeights: tuned.weights,
    baseFingerprint,
    sourceBaseSha256,
    sourceFinetunedSha256,
    finetunedModelPath: () => (written ??= writeFinetuned()),
    cleanup: async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
