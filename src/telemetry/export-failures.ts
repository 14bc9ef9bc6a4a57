/**
 * Wrappers that tell the gateway about every failed push to the collector. The SDK routes
 * export failures to its diagnostic logger or global error handler (globals this module does
 * not set) or, for timeouts, nowhere; wrapping the exporters gives one reliable channel,
 * `TelemetryOptions.onError`, for periodic exports and the final flush alike.
 */
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];
/** `ExportResultCode.SUCCESS` of `@opentelemetry/core`, which is not a direct dependency. */
const SUCCESS: ExportResult['code'] = 0;

export type ExportErrorListener = (error: Error) => void;

export function reportingSpanExporter(exporter: SpanExporter, onError: ExportErrorListener): SpanExporter {
  return {
    export: (spans, done) =>
      exporter.export(spans, (result) => {
        report(result, `${spans.length} spans`, onError);
        done(result);
      }),
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}

export function reportingMetricExporter(
  exporter: PushMetricExporter,
  onError: ExportErrorListener,
): PushMetricExporter {
  return {
    export: (metrics, done) =>
      exporter.export(metrics, (result) => {
        report(result, 'metrics', onError);
        done(result);
      }),
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
    // The OTLP exporter chooses temporality and aggregation; the reader asks the exporter it holds.
    ...(exporter.selectAggregationTemporality && {
      selectAggregationTemporality: exporter.selectAggregationTemporality.bind(exporter),
    }),
    ...(exporter.selectAggregation && { selectAggregation: exporter.selectAggregation.bind(exporter) }),
  };
}

function report(result: ExportResult, what: string, onError: ExportErrorListener): void {
  if (result.code === SUCCESS) return;
  const error = new Error(`OTLP export of ${what} failed: ${result.error?.message ?? 'no reason given'}`, {
    cause: result.error,
  });
  try {
    onError(error);
  } catch {
    // A throwing listener must not break the exporter's bookkeeping.
  }
}
