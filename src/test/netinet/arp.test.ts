// ARP (if_ether.ts) on one host and a manual clock: what is learned and what
// is refused (static entries, off-link senders, group sender MACs, a full
// table), timeouts, maxtries and the hold queue. Every refusal is counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ARPOP_REPLY, ARPOP_REQUEST } from '../../wire/arp.js';
import { ETHERTYPE_ARP, MAC_BROADCAST } from '../../wire/ethernet.js';
import { ARP_DESC, statObject } from '../../netinet/stats.js';
import { arpFrame, host, IP_PEER, IP_US, MAC_PEER, MAC_US, parse, type Host } from './fixture.js';

const arp = (h: Host) => statObject(ARP_DESC, h.st.stats.arp);
const MAC_EVIL = 0x0200_0000_0666;

/** Send one UDP datagram from the host to dst (so that ARP has to resolve it). */
function sendTo(h: Host, dst: number, port = 9): number {
  const pcb = h.st.udp.attach();
  const r = h.st.udp.output(pcb, new Uint8Array(4), 0, 4, dst, port);
  h.td.runUntilIdle();
  return r;
}

test('arp: a request for our address is answered to the sender and the sender is learned', () => {
  const h = host();
  h.inject(arpFrame(ARPOP_REQUEST, MAC_PEER, IP_PEER, 0, IP_US, MAC_BROADCAST));
  const out = h.take().map(parse);
  assert.equal(out.length, 1);
  assert.equal(out[0].type, ETHERTYPE_ARP);
  assert.equal(out[0].dmac, MAC_PEER);
  assert.equal(h.st.arp.lookup(h.ifp, IP_PEER), MAC_PEER);
  assert.equal(arp(h).txreplies, 1);
  h.finish();
});

test('arp: a static entry (arp -s) is never overwritten by received ARP and never expires', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  // A spoofed reply and a spoofed request, both claiming IP_PEER.
  h.inject(arpFrame(ARPOP_REPLY, MAC_EVIL, IP_PEER, MAC_US, IP_US, MAC_US));
  h.inject(arpFrame(ARPOP_REQUEST, MAC_EVIL, IP_PEER, 0, IP_US, MAC_BROADCAST));
  assert.equal(h.st.arp.lookup(h.ifp, IP_PEER), MAC_PEER);
  assert.equal(arp(h).permanent, 2);
  h.take();
  // Far past max_age: still there.
  h.td.advance(h.st.arp.cfg.maxAgeMs * 3);
  assert.equal(h.st.arp.lookup(h.ifp, IP_PEER), MAC_PEER);
  sendTo(h, IP_PEER);
  const out = h.take().map(parse);
  assert.equal(out.length, 1);
  assert.equal(out[0].dmac, MAC_PEER);
  h.finish();
});

test('arp: senders that are not on the interface network are not learned (2,000 requests from 100.64.0.0/10)', () => {
  const h = host();
  for (let i = 0; i < 2000; i++) {
    const spa = (0x64400000 + i * 97) >>> 0;
    h.inject(arpFrame(ARPOP_REQUEST, 0x0200_0100_0000 + i, spa, 0, IP_US, MAC_BROADCAST));
  }
  assert.equal(h.st.arp.entries.size, 0);
  assert.equal(arp(h).offlink, 2000);
  h.take();
  h.finish();
});

test('arp: a sender reached by an interface route (no gateway) is on-link and learned; one behind the default router is not', () => {
  const h = host();
  h.st.addRoute('192.168.50.0', 24, 0, h.ifp);
  h.st.setDefaultRoute(IP_PEER);
  h.inject(arpFrame(ARPOP_REQUEST, 0x0200_0000_0050, 0xc0a83207, 0, IP_US, MAC_BROADCAST));
  assert.equal(h.st.arp.lookup(h.ifp, 0xc0a83207), 0x0200_0000_0050);
  h.inject(arpFrame(ARPOP_REQUEST, 0x0200_0000_0051, 0xc0a83307, 0, IP_US, MAC_BROADCAST));
  assert.equal(h.st.arp.lookup(h.ifp, 0xc0a83307), -1);
  assert.equal(arp(h).offlink, 1);
  // Resolution of a next hop by the interface route completes.
  sendTo(h, 0xc0a83209);
  h.inject(arpFrame(ARPOP_REPLY, 0x0200_0000_0052, 0xc0a83209, MAC_US, IP_US, MAC_US));
  const out = h.take().map(parse).filter((p) => p.type !== ETHERTYPE_ARP);
  assert.equal(out.length, 1);
  assert.equal(out[0].dmac, 0x0200_0000_0052);
  h.finish();
});

