import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { buildTelemetry, SPAN_ATTRIBUTES, SPAN_NAMES, type Telemetry } from '../../src/telemetry/index.js';

async function withTracing(
  run: (telemetry: Telemetry, exporter: InMemorySpanExporter) => Promise<void> | void,
): Promise<void> {
  const exporter = new InMemorySpanExporter();
  const telemetry = buildTelemetry({ serviceName: 'deltaserve-test', spanExporter: exporter });
  try {
    await run(telemetry, exporter);
  } finally {
    await telemetry.shutdown();
  }
}

/** HrTime to nanoseconds, exact (bigint). */
function ns([seconds, nanos]: readonly [number, number]): bigint {
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}

function byName(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  assert.equal(found.length, 1, `exactly one span named ${name}`);
  return found[0]!;
}

const STARTED_AT = Date.UTC(2025, 0, 1, 12, 0, 0);

test('recordInferenceSpans: cold request gives six children of the HTTP span, back to back, with attributes', () =>
  withTracing((telemetry, exporter) => {
    const http = telemetry.startRequestSpan({ method: 'POST', route: '/v2/models/:model/infer' });
    telemetry.recordInferenceSpans(
      http,
      {
        startedAt: STARTED_AT,
        queueMs: 3.5,
        fetchMs: 40,
        verifyMs: 6.25,
        decodeMs: 12,
        activationMs: 1.75,
        inferMs: 20,
      },
      { task: 'sentiment', tenant: 'acme', batchSize: 4, cacheHit: false },
    );
    telemetry.endRequestSpan(http, { statusCode: 200, task: 'sentiment', tenant: 'acme' });

    const spans = exporter.getFinishedSpans();
    const expected = [
      SPAN_NAMES.queue,
      SPAN_NAMES.fetch,
      SPAN_NAMES.verify,
      SPAN_NAMES.decode,
      SPAN_NAMES.activation,
      SPAN_NAMES.inference,
    ];
    assert.deepEqual(expected, ['queue', 'delta.fetch', 'delta.verify', 'delta.decode', 'activation', 'inference']);
    const children = expected.map((name) => byName(spans, name));
    const parent = byName(spans, 'POST /v2/models/:model/infer');
    assert.equal(parent.kind, SpanKind.SERVER);

    const durationsMs = [3.5, 40, 6.25, 12, 1.75, 20];
    let cursor = BigInt(STARTED_AT) * 1_000_000n;
    children.forEach((child, i) => {
      assert.equal(
        child.parentSpanContext?.spanId,
        http.spanContext().spanId,
        `${child.name} is a child of the HTTP span`,
      );
      assert.equal(child.spanContext().traceId, http.spanContext().traceId);
      assert.equal(child.kind, SpanKind.INTERNAL);
      assert.equal(ns(child.startTime), cursor, `${child.name} starts where the previous one ended`);
      assert.equal(
        ns(child.endTime) - ns(child.startTime),
        BigInt(durationsMs[i]! * 1_000_000),
        `${child.name} lasts its measured time`,
      );
      cursor = ns(child.endTime);
      assert.deepEqual(child.attributes, {
        [SPAN_ATTRIBUTES.task]: 'sentiment',
        [SPAN_ATTRIBUTES.tenant]: 'acme',
        [SPAN_ATTRIBUTES.batchSize]: 4,
        [SPAN_ATTRIBUTES.cacheHit]: false,
      });
    });
    for (let i = 1; i < children.length; i++) {
      assert.ok(
        ns(children[i]!.startTime) >= ns(children[i - 1]!.endTime),
        `${children[i]!.name} does not overlap ${children[i - 1]!.name}`,
      );
    }
    assert.equal(parent.attributes['http.response.status_code'], 200);
    assert.equal(parent.attributes[SPAN_ATTRIBUTES.task], 'sentiment');
    assert.equal(parent.status.code, SpanStatusCode.UNSET);
  }));

test('recordInferenceSpans: a cache hit has no delta spans; a Context parent works like a Span; null task is unknown', () =>
  withTracing((telemetry, exporter) => {
    const http = telemetry.startRequestSpan({ method: 'POST', route: '/v2/models/:model/infer' });
    const context = trace.setSpan(ROOT_CONTEXT, http);
    telemetry.recordInferenceSpans(
      context,
      { startedAt: STARTED_AT, queueMs: 1, activationMs: 0, inferMs: 5 },
      { task: null, tenant: 'acme', cacheHit: true },
    );
    http.end();

    const children = exporter
      .getFinishedSpans()
      .filter((s) => s.parentSpanContext?.spanId === http.spanContext().spanId);
    assert.deepEqual(
      children.map((s) => s.name),
      ['queue', 'activation', 'inference'],
    );
    const activation = byName(children, 'activation');
    assert.equal(
      ns(activation.endTime),
      ns(activation.startTime),
      'an already-active task gives a zero-length activation',
    );
    assert.equal(activation.attributes[SPAN_ATTRIBUTES.task], 'unknown');
    assert.equal(activation.attributes[SPAN_ATTRIBUTES.cacheHit], true);
    assert.equal(SPAN_ATTRIBUTES.batchSize in activation.attributes, false, 'batch size omitted when not given');
  }));

