/**
 * The alert rules, with Debian's promtool: `promtool check rules` on the generated rules file,
 * and `promtool test rules` with one firing and one quiet case per alert (test/ops/rule-cases.ts).
 * Without promtool these skip loudly (see prometheus-tools.ts); CI requires it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { RULES_FILE } from '../../scripts/ops/generate.js';
import { ROOT } from '../helpers/gateway-process.js';
import { requireBinary, skipWithoutPrometheus } from './prometheus-tools.js';
import { RULE_CASES, type RuleCase } from './rule-cases.js';

interface AlertRule {
  alert: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const RULES_PATH = join(ROOT, RULES_FILE);
const alerts = (parse(readFileSync(RULES_PATH, 'utf8')) as { groups: { rules: Partial<AlertRule>[] }[] }).groups
  .flatMap((g) => g.rules)
  .filter((r): r is AlertRule => r.alert !== undefined);
const skip = skipWithoutPrometheus('promtool');

/** The annotations Prometheus renders for `labels` (the rules use only `{{ $labels.name }}`). */
function rendered(annotations: Record<string, string>, labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(annotations).map(([key, text]) => {
      const out = text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? '');
      assert.doesNotMatch(out, /\{\{/, `${key} uses a template the test does not render: ${text}`);
      return [key, out];
    }),
  );
}

function promtoolTest(c: RuleCase, rule: AlertRule): object {
  const labels: Record<string, string> = { ...c.labels, severity: rule.labels.severity! };
  return {
    name: `${c.alert}: ${c.name}`,
    interval: '1m',
    input_series: c.series,
    alert_rule_test: [
      {
        eval_time: `${c.evalMinutes}m`,
        alertname: c.alert,
        exp_alerts: c.fires
          ? [{ exp_labels: labels, exp_annotations: rendered(rule.annotations, { ...labels, alertname: c.alert }) }]
          : [],
      },
    ],
  };
}

test('every alert has a promtool case that fires it and one that stays quiet', () => {
  for (const rule of alerts) {
    const cases = RULE_CASES.filter((c) => c.alert === rule.alert);
    assert.ok(
      cases.some((c) => c.fires),
      `${rule.alert} has no firing case`,
    );
    assert.ok(
      cases.some((c) => !c.fires),
      `${rule.alert} has no quiet case`,
    );
  }
  const unknown = RULE_CASES.filter((c) => !alerts.some((r) => r.alert === c.alert));
  assert.deepEqual(
    unknown.map((c) => c.alert),
    [],
    'cases for alerts the rules do not have',
  );
  assert.ok(alerts.length >= 11, `only ${alerts.length} alerts`);
});

test('promtool check rules accepts the generated rules file', { skip }, () => {
  const result = spawnSync(requireBinary('promtool'), ['check', 'rules', RULES_PATH], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: each alert fires on series that should fire it and stays quiet otherwise', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'deltaserve-promtool-'));
  try {
    const file = join(dir, 'tests.yaml');
    const tests = RULE_CASES.map((c) =>
      promtoolTest(
        c,
        alerts.find((r) => r.alert === c.alert)!,
      ),
    );
    writeFileSync(file, stringify({ rule_files: [RULES_PATH], evaluation_interval: '1m', tests }, { lineWidth: 0 }));
    const result = spawnSync(requireBinary('promtool'), ['test', 'rules', file], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promtool test rules fails a case whose expectation is wrong (the harness can fail)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'deltaserve-promtool-'));
  try {
    const file = join(dir, 'tests.yaml');
    const quiet = RULE_CASES.find((c) => c.alert === 'DeltaserveNotReady' && !c.fires)!;
    const wrong = promtoolTest(
      { ...quiet, fires: true },
      alerts.find((r) => r.alert === quiet.alert)!,
    );
    writeFileSync(file, stringify({ rule_files: [RULES_PATH], evaluation_interval: '1m', tests: [wrong] }));
    const result = spawnSync(requireBinary('promtool'), ['test', 'rules', file], { encoding: 'utf8' });
    assert.notEqual(result.status, 0, 'promtool passed a firing expectation on series that cannot fire');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
