/**
 * IPv4 reassembly (ip_reass.c). Fragments of one datagram (same source,
 * destination, id and protocol) are kept as data-only mbuf chains ordered by
 * offset. Overlaps are resolved as FreeBSD does: a new fragment's front is
 * trimmed against its predecessor, successors it overlaps are trimmed or, if
 * covered, dropped; so no byte is ever counted twice and nothing can make
 * the datagram longer than its last fragment says. Limits: datagrams being
 * reassembled (maxfragpackets), fragments per datagram (maxfragsperpacket),
 * bytes held in all (maxfragbytes), and a timeout (fragttl) after which the
 * datagram is dropped and, if its first fragment came, ICMP time exceeded
 * is sent. A fragment whose end would make the rebuilt datagram longer than
 * 65535 bytes drops its whole datagram (ips_toolong): the length would wrap.
 *
 * RSS sends every fragment of a datagram to the same CPU (the 2-tuple hash),
 * so this state is per stack instance: no lock; never sleeps.
 */
import { M_BCAST, M_FLAGS, M_MCAST, M_NEXT, M_PKTHDR, PH_LEN, PH_TAGS } from '../kern/mbuf/layout.js';
import { m_last } from '../kern/mbuf/ops.js';
import { IP_HLEN_MIN, IP_MAXPACKET, IP_MF, ipDst, ipHlen, ipId, ipOffField, ipFragOff, ipProto, ipSrc, ipTotalLen, ipv4Emit } from '../wire/ipv4.js';
import { ICMP_TIMXCEED, ICMP_TIMXCEED_REASS } from '../wire/icmp.js';
import { mtod, prepend, trimFront } from '../net/mchain.js';
import { ifInputHandoff } from '../net/if.js';
import { IPS } from './stats.js';
import type { Stack } from './stack.js';

export interface ReassConfig {
  /** net.inet.ip.maxfragpackets */
  maxFragPackets: number;
  /** net.inet.ip.maxfragsperpacket */
  maxFragsPerPacket: number;
  /** Bytes of fragment data held in all queues. */
  maxFragBytes: number;
  /** net.inet.ip.fragttl in ms. */
  fragTtlMs: number;
}

export const REASS_DEFAULTS: ReassConfig = { maxFragPackets: 256, maxFragsPerPacket: 64, maxFragBytes: 4 << 20, fragTtlMs: 30_000 };

interface Frag {
  off: number;
  end: number;
  m: number;
}

interface FragQueue {
  key: string;
  src: number;
  dst: number;
  id: number;
  proto: number;
  tos: number;
  ttl: number;
  frags: Frag[];
  /** Datagram payload length once the last fragment came, else -1. */
  total: number;
  bytes: number;
  expire: number;
  /** The first 28 bytes of the datagram (header + 8 data) once fragment 0 came, to quote in ICMP. */
  quote: Uint8Array | null;
}

export class Reassembly {
  readonly cfg: ReassConfig;
  private readonly queues = new Map<string, FragQueue>();
  private bytes = 0;

  constructor(private readonly st: Stack, cfg: Partial<ReassConfig> = {}) {
    this.cfg = { ...REASS_DEFAULTS, ...cfg };
  }

  get pending(): number {
    return this.queues.size;
  }
  get bytesHeld(): number {
    return this.bytes;
  }

  /**
   * ip_reass: take fragment m (IP header at its front, hlen bytes, already
   * validated and trimmed to the total length). Returns 0 when the datagram
   * is not complete yet (m is kept or freed), or the complete datagram with
   * a fresh 20-byte IP header (options of the first fragment are dropped).
   */
  input(m: number): number {
    const st = this.st;
    const mb = st.mb;
    const s = st.stats.ip;
    const u8 = mb.u8;
    const h = mtod(mb, m);
    const hlen = ipHlen(u8, h);
    const src = ipSrc(u8, h);
    const dst = ipDst(u8, h);
    const id = ipId(u8, h);
    const proto = ipProto(u8, h);
    const offField = ipOffField(u8, h);
    const off = ipFragOff(u8, h);
    const len = ipTotalLen(u8, h) - hlen;
    const last = (offField & IP_MF) === 0;
    s[IPS.fragments]++;
    const key = `${src}:${dst}:${id}:${proto}`;
    let q = this.queues.get(key);
    if (q === undefined) {
      if (this.queues.size >= this.cfg.maxFragPackets) this.dropOldest();
      q = { key, src, dst, id, proto, tos: u8[h + 1], ttl: u8[h + 8], frags: [], total: -1, bytes: 0, expire: this.st.now() + this.cfg.fragTtlMs, quote: null };
      this.queues.set(key, q);
    }
    // No ICMP error about a datagram that came in link-layer broadcast or multicast frames (RFC 1122 3.2.2).
    if (off === 0 && q.quote === null && (mb.i32[(m + M_FLAGS) >> 2] & (M_BCAST | M_MCAST)) === 0) {
      q.quote = new Uint8Array(IP_HLEN_MIN + 8);
      q.quote.set(u8.subarray(h, h + IP_HLEN_MIN));
      q.quote[0] = 0x45;
      const n = Math.min(8, len);
      q.quote.set(u8.subarray(h + hlen, h + hlen + n), IP_HLEN_MIN);
    }
    // Consistency of the end of the datagram.
    const end = off + len;
    if (end + IP_HLEN_MIN > IP_MAXPACKET) return this.tooLong(q, m);
    if (last) {
      if ((q.total >= 0 && q.total !== end) || q.frags.some((f) => f.end > end)) return this.malformed(q, m);
      q.total = end;
    } else if (q.total >= 0 && end > q.total) {
      return this.malformed(q, m);
    }
    if (q.frags.length >= this.cfg.maxFragsPerPacket || this.bytes + len > this.cfg.maxFragBytes) {
      s[IPS.fragdropped]++;
      mb.m_freem(m);
      if (q.frags.length >= this.cfg.maxFragsPerPacket) this.free(q, IPS.fragdropped);
      return 0;
    }
    trimFront(mb, m, hlen);
    this.insert(q, off, end, m);
    return this.complete(q);
  }

