/**
 * ip_forward (ip_input.c / ip_fastfwd.c): a packet that is not for this host,
 * received while net.inet.ip.forwarding is on, is sent on toward its
 * destination: TTL decremented (RFC 1624 incremental checksum update),
 * routed by the routing table, and sent whole or fragmented to the outgoing
 * MTU. What cannot go on is answered as RFC 1812 asks:
 *   - TTL would reach 0          -> ICMP time exceeded in transit (11/0);
 *   - no route                   -> ICMP host unreachable (3/1);
 *   - DF set and too big         -> ICMP fragmentation needed (3/4) with the
 *                                   next-hop MTU (RFC 1191).
 * Broadcasts and packets with a source or destination that must never be
 * forwarded (0/8, 127/8, class D/E, limited broadcast) are dropped and
 * counted (ips_cantforward), never answered.
 *
 * Per stack instance; no lock; never sleeps. The packet is always consumed.
 */
import { CSUM_DELAY_DATA, CSUM_IP, CSUM_TSO, M_BCAST, M_FLAGS, M_LEN, M_MCAST, PH_CSUM_FLAGS, PH_LEN, PH_TSO_VTAG } from '../kern/mbuf/layout.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { inDelayedCksum } from '../net/if_offload.js';
import { tcpHlen } from '../wire/tcp.js';
import { ipGsoOutput } from './ip.js';
import { read16, write16 } from '../wire/bytes.js';
import { cksumUpdate16 } from '../wire/checksum.js';
import {
  INADDR_BROADCAST,
  IP_DF,
  IP_HLEN_MIN,
  IP_MF,
  IP_OFFMASK,
  ipDst,
  ipHlen,
  ipOffField,
  ipProto,
  ipSrc,
  ipTotalLen,
  ipTtl,
  ipv4Emit,
  ipv4SetCksum,
} from '../wire/ipv4.js';
import { ICMP_TIMXCEED, ICMP_TIMXCEED_INTRANS, ICMP_UNREACH, ICMP_UNREACH_HOST, ICMP_UNREACH_NEEDFRAG } from '../wire/icmp.js';
import { IFCAP_TSO4, IFCAP_TXCSUM, type Ifnet } from '../net/if.js';
import { copyPacket, mtod, prepend } from '../net/mchain.js';
import { IPS } from './stats.js';
import type { Stack } from './stack.js';

/** IPTTLDEC: how much a router takes off the TTL. */
export const IPTTLDEC = 1;
/** Offset of the TTL|protocol word in the IP header (the word the TTL decrement changes). */
const IP_TTLPROTO = 8;
const IP_SUM_OFF = 10;

/**
 * May an address appear as source or destination of a forwarded packet?
 * Not "this network" (0/8), loopback (127/8), multicast and class E
 * (224/3, which takes in 255.255.255.255). Pure; no lock.
 */
export function ipForwardable(a: number): boolean {
  const top = a >>> 24;
  return top !== 0 && top !== 127 && top < 224;
}

/**
 * ip_forward: ifp received m (IP header in front, validated, not for us).
 * Consumes m.
 */
export function ipForward(st: Stack, ifp: Ifnet, m: number): void {
  const mb = st.mb;
  const u8 = mb.u8;
  const s = st.stats.ip;
  let h = mtod(mb, m);
  const src = ipSrc(u8, h);
  const dst = ipDst(u8, h);
  if ((mb.i32[(m + M_FLAGS) >> 2] & (M_BCAST | M_MCAST)) !== 0 || !ipForwardable(src) || !ipForwardable(dst) || dst === INADDR_BROADCAST || st.isBroadcast(dst)) {
    s[IPS.cantforward]++;
    mb.m_freem(m);
    return;
  }
  if (ipTtl(u8, h) <= IPTTLDEC) {
    s[IPS.cantforward]++;
    st.icmp.error(m, ICMP_TIMXCEED, ICMP_TIMXCEED_INTRANS, 0);
    mb.m_freem(m);
    return;
  }
  const r = st.routes.lookup(dst);
  if (r === null) {
    s[IPS.noroute]++;
    s[IPS.cantforward]++;
    st.icmp.error(m, ICMP_UNREACH, ICMP_UNREACH_HOST, 0);
    mb.m_freem(m);
    return;
  }
  const out = r.ifp;
  const nexthop = r.gateway === 0 ? dst : r.gateway;
  const total = ipTotalLen(u8, h);
  const off = ipOffField(u8, h);
  const csum = mb.i32[(m + PH_CSUM_FLAGS) >> 2];
  // A TSO packet (a large receive from a link with LRO) is judged by the segments it stands for.
  const tso = (csum & CSUM_TSO) !== 0;
  const size = tso ? ipHlen(u8, h) + tcpHlenOf(mb, m, h) + (mb.i32[(m + PH_TSO_VTAG) >> 2] & 0xffff) : total;
  if (size > out.mtu && (off & IP_DF) !== 0) {
    // Quote the header as received (TTL not yet decremented), as FreeBSD's mcopy is.
    s[IPS.cantfrag]++;
    s[IPS.cantforward]++;
    st.icmp.error(m, ICMP_UNREACH, ICMP_UNREACH_NEEDFRAG, out.mtu);
    mb.m_freem(m);
    return;
  }
  decrementTtl(st, m, out, u8, h);
  s[IPS.forward]++;
  if (tso && (out.capenable & IFCAP_TSO4) === 0) {
    ipGsoOutput(st, out, m, nexthop);
    return;
  }
  if (total <= out.mtu || tso) {
    forwardCksum(st, out, m, nexthop);
    return;
  }
  if ((csum & CSUM_DELAY_DATA) !== 0) {
    // The pieces cannot complete a transport checksum: do it before the cut.
    m = inDelayedCksum(mb, m, 0);
    if (m === 0) {
      s[IPS.odropped]++;
      return;
    }
  }
  h = mtod(mb, m);
  forwardFragment(st, out, m, h, total, nexthop);
}

