// ICMP (ip_icmp.ts) on one host and a manual clock: echo to broadcast
// (net.inet.icmp.bmcastecho), link-layer broadcast and multicast frames
// (never an echo reply or an error: RFC 1122 3.2.2), the rate limit
// (net.inet.icmp.icmplim) on the clock, and icmp_error's other rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ETHERTYPE_IPV4, MAC_BROADCAST } from '../../wire/ethernet.js';
import { ICMP_ECHOREPLY, ICMP_TIMXCEED, ICMP_UNREACH, ICMP_UNREACH_PORT, ICMP_UNREACH_PROTOCOL } from '../../wire/icmp.js';
import { IPPROTO_ICMP } from '../../wire/ipv4.js';
import { ICMP_DESC, IP_DESC, statObject } from '../../netinet/stats.js';
import { echo, echoFrame, eth, host, ip, IP_BCAST, IP_PEER, IP_US, MAC_PEER, MAC_US, parse, udp, udpFrame, type Host } from './fixture.js';

const icmp = (h: Host) => statObject(ICMP_DESC, h.st.stats.icmp);
const ips = (h: Host) => statObject(IP_DESC, h.st.stats.ip);
const MCAST_MAC = 0x0100_5e00_0001;

function replies(h: Host): number {
  return h
    .take()
    .map(parse)
    .filter((p) => p.type === ETHERTYPE_IPV4 && p.proto === IPPROTO_ICMP && p.icmpType === ICMP_ECHOREPLY).length;
}

test('icmp: a unicast echo request is answered (control)', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  h.inject(echoFrame({}));
  const out = h.take().map(parse);
  assert.equal(out.length, 1);
  assert.equal(out[0].icmpType, ICMP_ECHOREPLY);
  assert.equal(out[0].src, IP_US);
  assert.equal(out[0].dst, IP_PEER);
  h.finish();
});

test('icmp: echo to the subnet or limited broadcast is not answered while bmcastecho is 0 (no smurf amplifier)', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  h.inject(echoFrame({ dst: IP_BCAST, dmac: MAC_BROADCAST }));
  h.inject(echoFrame({ dst: 0xffffffff, dmac: MAC_BROADCAST }));
  h.inject(echoFrame({ dst: IP_BCAST }));
  h.inject(echoFrame({ dst: 0xffffffff }));
  assert.equal(replies(h), 0);
  assert.equal(icmp(h).bmcastecho, 4);
  h.finish();
});

test('icmp: a unicast echo request in a link-layer broadcast or multicast frame is not answered', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  h.inject(echoFrame({ dmac: MAC_BROADCAST }));
  h.inject(echoFrame({ dmac: MCAST_MAC }));
  assert.equal(replies(h), 0);
  assert.equal(icmp(h).bmcastecho, 2);
  h.finish();
});

test('icmp: with net.inet.icmp.bmcastecho=1 a broadcast echo is answered from our own address', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  const node = h.st.sysctlNodes().find((n) => n.name === 'net.inet.icmp.bmcastecho')!;
  assert.equal(node.get(), 0);
  node.set!(1);
  h.inject(echoFrame({ dst: IP_BCAST, dmac: MAC_BROADCAST }));
  const out = h.take().map(parse);
  assert.equal(out.length, 1);
  assert.equal(out[0].icmpType, ICMP_ECHOREPLY);
  assert.equal(out[0].src, IP_US, 'the reply never comes from the broadcast address');
  assert.equal(out[0].dmac, MAC_PEER);
  h.finish();
});

test('icmp: no echo reply to a broadcast or multicast source', () => {
  const h = host();
  h.st.icmp.cfg.bmcastecho = true;
  for (const src of [IP_BCAST, 0xffffffff, 0xe0000001, 0]) h.inject(echoFrame({ src }));
  assert.equal(replies(h), 0);
  assert.equal(ips(h).badaddr, 4);
  h.finish();
});

test('icmp: UDP to a closed port in a link-layer broadcast or multicast frame draws no port unreachable', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  h.inject(udpFrame({ dport: 9999, dmac: MAC_BROADCAST }));
  h.inject(udpFrame({ dport: 9999, dmac: MCAST_MAC }));
  assert.equal(h.take().length, 0);
  assert.equal(icmp(h).noerror, 2);
  // The same datagram unicast draws one (control).
  h.inject(udpFrame({ dport: 9999 }));
  const out = h.take().map(parse);
  assert.equal(out.length, 1);
  assert.equal(out[0].icmpType, ICMP_UNREACH);
  assert.equal(out[0].icmpCode, ICMP_UNREACH_PORT);
  h.finish();
});

