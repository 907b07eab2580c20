/**
 * Interface offloads in software: what a NIC does for the stack when
 * if_capenable says so, done here whenever a packet reaches a place that
 * cannot take the request (an interface without the capability, a wire
 * that may corrupt, a capture file), and the receive side's verdicts.
 *
 * The requests and verdicts are m_pkthdr.csum_flags (kern/mbuf/layout.ts
 * CSUM_*), as FreeBSD's:
 *
 *  - CSUM_IP: the IPv4 header checksum is not computed yet;
 *  - CSUM_TCP / CSUM_UDP: the L4 checksum field holds only the
 *    pseudo-header sum (in_pseudo with the length: what in_delayed_cksum
 *    completes);
 *  - CSUM_TSO: the packet carries up to if_hw_tsomax bytes and is to be cut
 *    into tso_segsz-byte segments (FreeBSD's TSO: th_sum holds the
 *    pseudo-header sum without the length);
 *  - on receive, CSUM_IP_CHECKED|CSUM_IP_VALID and
 *    CSUM_DATA_VALID|CSUM_PSEUDO_HDR with csum_data 0xffff say the checks
 *    are done (ip_input and tcp_input skip them).
 *
 * The receive verdicts are only ever given by a link that cannot corrupt
 * (linkDeliver with clean = true) and only for what the sender left
 * undone, so a checksum that was computed is always verified again, and a
 * wire with a fault injector first makes every frame a real one
 * (wireFrames: segmented, checksums complete, no verdicts), so corruption
 * is caught and counted by the stack.
 *
 * The segmentation (tcpGso, Linux's GSO / FreeBSD's tcp_lro in reverse):
 * one header mbuf per segment holding copies of the link, IP and TCP
 * headers, the payload referenced from the original by m_copym (shared
 * clusters, no copy); IP id counts up from the original's, sequence
 * numbers advance by tso_segsz, FIN and PUSH only on the last segment, CWR
 * only on the first.
 *
 * Everything runs on the thread that owns the packet; no lock; never
 * sleeps (M_NOWAIT: a failed allocation drops the rest of the packet and
 * says so).
 */
import { M_NOWAIT } from '../uma/flags.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import {
  CSUM_COALESCED,
  CSUM_DATA_VALID,
  CSUM_DELAY_DATA,
  CSUM_IP,
  CSUM_IP_CHECKED,
  CSUM_IP_VALID,
  CSUM_L3_CALC,
  CSUM_L3_VALID,
  CSUM_L4_CALC,
  CSUM_L4_VALID,
  CSUM_PSEUDO_HDR,
  CSUM_TCP,
  CSUM_TSO,
  CSUM_UDP,
  M_DATA,
  M_LEN,
  M_NEXT,
  MT_DATA,
  PH_CSUM_DATA,
  PH_CSUM_FLAGS,
  PH_FLOWID,
  PH_LEN,
  PH_RCVIF,
  PH_TSO_VTAG,
} from '../kern/mbuf/layout.js';
import { m_copym } from '../kern/mbuf/ops.js';
import { read16, read32, write16, write32 } from '../wire/bytes.js';
import { cksumFinish, cksumFold, pseudoHeaderSum } from '../wire/checksum.js';
import { IP_HLEN_MIN, IP_ID, IP_LEN, IPPROTO_TCP, IPPROTO_UDP, ipDst, ipHlen, ipProto, ipSrc, ipv4SetCksum } from '../wire/ipv4.js';
import { TCP_FLAGS, TCP_HLEN, TCP_SEQ, TCP_SUM, TH_CWR, TH_FIN, TH_PUSH, tcpHlen } from '../wire/tcp.js';
import { chainSum, pullup } from './mchain.js';
import { IFCAP_LRO, IFCAP_RXCSUM, IFT_PROPVIRTUAL, type Ifnet } from './if.js';

