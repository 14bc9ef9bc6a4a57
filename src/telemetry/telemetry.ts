/**
 * The gateway's OpenTelemetry setup and the only door to it: the HTTP layer and the engine
 * wiring call the typed methods of `Telemetry`, never OpenTelemetry directly, so metric names,
 * labels and units stay in `metric-names.ts` and cardinality rules stay in `labels.ts`.
 *
 * Metrics go to a Prometheus reader that starts no server of its own: the gateway serves
 * `renderPrometheus()` on its own `/metrics` route (same port, same auth, same lifecycle).
 * With `otlpEndpoint`, metrics are also pushed periodically and spans are exported in batches
 * over OTLP/HTTP.
 *
 * Nothing is registered globally (no global meter/tracer provider, context manager or
 * propagator): each `buildTelemetry()` is self-contained, so tests can build many, and
 * parents are passed explicitly (`recordInferenceSpans(parent, ...)`).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { diag, type Context, type Meter, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { DS_ERR_TELEMETRY_BAD_OPTION } from '../core/errors.js';
import { EngineEventRecorder, type AnyEngineEvent } from './engine-events.js';
import { reportingMetricExporter, reportingSpanExporter, type ExportErrorListener } from './export-failures.js';
import { createInstruments, type Instruments } from './instruments.js';
import { integerOption } from '../core/options.js';
import { BoundedLabels, taskNameOfKey } from './labels.js';
import { RouterState, renderVllmCompat, type RouterView, type RoutingSnapshot } from './router-metrics.js';
import { EVENT_LOOP_QUANTILES } from './metric-names.js';
import {
  endRequestSpan,
  recordInferenceSpans,
  startRequestSpan,
  type InferenceSpanAttributes,
  type InferenceTimings,
  type RequestSpanEnd,
  type RequestSpanStart,
} from './spans.js';

export interface TelemetryOptions {
  /** `service.name` of the resource: the `target_info` line and every exported span. */
  readonly serviceName: string;
  /**
   * Base URL of an OTLP/HTTP collector (e.g. `http://otel-collector:4318`); `/v1/metrics` and
   * `/v1/traces` are appended. Null or absent: Prometheus scraping only.
   */
  readonly otlpEndpoint?: string | null;
  /**
   * Record spans. Default true, but spans are only recorded when they have somewhere to go
   * (`otlpEndpoint` or `spanExporter`); otherwise the tracer hands out non-recording spans.
   */
  readonly traces?: boolean;
  /**
   * An extra span exporter, fed span by span as each ends (a `SimpleSpanProcessor`): meant for
   * tests (`InMemorySpanExporter`) and debugging (`ConsoleSpanExporter`), not production.
   */
  readonly spanExporter?: SpanExporter;
  /** Milliseconds between OTLP metric pushes. Default 30 000. */
  readonly otlpMetricIntervalMs?: number;
  /**
   * Milliseconds one OTLP export (retries included) may take before it is abandoned. Bounds
   * `shutdown()` when the collector is down. Default 5 000.
   */
  readonly otlpExportTimeoutMs?: number;
  /**
   * Distinct values each of the `task` and `tenant` labels may take before new ones are
   * folded into `other` (a guard against a bug letting unbounded names through). Default 1000.
   */
  readonly maxLabelValues?: number;
  /**
   * Told about every failed OTLP export (periodic or the final flush at `shutdown()`, which
   * itself never rejects). Without it, failures only reach OpenTelemetry's `diag` logger.
   */
  readonly onError?: ExportErrorListener;
}

export interface RequestRecord {
  /** The task name the HTTP layer resolved, or null when it resolved none (unknown task, 404, auth failure): recorded as `unknown`. Never the raw name from the request. */
  readonly task: string | null;
  /** The authenticated tenant, or null (recorded as `unknown`). */
  readonly tenant: string | null;
  /** HTTP status code sent. */
  readonly status: number;
  readonly seconds: number;
}

