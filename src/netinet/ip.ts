/**
 * IPv4 input and output (ip_input.c, ip_output.c).
 *
 * Input: validate the header (version, header length, checksum unless the
 * link offloads it, total length, options walked and skipped, fragment
 * fields), trim link padding, accept packets for our addresses or broadcast,
 * reassemble fragments, then hand the packet (IP header still in front) to
 * ICMP or UDP. Everything malformed is counted (ipstat) and freed.
 *
 * Output: route, prepend a 20-byte header, send whole or fragment to the
 * smaller of the interface MTU and the destination's path MTU (honouring DF:
 * EMSGSIZE). Packets for other hosts go to ip_forward (ipforward.ts) when
 * net.inet.ip.forwarding is on, and are dropped (ips_cantforward) when off. The caller's packet is always consumed.
 *
 * Per stack instance; no lock; never sleeps.
 */
import { CSUM_DELAY_DATA, CSUM_IP, CSUM_TSO, PH_CSUM_FLAGS, PH_LEN } from '../kern/mbuf/layout.js';
import { inDelayedCksum, l3Verdict, tcpGso } from '../net/if_offload.js';
import {
  IP_DF,
  IP_HLEN_MIN,
  IP_MF,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  INADDR_ANY,
  IPPROTO_TCP,
  INADDR_BROADCAST,
  ipDst,
  ipSrc,
  ipHlen,
  ipIsFragment,
  ipProto,
  ipTotalLen,
  ipv4Emit,
  ipv4Parse,
} from '../wire/ipv4.js';
import {
  WIRE_BAD_CKSUM,
  WIRE_BAD_FRAGMENT,
  WIRE_BAD_HLEN,
  WIRE_BAD_LEN,
  WIRE_BAD_OPTIONS,
  WIRE_BAD_VERSION,
  WIRE_OK,
  WIRE_TRUNCATED,
} from '../wire/codes.js';
import { ICMP_UNREACH, ICMP_UNREACH_PROTOCOL } from '../wire/icmp.js';
import { IFCAP_TSO4, IFCAP_TXCSUM, IFF_LOOPBACK, ifInputHandoff, type Ifnet } from '../net/if.js';

/** IN_LOOPBACKNET: the loopback network, 127/8. */
const IN_LOOPBACKNET = 127;
import { copyPacket, mtod, prepend, pullup, trimBack, trimFront } from '../net/mchain.js';
import { IPS } from './stats.js';
import type { Stack } from './stack.js';
import { EHOSTUNREACH, EMSGSIZE, ENOBUFS } from '../kern/errno.js';
import { ipForward } from './ip_forward.js';

/** Map a parse code to its ipstat counter. */
function countBad(st: Stack, code: number): void {
  const s = st.stats.ip;
  switch (code) {
    case WIRE_TRUNCATED:
      s[IPS.toosmall]++;
      break;
    case WIRE_BAD_VERSION:
      s[IPS.badvers]++;
      break;
    case WIRE_BAD_HLEN:
      s[IPS.badhlen]++;
      break;
    case WIRE_BAD_LEN:
      s[IPS.tooshort]++;
      break;
    case WIRE_BAD_CKSUM:
      s[IPS.badsum]++;
      break;
    case WIRE_BAD_OPTIONS:
      s[IPS.badoptions]++;
      break;
    case WIRE_BAD_FRAGMENT:
      s[IPS.badfrag]++;
      break;
    default:
      s[IPS.badlen]++;
  }
}

/**
 * The address checks of ip_input (RFC 1122 3.2.1.3, RFC 5735): the ipstat
 * counter to drop the packet under, or -1 when src and dst may appear on
 * ifp. Loopback (127/8) only on a loopback interface; no source in "this
 * network" (0/8, 0.0.0.0 included), multicast, class E or a broadcast
 * address of ours; no destination 0.0.0.0 or class E other than the limited
 * broadcast; multicast destinations are groups we never join. Pure; no lock.
 */
function martian(st: Stack, ifp: Ifnet, src: number, dst: number): number {
  const stop = src >>> 24;
  const dtop = dst >>> 24;
  if ((stop === IN_LOOPBACKNET || dtop === IN_LOOPBACKNET) && (ifp.flags & IFF_LOOPBACK) === 0) return IPS.badaddr;
  if (stop === 0 || stop >= 224 || dst === INADDR_ANY) return IPS.badaddr;
  if (dtop >= 240 && dst !== INADDR_BROADCAST) return IPS.badaddr;
  if (st.isBroadcast(src)) return IPS.badaddr;
  if (dtop >= 224 && dtop < 240) return IPS.notmember;
  return -1;
}

