/**
 * The router-facing exposition: our own gauges and the vLLM-named ones the Gateway API Inference
 * Extension's endpoint picker reads, from the same snapshot, parsed back from the text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTelemetry, METRICS, type RoutingSnapshot, type Telemetry } from '../../src/telemetry/index.js';
import { parseSamples, valueOf } from './prometheus-text.js';

async function withTelemetry(run: (telemetry: Telemetry) => Promise<void>): Promise<void> {
  const telemetry = buildTelemetry({ serviceName: 'deltaserve-test' });
  try {
    await run(telemetry);
  } finally {
    await telemetry.shutdown();
  }
}

const snapshot = (over: Partial<RoutingSnapshot> = {}): RoutingSnapshot => ({
  residentKeys: ['shoes@1', 'shoes@2', 'shirts@1', '@base'],
  residentBytes: 300,
  capacityBytes: 1000,
  queued: 5,
  running: 2,
  registeredTasks: 7,
  ...over,
});

/** The one `vllm:lora_requests_info` sample's labels and value. */
function loraInfo(text: string): { labels: Record<string, string>; value: number } {
  const samples = parseSamples(text).filter((s) => s.name === 'vllm:lora_requests_info');
  assert.equal(samples.length, 1, 'exactly one lora_requests_info series');
  return { labels: { ...samples[0]!.labels }, value: samples[0]!.value };
}

test('resident and waiting tasks, capacity and queue under our names and vLLM names', () =>
  withTelemetry(async (telemetry) => {
    let current = snapshot();
    telemetry.observeRouting(() => current);
    telemetry.recordEngineEvent({ type: 'cache', kind: 'miss', key: 'pants@1' });

    const before = Date.now() / 1000;
    const text = await telemetry.renderPrometheus();
    const samples = parseSamples(text);
    assert.equal(valueOf(samples, METRICS.deltaResident.name, { task: 'shoes' }), 1);
    assert.equal(valueOf(samples, METRICS.deltaResident.name, { task: 'shirts' }), 1);
    assert.equal(valueOf(samples, METRICS.deltaResident.name, { task: 'base' }), undefined, 'the base is not a delta');
    assert.equal(valueOf(samples, METRICS.tasksWaiting.name), 1);
    assert.equal(valueOf(samples, METRICS.cacheCapacityBytes.name), 1000);
    assert.equal(valueOf(samples, METRICS.cacheCapacityDeltas.name), 10, '1000 bytes at a mean of 100 per delta');
    assert.equal(valueOf(samples, METRICS.requestsRunning.name), 2);

    assert.equal(valueOf(samples, 'vllm:num_requests_waiting'), 5);
    assert.equal(valueOf(samples, 'vllm:num_requests_running'), 2);
    const info = loraInfo(text);
    assert.deepEqual(info.labels, {
      max_lora: '10',
      running_lora_adapters: 'shirts,shoes',
      waiting_lora_adapters: 'pants',
    });
    assert.ok(
      info.value >= before - 1 && info.value <= Date.now() / 1000 + 1,
      'the value is the update time in seconds',
    );
    assert.match(text, /^# TYPE vllm:lora_requests_info gauge$/m);

    // pants loads, shoes leaves the cache: its series reads 0 rather than freezing at 1.
    telemetry.recordEngineEvent({
      type: 'cache',
      kind: 'load',
      key: 'pants@1',
      bytes: 100,
      fileBytes: 100,
      ms: 1,
      phases: { fetch: 1, verify: 0, decode: 0 },
    });
    current = snapshot({ residentKeys: ['shirts@1', 'pants@1'], residentBytes: 200 });
    const after = parseSamples(await telemetry.renderPrometheus());
    assert.equal(valueOf(after, METRICS.deltaResident.name, { task: 'shoes' }), 0);
    assert.equal(valueOf(after, METRICS.deltaResident.name, { task: 'pants' }), 1);
    assert.equal(valueOf(after, METRICS.tasksWaiting.name), 0);
    assert.deepEqual(loraInfo(await telemetry.renderPrometheus()).labels.waiting_lora_adapters, '');
  }));

test('before any delta is loaded max_lora is the registered task count; a failing source sends no stale vLLM lines', () =>
  withTelemetry(async (telemetry) => {
    let fail = false;
    telemetry.observeRouting(() => {
      if (fail) throw new Error('worker restarting');
      return snapshot({ residentKeys: [], residentBytes: 0 });
    });
    assert.deepEqual(loraInfo(await telemetry.renderPrometheus()).labels, {
      max_lora: '7',
      running_lora_adapters: '',
      waiting_lora_adapters: '',
    });
    fail = true;
    assert.doesNotMatch(await telemetry.renderPrometheus(), /^vllm:/m);
  }));

test('without a routing source there are no vLLM lines; registry sync is reported when there is a state file', () =>
  withTelemetry(async (telemetry) => {
    assert.doesNotMatch(await telemetry.renderPrometheus(), /vllm:/);
    telemetry.observeRegistrySync(() => ({ synced: false, lastSyncAt: Date.now() - 4000 }));
    const samples = parseSamples(await telemetry.renderPrometheus());
    assert.equal(valueOf(samples, METRICS.registrySynced.name), 0);
    const staleness = valueOf(samples, METRICS.registryStaleness.name)!;
    assert.ok(staleness >= 4 && staleness < 60, `staleness ${staleness}`);
  }));