test('recordInferenceSpans: negative or NaN durations collapse to zero length instead of running backwards', () =>
  withTracing((telemetry, exporter) => {
    const http = telemetry.startRequestSpan({ method: 'POST', route: '/infer' });
    telemetry.recordInferenceSpans(
      http,
      { startedAt: STARTED_AT, queueMs: -2, activationMs: Number.NaN, inferMs: 5 },
      { task: 't', tenant: 'a' },
    );
    http.end();
    const spans = exporter.getFinishedSpans();
    const queue = byName(spans, 'queue');
    const inference = byName(spans, 'inference');
    assert.equal(ns(queue.endTime), ns(queue.startTime));
    assert.equal(ns(inference.startTime), BigInt(STARTED_AT) * 1_000_000n);
    assert.equal(ns(inference.endTime) - ns(inference.startTime), 5_000_000n);
  }));

test('request span joins the caller trace from a valid traceparent and ignores a malformed one', () =>
  withTracing((telemetry, exporter) => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpanId = '00f067aa0ba902b7';
    const joined = telemetry.startRequestSpan({
      method: 'GET',
      route: '/v2/models',
      traceparent: `00-${traceId}-${callerSpanId}-01`,
    });
    joined.end();
    const fresh = telemetry.startRequestSpan({ method: 'GET', route: '/v2/models', traceparent: '00-not-a-trace-01' });
    fresh.end();

    const [a, b] = exporter.getFinishedSpans();
    assert.equal(a!.spanContext().traceId, traceId);
    assert.equal(a!.parentSpanContext?.spanId, callerSpanId);
    assert.equal(a!.attributes['http.request.method'], 'GET');
    assert.equal(a!.attributes['http.route'], '/v2/models');
    assert.notEqual(b!.spanContext().traceId, traceId);
    assert.equal(b!.parentSpanContext, undefined, 'a malformed traceparent starts a new trace');
  }));

test('endRequestSpan marks 5xx as errors with the exception, not 4xx', () =>
  withTracing((telemetry, exporter) => {
    const failed = telemetry.startRequestSpan({ method: 'POST', route: '/infer' });
    telemetry.endRequestSpan(failed, {
      statusCode: 503,
      task: 'sentiment',
      tenant: null,
      error: new Error('engine worker is restarting'),
    });
    const rejected = telemetry.startRequestSpan({ method: 'POST', route: '/infer' });
    telemetry.endRequestSpan(rejected, { statusCode: 404, task: null, tenant: 'acme' });

    const [a, b] = exporter.getFinishedSpans();
    assert.equal(a!.status.code, SpanStatusCode.ERROR);
    assert.equal(a!.status.message, 'engine worker is restarting');
    assert.equal(a!.events[0]?.name, 'exception');
    assert.equal(a!.attributes[SPAN_ATTRIBUTES.tenant], 'unknown');
    assert.equal(b!.status.code, SpanStatusCode.UNSET);
    assert.equal(b!.attributes[SPAN_ATTRIBUTES.task], 'unknown');
    assert.equal(b!.attributes['http.response.status_code'], 404);
  }));

test('traces: false records nothing even with an exporter; no exporter at all gives non-recording spans', async () => {
  const exporter = new InMemorySpanExporter();
  const off = buildTelemetry({ serviceName: 'deltaserve-test', traces: false, spanExporter: exporter });
  const span = off.startRequestSpan({ method: 'GET', route: '/x' });
  assert.equal(span.isRecording(), false);
  off.recordInferenceSpans(
    span,
    { startedAt: STARTED_AT, queueMs: 1, activationMs: 1, inferMs: 1 },
    { task: 't', tenant: 'a' },
  );
  off.endRequestSpan(span, { statusCode: 200 });
  assert.equal(exporter.getFinishedSpans().length, 0);
  await off.shutdown();

  const nowhere = buildTelemetry({ serviceName: 'deltaserve-test' });
  assert.equal(nowhere.startRequestSpan({ method: 'GET', route: '/x' }).isRecording(), false);
  assert.equal(nowhere.tracer.startSpan('custom').isRecording(), false);
  await nowhere.shutdown();
});
