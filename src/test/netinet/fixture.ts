/**
 * One host on a manual clock, driven packet by packet: a Stack on
 * LocalThread.manual() with one Ethernet interface whose driver keeps every
 * transmitted frame (copied out, the mbuf freed) for the test to read.
 * Frames are built in JS and handed to the interface as received; each
 * inject runs the thread to idle, so what the stack sent in answer is in
 * `out` when inject returns. Time moves only by advance().
 */
import assert from 'node:assert/strict';
import { mbufLeakCheck, testUma } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import type { Uma } from '../../uma/uma.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { M_DATA, M_LEN, M_NEXT, M_PKTHDR, MT_DATA, PH_LEN } from '../../kern/mbuf/layout.js';
import { Ifnet, type IfDriver } from '../../net/if.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';
import { Stack, type StackOptions } from '../../netinet/stack.js';
import { ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ethEmit, readMac } from '../../wire/ethernet.js';
import { IP_HLEN_MIN, IPPROTO_ICMP, IPPROTO_UDP, ipv4Emit } from '../../wire/ipv4.js';
import { UDP_HLEN, udpEmit } from '../../wire/udp.js';
import { ICMP_ECHO, ICMP_HLEN } from '../../wire/icmp.js';
import { ARP_LEN, arpEmit } from '../../wire/arp.js';
import { cksum } from '../../wire/checksum.js';
import { write16 } from '../../wire/bytes.js';

export const MAC_US = 0x0200_0000_0001;
export const MAC_PEER = 0x0200_0000_0002;
export const IP_US = 0x0a000001; // 10.0.0.1/24
export const IP_PEER = 0x0a000002;
export const IP_BCAST = 0x0a0000ff;

/** A driver that copies each transmitted frame out and frees the mbuf. */
export class CaptureDriver implements IfDriver {
  readonly frames: Uint8Array[] = [];
  constructor(private readonly mb: Mbufs) {}
  output(_ifp: Ifnet, m: number): void {
    const i32 = this.mb.i32;
    const f = new Uint8Array(i32[(m + PH_LEN) >> 2]);
    let at = 0;
    for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
      const d = i32[(x + M_DATA) >> 2];
      const n = i32[(x + M_LEN) >> 2];
      f.set(this.mb.u8.subarray(d, d + n), at);
      at += n;
    }
    this.frames.push(f);
    this.mb.m_freem(m);
  }
}

export interface Host {
  uma: Uma;
  mb: Mbufs;
  td: LocalThread;
  st: Stack;
  ifp: Ifnet;
  /** Frames the host transmitted since the last take(). */
  out: Uint8Array[];
  /** Hand a frame to the interface as received, then run the thread to idle. */
  inject(frame: Uint8Array): void;
  /** The frames sent since the last take(), and forget them. */
  take(): Uint8Array[];
  /** Close the stack, run the thread dry, check that no zone leaked. */
  finish(): void;
}

/** A host (default 10.0.0.1/24, MAC 02:00:00:00:00:01) on a manual clock; the gratuitous ARP of its address is discarded. */
export function host(opts: StackOptions = {}, uma?: Uma, mb?: Mbufs, addr = IP_US, mac = MAC_US): Host {
  uma ??= testUma({ size: 64 << 20 });
  mb ??= Mbufs.create(uma);
  mb.drainPacketCache(); // a second host on the same arena: start from an empty packet cache
  const done = mbufLeakCheck(uma, mb);
  const td = LocalThread.manual();
  const st = new Stack(mb, { name: 'h', thread: td, ...opts });
  const ifp = new Ifnet(mb, 'mem0', mac);
  const cap = new CaptureDriver(mb);
  ifp.driver = cap;
  st.addInterface(ifp, addr, 24);
  td.runUntilIdle();
  cap.frames.length = 0;
  const h: Host = {
    uma,
    mb,
    td,
    st,
    ifp,
    out: cap.frames,
    inject(frame) {
      const big = frame.length > 2048;
      const m = big ? mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, 16384) : mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
      assert.ok(m !== 0, 'no mbuf for the injected frame');
      mb.u8.set(frame, mb.i32[(m + M_DATA) >> 2]);
      mb.i32[(m + M_LEN) >> 2] = frame.length;
      mb.i32[(m + PH_LEN) >> 2] = frame.length;
      ifp.input(m);
      td.runUntilIdle();
    },
    take() {
      const r = cap.frames.slice();
      cap.frames.length = 0;
      return r;
    },
    finish() {
      st.close();
      td.runUntilIdle();
      done();
    },
  };
  return h;
}

/** An Ethernet frame around payload. */
export function eth(dst: number, src: number, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETH_HLEN + payload.length);
  ethEmit(f, 0, dst, src, type);
  f.set(payload, ETH_HLEN);
  return f;
}