/** What a sender may leave to the interface. */
export const CSUM_REQUESTS = CSUM_IP | CSUM_DELAY_DATA | CSUM_TSO;
/** The receive verdicts (cleared whenever a frame crosses a wire: they belong to one receiver). */
export const CSUM_VERDICTS = CSUM_L3_CALC | CSUM_L3_VALID | CSUM_L4_CALC | CSUM_L4_VALID | CSUM_COALESCED;
/** Offset of the UDP checksum field. */
const UDP_SUM = 6;
/** Header room kept in front of a segment built at layer 3 (the Ethernet header goes there). */
const SEG_LINKROOM = 16;

/** Link header bytes in front of the IP header of a frame on ifp (Ethernet and loopback: 14; layer 3: 0). */
export function ifL2Len(ifp: Ifnet): number {
  return ifp.type === IFT_PROPVIRTUAL ? 0 : 14;
}

/** m_pkthdr.csum_flags of m. */
export function csumFlags(mb: Mbufs, m: number): number {
  return mb.i32[(m + PH_CSUM_FLAGS) >> 2];
}

/**
 * The L4 checksum done in software: the field at chain offset off + sumOff
 * holds the pseudo-header sum (with the length); sum [off, off + len) and
 * store the complement (a UDP result of 0 is sent as 0xffff, RFC 768). The
 * field must lie in the first mbuf. Pure arithmetic on the chain.
 */
export function l4CksumFinish(mb: Mbufs, m: number, off: number, len: number, sumOff: number, udp: boolean): void {
  let c = cksumFinish(chainSum(mb, m, off, len, 0));
  if (udp && c === 0) c = 0xffff;
  write16(mb.u8, mb.i32[(m + M_DATA) >> 2] + off + sumOff, c);
}

/**
 * in_delayed_cksum (and the IP header's): compute in software every
 * checksum m still requests (CSUM_IP, CSUM_TCP, CSUM_UDP; not CSUM_TSO,
 * which tcpGso handles) and clear those requests. `l2` bytes of link
 * header precede the IP header. Returns m, or 0 when the headers could not
 * be made contiguous (m freed).
 */
export function inDelayedCksum(mb: Mbufs, m: number, l2: number): number {
  const fl = mb.i32[(m + PH_CSUM_FLAGS) >> 2];
  if ((fl & (CSUM_IP | CSUM_DELAY_DATA)) === 0) return m;
  m = pullup(mb, m, l2 + IP_HLEN_MIN);
  if (m === 0) return 0;
  const u8 = mb.u8;
  let h = mb.i32[(m + M_DATA) >> 2] + l2;
  const hlen = ipHlen(u8, h);
  if ((fl & CSUM_DELAY_DATA) !== 0 && (fl & CSUM_TSO) === 0) {
    const udp = ipProto(u8, h) === IPPROTO_UDP;
    const sumOff = udp ? UDP_SUM : TCP_SUM;
    m = pullup(mb, m, l2 + hlen + sumOff + 2);
    if (m === 0) return 0;
    h = mb.i32[(m + M_DATA) >> 2] + l2;
    l4CksumFinish(mb, m, l2 + hlen, read16(u8, h + IP_LEN) - hlen, sumOff, udp);
  }
  if ((fl & CSUM_IP) !== 0) ipv4SetCksum(u8, h);
  mb.i32[(m + PH_CSUM_FLAGS) >> 2] = fl & ~(CSUM_IP | ((fl & CSUM_TSO) === 0 ? CSUM_DELAY_DATA : 0));
  return m;
}

/**
 * A link that cannot corrupt delivers m to `rx` (FreeBSD's if_simloop and a
 * NIC's receive offload in one): old verdicts go; with rx's RXCSUM on,
 * what the sender left undone counts as verified (CSUM_IP_CHECKED |
 * CSUM_IP_VALID, CSUM_DATA_VALID | CSUM_PSEUDO_HDR with csum_data 0xffff;
 * the requests stay, so a router sending it on where nothing completes them
 * does it in software); with RXCSUM off it is completed here, as the
 * sender's NIC would have. `loop`: the packet never left this stack's
 * memory (a packet to one of our own addresses): verified whatever rx
 * says. Returns m, or 0 (freed: no memory).
 */
