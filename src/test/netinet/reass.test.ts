// IPv4 reassembly (ip_reass.ts) on one host and a manual clock: a datagram
// longer than 65535 bytes is dropped (ips_toolong), the fragment timeout
// runs on the clock (and answers with ICMP time exceeded only when the
// first fragment came), the limits hold, and arbitrary fragment sets never
// throw, never deliver a wrong datagram and never leak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ETHERTYPE_IPV4 } from '../../wire/ethernet.js';
import { IP_MF } from '../../wire/ipv4.js';
import { ICMP_TIMXCEED, ICMP_TIMXCEED_REASS } from '../../wire/icmp.js';
import { UDP_HLEN, udpEmit } from '../../wire/udp.js';
import { PH_LEN } from '../../kern/mbuf/layout.js';
import { m_copydata } from '../../kern/mbuf/ops.js';
import { IP_DESC, UDP_DESC, statObject } from '../../netinet/stats.js';
import { eth, host, ip, IP_PEER, IP_US, MAC_PEER, MAC_US, parse, type Host } from './fixture.js';

const ips = (h: Host) => statObject(IP_DESC, h.st.stats.ip);
const udps = (h: Host) => statObject(UDP_DESC, h.st.stats.udp);

/** A UDP datagram to port 7 as IP payload bytes (header + data), n bytes in all. */
function datagram(n: number, seed = 1): Uint8Array {
  const u = new Uint8Array(n);
  for (let i = UDP_HLEN; i < n; i++) u[i] = (i * 31 + seed) & 0xff;
  udpEmit(u, 0, 4000, 7, Math.min(n, 0xffff), IP_PEER, IP_US, false);
  return u;
}

/** Fragment payload[off, off+len) of datagram id as a frame. */
function frag(payload: Uint8Array, off: number, len: number, id: number, more: boolean): Uint8Array {
  return eth(MAC_US, MAC_PEER, ETHERTYPE_IPV4, ip(payload.subarray(off, off + len), { id, offField: (more ? IP_MF : 0) | (off >> 3) }));
}

function bound(h: Host) {
  const pcb = h.st.udp.attach();
  assert.equal(h.st.udp.bind(pcb, 0, 7), 0);
  return {
    /** Datagrams received, as byte arrays (freed). */
    take(): Uint8Array[] {
      const r: Uint8Array[] = [];
      for (let m = pcb.dequeue(); m !== 0; m = pcb.dequeue()) {
        const b = new Uint8Array(h.mb.i32[(m + PH_LEN) >> 2]);
        m_copydata(h.mb, m, 0, b.length, b, 0);
        r.push(b);
        h.mb.m_freem(m);
      }
      return r;
    },
  };
}

test('reass: fragments ending at offset 65535 (a 65555-byte datagram) are dropped as too long, never delivered', () => {
  const h = host();
  const sock = bound(h);
  const payload = datagram(65535);
  const step = 16000;
  let n = 0;
  for (let off = 0; off < 65535; off += step) {
    const len = Math.min(step, 65535 - off);
    h.inject(frag(payload, off, len, 42, off + len < 65535));
    n++;
  }
  assert.equal(sock.take().length, 0);
  const s = ips(h);
  assert.equal(s.toolong, 1);
  assert.equal(s.reassembled, 0);
  assert.equal(s.fragdropped, n);
  assert.equal(udps(h).badlen, 0, 'never handed to UDP');
  assert.equal(h.st.reass.pending, 0);
  assert.equal(h.st.reass.bytesHeld, 0);
  h.finish();
});

test('reass: the largest legal datagram (65535 bytes with its header) is reassembled', () => {
  const h = host({ udp: { recvspace: 1 << 20 } });
  const sock = bound(h);
  const payload = datagram(65515);
  for (let off = 0; off < 65515; off += 16000) {
    const len = Math.min(16000, 65515 - off);
    h.inject(frag(payload, off, len, 43, off + len < 65515));
  }
  const got = sock.take();
  assert.equal(got.length, 1);
  assert.equal(got[0].length, 65515 - UDP_HLEN);
  assert.deepEqual(got[0], payload.subarray(UDP_HLEN));
  assert.equal(ips(h).toolong, 0);
  h.finish();
});

