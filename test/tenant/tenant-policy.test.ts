import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TaskSpec, TenantConfig } from '../../src/core/config-types.js';
import { SeededRng } from '../../src/core/rng.js';
import { TaskRegistry } from '../../src/registry/task-registry.js';
import { TenantPolicy, type ResolveContext } from '../../src/tenant/tenant-policy.js';

const spec = (name: string, version: string): TaskSpec => ({
  name,
  version,
  uri: `${name}.st`,
  sha256: 'a'.repeat(64),
  description: '',
  labels: null,
  numClasses: null,
});

async function context(): Promise<ResolveContext> {
  const registry = await TaskRegistry.open({
    declared: [spec('shoes', '1'), spec('shoes', '2'), spec('shirts', '1'), spec('secret', '1')],
    stateFile: null,
  });
  return { registry, baseVersion: 'abc123' };
}

function tenant(patch: Partial<TenantConfig> = {}, seed = 1): TenantPolicy {
  return new TenantPolicy(
    {
      name: 't',
      keySha256: ['0'.repeat(64)],
      tasks: [],
      aliases: {},
      splits: {},
      rateLimit: null,
      maxConcurrent: null,
      priority: 0,
      ...patch,
    },
    new SeededRng(seed),
  );
}

test('only listed tasks resolve; others resolve exactly like missing ones (null)', async () => {
  const ctx = await context();
  const policy = tenant({ tasks: ['shoes'] });
  assert.equal(policy.resolve(ctx, 'shoes')?.task?.key, 'shoes@2');
  assert.equal(policy.resolve(ctx, 'shoes', '1')?.task?.key, 'shoes@1');
  assert.equal(policy.resolve(ctx, 'secret'), null);
  assert.equal(policy.resolve(ctx, 'nonexistent'), null);
  assert.equal(policy.resolve(ctx, 'shoes', '7'), null);
  assert.equal(policy.resolve(ctx, 'base'), null, 'base must be listed too');
  assert.deepEqual(policy.visibleNames(ctx), ['shoes']);
  assert.deepEqual(policy.visibleVersions(ctx, 'secret'), []);
});

test('"*" sees every registered task and the base; base answers to its own version only', async () => {
  const ctx = await context();
  const policy = tenant({ tasks: ['*'] });
  assert.deepEqual(policy.visibleNames(ctx), ['base', 'secret', 'shirts', 'shoes']);
  assert.deepEqual(policy.resolve(ctx, 'base'), { visibleName: 'base', task: null, version: 'abc123' });
  assert.equal(policy.resolve(ctx, 'base', 'abc123')?.task, null);
  assert.equal(policy.resolve(ctx, 'base', '1'), null);
});

test('aliases grant access to their target; pinned aliases serve only their version', async () => {
  const ctx = await context();
  const policy = tenant({ tasks: [], aliases: { footwear: 'shoes@1', tops: 'shirts', ghost: 'gone@1' } });
  assert.deepEqual(policy.resolve(ctx, 'footwear'), {
    visibleName: 'footwear',
    task: ctx.registry.get('shoes', '1')!,
    version: '1',
  });
  assert.equal(policy.resolve(ctx, 'footwear', '1')?.version, '1');
  assert.equal(policy.resolve(ctx, 'footwear', '2'), null);
  assert.equal(policy.resolve(ctx, 'tops')?.task?.key, 'shirts@1');
  assert.equal(policy.resolve(ctx, 'shoes'), null, 'the alias does not expose the task under its own name');
  assert.deepEqual(policy.visibleNames(ctx), ['footwear', 'tops'], 'an alias to a missing task is hidden');
  assert.deepEqual(policy.visibleVersions(ctx, 'footwear'), ['1']);
});

test('a 90/10 split lands within statistical tolerance over 2000 draws', async () => {
  const ctx = await context();
  const policy = tenant({ tasks: ['shoes'], splits: { shoes: { '1': 90, '2': 10 } } }, 42);
  let canary = 0;
  const draws = 2000;
  for (let i = 0; i < draws; i++) if (policy.resolve(ctx, 'shoes')!.version === '2') canary++;
  // Binomial(2000, 0.1): sd ≈ 13.4; ±5 sd.
  assert.ok(Math.abs(canary - 200) <= 67, `canary got ${canary} of ${draws}`);
});

test('split by request id is sticky and still follows the weights across ids', async () => {
  const ctx = await context();
  const policy = tenant({ tasks: ['shoes'], splits: { shoes: { '1': 75, '2': 25 } } });
  let two = 0;
  for (let i = 0; i < 2000; i++) {
    const id = `request-${i}`;
    const first = policy.resolve(ctx, 'shoes', undefined, id)!.version;
    assert.equal(policy.resolve(ctx, 'shoes', undefined, id)!.version, first, id);
    if (first === '2') two++;
  }
  // Binomial(2000, 0.25): sd ≈ 19.4; ±5 sd.
  assert.ok(Math.abs(two - 500) <= 97, `version 2 got ${two} of 2000`);
  const other = tenant({
    name: 'other',
    tasks: ['shoes'],
    splits: { shoes: { '1': 75, '2': 25 } },
  });
  let differs = 0;
  for (let i = 0; i < 200; i++)
    if (
      other.resolve(ctx, 'shoes', undefined, `request-${i}`)!.version !==
      policy.resolve(ctx, 'shoes', undefined, `request-${i}`)!.version
    )
      differs++;
  assert.ok(differs > 0, 'tenants hash ids independently');
});

test('a split over versions that no longer exist falls back to the default version', async () => {
  const ctx = await context();
  const policy = tenant({ tasks: ['shoes'], splits: { shoes: { '3': 50, '4': 50 } } });
  assert.equal(policy.resolve(ctx, 'shoes')?.version, '2');
  const partial = tenant({ tasks: ['shoes'], splits: { shoes: { '1': 50, '9': 50 } } });
  for (let i = 0; i < 50; i++) assert.equal(partial.resolve(ctx, 'shoes')?.version, '1');
  assert.equal(policy.resolve(ctx, 'shoes', '1')?.version, '1', 'an explicit version bypasses the split');
});

test('rate limit and concurrency slots', () => {
  const policy = tenant({ rateLimit: { requestsPerSecond: 2, burst: 3 }, maxConcurrent: 2 }, 1);
  const now = Date.now() + 10_000; // the bucket starts full whatever the clock says
  assert.deepEqual(
    [1, 2, 3].map(() => policy.takeToken(now).ok),
    [true, true, true],
  );
  const refused = policy.takeToken(now);
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.retryAfterSeconds, 1);
  assert.equal(policy.takeToken(now + 500).ok, true, 'one token back after 1/rate s');
  const a = policy.acquireSlot();
  const b = policy.acquireSlot();
  assert.ok(a && b);
  assert.equal(policy.acquireSlot(), null);
  a();
  a();
  assert.equal(policy.inFlight, 1, 'release is idempotent');
  assert.ok(policy.acquireSlot());
  assert.deepEqual(tenant().takeToken(0), { ok: true }, 'no limit configured');
});
