/**
 * The SSRF address classification as a pure function: every refused range, its edges, and the
 * spellings an attacker would try (IPv4-mapped and NAT64 IPv6, brackets, zone ids). No traffic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressPolicy, classifyAddress, type AddressClass } from '../../../src/deltas/source/address-policy.js';

const TABLE: readonly [string, AddressClass | null][] = [
  // IPv4
  ['0.0.0.0', 'unspecified'],
  ['0.255.255.255', 'unspecified'],
  ['1.0.0.0', 'public'],
  ['8.8.8.8', 'public'],
  ['9.255.255.255', 'public'],
  ['10.0.0.0', 'private'],
  ['10.255.255.255', 'private'],
  ['11.0.0.0', 'public'],
  ['100.63.255.255', 'public'],
  ['100.64.0.1', 'private'],
  ['100.127.255.255', 'private'],
  ['100.128.0.0', 'public'],
  ['126.255.255.255', 'public'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['128.0.0.0', 'public'],
  ['169.253.255.255', 'public'],
  ['169.254.169.254', 'link-local'],
  ['169.254.0.0', 'link-local'],
  ['169.255.0.0', 'public'],
  ['172.15.255.255', 'public'],
  ['172.16.0.0', 'private'],
  ['172.31.255.255', 'private'],
  ['172.32.0.0', 'public'],
  ['192.0.0.8', 'reserved'],
  ['192.0.2.1', 'public'], // documentation range: not routable, but not internal either
  ['192.167.255.255', 'public'],
  ['192.168.0.1', 'private'],
  ['192.168.255.255', 'private'],
  ['192.169.0.0', 'public'],
  ['198.18.0.1', 'reserved'],
  ['198.20.0.0', 'public'],
  ['223.255.255.255', 'public'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
  // IPv6
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['2001:4860:4860::8888', 'public'],
  ['2606:4700::1111', 'public'],
  ['fbff:ffff::1', 'public'],
  ['fc00::1', 'private'],
  ['fd12:3456:789a::1', 'private'],
  ['fe7f:ffff::1', 'public'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf:ffff::1', 'link-local'],
  ['fec0::1', 'private'],
  ['ff02::1', 'multicast'],
  ['ff05::1:3', 'multicast'],
  // IPv4 inside IPv6: judged by the IPv4 address
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['[::ffff:a9fe:a9fe]', 'link-local'],
  ['::ffff:10.1.2.3', 'private'],
  ['::ffff:8.8.8.8', 'public'],
  ['64:ff9b::192.168.1.1', 'private'],
  ['64:ff9b::808:808', 'public'],
  ['::127.0.0.1', 'loopback'],
  // not addresses
  ['example.com', null],
  ['', null],
  ['127.1', null],
  ['1.2.3.256', null],
];

test('classifyAddress: every range, its edges and the IPv6 spellings of IPv4 addresses', () => {
  for (const [address, expected] of TABLE) assert.equal(classifyAddress(address), expected, address);
});

test('the policy refuses every non-public class by default and allows them all when opted in', () => {
  const strict = new AddressPolicy({ allowPrivateAddresses: false, allowedAddresses: [] });
  const open = new AddressPolicy({ allowPrivateAddresses: true, allowedAddresses: [] });
  for (const [address, kind] of TABLE) {
    if (kind === null) continue;
    assert.equal(strict.refusal(address)?.kind ?? 'public', kind, address);
    assert.equal(open.refusal(address), null, address);
  }
});

test('an address listed as an IP literal is allowed in any spelling; names and wildcards allow no address', () => {
  const policy = new AddressPolicy({
    allowPrivateAddresses: false,
    allowedAddresses: ['10.0.0.5', '[fd00::5]', '*', 'deltas.internal', '*.corp'],
  });
  assert.equal(policy.refusal('10.0.0.5'), null);
  assert.equal(policy.refusal('::ffff:10.0.0.5'), null);
  assert.equal(policy.refusal('fd00:0:0:0:0:0:0:5'), null);
  assert.deepEqual(policy.refusal('10.0.0.6'), { address: '10.0.0.6', kind: 'private' });
  assert.deepEqual(policy.refusal('[fd00::6]'), { address: 'fd00::6', kind: 'private' });
  assert.deepEqual(policy.refusal('169.254.169.254'), { address: '169.254.169.254', kind: 'link-local' });
});

test('the lookup guard fails on any refused answer among several, and passes errors and public answers through', async () => {
  const policy = new AddressPolicy({ allowPrivateAddresses: false, allowedAddresses: [] });
  const answering = (addresses: string[]) =>
    policy.guardLookup(
      (_host, options, callback) =>
        options.all
          ? callback(
              null,
              addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
            )
          : callback(null, addresses[0]!, 4),
      (host, refusal) => new Error(`${host} → ${refusal.address} (${refusal.kind})`),
    );
  const call = (lookup: ReturnType<typeof answering>, all: boolean) =>
    new Promise<{ error: Error | null; address: unknown }>((resolve) =>
      lookup('h.test', { all }, (error, address) => resolve({ error, address })),
    );

  assert.equal((await call(answering(['93.184.216.34', '2606:2800::1']), true)).error, null);
  assert.equal((await call(answering(['93.184.216.34']), false)).address, '93.184.216.34');
  assert.match(
    (await call(answering(['93.184.216.34', '10.0.0.1']), true)).error!.message,
    /h\.test → 10\.0\.0\.1 \(private\)/,
  );
  assert.match((await call(answering(['fe80::1']), true)).error!.message, /link-local/);
  assert.match((await call(answering(['127.0.0.1']), false)).error!.message, /loopback/);

  const failing = policy.guardLookup(
    (_h, _o, callback) => callback(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }), ''),
    () => new Error('unused'),
  );
  assert.match((await call(failing, true)).error!.message, /ENOTFOUND/);
});
