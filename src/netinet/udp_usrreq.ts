/**
 * UDP (udp_usrreq.c): the PCB table, input demultiplexing (connected
 * 4-tuple first, then the best wildcard match; every matching socket for
 * broadcasts), checksum verification over the chain, port unreachable for
 * closed ports, per-socket receive queues bounded in bytes (udp recvspace),
 * and output with pseudo-header checksum and ephemeral ports.
 *
 * A received datagram is queued on its PCB as an mbuf chain holding only the
 * payload, with the sender's address and port beside it in a ring of Int32
 * (no JS object per datagram); the socket layer copies it out at the edge.
 *
 * Per stack instance (per CPU: the per-CPU PCB design lives in the
 * multi-CPU stack, which gives each CPU a UdpTable and places connected PCBs
 * on the CPU their 4-tuple hashes to). No lock; never sleeps.
 */
import { M_NOWAIT } from '../uma/flags.js';
import { M_DATA, M_LEN, MT_DATA, M_PKTHDR, PH_LEN, PH_RCVIF } from '../kern/mbuf/layout.js';
import { m_append } from '../kern/mbuf/ops.js';
import { IPPROTO_UDP, INADDR_ANY, INADDR_BROADCAST, ipDst, ipSrc, ipTotalLen } from '../wire/ipv4.js';
import { UDP_HLEN, udpCksumValue, udpDport, udpLen, udpSport, udpSum } from '../wire/udp.js';
import { cksumFold, pseudoHeaderSum } from '../wire/checksum.js';
import { write16 } from '../wire/bytes.js';
import { ICMP_UNREACH, ICMP_UNREACH_PORT } from '../wire/icmp.js';
import { IFCAP_RXCSUM, IFCAP_TXCSUM } from '../net/if.js';
import { chainSum, MAX_HDR, mtod, prepend, pullup, trimFront } from '../net/mchain.js';
import { UDPS } from './stats.js';
import type { Stack } from './stack.js';
import { EACCES, EADDRINUSE, EADDRNOTAVAIL, EINVAL, EMSGSIZE, ENOBUFS } from '../kern/errno.js';
import { Prng } from '../kern/prng.js';

export interface UdpConfig {
  /** net.inet.udp.recvspace: bytes a socket may queue. */
  recvspace: number;
  /** net.inet.udp.maxdgram: largest datagram we send. */
  maxdgram: number;
  /** net.inet.udp.checksum: compute checksums on output. */
  checksum: boolean;
  /** net.inet.ip.portrange.first / last: ephemeral ports. */
  portFirst: number;
  portLast: number;
  /** Send ICMP port unreachable for closed ports (net.inet.udp.blackhole = 0). */
  unreach: boolean;
}

export const UDP_DEFAULTS: UdpConfig = { recvspace: 42080, maxdgram: 65507, checksum: true, portFirst: 49152, portLast: 65535, unreach: true };

/** A UDP protocol control block (struct inpcb): the socket's endpoint in this stack instance. */
export class UdpPcb {
  laddr = 0;
  lport = 0;
  faddr = 0;
  fport = 0;
  broadcast = false;
  /** IP_DONTFRAG: send with DF set (EMSGSIZE above the path MTU). */
  dontfrag = false;
  closed = false;
  ttl: number;
  /** Receive queue: ring of (mbuf, src addr, src port) triples. */
  private ring = new Int32Array(3 * 64);
  private head = 0;
  private count = 0;
  rcvBytes = 0;
  /** Datagrams dropped because the queue was full (so_rcv overflow). */
  drops = 0;
  /** so_error: a pending asynchronous error (ECONNREFUSED from ICMP port unreachable on a connected socket). */
  soError = 0;
  /** Called when soError is set (the socket layer reports it, as BSD's sorwakeup with so_error). */
  onError: ((errno: number) => void) | null = null;
  /** Called (once per batch, by the stack) when datagrams were queued. */
  onReadable: (() => void) | null = null;
  readablePending = false;

  /** SO_RCVBUF: bytes this socket may queue. */
  recvspace: number;

