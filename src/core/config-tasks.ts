/** Reading one task version (config `registry.tasks`, a zoo manifest's `tasks`) with its checks. */
import type { TaskSpec } from './config-types.js';
import { join, type FieldReader } from './config-fields.js';

export const RESERVED_BASE_NAME = 'base';

/** `name@version`: how a task version is keyed everywhere (registry, delta cache, activation). */
export function taskKey(name: string, version: string): string {
  return `${name}@${version}`;
}

const TASK_KEYS = ['name', 'version', 'description', 'labels', 'numClasses'] as const;

/**
 * @param uriKey the field holding the delta location (`uri` in config, `delta` in manifests)
 * @param toUri turns the written location into the URI the delta source reads
 * @param ignoreUnknown accept extra fields (manifests carry provenance: method, accuracy...)
 */
export function readTaskSpec(
  reader: FieldReader,
  value: unknown,
  path: string,
  uriKey: string,
  toUri: (written: string) => string,
  ignoreUnknown = false,
): TaskSpec {
  const obj = reader.object(value, path, [...TASK_KEYS, uriKey, 'sha256'], false, ignoreUnknown);
  const name = reader.name(obj.name, join(path, 'name'));
  if (name === RESERVED_BASE_NAME) reader.fail(join(path, 'name'), '"base" is reserved for the base model');
  if (obj.version === undefined || obj.version === null) reader.fail(join(path, 'version'), 'is required');
  const version = reader.version(obj.version, join(path, 'version'));
  const written = reader.string(obj, uriKey, path);
  if (obj.sha256 === undefined || obj.sha256 === null) reader.fail(join(path, 'sha256'), 'is required');
  const sha256 = reader.sha256(obj.sha256, join(path, 'sha256'));
  const labels = obj.labels === undefined || obj.labels === null ? null : reader.strings(obj, 'labels', path, []);
  if (labels !== null && labels.length === 0) reader.fail(join(path, 'labels'), 'expected at least one label');
  const numClasses = reader.optionalInteger(obj, 'numClasses', path, 1, 1_000_000);
  if (labels !== null && numClasses !== null && labels.length !== numClasses) {
    reader.fail(join(path, 'labels'), `has ${labels.length} labels but numClasses is ${numClasses}`);
  }
  return {
    name,
    version,
    uri: toUri(written),
    sha256,
    description: descriptionText(obj.description),
    labels,
    numClasses: numClasses ?? labels?.length ?? null,
  };
}

/** A task's description as text: absent is empty, a non-string (a YAML number) is written as JSON. */
function descriptionText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
