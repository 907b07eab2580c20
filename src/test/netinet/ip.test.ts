// IPv4 input and output (ip.ts) on one host and a manual clock: header
// checks, martian source and destination addresses (dropped and counted
// before any protocol sees them), output headers, fragmentation and DF.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ETHERTYPE_IPV4, MAC_BROADCAST } from '../../wire/ethernet.js';
import { IP_MF, IPPROTO_UDP } from '../../wire/ipv4.js';
import { cksum } from '../../wire/checksum.js';
import { IP_DESC, UDP_DESC, statObject } from '../../netinet/stats.js';
import { EHOSTUNREACH, EMSGSIZE } from '../../kern/errno.js';
import { loopbackIf } from '../../net/if.js';
import { PH_LEN } from '../../kern/mbuf/layout.js';
import { eth, host, ip, IP_BCAST, IP_PEER, IP_US, listen, MAC_PEER, MAC_US, parse, udp, udpFrame, type Host } from './fixture.js';

const ips = (h: Host) => statObject(IP_DESC, h.st.stats.ip);
const udps = (h: Host) => statObject(UDP_DESC, h.st.stats.udp);
const a = (s: string) => s.split('.').reduce((x, o) => x * 256 + Number(o), 0);

test('ip: UDP from a martian source is dropped before UDP sees it (broadcast, loopback, multicast, 0/8, class E)', () => {
  const h = host();
  const sock = listen(h, 7);
  const martians = ['10.0.0.255', '127.0.0.1', '224.0.0.1', '0.0.0.0', '0.1.2.3', '240.0.0.1', '255.255.255.255'].map(a);
  for (const src of martians) {
    h.inject(udpFrame({ src, dport: 7 }));
    h.inject(udpFrame({ src, dport: 7, dmac: MAC_BROADCAST }));
  }
  assert.equal(sock.drain(), 0);
  assert.equal(ips(h).badaddr, martians.length * 2);
  assert.equal(udps(h).ipackets, 0);
  assert.equal(h.take().length, 0, 'nothing is answered');
  // Neighbours and hosts behind a router are fine.
  h.inject(udpFrame({ src: IP_PEER, dport: 7 }));
  h.inject(udpFrame({ src: a('192.168.1.5'), dport: 7 }));
  assert.equal(sock.drain(), 2);
  h.finish();
});

test('ip: martian destinations are dropped and counted (127/8 on the wire, 0.0.0.0, class E, unjoined multicast)', () => {
  const h = host();
  const sock = listen(h, 7);
  for (const dst of ['127.0.0.1', '0.0.0.0', '240.0.0.1'].map(a)) h.inject(udpFrame({ dst, dport: 7 }));
  assert.equal(ips(h).badaddr, 3);
  h.inject(udpFrame({ dst: a('224.0.0.1'), dport: 7, dmac: 0x0100_5e00_0001 }));
  assert.equal(ips(h).notmember, 1);
  assert.equal(sock.drain(), 0);
  // Our address, the subnet and the limited broadcast are delivered.
  h.inject(udpFrame({ dport: 7 }));
  h.inject(udpFrame({ dst: IP_BCAST, dport: 7, dmac: MAC_BROADCAST }));
  h.inject(udpFrame({ dst: 0xffffffff, dport: 7, dmac: MAC_BROADCAST }));
  assert.equal(sock.drain(), 3);
  h.finish();
});

test('ip: a loopback interface accepts 127/8', () => {
  const h = host();
  const lo = loopbackIf(h.mb);
  // A loop the test turns by hand: frames sent on lo0 are input again below.
  const looped: number[] = [];
  lo.driver = { output: (_i, m) => void looped.push(m) };
  h.st.addInterface(lo, '127.0.0.1', 8);
  const sock = listen(h, 7);
  const pcb = h.st.udp.attach();
  assert.equal(h.st.udp.output(pcb, new Uint8Array(4), 0, 4, a('127.0.0.1'), 7), 0);
  assert.equal(looped.length, 1);
  lo.input(looped.pop()!);
  h.td.runUntilIdle();
  assert.equal(sock.drain(), 1);
  assert.equal(ips(h).badaddr, 0);
  h.finish();
});