test('reass: fragments out of order, duplicated and overlapping rebuild the datagram byte for byte', () => {
  const h = host();
  const sock = bound(h);
  const p = datagram(400, 3);
  h.inject(frag(p, 160, 240, 5, false));
  h.inject(frag(p, 0, 80, 5, true));
  h.inject(frag(p, 0, 80, 5, true));
  h.inject(frag(p, 64, 64, 5, true)); // front trimmed to 80..128
  assert.equal(sock.take().length, 0);
  h.inject(frag(p, 96, 104, 5, true)); // front trimmed to 128..200, trims 160..400 to 200..400: complete
  const got = sock.take();
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], p.subarray(UDP_HLEN));
  assert.equal(ips(h).reassembled, 1);
  assert.equal(h.st.reass.bytesHeld, 0);
  h.finish();
});

test('reass: an incomplete datagram times out after fragttl on the clock; time exceeded only if fragment 0 came', () => {
  const h = host({ reass: { fragTtlMs: 5000 } });
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  bound(h);
  const p = datagram(200);
  h.inject(frag(p, 0, 80, 1, true)); // first fragment: will be quoted
  h.inject(frag(p, 80, 40, 2, true)); // middle of another datagram: no quote
  h.td.advance(4900);
  assert.equal(h.st.reass.pending, 2);
  assert.equal(h.take().length, 0);
  h.td.advance(300);
  assert.equal(h.st.reass.pending, 0);
  assert.equal(ips(h).fragtimeout, 2);
  const out = h.take().map(parse);
  assert.equal(out.length, 1);
  assert.equal(out[0].icmpType, ICMP_TIMXCEED);
  assert.equal(out[0].icmpCode, ICMP_TIMXCEED_REASS);
  assert.equal(out[0].dst, IP_PEER);
  h.finish();
});

test('reass: no time exceeded about a datagram whose first fragment came in a link-layer broadcast frame', () => {
  const h = host({ reass: { fragTtlMs: 5000 } });
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  const p = datagram(200);
  const f = frag(p, 0, 80, 1, true);
  f.fill(0xff, 0, 6);
  h.inject(f);
  h.td.advance(6000);
  assert.equal(ips(h).fragtimeout, 1);
  assert.equal(h.take().length, 0);
  h.finish();
});

test('reass: limits (maxfragpackets, maxfragsperpacket, maxfragbytes) hold and count', () => {
  const h = host({ reass: { maxFragPackets: 3, maxFragsPerPacket: 4, maxFragBytes: 1000 } });
  const p = datagram(2000);
  for (let id = 1; id <= 5; id++) h.inject(frag(p, 0, 8, id, true));
  assert.equal(h.st.reass.pending, 3, 'the oldest go');
  assert.equal(ips(h).fragdropped, 2);
  h.st.reass.flush();
  for (let k = 0; k < 5; k++) h.inject(frag(p, k * 16, 8, 9, true));
  assert.equal(h.st.reass.pending, 0, 'too many fragments: the datagram is dropped');
  for (let k = 0; k < 3; k++) h.inject(frag(p, k * 400, 400, 10, true));
  assert.ok(h.st.reass.bytesHeld <= 1000);
  h.finish();
});

test('reass: random fragment sets never throw, never leak, and deliver only the exact datagram', () => {
  const h = host({ reass: { fragTtlMs: 1000 }, icmp: { icmplim: 0 }, udp: { recvspace: 1 << 20 } });
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  const sock = bound(h);
  let id = 100;
  fc.assert(
    fc.property(
      fc.integer({ min: 9, max: 3000 }),
      fc.array(fc.record({ off: fc.integer({ min: 0, max: 400 }), len: fc.integer({ min: 1, max: 400 }), more: fc.boolean() }), { minLength: 1, maxLength: 12 }),
      (n, pieces) => {
        id++;
        const p = datagram(n, id);
        for (const x of pieces) {
          const off = Math.min(x.off * 8, n - 1) & ~7;
          const len = Math.min(x.len * 8, n - off);
          h.inject(frag(p, off, len, id, x.more || off + len < n));
        }
        for (const got of sock.take()) assert.deepEqual(got, p.subarray(UDP_HLEN));
        h.take();
      },
    ),
    { numRuns: 300 },
  );
  h.td.advance(2000);
  assert.equal(h.st.reass.pending, 0);
  assert.equal(h.st.reass.bytesHeld, 0);
  h.take();
  h.finish();
});
