import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileDeltaSource } from '../../../src/deltas/source/file-source.js';
import type { FetchStatus } from '../../../src/deltas/source/delta-source.js';
import { hasCode } from '../../helpers/errors.js';

const bytes = new Uint8Array(10_000).map((_, i) => (i * 7) % 256);
const sha = createHash('sha256').update(bytes).digest('hex');
let dir: string;
let root: string;

/** Every file-source error names the URI it was about. */
function withUri(code: string, pattern?: RegExp) {
  return hasCode(code, (e) => {
    if (pattern) assert.match(e.message, pattern);
    assert.equal(typeof e.uri, 'string');
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaserve-file-source-'));
  root = join(dir, 'root');
  await mkdir(join(root, 'tasks'), { recursive: true });
  await writeFile(join(root, 'tasks', 'a.safetensors'), bytes);
  await writeFile(join(dir, 'outside.safetensors'), bytes);
  await symlink(join(dir, 'outside.safetensors'), join(root, 'escape.safetensors'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('reads a plain path relative to the root and verifies it', async () => {
  const status: FetchStatus = {};
  const read = await new FileDeltaSource({ root }).fetch('tasks/a.safetensors', sha, undefined, status);
  assert.deepEqual(read, bytes);
  assert.equal(status.bytes, bytes.byteLength);
  assert.equal(status.attempts, 1);
});

test('reads a file:// URI inside the root', async () => {
  const uri = pathToFileURL(join(root, 'tasks', 'a.safetensors')).toString();
  assert.deepEqual(await new FileDeltaSource({ root }).fetch(uri, sha), bytes);
});

test('a missing file is DS_ERR_SOURCE_FILE_MISSING', async () => {
  await assert.rejects(
    new FileDeltaSource({ root }).fetch('tasks/nope.safetensors', sha),
    withUri('DS_ERR_SOURCE_FILE_MISSING', /nope\.safetensors/),
  );
});

test('paths escaping the root are refused, even when the target exists', async () => {
  const source = new FileDeltaSource({ root });
  await assert.rejects(source.fetch('../outside.safetensors', sha), withUri('DS_ERR_SOURCE_OUTSIDE_ROOT'));
  await assert.rejects(source.fetch('tasks/../../outside.safetensors', sha), withUri('DS_ERR_SOURCE_OUTSIDE_ROOT'));
  await assert.rejects(source.fetch('../../../../etc/passwd', sha), withUri('DS_ERR_SOURCE_OUTSIDE_ROOT'));
  await assert.rejects(
    source.fetch(pathToFileURL(join(dir, 'outside.safetensors')).toString(), sha),
    withUri('DS_ERR_SOURCE_OUTSIDE_ROOT'),
  );
  await assert.rejects(source.fetch('/etc/passwd', sha), withUri('DS_ERR_SOURCE_OUTSIDE_ROOT'));
});

test('a symlink inside the root pointing outside it is refused', async () => {
  await assert.rejects(
    new FileDeltaSource({ root }).fetch('escape.safetensors', sha),
    withUri('DS_ERR_SOURCE_OUTSIDE_ROOT'),
  );
});

test('a checksum mismatch is refused', async () => {
  const wrong = '0'.repeat(64);
  await assert.rejects(
    new FileDeltaSource({ root }).fetch('tasks/a.safetensors', wrong),
    withUri('DS_ERR_SOURCE_CHECKSUM_MISMATCH', new RegExp(`${sha} but ${wrong}`)),
  );
});

test('a file larger than maxBytes is refused', async () => {
  await assert.rejects(
    new FileDeltaSource({ root, maxBytes: 100 }).fetch('tasks/a.safetensors', sha),
    withUri('DS_ERR_SOURCE_TOO_LARGE', /10000 bytes/),
  );
});

test('a folder is not a delta file', async () => {
  await assert.rejects(
    new FileDeltaSource({ root }).fetch('tasks', sha),
    withUri('DS_ERR_SOURCE_FILE_UNREADABLE', /not a regular file/),
  );
});