export function linkVerdicts(mb: Mbufs, m: number, rx: Ifnet, l2: number, loop = false): number {
  const i32 = mb.i32;
  const fl = i32[(m + PH_CSUM_FLAGS) >> 2] & ~CSUM_VERDICTS;
  i32[(m + PH_CSUM_FLAGS) >> 2] = fl;
  if ((fl & CSUM_REQUESTS) === 0) return m;
  if (!loop && (rx.capenable & IFCAP_RXCSUM) === 0) return (fl & CSUM_TSO) === 0 ? inDelayedCksum(mb, m, l2) : m;
  let v = fl;
  if ((fl & CSUM_IP) !== 0) v |= CSUM_IP_CHECKED | CSUM_IP_VALID;
  if ((fl & (CSUM_DELAY_DATA | CSUM_TSO)) !== 0) {
    v |= CSUM_DATA_VALID | CSUM_PSEUDO_HDR;
    i32[(m + PH_CSUM_DATA) >> 2] = 0xffff;
  }
  if ((fl & CSUM_TSO) !== 0) v |= CSUM_COALESCED;
  i32[(m + PH_CSUM_FLAGS) >> 2] = v;
  return m;
}

/**
 * Transmit m over an in-memory wire to `rx`, as a pair of NICs would:
 * a CSUM_TSO packet goes whole when rx takes large receives (LRO, with
 * RXCSUM: its checksum is never computed), else it
 * is cut here (TSO in the "hardware"); each frame then gets rx's verdicts
 * (linkVerdicts) and goes to `deliver`. A wire that may corrupt is not
 * clean: use wireFrames in front of it instead. Consumes m.
 */
export function linkTransmit(mb: Mbufs, m: number, rx: Ifnet, l2: number, deliver: (m: number) => void): void {
  if ((mb.i32[(m + PH_CSUM_FLAGS) >> 2] & CSUM_TSO) !== 0 && (rx.capenable & (IFCAP_LRO | IFCAP_RXCSUM)) !== (IFCAP_LRO | IFCAP_RXCSUM)) {
    const sw = (rx.capenable & IFCAP_RXCSUM) === 0;
    tcpGso(mb, m, l2, sw, (s) => {
      const x = linkVerdicts(mb, s, rx, l2);
      if (x !== 0) deliver(x);
    });
    return;
  }
  const x = linkVerdicts(mb, m, rx, l2);
  if (x !== 0) deliver(x);
}

/**
 * Make m real frames for a wire that may impair them (the fault injector):
 * a TSO packet is segmented, every checksum completed, verdicts cleared;
 * each frame goes to `out`. Consumes m.
 */
export function wireFrames(mb: Mbufs, m: number, l2: number, out: (m: number) => void): void {
  const i32 = mb.i32;
  const fl = i32[(m + PH_CSUM_FLAGS) >> 2];
  if ((fl & CSUM_TSO) !== 0) {
    tcpGso(mb, m, l2, true, (s) => {
      i32[(s + PH_CSUM_FLAGS) >> 2] = 0;
      out(s);
    });
    return;
  }
  if ((fl & CSUM_REQUESTS) !== 0) {
    m = inDelayedCksum(mb, m, l2);
    if (m === 0) return;
  }
  i32[(m + PH_CSUM_FLAGS) >> 2] &= ~CSUM_VERDICTS;
  out(m);
}

/**
 * tcp_gso: cut CSUM_TSO packet m (l2 bytes of link header, then IPv4 and
 * TCP headers, then the payload) into segments of tso_segsz payload bytes
 * and hand each to `out`. With `sw` every checksum is computed here (the
 * next hop does no offload); otherwise the segments request CSUM_TCP (the
 * IP header checksum is always computed: 20 bytes). Frees m. Returns the
 * number of segments sent, or -1 when the packet was malformed or memory
 * ran out (the rest is dropped; the caller counts it).
 */
