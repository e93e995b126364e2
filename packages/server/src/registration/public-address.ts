import { BlockList, isIP } from 'node:net';

/**
 * Address ranges that a fetch of a client-chosen URL must never reach, as the SSRF considerations
 * of the client ID metadata document draft ask. They cover this host, private networks,
 * link-local, shared address space, documentation, benchmarking, multicast and reserved ranges,
 * and the IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4, Teredo), which could hide
 * any of the others.
 */
const NON_PUBLIC_IPV4: Array<[string, number]> = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];

const NON_PUBLIC_IPV6: Array<[string, number]> = [
  ['::', 96],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
];

// One list per family: a BlockList also matches IPv4 addresses against IPv6 rules as mapped
// addresses, so `::ffff:0:0/96` in a shared list would refuse every IPv4 address.
const nonPublic = { ipv4: blockList(NON_PUBLIC_IPV4, 'ipv4'), ipv6: blockList(NON_PUBLIC_IPV6, 'ipv6') };
const loopback = { ipv4: blockList([['127.0.0.0', 8]], 'ipv4'), ipv6: blockList([['::1', 128]], 'ipv6') };

function blockList(subnets: Array<[string, number]>, family: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of subnets) list.addSubnet(network, prefix, family);
  return list;
}

/**
 * True when `address` (an IP literal) is a public unicast address, or a loopback address while
 * `allowLoopback` is set for tests. Anything that is not an IP address is refused.
 */
export function isPermittedAddress(address: string, allowLoopback: boolean): boolean {
  const version = isIP(address);
  if (version === 0) return false;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (allowLoopback && loopback[family].check(address, family)) return true;
  return !nonPublic[family].check(address, family);
}
