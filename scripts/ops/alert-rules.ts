/**
 * The gateway's Prometheus alerting and recording rules, written against the metric names in
 * src/telemetry/metric-names.ts (a renamed metric fails the typecheck, not an alert silently).
 *
 * One builder, two outputs (scripts/dashboards.ts writes both):
 *   - helm/deltaserve/alerts/deltaserve-rules.yaml: a plain Prometheus rules file with the
 *     chart's default thresholds (values.yaml `alerts.thresholds`), for promtool and for a
 *     Prometheus run without the operator;
 *   - helm/deltaserve/alerts/prometheusrule-groups.yaml: the same groups with each threshold as
 *     a Helm expression, rendered by templates/prometheusrule.yaml through `tpl`.
 * The thresholds are placeholders (`@@name@@`) while the rules are built, replaced by a number
 * or by a Helm expression afterwards, so both files come from the same objects.
 *
 * SLO alerts follow the Google SRE workbook's multiwindow, multi-burn-rate alerts (chapter
 * "Alerting on SLOs", table 5-8): page when 2 % of a 30-day error budget burns in 1 h (14.4 ×)
 * or 5 % in 6 h (6 ×), ticket when 10 % burns in 3 d (1 ×) or in 1 d (3 ×); each long window
 * is paired with a short one (1/12 of it) so the alert stops soon after the burn does.
 */
import { METRICS } from '../../src/telemetry/metric-names.js';

/** Thresholds an operator tunes: values.yaml `alerts.thresholds`, one key each. */
export const THRESHOLD_KEYS = [
  'availabilityTarget',
  'latencyTarget',
  'latencySeconds',
  'cacheHitRatioBelow',
  'cacheActivationsPerSecondAbove',
  'deltaLoadFailuresAbove',
  'engineRestartsAbove',
  'registryStalenessSecondsAbove',
  'shedRatioAbove',
  'eventLoopDelaySecondsAbove',
] as const;
export type ThresholdKey = (typeof THRESHOLD_KEYS)[number];
/** Each threshold (and the runbook base URL) as the text that goes into a rule. */
export type RuleParameters = Record<ThresholdKey | 'runbookBaseUrl', string>;

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: { readonly severity: 'critical' | 'warning' };
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook_url: string };
}
export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
}
export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly (AlertRule | RecordingRule)[];
}

/** Labels an SLO is computed over: one deployment. */
const SERVICE = 'namespace, job';
/** Labels of one replica (pod under the operator, instance elsewhere). */
const REPLICA = 'namespace, job, pod, instance';

const REQUESTS = `${METRICS.requestDuration.name}_count`;
const REQUEST_BUCKETS = `${METRICS.requestDuration.name}_bucket`;

/** Burn-rate windows: [long, short, burn factor, severity]. */
const BURN_WINDOWS = [
  { long: '1h', short: '5m', factor: 14.4, severity: 'critical' },
  { long: '6h', short: '30m', factor: 6, severity: 'critical' },
  { long: '1d', short: '2h', factor: 3, severity: 'warning' },
  { long: '3d', short: '6h', factor: 1, severity: 'warning' },
] as const;
const RATE_WINDOWS = [...new Set(BURN_WINDOWS.flatMap((w) => [w.long, w.short]))];

/** Recorded SLI ratios: the share of requests that broke the SLO over `window`. */
export const RECORDED = {
  errors: (window: string) => `deltaserve:request_errors:ratio_rate${window}`,
  slow: (window: string) => `deltaserve:request_slow:ratio_rate${window}`,
};

/** The runbook section of an alert: docs/operations.md, one heading per alert. */
export function runbookAnchor(alert: string): string {
  return alert.toLowerCase();
}

function placeholders(): RuleParameters {
  const keys = [...THRESHOLD_KEYS, 'runbookBaseUrl'] as const;
  return Object.fromEntries(keys.map((k) => [k, `@@${k}@@`])) as RuleParameters;
}

function alert(
  p: RuleParameters,
  name: string,
  rule: Omit<AlertRule, 'alert' | 'annotations' | 'labels'> & {
    severity: 'critical' | 'warning';
    summary: string;
    description: string;
  },
): AlertRule {
  return {
    alert: name,
    expr: rule.expr,
    ...(rule.for !== undefined && { for: rule.for }),
    labels: { severity: rule.severity },
    annotations: {
      summary: rule.summary,
      description: rule.description,
      runbook_url: `${p.runbookBaseUrl}#${runbookAnchor(name)}`,
    },
  };
}

