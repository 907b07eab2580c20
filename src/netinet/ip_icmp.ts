/**
 * ICMP (ip_icmp.c): echo replies (so Linux ping works, fragmented pings
 * included, since reassembly happens first), counting of received messages,
 * and error generation (icmp_error) for port/protocol unreachable, time
 * exceeded and fragmentation needed, with FreeBSD's rules: never about an
 * ICMP error, a non-first fragment, a broadcast, or a bad source; and a
 * token-bucket rate limit (net.inet.icmp.icmplim) on all responses.
 *
 * Per stack instance; no lock; never sleeps.
 */
import { M_NOWAIT } from '../uma/flags.js';
import { m_append } from '../kern/mbuf/ops.js';
import { CSUM_L4_CALC, CSUM_L4_VALID, M_BCAST, M_DATA, M_FLAGS, M_LEN, M_MCAST, MT_DATA, M_PKTHDR, PH_LEN, PH_RCVIF } from '../kern/mbuf/layout.js';
import { IPPROTO_ICMP, IPPROTO_UDP, INADDR_BROADCAST, IP_HLEN_MIN, IP_OFFMASK, ipDst, ipHlen, ipOffField, ipProto, ipSrc, ipTotalLen, ipTtl } from '../wire/ipv4.js';
import {
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_HLEN,
  ICMP_NEXTMTU,
  ICMP_TIMXCEED,
  ICMP_UNREACH,
  ICMP_UNREACH_NEEDFRAG,
  ICMP_UNREACH_PORT,
  icmpCode,
  icmpEmit,
  icmpIsError,
  icmpParse,
  icmpType,
} from '../wire/icmp.js';
import { cksumFinish } from '../wire/checksum.js';
import { read16, write16 } from '../wire/bytes.js';
import { ECONNREFUSED } from '../kern/errno.js';
import { PMTU_MIN, pmtuPlateau } from './hostcache.js';
import { WIRE_OK, WIRE_BAD_CKSUM } from '../wire/codes.js';
import { IFF_LOOPBACK } from '../net/if.js';
import { chainSum, MAX_HDR, mtod, pullup, trimFront } from '../net/mchain.js';
import { ICPS } from './stats.js';
import type { Stack } from './stack.js';

export interface IcmpConfig {
  /** net.inet.icmp.icmplim: responses per second (0 = unlimited). */
  icmplim: number;
  /** Answer echo requests sent to a broadcast address (net.inet.icmp.bmcastecho). */
  bmcastecho: boolean;
  /** Bytes of the offending datagram quoted after its header (net.inet.icmp.quotelen). */
  quotelen: number;
}

export const ICMP_DEFAULTS: IcmpConfig = { icmplim: 200, bmcastecho: false, quotelen: 8 };

export class Icmp {
  readonly cfg: IcmpConfig;
  private tokens: number;
  private lastRefill: number;
  /** Echo replies received, for a local ping (id, seq) -> handler. */
  onEchoReply: ((src: number, id: number, seq: number, dataLen: number) => void) | null = null;
  /** Errors received (unreachable, time exceeded): who sent it, type, code, the quoted destination (traceroute's view). */
  onErrorReceived: ((src: number, type: number, code: number, quotedDst: number) => void) | null = null;

  constructor(private readonly st: Stack, cfg: Partial<IcmpConfig> = {}) {
    this.cfg = { ...ICMP_DEFAULTS, ...cfg };
    this.tokens = this.cfg.icmplim;
    this.lastRefill = st.now();
  }

  /** badport_bandlim: may we send one more response now? */
  private allow(): boolean {
    const lim = this.cfg.icmplim;
    if (lim <= 0) return true;
    const now = this.st.now();
    this.tokens = Math.min(lim, this.tokens + ((now - this.lastRefill) * lim) / 1000);
    this.lastRefill = now;
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    this.st.stats.icmp[ICPS.ratelimited]++;
    return false;
  }