test('arp: a broadcast or multicast sender MAC is dropped, neither learned nor answered', () => {
  const h = host();
  h.inject(arpFrame(ARPOP_REQUEST, MAC_BROADCAST, IP_PEER, 0, IP_US, MAC_BROADCAST, MAC_PEER));
  h.inject(arpFrame(ARPOP_REQUEST, 0x0100_5e00_0001, IP_PEER, 0, IP_US, MAC_BROADCAST, MAC_PEER));
  assert.equal(h.take().length, 0);
  assert.equal(h.st.arp.entries.size, 0);
  assert.equal(arp(h).badsha, 2);
  // An existing entry is not poisoned by a group sender address either.
  h.inject(arpFrame(ARPOP_REQUEST, MAC_PEER, IP_PEER, 0, IP_US, MAC_BROADCAST));
  h.inject(arpFrame(ARPOP_REPLY, MAC_BROADCAST, IP_PEER, MAC_US, IP_US, MAC_US, MAC_PEER));
  assert.equal(h.st.arp.lookup(h.ifp, IP_PEER), MAC_PEER);
  assert.equal(arp(h).badsha, 3);
  h.take();
  h.finish();
});

test('arp: the table is bounded by net.link.ether.inet.max_entries; refusals are counted', () => {
  const h = host({ arp: { maxEntries: 4 } });
  const node = h.st.sysctlNodes().find((n) => n.name === 'net.link.ether.inet.max_entries');
  assert.ok(node, 'sysctl net.link.ether.inet.max_entries');
  assert.equal(node.get(), 4);
  for (let i = 0; i < 10; i++) h.inject(arpFrame(ARPOP_REQUEST, 0x0200_0000_0100 + i, 0x0a000010 + i, 0, IP_US, MAC_BROADCAST));
  assert.equal(h.st.arp.entries.size, 4);
  assert.equal(arp(h).tablefull, 6);
  // Output to a new neighbour while full: the packet is dropped and counted, no entry made.
  const before = arp(h).dropped;
  sendTo(h, 0x0a000050);
  assert.equal(h.st.arp.entries.size, 4);
  assert.equal(arp(h).dropped, before + 1);
  assert.equal(arp(h).tablefull, 7);
  h.take();
  // Raising the limit at run time takes effect at once.
  node.set!(100);
  sendTo(h, 0x0a000050);
  assert.equal(h.st.arp.entries.size, 5);
  h.take();
  h.finish();
});

test('arp: a learned entry times out after max_age on the clock', () => {
  const h = host({ arp: { maxAgeMs: 60_000 } });
  h.inject(arpFrame(ARPOP_REQUEST, MAC_PEER, IP_PEER, 0, IP_US, MAC_BROADCAST));
  h.take();
  h.td.advance(59_000);
  assert.equal(h.st.arp.lookup(h.ifp, IP_PEER), MAC_PEER);
  h.td.advance(2_000);
  assert.equal(h.st.arp.lookup(h.ifp, IP_PEER), -1);
  assert.equal(h.st.arp.entries.size, 0);
  assert.equal(arp(h).timeouts, 1);
  h.finish();
});

test('arp: an unanswered resolution asks once a second, gives up after maxtries and frees what it held', () => {
  const h = host({ arp: { maxTries: 3 } });
  sendTo(h, 0x0a000009);
  sendTo(h, 0x0a000009);
  assert.equal(h.take().length, 1, 'one request for two packets within a second');
  for (let s = 0; s < 5; s++) h.td.advance(1000);
  const reqs = h.take().filter((f) => parse(f).type === ETHERTYPE_ARP);
  assert.equal(reqs.length, 2, 'maxtries 3 in all');
  assert.equal(h.st.arp.entries.size, 0);
  assert.equal(arp(h).timeouts, 1);
  assert.equal(arp(h).dropped, 2);
  h.finish();
});

test('arp: the hold queue keeps the newest maxhold packets and sends them in order on the reply', () => {
  const h = host({ arp: { maxHold: 2 } });
  for (let p = 1; p <= 3; p++) sendTo(h, IP_PEER, p);
  assert.equal(arp(h).dropped, 1);
  h.take();
  h.inject(arpFrame(ARPOP_REPLY, MAC_PEER, IP_PEER, MAC_US, IP_US, MAC_US));
  const out = h.take();
  assert.deepEqual(
    out.map((f) => (f[14 + 20 + 2] << 8) | f[14 + 20 + 3]),
    [2, 3],
  );
  assert.ok(out.every((f) => parse(f).dmac === MAC_PEER));
  h.finish();
});

test('arp: a reply we did not ask for does not create an entry', () => {
  const h = host();
  h.inject(arpFrame(ARPOP_REPLY, MAC_PEER, IP_PEER, MAC_US, 0x0a000063, MAC_US));
  assert.equal(h.st.arp.entries.size, 0);
  h.finish();
});

test('arp: fuzzed ARP packets never throw, never leak and never grow the table past its bound', () => {
  const h = host({ arp: { maxEntries: 8 } });
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 0xffff_ffff_ffff }),
      fc.oneof(fc.integer({ min: 0x0a000000, max: 0x0a0000ff }), fc.integer({ min: 0, max: 0xffffffff })),
      fc.oneof(fc.constant(IP_US), fc.integer({ min: 0, max: 0xffffffff })),
      (op, sha, spa, tpa) => {
        h.inject(arpFrame(op, sha, spa, 0, tpa, MAC_BROADCAST, MAC_PEER));
        h.take();
        assert.ok(h.st.arp.entries.size <= 8);
      },
    ),
    { numRuns: 500 },
  );
  h.finish();
});
