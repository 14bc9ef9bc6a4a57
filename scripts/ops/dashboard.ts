/**
 * The gateway's Grafana dashboard, built with the Grafana Foundation SDK (Grafana's dashboard
 * schema as TypeScript builders) from the metric specs in src/telemetry/metric-names.ts: a
 * metric renamed there fails the typecheck here, and each query filters by task or tenant only
 * when the metric carries that label. scripts/dashboards.ts writes the result to
 * helm/deltaserve/dashboards/deltaserve.json; test/ops checks that file is this output and
 * runs every query against a real Prometheus scraping a real gateway.
 */
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
  type Panel,
  type RowPanel,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { EVENT_LOOP_QUANTILES, METRICS, type MetricSpec } from '../../src/telemetry/metric-names.js';

export const DASHBOARD_UID = 'deltaserve-overview';
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
/** Template variables and the label each one filters. */
export const VARIABLES = { namespace: 'namespace', replica: 'pod', task: 'task', tenant: 'tenant' } as const;
const RATE = '$__rate_interval';

/**
 * The selector of `metric` (optionally one of its series, `suffix` `_count`, `_bucket`, ...):
 * namespace and replica always, task and tenant where the metric has those labels.
 */
export function selector(metric: MetricSpec, extra: readonly string[] = [], suffix = ''): string {
  const matchers = [`namespace=~"$namespace"`, `pod=~"$replica"`];
  if (metric.labels.includes('task')) matchers.push(`task=~"$task"`);
  if (metric.labels.includes('tenant')) matchers.push(`tenant=~"$tenant"`);
  return `${metric.name}${suffix}{${[...matchers, ...extra].join(', ')}}`;
}

const rate = (metric: MetricSpec, extra: readonly string[] = [], suffix = '') =>
  `rate(${selector(metric, extra, suffix)}[${RATE}])`;

function quantile(q: number, metric: MetricSpec, by: readonly string[], extra: readonly string[] = []): string {
  return `histogram_quantile(${q}, sum by (${[...by, 'le'].join(', ')}) (${rate(metric, extra, '_bucket')}))`;
}

function mean(metric: MetricSpec, by: readonly string[]): string {
  const group = `sum by (${by.join(', ')})`;
  return `${group} (${rate(metric, [], '_sum')}) / ${group} (${rate(metric, [], '_count')})`;
}

interface Query {
  readonly expr: string;
  readonly legend: string;
}

function target(query: Query, refId: string): DataqueryBuilder {
  return new DataqueryBuilder().expr(query.expr).legendFormat(query.legend).refId(refId).datasource(DATASOURCE);
}

const REF_IDS = 'ABCDEFGH';

function timeseries(
  title: string,
  description: string,
  unit: string,
  queries: readonly Query[],
  width = 8,
): TimeseriesBuilder {
  const panel = new TimeseriesBuilder()
    .title(title)
    .description(description)
    .unit(unit)
    .datasource(DATASOURCE)
    .height(8)
    .span(width);
  queries.forEach((q, i) => panel.withTarget(target(q, REF_IDS[i]!)));
  return panel;
}

function stat(title: string, description: string, unit: string, query: Query, width = 4): StatBuilder {
  return new StatBuilder()
    .title(title)
    .description(description)
    .unit(unit)
    .datasource(DATASOURCE)
    .height(4)
    .span(width)
    .withTarget(target(query, 'A'));
}

function variable(name: keyof typeof VARIABLES, label: string, query: string): QueryVariableBuilder {
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ text: 'All', value: '$__all' });
}

const M = METRICS;
const REQUESTS = M.requestDuration;

type Section = readonly [title: string, panels: readonly (TimeseriesBuilder | StatBuilder)[]];

