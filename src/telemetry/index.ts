/** The telemetry module's public surface: build it once in `buildServer()`, pass it around. */
export { buildTelemetry } from './telemetry.js';
export type {
  CacheUsage,
  Observe,
  QueueDepth,
  RegistrySync,
  RequestRecord,
  Telemetry,
  TelemetryOptions,
} from './telemetry.js';
export type { RoutingSnapshot } from './router-metrics.js';
export type { AnyEngineEvent } from './engine-events.js';
export { BASE_LABEL, OTHER_LABEL, UNKNOWN_LABEL } from './labels.js';
export {
  LOAD_PHASES,
  METRICS,
  QUEUE_DROP_REASONS,
  type LoadPhase,
  type MetricId,
  type MetricKind,
  type MetricSpec,
  type QueueDropReason,
} from './metric-names.js';
export {
  SPAN_ATTRIBUTES,
  SPAN_NAMES,
  type InferenceSpanAttributes,
  type InferenceTimings,
  type RequestSpanEnd,
  type RequestSpanStart,
} from './spans.js';
