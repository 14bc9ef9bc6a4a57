/**
 * The registry state file: what the admin API changed at runtime, as an overlay on the tasks the
 * configuration declares (manifest + `registry.tasks`). Keeping an overlay, not a snapshot, lets
 * a new zoo release add tasks without being hidden by an old snapshot:
 *
 * - `registered`: task versions added through the admin API (they win over a declared version
 *   with the same key);
 * - `retired`: `name@version` keys removed through the admin API (declared ones included);
 * - `defaults`: name → version served when a request names no version.
 */
import { readRegularFile } from '../core/regular-file.js';
import { jsonBounded } from '../core/bounded-text.js';
import { DS_ERR_REGISTRY_STATE_INVALID } from '../core/errors.js';
import { FieldReader } from '../core/config-fields.js';
import { readTaskSpec } from '../core/config-tasks.js';
import type { TaskSpec } from '../core/config-types.js';
import { writeFileAtomic } from './atomic-write.js';

export const REGISTRY_STATE_FORMAT = 'deltaserve.registry-state';

export interface RegisteredTask extends TaskSpec {
  /** ISO time of the registration. */
  readonly registeredAt: string;
}

export interface RegistryState {
  readonly registered: readonly RegisteredTask[];
  readonly retired: readonly string[];
  readonly defaults: Readonly<Record<string, string>>;
}

export const EMPTY_STATE: RegistryState = { registered: [], retired: [], defaults: {} };

/**
 * Reads and validates the state file. A missing file is an empty state (first start) unless
 * `missingIsError` (a replica that has already seen the file must not read its disappearance as
 * "every registration retired"); a malformed one throws DS_ERR_REGISTRY_STATE_INVALID.
 */
export async function readRegistryState(
  path: string,
  options: { readonly missingIsError?: boolean } = {},
): Promise<RegistryState> {
  let text: string;
  try {
    text = await readRegularFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !options.missingIsError) return EMPTY_STATE;
    throw new DS_ERR_REGISTRY_STATE_INVALID(path, (error as Error).message);
  }
  const fail = (field: string, reason: string): never => {
    throw new DS_ERR_REGISTRY_STATE_INVALID(path, `${field}: ${reason}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return fail('(json)', (error as Error).message);
  }
  const r = new FieldReader(fail);
  const root = r.object(raw, '', ['format', 'formatVersion', 'updatedAt', 'registered', 'retired', 'defaults'], false);
  if (root.format !== REGISTRY_STATE_FORMAT)
    fail('format', `expected ${JSON.stringify(REGISTRY_STATE_FORMAT)}, got ${jsonBounded(root.format)}`);
  if (root.formatVersion !== 1) fail('formatVersion', `expected 1, got ${jsonBounded(root.formatVersion)}`);
  const registered = r.array(root.registered, 'registered').map((value, i) => {
    const path = `registered[${i}]`;
    const obj = r.object(
      value,
      path,
      ['name', 'version', 'description', 'labels', 'numClasses', 'uri', 'sha256', 'registeredAt'],
      false,
    );
    const { registeredAt, ...spec } = obj;
    return {
      ...readTaskSpec(r, spec, path, 'uri', (u) => u),
      registeredAt: r.string({ registeredAt }, 'registeredAt', path, ''),
    };
  });
  const retired = r.strings(root, 'retired', '', []);
  const defaults: Record<string, string> = {};
  for (const [name, version] of Object.entries(r.map(root.defaults, 'defaults')))
    defaults[name] = r.version(version, `defaults.${name}`);
  return { registered, retired, defaults };
}

export async function writeRegistryState(path: string, state: RegistryState): Promise<void> {
  const document = {
    format: REGISTRY_STATE_FORMAT,
    formatVersion: 1,
    updatedAt: new Date().toISOString(),
    registered: state.registered,
    retired: state.retired,
    defaults: state.defaults,
  };
  await writeFileAtomic(path, `${JSON.stringify(document, null, 2)}\n`);
}