/** ip_input: a packet from ifp with the Ethernet header removed. Consumes m. */
export function ipInput(st: Stack, ifp: Ifnet, m: number): void {
  const mb = st.mb;
  const i32 = mb.i32;
  const s = st.stats.ip;
  s[IPS.total]++;
  const plen = i32[(m + PH_LEN) >> 2];
  if (plen < IP_HLEN_MIN) {
    s[IPS.toosmall]++;
    mb.m_freem(m);
    return;
  }
  m = pullup(mb, m, IP_HLEN_MIN);
  if (m === 0) {
    s[IPS.nobufs]++;
    return;
  }
  let h = mtod(mb, m);
  const hlen = ipHlen(mb.u8, h);
  if (hlen > IP_HLEN_MIN && hlen <= plen) {
    m = pullup(mb, m, hlen);
    if (m === 0) {
      s[IPS.nobufs]++;
      return;
    }
    h = mtod(mb, m);
  }
  // The interface's verdict (CSUM_IP_CHECKED / CSUM_IP_VALID) stands in for the software check.
  const verdict = l3Verdict(mb, m);
  if (verdict === 0) {
    s[IPS.badsum]++;
    mb.m_freem(m);
    return;
  }
  const code = ipv4Parse(mb.u8, h, plen, verdict < 0);
  if (code !== WIRE_OK) {
    countBad(st, code);
    mb.m_freem(m);
    return;
  }
  const total = ipTotalLen(mb.u8, h);
  if (plen > total) trimBack(mb, m, plen - total);
  const dst = ipDst(mb.u8, h);
  const bad = martian(st, ifp, ipSrc(mb.u8, h), dst);
  if (bad >= 0) {
    s[bad]++;
    mb.m_freem(m);
    return;
  }
  if (!st.acceptsDst(ifp, dst)) {
    // Not ours: a router sends it on (ip_forward); a host drops it.
    if (st.cfg.forwarding) {
      ipForward(st, ifp, m);
      return;
    }
    s[IPS.cantforward]++;
    mb.m_freem(m);
    return;
  }
  if (ipIsFragment(mb.u8, h)) {
    m = st.reass.input(m);
    if (m === 0) return;
    // On a multi-CPU stack the fragments met on the CPU of their 2-tuple hash;
    // the whole datagram may belong to another CPU's PCB (4-tuple): hand it over.
    if (st.redispatch !== null) {
      // Another CPU may take it: from here the input path of this frame no longer owns it.
      ifInputHandoff(mb, m);
      if (st.redispatch(m)) return;
    }
  }
  s[IPS.delivered]++;
  ipDeliver(st, m);
}

/** Hand a complete datagram (IP header in front) to its protocol. Consumes m. */
export function ipDeliver(st: Stack, m: number): void {
  const mb = st.mb;
  const h = mtod(mb, m);
  const proto = ipProto(mb.u8, h);
  const hlen = ipHlen(mb.u8, h);
  if (proto === IPPROTO_UDP) st.udp.input(m, hlen);
  else if (proto === IPPROTO_TCP) {
    // TCP keeps segments (reassembly queue, socket buffers) without telling the input path: hand off first, so a fault in it can leak a segment but never free one twice.
    ifInputHandoff(mb, m);
    st.tcp.input(m, hlen);
  }
  else if (proto === IPPROTO_ICMP) st.icmp.input(m, hlen);
  else {
    st.stats.ip[IPS.noproto]++;
    st.icmp.error(m, ICMP_UNREACH, ICMP_UNREACH_PROTOCOL, 0);
    mb.m_freem(m);
  }
}

export interface IpOutOpts {
  ttl: number;
  tos: number;
  df: boolean;
}

/**
 * ip_output: send transport packet m (no IP header yet) from src (0: the
 * outgoing interface's address) to dst. Returns 0 or an errno; m is always
 * consumed. Broadcast to 255.255.255.255 leaves by the first broadcast
 * interface (or the one src belongs to).
 */
