/**
 * Writes the chart's Grafana dashboard and Prometheus rules from code (scripts/ops/):
 *   helm/deltaserve/dashboards/deltaserve.json            the dashboard (Grafana JSON model)
 *   helm/deltaserve/alerts/deltaserve-rules.yaml          plain rules, default thresholds (promtool)
 *   helm/deltaserve/alerts/prometheusrule-groups.yaml     the same with Helm expressions (the chart)
 *
 *   npm run dashboards            # rewrite the files
 *   npm run dashboards -- --check # exit 1 if a committed file differs from the generated one
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from './ops/generate.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const check = process.argv.includes('--check');
let stale = 0;
for (const [path, text] of Object.entries(generatedFiles(root))) {
  if (check) {
    let current = '';
    try {
      current = readFileSync(`${root}/${path}`, 'utf8');
    } catch {
      // no committed file yet: it is stale
    }
    if (current !== text) {
      console.error(`${path} is not what scripts/dashboards.ts generates: run npm run dashboards`);
      stale++;
    }
  } else {
    writeFileSync(`${root}/${path}`, text);
    console.log(`wrote ${path}`);
  }
}
process.exit(stale === 0 ? 0 : 1);