export interface QueueDepth {
  readonly total: number;
  /** Keyed by task name or by engine key (`name@version`, `@base`): versions of a task are summed. */
  readonly byTask: Readonly<Record<string, number>>;
}

export interface CacheUsage {
  /** In memory, as the engine keeps them. */
  readonly bytes: number;
  /** The same deltas' files. */
  readonly fileBytes: number;
  readonly entries: number;
}

/** The registry's agreement with the state file replicas share (see TaskRegistry.syncStatus). */
export interface RegistrySync {
  readonly synced: boolean;
  /** Epoch ms of the last successful check; null when there is no state file. */
  readonly lastSyncAt: number | null;
}

/** A value read at scrape time; may be async (e.g. a stats call to the worker). */
export type Observe<T> = () => T | Promise<T>;

export interface Telemetry {
  /** For spans outside the data path; the data path uses the helpers below. */
  readonly tracer: Tracer;
  /** `Content-Type` for the `/metrics` response. */
  readonly prometheusContentType: string;
  /** The current metrics in the Prometheus text exposition format. */
  renderPrometheus(): Promise<string>;

  recordRequest(request: RequestRecord): void;
  /** Wire as `Engine` `onEvent`: cache, activation, batch, queue and worker events. */
  recordEngineEvent(event: AnyEngineEvent): void;
  /** Sources of the gauges, read at each collection; calling again replaces the source. A source that throws reports nothing for that collection. */
  observeQueueDepth(source: Observe<QueueDepth>): void;
  observeCache(source: Observe<CacheUsage>): void;
  observeEngineReady(source: Observe<boolean>): void;
  /** Router-facing gauges (resident and waiting tasks, capacity, queue) and their vLLM-named twins. */
  observeRouting(source: Observe<RoutingSnapshot>): void;
  observeRegistrySync(source: Observe<RegistrySync>): void;

  /** Starts the SERVER span of one HTTP request (joins the caller's trace via `traceparent`). */
  startRequestSpan(request: RequestSpanStart): Span;
  /** Sets status code, task and tenant on the request span, marks 5xx as errors, ends it. */
  endRequestSpan(span: Span, result: RequestSpanEnd): void;
  /** Child spans `queue`, `delta.*`, `activation`, `inference` of `parent`, from the engine's timings. */
  recordInferenceSpans(parent: Context | Span, timings: InferenceTimings, attributes: InferenceSpanAttributes): void;

  /** Flushes and stops every exporter. Idempotent; recording afterwards is a no-op. */
  shutdown(): Promise<void>;
}

const DEFAULT_OTLP_METRIC_INTERVAL_MS = 30_000;
const DEFAULT_OTLP_EXPORT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_LABEL_VALUES = 1000;
const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function buildTelemetry(options: TelemetryOptions): Telemetry {
  return new GatewayTelemetry(validate(options));
}

