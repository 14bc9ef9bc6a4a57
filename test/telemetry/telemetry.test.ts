import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { buildTelemetry, METRICS, type TelemetryOptions } from '../../src/telemetry/index.js';

test('shutdown can be called twice (and concurrently) without throwing; scraping afterwards says so', async () => {
  const exporter = new InMemorySpanExporter();
  const telemetry = buildTelemetry({ serviceName: 'deltaserve-test', spanExporter: exporter });
  telemetry.recordRequest({ task: 'x', tenant: 't', status: 200, seconds: 0.01 });
  assert.match(await telemetry.renderPrometheus(), /deltaserve_request_duration_seconds_count/);

  await Promise.all([telemetry.shutdown(), telemetry.shutdown()]);
  await telemetry.shutdown();

  assert.equal(await telemetry.renderPrometheus(), '# telemetry is shut down\n');
  // Recording after shutdown is a no-op, not an error.
  telemetry.recordRequest({ task: 'x', tenant: 't', status: 200, seconds: 0.01 });
  telemetry.recordEngineEvent({ type: 'cache', kind: 'hit', key: 'x@1', bytes: 1 });
  const span = telemetry.startRequestSpan({ method: 'GET', route: '/x' });
  telemetry.endRequestSpan(span, { statusCode: 200 });
  assert.equal(exporter.getFinishedSpans().length, 0, 'spans after shutdown are not exported');
});

test('renderPrometheus without any recording still returns the target_info line', async () => {
  const telemetry = buildTelemetry({ serviceName: 'svc' });
  const text = await telemetry.renderPrometheus();
  assert.match(text, /^target_info\{service_name="svc"\} 1$/m);
  assert.equal(telemetry.prometheusContentType, 'text/plain; version=0.0.4; charset=utf-8');
  await telemetry.shutdown();
});

const BAD_OPTIONS: Array<[what: string, options: TelemetryOptions, message: RegExp]> = [
  ['empty service name', { serviceName: ' ' }, /option serviceName is invalid: expected a non-empty string, got " "/],
  [
    'endpoint that is not a URL',
    { serviceName: 's', otlpEndpoint: 'collector:4318' },
    /option otlpEndpoint is invalid: .*got "collector:4318"/,
  ],
  [
    'endpoint that is not http',
    { serviceName: 's', otlpEndpoint: 'grpc://collector:4317' },
    /option otlpEndpoint is invalid/,
  ],
  [
    'zero export interval',
    { serviceName: 's', otlpMetricIntervalMs: 0 },
    /option otlpMetricIntervalMs is invalid: .*got 0/,
  ],
  [
    'negative export timeout',
    { serviceName: 's', otlpExportTimeoutMs: -1 },
    /option otlpExportTimeoutMs is invalid: .*got -1/,
  ],
  ['fractional label limit', { serviceName: 's', maxLabelValues: 1.5 }, /option maxLabelValues is invalid: .*got 1.5/],
];

for (const [what, options, message] of BAD_OPTIONS) {
  test(`buildTelemetry rejects ${what} with DS_ERR_TELEMETRY_BAD_OPTION`, () => {
    assert.throws(
      () => buildTelemetry(options),
      (error: Error & { code?: string; statusCode?: number }) => {
        assert.equal(error.code, 'DS_ERR_TELEMETRY_BAD_OPTION');
        assert.equal(error.statusCode, 500);
        assert.match(error.message, message);
        return true;
      },
    );
  });
}

test('with an unreachable collector, shutdown resolves within the export timeout and reports the failure', async () => {
  const errors: Error[] = [];
  // A port that was just free: nothing listens, the connection is refused at once.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const telemetry = buildTelemetry({
    serviceName: 's',
    otlpEndpoint: `http://127.0.0.1:${port}`,
    otlpExportTimeoutMs: 500,
    onError: (e) => errors.push(e),
  });
  telemetry.recordRequest({ task: 'x', tenant: 't', status: 200, seconds: 0.01 });
  telemetry.endRequestSpan(telemetry.startRequestSpan({ method: 'GET', route: '/x' }), { statusCode: 200 });
  await telemetry.shutdown();
  const messages = errors.map((e) => e.message);
  assert.ok(
    messages.some((m) => /^OTLP export of metrics failed: /.test(m)),
    `metrics failure reported: ${messages.join(' | ')}`,
  );
  assert.ok(
    messages.some((m) => /^OTLP export of 1 spans failed: /.test(m)),
    `span failure reported: ${messages.join(' | ')}`,
  );
});

test('with otlpEndpoint, shutdown flushes metrics to /v1/metrics and spans to /v1/traces', async () => {
  const received: Array<{ path: string; body: string }> = [];
  const server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const errors: Error[] = [];
    const telemetry = buildTelemetry({
      serviceName: 'deltaserve-otlp',
      otlpEndpoint: `http://127.0.0.1:${port}/`,
      // Longer than the test: only the flush at shutdown may export.
      otlpMetricIntervalMs: 60_000,
      onError: (error) => errors.push(error),
    });
    telemetry.recordRequest({ task: 'sentiment', tenant: 'acme', status: 200, seconds: 0.05 });
    const span = telemetry.startRequestSpan({ method: 'POST', route: '/v2/models/:model/infer' });
    telemetry.recordInferenceSpans(
      span,
      { startedAt: Date.now(), queueMs: 1, activationMs: 1, inferMs: 1 },
      { task: 'sentiment', tenant: 'acme' },
    );
    telemetry.endRequestSpan(span, { statusCode: 200 });
    // Prometheus scraping keeps working alongside the push.
    assert.match(await telemetry.renderPrometheus(), /deltaserve_request_duration_seconds_count\{task="sentiment"/);

    await telemetry.shutdown();

    assert.deepEqual(errors, []);
    const metrics = received.filter((r) => r.path === '/v1/metrics');
    const traces = received.filter((r) => r.path === '/v1/traces');
    assert.equal(metrics.length >= 1, true, `metrics pushed (got paths ${received.map((r) => r.path).join(', ')})`);
    assert.ok(
      metrics.some((r) => r.body.includes(METRICS.requestDuration.name)),
      'the request histogram is in the pushed metrics',
    );
    assert.equal(traces.length >= 1, true, 'spans pushed');
    assert.ok(
      traces.some((r) => r.body.includes('"inference"') && r.body.includes('deltaserve-otlp')),
      'the data-path spans are in the pushed traces',
    );
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