  constructor(readonly table: UdpTable) {
    this.ttl = table.st.cfg.ttl;
    this.recvspace = table.cfg.recvspace;
  }

  get queued(): number {
    return this.count;
  }

  /** Queue a payload-only chain; false if the receive buffer is full. */
  enqueue(m: number, src: number, sport: number, len: number): boolean {
    if (this.rcvBytes + len > this.recvspace) return false;
    if (this.count * 3 === this.ring.length) this.grow();
    const i = ((this.head + this.count) % (this.ring.length / 3)) * 3;
    this.ring[i] = m;
    this.ring[i + 1] = src | 0;
    this.ring[i + 2] = sport;
    this.count++;
    this.rcvBytes += len;
    return true;
  }

  private grow(): void {
    const n = new Int32Array(this.ring.length * 2);
    const cap = this.ring.length / 3;
    for (let k = 0; k < this.count; k++) {
      const i = ((this.head + k) % cap) * 3;
      n.set(this.ring.subarray(i, i + 3), k * 3);
    }
    this.ring = n;
    this.head = 0;
  }

  /**
   * Take the oldest datagram: returns its mbuf (0 if none) and leaves the
   * sender in lastAddr/lastPort. The caller owns and frees the mbuf.
   */
  dequeue(): number {
    if (this.count === 0) return 0;
    const i = this.head * 3;
    const m = this.ring[i];
    this.lastAddr = this.ring[i + 1] >>> 0;
    this.lastPort = this.ring[i + 2];
    this.head = (this.head + 1) % (this.ring.length / 3);
    this.count--;
    this.rcvBytes -= this.table.st.mb.i32[(m + PH_LEN) >> 2];
    return m;
  }
  lastAddr = 0;
  lastPort = 0;

  /** Free queued datagrams (close). */
  flush(): void {
    for (let m = this.dequeue(); m !== 0; m = this.dequeue()) this.table.st.mb.m_freem(m);
  }
}

export class UdpTable {
  readonly cfg: UdpConfig;
  /** Local port -> PCBs bound to it (SO_REUSEADDR-free: one per (laddr, lport), but a connected and a wildcard may share). */
  readonly ports = new Map<number, UdpPcb[]>();
  private readonly rng: Prng;
  private readonly readable: UdpPcb[] = [];
  private notifyScheduled = false;

  constructor(readonly st: Stack, cfg: Partial<UdpConfig> = {}, seed = 0x5eed) {
    this.cfg = { ...UDP_DEFAULTS, ...cfg };
    this.rng = new Prng(seed);
  }

  /** A new unbound PCB. */
  attach(): UdpPcb {
    return new UdpPcb(this);
  }

  /** in_pcbbind: bind to (laddr, lport); lport 0 picks an ephemeral port. Returns 0 or an errno. */
  bind(pcb: UdpPcb, laddr: number, lport: number): number {
    if (pcb.lport !== 0) return EINVAL;
    if (laddr !== INADDR_ANY && !this.st.isLocal(laddr) && laddr !== INADDR_BROADCAST) return EADDRNOTAVAIL;
    if (lport === 0) {
      lport = this.ephemeral(laddr);
      if (lport === 0) return EADDRINUSE;
    } else if (this.conflict(laddr, lport)) {
      return EADDRINUSE;
    }
    pcb.laddr = laddr;
    pcb.lport = lport;
    let l = this.ports.get(lport);
    if (l === undefined) this.ports.set(lport, (l = []));
    l.push(pcb);
    return 0;
  }

  private conflict(laddr: number, lport: number): boolean {
    const l = this.ports.get(lport);
    if (l === undefined) return false;
    return l.some((p) => p.faddr === 0 && (p.laddr === laddr || p.laddr === INADDR_ANY || laddr === INADDR_ANY));
  }

  /** A free port of the ephemeral range, from a random start (0 if the range is full). */
  private ephemeral(laddr: number): number {
    const first = this.cfg.portFirst;
    const n = this.cfg.portLast - first + 1;
    const start = this.rng.below(n);
    for (let k = 0; k < n; k++) {
      const p = first + ((start + k) % n);
      if (!this.ports.has(p) || !this.conflict(laddr, p)) return p;
    }
    return 0;
  }