export interface IpOpts {
  src?: number;
  dst?: number;
  proto?: number;
  ttl?: number;
  id?: number;
  /** The whole offset field: flags | (offset >> 3). */
  offField?: number;
  /** Total length written in the header (default: the real one). */
  totalLen?: number;
}

/** An IPv4 packet (20-byte header, checksummed) around payload. */
export function ip(payload: Uint8Array, o: IpOpts = {}): Uint8Array {
  const p = new Uint8Array(IP_HLEN_MIN + payload.length);
  ipv4Emit(p, 0, 0, o.totalLen ?? p.length, o.id ?? 1, o.offField ?? 0, o.ttl ?? 64, o.proto ?? IPPROTO_UDP, o.src ?? IP_PEER, o.dst ?? IP_US, true);
  p.set(payload, IP_HLEN_MIN);
  return p;
}

/** A UDP header + data, checksummed for (src, dst). */
export function udp(sport: number, dport: number, data: Uint8Array, src = IP_PEER, dst = IP_US): Uint8Array {
  const u = new Uint8Array(UDP_HLEN + data.length);
  u.set(data, UDP_HLEN);
  udpEmit(u, 0, sport, dport, u.length, src, dst, true);
  return u;
}

/** An ICMP echo request (type 8) with id, seq and data, checksummed. */
export function echo(id: number, seq: number, data: Uint8Array = new Uint8Array(8), type = ICMP_ECHO): Uint8Array {
  const c = new Uint8Array(ICMP_HLEN + data.length);
  c[0] = type;
  write16(c, 4, id);
  write16(c, 6, seq);
  c.set(data, ICMP_HLEN);
  write16(c, 2, cksum(c, 0, c.length));
  return c;
}

/** A full frame: UDP from src:sport to dst:dport, link destination dmac. */
export function udpFrame(o: { src?: number; dst?: number; sport?: number; dport?: number; data?: Uint8Array; dmac?: number; smac?: number }): Uint8Array {
  const src = o.src ?? IP_PEER;
  const dst = o.dst ?? IP_US;
  return eth(o.dmac ?? MAC_US, o.smac ?? MAC_PEER, ETHERTYPE_IPV4, ip(udp(o.sport ?? 4000, o.dport ?? 7, o.data ?? new Uint8Array(4), src, dst), { src, dst }));
}

/** A full frame: echo request from src to dst, link destination dmac. */
export function echoFrame(o: { src?: number; dst?: number; dmac?: number; smac?: number; id?: number; seq?: number }): Uint8Array {
  return eth(o.dmac ?? MAC_US, o.smac ?? MAC_PEER, ETHERTYPE_IPV4, ip(echo(o.id ?? 1, o.seq ?? 1), { src: o.src ?? IP_PEER, dst: o.dst ?? IP_US, proto: IPPROTO_ICMP }));
}

/** An ARP packet in a frame (padded to 60 bytes). */
export function arpFrame(op: number, sha: number, spa: number, tha: number, tpa: number, dmac: number, smac = sha): Uint8Array {
  const a = new Uint8Array(ARP_LEN + 18);
  arpEmit(a, 0, op, sha, spa, tha, tpa);
  return eth(dmac, smac, ETHERTYPE_ARP, a);
}

/** What a transmitted frame is, for assertions. */
export interface Sent {
  dmac: number;
  type: number;
  /** IPv4 fields (when type is IPv4). */
  src: number;
  dst: number;
  proto: number;
  /** First two bytes of the transport header (ICMP type and code). */
  icmpType: number;
  icmpCode: number;
}

export function parse(f: Uint8Array): Sent {
  const type = (f[12] << 8) | f[13];
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const isIp = type === ETHERTYPE_IPV4;
  const hl = isIp ? (f[ETH_HLEN] & 15) * 4 : 0;
  return {
    dmac: readMac(f, 0),
    type,
    src: isIp ? v.getUint32(ETH_HLEN + 12) : 0,
    dst: isIp ? v.getUint32(ETH_HLEN + 16) : 0,
    proto: isIp ? f[ETH_HLEN + 9] : 0,
    icmpType: isIp ? f[ETH_HLEN + hl] : -1,
    icmpCode: isIp ? f[ETH_HLEN + hl + 1] : -1,
  };
}

/** A bound UDP PCB on the host's port, and a function that takes its queued datagrams (freeing them) and says how many. */
export function listen(h: Host, port: number): { drain(): number } {
  const pcb = h.st.udp.attach();
  assert.equal(h.st.udp.bind(pcb, 0, port), 0);
  return {
    drain() {
      let n = 0;
      for (let m = pcb.dequeue(); m !== 0; m = pcb.dequeue()) {
        h.mb.m_freem(m);
        n++;
      }
      return n;
    },
  };
}
