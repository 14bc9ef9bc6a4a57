/**
 * The model zoo manifest (`models/zoo.yaml`): the base model, its fingerprint and labels, and the
 * task versions built from it. Paths are relative to the manifest; delta paths become absolute
 * `file://` URLs so the delta source finds them whatever its root (the root still confines them).
 *
 * ```yaml
 * base: { model: base/model.onnx, fingerprint: <hex>, labels: [..] }
 * tasks:
 *   - { name: rotated, version: "1", description: "...", delta: tasks/rotated/delta.safetensors,
 *       sha256: <hex>, labels: [...], numClasses: 10 }
 * ```
 */
import { readRegularFile } from '../core/regular-file.js';
import { quoteBounded } from '../core/bounded-text.js';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { DS_ERR_FILE_READ, DS_ERR_MANIFEST_INVALID } from '../core/errors.js';
import { FieldReader } from '../core/config-fields.js';
import { readTaskSpec, taskKey } from '../core/config-tasks.js';
import type { TaskSpec } from '../core/config-types.js';

export interface ZooManifest {
  readonly path: string;
  readonly base: {
    readonly modelPath: string;
    /** Fingerprint of the base weights the deltas were made for; null when not recorded. */
    readonly fingerprint: string | null;
    readonly labels: readonly string[] | null;
  };
  readonly tasks: readonly TaskSpec[];
}

export async function loadManifest(path: string): Promise<ZooManifest> {
  let text: string;
  try {
    text = await readRegularFile(path, 'utf8');
  } catch (error) {
    throw new DS_ERR_FILE_READ(`model manifest ${path}`, (error as Error).message);
  }
  return parseManifest(text, path);
}

export function parseManifest(text: string, path: string): ZooManifest {
  const fail = (field: string, reason: string): never => {
    throw new DS_ERR_MANIFEST_INVALID(path, field, reason);
  };
  let raw: unknown;
  try {
    raw = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    return fail('(yaml)', (error as Error).message.split('\n')[0]!);
  }
  const r = new FieldReader(fail);
  const dir = dirname(path);
  const local = (written: string): string => (isAbsolute(written) ? written : resolve(dir, written));
  // The manifest is generated and carries provenance (parameters, method, accuracy...): only
  // the fields the gateway uses are checked, others are ignored.
  const root = r.object(raw, '', ['base', 'tasks'], false, true);
  const baseObj = r.object(root.base, 'base', ['model', 'fingerprint', 'labels'], false, true);
  const fingerprint = r.optionalString(baseObj, 'fingerprint', 'base');
  if (fingerprint !== null && !/^[0-9a-f]{64}$/i.test(fingerprint))
    fail('base.fingerprint', `expected 64 hex digits, got ${quoteBounded(String(fingerprint))}`);
  const base = {
    modelPath: local(r.string(baseObj, 'model', 'base')),
    fingerprint: fingerprint?.toLowerCase() ?? null,
    labels: baseObj.labels === undefined || baseObj.labels === null ? null : r.strings(baseObj, 'labels', 'base', []),
  };
  const tasks = r
    .array(root.tasks, 'tasks')
    .map((value, i) =>
      readTaskSpec(
        r,
        value,
        `tasks[${i}]`,
        'delta',
        (written) => (/^[a-z][a-z0-9+.-]+:\/\//i.test(written) ? written : pathToFileURL(local(written)).href),
        true,
      ),
    );
  const seen = new Set<string>();
  tasks.forEach((task, i) => {
    const key = taskKey(task.name, task.version);
    if (seen.has(key)) fail(`tasks[${i}]`, `${key} is declared twice`);
    seen.add(key);
  });
  return { path, base, tasks };
}