  /** icmp_input: m has the IP header (hlen bytes) in front. Consumes m. */
  input(m: number, hlen: number): void {
    const st = this.st;
    const mb = st.mb;
    const s = st.stats.icmp;
    const h0 = mtod(mb, m);
    const src = ipSrc(mb.u8, h0);
    const dst = ipDst(mb.u8, h0);
    const ttl = ipTtl(mb.u8, h0);
    const tos = mb.u8[h0 + 1];
    const len = ipTotalLen(mb.u8, h0) - hlen;
    if (len < ICMP_HLEN) {
      s[ICPS.tooshort]++;
      mb.m_freem(m);
      return;
    }
    m = pullup(mb, m, hlen + ICMP_HLEN);
    if (m === 0) return;
    trimFront(mb, m, hlen);
    // ICMP has no checksum offload (FreeBSD's icmp_input always sums): only a loop skips it.
    const verify = ((st.ifByIndex(mb.i32[(m + PH_RCVIF) >> 2])?.flags ?? 0) & IFF_LOOPBACK) === 0;
    const d = mtod(mb, m);
    // The checksum covers the whole message, which may span a reassembled chain.
    const code = verify ? (cksumFinish(chainSum(mb, m, 0, len, 0)) === 0 ? WIRE_OK : WIRE_BAD_CKSUM) : icmpParse(mb.u8, d, mb.i32[(m + M_LEN) >> 2], false);
    if (code !== WIRE_OK) {
      s[ICPS.checksum]++;
      mb.m_freem(m);
      return;
    }
    const type = icmpType(mb.u8, d);
    switch (type) {
      case ICMP_ECHO:
        s[ICPS.inhist_echo]++;
        if (!this.cfg.bmcastecho && this.toGroup(m, dst)) {
          s[ICPS.bmcastecho]++;
          break;
        }
        if (!reflectable(src) || st.isBroadcast(src)) {
          s[ICPS.badaddr]++;
          break;
        }
        if (!this.allow()) break;
        // Reflect in place: type 0, same id/seq/data, new checksum.
        mb.u8[d] = ICMP_ECHOREPLY;
        mb.u8[d + 1] = 0;
        write16(mb.u8, d + 2, 0);
        write16(mb.u8, d + 2, cksumFinish(chainSum(mb, m, 0, len, 0)));
        s[ICPS.outhist_echoreply]++;
        s[ICPS.reflect]++;
        st.ipOutput(m, st.isLocal(dst) ? dst : 0, src, IPPROTO_ICMP, { ttl: st.cfg.ttl, tos, df: false });
        return;
      case ICMP_ECHOREPLY:
        s[ICPS.inhist_echoreply]++;
        this.onEchoReply?.(src, (mb.u8[d + 4] << 8) | mb.u8[d + 5], (mb.u8[d + 6] << 8) | mb.u8[d + 7], len - ICMP_HLEN);
        break;
      case ICMP_UNREACH:
        s[ICPS.inhist_unreach]++;
        m = this.ctlinput(m, d, len);
        if (m !== 0) m = st.tcp.ctlinput(m, ICMP_UNREACH, mb.u8[mtod(mb, m) + 1], len);
        if (m !== 0) this.reportError(m, src, len);
        break;
      case ICMP_TIMXCEED:
        s[ICPS.inhist_timxceed]++;
        m = pullup(mb, m, Math.min(len, ICMP_HLEN + IP_HLEN_MIN));
        if (m !== 0) m = st.tcp.ctlinput(m, ICMP_TIMXCEED, mb.u8[mtod(mb, m) + 1], len);
        if (m !== 0) this.reportError(m, src, len);
        break;
      default:
        s[ICPS.inhist_other]++;
    }
    void ttl;
    if (m !== 0) mb.m_freem(m);
  }

  /**
   * Was m sent to many hosts: a link-layer broadcast or multicast frame
   * (M_BCAST / M_MCAST, set by ether_input), or an IP broadcast or
   * multicast destination? Pure; no lock.
   */
  private toGroup(m: number, dst: number): boolean {
    if ((this.st.mb.i32[(m + M_FLAGS) >> 2] & (M_BCAST | M_MCAST)) !== 0) return true;
    return dst >>> 28 === 0xe || this.st.isBroadcast(dst);
  }

  /** Tell onErrorReceived about an error message (ICMP header in front of m, pulled up). */
  private reportError(m: number, src: number, len: number): void {
    if (this.onErrorReceived === null) return;
    const u8 = this.st.mb.u8;
    const d = mtod(this.st.mb, m);
    const qdst = len >= ICMP_HLEN + IP_HLEN_MIN && this.st.mb.i32[(m + M_LEN) >> 2] >= ICMP_HLEN + IP_HLEN_MIN ? ipDst(u8, d + ICMP_HLEN) : 0;
    this.onErrorReceived(src, u8[d], u8[d + 1], qdst);
  }