  /** in_pcbconnect: fix the foreign address; binds an ephemeral port first if needed. */
  connect(pcb: UdpPcb, faddr: number, fport: number): number {
    if (fport === 0 || faddr === INADDR_ANY) return EADDRNOTAVAIL;
    if (pcb.lport === 0) {
      const e = this.bind(pcb, INADDR_ANY, 0);
      if (e !== 0) return e;
    }
    pcb.faddr = faddr;
    pcb.fport = fport;
    return 0;
  }

  /**
   * in_pcbinshash for a PCB that arrives already bound and connected (the
   * new half of a PCB move to this CPU): enter it under its local port with
   * no conflict check, since the port was bound on the CPU it came from.
   */
  insert(pcb: UdpPcb): void {
    let l = this.ports.get(pcb.lport);
    if (l === undefined) this.ports.set(pcb.lport, (l = []));
    l.push(pcb);
  }

  /** Undo connect (connect to AF_UNSPEC). */
  disconnect(pcb: UdpPcb): void {
    pcb.faddr = 0;
    pcb.fport = 0;
  }

  /** Remove the PCB from the table and free its queue. */
  detach(pcb: UdpPcb): void {
    if (pcb.closed) return;
    pcb.closed = true;
    const l = this.ports.get(pcb.lport);
    if (l !== undefined) {
      const i = l.indexOf(pcb);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) this.ports.delete(pcb.lport);
    }
    pcb.flush();
  }

  /** udp_input: m has the IP header (hlen bytes) in front. Consumes m. */
  input(m: number, hlen: number): void {
    const st = this.st;
    const mb = st.mb;
    const s = st.stats.udp;
    s[UDPS.ipackets]++;
    const h0 = mtod(mb, m);
    const iplen = ipTotalLen(mb.u8, h0) - hlen;
    m = pullup(mb, m, hlen + UDP_HLEN);
    if (m === 0) {
      s[UDPS.hdrops]++;
      return;
    }
    const h = mtod(mb, m);
    const u8 = mb.u8;
    const src = ipSrc(u8, h);
    const dst = ipDst(u8, h);
    const u = h + hlen;
    const ulen = udpLen(u8, u);
    if (iplen < UDP_HLEN || ulen < UDP_HLEN || ulen > iplen) {
      s[UDPS.badlen]++;
      mb.m_freem(m);
      return;
    }
    const sport = udpSport(u8, u);
    const dport = udpDport(u8, u);
    const rcvif = st.ifByIndex(mb.i32[(m + PH_RCVIF) >> 2]);
    if (udpSum(u8, u) === 0) s[UDPS.nosum]++;
    else if (rcvif === null || (rcvif.capenable & IFCAP_RXCSUM) === 0) {
      const sum = chainSum(mb, m, hlen, ulen, pseudoHeaderSum(src, dst, IPPROTO_UDP, ulen));
      if (cksumFold(sum) !== 0xffff) {
        s[UDPS.badsum]++;
        mb.m_freem(m);
        return;
      }
    }
    const bcast = dst === INADDR_BROADCAST || st.isBroadcast(dst);
    if (bcast) {
      this.inputBroadcast(m, hlen, ulen, src, dst, sport, dport);
      return;
    }
    const pcb = this.lookup(dst, dport, src, sport);
    if (pcb === null) {
      s[UDPS.noport]++;
      if (this.cfg.unreach) st.icmp.error(m, ICMP_UNREACH, ICMP_UNREACH_PORT, 0);
      mb.m_freem(m);
      return;
    }
    this.deliver(pcb, m, hlen, ulen, src, sport);
  }

  /** in_pcblookup: an exact connected match wins over a bound wildcard. */
  lookup(laddr: number, lport: number, faddr: number, fport: number): UdpPcb | null {
    const l = this.ports.get(lport);
    if (l === undefined) return null;
    let best: UdpPcb | null = null;
    let bestScore = -1;
    for (let i = 0; i < l.length; i++) {
      const p = l[i];
      if (p.faddr !== 0 && (p.faddr !== faddr || p.fport !== fport)) continue;
      if (p.laddr !== INADDR_ANY && p.laddr !== laddr) continue;
      const score = (p.faddr !== 0 ? 2 : 0) + (p.laddr !== INADDR_ANY ? 1 : 0);
      if (score > bestScore) {
        best = p;
        bestScore = score;
      }
    }
    return best;
  }

  /** Every PCB bound to the port (wildcard or the broadcast address) gets a copy. */
  private inputBroadcast(m: number, hlen: number, ulen: number, src: number, dst: number, sport: number, dport: number): void {
    const mb = this.st.mb;
    const l = (this.ports.get(dport) ?? []).filter(
      (p) => (p.laddr === INADDR_ANY || p.laddr === dst || this.st.isBroadcast(p.laddr) || p.laddr === INADDR_BROADCAST || this.st.broadcastMatches(p.laddr, dst)) && (p.faddr === 0 || (p.faddr === src && p.fport === sport)),
    );
    if (l.length === 0) {
      this.st.stats.udp[UDPS.noportbcast]++;
      mb.m_freem(m);
      return;
    }
    for (let i = 0; i < l.length - 1; i++) {
      const c = dupPayload(this.st, m, hlen, ulen);
      if (c !== 0) this.deliverPayload(l[i], c, ulen - UDP_HLEN, src, sport);
    }
    this.deliver(l[l.length - 1], m, hlen, ulen, src, sport);
  }

  /** Strip IP and UDP headers and UDP padding, queue on the PCB. */
  private deliver(pcb: UdpPcb, m: number, hlen: number, ulen: number, src: number, sport: number): void {
    const mb = this.st.mb;
    const plen = mb.i32[(m + PH_LEN) >> 2];
    trimFront(mb, m, hlen + UDP_HLEN);
    const dlen = ulen - UDP_HLEN;
    if (plen - hlen > ulen) trimBackTo(mb, m, dlen);
    this.deliverPayload(pcb, m, dlen, src, sport);
  }

  private deliverPayload(pcb: UdpPcb, m: number, dlen: number, src: number, sport: number): void {
    const s = this.st.stats.udp;
    if (!pcb.enqueue(m, src, sport, dlen)) {
      s[UDPS.fullsock]++;
      pcb.drops++;
      this.st.mb.m_freem(m);
      return;
    }
    s[UDPS.delivered]++;
    if (!pcb.readablePending && pcb.onReadable !== null) {
      pcb.readablePending = true;
      this.readable.push(pcb);
      if (!this.notifyScheduled) {
        this.notifyScheduled = true;
        queueMicrotask(() => this.notify());
      }
    }
  }

  /** sorwakeup for every PCB that got data during this batch. */
  private notify(): void {
    this.notifyScheduled = false;
    const l = this.readable.splice(0);
    for (const p of l) {
      p.readablePending = false;
      if (!p.closed) p.onReadable?.();
    }
  }

  /**
   * udp_output: send `len` bytes of `data` from pcb to (faddr, fport), or to
   * the connected peer when faddr is 0. Returns 0 or an errno.
   */
  output(pcb: UdpPcb, data: Uint8Array, off: number, len: number, faddr: number, fport: number): number {
    const st = this.st;
    const mb = st.mb;
    const s = st.stats.udp;
    if (faddr === 0) {
      faddr = pcb.faddr;
      fport = pcb.fport;
    }
    if (faddr === 0 || fport === 0) return EADDRNOTAVAIL;
    if (len > this.cfg.maxdgram) {
      s[UDPS.odropped]++;
      return EMSGSIZE;
    }
    if ((faddr === INADDR_BROADCAST || st.isBroadcast(faddr)) && !pcb.broadcast) return EACCES;
    if (pcb.lport === 0) {
      const e = this.bind(pcb, INADDR_ANY, 0);
      if (e !== 0) return e;
    }
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
    if (m === 0) {
      s[UDPS.odropped]++;
      return ENOBUFS;
    }
    const i32 = mb.i32;
    i32[(m + M_DATA) >> 2] += MAX_HDR;
    if (!m_append(mb, m, len, data, off)) {
      mb.m_freem(m);
      s[UDPS.odropped]++;
      return ENOBUFS;
    }
    return this.outputChain(pcb, m, len, faddr, fport);
  }

  /** Prepend the UDP header to payload chain m, checksum and send. Consumes m. */
  outputChain(pcb: UdpPcb, m: number, len: number, faddr: number, fport: number): number {
    const st = this.st;
    const mb = st.mb;
    const s = st.stats.udp;
    let laddr = pcb.laddr;
    if (laddr === 0 || laddr === INADDR_BROADCAST) {
      const ifp = faddr === INADDR_BROADCAST ? st.broadcastIf(0) : st.routes.lookup(faddr)?.ifp ?? null;
      laddr = ifp === null ? 0 : ifp.addr;
    }
    m = prepend(mb, m, UDP_HLEN);
    if (m === 0) {
      s[UDPS.odropped]++;
      return ENOBUFS;
    }
    const u = mtod(mb, m);
    const ulen = len + UDP_HLEN;
    write16(mb.u8, u, pcb.lport);
    write16(mb.u8, u + 2, fport);
    write16(mb.u8, u + 4, ulen);
    write16(mb.u8, u + 6, 0);
    const ifp = faddr === INADDR_BROADCAST ? st.broadcastIf(laddr) : st.routes.lookup(faddr)?.ifp ?? null;
    if (this.cfg.checksum && (ifp === null || (ifp.capenable & IFCAP_TXCSUM) === 0)) {
      write16(mb.u8, u + 6, udpCksumValue(chainSum(mb, m, 0, ulen, pseudoHeaderSum(laddr, faddr, IPPROTO_UDP, ulen))));
    }
    s[UDPS.opackets]++;
    const e = st.ipOutput(m, laddr, faddr, IPPROTO_UDP, { ttl: pcb.ttl, tos: 0, df: pcb.dontfrag });
    if (e !== 0) s[UDPS.odropped]++;
    return e;
  }

  /** Every bound PCB (netstat -an). */
  all(): UdpPcb[] {
    return [...this.ports.values()].flat();
  }

  /** Close every PCB (stack shutdown). */
  flush(): void {
    for (const p of this.all()) this.detach(p);
  }
}

