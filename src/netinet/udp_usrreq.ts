/**
 * UDP (udp_usrreq.c): input demultiplexing over the shared PCB module
 * (in_pcb.ts: connected 4-tuple first, then SO_REUSEPORT_LB groups, then the
 * best wildcard; every matching socket for broadcasts), checksum
 * verification over the chain, port unreachable for closed ports, delivery
 * straight into the socket's receive sockbuf, and output with
 * pseudo-header checksum and ephemeral ports.
 *
 * Delivery (udp_append): the payload-only chain goes into the socket
 * record's receive ring of this CPU with sbappendaddr (the sender's address
 * and port, 6 bytes, in an MT_SONAME mbuf before it); a ring without room
 * for it (its hiwat: net.inet.udp.recvspace, or SO_RCVBUF) is a counted
 * drop (udps_fullsock), never a second queue. Then sorwakeup on the record
 * (the user sleeping on its wake word) and the PCB's upcall (so_upcall: a
 * user in this same thread, node:dgram over a single stack). No microtask,
 * no copy, nothing allocated per datagram.
 *
 * Per stack instance, i.e. per CPU in the multi-CPU stack (which places
 * connected PCBs on the CPU their 4-tuple hashes to); no lock; never sleeps.
 */
import { M_NOWAIT } from '../uma/flags.js';
import { CSUM_L4_CALC, CSUM_L4_VALID, M_DATA, M_LEN, MT_DATA, M_PKTHDR, PH_LEN, PH_RCVIF } from '../kern/mbuf/layout.js';
import { m_append } from '../kern/mbuf/ops.js';
import { IPPROTO_UDP, INADDR_ANY, INADDR_BROADCAST, ipDst, ipSrc, ipTotalLen } from '../wire/ipv4.js';
import { UDP_HLEN, udpCksumValue, udpDport, udpLen, udpSport, udpSum } from '../wire/udp.js';
import { cksumFold, pseudoHeaderSum } from '../wire/checksum.js';
import { write16 } from '../wire/bytes.js';
import { ICMP_UNREACH, ICMP_UNREACH_PORT } from '../wire/icmp.js';
import { IFCAP_TXCSUM, ifInputHandoff } from '../net/if.js';
import { l4Verified } from '../net/if_offload.js';
import { chainSum, MAX_HDR, mtod, prepend, pullup, trimFront } from '../net/mchain.js';
import { UDPS } from './stats.js';
import type { Stack } from './stack.js';
import { EACCES, EADDRNOTAVAIL, EINVAL, EMSGSIZE, ENETUNREACH, ENOBUFS } from '../kern/errno.js';
import { Prng, bootSecret, bootSeed, ephemeralPortOffset } from '../kern/prng.js';
import { InPcb, InPcbInfo, INPLOOKUP_WILDCARD, inpFlowHash, type PortPredicate, PORTRANGE_DEFAULTS, type PortRangeConfig } from './in_pcb.js';
import { SbRecordBuf, SockBufs } from '../kern/socket/sockbuf.js';
import { SocketRecords } from '../kern/socket/socketvar.js';
import { SO_BROADCAST, type SockLevelOpts } from '../kern/socket/sockopt.js';
import { SOCK_DGRAM } from '../kern/socket/protosw.js';

export interface UdpConfig extends PortRangeConfig {
  /** net.inet.udp.recvspace: bytes a socket's receive buffer holds (per CPU ring). */
  recvspace: number;
  /** net.inet.udp.maxdgram: largest datagram we send (the default SO_SNDBUF of a UDP socket). */
  maxdgram: number;
  /** net.inet.udp.checksum: compute checksums on output. */
  checksum: boolean;
  /** Send ICMP port unreachable for closed ports (net.inet.udp.blackhole = 0). */
  unreach: boolean;
}

export const UDP_DEFAULTS: UdpConfig = { recvspace: 42080, maxdgram: 65507, checksum: true, unreach: true, ...PORTRANGE_DEFAULTS };