function sections(): Section[] {
  return [
    [
      'Traffic and SLO',
      [
        stat('Requests/s', 'All requests the selected replicas answered, per second.', 'reqps', {
          expr: `sum(${rate(REQUESTS, [], '_count')})`,
          legend: 'requests/s',
        }),
        stat(
          'Availability',
          'Share of answers that were not 5xx (the availability SLI of the alerts).',
          'percentunit',
          {
            expr: `1 - (sum(${rate(REQUESTS, ['status=~"5.."'], '_count')}) or vector(0)) / sum(${rate(REQUESTS, [], '_count')})`,
            legend: 'availability',
          },
        ),
        stat('Replicas ready', 'Replicas whose engine worker is up with the base model loaded.', 'none', {
          expr: `sum(${selector(M.engineReady)})`,
          legend: 'ready',
        }),
        timeseries(
          'Requests by task',
          'Requests per second by resolved task (unknown: not resolved, e.g. 404 or 401).',
          'reqps',
          [{ expr: `sum by (task) (${rate(REQUESTS, [], '_count')})`, legend: '{{task}}' }],
          12,
        ),
        timeseries(
          'Requests by tenant',
          'Requests per second by tenant (unknown: no valid key).',
          'reqps',
          [{ expr: `sum by (tenant) (${rate(REQUESTS, [], '_count')})`, legend: '{{tenant}}' }],
          12,
        ),
        timeseries(
          'Errors by status',
          'Answers other than 2xx per second, by HTTP status and tenant: 503 shed/not ready/delta unavailable, 429 tenant limits, 4xx client errors.',
          'reqps',
          [
            {
              expr: `sum by (status, tenant) (${rate(REQUESTS, ['status!~"2.."'], '_count')})`,
              legend: '{{status}} {{tenant}}',
            },
          ],
        ),
        timeseries('Latency by task', 'End-to-end request latency, p50 and p99, by task.', 's', [
          { expr: quantile(0.5, REQUESTS, ['task']), legend: 'p50 {{task}}' },
          { expr: quantile(0.99, REQUESTS, ['task']), legend: 'p99 {{task}}' },
        ]),
        timeseries('Latency by tenant', 'End-to-end request latency, p50 and p99, by tenant.', 's', [
          { expr: quantile(0.5, REQUESTS, ['tenant']), legend: 'p50 {{tenant}}' },
          { expr: quantile(0.99, REQUESTS, ['tenant']), legend: 'p99 {{tenant}}' },
        ]),
      ],
    ],
    [
      'Batching',
      [
        timeseries('Batch size', 'Requests per executed batch: mean and p99, by task.', 'none', [
          { expr: mean(M.batchSize, ['task']), legend: 'mean {{task}}' },
          { expr: quantile(0.99, M.batchSize, ['task']), legend: 'p99 {{task}}' },
        ]),
        timeseries(
          'Tasks per batch (mixed mode)',
          'Distinct tasks in each batch the engine ran in mixed mode, mean and p99, per replica. Empty in patch and graph mode.',
          'none',
          [
            { expr: mean(M.batchTasks, ['pod']), legend: 'mean {{pod}}' },
            { expr: quantile(0.99, M.batchTasks, ['pod']), legend: 'p99 {{pod}}' },
          ],
        ),
        timeseries('Queue wait', 'Time requests waited in their task queue before their batch ran, p50 and p99.', 's', [
          { expr: quantile(0.5, M.queueWait, ['task']), legend: 'p50 {{task}}' },
          { expr: quantile(0.99, M.queueWait, ['task']), legend: 'p99 {{task}}' },
        ]),
        timeseries(
          'Queued requests',
          'Requests waiting in the scheduler, per replica (the autoscaling metric).',
          'none',
          [{ expr: `sum by (pod) (${selector(M.queueDepthAll)})`, legend: '{{pod}}' }],
          12,
        ),
        timeseries(
          'Shed requests',
          'Requests that never ran, per second, by task and reason: overloaded = queues full (load shedding), deadline, aborted, shutting_down.',
          'reqps',
          [{ expr: `sum by (task, reason) (${rate(M.queueDropped)})`, legend: '{{reason}} {{task}}' }],
          12,
        ),
      ],
    ],
    [
      'Delta cache',
      [
        timeseries(
          'Cache hit ratio',
          'Delta cache lookups served from memory, per replica. Low while activations/s is high: thrashing.',
          'percentunit',
          [
            {
              expr: `sum by (pod) (${rate(M.cacheHits)}) / (sum by (pod) (${rate(M.cacheHits)}) + sum by (pod) (${rate(M.cacheMisses)}))`,
              legend: '{{pod}}',
            },
          ],
        ),
        timeseries(
          'Resident bytes vs capacity',
          'Delta bytes held in the cache (as the engine keeps them), what the same deltas take as files, and the cache budget (engine.cacheBytes), per replica.',
          'bytes',
          [
            { expr: `sum by (pod) (${selector(M.cacheBytes)})`, legend: 'resident {{pod}}' },
            { expr: `sum by (pod) (${selector(M.cacheFileBytes)})`, legend: 'as files {{pod}}' },
            { expr: `sum by (pod) (${selector(M.cacheCapacityBytes)})`, legend: 'capacity {{pod}}' },
          ],
        ),
        timeseries(
          'Evictions',
          'Deltas dropped from the cache per second (memory pressure or an operator unload), by task.',
          'ops',
          [{ expr: `sum by (task) (${rate(M.cacheEvictions)})`, legend: '{{task}}' }],
        ),
        timeseries('Delta load time', 'Time to bring a delta into the cache, p50 and p99, by phase.', 's', [
          { expr: quantile(0.5, M.deltaLoadDuration, ['phase']), legend: 'p50 {{phase}}' },
          { expr: quantile(0.99, M.deltaLoadDuration, ['phase']), legend: 'p99 {{phase}}' },
        ]),
        timeseries(
          'Activations/s',
          'Task switches on the resident base per second, by task, and the p99 time one takes.',
          'ops',
          [
            { expr: `sum by (task) (${rate(M.activations)})`, legend: '{{task}}' },
            { expr: quantile(0.99, M.activationDuration, ['pod']), legend: 'p99 seconds {{pod}}' },
          ],
        ),
        timeseries(
          'Delta reloads',
          'Queued requests whose delta was gone from the cache when their batch ran and that waited for it to load again, per second, by task (none fails for it; a steady rate means the cache is too small for the queued tasks).',
          'ops',
          [{ expr: `sum by (task) (${rate(M.deltaReloads)})`, legend: '{{task}}' }],
        ),
        timeseries(
          'Delta load failures',
          'Delta loads that failed (fetch, checksum or decode error) per second, by task.',
          'ops',
          [{ expr: `sum by (task) (${rate(M.deltaLoadFailures)})`, legend: '{{task}}' }],
        ),
      ],
    ],
    [
      'Engine',
      [
        timeseries('Engine ready', '1 while the engine worker is up and the base model loaded, per replica.', 'none', [
          { expr: `max by (pod) (${selector(M.engineReady)})`, legend: '{{pod}}' },
        ]),
        timeseries(
          'Engine restarts',
          'Engine workers started to replace one that exited, per replica, in each interval.',
          'none',
          [{ expr: `sum by (pod) (increase(${selector(M.engineRestarts)}[${RATE}]))`, legend: '{{pod}}' }],
        ),
        timeseries(
          'Event-loop delay',
          'How late the HTTP thread runs its timers (p99 and max since the previous scrape), per replica.',
          's',
          EVENT_LOOP_QUANTILES.filter((q) => q !== '0.5').map((q) => ({
            expr: `max by (pod) (${selector(M.eventLoopDelay, [`quantile="${q}"`])})`,
            legend: `${q === '1' ? 'max' : `p${Number(q) * 100}`} {{pod}}`,
          })),
        ),
        timeseries(
          'Inference time',
          'Time the engine spent running one batch through the model, p99 by task, and base model load time on worker start.',
          's',
          [
            { expr: quantile(0.99, M.inferenceDuration, ['task']), legend: 'p99 {{task}}' },
            { expr: mean(M.engineStartDuration, ['pod']), legend: 'worker start {{pod}}' },
          ],
        ),
        timeseries(
          'Mixed-mode fallbacks',
          'Tasks found to need per-task batches in mixed mode (their delta touches a weight mixed batches cannot apply per request), by task. Empty until the first one.',
          'none',
          [{ expr: `sum by (task) (increase(${selector(M.mixedFallbacks)}[$__range]))`, legend: '{{task}}' }],
        ),
      ],
    ],
    [
      'Registry',
      [
        timeseries(
          'Registry synced',
          '1 while the replica matches the shared registry state file; 0 while it serves its last good state.',
          'none',
          [{ expr: `min by (pod) (${selector(M.registrySynced)})`, legend: '{{pod}}' }],
          12,
        ),
        timeseries(
          'Registry staleness',
          'Seconds since the registry state file was last checked successfully, per replica.',
          's',
          [{ expr: `max by (pod) (${selector(M.registryStaleness)})`, legend: '{{pod}}' }],
          12,
        ),
      ],
    ],
    [
      'Per-replica routing',
      [
        timeseries(
          'Resident tasks',
          'Tasks with a delta in the replica cache (requests for them need no load), deltas cached (all versions, pinned included) and the capacity in deltas.',
          'none',
          [
            { expr: `sum by (pod) (${selector(M.deltaResident)})`, legend: 'resident {{pod}}' },
            { expr: `sum by (pod) (${selector(M.cacheEntries)})`, legend: 'cached deltas {{pod}}' },
            { expr: `sum by (pod) (${selector(M.cacheCapacityDeltas)})`, legend: 'capacity {{pod}}' },
          ],
        ),
        timeseries('Waiting tasks', 'Task versions whose delta is loading for waiting requests, per replica.', 'none', [
          { expr: `sum by (pod) (${selector(M.tasksWaiting)})`, legend: '{{pod}}' },
        ]),
        timeseries('Running requests', 'Requests in the batch each replica is running now.', 'none', [
          { expr: `sum by (pod) (${selector(M.requestsRunning)})`, legend: '{{pod}}' },
        ]),
      ],
    ],
  ];
}

