/**
 * Interface offloads on the in-memory link (net/if_offload.ts, MemLink's
 * MEMLINK_CAPS, tcp_output's TSO): bulk transfers byte-exact (SHA-256)
 * with TSO/LRO and checksum offload on and off; a TSO sender to a peer with
 * LRO off (the link cuts it), a TSO flow forwarded by a router to a link
 * without offloads (tcp_gso in ip_forward, every frame at most the MTU with
 * correct checksums); checksum verdicts only on clean links (a corrupting
 * link delivers none and the receiver catches and counts the bad frames).
 * Manual clock: deterministic; every test ends with no zone leaked.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { testUma, mbufLeakCheck } from '../helpers.js';
import { EAGAIN, EINPROGRESS } from '../../kern/errno.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN, M_NEXT, PH_CSUM_FLAGS, PH_LEN } from '../../kern/mbuf/layout.js';
import { IFC_IPACKETS, IFC_OPACKETS, IFCAP_LRO, IFCAP_RXCSUM, IFCAP_TSO4, IFCAP_TXCSUM, Ifnet } from '../../net/if.js';
import { CSUM_VERDICTS } from '../../net/if_offload.js';
import { MEMLINK_CAPS, MemLink } from '../../net/phy/memlink.js';
import { FaultInjector } from '../../net/phy/fault.js';
import { Stack } from '../../netinet/stack.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';
import { TcpSockets } from '../../netinet/tcp_usrreq.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { SOL_SOCKET, SO_RCVBUF, SO_SNDBUF } from '../../netinet/tcp_api.js';
import { IPS } from '../../netinet/stats.js';
import { cksum, cksumFold, pseudoHeaderSum } from '../../wire/checksum.js';
import { ipFromString } from '../../wire/ipv4.js';

const MTU = 1500;

interface Host {
  st: Stack;
  so: TcpSockets;
}

interface Net {
  mb: Mbufs;
  td: LocalThread;
  hosts: Host[];
  links: MemLink[];
  close(): void;
}

/** Hosts h0..hn-1 in a chain: link i joins host i (10.0.i.1) and host i+1 (10.0.i.2); the middle ones forward. caps[i] = [end a, end b] capenable (undefined: the link's defaults). */
function chain(n: number, caps: ([number, number] | undefined)[] = []): Net {
  const uma = testUma({ size: 64 << 20 });
  const mb = Mbufs.create(uma);
  const td = LocalThread.manual();
  const leaks = mbufLeakCheck(uma, mb);
  const hosts: Host[] = [];
  for (let i = 0; i < n; i++) {
    const st = new Stack(mb, { name: `h${i}`, seed: 1 + i, thread: td, forwarding: i > 0 && i < n - 1 });
    hosts.push({ st, so: new TcpSockets(st) });
  }
  const links: MemLink[] = [];
  for (let i = 0; i + 1 < n; i++) {
    const ia = new Ifnet(mb, `mem${i}a`, 0x0200_0000_0000 + i * 16 + 1, MTU);
    const ib = new Ifnet(mb, `mem${i}b`, 0x0200_0000_0000 + i * 16 + 2, MTU);
    links.push(MemLink.connect(ia, ib));
    const c = caps[i];
    if (c !== undefined) [ia.capenable, ib.capenable] = c;
    hosts[i].st.addInterface(ia, ipFromString(`10.0.${i}.1`), 24);
    hosts[i + 1].st.addInterface(ib, ipFromString(`10.0.${i}.2`), 24);
  }
  for (let i = 0; i < n; i++) {
    if (i > 0) hosts[i].st.setDefaultRoute(ipFromString(`10.0.${i - 1}.1`));
    else if (n > 2) hosts[i].st.setDefaultRoute(ipFromString('10.0.0.2'));
  }
  return {
    mb,
    td,
    hosts,
    links,
    close() {
      for (const h of hosts) h.st.close();
      for (const l of links) l.close();
      td.advance(1000);
      leaks();
    },
  };
}