export function tcpGso(mb: Mbufs, m: number, l2: number, sw: boolean, out: (m: number) => void): number {
  const i32 = mb.i32;
  const u8 = mb.u8;
  const mss = i32[(m + PH_TSO_VTAG) >> 2] & 0xffff;
  m = pullup(mb, m, l2 + IP_HLEN_MIN);
  if (m === 0) return -1;
  const ihl = ipHlen(u8, i32[(m + M_DATA) >> 2] + l2);
  m = pullup(mb, m, l2 + ihl + TCP_HLEN);
  if (m === 0) return -1;
  const thl = tcpHlen(u8, i32[(m + M_DATA) >> 2] + l2 + ihl);
  const hdr = l2 + ihl + thl;
  if (thl < TCP_HLEN || mss === 0 || ipProto(u8, i32[(m + M_DATA) >> 2] + l2) !== IPPROTO_TCP || i32[(m + PH_LEN) >> 2] <= hdr) {
    mb.m_freem(m);
    return -1;
  }
  m = pullup(mb, m, hdr);
  if (m === 0) return -1;
  const h0 = i32[(m + M_DATA) >> 2];
  const payload = i32[(m + PH_LEN) >> 2] - hdr;
  const src = ipSrc(u8, h0 + l2);
  const dst = ipDst(u8, h0 + l2);
  const id0 = read16(u8, h0 + l2 + IP_ID);
  const seq0 = read32(u8, h0 + l2 + ihl + TCP_SEQ);
  const flags0 = u8[h0 + l2 + ihl + TCP_FLAGS];
  let n = 0;
  for (let off = 0; off < payload; off += mss, n++) {
    const len = Math.min(mss, payload - off);
    const s = gsoSegment(mb, m, hdr, l2, off, len);
    if (s === 0) {
      mb.m_freem(m);
      return -1;
    }
    const h = i32[(s + M_DATA) >> 2] + l2;
    const th = h + ihl;
    write16(u8, h + IP_LEN, ihl + thl + len);
    write16(u8, h + IP_ID, (id0 + n) & 0xffff);
    ipv4SetCksum(u8, h);
    write32(u8, th + TCP_SEQ, (seq0 + off) >>> 0);
    let f = flags0;
    if (off + len < payload) f &= ~(TH_FIN | TH_PUSH);
    if (off > 0) f &= ~TH_CWR;
    u8[th + TCP_FLAGS] = f;
    write16(u8, th + TCP_SUM, cksumFold(pseudoHeaderSum(src, dst, IPPROTO_TCP, thl + len)));
    if (sw) {
      l4CksumFinish(mb, s, l2 + ihl, thl + len, TCP_SUM, false);
      i32[(s + PH_CSUM_FLAGS) >> 2] = 0;
    } else {
      i32[(s + PH_CSUM_FLAGS) >> 2] = CSUM_TCP;
      i32[(s + PH_CSUM_DATA) >> 2] = TCP_SUM;
    }
    out(s);
  }
  mb.m_freem(m);
  return n;
}

/** One segment of tcpGso: a header mbuf with the headers copied, then len payload bytes at off shared from m. 0: no memory. */
function gsoSegment(mb: Mbufs, m: number, hdr: number, l2: number, off: number, len: number): number {
  const i32 = mb.i32;
  const s = mb.m_gethdr(M_NOWAIT, MT_DATA);
  if (s === 0) return 0;
  if (l2 === 0) i32[(s + M_DATA) >> 2] += SEG_LINKROOM;
  const d = i32[(s + M_DATA) >> 2];
  const h = i32[(m + M_DATA) >> 2];
  mb.u8.copyWithin(d, h, h + hdr);
  i32[(s + M_LEN) >> 2] = hdr;
  i32[(s + PH_LEN) >> 2] = hdr + len;
  i32[(s + PH_RCVIF) >> 2] = i32[(m + PH_RCVIF) >> 2];
  i32[(s + PH_FLOWID) >> 2] = i32[(m + PH_FLOWID) >> 2];
  if (len > 0) {
    const data = m_copym(mb, m, hdr + off, len, M_NOWAIT);
    if (data === 0) {
      mb.m_freem(s);
      return 0;
    }
    i32[(s + M_NEXT) >> 2] = data;
  }
  return s;
}

/**
 * The TCP checksum request of a segment tcp_output built (th at arena
 * offset th, plen bytes of TCP header and data): the pseudo-header sum in
 * th_sum and CSUM_TCP, or with tsoSegsz > 0 a TSO request (the
 * pseudo-header sum without the length, CSUM_TSO | CSUM_TCP, tso_segsz).
 * ip_output completes it in software where the interface does not.
 */