/** The dashboard, as Grafana's JSON model. */
export function buildDashboard(): Dashboard {
  const readySeries = `${M.engineReady.name}{namespace=~"$namespace"}`;
  const builder = new DashboardBuilder('deltaserve')
    .uid(DASHBOARD_UID)
    .description(
      'Traffic and SLO, batching, delta cache, engine, registry and per-replica routing of the deltaserve gateway (docs/operations.md).',
    )
    .tags(['deltaserve', 'inference'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-3h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(variable('namespace', 'Namespace', `label_values(${M.engineReady.name}, namespace)`))
    .withVariable(variable('replica', 'Replica', `label_values(${readySeries}, pod)`))
    .withVariable(variable('task', 'Task', `label_values(${REQUESTS.name}_count{namespace=~"$namespace"}, task)`))
    .withVariable(
      variable('tenant', 'Tenant', `label_values(${REQUESTS.name}_count{namespace=~"$namespace"}, tenant)`),
    );
  for (const [title, panels] of sections()) {
    builder.withRow(new RowBuilder(title));
    for (const panel of panels) builder.withPanel(panel);
  }
  const dashboard = builder.build();
  // Stable ids, in layout order (the builder leaves them unset; Grafana links and repeats need them).
  (dashboard.panels ?? []).forEach((panel, i) => (panel.id = i + 1));
  return dashboard;
}

/** Every panel of the dashboard, rows' children included. */
export function panelsOf(dashboard: Dashboard): Panel[] {
  return (dashboard.panels ?? []).flatMap((p) =>
    (p as RowPanel).type === 'row' ? ((p as RowPanel).panels ?? []) : [p as Panel],
  );
}

/** Every PromQL expression of the dashboard's panels, with the panel's title. */
export function panelQueries(dashboard: Dashboard): { panel: string; expr: string }[] {
  return panelsOf(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((t) => ({ panel: panel.title ?? '', expr: (t as unknown as { expr: string }).expr })),
  );
}