/** Length of the address sbappendaddr records: IPv4 address and port, network order. */
export const UDP_ADDR_LEN = 6;

/** A UDP protocol control block (struct inpcb + udpcb): the socket's endpoint in this stack instance. */
export class UdpPcb extends InPcb implements SockLevelOpts {
  /** The socket record; its receive ring for this CPU. */
  so = 0;
  rcv = 0;
  /** attach() made the record itself (a PCB without a user-side socket): detach frees it. */
  ownsRecord = false;
  sndbuf: number;
  sndlowat = 2048;
  lingerOn = 0;
  lingerSecs = 0;
  /** IP_DONTFRAG: send with DF set (EMSGSIZE above the path MTU). */
  dontfrag = false;
  closed = false;
  ttl: number;
  /** Datagrams this PCB dropped because its receive ring was full (so_rcv overflow). */
  drops = 0;
  /** so_error as ICMP set it, before onError moves it into the socket record. */
  soError = 0;
  /** in_pcbnotify's wakeup: by default publish soError in the record (SO_ERROR) and wake the user. */
  onError: ((errno: number) => void) | null = null;
  /** so_upcall: called after each datagram queued (a reader in this thread). */
  upcall: (() => void) | null = null;

  constructor(readonly table: UdpTable) {
    super();
    this.ttl = table.st.cfg.ttl;
    this.sndbuf = table.cfg.maxdgram;
  }

  /** SO_BROADCAST, as a bit of so_options. */
  get broadcast(): boolean {
    return (this.soOptions & SO_BROADCAST) !== 0;
  }
  set broadcast(on: boolean) {
    this.soOptions = on ? this.soOptions | SO_BROADCAST : this.soOptions & ~SO_BROADCAST;
  }

  /** Datagrams queued in this CPU's receive ring (one slot each; the reader's view). */
  get queued(): number {
    return this.rcv === 0 ? 0 : this.table.sbs.sbslots(this.rcv);
  }

  /** The sender of the datagram dequeue() returned last. */
  lastAddr = 0;
  lastPort = 0;
  /** Its payload bytes. */
  lastLen = 0;
  private readonly rec = new SbRecordBuf();

  /**
   * soreceive for a reader in this stack's own thread (protocol tests, the
   * single-stack dgram): the oldest datagram's payload chain (the caller
   * frees it), its sender in lastAddr / lastPort; 0 when none is queued.
   */
  dequeue(): number {
    const r = this.rec;
    if (this.rcv === 0 || !this.table.sbs.sbrecvrecordInto(this.rcv, r)) return 0;
    const a = r.addr;
    this.lastAddr = r.addrLen >= UDP_ADDR_LEN ? ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0 : 0;
    this.lastPort = r.addrLen >= UDP_ADDR_LEN ? (a[4] << 8) | a[5] : 0;
    this.lastLen = r.len;
    return r.m;
  }

  /** Bytes queued in this CPU's receive ring (netstat's Recv-Q: the reader's lower bound). */
  get rcvBytes(): number {
    return this.rcv === 0 ? 0 : this.table.sbs.sbavail(this.rcv);
  }
}

export class UdpTable {
  readonly cfg: UdpConfig;
  /** The PCB hash tables of this stack instance (in_pcb.ts). */
  readonly pcbinfo: InPcbInfo<UdpPcb>;
  readonly sbs: SockBufs;
  readonly sor: SocketRecords;
  private readonly rng: Prng;
  /** Every attached PCB, bound or not (flush detaches them all; records they made are freed). */
  private readonly attached = new Set<UdpPcb>();
  /** The sender's address of the datagram being delivered (sbappendaddr's MT_SONAME bytes). */
  private readonly addr = new Uint8Array(UDP_ADDR_LEN);