/** A transport checksum the sender left to the offload is done here when `out` does not offload it. Consumes m. */
function forwardCksum(st: Stack, out: Ifnet, m: number, nexthop: number): void {
  if ((st.mb.i32[(m + PH_CSUM_FLAGS) >> 2] & CSUM_DELAY_DATA) !== 0 && (out.capenable & IFCAP_TXCSUM) === 0) {
    m = inDelayedCksum(st.mb, m, 0);
    if (m === 0) {
      st.stats.ip[IPS.odropped]++;
      return;
    }
  }
  st.etherOutput(out, m, nexthop);
}

/** The TCP header length of the IP packet at h (its first mbuf holds the headers: tcp_output built them so). */
function tcpHlenOf(mb: Mbufs, m: number, h: number): number {
  const t = h + ipHlen(mb.u8, h);
  return mb.i32[(m + M_LEN) >> 2] >= t - h + 13 ? tcpHlen(mb.u8, t) : 60;
}

/**
 * TTL -= 1 with the header checksum fixed up incrementally (RFC 1624); a
 * header whose checksum the sender left to the offload (CSUM_IP: the field
 * holds nothing) keeps the request when the sending link offloads it and is
 * computed whole otherwise.
 */
function decrementTtl(st: Stack, m: number, outIf: Ifnet, u8: Uint8Array, h: number): void {
  const i32 = st.mb.i32;
  const oldWord = read16(u8, h + IP_TTLPROTO);
  u8[h + IP_TTLPROTO] -= IPTTLDEC;
  if ((i32[(m + PH_CSUM_FLAGS) >> 2] & CSUM_IP) === 0) {
    write16(u8, h + IP_SUM_OFF, cksumUpdate16(read16(u8, h + IP_SUM_OFF), oldWord, read16(u8, h + IP_TTLPROTO)));
    return;
  }
  if ((outIf.capenable & IFCAP_TXCSUM) !== 0) return;
  ipv4SetCksum(u8, h);
  i32[(m + PH_CSUM_FLAGS) >> 2] &= ~CSUM_IP;
}

/**
 * ip_fragment for a packet in transit: the payload of m (which may itself be
 * a fragment: its offset and MF carry over) is cut into pieces that fit
 * out.mtu, each a copy behind a fresh 20-byte header (IP options are not
 * copied into the pieces; RFC 791 lets a router drop the non-copied ones,
 * and this stack does not originate options). Frees m.
 */
function forwardFragment(st: Stack, out: Ifnet, m: number, h: number, total: number, nexthop: number): void {
  const mb = st.mb;
  const u8 = mb.u8;
  const s = st.stats.ip;
  const hlen = ipHlen(u8, h);
  const plen = total - hlen;
  const chunk = (out.mtu - IP_HLEN_MIN) & ~7;
  if (chunk < 8 || mb.i32[(m + PH_LEN) >> 2] < total) {
    s[IPS.cantfrag]++;
    mb.m_freem(m);
    return;
  }
  const offField = ipOffField(u8, h);
  const base = (offField & IP_OFFMASK) << 3;
  const lastMf = offField & IP_MF;
  const tos = u8[h + 1];
  const id = read16(u8, h + 4);
  const ttl = ipTtl(u8, h);
  const proto = ipProto(u8, h);
  const src = ipSrc(u8, h);
  const dst = ipDst(u8, h);
  // Fragments carry no offload requests: each header checksum is computed.
  const cks = true;
  s[IPS.fragmented]++;
  for (let o = 0; o < plen; o += chunk) {
    const n = Math.min(chunk, plen - o);
    let f = copyPacket(mb, m, hlen + o, n);
    if (f !== 0) f = prepend(mb, f, IP_HLEN_MIN);
    if (f === 0) {
      s[IPS.odropped]++;
      break;
    }
    const more = o + n < plen ? IP_MF : lastMf;
    ipv4Emit(mb.u8, mtod(mb, f), tos, n + IP_HLEN_MIN, id, more | ((base + o) >> 3), ttl, proto, src, dst, cks);
    s[IPS.ofragments]++;
    st.etherOutput(out, f, nexthop);
  }
  mb.m_freem(m);
}
