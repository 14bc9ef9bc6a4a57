/**
 * Running the real helm (fetched by scripts/fetch-tool.ts) on helm/deltaserve, for the chart
 * tests and the image smoke test (which boots the image with the configuration the chart renders).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { fetchTool } from '../../scripts/fetch-tool.js';
import type { K8sObject } from './k8s-validate.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHART = 'helm/deltaserve';
const HELM = fetchTool('helm');

export function helm(args: readonly string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(HELM, args, { cwd: ROOT, encoding: 'utf8' });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** `-f helm/deltaserve/ci/<file>` for each file, then `--set` for each assignment. */
export function valueArgs(files: readonly string[], sets: readonly string[] = []): string[] {
  return [...files.flatMap((f) => ['-f', `${CHART}/ci/${f}`]), ...sets.flatMap((s) => ['--set', s])];
}

/** `helm template` → the rendered objects; fails the test when rendering fails. */
export function render(files: readonly string[], sets: readonly string[] = []): K8sObject[] {
  const { code, stdout, stderr } = helm([
    'template',
    'ds',
    CHART,
    '--namespace',
    'inference',
    ...valueArgs(files, sets),
  ]);
  assert.equal(code, 0, stderr);
  return parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export function only(
  objects: readonly K8sObject[],
  kind: string,
): K8sObject & { spec: any; data?: Record<string, string> } {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, got ${found.length}`);
  return found[0] as K8sObject & { spec: any };
}

/** The gateway configuration file the chart's Secret carries. */
export function gatewayYaml(objects: readonly K8sObject[]): string {
  const secrets = objects.filter(
    (o) => o.kind === 'Secret' && (o as { data?: object }).data?.['gateway.yaml' as never],
  );
  assert.equal(secrets.length, 1, `expected one Secret holding gateway.yaml, got ${secrets.length}`);
  const data = (secrets[0] as unknown as { data: Record<string, string> }).data;
  return Buffer.from(data['gateway.yaml']!, 'base64').toString('utf8');
}

export function container(objects: readonly K8sObject[]): any {
  return only(objects, 'Deployment').spec.template.spec.containers[0];
}

export function envOf(objects: readonly K8sObject[]): Record<string, string> {
  return Object.fromEntries(
    (container(objects).env as { name: string; value: string }[]).map((e) => [e.name, e.value]),
  );
}
