import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPermittedAddress } from '../../src/registration/public-address.ts';

/** Each row: an address, whether production mode permits it, and whether loopback test mode does. */
const CASES: Array<[string, boolean, boolean]> = [
  // Public unicast addresses.
  ['93.184.215.14', true, true],
  ['8.8.8.8', true, true],
  ['1.1.1.1', true, true],
  ['172.15.255.255', true, true],
  ['172.32.0.0', true, true],
  ['100.63.255.255', true, true],
  ['100.128.0.0', true, true],
  ['2606:4700:4700::1111', true, true],
  ['2a00:1450:4001:80b::200e', true, true],
  // Loopback: permitted only in loopback test mode.
  ['127.0.0.1', false, true],
  ['127.255.255.254', false, true],
  ['::1', false, true],
  // Never permitted (RFC 6890 special-purpose ranges).
  ['0.0.0.0', false, false],
  ['10.0.0.1', false, false],
  ['10.255.255.255', false, false],
  ['100.64.0.1', false, false],
  ['169.254.169.254', false, false],
  ['172.16.0.1', false, false],
  ['172.31.255.255', false, false],
  ['192.0.0.8', false, false],
  ['192.0.2.1', false, false],
  ['192.88.99.1', false, false],
  ['192.168.0.1', false, false],
  ['198.18.0.1', false, false],
  ['198.51.100.7', false, false],
  ['203.0.113.9', false, false],
  ['224.0.0.1', false, false],
  ['239.255.255.250', false, false],
  ['240.0.0.1', false, false],
  ['255.255.255.255', false, false],
  ['::', false, false],
  ['fc00::1', false, false],
  ['fd12:3456:789a::1', false, false],
  ['fe80::1', false, false],
  ['fec0::1', false, false],
  ['ff02::1', false, false],
  ['2001:db8::1', false, false],
  ['100::1', false, false],
  // IPv6 forms that embed an IPv4 address, loopback included, are never permitted.
  ['::ffff:127.0.0.1', false, false],
  ['::ffff:8.8.8.8', false, false],
  ['::ffff:7f00:1', false, false],
  ['::127.0.0.1', false, false],
  ['64:ff9b::7f00:1', false, false],
  ['64:ff9b:1::a00:1', false, false],
  ['2002:7f00:1::1', false, false],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', false, false],
  // Not IP addresses.
  ['localhost', false, false],
  ['example.com', false, false],
  ['', false, false],
  ['[::1]', false, false],
  ['127.1', false, false],
];

describe('isPermittedAddress', () => {
  test('production mode permits public unicast only', () => {
    for (const [address, permitted] of CASES) assert.equal(isPermittedAddress(address, false), permitted, address);
  });

  test('loopback test mode adds loopback only', () => {
    for (const [address, , permitted] of CASES) assert.equal(isPermittedAddress(address, true), permitted, address);
  });
});