/** Deterministic pseudo-random bytes. */
function data(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Send `payload` from the first host to the last one (port 5001), close both ends; returns what arrived. `bufs`: SO_SNDBUF / SO_RCVBUF of both ends. */
function transfer(net: Net, payload: Uint8Array, bufs = 0): Uint8Array {
  const a = net.hosts[0];
  const b = net.hosts[net.hosts.length - 1];
  const dst = b.st.ifs[0].addr;
  const l = b.so.socket();
  assert.equal(b.so.bind(l, 0, 5001), 0);
  assert.equal(b.so.listen(l, 4), 0);
  const c = a.so.socket();
  assert.equal(a.so.connect(c, dst, 5001), -EINPROGRESS);
  net.td.runUntilIdle();
  const s = b.so.accept(l);
  assert.ok(s > 0, `accepted (${s})`);
  if (bufs > 0) {
    assert.equal(a.so.setsockopt(c, SOL_SOCKET, SO_SNDBUF, bufs), 0);
    assert.equal(b.so.setsockopt(s, SOL_SOCKET, SO_RCVBUF, bufs), 0);
  }
  const got = new Uint8Array(payload.length);
  const buf = new Uint8Array(65536);
  let off = 0;
  let recv = 0;
  for (let turns = 0; recv < payload.length && turns < 100_000; turns++) {
    while (off < payload.length) {
      const n = a.so.write(c, payload.subarray(off));
      if (n <= 0) break;
      off += n;
    }
    net.td.runUntilIdle();
    let moved = false;
    for (;;) {
      const n = b.so.read(s, buf);
      if (n === -EAGAIN || n <= 0) break;
      got.set(buf.subarray(0, n), recv);
      recv += n;
      moved = true;
    }
    if (!moved) net.td.advance(1);
  }
  assert.equal(recv, payload.length, 'everything arrived');
  a.so.close(c);
  b.so.close(s);
  b.so.close(l);
  net.td.advance(200_000);
  return got;
}

/** Record what an interface receives: frame lengths, verdict flags, and whether every IP/TCP checksum in it is right. */
function watch(mb: Mbufs, ifp: Ifnet) {
  const seen = { frames: 0, maxLen: 0, verdicts: 0, badIp: 0, badTcp: 0 };
  const inner = ifp.inputHandler!;
  ifp.inputHandler = (i, m) => {
    const len = mb.i32[(m + PH_LEN) >> 2];
    seen.frames++;
    if (len > seen.maxLen) seen.maxLen = len;
    if ((mb.i32[(m + PH_CSUM_FLAGS) >> 2] & CSUM_VERDICTS) !== 0) seen.verdicts++;
    else {
      const f = flat(mb, m);
      if (f.length >= 34 && f[12] === 8 && f[13] === 0) {
        const ihl = (f[14] & 15) * 4;
        if (cksum(f, 14, ihl) !== 0) seen.badIp++;
        if (f[23] === 6) {
          const tl = ((f[16] << 8) | f[17]) - ihl;
          const src = (f[26] << 24) | (f[27] << 16) | (f[28] << 8) | f[29];
          const dst = (f[30] << 24) | (f[31] << 16) | (f[32] << 8) | f[33];
          const sum = pseudoHeaderSum(src >>> 0, dst >>> 0, 6, tl);
          let s = sum;
          for (let k = 0; k + 1 < tl; k += 2) s += (f[14 + ihl + k] << 8) | f[15 + ihl + k];
          if (tl & 1) s += f[14 + ihl + tl - 1] << 8;
          if (cksumFold(s) !== 0xffff) seen.badTcp++;
        }
      }
    }
    inner(i, m);
  };
  return seen;
}

function flat(mb: Mbufs, m: number): Uint8Array {
  const out = new Uint8Array(mb.i32[(m + PH_LEN) >> 2]);
  let o = 0;
  for (let x = m; x !== 0; x = mb.i32[(x + M_NEXT) >> 2]) {
    const d = mb.i32[(x + M_DATA) >> 2];
    const l = mb.i32[(x + M_LEN) >> 2];
    out.set(mb.u8.subarray(d, d + l), o);
    o += l;
  }
  return out;
}

const SIZE = 3 << 20;

test('offload: the in-memory link offers checksum offload, TSO and LRO on both ends by default', () => {
  const net = chain(2);
  for (const l of net.links)
    for (const ifp of [l.a, l.b]) {
      assert.equal(ifp.capabilities & MEMLINK_CAPS, MEMLINK_CAPS);
      assert.equal(ifp.capenable & MEMLINK_CAPS, MEMLINK_CAPS);
    }
  net.close();
});

test('offload: 3 MB byte-exact with TSO/LRO and checksum offload: 64 KiB packets cross the link as one', () => {
  const net = chain(2);
  const rx = watch(net.mb, net.links[0].b);
  const payload = data(SIZE);
  assert.equal(sha(transfer(net, payload, 512 * 1024)), sha(payload));
  const out = net.links[0].a.counters[IFC_OPACKETS];
  // 1448-byte segments would be over 2100 packets; TSO sends ~64 KiB at a time.
  assert.ok(out < 200, `TSO packets sent: ${out}`);
  assert.ok(rx.maxLen > 60_000, `largest frame received ${rx.maxLen}`);
  assert.ok(rx.verdicts > 0, 'the clean link gave checksum verdicts');
  assert.equal(net.hosts[1].st.tcp.stats[TCPS_STAT.rcvbadsum], 0);
  net.close();
});

test('offload: 3 MB byte-exact with every offload off: MTU-sized frames, software checksums all correct', () => {
  const net = chain(2, [[0, 0]]);
  const rx = watch(net.mb, net.links[0].b);
  const payload = data(SIZE, 11);
  assert.equal(sha(transfer(net, payload)), sha(payload));
  assert.ok(rx.maxLen <= MTU + 14, `largest frame ${rx.maxLen}`);
  assert.equal(rx.verdicts, 0);
  assert.ok(rx.frames > SIZE / 1448);
  assert.equal(rx.badIp + rx.badTcp, 0, 'every checksum was computed');
  net.close();
});

test('offload: a TSO sender to a peer with LRO off: the link cuts the packets to the MTU on the way', () => {
  const net = chain(2, [[MEMLINK_CAPS, IFCAP_RXCSUM | IFCAP_TXCSUM]]);
  const rx = watch(net.mb, net.links[0].b);
  const payload = data(SIZE, 12);
  assert.equal(sha(transfer(net, payload)), sha(payload));
  assert.ok(net.links[0].a.counters[IFC_OPACKETS] < 200, 'the sender used TSO');
  assert.ok(rx.maxLen <= MTU + 14, `largest frame ${rx.maxLen}`);
  assert.ok(net.links[0].b.counters[IFC_IPACKETS] > SIZE / 1448, 'the receiver saw MTU-sized frames');
  net.close();
});

test('offload: a TSO peer with checksum offload off on the receiver: the link computes every checksum', () => {
  const net = chain(2, [[MEMLINK_CAPS, IFCAP_TXCSUM | IFCAP_TSO4]]);
  const rx = watch(net.mb, net.links[0].b);
  const payload = data(1 << 20, 13);
  assert.equal(sha(transfer(net, payload)), sha(payload));
  assert.equal(rx.verdicts, 0);
  assert.equal(rx.badIp + rx.badTcp, 0);
  assert.ok(rx.maxLen <= MTU + 14);
  net.close();
});

test('offload: a TSO flow forwarded by a router to a link without offloads is segmented correctly (tcp_gso)', () => {
  // h0 -(all offloads)- h1 (router) -(none)- h2
  const net = chain(3, [undefined, [0, 0]]);
  const atRouter = watch(net.mb, net.links[0].b);
  const atB = watch(net.mb, net.links[1].b);
  const payload = data(SIZE, 14);
  assert.equal(sha(transfer(net, payload)), sha(payload));
  assert.ok(atRouter.maxLen > 60_000, `the router received large packets (${atRouter.maxLen})`);
  assert.ok(atB.maxLen <= MTU + 14, `largest frame after the router ${atB.maxLen}`);
  assert.ok(atB.frames > SIZE / 1448);
  assert.equal(atB.verdicts, 0);
  assert.equal(atB.badIp + atB.badTcp, 0, 'the router computed every checksum of every segment');
  assert.equal(net.hosts[2].st.tcp.stats[TCPS_STAT.rcvbadsum], 0);
  assert.ok(net.hosts[1].st.stats.ip[IPS.forward] > 0);
  net.close();
});

test('offload: the router keeps TSO packets whole toward a link that has TSO and LRO', () => {
  const net = chain(3);
  const atB = watch(net.mb, net.links[1].b);
  const payload = data(SIZE, 15);
  assert.equal(sha(transfer(net, payload, 512 * 1024)), sha(payload));
  assert.ok(atB.maxLen > 60_000);
  assert.ok(net.links[1].a.counters[IFC_OPACKETS] < 300);
  net.close();
});

test('offload: net.inet.tcp.tso=0 sends MSS-sized segments on a TSO link', () => {
  const net = chain(2);
  net.hosts[0].st.tcp.cfg.tso = 0;
  const payload = data(1 << 20, 16);
  assert.equal(sha(transfer(net, payload)), sha(payload));
  assert.ok(net.links[0].a.counters[IFC_OPACKETS] > (1 << 20) / 1448);
  net.close();
});

test('offload: a corrupting link claims nothing clean: no verdicts, the receiver catches and counts every bad frame', () => {
  const net = chain(2);
  const f = FaultInjector.wrap(net.links[0].a, { seed: 5, corrupt: 0.02 });
  const rx = watch(net.mb, net.links[0].b);
  const payload = data(1 << 20, 17);
  assert.equal(sha(transfer(net, payload)), sha(payload), 'retransmission repaired every corrupted segment');
  assert.ok(f.stats.corrupted > 0, 'frames were corrupted');
  assert.equal(rx.verdicts, 0, 'no frame through the fault injector arrived with a verdict');
  assert.ok(rx.maxLen <= MTU + 14, 'TSO packets were cut before the impairment');
  const st = net.hosts[1].st;
  const caught = st.tcp.stats[TCPS_STAT.rcvbadsum] + st.stats.ip[IPS.badsum];
  assert.ok(caught > 0, `bad checksums counted: ${caught}`);
  net.close();
});

test('offload: capabilities can be switched per end at run time (ifconfig -tso -lro -txcsum -rxcsum)', () => {
  const net = chain(2);
  const [ia, ib] = [net.links[0].a, net.links[0].b];
  ia.capenable &= ~IFCAP_TSO4;
  ib.capenable &= ~(IFCAP_LRO | IFCAP_RXCSUM);
  const rx = watch(net.mb, ib);
  const payload = data(1 << 20, 18);
  assert.equal(sha(transfer(net, payload)), sha(payload));
  assert.ok(ia.counters[IFC_OPACKETS] > (1 << 20) / 1448, 'no TSO');
  assert.equal(rx.verdicts, 0);
  assert.equal(rx.badIp + rx.badTcp, 0);
  net.close();
});