function sloGroup(p: RuleParameters): RuleGroup {
  const rules: RecordingRule[] = RATE_WINDOWS.flatMap((w) => [
    {
      record: RECORDED.errors(w),
      expr:
        `sum by (${SERVICE}) (rate(${REQUESTS}{status=~"5.."}[${w}])) / ` +
        `sum by (${SERVICE}) (rate(${REQUESTS}[${w}]))`,
    },
    {
      record: RECORDED.slow(w),
      expr:
        `1 - sum by (${SERVICE}) (rate(${REQUEST_BUCKETS}{status!~"5..",le="${p.latencySeconds}"}[${w}])) / ` +
        `sum by (${SERVICE}) (rate(${REQUESTS}{status!~"5.."}[${w}]))`,
    },
  ]);
  const burn = (sli: (w: string) => string, budget: string, severity: 'critical' | 'warning') =>
    BURN_WINDOWS.filter((w) => w.severity === severity)
      .map((w) => `(${sli(w.long)} > (${w.factor} * ${budget}) and ${sli(w.short)} > (${w.factor} * ${budget}))`)
      .join(' or ');
  const availabilityBudget = `(1 - ${p.availabilityTarget})`;
  const latencyBudget = `(1 - ${p.latencyTarget})`;
  const windows = (severity: string) =>
    BURN_WINDOWS.filter((w) => w.severity === severity)
      .map((w) => `${w.factor}× over ${w.long} and ${w.short}`)
      .join(', or ');
  const alerts: AlertRule[] = [
    alert(p, 'DeltaserveAvailabilityBudgetBurnFast', {
      expr: burn(RECORDED.errors, availabilityBudget, 'critical'),
      for: '2m',
      severity: 'critical',
      summary: 'deltaserve {{ $labels.namespace }}/{{ $labels.job }} is burning its availability error budget fast.',
      description: `The share of 5xx answers is burning the ${p.availabilityTarget} availability SLO's 30-day budget at ${windows('critical')}: the budget is gone in days at this rate. Open the dashboard's "Errors by status" and "Requests by task" panels: which status (503 shed or engine not ready, 500), which task, which replica.`,
    }),
    alert(p, 'DeltaserveAvailabilityBudgetBurnSlow', {
      expr: burn(RECORDED.errors, availabilityBudget, 'warning'),
      for: '15m',
      severity: 'warning',
      summary: 'deltaserve {{ $labels.namespace }}/{{ $labels.job }} is slowly burning its availability error budget.',
      description: `5xx answers burn the ${p.availabilityTarget} availability SLO's 30-day budget at ${windows('warning')}. Open "Errors by status" over the last days: a steady trickle of 503s (shedding, delta loads) or 500s.`,
    }),
    alert(p, 'DeltaserveLatencyBudgetBurnFast', {
      expr: burn(RECORDED.slow, latencyBudget, 'critical'),
      for: '2m',
      severity: 'critical',
      summary:
        'deltaserve {{ $labels.namespace }}/{{ $labels.job }} answers too many requests slower than the latency SLO.',
      description: `More than the budget of requests take longer than ${p.latencySeconds} s (SLO: ${p.latencyTarget} of them faster), at ${windows('critical')}. Open "Latency by task", "Queue wait" and the delta cache row: queueing, cold delta loads or a saturated replica.`,
    }),
    alert(p, 'DeltaserveLatencyBudgetBurnSlow', {
      expr: burn(RECORDED.slow, latencyBudget, 'warning'),
      for: '15m',
      severity: 'warning',
      summary: 'deltaserve {{ $labels.namespace }}/{{ $labels.job }} is slowly burning its latency error budget.',
      description: `Requests slower than ${p.latencySeconds} s burn the latency SLO's budget (${p.latencyTarget} faster) at ${windows('warning')}. Open "Latency by task" and "Queue wait" over the last days.`,
    }),
  ];
  return { name: 'deltaserve-slo', rules: [...rules, ...alerts] };
}

