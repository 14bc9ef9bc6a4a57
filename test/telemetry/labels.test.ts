import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedLabels, taskNameOfKey } from '../../src/telemetry/labels.js';
import { parseTraceparent } from '../../src/telemetry/traceparent.js';

const KEYS: Array<[key: string | null, task: string]> = [
  [null, 'base'],
  ['@base', 'base'],
  ['sentiment@3', 'sentiment'],
  ['sentiment@2025-01-01', 'sentiment'],
  ['org/task@v1', 'org/task'],
  ['plain', 'plain'],
];

for (const [key, task] of KEYS) {
  test(`taskNameOfKey(${JSON.stringify(key)}) is ${task}`, () => {
    assert.equal(taskNameOfKey(key), task);
  });
}

test('BoundedLabels: null and empty are unknown; the first `limit` values pass, later new ones are other', () => {
  const labels = new BoundedLabels(2);
  assert.equal(labels.label(null), 'unknown');
  assert.equal(labels.label(undefined), 'unknown');
  assert.equal(labels.label(''), 'unknown');
  assert.equal(labels.label('a'), 'a');
  assert.equal(labels.label('b'), 'b');
  assert.equal(labels.label('c'), 'other');
  assert.equal(labels.label('a'), 'a', 'a value seen before the limit keeps its label');
  assert.equal(labels.label(null), 'unknown', 'unknown does not count against the limit');
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

const TRACEPARENTS: Array<[header: string, expected: { traceFlags: number } | null]> = [
  [`00-${TRACE_ID}-${SPAN_ID}-01`, { traceFlags: 1 }],
  [`00-${TRACE_ID}-${SPAN_ID}-00`, { traceFlags: 0 }],
  [` 00-${TRACE_ID}-${SPAN_ID}-01 `, { traceFlags: 1 }],
  [`01-${TRACE_ID}-${SPAN_ID}-01-extra`, { traceFlags: 1 }],
  [`00-${TRACE_ID}-${SPAN_ID}-01-extra`, null],
  [`ff-${TRACE_ID}-${SPAN_ID}-01`, null],
  [`00-${'0'.repeat(32)}-${SPAN_ID}-01`, null],
  [`00-${TRACE_ID}-${'0'.repeat(16)}-01`, null],
  [`00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`, null],
  [`00-${TRACE_ID}-${SPAN_ID}`, null],
  ['', null],
];

for (const [header, expected] of TRACEPARENTS) {
  test(`parseTraceparent(${JSON.stringify(header)}) ${expected ? 'is a remote parent' : 'is rejected'}`, () => {
    const parsed = parseTraceparent(header);
    if (expected === null) {
      assert.equal(parsed, null);
      return;
    }
    assert.deepEqual(parsed, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: expected.traceFlags, isRemote: true });
  });
}
