/**
 * Three gateway processes on loopback sharing one registry state file (the "more than one
 * replica" set-up of the README): register, update and retire through different replicas and
 * every replica converges within the stated bound (`registry.pollIntervalMs`; one replica runs
 * with `registry.watch: false`, so the poll alone carries changes to it, as on a network
 * volume); a replica serves a task another one registered; a replica killed with SIGKILL in the
 * middle of a burst of changes loses no acknowledged change, leaves no half-written file, does
 * not block the others for longer than the lock's staleness, and after a restart all three agree.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { DEV_ADMIN_KEY, DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';
import { sha256Hex } from '../../src/core/sha256.js';
import { readRegistryState } from '../../src/registry/registry-state.js';
import { IMAGE_LABELS, biasDelta, writeDelta, writeImageModel, type DeltaFile } from './fixtures.js';
import { listeningUrl, serve, type Served } from '../helpers/gateway-process.js';

const POLL_MS = 300;
/** The stated bound (one poll interval) plus room for three processes on a loaded 2-core machine. */
const CONVERGE_MS = POLL_MS + 2500;
const LOCK_STALE_MS = 5000;

let dir: string;
let stateFile: string;
const deltas: DeltaFile[] = [];
const replicas: { served: Served; url: string }[] = [];
const admin = { authorization: `Bearer ${DEV_ADMIN_KEY}`, 'content-type': 'application/json' };

async function writeConfig(name: string, watch: boolean): Promise<string> {
  const path = join(dir, name);
  await writeFile(
    path,
    stringify({
      devMode: true,
      listen: { host: '127.0.0.1', port: 0 },
      model: { manifest: 'models/zoo.yaml' },
      engine: { intraOpThreads: 1 },
      registry: { stateFile: 'shared/registry.json', pollIntervalMs: POLL_MS, watch, lockStaleMs: LOCK_STALE_MS },
      tenants: [{ name: 'dev', keySha256: [sha256Hex(DEV_TENANT_KEY)], tasks: ['*'] }],
      admin: { keySha256: [sha256Hex(DEV_ADMIN_KEY)] },
      logLevel: 'warn',
      shutdownGraceMs: 2000,
    }),
  );
  return path;
}

async function start(config: string): Promise<{ served: Served; url: string }> {
  const served = serve(['--config', config], {});
  try {
    return { served, url: await listeningUrl(served) };
  } catch (error) {
    served.child.kill('SIGKILL');
    throw error;
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-replicas-'));
  stateFile = join(dir, 'shared', 'registry.json');
  await mkdir(join(dir, 'models', 'tasks'), { recursive: true });
  const model = await writeImageModel(join(dir, 'models'));
  for (const winner of [1, 2, 3, 4])
    deltas.push(
      await writeDelta(join(dir, 'models', 'tasks'), `d${winner}.safetensors`, biasDelta(model.fingerprint, winner)),
    );
  await writeFile(
    join(dir, 'models', 'zoo.yaml'),
    stringify({
      base: { model: 'image-model.onnx', fingerprint: model.fingerprint, labels: IMAGE_LABELS },
      tasks: [
        {
          name: 'rotated',
          version: '1',
          delta: 'tasks/d4.safetensors',
          sha256: deltas[3]!.sha256,
          labels: IMAGE_LABELS,
          numClasses: 10,
        },
      ],
    }),
  );
  const watching = await writeConfig('watching.yaml', true);
  const polling = await writeConfig('polling.yaml', false);
  replicas.push(...(await Promise.all([start(watching), start(watching), start(polling)])));
});

after(async () => {
  for (const { served } of replicas) served.child.kill('SIGKILL');
  await Promise.all(replicas.map(({ served }) => served.exit));
  await rm(dir, { recursive: true, force: true });
});

/** What a replica serves: every version, `*` on the default. */
async function registryOf(url: string): Promise<string> {
  const response = await request(`${url}/admin/tasks`, { headers: admin });
  assert.equal(response.statusCode, 200);
  const { tasks } = (await response.body.json()) as { tasks: { name: string; version: string; default: boolean }[] };
  return tasks
    .map((t) => `${t.name}@${t.version}${t.default ? '*' : ''}`)
    .sort()
    .join(' ');
}

/** Waits until every replica serves `expected`; returns how long it took. */
async function converged(expected: string, boundMs = CONVERGE_MS): Promise<number> {
  const start = Date.now();
  let seen: string[] = [];
  while (Date.now() - start <= boundMs) {
    seen = await Promise.all(replicas.map(({ url }) => registryOf(url)));
    if (seen.every((s) => s === expected)) return Date.now() - start;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return assert.fail(
    `replicas did not converge within ${boundMs} ms on ${JSON.stringify(expected)}: ${JSON.stringify(seen)}`,
  );
}

function taskBody(delta: DeltaFile, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ uri: `tasks/${delta.file}`, sha256: delta.sha256, labels: IMAGE_LABELS, ...extra });
}

async function classify(url: string, task: string): Promise<{ status: number; label?: string }> {
  const response = await request(`${url}/v1/tasks/${task}/classify?top=1`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEV_TENANT_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ image: Array.from({ length: 28 }, () => new Array<number>(28).fill(0)) }),
  });
  const body = (await response.body.json()) as { labels?: { label: string }[] };
  return { status: response.statusCode, ...(body.labels && { label: body.labels[0]!.label }) };
}