test('icmp: UDP to a closed port at a broadcast address draws no port unreachable', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  h.inject(udpFrame({ dst: IP_BCAST, dport: 9999 }));
  h.inject(udpFrame({ dst: 0xffffffff, dport: 9999, dmac: MAC_BROADCAST }));
  assert.equal(h.take().length, 0);
  h.finish();
});

test('icmp: responses are limited to icmplim per second on the clock', () => {
  const h = host({ icmp: { icmplim: 5 } });
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  for (let i = 0; i < 10; i++) h.inject(echoFrame({ seq: i }));
  assert.equal(replies(h), 5);
  assert.equal(icmp(h).ratelimited, 5);
  h.td.advance(400); // 2 tokens back
  for (let i = 0; i < 4; i++) h.inject(echoFrame({ seq: i }));
  assert.equal(replies(h), 2);
  h.td.advance(10_000); // the bucket holds at most icmplim
  for (let i = 0; i < 10; i++) h.inject(echoFrame({ seq: i }));
  assert.equal(replies(h), 5);
  h.finish();
});

test('icmp: no error about an ICMP error, nor about a non-first fragment; protocol unreachable otherwise', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  // An ICMP port unreachable for a protocol we do not speak would be an error about an error: IP proto 99 is fine.
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, ip(new Uint8Array(16), { proto: 99 })));
  const out1 = h.take().map(parse);
  assert.equal(out1.length, 1);
  assert.equal(out1[0].icmpCode, ICMP_UNREACH_PROTOCOL);
  // UDP to a closed port whose first fragment never came (offset 8, last): reassembly holds it, no error.
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, ip(udp(1, 9999, new Uint8Array(8)), { offField: 1 })));
  assert.equal(h.take().length, 0);
  // An unreachable about a datagram we never sent is counted, never answered.
  const q = ip(udp(9, 9, new Uint8Array(0), IP_US, IP_PEER), { src: IP_US, dst: IP_PEER });
  const err = echo(0, 0, q, ICMP_UNREACH);
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, ip(err, { proto: IPPROTO_ICMP })));
  assert.equal(h.take().length, 0);
  assert.equal(icmp(h).inhist_unreach, 1);
  h.finish();
});

test('icmp: fuzzed ICMP messages never throw and never leak', () => {
  const h = host({ icmp: { icmplim: 0 } });
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 80 }), fc.boolean(), (type, code, body, bcast) => {
      const c = echo(0, 0, body, type);
      c[1] = code;
      h.inject(eth(bcast ? MAC_BROADCAST : MAC_US, MAC_PEER, ETHERTYPE_IPV4, ip(c, { proto: IPPROTO_ICMP, dst: bcast ? IP_BCAST : IP_US })));
      h.take();
    }),
    { numRuns: 400 },
  );
  h.finish();
});

test('icmp: time exceeded quotes the header and quotelen bytes; never about an ICMP error (oldicmp)', () => {
  const h = host({ forwarding: true });
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  h.st.setDefaultRoute(IP_PEER);
  const far = 0xc0000209; // 192.0.2.9, behind the default router
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, ip(echo(1, 1, new Uint8Array(40)), { proto: IPPROTO_ICMP, dst: far, ttl: 1 })));
  const out = h.take();
  assert.equal(out.length, 1);
  const p = parse(out[0]);
  assert.equal(p.icmpType, ICMP_TIMXCEED);
  assert.equal(p.dst, IP_PEER);
  assert.equal(out[0].length, 14 + 20 + 8 + 20 + h.st.icmp.cfg.quotelen, 'IP + ICMP headers + quoted header + quotelen bytes');
  // An ICMP error passing through with TTL 1 draws nothing.
  const unreach = echo(0, 0, new Uint8Array(28), ICMP_UNREACH);
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, ip(unreach, { proto: IPPROTO_ICMP, dst: far, ttl: 1 })));
  assert.equal(h.take().length, 0);
  assert.equal(icmp(h).oldicmp, 1);
  h.finish();
});
