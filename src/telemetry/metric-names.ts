/**
 * Every metric the gateway exports, in one place: name, kind, unit, labels, description and
 * (for histograms) bucket bounds. Dashboards and alerts are written against these names, so
 * renaming one is a breaking change for operators.
 *
 * Naming follows Prometheus habits rather than OpenTelemetry's dotted names, because the
 * `/metrics` text is what operators scrape and graph:
 * - the base unit is in the name (`_seconds`, `_bytes`), durations are in seconds (the
 *   reference systems use `_us` / `_ms`; Prometheus recommends base units);
 * - counters end in `_total`, and only counters do;
 * - `unit` is the UCUM unit OpenTelemetry wants (`s`, `By`), used by the OTLP export.
 *
 * Labels are bounded: `task` and `tenant` come from configuration, anything else is folded
 * into `unknown`/`other` (see `labels.ts`).
 */

export type MetricKind = 'counter' | 'histogram' | 'gauge';

export interface MetricSpec {
  readonly name: string;
  readonly kind: MetricKind;
  /** UCUM unit for OpenTelemetry (`s`, `By`, `1`, `{request}`). */
  readonly unit: string;
  readonly description: string;
  /** Label names every series of this metric carries (empty: a single series). */
  readonly labels: readonly string[];
  /** Histogram bucket upper bounds, in the metric's unit. */
  readonly buckets?: readonly number[];
}

/** From a 1 ms cache hit to a 30 s cold load on a slow link. */
const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;
/** Activation patches or feeds up to a few million values: ~0.1 ms to ~1 s (docs/onnxruntime-facts.md §4). */
const ACTIVATION_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
] as const;
/** A delta load: local file in milliseconds, remote multi-hundred-MB fetch in a minute. */
const LOAD_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256] as const;

