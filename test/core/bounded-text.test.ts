/** The one helper that bounds untrusted text in messages (issue 22, item 3), and its use by the delta sources. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boundText, describeListBounded, jsonBounded, quoteBounded } from '../../src/core/bounded-text.js';
import { FileDeltaSource } from '../../src/deltas/source/file-source.js';
import { HttpDeltaSource } from '../../src/deltas/source/http-source.js';

test('short text passes unchanged; long text is cut with an ellipsis and its original length', () => {
  assert.equal(boundText('abc'), 'abc');
  assert.equal(boundText('x'.repeat(200), 5), 'xxxxx… (200 characters)');
  assert.equal(quoteBounded('a"b'), '"a\\"b"');
  assert.equal(quoteBounded('y'.repeat(50), 3), '"yyy… (50 characters)"');
  assert.equal(describeListBounded([1, 2, 3]), '[1, 2, 3]');
  assert.equal(describeListBounded(new Array(10_000_000).fill(7), 2), '[7, 7, … (10000000 items)]');
  assert.equal(jsonBounded({ a: 1 }), '{"a": …}');
  assert.match(jsonBounded(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, i]))), /… \(9 keys\)\}$/);
  assert.ok(jsonBounded('z'.repeat(20_000_000)).length < 200);
});

test('delta sources never quote a huge URI whole (a registry entry or an admin request names it)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-bounded-'));
  try {
    const source = new FileDeltaSource({ root: dir });
    const uri = `${'d/'.repeat(500_000)}delta.safetensors`;
    await assert.rejects(source.fetch(uri, 'a'.repeat(64)), (error: Error & { uri?: string }) => {
      assert.ok(error.message.length < 1500, `message of ${error.message.length} characters`);
      assert.ok((error.uri ?? '').length < 1500, `uri property of ${error.uri?.length} characters`);
      return true;
    });
    await assert.rejects(source.fetch('x', 'q'.repeat(1_000_000)), (error: Error) => {
      assert.match(error.message, /1000000 characters/);
      assert.ok(error.message.length < 1500);
      return true;
    });
    const http = new HttpDeltaSource({ allowedHosts: ['example.invalid'] });
    await assert.rejects(
      http.fetch(`https://other.invalid/${'p'.repeat(1_000_000)}`, 'a'.repeat(64)),
      (error: Error) => {
        assert.ok(error.message.length < 1500, `message of ${error.message.length} characters`);
        return true;
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
