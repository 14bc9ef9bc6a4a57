/**
 * `/metrics` access and cost (issue 22, item 9): not anonymous by default (its labels name tenants
 * and tasks); a scraper key listed in telemetry.metricsKeySha256 or the admin key opens it, and
 * anything else is a 401 in our error shape; anonymous access only with an explicit
 * telemetry.metricsAnonymous: true. Concurrent scrapes share one render, so scrapers cannot
 * multiply the cost of rendering many tasks' series.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { sha256Hex } from '../../src/core/sha256.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { buildServer } from '../../src/server.js';
import { buildTelemetry, type Telemetry } from '../../src/telemetry/index.js';
import { SharedRender } from '../../src/http/routes/metrics-routes.js';
import {
  ADMIN_KEY,
  FakeEngine,
  TENANT_A_KEY,
  bearer,
  capturingLogger,
  listen,
  makeConfig,
  twoTenantRaw,
} from './fixtures.js';

const SCRAPER_KEY = 'the-scraper-key';
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const close of closers) await close();
});

async function gateway(
  telemetryConfig: Record<string, unknown>,
  telemetry: Telemetry = buildTelemetry({ serviceName: 't' }),
  onScrape: () => void = () => undefined,
) {
  const registry = await TaskRegistry.open({ declared: [], stateFile: null });
  const { app } = await buildServer(makeConfig(twoTenantRaw({ telemetry: telemetryConfig })), {
    engine: new FakeEngine(),
    registry,
    telemetry,
    logger: capturingLogger('silent').logger,
  });
  app.server.prependListener('request', (req: { url?: string }) => {
    if (req.url === '/metrics') onScrape();
  });
  const url = await listen(app);
  closers.push(() => app.close());
  const scrape = async (headers: Record<string, string> = {}) => {
    const response = await request(`${url}/metrics`, { headers });
    return { status: response.statusCode, text: await response.body.text(), type: response.headers['content-type'] };
  };
  return { scrape };
}

test('by default /metrics takes a scraper key or the admin key; no key, a tenant key or a wrong key get 401 in our error shape', async () => {
  const { scrape } = await gateway({ metricsKeySha256: [sha256Hex(SCRAPER_KEY)] });
  for (const [label, headers] of [
    ['no key', {}],
    ['a tenant key', bearer(TENANT_A_KEY)],
    ['an unknown key', bearer('not-a-key')],
    ['a malformed header', { authorization: SCRAPER_KEY }],
  ] as const) {
    const answer = await scrape(headers);
    assert.equal(answer.status, 401, `${label}: ${answer.text}`);
    const body = JSON.parse(answer.text) as { code: string; error: string };
    assert.equal(body.code, 'DS_ERR_UNAUTHENTICATED', label);
    assert.match(body.error, /scraper key \(telemetry\.metricsKeySha256\) or the admin key/);
    assert.doesNotMatch(answer.text, /tenant-a|deltaserve_/, `${label}: nothing of the metrics leaks`);
  }
  for (const key of [SCRAPER_KEY, ADMIN_KEY]) {
    const answer = await scrape(bearer(key));
    assert.equal(answer.status, 200, answer.text);
    assert.match(String(answer.type), /text\/plain/);
  }
});

test('with no scraper key configured the admin key still scrapes; anonymous access needs metricsAnonymous: true', async () => {
  const closed = await gateway({});
  assert.equal((await closed.scrape()).status, 401);
  assert.equal((await closed.scrape(bearer(ADMIN_KEY))).status, 200);
  const open = await gateway({ metricsAnonymous: true });
  assert.equal((await open.scrape()).status, 200);
});

test('concurrent scrapes with many tasks share one render', async () => {
  const telemetry = buildTelemetry({ serviceName: 't' });
  // 5,000 tasks' series, as in the issue's report.
  for (let i = 0; i < 5000; i++) {
    telemetry.recordRequest({ task: `task-${i}`, tenant: 'tenant-a', status: 200, seconds: 0.01 });
  }
  const SCRAPES = 12;
  // The render finishes only once every scrape has reached the server: all of them are concurrent.
  let arrived = 0;
  let allArrived: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (allArrived = resolve));
  const render = telemetry.renderPrometheus.bind(telemetry);
  let renders = 0;
  (telemetry as { renderPrometheus: () => Promise<string> }).renderPrometheus = async () => {
    renders++;
    await gate;
    return render();
  };
  const { scrape } = await gateway({ metricsKeySha256: [sha256Hex(SCRAPER_KEY)] }, telemetry, () => {
    if (++arrived === SCRAPES) allArrived();
  });
  const answers = await Promise.all(Array.from({ length: SCRAPES }, () => scrape(bearer(SCRAPER_KEY))));
  assert.ok(answers.every((a) => a.status === 200));
  assert.ok(
    answers.every((a) => a.text === answers[0]!.text),
    'every scrape got the same render',
  );
  assert.ok(answers[0]!.text.length > 100_000, `a render of ${answers[0]!.text.length} characters`);
  assert.equal(renders, 1, `${renders} renders for ${SCRAPES} concurrent scrapes`);
});

test('SharedRender: one render in flight for concurrent callers, reused within the interval, renders again after it', async () => {
  let clock = 0;
  let calls = 0;
  let release: (() => void) | undefined;
  const shared = new SharedRender(
    () => new Promise<string>((resolve) => (release = () => resolve(`render ${++calls}`))),
    1000,
    () => clock,
  );
  const first = [shared.get(), shared.get(), shared.get()];
  release!();
  assert.deepEqual(await Promise.all(first), ['render 1', 'render 1', 'render 1']);
  clock = 999;
  assert.equal(await shared.get(), 'render 1');
  clock = 1000;
  const again = shared.get();
  release!();
  assert.equal(await again, 'render 2');
  // A failed render is not cached: the next scrape tries again.
  const failing = new SharedRender(
    async () => {
      calls++;
      throw new Error('boom');
    },
    1000,
    () => clock,
  );
  await assert.rejects(failing.get(), /boom/);
  await assert.rejects(failing.get(), /boom/);
});
