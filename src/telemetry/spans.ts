/**
 * Spans of the data path. One trace per request: the HTTP span (started when fastify receives
 * the request) with one child per step: `queue`, `delta.fetch`, `delta.verify`,
 * `delta.decode`, `activation`, `inference`.
 *
 * The steps after the HTTP layer happen in the scheduler and the worker thread, where no span
 * context exists; they report durations instead, and `recordInferenceSpans` turns those into
 * child spans after the fact, with explicit start and end times laid back to back from the
 * moment the request entered the engine. The layout is a time budget, not a recording:
 * hashing (`delta.verify`) really runs interleaved with the transfer, and a cold load happens
 * before the request joins its queue; what the trace shows faithfully is how long each step
 * cost this request.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
} from '@opentelemetry/semantic-conventions';
import { UNKNOWN_LABEL } from './labels.js';
import { contextFromTraceparent } from './traceparent.js';

export const SPAN_ATTRIBUTES = {
  task: 'deltaserve.task',
  tenant: 'deltaserve.tenant',
  batchSize: 'deltaserve.batch_size',
  cacheHit: 'deltaserve.cache_hit',
} as const;

export const SPAN_NAMES = {
  queue: 'queue',
  fetch: 'delta.fetch',
  verify: 'delta.verify',
  decode: 'delta.decode',
  activation: 'activation',
  inference: 'inference',
} as const;

/** What the engine measured for one request, in milliseconds. */
export interface InferenceTimings {
  /** Epoch milliseconds when the request entered the engine: the first child span starts here. */
  readonly startedAt: number;
  readonly queueMs: number;
  /** Only on a cold request (cache miss); omit the three on a hit. */
  readonly fetchMs?: number;
  readonly verifyMs?: number;
  readonly decodeMs?: number;
  /** 0 when the task was already active. */
  readonly activationMs: number;
  readonly inferMs: number;
}

export interface InferenceSpanAttributes {
  /** Resolved task name, or null for `unknown`. */
  readonly task: string | null;
  readonly tenant: string | null;
  readonly batchSize?: number;
  readonly cacheHit?: boolean;
}

/** Creates the data-path child spans of `parent` (the HTTP span, or a context holding it). */
export function recordInferenceSpans(
  tracer: Tracer,
  parent: Context | Span,
  timings: InferenceTimings,
  attributes: InferenceSpanAttributes,
): void {
  const context = isSpan(parent) ? trace.setSpan(ROOT_CONTEXT, parent) : parent;
  const spanAttributes = inferenceAttributes(attributes);
  const steps: Array<[name: string, ms: number | undefined]> = [
    [SPAN_NAMES.queue, timings.queueMs],
    [SPAN_NAMES.fetch, timings.fetchMs],
    [SPAN_NAMES.verify, timings.verifyMs],
    [SPAN_NAMES.decode, timings.decodeMs],
    [SPAN_NAMES.activation, timings.activationMs],
    [SPAN_NAMES.inference, timings.inferMs],
  ];
  // One boundary value serves as the end of one span and the start of the next, so adjacent
  // spans touch exactly and never overlap after conversion to nanoseconds.
  let boundary = timings.startedAt;
  for (const [name, ms] of steps) {
    if (ms === undefined) continue;
    const end = boundary + (Number.isFinite(ms) ? Math.max(0, ms) : 0);
    tracer
      .startSpan(name, { kind: SpanKind.INTERNAL, startTime: boundary, attributes: spanAttributes }, context)
      .end(end);
    boundary = end;
  }
}

export interface RequestSpanStart {
  readonly method: string;
  /** The route pattern (fastify's `request.routeOptions.url`), not the raw URL: it names the span. */
  readonly route: string;
  /** The incoming W3C `traceparent` header, to join the caller's trace. */
  readonly traceparent?: string | undefined;
}

export function startRequestSpan(tracer: Tracer, request: RequestSpanStart): Span {
  const parent = request.traceparent === undefined ? ROOT_CONTEXT : contextFromTraceparent(request.traceparent);
  return tracer.startSpan(
    `${request.method} ${request.route}`,
    {
      kind: SpanKind.SERVER,
      attributes: { [ATTR_HTTP_REQUEST_METHOD]: request.method, [ATTR_HTTP_ROUTE]: request.route },
    },
    parent,
  );
}

export interface RequestSpanEnd {
  readonly statusCode: number;
  readonly task?: string | null;
  readonly tenant?: string | null;
  /** The error behind a 5xx, recorded as an exception event. */
  readonly error?: Error;
}

export function endRequestSpan(span: Span, result: RequestSpanEnd): void {
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, result.statusCode);
  if (result.task !== undefined) span.setAttribute(SPAN_ATTRIBUTES.task, result.task ?? UNKNOWN_LABEL);
  if (result.tenant !== undefined) span.setAttribute(SPAN_ATTRIBUTES.tenant, result.tenant ?? UNKNOWN_LABEL);
  // OpenTelemetry's HTTP server convention: only 5xx mark the server span as failed; a 4xx is
  // the client's error and the server did its job.
  if (result.statusCode >= 500) {
    span.setStatus({ code: SpanStatusCode.ERROR, ...(result.error && { message: result.error.message }) });
    if (result.error) span.recordException(result.error);
  }
  span.end();
}

function inferenceAttributes(attributes: InferenceSpanAttributes): Attributes {
  return {
    [SPAN_ATTRIBUTES.task]: attributes.task ?? UNKNOWN_LABEL,
    [SPAN_ATTRIBUTES.tenant]: attributes.tenant ?? UNKNOWN_LABEL,
    ...(attributes.batchSize !== undefined && { [SPAN_ATTRIBUTES.batchSize]: attributes.batchSize }),
    ...(attributes.cacheHit !== undefined && { [SPAN_ATTRIBUTES.cacheHit]: attributes.cacheHit }),
  };
}

function isSpan(parent: Context | Span): parent is Span {
  return typeof (parent as Partial<Span>).spanContext === 'function';
}