class GatewayTelemetry implements Telemetry {
  readonly tracer: Tracer;
  readonly prometheusContentType = PROMETHEUS_CONTENT_TYPE;
  private readonly meterProvider: MeterProvider;
  private readonly tracerProvider: BasicTracerProvider;
  private readonly prometheus: PrometheusExporter;
  // Same settings as the exporter's own: no scope labels on every series, `target_info` kept.
  private readonly serializer = new PrometheusSerializer('', false, undefined, false, true);
  private readonly instruments: Instruments;
  private readonly tasks: BoundedLabels;
  private readonly tenants: BoundedLabels;
  private readonly engineEvents: EngineEventRecorder;
  private queueDepth: Observe<QueueDepth> | null = null;
  /** Tasks that ever had a `deltaserve_queue_depth` series. */
  private readonly queuedTasks = new Set<string>();
  private cacheUsage: Observe<CacheUsage> | null = null;
  private engineReady: Observe<boolean> | null = null;
  private routing: Observe<RoutingSnapshot> | null = null;
  private readonly routerState = new RouterState();
  /** The view the last collection read, rendered again under vLLM's names. */
  private lastRouterView: RouterView | null = null;
  /** Tasks that ever had a `deltaserve_delta_resident` series. */
  private readonly residentTasks = new Set<string>();
  private registrySync: Observe<RegistrySync> | null = null;
  private shuttingDown: Promise<void> | null = null;
  /** The thread that builds the telemetry (the HTTP thread) is the one watched. */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });

  constructor(options: ValidOptions) {
    const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName });
    const otlp = options.otlpEndpoint;

    this.prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
    const readers: IMetricReader[] = [this.prometheus];
    if (otlp !== null) {
      const exporter = new OTLPMetricExporter({
        url: `${otlp}/v1/metrics`,
        timeoutMillis: options.otlpExportTimeoutMs,
      });
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: options.onError ? reportingMetricExporter(exporter, options.onError) : exporter,
          exportIntervalMillis: options.otlpMetricIntervalMs,
        }),
      );
    }
    this.meterProvider = new MeterProvider({ resource, readers });

    const spanProcessors: SpanProcessor[] = [];
    if (options.traces) {
      if (otlp !== null) {
        const exporter = new OTLPTraceExporter({
          url: `${otlp}/v1/traces`,
          timeoutMillis: options.otlpExportTimeoutMs,
        });
        spanProcessors.push(
          new BatchSpanProcessor(options.onError ? reportingSpanExporter(exporter, options.onError) : exporter),
        );
      }
      if (options.spanExporter) spanProcessors.push(new SimpleSpanProcessor(options.spanExporter));
    }
    this.tracerProvider = new BasicTracerProvider({
      resource,
      spanProcessors,
      ...(spanProcessors.length === 0 && { sampler: new AlwaysOffSampler() }),
    });
    this.tracer = this.tracerProvider.getTracer('deltaserve');

    const meter = this.meterProvider.getMeter('deltaserve');
    this.instruments = createInstruments(meter);
    this.tasks = new BoundedLabels(options.maxLabelValues);
    this.tenants = new BoundedLabels(options.maxLabelValues);
    this.engineEvents = new EngineEventRecorder(this.instruments, this.tasks);
    this.loopDelay.enable();
    this.registerGaugeCallbacks(meter);
  }

  async renderPrometheus(): Promise<string> {
    if (this.shuttingDown) return '# telemetry is shut down\n';
    const { resourceMetrics, errors } = await this.prometheus.collect();
    for (const error of errors) diag.warn('deltaserve telemetry: metric collection error', error);
    const text = withoutUnitLines(this.serializer.serialize(resourceMetrics));
    const view = this.lastRouterView;
    this.lastRouterView = null; // a source that fails next time must not repeat a stale view
    return view ? `${text.replace(/\n*$/, '\n')}${renderVllmCompat(view, Date.now() / 1000)}` : text;
  }

  recordRequest(request: RequestRecord): void {
    if (!Number.isFinite(request.seconds)) return;
    this.instruments.requestDuration.record(Math.max(0, request.seconds), {
      task: this.tasks.label(request.task),
      tenant: this.tenants.label(request.tenant),
      status: String(request.status),
    });
  }

  recordEngineEvent(event: AnyEngineEvent): void {
    this.engineEvents.record(event);
    this.routerState.onEngineEvent(event);
  }

  observeQueueDepth(source: Observe<QueueDepth>): void {
    this.queueDepth = source;
  }

  observeCache(source: Observe<CacheUsage>): void {
    this.cacheUsage = source;
  }

  observeEngineReady(source: Observe<boolean>): void {
    this.engineReady = source;
  }

  observeRouting(source: Observe<RoutingSnapshot>): void {
    this.routing = source;
  }

  observeRegistrySync(source: Observe<RegistrySync>): void {
    this.registrySync = source;
  }

  startRequestSpan(request: RequestSpanStart): Span {
    return startRequestSpan(this.tracer, request);
  }

  endRequestSpan(span: Span, result: RequestSpanEnd): void {
    endRequestSpan(span, result);
  }

  recordInferenceSpans(parent: Context | Span, timings: InferenceTimings, attributes: InferenceSpanAttributes): void {
    recordInferenceSpans(this.tracer, parent, timings, attributes);
  }

  shutdown(): Promise<void> {
    // A failed final flush was already reported by the exporter wrappers; the providers'
    // rejections repeat it with less detail, so they are only logged for OTel diagnostics.
    this.loopDelay.disable();
    this.shuttingDown ??= Promise.allSettled([this.meterProvider.shutdown(), this.tracerProvider.shutdown()]).then(
      (results) => {
        for (const result of results) {
          if (result.status === 'rejected') diag.debug('deltaserve telemetry: shutdown', result.reason);
        }
      },
    );
    return this.shuttingDown;
  }

  /**
   * One callback per source, registered once: the `observe*` methods only swap the source, so
   * a late or repeated call never stacks callbacks.
   */
  private registerGaugeCallbacks(meter: Meter): void {
    const { queueDepth, queueDepthAll, cacheBytes, cacheFileBytes, cacheEntries, engineReady, eventLoopDelay } =
      this.instruments;
    meter.addBatchObservableCallback(
      async (observer) => {
        const depth = await readSource(this.queueDepth);
        if (!depth) return;
        observer.observe(queueDepthAll, depth.total);
        const byTask = new Map<string, number>();
        for (const [key, count] of Object.entries(depth.byTask)) {
          const task = this.tasks.label(taskNameOfKey(key));
          byTask.set(task, (byTask.get(task) ?? 0) + count);
        }
        // The SDK keeps repeating a series' last value once it stops being observed, so a task
        // whose queue vanished from the source is reported as empty, not frozen at its last depth.
        for (const task of this.queuedTasks) if (!byTask.has(task)) byTask.set(task, 0);
        for (const [task, count] of byTask) {
          observer.observe(queueDepth, count, { task });
          this.queuedTasks.add(task);
        }
      },
      [queueDepth, queueDepthAll],
    );
    meter.addBatchObservableCallback(
      async (observer) => {
        const usage = await readSource(this.cacheUsage);
        if (!usage) return;
        observer.observe(cacheBytes, usage.bytes);
        observer.observe(cacheFileBytes, usage.fileBytes);
        observer.observe(cacheEntries, usage.entries);
      },
      [cacheBytes, cacheFileBytes, cacheEntries],
    );
    engineReady.addCallback(async (observer) => {
      const ready = await readSource(this.engineReady);
      if (ready !== null) observer.observe(ready ? 1 : 0);
    });
    const { deltaResident, tasksWaiting, cacheCapacityBytes, cacheCapacityDeltas, requestsRunning } = this.instruments;
    meter.addBatchObservableCallback(
      async (observer) => {
        const snapshot = await readSource(this.routing);
        if (!snapshot) return;
        const view = this.routerState.view(snapshot);
        this.lastRouterView = view;
        observer.observe(tasksWaiting, view.waitingKeys);
        observer.observe(cacheCapacityBytes, view.capacityBytes);
        observer.observe(cacheCapacityDeltas, view.capacityDeltas);
        observer.observe(requestsRunning, view.running);
        const resident = new Set(view.residentTasks.map((task) => this.tasks.label(task)));
        // As for queue depth: a task that left the cache reads 0, not its last value.
        for (const task of new Set([...this.residentTasks, ...resident])) {
          observer.observe(deltaResident, resident.has(task) ? 1 : 0, { task });
          this.residentTasks.add(task);
        }
      },
      [deltaResident, tasksWaiting, cacheCapacityBytes, cacheCapacityDeltas, requestsRunning],
    );
    const { registrySynced, registryStaleness } = this.instruments;
    meter.addBatchObservableCallback(
      async (observer) => {
        const sync = await readSource(this.registrySync);
        if (!sync || sync.lastSyncAt === null) return; // no state file: nothing to agree on
        observer.observe(registrySynced, sync.synced ? 1 : 0);
        observer.observe(registryStaleness, Math.max(0, (Date.now() - sync.lastSyncAt) / 1000));
      },
      [registrySynced, registryStaleness],
    );
    eventLoopDelay.addCallback((observer) => {
      const h = this.loopDelay;
      // A window shorter than one sampling interval has no sample: nothing was seen late.
      const nanos =
        h.count === 0
          ? { '0.5': 0, '0.99': 0, '1': 0 }
          : { '0.5': h.percentile(50), '0.99': h.percentile(99), '1': h.max };
      for (const quantile of EVENT_LOOP_QUANTILES) observer.observe(nanos[quantile] / 1e9, { quantile });
      h.reset();
    });
  }
}

