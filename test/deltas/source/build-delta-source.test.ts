import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDeltaSource } from '../../../src/deltas/source/build-delta-source.js';
import { HostAllowList, redactUri, schemeOf } from '../../../src/deltas/source/uri.js';
import type { DeltaSource } from '../../../src/deltas/source/delta-source.js';

const built: DeltaSource[] = [];
after(async () => {
  await Promise.all(built.map((s) => s.close?.() ?? Promise.resolve()));
});

function code(expected: string) {
  return (error: unknown): boolean => {
    assert.equal((error as { code?: string }).code, expected, (error as Error).message);
    return true;
  };
}

test('dispatches plain paths and file:// URIs to the file source', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deltaserve-build-source-'));
  try {
    const bytes = new Uint8Array([1, 2, 3, 4]);
    await writeFile(join(dir, 'd.bin'), bytes);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const source = buildDeltaSource({ fileRoot: dir });
    built.push(source);
    assert.deepEqual(await source.fetch('d.bin', sha), bytes);
    assert.deepEqual(await source.fetch(`file://${join(dir, 'd.bin')}`, sha), bytes);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('refuses schemes that are unknown or not allowed', async () => {
  const source = buildDeltaSource({ allowedSchemes: ['https'], allowedHosts: ['deltas.example.com'] });
  built.push(source);
  const sha = 'a'.repeat(64);
  await assert.rejects(source.fetch('s3://bucket/key', sha), code('DS_ERR_SOURCE_SCHEME_NOT_ALLOWED'));
  await assert.rejects(source.fetch('http://deltas.example.com/x', sha), code('DS_ERR_SOURCE_SCHEME_NOT_ALLOWED'));
  await assert.rejects(source.fetch('relative/path.safetensors', sha), code('DS_ERR_SOURCE_SCHEME_NOT_ALLOWED'));
});

test('requires a root while file is allowed, and validates schemes', () => {
  assert.throws(() => buildDeltaSource({}), code('DS_ERR_SOURCE_BAD_OPTION'));
  assert.throws(
    () => buildDeltaSource({ allowedSchemes: ['ftp' as 'file'], fileRoot: '/tmp' }),
    code('DS_ERR_SOURCE_BAD_OPTION'),
  );
});

test('host allow-list: exact names, *.suffix wildcards, *', () => {
  const list = new HostAllowList(['deltas.example.com', '*.cdn.example.net']);
  const cases: [string, boolean][] = [
    ['deltas.example.com', true],
    ['DELTAS.example.com', true],
    ['other.example.com', false],
    ['a.cdn.example.net', true],
    ['a.b.cdn.example.net', true],
    ['cdn.example.net', false],
    ['evilcdn.example.net', false],
    ['example.invalid', false],
  ];
  for (const [host, allowed] of cases) assert.equal(list.allows(host), allowed, host);
  assert.equal(new HostAllowList(['*']).allows('anything.at.all'), true);
  assert.equal(new HostAllowList([]).allows('localhost'), false);
});

test('scheme detection and redaction', () => {
  assert.equal(schemeOf('tasks/a.safetensors'), 'file');
  assert.equal(schemeOf('C:\\deltas\\a'), 'file');
  assert.equal(schemeOf('HTTPS://x/y'), 'https');
  assert.equal(redactUri('https://u:p@h.example/a/b?sig=1#f'), 'https://<redacted>@h.example/a/b?<redacted>');
  assert.equal(redactUri('https://h.example/a'), 'https://h.example/a');
  assert.equal(redactUri('tasks/a'), 'tasks/a');
});