export const METRICS = {
  /**
   * End-to-end latency of one HTTP request as the gateway saw it, by resolved task, tenant and
   * HTTP status. Mirrors Triton's `nv_inference_request_duration_us` (there a cumulative
   * counter per model; here a histogram, so percentiles can be computed). `_count` doubles as
   * the request counter.
   */
  requestDuration: {
    name: 'deltaserve_request_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Time from receiving an HTTP request to sending its response, by task, tenant and HTTP status.',
    labels: ['task', 'tenant', 'status'],
    buckets: LATENCY_BUCKETS_SECONDS,
  },
  /**
   * Requests waiting in the scheduler, per task. Mirrors Triton's
   * `nv_inference_pending_request_count`.
   */
  queueDepth: {
    name: 'deltaserve_queue_depth',
    kind: 'gauge',
    unit: '{request}',
    description: 'Requests waiting in the scheduler queue of each task.',
    labels: ['task'],
  },
  /**
   * All queued requests. A separate metric rather than a `task="all"` series, so that
   * `sum(deltaserve_queue_depth)` does not count every request twice; not `_total`, which
   * Prometheus reserves for counters.
   */
  queueDepthAll: {
    name: 'deltaserve_queue_depth_all_tasks',
    kind: 'gauge',
    unit: '{request}',
    description: 'Requests waiting in the scheduler, all task queues together.',
    labels: [],
  },
  /** Time a request waited in its task queue before its batch ran. Mirrors Triton's `nv_inference_queue_duration_us`. */
  queueWait: {
    name: 'deltaserve_queue_wait_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Time a request waited in its task queue before its batch started, by task.',
    labels: ['task'],
    buckets: LATENCY_BUCKETS_SECONDS,
  },
  /** Requests that never ran. A rise of `reason="overloaded"` means load is being shed: add capacity or lower the offered rate. */
  queueDropped: {
    name: 'deltaserve_queue_dropped_total',
    kind: 'counter',
    unit: '{request}',
    description:
      'Requests that never ran: rejected at submit or removed from their queue, by task and reason (overloaded, shutting_down, deadline, aborted).',
    labels: ['task', 'reason'],
  },
  /** Requests per executed batch. Together with `_count` it mirrors Triton's `nv_inference_exec_count` / `nv_inference_count`. */
  batchSize: {
    name: 'deltaserve_batch_size',
    kind: 'histogram',
    unit: '{request}',
    description: 'Requests in each batch the engine ran, by task.',
    labels: ['task'],
    buckets: BATCH_SIZE_BUCKETS,
  },
  /** Forward pass time of one batch in the worker. Mirrors Triton's `nv_inference_compute_infer_duration_us`. */
  inferenceDuration: {
    name: 'deltaserve_inference_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Time the engine spent running one batch through the model, by task.',
    labels: ['task'],
    buckets: LATENCY_BUCKETS_SECONDS,
  },
  /** Mixed mode: how many tasks share one forward pass (recorded in mixed mode only). */
  batchTasks: {
    name: 'deltaserve_batch_tasks',
    kind: 'histogram',
    unit: '{task}',
    description: 'Distinct tasks (the base counts as one) in each batch the engine ran in mixed mode.',
    labels: [],
    buckets: BATCH_SIZE_BUCKETS,
  },
  /** A queued request found its delta evicted (unloaded, retired, or a stale residency hint) when its batch ran, and waited for it to load again. */
  deltaReloads: {
    name: 'deltaserve_delta_reloads_total',
    kind: 'counter',
    unit: '{request}',
    description:
      'Requests whose task delta was gone from the cache when their batch ran and that waited for it to load again (none fails for it), by task.',
    labels: ['task'],
  },
  /** Mixed mode: a task whose delta touches a weight mixed batches cannot apply per request runs in per-task batches. */
  mixedFallbacks: {
    name: 'deltaserve_mixed_fallback_tasks_total',
    kind: 'counter',
    unit: '{task}',
    description:
      'Tasks found to need per-task batches in mixed mode (their delta touches a weight mixed batches cannot apply per request), by task; once per task and engine worker.',
    labels: ['task'],
  },
  /** Task switches on the resident base: a delta was patched in (or fed) in place of the previous one. */
  activations: {
    name: 'deltaserve_activations_total',
    kind: 'counter',
    unit: '{activation}',
    description: 'Times a task delta was activated on the resident base model, by task.',
    labels: ['task'],
  },
  /** Cost of one switch; the part of a cold first request that is not the load. */
  activationDuration: {
    name: 'deltaserve_activation_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description:
      'Time to activate a task delta on the resident base model (restore the previous one and apply this one), by task.',
    labels: ['task'],
    buckets: ACTIVATION_BUCKETS_SECONDS,
  },
  /** Lookups served from memory. `hits / (hits + misses)` is the hit ratio operators graph. */
  cacheHits: {
    name: 'deltaserve_delta_cache_hits_total',
    kind: 'counter',
    unit: '{lookup}',
    description: 'Delta cache lookups served from memory, by task.',
    labels: ['task'],
  },
  /**
   * Lookups that had to load the delta (or join a load in flight). The count side of
   * ModelMesh's `modelmesh_cache_miss_milliseconds` histogram, whose time side is
   * `deltaserve_delta_load_duration_seconds{phase="total"}`; also Ray Serve's
   * `ray_serve_multiplexed_models_load_counter`.
   */
  cacheMisses: {
    name: 'deltaserve_delta_cache_misses_total',
    kind: 'counter',
    unit: '{lookup}',
    description: 'Delta cache lookups that had to fetch, verify and decode the delta, by task.',
    labels: ['task'],
  },
  /** Deltas dropped from the cache (memory pressure or explicit unload). Mirrors Ray Serve's `ray_serve_multiplexed_models_unload_counter`; a fast rise is eviction thrash. */
  cacheEvictions: {
    name: 'deltaserve_delta_cache_evictions_total',
    kind: 'counter',
    unit: '{delta}',
    description: 'Deltas removed from the cache, by memory pressure or by an operator, by task.',
    labels: ['task'],
  },
  cacheBytes: {
    name: 'deltaserve_delta_cache_bytes',
    kind: 'gauge',
    unit: 'By',
    description:
      'Bytes of deltas held in the cache, in the form the engine keeps them (decoded, or regrouped by mixed mode).',
    labels: [],
  },
  /** Beside cacheBytes: what the same deltas take as files, i.e. what keeping them compressed would cost. */
  cacheFileBytes: {
    name: 'deltaserve_delta_cache_file_bytes',
    kind: 'gauge',
    unit: 'By',
    description: 'Bytes the files of the deltas held in the cache take.',
    labels: [],
  },
  /** Mirrors Ray Serve's `ray_serve_num_multiplexed_models`. */
  cacheEntries: {
    name: 'deltaserve_delta_cache_entries',
    kind: 'gauge',
    unit: '{delta}',
    description: 'Deltas held in the cache.',
    labels: [],
  },
  /**
   * Time to bring a delta into the cache, by phase: `fetch` (transfer), `verify` (sha256,
   * interleaved with the transfer), `decode`, and `total`. Mirrors Ray Serve's
   * `ray_serve_multiplexed_model_load_latency_ms`; `phase="total"` is what ModelMesh's
   * `modelmesh_cache_miss_milliseconds` measures (the delay a miss adds).
   */
  deltaLoadDuration: {
    name: 'deltaserve_delta_load_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Time to load a delta into the cache, by task and phase (fetch, verify, decode, total).',
    labels: ['task', 'phase'],
    buckets: LOAD_BUCKETS_SECONDS,
  },
  deltaLoadFailures: {
    name: 'deltaserve_delta_load_failures_total',
    kind: 'counter',
    unit: '{load}',
    description: 'Delta loads that failed (fetch, checksum or decode error), by task.',
    labels: ['task'],
  },
  /** Workers started to replace one that exited (crash or operator restart); the first start is not counted. */
  engineRestarts: {
    name: 'deltaserve_engine_restarts_total',
    kind: 'counter',
    unit: '{restart}',
    description: 'Engine worker threads started to replace one that exited.',
    labels: [],
  },
  /** Base model load time on each worker start (docs/onnxruntime-facts.md §9: 150 ms to 2.6 s). */
  engineStartDuration: {
    name: 'deltaserve_engine_start_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Time for an engine worker to start and load the base model.',
    labels: [],
    buckets: LOAD_BUCKETS_SECONDS,
  },
  /**
   * Router-facing (see `router-metrics.ts` and docs/http-api.md "Metrics for routers"): which
   * tasks' deltas are warm here. A task's series is 1 while any version of it is resident, 0
   * after it left, so a router scoring replicas by affinity reads `deltaserve_delta_resident{task=...} == 1`.
   */
  deltaResident: {
    name: 'deltaserve_delta_resident',
    kind: 'gauge',
    unit: '1',
    description: '1 while a delta of the task is resident in the cache (a request for it needs no load), 0 otherwise.',
    labels: ['task'],
  },
  /** Router-facing: task versions whose requests wait for their delta to load. vLLM: `waiting_lora_adapters`. */
  tasksWaiting: {
    name: 'deltaserve_tasks_waiting',
    kind: 'gauge',
    unit: '{task}',
    description: 'Task versions whose delta is being loaded for waiting requests.',
    labels: [],
  },
  /** Router-facing: the cache budget. vLLM's `max_lora` is the same budget counted in deltas (`deltaserve_delta_cache_capacity_deltas`). */
  cacheCapacityBytes: {
    name: 'deltaserve_delta_cache_capacity_bytes',
    kind: 'gauge',
    unit: 'By',
    description: 'Bytes the delta cache may hold (engine.cacheBytes).',
    labels: [],
  },
  /** Router-facing: the budget in deltas, estimated from the mean size of the deltas loaded so far. */
  cacheCapacityDeltas: {
    name: 'deltaserve_delta_cache_capacity_deltas',
    kind: 'gauge',
    unit: '{delta}',
    description:
      'Deltas the cache can hold at the mean size of the deltas loaded so far (the registered task count before any load).',
    labels: [],
  },
  /** Router-facing: requests in the batch running now. vLLM: `vllm:num_requests_running`. */
  requestsRunning: {
    name: 'deltaserve_requests_running',
    kind: 'gauge',
    unit: '{request}',
    description: 'Requests in the batch the engine is running now.',
    labels: [],
  },
  /**
   * 1 while this replica's registry matches the state file it shares with other replicas; 0 while
   * the file cannot be read or fails validation (the replica serves its last good state).
   */
  registrySynced: {
    name: 'deltaserve_registry_synced',
    kind: 'gauge',
    unit: '1',
    description:
      '1 when the last check of the registry state file succeeded, 0 while the replica serves its last good state.',
    labels: [],
  },
  /** Time since the state file was last read (or found unchanged) successfully: how stale this replica's registry may be. */
  registryStaleness: {
    name: 'deltaserve_registry_staleness_seconds',
    kind: 'gauge',
    unit: 's',
    description: 'Seconds since the registry state file was last checked successfully.',
    labels: [],
  },
  engineReady: {
    name: 'deltaserve_engine_ready',
    kind: 'gauge',
    unit: '1',
    description: '1 when the engine worker is up and the base model is loaded, 0 otherwise.',
    labels: [],
  },
  /**
   * How late the HTTP thread's timers fire (node:perf_hooks `monitorEventLoopDelay`, 10 ms
   * sampling), over the window since the previous collection: `quantile` is 0.5, 0.99 or 1 (the
   * maximum). Inference runs in the worker, so this stays near 0 unless something blocks the
   * thread that parses requests and answers health checks.
   */
  eventLoopDelay: {
    name: 'deltaserve_event_loop_delay_seconds',
    kind: 'gauge',
    unit: 's',
    description: 'Event-loop delay of the HTTP thread since the previous collection, by quantile (0.5, 0.99, 1 = max).',
    labels: ['quantile'],
  },
} as const satisfies Record<string, MetricSpec>;

/** The quantiles `deltaserve_event_loop_delay_seconds` reports (1 = the maximum). */
export const EVENT_LOOP_QUANTILES = ['0.5', '0.99', '1'] as const;

export type MetricId = keyof typeof METRICS;

/** Phases of a delta load, the only values the `phase` label takes. */
export const LOAD_PHASES = ['fetch', 'verify', 'decode', 'total'] as const;
export type LoadPhase = (typeof LOAD_PHASES)[number];

/** Why a request left the scheduler without running, the only values the `reason` label takes. */
export const QUEUE_DROP_REASONS = ['overloaded', 'shutting_down', 'deadline', 'aborted'] as const;
export type QueueDropReason = (typeof QUEUE_DROP_REASONS)[number];
