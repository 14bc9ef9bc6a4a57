/**
 * Validation of rendered Kubernetes objects, because `helm lint` passes a chart with a misspelled
 * field. Two independent checks per object:
 *   - the OpenAPI schema of its kind (kubernetes-models): types, enums, required fields;
 *   - unknown fields: a round trip through @kubernetes/client-node's typed models drops every
 *     field the API does not define, so whatever the round trip loses was unknown. The
 *     ServiceMonitor and PrometheusRule (CRDs, unknown to client-node) are checked against the
 *     fields the chart renders instead.
 * A kind the chart renders but this table lacks is an error, so a new template cannot go
 * unchecked.
 */
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';

export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [field: string]: unknown;
}

interface KindCheck {
  /** Throws when the object breaks the kind's schema. */
  readonly schema: (object: K8sObject) => void;
  /** client-node's model name; absent for CRDs. */
  readonly model?: string;
  /** For CRDs: field paths (`a.b[].c`) the chart may render. */
  readonly knownPaths?: readonly string[];
}

/** Custom resources without a schema package here: required fields checked by hand, the rest by knownPaths. */
function requireFields(object: K8sObject, paths: readonly string[]): void {
  for (const path of paths) {
    const value = path
      .split('.')
      .reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], object);
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0))
      throw new Error(`${path} is required`);
  }
}

const KINDS: Record<string, KindCheck> = {
  'apps/v1/Deployment': { schema: (o) => new Deployment(o).validate(), model: 'V1Deployment' },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    schema: (o) => new HorizontalPodAutoscaler(o).validate(),
    model: 'V2HorizontalPodAutoscaler',
  },
  'policy/v1/PodDisruptionBudget': {
    schema: (o) => new PodDisruptionBudget(o).validate(),
    model: 'V1PodDisruptionBudget',
  },
  'v1/PersistentVolumeClaim': {
    schema: (o) => new PersistentVolumeClaim(o).validate(),
    model: 'V1PersistentVolumeClaim',
  },
  'v1/Secret': { schema: (o) => new Secret(o).validate(), model: 'V1Secret' },
  'v1/ConfigMap': { schema: (o) => new ConfigMap(o).validate(), model: 'V1ConfigMap' },
  'v1/Service': { schema: (o) => new Service(o).validate(), model: 'V1Service' },
  'v1/ServiceAccount': { schema: (o) => new ServiceAccount(o).validate(), model: 'V1ServiceAccount' },
  'gateway.networking.k8s.io/v1/HTTPRoute': {
    schema: (o) => requireFields(o, ['metadata.name', 'spec.parentRefs', 'spec.rules']),
    knownPaths: [
      'apiVersion',
      'kind',
      'metadata.name',
      'metadata.labels',
      'metadata.annotations',
      'spec.parentRefs[].name',
      'spec.parentRefs[].namespace',
      'spec.parentRefs[].sectionName',
      'spec.parentRefs[].group',
      'spec.parentRefs[].kind',
      'spec.parentRefs[].port',
      'spec.hostnames[]',
      'spec.rules[].matches[].path.type',
      'spec.rules[].matches[].path.value',
      'spec.rules[].backendRefs[].name',
      'spec.rules[].backendRefs[].port',
    ],
  },
  'gateway.envoyproxy.io/v1alpha1/BackendTrafficPolicy': {
    schema: (o) => requireFields(o, ['metadata.name', 'spec.targetRefs', 'spec.loadBalancer.type']),
    knownPaths: [
      'apiVersion',
      'kind',
      'metadata.name',
      'metadata.labels',
      'metadata.annotations',
      'spec.targetRefs[].group',
      'spec.targetRefs[].kind',
      'spec.targetRefs[].name',
      'spec.loadBalancer.type',
      'spec.loadBalancer.consistentHash.type',
      'spec.loadBalancer.consistentHash.header.name',
      'spec.loadBalancer.consistentHash.tableSize',
    ],
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    schema: (o) => new PrometheusRule(o as never).validate(),
    knownPaths: [
      'apiVersion',
      'kind',
      'metadata.name',
      'metadata.labels',
      'metadata.annotations',
      'spec.groups[].name',
      'spec.groups[].rules[].record',
      'spec.groups[].rules[].alert',
      'spec.groups[].rules[].expr',
      'spec.groups[].rules[].for',
      'spec.groups[].rules[].labels.severity',
      'spec.groups[].rules[].annotations.summary',
      'spec.groups[].rules[].annotations.description',
      'spec.groups[].rules[].annotations.runbook_url',
    ],
  },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    schema: (o) => new ServiceMonitor(o as never).validate(),
    knownPaths: [
      'apiVersion',
      'kind',
      'metadata.name',
      'metadata.labels',
      'metadata.annotations',
      'spec.selector.matchLabels',
      'spec.endpoints[].port',
      'spec.endpoints[].path',
      'spec.endpoints[].interval',
      'spec.endpoints[].scrapeTimeout',
      'spec.endpoints[].authorization.type',
      'spec.endpoints[].authorization.credentials.name',
      'spec.endpoints[].authorization.credentials.key',
    ],
  },
};

/** Throws an Error naming the object and every problem found. */
export function validateObject(object: K8sObject): void {
  const where = `${object.kind}/${object.metadata?.name}`;
  const check = KINDS[`${object.apiVersion}/${object.kind}`];
  if (check === undefined)
    throw new Error(
      `${where}: ${object.apiVersion} ${object.kind} is not a kind this validator knows; add it to KINDS`,
    );
  try {
    check.schema(object);
  } catch (error) {
    throw new Error(`${where}: schema: ${(error as Error).message}`, { cause: error });
  }
  const unknown =
    check.model !== undefined ? lostInRoundTrip(object, check.model) : outside(object, check.knownPaths ?? []);
  if (unknown.length > 0) throw new Error(`${where}: unknown field(s): ${unknown.join(', ')}`);
}

function lostInRoundTrip(object: K8sObject, model: string): string[] {
  const typed: unknown = ObjectSerializer.deserialize(object, model, '');
  const plain: unknown = ObjectSerializer.serialize(typed, model, '');
  return missingPaths(object, plain, '');
}

/** Paths present in `original` but absent from `roundTripped`. */
function missingPaths(original: unknown, roundTripped: unknown, path: string): string[] {
  if (Array.isArray(original)) {
    const other = Array.isArray(roundTripped) ? roundTripped : [];
    return original.flatMap((item, i) => missingPaths(item, other[i], `${path}[${i}]`));
  }
  if (!isRecord(original)) return [];
  const other = isRecord(roundTripped) ? roundTripped : {};
  return Object.entries(original).flatMap(([key, value]) => {
    const child = path === '' ? key : `${path}.${key}`;
    if (!(key in other) || (other[key] === undefined && value !== undefined)) return [child];
    return missingPaths(value, other[key], child);
  });
}

/** Leaf paths of `object` (array indices as `[]`) not covered by `known`. */
function outside(object: unknown, known: readonly string[]): string[] {
  const leaves: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (known.includes(path)) return;
    if (Array.isArray(value)) return value.forEach((item) => walk(item, `${path}[]`));
    if (isRecord(value))
      return Object.entries(value).forEach(([key, child]) => walk(child, path === '' ? key : `${path}.${key}`));
    leaves.push(path);
  };
  walk(object, '');
  return leaves;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