function replicaGroup(p: RuleParameters): RuleGroup {
  const rate = (metric: string, window = '5m') => `sum by (${REPLICA}) (rate(${metric}[${window}]))`;
  // Aggregated by replica so each alert carries the same labels (and `or` never joins two series of one replica).
  const max = (series: string) => `max by (${REPLICA}) (${series})`;
  // Events of a counter in `window`. The gateway creates a counter at its first event (value 1,
  // so `increase` misses that one): a series younger than the window counts whole.
  const events = (metric: string, window: string, by: string) =>
    `sum by (${by}) ((${metric} unless ${metric} offset ${window}) or increase(${metric}[${window}]))`;
  const hits = rate(METRICS.cacheHits.name);
  const misses = rate(METRICS.cacheMisses.name);
  return {
    name: 'deltaserve-replica',
    rules: [
      alert(p, 'DeltaserveDeltaCacheThrashing', {
        expr:
          `(${hits} / (${hits} + ${misses}) < ${p.cacheHitRatioBelow}) ` +
          `and (${rate(METRICS.activations.name)} > ${p.cacheActivationsPerSecondAbove})`,
        for: '15m',
        severity: 'warning',
        summary:
          'deltaserve replica {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.instance }}) keeps reloading deltas: its cache is thrashing.',
        description: `The delta cache hit ratio is below ${p.cacheHitRatioBelow} while tasks switch more than ${p.cacheActivationsPerSecondAbove} times a second: most requests wait for a delta load. Open the "Delta cache" row ("Cache hit ratio", "Resident bytes vs capacity", "Evictions") and "Resident tasks": the working set is larger than engine.cacheBytes, or requests are not routed by task.`,
      }),
      alert(p, 'DeltaserveDeltaLoadFailures', {
        expr: `${events(METRICS.deltaLoadFailures.name, '10m', `${REPLICA}, task`)} > ${p.deltaLoadFailuresAbove}`,
        severity: 'warning',
        summary:
          'deltaserve cannot load the delta of task {{ $labels.task }} on {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.instance }}).',
        description: `More than ${p.deltaLoadFailuresAbove} loads of this task's delta failed in 10 minutes (fetch, checksum or decode error); its requests answer 503. Open "Delta load failures" and the gateway's log (DS_ERR_SOURCE_* codes name the cause).`,
      }),
      alert(p, 'DeltaserveEngineRestarts', {
        expr: `${events(METRICS.engineRestarts.name, '15m', REPLICA)} > ${p.engineRestartsAbove}`,
        severity: 'warning',
        summary:
          'The engine worker of deltaserve {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.instance }}) restarted.',
        description: `The engine worker was replaced more than ${p.engineRestartsAbove} times in 15 minutes: it crashed (or ran out of memory) and every request in flight failed with 503; the restart empties the delta cache. Open "Engine restarts" and "Engine ready", and the gateway log around that time (the requests in flight failed with DS_ERR_ENGINE_CRASHED).`,
      }),
      alert(p, 'DeltaserveRegistryStale', {
        expr: `(${max(METRICS.registrySynced.name)} == 0) or (${max(METRICS.registryStaleness.name)} > ${p.registryStalenessSecondsAbove})`,
        for: '5m',
        severity: 'warning',
        summary:
          'deltaserve {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.instance }}) serves a stale task registry.',
        description: `The replica cannot read (or validate) the shared registry state file, or has not checked it for more than ${p.registryStalenessSecondsAbove} s: it serves its last good state, so tasks registered or retired through other replicas are not seen here. Open the "Registry" row, and the readiness body of the replica (its registry part says synced: false).`,
      }),
      alert(p, 'DeltaserveNotReady', {
        expr: `${max(METRICS.engineReady.name)} == 0`,
        for: '10m',
        severity: 'critical',
        summary:
          'deltaserve {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.instance }}) has not been ready for 10 minutes.',
        description: `The engine worker is down or still loading the base model, so the replica answers 503 and readiness fails. Open "Engine ready" and "Engine restarts", and the pod's events and log (DS_ERR_ENGINE_START_FAILED, out of memory).`,
      }),
      alert(p, 'DeltaserveShedding', {
        expr:
          `sum by (${REPLICA}) (rate(${METRICS.queueDropped.name}{reason="overloaded"}[5m])) / ` +
          `sum by (${REPLICA}) (rate(${REQUESTS}[5m])) > ${p.shedRatioAbove}`,
        for: '10m',
        severity: 'warning',
        summary: 'deltaserve {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.instance }}) is shedding load.',
        description: `More than ${p.shedRatioAbove} of requests are refused because the scheduler queues are full (503 DS_ERR_OVERLOADED). Open "Shed requests" and "Queue wait": add replicas (autoscaling.queueDepth) or lower the offered rate.`,
      }),
      alert(p, 'DeltaserveEventLoopBlocked', {
        expr: `${max(`${METRICS.eventLoopDelay.name}{quantile="0.99"}`)} > ${p.eventLoopDelaySecondsAbove}`,
        for: '10m',
        severity: 'warning',
        summary:
          'The HTTP thread of deltaserve {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.instance }}) is blocked.',
        description: `The p99 event-loop delay of the HTTP thread is above ${p.eventLoopDelaySecondsAbove} s: something blocks the thread that parses requests and answers health checks (inference runs elsewhere). Open "Event-loop delay": CPU limits throttling the pod, very large request bodies, or a bug.`,
      }),
    ],
  };
}

/** The rule groups, with `p` in place of every threshold. */
export function ruleGroups(p: RuleParameters): RuleGroup[] {
  return [sloGroup(p), replicaGroup(p)];
}

/** The groups with placeholders, for both renderings. */
export function ruleGroupsWithPlaceholders(): RuleGroup[] {
  return ruleGroups(placeholders());
}

/** Replaces every `@@name@@` placeholder in `text`. */
export function fillPlaceholders(text: string, value: (key: keyof RuleParameters) => string): string {
  return text.replace(/@@(\w+)@@/g, (_, key: string) => value(key as keyof RuleParameters));
}

/** Prometheus template actions (`{{ $labels.pod }}`) made literal for Helm's `tpl`. */
export function escapeForHelm(text: string): string {
  return text.replace(/\{\{.*?\}\}/g, (action) => `{{\`${action}\`}}`);
}