  /** Insert data [off, end) resolving overlaps: earlier data wins at our front, ours wins over later fragments. */
  private insert(q: FragQueue, off: number, end: number, m: number): void {
    const mb = this.st.mb;
    const fs = q.frags;
    let i = 0;
    while (i < fs.length && fs[i].off < off) i++;
    // Predecessor overlaps our front: trim our front.
    if (i > 0) {
      const p = fs[i - 1];
      if (p.end > off) {
        const cut = p.end - off;
        if (cut >= end - off) {
          this.st.stats.ip[IPS.fragdropped]++;
          mb.m_freem(m);
          return;
        }
        trimFront(mb, m, cut);
        off += cut;
      }
    }
    // Successors overlapped by our tail: trim their front or drop them.
    while (i < fs.length && fs[i].off < end) {
      const n = fs[i];
      if (n.end <= end) {
        this.bytes -= n.end - n.off;
        q.bytes -= n.end - n.off;
        mb.m_freem(n.m);
        fs.splice(i, 1);
        this.st.stats.ip[IPS.fragdropped]++;
        continue;
      }
      const cut = end - n.off;
      trimFront(mb, n.m, cut);
      this.bytes -= cut;
      q.bytes -= cut;
      n.off += cut;
      break;
    }
    ifInputHandoff(mb, m); // kept by the queue now
    fs.splice(i, 0, { off, end, m });
    this.bytes += end - off;
    q.bytes += end - off;
  }

  /** If every byte 0..total is present, chain the fragments and return the datagram. */
  private complete(q: FragQueue): number {
    if (q.total < 0) return 0;
    let next = 0;
    for (const f of q.frags) {
      if (f.off !== next) return 0;
      next = f.end;
    }
    if (next !== q.total) return 0;
    // Never true after input()'s check; kept so no path can build a length that wraps.
    if (q.total + IP_HLEN_MIN > IP_MAXPACKET) {
      this.st.stats.ip[IPS.toolong]++;
      this.free(q, IPS.fragdropped);
      return 0;
    }
    const mb = this.st.mb;
    const i32 = mb.i32;
    const fs = q.frags;
    const head = fs[0].m;
    let tail = m_last(mb, head);
    for (let k = 1; k < fs.length; k++) {
      const f = fs[k].m;
      // Later fragments become plain mbufs of the chain (m_demote).
      if (i32[(f + PH_TAGS) >> 2] !== 0) {
        // Tags of a non-first fragment are of no use to the datagram: keep the header so m_freem frees them later.
      } else {
        i32[(f + M_FLAGS) >> 2] &= ~M_PKTHDR;
      }
      i32[(tail + M_NEXT) >> 2] = f;
      tail = m_last(mb, f);
    }
    i32[(head + PH_LEN) >> 2] = q.total;
    this.bytes -= q.bytes;
    q.frags = [];
    this.queues.delete(q.key);
    const m = prepend(mb, head, IP_HLEN_MIN);
    if (m === 0) {
      this.st.stats.ip[IPS.nobufs]++;
      return 0;
    }
    ipv4Emit(mb.u8, mtod(mb, m), q.tos, q.total + IP_HLEN_MIN, q.id, 0, q.ttl, q.proto, q.src, q.dst, true);
    this.st.stats.ip[IPS.reassembled]++;
    return m;
  }

  /**
   * A fragment reaching past what a 16-bit total length can say (the
   * rebuilt header plus the data would exceed 65535 bytes): the datagram can
   * never be delivered, so it goes now with every fragment held (ips_toolong,
   * ips_fragdropped per fragment, as FreeBSD's check at completion).
   */
  private tooLong(q: FragQueue, m: number): number {
    this.st.stats.ip[IPS.toolong]++;
    this.st.stats.ip[IPS.fragdropped]++;
    this.st.mb.m_freem(m);
    this.free(q, IPS.fragdropped);
    return 0;
  }

  private malformed(q: FragQueue, m: number): number {
    this.st.stats.ip[IPS.badfrag]++;
    this.st.mb.m_freem(m);
    this.free(q, IPS.fragdropped);
    return 0;
  }

  /** Drop a whole queue, counting each fragment under `counter`. */
  private free(q: FragQueue, counter: number): void {
    for (const f of q.frags) {
      this.st.stats.ip[counter]++;
      this.st.mb.m_freem(f.m);
    }
    this.bytes -= q.bytes;
    q.frags = [];
    this.queues.delete(q.key);
  }

  private dropOldest(): void {
    const first = this.queues.values().next();
    if (!first.done) this.free(first.value, IPS.fragdropped);
  }

  /** ip_slowtimo: drop datagrams past their time; ICMP time exceeded for those whose first fragment came. */
  timer(now: number): void {
    for (const q of this.queues.values()) {
      if (q.expire > now) continue;
      const quote = q.quote;
      this.free(q, IPS.fragtimeout);
      if (quote !== null) this.st.icmpErrorFromQuote(quote, q.src, q.dst, ICMP_TIMXCEED, ICMP_TIMXCEED_REASS, 0);
    }
  }

  /** Free everything (stack shutdown). */
  flush(): void {
    for (const q of [...this.queues.values()]) this.free(q, IPS.fragdropped);
  }
}

