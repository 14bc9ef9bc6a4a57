/**
 * The generated operations files are current, and the runbook (docs/operations.md) matches the
 * rules and the dashboard: a section per alert at the anchor its runbook_url names, and every
 * panel the runbook or an alert tells the operator to open exists on the dashboard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runbookAnchor, ruleGroupsWithPlaceholders, type AlertRule } from '../../scripts/ops/alert-rules.js';
import { buildDashboard, panelQueries, panelsOf } from '../../scripts/ops/dashboard.js';
import { generatedFiles } from '../../scripts/ops/generate.js';
import { METRICS } from '../../src/telemetry/metric-names.js';
import { ROOT } from '../helpers/gateway-process.js';

const RUNBOOK = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
const alerts = ruleGroupsWithPlaceholders()
  .flatMap((g) => g.rules)
  .filter((r): r is AlertRule => 'alert' in r);
const dashboard = buildDashboard();
const titles = new Set([
  ...panelsOf(dashboard).map((p) => p.title),
  ...(dashboard.panels ?? []).filter((p) => p.type === 'row').map((p) => p.title),
]);
const quoted = (text: string) => [...text.matchAll(/"([^"]+)"/g)].map((m) => m[1]!.replace(/\s+/g, ' '));

test('the committed dashboard and rules files are what `npm run dashboards` generates', () => {
  for (const [path, text] of Object.entries(generatedFiles(ROOT))) {
    assert.equal(readFileSync(join(ROOT, path), 'utf8'), text, `${path} is stale: run npm run dashboards`);
  }
});

test('every alert has a runbook section at its runbook_url anchor, saying what to open, why and what to do', () => {
  const sections = RUNBOOK.split(/^### /m).slice(1);
  for (const rule of alerts) {
    assert.ok(rule.annotations.runbook_url.endsWith(`#${runbookAnchor(rule.alert)}`));
    const section = sections.find((s) => s.startsWith(`${rule.alert}\n`));
    assert.ok(section, `docs/operations.md has no "### ${rule.alert}" section`);
    for (const part of ['**Means**', '**Open**', '**Likely causes**', '**Do**'])
      assert.ok(section.includes(part), `${rule.alert}: no ${part}`);
    const open = /\*\*Open\*\*:([\s\S]*?)\n\n/.exec(section)![1]!;
    const panels = quoted(open);
    assert.ok(panels.length > 0, `${rule.alert}: its runbook names no panel`);
    for (const panel of panels)
      assert.ok(titles.has(panel), `${rule.alert}'s runbook names a panel "${panel}" the dashboard lacks`);
  }
  // A GitHub-style anchor is the heading in lower case: the headings are exactly the alert names.
  const headings = [...RUNBOOK.matchAll(/^### (\S+)$/gm)].map((m) => m[1]!);
  assert.deepEqual(headings.sort(), alerts.map((a) => a.alert).sort());
});

test("each alert's description names panels that exist", () => {
  for (const rule of alerts) {
    const panels = quoted(rule.annotations.description);
    assert.ok(panels.length > 0, `${rule.alert} names no panel to open`);
    for (const panel of panels)
      assert.ok(titles.has(panel), `${rule.alert} names a panel "${panel}" the dashboard lacks`);
  }
});

test("the runbook's dashboard table lists every panel, and only panels", () => {
  const table = RUNBOOK.slice(
    RUNBOOK.indexOf('| Row | Panels |'),
    RUNBOOK.indexOf('\n\n', RUNBOOK.indexOf('| Row | Panels |')),
  );
  const listed = new Set(quoted(table));
  const panels = panelsOf(dashboard).map((p) => p.title!);
  assert.deepEqual(
    [...listed].filter((t) => !titles.has(t)),
    [],
    'the table names panels the dashboard lacks',
  );
  assert.deepEqual(
    panels.filter((t) => !listed.has(t)),
    [],
    'panels the table does not describe',
  );
});

test('the dashboard graphs every metric the gateway exports', () => {
  const exprs = panelQueries(dashboard)
    .map((q) => q.expr)
    .join('\n');
  const missing = Object.values(METRICS)
    .map((m) => m.name)
    .filter((name) => !exprs.includes(name));
  assert.deepEqual(missing, []);
});
