/**
 * Reads a W3C Trace Context `traceparent` header (https://www.w3.org/TR/trace-context/) so a
 * request span joins the caller's trace. Written here rather than through a global propagator
 * because the gateway registers no OpenTelemetry globals (several gateways, e.g. in tests, can
 * live in one process). A malformed header is ignored: the request starts a new trace.
 */
import { ROOT_CONTEXT, isSpanContextValid, trace, type Context, type SpanContext } from '@opentelemetry/api';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export function parseTraceparent(header: string): SpanContext | null {
  const match = TRACEPARENT.exec(header.trim());
  if (!match) return null;
  const [, version, traceId, spanId, flags, rest] = match;
  // Version ff is forbidden; version 00 has exactly four fields, later versions may add more.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  const context: SpanContext = {
    traceId: traceId!,
    spanId: spanId!,
    traceFlags: parseInt(flags!, 16) & 1,
    isRemote: true,
  };
  return isSpanContextValid(context) ? context : null;
}

export function contextFromTraceparent(header: string): Context {
  const remote = parseTraceparent(header);
  return remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : ROOT_CONTEXT;
}