test('register, update, retire through different replicas: all three converge within the poll bound', async () => {
  const [r0, r1, r2] = replicas.map((r) => r.url) as [string, string, string];
  const t0 = Date.now();
  const lap = (what: string) => process.stdout.write(`# ${what} at ${Date.now() - t0} ms\n`);
  await converged('rotated@1*');
  lap('initial');

  const created = await request(`${r0}/admin/tasks`, {
    method: 'POST',
    headers: admin,
    body: taskBody(deltas[0]!, { name: 'gamma', version: '1' }),
  });
  assert.equal(created.statusCode, 201, await created.body.text());
  lap('registered');
  const tookRegister = await converged('gamma@1* rotated@1*');
  lap('converged');
  assert.deepEqual(
    await classify(r2, 'gamma'),
    { status: 200, label: 'one' },
    'a replica serves a task another one registered',
  );
  lap('classified');

  const updated = await request(`${r1}/admin/tasks/gamma`, {
    method: 'PUT',
    headers: admin,
    body: taskBody(deltas[1]!, { version: '2' }),
  });
  assert.equal(updated.statusCode, 201, await updated.body.text());
  const tookUpdate = await converged('gamma@1 gamma@2* rotated@1*');
  assert.deepEqual(await classify(r0, 'gamma'), { status: 200, label: 'two' });

  const retired = await request(`${r2}/admin/tasks/gamma?version=2`, {
    method: 'DELETE',
    headers: { authorization: admin.authorization },
  });
  assert.equal(retired.statusCode, 200, await retired.body.text());
  const tookRetire = await converged('gamma@1* rotated@1*');
  assert.deepEqual(await classify(r1, 'gamma'), { status: 200, label: 'one' });

  const ready = await request(`${r2}/v2/health/ready`);
  const body = (await ready.body.json()) as { ready: boolean; registry: { synced: boolean } };
  assert.equal(ready.statusCode, 200);
  assert.equal(body.registry.synced, true);
  const metrics = await (
    await request(`${r2}/metrics`, { headers: { authorization: admin.authorization } })
  ).body.text();
  assert.match(metrics, /^deltaserve_registry_synced 1$/m);
  assert.match(
    metrics,
    /^vllm:lora_requests_info\{max_lora="\d+",running_lora_adapters="[^"]*gamma[^"]*",waiting_lora_adapters=""\} \d/m,
  );
  process.stdout.write(
    `# converged in ${tookRegister} / ${tookUpdate} / ${tookRetire} ms (register / update / retire; poll ${POLL_MS} ms)\n`,
  );
});

test('kill -9 of a replica in the middle of changes: no acknowledged change lost, no torn file, restart converges', async () => {
  const victim = replicas[0]!;
  const names = Array.from({ length: 8 }, (_, i) => `burst${i}`);
  const outcomes = names.map((name) =>
    request(`${victim.url}/admin/tasks`, {
      method: 'POST',
      headers: admin,
      body: taskBody(deltas[2]!, { name, version: '1' }),
    }).then(
      async (response) => ({ name, status: response.statusCode, text: await response.body.text() }),
      () => ({ name, status: 0, text: 'connection lost' }),
    ),
  );
  // Kill it once the first change is acknowledged: the others are in flight (validating, waiting for the lock, or writing).
  await Promise.race(outcomes);
  victim.served.child.kill('SIGKILL');
  await victim.served.exit;
  const results = await Promise.all(outcomes);
  const acknowledged = results.filter((r) => r.status === 201).map((r) => r.name);
  assert.ok(
    acknowledged.length >= 1 && acknowledged.length < names.length,
    `the kill landed mid-burst: ${JSON.stringify(results.map((r) => r.status))}`,
  );

  // The file is whole (rename), and whatever the dead replica held, the others can write:
  // a lock it left behind is taken over once stale.
  const onDisk = await readRegistryState(stateFile);
  const started = Date.now();
  const after = await request(`${replicas[1]!.url}/admin/tasks`, {
    method: 'POST',
    headers: admin,
    body: taskBody(deltas[0]!, { name: 'after', version: '1' }),
  });
  assert.equal(after.statusCode, 201, await after.body.text());
  assert.ok(
    Date.now() - started < 2 * LOCK_STALE_MS + 5000,
    'a dead holder blocks writes for about the lock staleness at most',
  );

  replicas[0] = await start(join(dir, 'watching.yaml'));
  const final = await readRegistryState(stateFile);
  const registered = final.registered.map((t) => t.name);
  for (const name of [...acknowledged, 'after'])
    assert.ok(registered.includes(name), `acknowledged ${name} is in the file`);
  for (const name of onDisk.registered.map((t) => t.name))
    assert.ok(registered.includes(name), `${name} was not lost by the write after the kill`);
  const expected = await registryOf(replicas[1]!.url);
  for (const name of registered) assert.ok(expected.includes(`${name}@1`), `${name} is served`);
  await converged(expected);
  const unacknowledged = registered.filter((name) => name.startsWith('burst') && !acknowledged.includes(name)).length;
  process.stdout.write(
    `# killed with ${acknowledged.length}/${names.length} changes acknowledged; ${unacknowledged} more landed unacknowledged\n`,
  );
});
