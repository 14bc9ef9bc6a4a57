/**
 * Where the state-dict → initializer map comes from: an explicit `--name-map` file, else the
 * cache beside the base (`<base>.name-map.json`, used only when it was made for this ONNX's
 * weight fingerprint and this base state dict's sha256), else matching by value (then cached).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { DS_ERR_NAME_MAP } from '../../core/errors.js';
import { readInputFile } from '../../core/read-input-file.js';
import { sha256File } from '../../onnx/fingerprint.js';
import type { WeightMap } from '../build-delta.js';
import { matchStateDict } from './match-names.js';
import { serializeNameMap, validateNameMap, type NameMap } from './name-map.js';
import { readStateDict, type StateDict } from './read-state-dict.js';

export interface ResolvedNameMap {
  readonly map: NameMap;
  readonly baseStateDict: StateDict | null;
  readonly source: 'name-map file' | 'cache' | 'matched';
  /** The cache file written or read, when one was. */
  readonly cachePath: string | null;
}

export function nameMapCachePath(basePath: string): string {
  return `${basePath}.name-map.json`;
}

export async function resolveNameMap(options: {
  readonly basePath: string;
  readonly baseWeights: WeightMap;
  readonly baseFingerprint: string;
  readonly baseStateDictPath: string | undefined;
  readonly nameMapPath: string | undefined;
  readonly log: (line: string) => void;
}): Promise<ResolvedNameMap> {
  const { basePath, baseFingerprint, baseStateDictPath, nameMapPath, log } = options;
  const baseStateDict = baseStateDictPath === undefined ? null : await readStateDict(baseStateDictPath);
  if (nameMapPath !== undefined) {
    const map = parseNameMap(await readInputFile(nameMapPath, 'name map'), nameMapPath);
    if (map.baseFingerprint !== baseFingerprint) {
      throw new DS_ERR_NAME_MAP(
        `${nameMapPath} was made for the base with weight fingerprint ${map.baseFingerprint.slice(0, 12)}…, but ${basePath} has ${baseFingerprint.slice(0, 12)}… (a name map of another base)`,
      );
    }
    return { map, baseStateDict, source: 'name-map file', cachePath: null };
  }
  if (baseStateDict === null || baseStateDictPath === undefined)
    throw new DS_ERR_NAME_MAP('--finetuned-weights needs --base-weights (the base state dict) or --name-map');

  const baseWeightsSha256 = await sha256File(baseStateDictPath);
  const cachePath = nameMapCachePath(basePath);
  const cached = await readCache(cachePath);
  if (cached && cached.baseFingerprint === baseFingerprint && cached.baseWeightsSha256 === baseWeightsSha256) {
    log(`name map: ${cachePath} (cached for this base and state dict)`);
    return { map: cached, baseStateDict, source: 'cache', cachePath };
  }
  if (cached) log(`name map: ${cachePath} was made for another base or state dict; matching again`);
  const map = matchStateDict({
    stateDict: baseStateDict,
    initializers: options.baseWeights,
    baseFingerprint,
    baseWeightsSha256,
    onnxLabel: basePath,
  });
  const matched = Object.keys(map.tensors).length;
  const unmatched = Object.keys(map.unmatched).length;
  log(
    `name map: ${matched} of ${baseStateDict.tensors.size} state-dict tensors matched to initializers by value` +
      (unmatched > 0 ? `, ${unmatched} unmatched (${Object.keys(map.unmatched).slice(0, 3).join(', ')}…)` : ''),
  );
  try {
    const temporary = `${cachePath}.tmp-${process.pid}`;
    await writeFile(temporary, serializeNameMap(map));
    await rename(temporary, cachePath);
    log(`name map: cached in ${cachePath}`);
  } catch (error) {
    log(`name map: not cached (${(error as Error).message})`);
  }
  return { map, baseStateDict, source: 'matched', cachePath };
}

function parseNameMap(bytes: Uint8Array, label: string): NameMap {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new DS_ERR_NAME_MAP(`${label}: not JSON (${(error as Error).message})`);
  }
  return validateNameMap(value, label);
}

/** A cache that is missing or unreadable is simply not used. */
async function readCache(path: string): Promise<NameMap | null> {
  try {
    return parseNameMap(await readFile(path), path);
  } catch {
    return null;
  }
}
