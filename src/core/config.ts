/**
 * Loading the gateway configuration: which file (`--config`, else `DELTASERVE_CONFIG`, else the
 * demo `config/default.yaml` shipped with the package), YAML parsing, environment overrides
 * (`config-env.ts`), then validation (`config-validate.ts`). Everything that can be wrong with a
 * configuration surfaces here, as one DS_ERR_CONFIG_INVALID naming the field and the reason.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { DS_ERR_CONFIG_INVALID, DS_ERR_FILE_READ } from './errors.js';
import { applyEnvOverrides } from './config-env.js';
import { readRegularFile } from './regular-file.js';
import { validateConfig } from './config-validate.js';
import type { GatewayConfig } from './config-types.js';

export type * from './config-types.js';
export { ENV_OVERRIDES } from './config-env.js';

/** `config/default.yaml` of this package (same relative place from `src/core` and `dist/core`). */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

export interface LoadConfigOptions {
  /** `--config` from the command line; wins over `DELTASERVE_CONFIG`. */
  readonly path?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function configPathFrom(options: LoadConfigOptions): string {
  const env = options.env ?? process.env;
  const chosen = options.path ?? (env.DELTASERVE_CONFIG?.trim() || undefined);
  return chosen === undefined ? DEFAULT_CONFIG_PATH : resolve(chosen);
}

export async function loadConfig(options: LoadConfigOptions = {}): Promise<GatewayConfig> {
  const path = configPathFrom(options);
  let text: string;
  try {
    text = await readRegularFile(path, 'utf8');
  } catch (error) {
    throw new DS_ERR_FILE_READ(`configuration file ${path}`, (error as Error).message);
  }
  return parseConfig(text, { source: path, baseDir: dirname(path), env: options.env ?? process.env });
}

export interface ParseConfigOptions {
  readonly source: string;
  readonly baseDir: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** YAML text → validated configuration (what `loadConfig` does after reading the file). */
export function parseConfig(text: string, options: ParseConfigOptions): GatewayConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    const reason = error instanceof YAMLParseError ? error.message.split('\n')[0]! : String(error);
    throw new DS_ERR_CONFIG_INVALID(options.source, '(yaml)', reason);
  }
  const fromEnv = new Map<string, string>();
  const fail = (field: string, reason: string): never => {
    const variable = [...fromEnv].find(
      ([f]) => field === f || field.startsWith(`${f}[`) || field.startsWith(`${f}.`),
    )?.[1];
    throw new DS_ERR_CONFIG_INVALID(variable ? `${options.source} + ${variable}` : options.source, field, reason);
  };
  const overridden = applyEnvOverrides(raw ?? {}, options.env ?? {}, fail, fromEnv);
  return validateConfig(overridden.raw, { baseDir: options.baseDir, source: options.source, fail });
}