export function tcpCksumRequest(mb: Mbufs, m: number, th: number, src: number, dst: number, plen: number, tsoSegsz: number): void {
  const i32 = mb.i32;
  write16(mb.u8, th + TCP_SUM, cksumFold(pseudoHeaderSum(src, dst, IPPROTO_TCP, tsoSegsz > 0 ? 0 : plen)));
  i32[(m + PH_CSUM_DATA) >> 2] = TCP_SUM;
  if (tsoSegsz > 0) {
    i32[(m + PH_CSUM_FLAGS) >> 2] = CSUM_TSO | CSUM_TCP;
    i32[(m + PH_TSO_VTAG) >> 2] = (i32[(m + PH_TSO_VTAG) >> 2] & ~0xffff) | tsoSegsz;
  } else i32[(m + PH_CSUM_FLAGS) >> 2] = CSUM_TCP;
}

/**
 * The receive side's L4 verdict for tcp_input / udp_input: true when the
 * interface said the checksum is good (CSUM_DATA_VALID | CSUM_PSEUDO_HDR,
 * csum_data 0xffff), so the software check is skipped.
 */
export function l4Verified(mb: Mbufs, m: number): boolean {
  const i32 = mb.i32;
  return (i32[(m + PH_CSUM_FLAGS) >> 2] & (CSUM_DATA_VALID | CSUM_PSEUDO_HDR)) === (CSUM_DATA_VALID | CSUM_PSEUDO_HDR) && i32[(m + PH_CSUM_DATA) >> 2] === 0xffff;
}

/** The receive side's IP header verdict: 1 verified good, 0 checked bad, -1 not checked (verify in software). */
export function l3Verdict(mb: Mbufs, m: number): number {
  const fl = mb.i32[(m + PH_CSUM_FLAGS) >> 2];
  if ((fl & CSUM_IP_CHECKED) === 0) return -1;
  return (fl & CSUM_IP_VALID) !== 0 ? 1 : 0;
}

/** Is any checksum of m (about to be captured or to leave) still undone? (CSUM_UDP too.) */
export function csumUndone(mb: Mbufs, m: number): boolean {
  return (mb.i32[(m + PH_CSUM_FLAGS) >> 2] & (CSUM_IP | CSUM_TCP | CSUM_UDP)) !== 0;
}

/**
 * Capture a TSO packet as a wire would judge it: its th_sum holds the
 * pseudo-header sum without the length (what the driver or tcpGso finishes
 * per segment), which a capture reader flags as a bad checksum. Write the
 * whole segment's checksum, let `write` copy the frame out, then put the
 * field back, so the driver still sees what it expects. The headers are
 * pulled up first; returns m (maybe a new head), or 0 when that failed (m
 * freed). Only on capture; no lock; never sleeps.
 */
export function withTsoCksumShown(mb: Mbufs, m: number, l2: number, write: (m: number) => void): number {
  const fl = mb.i32[(m + PH_CSUM_FLAGS) >> 2];
  if ((fl & CSUM_TSO) === 0) {
    write(m);
    return m;
  }
  m = pullup(mb, m, Math.min(l2 + IP_HLEN_MIN + TCP_HLEN, mb.i32[(m + PH_LEN) >> 2]));
  if (m === 0) return 0;
  const u8 = mb.u8;
  const h = mb.i32[(m + M_DATA) >> 2] + l2;
  const hlen = ipHlen(u8, h);
  if (ipProto(u8, h) !== IPPROTO_TCP || mb.i32[(m + M_LEN) >> 2] < l2 + hlen + TCP_SUM + 2) {
    write(m);
    return m;
  }
  const field = h + hlen + TCP_SUM;
  const saved = read16(u8, field);
  const l4len = read16(u8, h + IP_LEN) - hlen;
  write16(u8, field, cksumFold(pseudoHeaderSum(ipSrc(u8, h), ipDst(u8, h), IPPROTO_TCP, l4len)));
  l4CksumFinish(mb, m, l2 + hlen, l4len, TCP_SUM, false);
  write(m);
  write16(u8, field, saved);
  return m;
}