  constructor(readonly st: Stack, cfg: Partial<UdpConfig> = {}, seed = 0x5eed) {
    this.cfg = { ...UDP_DEFAULTS, ...cfg };
    this.rng = new Prng(bootSeed(st.mb.uma.arena, seed)); // ephemeral ports differ per boot (RFC 6056)
    this.sbs = new SockBufs(st.mb);
    this.sor = new SocketRecords(this.sbs);
    this.pcbinfo = new InPcbInfo<UdpPcb>({
      ports: this.cfg,
      isLocal: (a) => a === INADDR_BROADCAST || st.isLocal(a) || st.isBroadcast(a),
      random: () => this.rng.u32(),
      portOffset: (() => {
        const secret = bootSecret(st.mb.uma.arena);
        return (l: number, f: number, p: number) => ephemeralPortOffset(secret, l, f, p);
      })(),
      lbAtBind: true,
    });
  }

  /**
   * pru_attach: a new unbound PCB delivering into ring `ring` of socket
   * record `so` (soreserve: the ring's hiwat becomes net.inet.udp.recvspace).
   * Without a record (so = 0) the PCB makes its own one-ring record, freed
   * at detach. Throws ErrnoError ENOBUFS when memory is short. Never sleeps.
   */
  attach(so = 0, ring = 0): UdpPcb {
    const pcb = new UdpPcb(this);
    if (so === 0) {
      so = this.sor.soalloc({ type: SOCK_DGRAM, proto: IPPROTO_UDP, rcvspace: this.cfg.recvspace });
      pcb.ownsRecord = true;
    }
    pcb.so = so;
    pcb.rcv = this.sor.rcv(so, ring);
    this.attached.add(pcb);
    this.sbs.sbreserve(pcb.rcv, Math.min(this.cfg.recvspace, this.sbs.maxsockbuf));
    pcb.onError = (errno) => {
      pcb.soError = 0;
      this.sor.soSetError(pcb.so, errno);
      pcb.upcall?.();
    };
    return pcb;
  }

  /** in_pcbbind: bind to (laddr, lport); lport 0 picks an ephemeral port (one `portOk` accepts). Returns 0 or an errno. */
  bind(pcb: UdpPcb, laddr: number, lport: number, portOk?: PortPredicate): number {
    return this.pcbinfo.bind(pcb, laddr >>> 0, lport, portOk);
  }

  /**
   * The source address for a datagram to faddr (in_pcbladdr): the PCB's
   * own, else the outgoing interface's; 0 when there is no route.
   */
  sourceFor(pcb: UdpPcb, faddr: number): number {
    if (pcb.laddr !== INADDR_ANY && pcb.laddr !== INADDR_BROADCAST) return pcb.laddr;
    const ifp = faddr === INADDR_BROADCAST ? this.st.broadcastIf(0) : this.st.routes.lookup(faddr)?.ifp ?? null;
    return ifp === null ? 0 : ifp.addr;
  }

  /**
   * in_pcbconnect: fix the foreign address (and the local one from the
   * route); binds an ephemeral port unique for the 4-tuple if needed.
   * ENETUNREACH without a route; see InPcbInfo.connect for the rest
   * (`portOk`: PortPredicate).
   */
  connect(pcb: UdpPcb, faddr: number, fport: number, portOk?: PortPredicate): number {
    faddr >>>= 0;
    if (fport === 0 || faddr === INADDR_ANY) return EADDRNOTAVAIL;
    const src = this.sourceFor(pcb, faddr);
    if (src === 0) return ENETUNREACH;
    return this.pcbinfo.connect(pcb, faddr, fport, src, portOk);
  }

  /**
   * The new half of a PCB move to this CPU (in_pcbinshash): enter a PCB
   * bound and connected on the CPU it came from. EADDRINUSE when this CPU
   * already has the 4-tuple.
   */
  insertConnected(pcb: UdpPcb, laddr: number, lport: number, faddr: number, fport: number): number {
    return this.pcbinfo.insertConnected(pcb, laddr, lport, faddr, fport);
  }

  /** Undo connect (connect to AF_UNSPEC): unconnected, bound to INADDR_ANY on the same port. */
  disconnect(pcb: UdpPcb): void {
    this.pcbinfo.disconnect(pcb);
  }

