/**
 * The OpenTelemetry instruments behind `METRICS`, created once per meter. Gauges are
 * observable: their value is read from a callback at collection time, so nothing has to push
 * a queue length or a cache size on every change.
 */
import type { Counter, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';
import { METRICS, type MetricId, type MetricSpec } from './metric-names.js';

type InstrumentFor<S extends MetricSpec> = S['kind'] extends 'counter'
  ? Counter
  : S['kind'] extends 'histogram'
    ? Histogram
    : ObservableGauge;

export type Instruments = { readonly [K in MetricId]: InstrumentFor<(typeof METRICS)[K]> };

export function createInstruments(meter: Meter): Instruments {
  const instruments: Partial<Record<MetricId, Counter | Histogram | ObservableGauge>> = {};
  for (const id of Object.keys(METRICS) as MetricId[]) {
    const spec: MetricSpec = METRICS[id];
    const options = { unit: spec.unit, description: spec.description };
    switch (spec.kind) {
      case 'counter':
        instruments[id] = meter.createCounter(spec.name, options);
        break;
      case 'histogram':
        instruments[id] = meter.createHistogram(spec.name, {
          ...options,
          ...(spec.buckets && { advice: { explicitBucketBoundaries: [...spec.buckets] } }),
        });
        break;
      case 'gauge':
        instruments[id] = meter.createObservableGauge(spec.name, options);
        break;
    }
  }
  // Each entry was created above from its own spec's kind, which is what `Instruments` maps.
  return instruments as Instruments;
}
