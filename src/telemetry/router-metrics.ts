/**
 * What a router needs to send a request where its delta is warm, from one replica: which tasks
 * are resident, which are waiting for a load, the cache's capacity and the queue. Exported twice:
 *
 * - under our own names (`deltaserve_delta_resident{task}`, `deltaserve_tasks_waiting`,
 *   `deltaserve_delta_cache_capacity_*`, `deltaserve_queue_depth_all_tasks`,
 *   `deltaserve_requests_running`; see metric-names.ts), through OpenTelemetry like every metric;
 * - under the names the Gateway API Inference Extension's endpoint picker (EPP, also used by
 *   llm-d) reads from vLLM, following its model server protocol
 *   (docs/proposals/003-model-server-protocol, as of GIE v0.3–v1.0): `vllm:num_requests_waiting`,
 *   `vllm:num_requests_running`, and `vllm:lora_requests_info` whose labels list the running and
 *   waiting adapters and `max_lora`, with the update time as the value. A task is an adapter
 *   here: "running" = its delta is resident, "waiting" = requests wait for its delta to load,
 *   `max_lora` = deltas the cache holds at the mean size seen. These names contain `:`, which
 *   OpenTelemetry instrument names may not, so they are rendered as text and appended to the
 *   exposition. The KV-cache utilisation gauge has no counterpart (no KV cache) and is not sent.
 */
import type { AnyEngineEvent } from './engine-events.js';
import { BASE_LABEL, taskNameOfKey } from './labels.js';

/** Read at each scrape from the engine and the registry. */
export interface RoutingSnapshot {
  /** Engine keys (`name@version`) of the deltas in the cache (pinned ones included). */
  readonly residentKeys: readonly string[];
  /** Bytes of those deltas. */
  readonly residentBytes: number;
  /** The cache budget (`engine.cacheBytes`). */
  readonly capacityBytes: number;
  /** Requests queued in the scheduler, all tasks. */
  readonly queued: number;
  /** Requests in the batch running now. */
  readonly running: number;
  /** Registered task versions: the capacity estimate before any delta was loaded. */
  readonly registeredTasks: number;
}

/** The snapshot as routers read it: task names (versions folded), waiting tasks, capacity in deltas. */
export interface RouterView {
  readonly residentTasks: readonly string[];
  readonly waitingTasks: readonly string[];
  readonly waitingKeys: number;
  readonly capacityBytes: number;
  readonly capacityDeltas: number;
  readonly queued: number;
  readonly running: number;
}

/** Follows loads from the engine's cache events and combines them with a snapshot. */
export class RouterState {
  private readonly loading = new Set<string>();
  private meanDeltaBytes: number | null = null;

  onEngineEvent(event: AnyEngineEvent): void {
    if (event.type === 'worker-exited') this.loading.clear();
    if (event.type !== 'cache') return;
    if (event.kind === 'miss') this.loading.add(event.key);
    else if (event.kind === 'load' || event.kind === 'load-failed' || event.kind === 'hit')
      this.loading.delete(event.key);
  }

  view(snapshot: RoutingSnapshot): RouterView {
    const resident = snapshot.residentKeys.filter((key) => key !== '@base');
    if (resident.length > 0) this.meanDeltaBytes = snapshot.residentBytes / resident.length;
    const capacityDeltas =
      this.meanDeltaBytes !== null && this.meanDeltaBytes > 0
        ? Math.max(resident.length, Math.floor(snapshot.capacityBytes / this.meanDeltaBytes))
        : snapshot.registeredTasks;
    const residentKeys = new Set(resident);
    const waiting = [...this.loading].filter((key) => !residentKeys.has(key));
    return {
      residentTasks: namesOf(resident),
      waitingTasks: namesOf(waiting),
      waitingKeys: waiting.length,
      capacityBytes: snapshot.capacityBytes,
      capacityDeltas,
      queued: snapshot.queued,
      running: snapshot.running,
    };
  }
}

function namesOf(keys: readonly string[]): string[] {
  return [...new Set(keys.map(taskNameOfKey).filter((name) => name !== BASE_LABEL))].sort();
}

/** The vLLM-named gauges in the Prometheus text format (version 0.0.4), `nowSeconds` as the update time. */
export function renderVllmCompat(view: RouterView, nowSeconds: number): string {
  const labels = [
    `max_lora="${escapeLabel(String(view.capacityDeltas))}"`,
    `running_lora_adapters="${escapeLabel(view.residentTasks.join(','))}"`,
    `waiting_lora_adapters="${escapeLabel(view.waitingTasks.join(','))}"`,
  ].join(',');
  return [
    '# HELP vllm:num_requests_waiting Requests queued in the scheduler (deltaserve_queue_depth_all_tasks, for vLLM-aware routers).',
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting ${view.queued}`,
    '# HELP vllm:num_requests_running Requests in the running batch (deltaserve_requests_running, for vLLM-aware routers).',
    '# TYPE vllm:num_requests_running gauge',
    `vllm:num_requests_running ${view.running}`,
    '# HELP vllm:lora_requests_info Tasks with a resident delta (running) or a delta loading for waiting requests (waiting), and the cache capacity in deltas (max_lora); the value is the update time.',
    '# TYPE vllm:lora_requests_info gauge',
    `vllm:lora_requests_info{${labels}} ${nowSeconds}`,
    '',
  ].join('\n');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
