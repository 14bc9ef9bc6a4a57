import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256Hex } from '../../src/core/sha256.js';
import { KeyRing, bearerToken } from '../../src/tenant/api-keys.js';
import { TenantDirectory } from '../../src/tenant/tenant-directory.js';
import { TokenBucket } from '../../src/tenant/token-bucket.js';
import { pickWeighted, stickyPoint } from '../../src/tenant/traffic-split.js';

test('bearer tokens: only the Bearer scheme, one token', () => {
  assert.equal(bearerToken('Bearer abc'), 'abc');
  assert.equal(bearerToken('bearer   abc  '), 'abc');
  assert.equal(bearerToken('Basic abc'), null);
  assert.equal(bearerToken('Bearer a b'), null);
  assert.equal(bearerToken(undefined), null);
});

test('a key ring finds owners by the hash of the key, not the key itself', () => {
  const ring = new KeyRing([
    [sha256Hex('k1'), 'one'],
    [sha256Hex('k2'), 'two'],
  ]);
  assert.equal(ring.lookup('k1'), 'one');
  assert.equal(ring.lookup('k2'), 'two');
  assert.equal(ring.lookup(sha256Hex('k1')), null, 'the stored hash is not a key');
  assert.equal(ring.lookup(''), null);
});

test('the tenant directory authenticates tenants and recognises the admin key', () => {
  const directory = new TenantDirectory({
    tenants: [
      {
        name: 'acme',
        keySha256: [sha256Hex('old'), sha256Hex('new')],
        tasks: ['*'],
        aliases: {},
        splits: {},
        rateLimit: null,
        maxConcurrent: null,
        priority: 0,
      },
    ],
    adminKeySha256: [sha256Hex('root')],
    seed: 1,
  });
  assert.equal(directory.authenticate('Bearer old').name, 'acme');
  assert.equal(directory.authenticate('Bearer new').name, 'acme', 'two keys for rotation');
  assert.throws(() => directory.authenticate('Bearer root'), /API key is not valid/);
  assert.throws(() => directory.authenticate(undefined), /Authorization: Bearer/);
  assert.equal(directory.classify('Bearer root'), 'admin');
  assert.equal(directory.classify('Bearer old'), 'other');
  assert.equal(directory.classify(undefined), 'none');
});

test('token bucket: burst, refill, Retry-After rounded up to whole seconds', () => {
  const bucket = new TokenBucket(0.25, 2, 0);
  assert.ok(bucket.take(0).ok);
  assert.ok(bucket.take(0).ok);
  assert.deepEqual(bucket.take(0), { ok: false, retryAfterSeconds: 4 });
  assert.deepEqual(bucket.take(3000), { ok: false, retryAfterSeconds: 1 });
  assert.ok(bucket.take(4100).ok);
});

test('weighted pick: cumulative intervals; sticky points are stable and in [0, 1)', () => {
  const options = [
    { version: 'a', weight: 9 },
    { version: 'b', weight: 1 },
  ];
  assert.equal(pickWeighted(options, 0), 'a');
  assert.equal(pickWeighted(options, 0.899), 'a');
  assert.equal(pickWeighted(options, 0.9), 'b');
  assert.equal(pickWeighted(options, 0.9999999), 'b');
  assert.equal(pickWeighted([], 0.5), null);
  const point = stickyPoint('tenant\0task', 'user-1');
  assert.equal(stickyPoint('tenant\0task', 'user-1'), point);
  assert.ok(point >= 0 && point < 1);
  assert.notEqual(stickyPoint('tenant\0other', 'user-1'), point);
});