  /**
   * pr_ctlinput for a destination unreachable about a datagram we sent:
   * the quoted IP header (+ 8 bytes) follows the 8-byte ICMP header at d.
   * Fragmentation needed records the path MTU of the quoted destination
   * (RFC 1191; a zero next-hop MTU from an old router means the plateau
   * below the quoted length); port unreachable sets ECONNREFUSED on the
   * connected UDP socket of that 4-tuple (udp_ctlinput / in_pcbnotify).
   * Returns m (possibly moved by pullup, 0 when lost); m is not freed.
   */
  private ctlinput(m: number, d: number, len: number): number {
    const st = this.st;
    const mb = st.mb;
    const s = st.stats.icmp;
    if (len < ICMP_HLEN + IP_HLEN_MIN) {
      s[ICPS.badlen]++;
      return m;
    }
    const code = icmpCode(mb.u8, d);
    m = pullup(mb, m, Math.min(len, ICMP_HLEN + IP_HLEN_MIN + 8));
    if (m === 0) return 0;
    d = mtod(mb, m);
    const u8 = mb.u8;
    const q = d + ICMP_HLEN;
    const qhlen = ipHlen(u8, q);
    if (u8[q] >> 4 !== 4 || qhlen < IP_HLEN_MIN) {
      s[ICPS.badlen]++;
      return m;
    }
    const qsrc = ipSrc(u8, q);
    const qdst = ipDst(u8, q);
    // Only about datagrams this host sent.
    if (!st.isLocal(qsrc)) return m;
    if (code === ICMP_UNREACH_NEEDFRAG) {
      let mtu = read16(u8, d + ICMP_NEXTMTU);
      if (mtu === 0) mtu = pmtuPlateau(ipTotalLen(u8, q));
      if (mtu < PMTU_MIN) {
        s[ICPS.badcode]++;
        return m;
      }
      const ifmtu = st.routes.lookup(qdst)?.ifp.mtu ?? 0;
      if (mtu < ifmtu && st.pmtu.update(qdst, mtu, st.now())) s[ICPS.pmtuupdates]++;
      return m;
    }
    if (code === ICMP_UNREACH_PORT && ipProto(u8, q) === IPPROTO_UDP && len >= ICMP_HLEN + qhlen + 4) {
      if (mb.i32[(m + M_LEN) >> 2] < ICMP_HLEN + qhlen + 4) {
        m = pullup(mb, m, ICMP_HLEN + qhlen + 4);
        if (m === 0) return 0;
        d = mtod(mb, m);
      }
      const uq = d + ICMP_HLEN + qhlen;
      const sport = read16(mb.u8, uq);
      const dport = read16(mb.u8, uq + 2);
      const pcb = st.udp.lookup(qsrc, sport, qdst, dport);
      // BSD tells only connected sockets: an unconnected one may talk to many peers.
      if (pcb !== null && pcb.faddr === qdst && pcb.fport === dport) {
        pcb.soError = ECONNREFUSED;
        s[ICPS.refused]++;
        pcb.onError?.(ECONNREFUSED);
      }
    }
    return m;
  }

  /**
   * Send an echo request (a local ping) of `dataLen` bytes to dst. Replies
   * are reported through onEchoReply. Returns 0 or an errno.
   */
  echoRequest(dst: number, id: number, seq: number, dataLen: number): number {
    const mb = this.st.mb;
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
    if (m === 0) return 55;
    const i32 = mb.i32;
    i32[(m + M_DATA) >> 2] += MAX_HDR;
    const first = Math.min(dataLen, 2048 - MAX_HDR - ICMP_HLEN);
    const d = i32[(m + M_DATA) >> 2];
    for (let k = 0; k < first; k++) mb.u8[d + ICMP_HLEN + k] = k & 0xff;
    i32[(m + M_LEN) >> 2] = ICMP_HLEN + first;
    i32[(m + PH_LEN) >> 2] = ICMP_HLEN + first;
    if (dataLen > first) {
      const rest = new Uint8Array(dataLen - first);
      for (let k = 0; k < rest.length; k++) rest[k] = (first + k) & 0xff;
      if (!m_append(mb, m, rest.length, rest, 0)) {
        mb.m_freem(m);
        return 55;
      }
    }
    mb.u8[d] = ICMP_ECHO;
    mb.u8[d + 1] = 0;
    write16(mb.u8, d + 2, 0);
    write16(mb.u8, d + 4, id);
    write16(mb.u8, d + 6, seq);
    write16(mb.u8, d + 2, cksumFinish(chainSum(mb, m, 0, ICMP_HLEN + dataLen, 0)));
    return this.st.ipOutput(m, 0, dst, IPPROTO_ICMP, { ttl: this.st.cfg.ttl, tos: 0, df: false });
  }