export function ipOutput(st: Stack, m: number, src: number, dst: number, proto: number, o: IpOutOpts): number {
  const mb = st.mb;
  ifInputHandoff(mb, m); // a reflected packet (echo reply) leaves the input path here
  const s = st.stats.ip;
  let ifp: Ifnet | null;
  let nexthop: number;
  if (dst === INADDR_BROADCAST) {
    ifp = st.broadcastIf(src);
    nexthop = dst;
  } else {
    const r = st.routes.lookup(dst);
    ifp = r === null ? null : r.ifp;
    nexthop = r === null || r.gateway === 0 ? dst : r.gateway;
  }
  if (ifp === null) {
    s[IPS.noroute]++;
    mb.m_freem(m);
    return EHOSTUNREACH;
  }
  if (src === 0) src = ifp.addr;
  const plen = mb.i32[(m + PH_LEN) >> 2];
  const total = plen + IP_HLEN_MIN;
  const cks = (ifp.capenable & IFCAP_TXCSUM) === 0;
  const csum = mb.i32[(m + PH_CSUM_FLAGS) >> 2];
  s[IPS.localout]++;
  // Path MTU (RFC 1191) learned from "fragmentation needed"; one size test while none is known.
  let mtu = ifp.mtu;
  if (st.pmtu.size !== 0) {
    const p = st.pmtu.lookup(dst, st.now());
    if (p !== 0 && p < mtu) mtu = p;
  }
  const tso = (csum & CSUM_TSO) !== 0;
  if (total <= mtu || tso) {
    m = prepend(mb, m, IP_HLEN_MIN);
    if (m === 0) {
      s[IPS.odropped]++;
      return ENOBUFS;
    }
    ipv4Emit(mb.u8, mtod(mb, m), o.tos, total, st.nextIpId(), o.df ? IP_DF : 0, o.ttl, proto, src, dst, cks);
    return ipOffloadOutput(st, ifp, m, nexthop, cks ? csum : csum | CSUM_IP);
  }
  if ((csum & CSUM_DELAY_DATA) !== 0) {
    // Fragments each carry part of the transport header's data: the checksum is done before the cut.
    m = prepend(mb, m, IP_HLEN_MIN);
    if (m === 0) {
      s[IPS.odropped]++;
      return ENOBUFS;
    }
    ipv4Emit(mb.u8, mtod(mb, m), o.tos, total, 0, 0, o.ttl, proto, src, dst, false);
    m = inDelayedCksum(mb, m, 0);
    if (m === 0) {
      s[IPS.odropped]++;
      return ENOBUFS;
    }
    trimFront(mb, m, IP_HLEN_MIN);
  }
  if (o.df) {
    s[IPS.cantfrag]++;
    mb.m_freem(m);
    return EMSGSIZE;
  }
  // Fragments carry no offload requests: each header checksum is computed.
  return ipFragment(st, ifp, mtu, m, plen, src, dst, nexthop, proto, o, true);
}

/**
 * The last step of ip_output for a packet that fits (or is TSO): what the
 * interface cannot do is done here in software (FreeBSD's sw_csum:
 * in_delayed_cksum, and a TSO packet for an interface without TSO cut by
 * tcp_gso), the rest is left in csum_flags for the driver. Consumes m.
 */
function ipOffloadOutput(st: Stack, ifp: Ifnet, m: number, nexthop: number, csum: number): number {
  const mb = st.mb;
  mb.i32[(m + PH_CSUM_FLAGS) >> 2] = csum;
  if ((csum & CSUM_TSO) !== 0 && (ifp.capenable & IFCAP_TSO4) === 0) return ipGsoOutput(st, ifp, m, nexthop);
  if ((csum & CSUM_DELAY_DATA) !== 0 && (ifp.capenable & IFCAP_TXCSUM) === 0) {
    m = inDelayedCksum(mb, m, 0);
    if (m === 0) {
      st.stats.ip[IPS.odropped]++;
      return ENOBUFS;
    }
  }
  st.etherOutput(ifp, m, nexthop);
  return 0;
}

/**
 * A TSO packet (IP header in front) for an interface without TSO: cut in
 * software into tso_segsz segments (tcp_gso), each sent on its own (with
 * its checksums computed unless the interface offloads them); a segment
 * that would not fit the MTU is refused as a too-big packet. Consumes m.
 */
export function ipGsoOutput(st: Stack, ifp: Ifnet, m: number, nexthop: number): number {
  const mb = st.mb;
  const sw = (ifp.capenable & IFCAP_TXCSUM) === 0;
  const n = tcpGso(mb, m, 0, sw, (seg) => {
    if (mb.i32[(seg + PH_LEN) >> 2] > ifp.mtu) {
      st.stats.ip[IPS.cantfrag]++;
      mb.m_freem(seg);
      return;
    }
    st.etherOutput(ifp, seg, nexthop);
  });
  if (n < 0) {
    st.stats.ip[IPS.odropped]++;
    return ENOBUFS;
  }
  return 0;
}

/**
 * Fragment a payload of plen bytes into MTU-sized IP packets (each a copy
 * into its own cluster), send them in order and free the original.
 */
function ipFragment(st: Stack, ifp: Ifnet, mtu: number, m: number, plen: number, src: number, dst: number, nexthop: number, proto: number, o: IpOutOpts, cks: boolean): number {
  const mb = st.mb;
  const s = st.stats.ip;
  const chunk = (mtu - IP_HLEN_MIN) & ~7;
  if (chunk < 8 || plen > 65535 - IP_HLEN_MIN) {
    s[IPS.cantfrag]++;
    mb.m_freem(m);
    return EMSGSIZE;
  }
  const id = st.nextIpId();
  s[IPS.fragmented]++;
  let err = 0;
  for (let off = 0; off < plen; off += chunk) {
    const n = Math.min(chunk, plen - off);
    let f = copyPacket(mb, m, off, n);
    if (f !== 0) f = prepend(mb, f, IP_HLEN_MIN);
    if (f === 0) {
      s[IPS.odropped]++;
      err = ENOBUFS;
      break;
    }
    const more = off + n < plen ? IP_MF : 0;
    ipv4Emit(mb.u8, mtod(mb, f), o.tos, n + IP_HLEN_MIN, id, more | (off >> 3), o.ttl, proto, src, dst, cks);
    s[IPS.ofragments]++;
    st.etherOutput(ifp, f, nexthop);
  }
  mb.m_freem(m);
  return err;
}