  /** pru_detach: out of the tables; the record too when the PCB made it. Idempotent. */
  detach(pcb: UdpPcb): void {
    if (pcb.closed) return;
    pcb.closed = true;
    pcb.upcall = null;
    this.attached.delete(pcb);
    this.pcbinfo.remove(pcb);
    if (pcb.ownsRecord) this.sor.sofree(pcb.so);
    pcb.so = 0;
    pcb.rcv = 0;
  }

  /** in_pcblookup (ICMP errors, tests): the PCB a datagram faddr:fport -> laddr:lport goes to. */
  lookup(laddr: number, lport: number, faddr: number, fport: number): UdpPcb | null {
    return this.pcbinfo.lookup(laddr >>> 0, lport, faddr >>> 0, fport, INPLOOKUP_WILDCARD, inpFlowHash(laddr, lport, faddr, fport));
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
    if (udpSum(u8, u) === 0) s[UDPS.nosum]++;
    else if (!l4Verified(mb, m)) {
      const sum = chainSum(mb, m, hlen, ulen, pseudoHeaderSum(src, dst, IPPROTO_UDP, ulen));
      if (cksumFold(sum) !== 0xffff) {
        s[UDPS.badsum]++;
        mb.m_freem(m);
        return;
      }
    }
    // TCP over UDP (net.inet.tcp.udp_tunneling_port, FreeBSD's kernel tunneling socket): the port is TCP's.
    if (dport !== 0 && dport === st.tcp.cfg.udp_tunneling_port) {
      st.tcp.udpTunnelInput(m, hlen, ulen, sport);
      return;
    }
    const bcast = dst === INADDR_BROADCAST || st.isBroadcast(dst);
    if (bcast) {
      this.inputBroadcast(m, hlen, ulen, src, dst, sport, dport);
      return;
    }
    const pcb = this.pcbinfo.lookup(dst, dport, src, sport, INPLOOKUP_WILDCARD, inpFlowHash(dst, dport, src, sport));
    if (pcb === null) {
      s[UDPS.noport]++;
      if (this.cfg.unreach) st.icmp.error(m, ICMP_UNREACH, ICMP_UNREACH_PORT, 0);
      mb.m_freem(m);
      return;
    }
    this.deliver(pcb, m, hlen, ulen, src, sport);
  }

  /** Every PCB bound to the port (wildcard or the broadcast address) gets a copy. */
  private inputBroadcast(m: number, hlen: number, ulen: number, src: number, dst: number, sport: number, dport: number): void {
    const mb = this.st.mb;
    const l = this.pcbinfo.portList(dport).filter(
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

  /**
   * udp_append: the payload chain and the sender's address into the
   * socket's receive ring of this CPU; a full ring (or no mbuf for the
   * address) is a counted drop. Then sorwakeup and the upcall. Consumes m.
   */
  private deliverPayload(pcb: UdpPcb, m: number, dlen: number, src: number, sport: number): void {
    const s = this.st.stats.udp;
    const a = this.addr;
    a[0] = src >>> 24;
    a[1] = (src >>> 16) & 0xff;
    a[2] = (src >>> 8) & 0xff;
    a[3] = src & 0xff;
    a[4] = sport >>> 8;
    a[5] = sport & 0xff;
    ifInputHandoff(this.st.mb, m); // the socket (or the drop below) owns it now, not the input path
    if (pcb.rcv === 0 || !this.sbs.sbappendaddr(pcb.rcv, a, m)) {
      s[UDPS.fullsock]++;
      pcb.drops++;
      this.st.mb.m_freem(m);
      return;
    }
    s[UDPS.delivered]++;
    this.sor.sorwakeup(pcb.so);
    if (pcb.upcall !== null) pcb.upcall();
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
    if (len > this.cfg.maxdgram || len > pcb.sndbuf) {
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
    const laddr = this.sourceFor(pcb, faddr);
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
    return this.pcbinfo.all();
  }

  /** Close every PCB, bound or not (stack shutdown). */
  flush(): void {
    for (const p of [...this.attached]) this.detach(p);
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