/** Trim a payload chain to exactly `len` bytes. */
function trimBackTo(mb: import('../kern/mbuf/mbuf.js').Mbufs, m: number, len: number): void {
  const i32 = mb.i32;
  const cur = i32[(m + PH_LEN) >> 2];
  if (cur <= len) return;
  i32[(m + PH_LEN) >> 2] = len;
  let keep = len;
  for (let x = m; x !== 0; x = i32[(x + 0) >> 2]) {
    const l = i32[(x + M_LEN) >> 2];
    if (l <= keep) keep -= l;
    else {
      i32[(x + M_LEN) >> 2] = keep;
      keep = 0;
    }
  }
}

/** A copy of the UDP payload of datagram m, for a second broadcast receiver. */
function dupPayload(st: Stack, m: number, hlen: number, ulen: number): number {
  const mb = st.mb;
  const dlen = ulen - UDP_HLEN;
  const c = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  if (c === 0) return 0;
  if (dlen > 0) {
    const tmp = new Uint8Array(dlen);
    // Slow path (broadcast fan-out): copy through a temporary buffer.
    let off = hlen + UDP_HLEN;
    let x = m;
    const i32 = mb.i32;
    while (x !== 0 && off >= i32[(x + M_LEN) >> 2]) {
      off -= i32[(x + M_LEN) >> 2];
      x = i32[x >> 2];
    }
    let k = 0;
    while (x !== 0 && k < dlen) {
      const n = Math.min(i32[(x + M_LEN) >> 2] - off, dlen - k);
      const d = i32[(x + M_DATA) >> 2] + off;
      tmp.set(mb.u8.subarray(d, d + n), k);
      k += n;
      off = 0;
      x = i32[x >> 2];
    }
    if (!m_append(mb, c, dlen, tmp, 0)) {
      mb.m_freem(c);
      return 0;
    }
  }
  return c;
}