test('ip: malformed headers are dropped under their ipstat counter', () => {
  const h = host();
  const sock = listen(h, 7);
  const good = ip(udp(1, 7, new Uint8Array(8)));
  const v6 = good.slice();
  v6[0] = 0x65;
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, v6));
  const hl = good.slice();
  hl[0] = 0x44;
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, hl));
  const sum = good.slice();
  sum[10] ^= 0xff;
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, sum));
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, ip(udp(1, 7, new Uint8Array(8)), { totalLen: 100 })));
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, good.subarray(0, 12)));
  const s = ips(h);
  assert.equal(s.badvers, 1);
  assert.equal(s.badhlen, 1);
  assert.equal(s.badsum, 1);
  assert.equal(s.tooshort, 1);
  assert.equal(s.toosmall, 1);
  assert.equal(sock.drain(), 0);
  // Link padding after the datagram is trimmed off, not delivered.
  const padded = new Uint8Array(good.length + 10);
  padded.set(good);
  h.inject(eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, padded));
  assert.equal(sock.drain(), 1);
  // Not for us, not a router: counted, not answered.
  h.inject(udpFrame({ dst: a('10.0.0.77'), dport: 7 }));
  assert.equal(ips(h).cantforward, 1);
  assert.equal(h.take().length, 0);
  h.finish();
});

test('ip: output builds a valid header; no route is EHOSTUNREACH', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  const pcb = h.st.udp.attach();
  assert.equal(h.st.udp.output(pcb, new Uint8Array(10), 0, 10, IP_PEER, 9), 0);
  const [f] = h.take();
  const p = parse(f);
  assert.equal(p.dmac, MAC_PEER);
  assert.equal(p.src, IP_US);
  assert.equal(p.dst, IP_PEER);
  assert.equal(p.proto, IPPROTO_UDP);
  assert.equal(f[14] >> 4, 4);
  assert.equal(f[14 + 8], 64, 'net.inet.ip.ttl');
  assert.equal(cksum(f, 14, 20), 0, 'header checksum');
  assert.equal((f[16] << 8) | f[17], 20 + 8 + 10);
  assert.equal(h.st.udp.output(pcb, new Uint8Array(10), 0, 10, a('192.168.9.9'), 9), EHOSTUNREACH);
  assert.equal(ips(h).noroute, 1);
  h.finish();
});

test('ip: a datagram above the MTU leaves as fragments on 8-byte boundaries; with DF it is EMSGSIZE', () => {
  const h = host();
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  const pcb = h.st.udp.attach();
  const data = new Uint8Array(3000).map((_, i) => i & 0xff);
  assert.equal(h.st.udp.output(pcb, data, 0, data.length, IP_PEER, 9), 0);
  const fr = h.take();
  assert.equal(fr.length, 3);
  const offs = fr.map((f) => ((f[14 + 6] << 8) | f[14 + 7]) & 0x1fff);
  const mf = fr.map((f) => (((f[14 + 6] << 8) | f[14 + 7]) & IP_MF) !== 0);
  assert.deepEqual(offs, [0, 185, 370]);
  assert.deepEqual(mf, [true, true, false]);
  for (const f of fr) {
    assert.ok(f.length - 14 <= 1500);
    assert.equal(cksum(f, 14, 20), 0);
  }
  const ids = new Set(fr.map((f) => (f[18] << 8) | f[19]));
  assert.equal(ids.size, 1, 'one IP id for every fragment');
  assert.equal(ips(h).fragmented, 1);
  assert.equal(ips(h).ofragments, 3);
  // Fed back to a second host, the fragments rebuild the datagram byte for byte.
  const b = host({}, h.uma, h.mb, IP_PEER, MAC_PEER);
  const sock = b.st.udp.attach();
  assert.equal(b.st.udp.bind(sock, 0, 9), 0);
  for (const f of fr) b.inject(f);
  const m = sock.dequeue();
  assert.ok(m !== 0);
  assert.equal(b.mb.i32[(m + PH_LEN) >> 2], 3000);
  b.mb.m_freem(m);
  b.finish();
  pcb.dontfrag = true;
  assert.equal(h.st.udp.output(pcb, data, 0, data.length, IP_PEER, 9), EMSGSIZE);
  assert.equal(ips(h).cantfrag, 1);
  assert.equal(h.take().length, 0);
  h.finish();
});

test('ip: fuzzed IPv4 packets never throw and never leak', () => {
  const h = host({ icmp: { icmplim: 0 } });
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  listen(h, 7);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 120 }), fc.integer({ min: 0, max: 40 }), fc.boolean(), (body, hdrMut, bcast) => {
      const p = ip(body, { proto: body[0] ?? 17, offField: (body[1] ?? 0) << 8 | (body[2] ?? 0), src: bcast ? IP_BCAST : IP_PEER });
      if (hdrMut < 20 && body.length > 3) p[hdrMut] ^= body[3];
      h.inject(eth(bcast ? MAC_BROADCAST : MAC_US, MAC_PEER, ETHERTYPE_IPV4, p));
      h.take();
    }),
    { numRuns: 500 },
  );
  h.td.advance(60_000); // reassembly queues time out
  h.take();
  h.finish();
});