  /**
   * icmp_error: send an error about datagram m (IP header in front, as
   * received). m is NOT consumed: the caller frees it.
   */
  error(m: number, type: number, code: number, nextMtu: number): void {
    const mb = this.st.mb;
    const s = this.st.stats.icmp;
    s[ICPS.error]++;
    const h = mtod(mb, m);
    const u8 = mb.u8;
    const hlen = (u8[h] & 0x0f) << 2;
    // RFC 1122 3.2.2: never about a link-layer broadcast or multicast, a non-first fragment, or a group/martian address.
    const group = (mb.i32[(m + M_FLAGS) >> 2] & (M_BCAST | M_MCAST)) !== 0;
    if (group || (ipOffField(u8, h) & IP_OFFMASK) !== 0 || !this.sourceOk(ipSrc(u8, h), ipDst(u8, h))) {
      s[ICPS.noerror]++;
      return;
    }
    if (ipProto(u8, h) === IPPROTO_ICMP) {
      const plen = mb.i32[(m + PH_LEN) >> 2];
      if (plen >= hlen + 1 && mb.i32[(m + M_LEN) >> 2] > hlen && icmpIsError(u8[h + hlen])) {
        s[ICPS.oldicmp]++;
        return;
      }
    }
    const quote = Math.min(mb.i32[(m + PH_LEN) >> 2], hlen + this.cfg.quotelen, mb.i32[(m + M_LEN) >> 2]);
    this.send(u8, h, quote, ipSrc(u8, h), ipDst(u8, h), type, code, nextMtu);
  }

  /** The same, from saved bytes (the reassembly timeout has no packet left). */
  errorFromQuote(quote: Uint8Array, src: number, dst: number, type: number, code: number, nextMtu: number): void {
    this.st.stats.icmp[ICPS.error]++;
    if (!this.sourceOk(src, dst)) {
      this.st.stats.icmp[ICPS.noerror]++;
      return;
    }
    this.send(quote, 0, quote.length, src, dst, type, code, nextMtu);
  }

  /** Never answer broadcasts or packets from addresses that cannot be a host. */
  private sourceOk(src: number, dst: number): boolean {
    if (!reflectable(src) || dst >>> 28 === 0xe) return false;
    if (dst === INADDR_BROADCAST || this.st.isBroadcast(dst) || this.st.isBroadcast(src)) return false;
    return true;
  }

  private send(from: Uint8Array, at: number, quote: number, origSrc: number, origDst: number, type: number, code: number, nextMtu: number): void {
    if (!this.allow()) return;
    const st = this.st;
    const mb = st.mb;
    const s = st.stats.icmp;
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
    if (m === 0) return;
    const i32 = mb.i32;
    const d = i32[(m + M_DATA) >> 2] + MAX_HDR;
    i32[(m + M_DATA) >> 2] = d;
    mb.u8.set(from.subarray(at, at + quote), d + ICMP_HLEN);
    const len = ICMP_HLEN + quote;
    i32[(m + M_LEN) >> 2] = len;
    i32[(m + PH_LEN) >> 2] = len;
    icmpEmit(mb.u8, d, type, code, nextMtu & 0xffff, len);
    if (type === ICMP_UNREACH) s[ICPS.outhist_unreach]++;
    else if (type === ICMP_TIMXCEED) s[ICPS.outhist_timxceed]++;
    st.ipOutput(m, st.isLocal(origDst) ? origDst : 0, origSrc, IPPROTO_ICMP, { ttl: st.cfg.ttl, tos: 0, df: false });
  }
}

/**
 * icmp_reflect's "bad return address": may a response go back to src? Not
 * to "this network" (0/8), multicast (224/4), class E (240/4, with the
 * limited broadcast). Subnet broadcasts are the caller's to check (they
 * depend on our interfaces). Pure; no lock.
 */
function reflectable(src: number): boolean {
  const top = src >>> 24;
  return top !== 0 && top < 224;
}