/**
 * The serializer adds OpenMetrics `# UNIT` lines, which the classic text format we declare
 * (`version=0.0.4`) does not define, and whose UCUM values (`s`, `By`, `{request}`, meant for
 * OTLP) do not match the OpenMetrics rule that the unit be the name's suffix. The unit is
 * already in every name, so the lines are dropped.
 */
function withoutUnitLines(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('# UNIT '))
    .join('\n');
}

async function readSource<T>(source: Observe<T> | null): Promise<T | null> {
  if (!source) return null;
  try {
    return await source();
  } catch (error) {
    diag.warn('deltaserve telemetry: a gauge source threw', error);
    return null;
  }
}

interface ValidOptions {
  readonly serviceName: string;
  /** Without a trailing slash. */
  readonly otlpEndpoint: string | null;
  readonly traces: boolean;
  readonly spanExporter: SpanExporter | undefined;
  readonly otlpMetricIntervalMs: number;
  readonly otlpExportTimeoutMs: number;
  readonly maxLabelValues: number;
  readonly onError: ExportErrorListener | undefined;
}

function validate(options: TelemetryOptions): ValidOptions {
  if (typeof options.serviceName !== 'string' || options.serviceName.trim() === '') {
    throw new DS_ERR_TELEMETRY_BAD_OPTION(
      'serviceName',
      `expected a non-empty string, got ${JSON.stringify(options.serviceName)}`,
    );
  }
  const otlpEndpoint = options.otlpEndpoint ?? null;
  if (otlpEndpoint !== null) {
    let url: URL | null = null;
    try {
      url = new URL(otlpEndpoint);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new DS_ERR_TELEMETRY_BAD_OPTION(
        'otlpEndpoint',
        `expected an http(s) URL such as http://otel-collector:4318, got ${JSON.stringify(otlpEndpoint)}`,
      );
    }
  }
  const bad = DS_ERR_TELEMETRY_BAD_OPTION;
  const otlpMetricIntervalMs = integerOption(
    bad,
    'otlpMetricIntervalMs',
    options.otlpMetricIntervalMs ?? DEFAULT_OTLP_METRIC_INTERVAL_MS,
    1,
  );
  const otlpExportTimeoutMs = integerOption(
    bad,
    'otlpExportTimeoutMs',
    options.otlpExportTimeoutMs ?? DEFAULT_OTLP_EXPORT_TIMEOUT_MS,
    1,
  );
  const maxLabelValues = integerOption(bad, 'maxLabelValues', options.maxLabelValues ?? DEFAULT_MAX_LABEL_VALUES, 1);
  const traces = options.traces ?? true;
  return {
    serviceName: options.serviceName,
    otlpEndpoint: otlpEndpoint === null ? null : otlpEndpoint.replace(/\/+$/, ''),
    traces: traces && (otlpEndpoint !== null || options.spanExporter !== undefined),
    spanExporter: options.spanExporter,
    otlpMetricIntervalMs,
    otlpExportTimeoutMs,
    maxLabelValues,
    onError: options.onError,
  };
}
