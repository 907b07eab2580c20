/**
 * TCP's per-stack state and common routines (tcp_subr.c, parts of
 * in_pcb.c): the PCB tables, tcp_newtcpcb, ISN generation (RFC 6528 with a
 * per-boot secret), tcp_respond (RST and ACK without a connection),
 * tcp_drop / tcp_close, MSS selection (tcp_mssopt, tcp_mss) and the
 * buffer rounding that follows it, ICMP errors (tcp_ctlinput), the
 * PCB lookup, binding and connecting over the shared in_pcb module.
 *
 * PCBs: a Tcpcb is an InPcb (tcp_var.ts); this table's pcbinfo (in_pcb.ts,
 * the same module UDP uses) indexes them: lookupConn (exact 4-tuple),
 * lookupListen (wildcard: LB group, specific address, INADDR_ANY), bind,
 * pcbconnect, attachConn (the syncache's new connection) and close (remove)
 * are the only code that touches it.
 *
 * Per stack instance (a CPU's thread); no lock; never sleeps.
 */
import { ArgumentError } from '../kern/errors.js';
import { randomBytes } from 'node:crypto';
import { M_NOWAIT } from '../uma/flags.js';
import { CSUM_TCP, M_DATA, M_LEN, MT_DATA, PH_CSUM_FLAGS, PH_LEN } from '../kern/mbuf/layout.js';
import { INADDR_ANY, INADDR_BROADCAST, IPPROTO_TCP, IPPROTO_UDP, IP_HLEN_MIN, ipDst, ipHlen, ipProto, ipSrc } from '../wire/ipv4.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import { read16, read32 } from '../wire/bytes.js';
import { TCP_HLEN, TCP_SUM, TH_ACK, TH_RST, tcpEmit, tcpSetCksum, TcpOpt, TOF_TS, tcpEmitOptions } from '../wire/tcp.js';
import { ICMP_HLEN, ICMP_TIMXCEED, ICMP_TIMXCEED_INTRANS, ICMP_UNREACH, ICMP_UNREACH_NEEDFRAG, ICMP_UNREACH_PORT, ICMP_UNREACH_PROTOCOL } from '../wire/icmp.js';
import { chainSum, mtod, prepend, pullup } from '../net/mchain.js';
import { udpCksumValue, udpEmit } from '../wire/udp.js';
import { write16 } from '../wire/bytes.js';
import { ECONNREFUSED, ECONNRESET, EHOSTUNREACH, EADDRNOTAVAIL, ENOBUFS } from './tcp_errno.js';
import { ENETUNREACH, ETIMEDOUT } from './tcp_errno.js';
import { IFCAP_TSO4, IFF_LOOPBACK } from '../net/if.js';
import { l4CksumFinish } from '../net/if_offload.js';
import { Prng, bootSecret, bootSeed, ephemeralPortOffset, halfSipHash } from '../kern/prng.js';
import { InPcbInfo, inpFlowHash, type PortPredicate } from './in_pcb.js';
import { SO_REUSEPORT_LB } from '../kern/socket/sockopt.js';
import type { Stack } from './stack.js';
import type { IpOutOpts } from './ip.js';
import { ccAttach, ccDefaultAlgo, ccDetach, ccSysctlNodes } from './cc/cc_list.js';
import { bindMaxsockbuf, tcpConfig, tcpSysctlNodes, type TcpConfig, type TcpSysctlNode } from './tcp_tunables.js';
import { newTcpStats, TCPS_STAT, formatTcpStats } from './tcp_stats.js';
import { TCPS_SYN_RECEIVED, TCPS_CLOSED, TCPS_ESTABLISHED, TCPS_LISTEN, TCPS_SYN_SENT, TCPS_HAVEESTABLISHED } from './tcp_fsm.js';
import { SEQ_GEQ, SEQ_LT } from './tcp_seq.js';
import { Tcpcb, TF_TSO, TCP_MAXWIN, TF_REQ_SCALE, TF_REQ_TSTMP, TF_RCVD_TSTMP, TF_SACK_PERMIT, SS_ISDISCONNECTED, SS_ISCONNECTED, SS_ISCONNECTING } from './tcp_var.js';
import { tcpInput } from './tcp_input.js';
import { tcpOutput } from './tcp_output.js';
import { tcpCancelTimers } from './tcp_timer.js';
import { tcpReassFlush } from './tcp_reass.js';
import { tcpSackClear } from './tcp_sack.js';
import { Syncache } from './tcp_syncache.js';
import { TcpHostCache } from './tcp_hostcache.js';
import type { TcpSockets } from './tcp_usrreq.js';

/** MAX_HDR-like room left in front of a TCP header: IP (20, no options) + Ethernet (14), rounded. */
export const TCP_LINKHDR = 48;

export class TcpTable {
  readonly cfg: TcpConfig;
  readonly stats = newTcpStats();
  /** SACK holes of all this table's connections (net.inet.tcp.sack.globalholes). */
  sack_globalholes = 0;
  /** The PCB tables (in_pcb.ts, shared with UDP's module): bound, listening and connected tcpcbs. */
  readonly pcbinfo: InPcbInfo<Tcpcb>;
  /** Every tcpcb attached, bound or not (FreeBSD's ipi_listhead: list(), close, netstat). */
  readonly all = new Set<Tcpcb>();
  readonly syncache: Syncache;
  /** RTT / ssthresh per peer (tcp_hostcache). */
  readonly hostcache = new TcpHostCache();
  /** The options of the segment being input (tcp_input fills it; output must not touch it). */
  readonly opt = new TcpOpt();
  /** The options of the segment being built (tcp_output, tcp_respond). */
  readonly oopt = new TcpOpt();
  readonly ipo: IpOutOpts = { ttl: 64, tos: 0, df: true };
  private readonly rng: Prng;
  /** RFC 6528 secret (per boot) and the time origin of the ISN clock. */
  readonly secret: Uint32Array;
  /**
   * Port partitioning (DragonFly): on a CPU of the MP core, the condition an
   * active open's ephemeral port must meet, that its 4-tuple hashes to this
   * CPU (set by net/vnet.ts); pcbconnect applies it when the caller gives
   * none. Unset in one thread.
   */
  portOk: PortPredicate | undefined = undefined;
  /** The user API bound to this table (set by TcpSockets). */
  sockets: TcpSockets | null = null;
  closed = false;

  constructor(
    readonly st: Stack,
    cfg: Partial<TcpConfig> = {},
    seed = 0x5eed,
  ) {
    this.cfg = tcpConfig(cfg);
    const arena = st.mb.uma.arena;
    if (cfg.maxsockbuf === undefined) bindMaxsockbuf(this.cfg, arena);
    // Ephemeral ports differ per boot (RFC 6056), as UDP's.
    this.rng = new Prng(bootSeed(arena, seed ^ 0x7c9));
    // The machine's per-boot secret (kern/prng.ts), so every CPU and stack keys ISNs and cookies alike.
    const k = bootSecret(arena).k;
    this.secret = new Uint32Array(4);
    for (let i = 0; i < 4; i++) this.secret[i] = k[i];
    this.syncache = new Syncache(this);
    const boot = bootSecret(arena);
    this.pcbinfo = new InPcbInfo<Tcpcb>({
      // net.inet.ip.portrange.* belong to IP: the one config object UDP's sysctls are bound to.
      ports: st.udp.cfg,
      isLocal: (a) => st.isLocal(a),
      random: () => this.rng.u32(),
      portOffset: (l, f, p) => ephemeralPortOffset(boot, l, f, p),
    });
  }

  /** tcp_input: a segment with its IP header (hlen bytes) in front. Consumes m. */
  input(m: number, hlen: number): void {
    tcpInput(this, m, hlen);
  }

  /** Current time in ms (integer ticks for timestamps and RTT). */
  ticks(): number {
    return Math.floor(this.st.now());
  }

  // ---------------------------------------------------------------- PCBs

  /** tcp_newtcpcb: a fresh CLOSED control block. */
  newtcpcb(): Tcpcb {
    const tp = new Tcpcb(this);
    // net.inet.tcp.rfc1323: 1 both, 2 window scaling only, 3 timestamps only.
    const r = this.cfg.rfc1323;
    if (r === 1 || r === 2) tp.t_flags |= TF_REQ_SCALE;
    if (r === 1 || r === 3) tp.t_flags |= TF_REQ_TSTMP;
    if (this.cfg.sack_enable) tp.t_flags |= TF_SACK_PERMIT;
    tp.t_rttmin = this.cfg.rexmit_min;
    tp.t_rxtcur = this.cfg.rexmit_initial;
    tp.snd_cwnd = TCP_MAXWIN << 14;
    tp.snd_ssthresh = TCP_MAXWIN << 14;
    ccAttach(tp, ccDefaultAlgo(this.cfg));
    this.all.add(tp);
    return tp;
  }

  /**
   * in_pcblookup (exact 4-tuple) in the shared PCB tables: the connection
   * (or TIME_WAIT endpoint) a segment faddr:fport -> laddr:lport belongs
   * to, null if none. No allocation; never sleeps.
   */
  lookupConn(laddr: number, lport: number, faddr: number, fport: number): Tcpcb | null {
    return this.pcbinfo.lookupExact(laddr, lport, faddr, fport);
  }

  /**
   * in_pcblookup's wildcard half for a segment without a connection: the
   * SO_REUSEPORT_LB listener its flow hash picks, else the unconnected PCB
   * bound to laddr, else the INADDR_ANY one. As in FreeBSD the state is not
   * looked at: a bound socket that does not listen is returned too, and
   * tcp_input answers it with a RST (with that socket's TTL and TOS).
   */
  lookupListen(laddr: number, lport: number, faddr: number, fport: number): Tcpcb | null {
    return this.pcbinfo.lookupWild(laddr, lport, inpFlowHash(laddr, lport, faddr, fport));
  }

  /**
   * in_pcbbind: bind tp to (laddr, lport); lport 0 picks an ephemeral port
   * (net.inet.ip.portrange.*, RFC 6056). The reuse rules are in_pcb.ts's
   * (FreeBSD in_pcbbind_setup): without SO_REUSEADDR / SO_REUSEPORT any
   * PCB on an overlapping address conflicts, connections and TIME_WAIT
   * included; with SO_REUSEADDR only an unconnected one on the same address
   * does; SO_REUSEPORT (or SO_REUSEPORT_LB) on both forgives the conflict.
   * Returns 0, EINVAL (bound, or closed), EADDRNOTAVAIL (not our address,
   * no port left) or EADDRINUSE. `portOk` narrows ephemeral ports (see
   * InPcbInfo.bind). Cold; never sleeps.
   */
  bind(tp: Tcpcb, laddr: number, lport: number, portOk?: PortPredicate): number {
    return this.pcbinfo.bind(tp, laddr >>> 0, lport, portOk);
  }

  /**
   * in_pcbconnect: choose the local address by route (in_pcbladdr) and,
   * when unbound, a local port unique for the 4-tuple (RFC 6056 algorithm
   * 3); refuse a 4-tuple in use (a TIME_WAIT one included, as FreeBSD).
   * Returns 0 or EADDRNOTAVAIL / ENETUNREACH / EADDRINUSE / EISCONN.
   * `portOk` narrows the ephemeral choice (a CPU's share of the ports;
   * this.portOk when not given).
   */
  pcbconnect(tp: Tcpcb, faddr: number, fport: number, portOk?: PortPredicate): number {
    faddr >>>= 0;
    if (fport === 0 || faddr === INADDR_ANY || faddr === INADDR_BROADCAST) return EADDRNOTAVAIL;
    let laddr = tp.laddr;
    if (laddr === INADDR_ANY) {
      if (this.st.isLocal(faddr)) laddr = faddr;
      else {
        const r = this.st.routes.lookup(faddr);
        if (r === null) return ENETUNREACH;
        laddr = r.ifp.addr;
      }
    }
    return this.pcbinfo.connect(tp, faddr, fport, laddr, portOk ?? this.portOk);
  }

  /**
   * A connection made by a listener (syncache_socket): a fresh tcpcb
   * entered bound and connected. null when the 4-tuple is taken (cannot
   * happen from tcp_input, which only expands without a connection).
   */
  attachConn(laddr: number, lport: number, faddr: number, fport: number): Tcpcb | null {
    const tp = this.newtcpcb();
    if (this.pcbinfo.insertConnected(tp, laddr, lport, faddr, fport) !== 0) {
      this.all.delete(tp);
      tcpCancelTimers(tp);
      return null;
    }
    return tp;
  }

  /** Listen with SO_REUSEPORT_LB: join the port's load-balancing group (FreeBSD adds listeners at listen). */
  listenLb(tp: Tcpcb): void {
    if ((tp.so_options & SO_REUSEPORT_LB) !== 0) this.pcbinfo.lbgroupInsert(tp);
  }

  // ----------------------------------------------------------------- ISN

  /**
   * RFC 6528's F(): HalfSipHash-2-4 of the 4-tuple and a salt under the
   * per-boot secret (words 0-1; `cookieKey` uses words 2-3, so SYN cookie
   * MACs and ISNs are keyed apart). 32 bits; allocation-free.
   */
  hash4(laddr: number, lport: number, faddr: number, fport: number, salt: number, cookieKey = false): number {
    const w = this.hw;
    w[0] = laddr;
    w[1] = faddr;
    w[2] = ((lport << 16) | fport) >>> 0;
    w[3] = salt >>> 0;
    const k = this.secret;
    return cookieKey ? halfSipHash(k[2], k[3], w, 4) : halfSipHash(k[0], k[1], w, 4);
  }
  private readonly hw = new Uint32Array(4);
  /** When the ISN key was last renewed (isn_reseed_interval). */
  private lastReseed = 0;

  /**
   * tcp_new_isn (RFC 6528): F(4-tuple, secret) + a clock of 250 000 per
   * second (4 µs ticks). With net.inet.tcp.isn_reseed_interval (seconds)
   * the ISN part of the secret is renewed that often.
   */
  newIsn(tp: Tcpcb): number {
    const ival = this.cfg.isn_reseed_interval;
    if (ival > 0 && this.st.now() - this.lastReseed >= ival * 1000) {
      const b = randomBytes(8);
      this.secret[0] = b.readUInt32LE(0);
      this.secret[1] = b.readUInt32LE(4);
      this.lastReseed = this.st.now();
    }
    const m = Math.floor(this.st.now() * 250) >>> 0;
    return (this.hash4(tp.laddr, tp.lport, tp.faddr, tp.fport, 0) + m) >>> 0;
  }

  /** tcp_new_ts_offset: a per-connection timestamp offset (RFC 7323 section 7.1). */
  tsOffset(laddr: number, lport: number, faddr: number, fport: number): number {
    return this.hash4(laddr, lport, faddr, fport, 0x7e57);
  }

  // ------------------------------------------------------------ respond

  /**
   * tcp_respond: send a bare segment (RST or ACK) from laddr:lport to
   * faddr:fport without a connection, with timestamps when tsval >= 0.
   * tp (if any) gives TTL, TOS and the window.
   */
  respond(tp: Tcpcb | null, laddr: number, lport: number, faddr: number, fport: number, seq: number, ack: number, flags: number, win = 0, tsval = -1, tsecr = 0, port = tp === null ? 0 : tp.t_port): void {
    const mb = this.st.mb;
    const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
    if (m === 0) return;
    const i32 = mb.i32;
    i32[(m + M_DATA) >> 2] += TCP_LINKHDR;
    const th = i32[(m + M_DATA) >> 2];
    const u8 = mb.u8;
    let olen = 0;
    if (tsval >= 0) {
      const to = this.oopt;
      to.clear();
      to.flags = TOF_TS;
      to.tsval = tsval >>> 0;
      to.tsecr = tsecr >>> 0;
      olen = tcpEmitOptions(u8, th + TCP_HLEN, to);
    }
    const hlen = TCP_HLEN + olen;
    tcpEmit(u8, th, lport, fport, seq >>> 0, ack >>> 0, hlen, flags, win, 0);
    i32[(m + M_LEN) >> 2] = hlen;
    i32[(m + PH_LEN) >> 2] = hlen;
    tcpSetCksum(u8, th, chainSum(mb, m, 0, hlen, pseudoHeaderSum(laddr, faddr, IPPROTO_TCP, hlen)));
    const s = this.stats;
    s[TCPS_STAT.sndtotal]++;
    if (flags & TH_RST) s[TCPS_STAT.sndctrl]++;
    else s[TCPS_STAT.sndacks]++;
    const o = this.ipo;
    o.ttl = tp !== null ? tp.ttl : this.st.cfg.ttl;
    o.tos = tp !== null ? tp.tos : 0;
    o.df = this.cfg.path_mtu_discovery !== 0;
    this.ipOutput(m, laddr, faddr, port);
  }

  /**
   * Hand a checksummed segment to IP, inside a UDP header from
   * net.inet.tcp.udp_tunneling_port to `port` when the connection is
   * tunneled (TCP over UDP). Uses this.ipo for TTL/TOS/DF. Returns 0 or an errno.
   */
  ipOutput(m: number, laddr: number, faddr: number, port: number): number {
    if (port === 0) return this.st.ipOutput(m, laddr, faddr, IPPROTO_TCP, this.ipo);
    const mb = this.st.mb;
    const tlen = mb.i32[(m + PH_LEN) >> 2];
    // Inside UDP nothing below completes the TCP checksum: do it now (the UDP one covers it).
    if ((mb.i32[(m + PH_CSUM_FLAGS) >> 2] & CSUM_TCP) !== 0) {
      l4CksumFinish(mb, m, 0, tlen, TCP_SUM, false);
      mb.i32[(m + PH_CSUM_FLAGS) >> 2] = 0;
    }
    m = prepend(mb, m, 8);
    if (m === 0) return ENOBUFS;
    const u = mtod(mb, m);
    const ulen = tlen + 8;
    udpEmit(mb.u8, u, this.cfg.udp_tunneling_port, port, ulen, laddr, faddr, false);
    mb.u8[u + 6] = 0;
    mb.u8[u + 7] = 0;
    const sum = chainSum(mb, m, 0, ulen, pseudoHeaderSum(laddr, faddr, IPPROTO_UDP, ulen));
    write16(mb.u8, u + 6, udpCksumValue(sum));
    return this.st.ipOutput(m, laddr, faddr, IPPROTO_UDP, this.ipo);
  }

  /**
   * A UDP datagram for net.inet.tcp.udp_tunneling_port (FreeBSD's kernel
   * UDP tunneling socket): the TCP segment after its UDP header is input
   * with the sender's UDP port. m has the IP header (hlen) in front; ulen
   * is the UDP length. Consumes m.
   */
  udpTunnelInput(m: number, hlen: number, ulen: number, sport: number): void {
    if (sport === 0 || ulen < 8 + TCP_HLEN) {
      this.stats[TCPS_STAT.rcvshort]++;
      this.st.mb.m_freem(m);
      return;
    }
    tcpInput(this, m, hlen, sport, ulen);
  }

  /**
   * tcp_respond with an ACK (seq, ack) from connection tp: its current
   * window (scaled) and, when negotiated, timestamps. Challenge ACKs,
   * TIME_WAIT answers and keepalive probes go this way.
   */
  respondAck(tp: Tcpcb, ack: number, seq: number): void {
    let win = tp.so_rcv.space();
    if (win < 0) win = 0;
    if (win > TCP_MAXWIN << tp.rcv_scale) win = TCP_MAXWIN << tp.rcv_scale;
    const ts = (tp.t_flags & (TF_RCVD_TSTMP | TF_REQ_TSTMP)) === (TF_RCVD_TSTMP | TF_REQ_TSTMP) ? (this.ticks() + tp.ts_offset) >>> 0 : -1;
    this.respond(tp, tp.laddr, tp.lport, tp.faddr, tp.fport, seq, ack, TH_ACK, win >>> tp.rcv_scale, ts, tp.ts_recent);
  }

  // ------------------------------------------------------- drop / close

  /** tcp_drop: abort with errno, sending a RST if the peer knows us. */
  drop(tp: Tcpcb, errno: number): void {
    if (TCPS_HAVEESTABLISHED(tp.state) || tp.state === TCPS_SYN_RECEIVED) {
      tp.state = TCPS_CLOSED;
      this.sendRst(tp);
      this.stats[TCPS_STAT.drops]++;
    } else if (tp.state !== TCPS_CLOSED && tp.state !== TCPS_LISTEN) this.stats[TCPS_STAT.conndrops]++;
    if (errno === ETIMEDOUT && tp.t_softerror !== 0) errno = tp.t_softerror;
    tp.so_error = errno;
    this.close(tp);
  }

  /** A RST for a connection we abort (tcp_output in CLOSED sends RST|ACK). */
  sendRst(tp: Tcpcb): void {
    this.respond(tp, tp.laddr, tp.lport, tp.faddr, tp.fport, tp.snd_max, tp.rcv_nxt, TH_RST | TH_ACK, 0, -1, 0);
  }

  /**
   * tcp_close: the connection is over: stop its timers, free its buffers
   * and queues, leave the tables, and tell the user (SS_ISDISCONNECTED).
   * A listener also drops its embryonic and unaccepted connections.
   */
  close(tp: Tcpcb): void {
    if (!this.all.has(tp)) return;
    this.stats[TCPS_STAT.closed]++;
    if (!this.closed) this.hostcache.update(tp, this.st.now());
    tcpCancelTimers(tp);
    ccDetach(tp);
    tp.state = TCPS_CLOSED;
    this.pcbinfo.remove(tp);
    this.all.delete(tp);
    tcpReassFlush(tp);
    tcpSackClear(tp);
    tp.so_snd.flush();
    if (tp.sockId === 0) tp.so_rcv.flush();
    tp.so_state = (tp.so_state & ~(SS_ISCONNECTED | SS_ISCONNECTING)) | SS_ISDISCONNECTED;
    if (tp.so_comp !== null) {
      this.syncache.dropListener(tp);
      for (const c of tp.so_comp) {
        c.so_head = null;
        this.drop(c, ECONNRESET);
        c.so_rcv.flush();
      }
      tp.so_comp = null;
    }
    if (tp.so_head !== null) {
      const q = tp.so_head.so_comp;
      if (q !== null) {
        const i = q.indexOf(tp);
        if (i >= 0) q.splice(i, 1);
      }
      tp.so_head = null;
      tp.so_rcv.flush();
    }
    this.wakeup(tp);
  }

  /** Tell the user API that tp's readiness may have changed. */
  wakeup(tp: Tcpcb): void {
    if (this.sockets === null) return;
    if (tp.sockId > 0) this.sockets.wakeup(tp.sockId);
    else if (tp.so_head !== null && tp.so_head.sockId > 0) this.sockets.wakeup(tp.so_head.sockId);
  }

  /** tcp_output for tp (the send path's one entry). */
  output(tp: Tcpcb): void {
    tcpOutput(tp);
  }

  // ----------------------------------------------------------------- MSS

  /** The interface MTU toward faddr (0: no route). */
  ifMtu(faddr: number): number {
    if (this.st.isLocal(faddr)) {
      const lo = this.st.ifs.find((i) => (i.flags & IFF_LOOPBACK) !== 0);
      if (lo !== undefined) return lo.mtu;
    }
    const r = this.st.routes.lookup(faddr);
    return r === null ? 0 : r.ifp.mtu;
  }

  /** tcp_mssopt: the MSS we advertise on a SYN (interface MTU - 40, less the UDP tunnel's overhead). */
  mssopt(faddr: number, port = 0): number {
    const mtu = this.ifMtu(faddr);
    if (mtu === 0) return this.cfg.mssdflt;
    return Math.min(mtu - 40 - (port !== 0 ? this.cfg.udp_tunneling_overhead : 0), 65535);
  }

  /**
   * tcp_mss: fix t_maxseg from the peer's offer (0: none, use mssdflt), our
   * interface and a learned path MTU, then round the socket buffers up to a
   * multiple of it (FreeBSD's behaviour, which its tests check) unless the
   * user set them.
   */
  mss(tp: Tcpcb, offer: number): void {
    const cfg = this.cfg;
    tp.t_peermss = offer;
    let maxmtu = this.ifMtu(tp.faddr);
    const p = this.st.pmtu.size !== 0 ? this.st.pmtu.lookup(tp.faddr, this.st.now()) : 0;
    if (p !== 0 && (maxmtu === 0 || p < maxmtu)) maxmtu = p;
    let mss = maxmtu === 0 ? cfg.mssdflt : maxmtu - 40;
    if (tp.t_port !== 0) mss -= cfg.udp_tunneling_overhead;
    if (offer === 0) offer = cfg.mssdflt;
    else offer = Math.max(offer, cfg.minmss);
    mss = Math.min(mss, offer);
    if (tp.t_usermss !== 0 && tp.t_usermss < mss) mss = tp.t_usermss;
    mss = Math.max(mss, 64);
    tp.t_maxseg = mss;
    this.tsoCheck(tp);
    this.roundBuf(tp, tp.so_snd, mss);
    this.roundBuf(tp, tp.so_rcv, mss);
  }

  /**
   * tcp_mss_update's TSO part: TF_TSO and t_tsomax from the route's
   * interface when it has IFCAP_TSO4 on (and the connection is plain TCP:
   * inside UDP nothing below could cut it). ip_output still cuts in
   * software if the route later leaves by an interface without it.
   */
  private tsoCheck(tp: Tcpcb): void {
    const r = this.st.isLocal(tp.faddr) ? null : this.st.routes.lookup(tp.faddr);
    if (r !== null && (r.ifp.capenable & IFCAP_TSO4) !== 0 && tp.t_port === 0) {
      tp.t_flags |= TF_TSO;
      tp.t_tsomax = r.ifp.hwTsomax;
    } else {
      tp.t_flags &= ~TF_TSO;
      tp.t_tsomax = 0;
    }
  }

  private roundBuf(tp: Tcpcb, sb: { hiwat: number }, mss: number): void {
    if (sb.hiwat < mss) {
      return;
    }
    let size = Math.ceil(sb.hiwat / mss) * mss;
    if (size > this.cfg.maxsockbuf) size = this.cfg.maxsockbuf;
    if (size > sb.hiwat) sb.hiwat = size;
  }

  /** The window scale we request: the least shift that covers kern.ipc.maxsockbuf (FreeBSD uses sb_max). */
  requestScale(): number {
    let s = 0;
    while (s < 14 && TCP_MAXWIN << s < this.cfg.maxsockbuf) s++;
    return s;
  }

  // ------------------------------------------------------------ ICMP

  /**
   * tcp_ctlinput: an ICMP unreachable or time exceeded quoting a segment we
   * sent (ICMP header at the front of m, len bytes). Fragmentation needed
   * lowers the MSS and resends; with net.inet.tcp.icmp_may_rst, port /
   * protocol / administratively prohibited unreachables and time exceeded
   * drop a connection in SYN_SENT; other errors are kept as t_softerror (and
   * so_error before the connection is established). The quoted sequence
   * must lie in [snd_una, snd_max). Does not free m; returns it (pulled up).
   */
  ctlinput(m: number, type: number, code: number, len: number): number {
    const mb = this.st.mb;
    if (len < ICMP_HLEN + IP_HLEN_MIN + 8) return m;
    m = pullup(mb, m, ICMP_HLEN + IP_HLEN_MIN + 8);
    if (m === 0) return 0;
    let d = mtod(mb, m);
    const q = d + ICMP_HLEN;
    const qhlen = ipHlen(mb.u8, q);
    if (ipProto(mb.u8, q) !== IPPROTO_TCP || len < ICMP_HLEN + qhlen + 8) return m;
    if (mb.i32[(m + M_LEN) >> 2] < ICMP_HLEN + qhlen + 8) {
      m = pullup(mb, m, ICMP_HLEN + qhlen + 8);
      if (m === 0) return 0;
      d = mtod(mb, m);
    }
    const u8 = mb.u8;
    const qq = d + ICMP_HLEN;
    const src = ipSrc(u8, qq);
    const dst = ipDst(u8, qq);
    const t = qq + qhlen;
    const sport = read16(u8, t);
    const dport = read16(u8, t + 2);
    const seq = read32(u8, t + 4);
    const tp = this.lookupConn(src, sport, dst, dport);
    if (tp === null) {
      this.syncache.unreach(src, sport, dst, dport, seq);
      return m;
    }
    if (tp.state === TCPS_LISTEN || !(SEQ_GEQ(seq, tp.snd_una) && SEQ_LT(seq, tp.snd_max))) return m;
    let errno = EHOSTUNREACH;
    let hard = false;
    if (type === ICMP_UNREACH) {
      if (code === ICMP_UNREACH_NEEDFRAG) {
        // The path MTU is in the host cache (ip_icmp recorded it): take the new MSS and resend.
        const old = tp.t_maxseg;
        this.mss(tp, tp.t_peermss);
        if (tp.t_maxseg < old) {
          tp.snd_nxt = tp.snd_una;
          this.output(tp);
        }
        return m;
      }
      if (code === ICMP_UNREACH_PORT || code === ICMP_UNREACH_PROTOCOL || code === 9 || code === 10 || code === 13) {
        errno = ECONNREFUSED;
        hard = true;
      }
    } else if (type === ICMP_TIMXCEED) {
      if (code !== ICMP_TIMXCEED_INTRANS) return m;
      hard = true;
    } else return m;
    if (hard && this.cfg.icmp_may_rst !== 0 && tp.state === TCPS_SYN_SENT) {
      this.stats[TCPS_STAT.icmp_drops]++;
      this.drop(tp, errno);
      return m;
    }
    // tcp_notify: ignore host/net unreachable on an established connection (transient).
    if (tp.state === TCPS_ESTABLISHED && errno === EHOSTUNREACH) return m;
    if (tp.state < TCPS_ESTABLISHED && tp.t_rxtshift > 3 && tp.t_softerror !== 0) {
      this.drop(tp, errno);
      return m;
    }
    tp.t_softerror = errno;
    this.wakeup(tp);
    return m;
  }

  // -------------------------------------------------------------- admin

  /** net.inet.tcp.* and kern.ipc.soacceptqueue nodes. */
  sysctlNodes(): TcpSysctlNode[] {
    const nodes = tcpSysctlNodes(this.cfg, () => {
      this.st.pmtu.flush();
      this.hostcache.purge();
    });
    nodes.push({
      name: 'net.inet.tcp.sack.globalholes',
      description: 'Global number of TCP SACK holes currently allocated',
      get: () => this.sack_globalholes,
      set: () => {
        throw new ArgumentError('net.inet.tcp.sack.globalholes is read-only');
      },
    });
    return nodes.concat(ccSysctlNodes(this.cfg, () => this.all));
  }

  netstatS(): string {
    return formatTcpStats(this.stats);
  }

  /** Stack.close(): every connection ends at once (no packets), every mbuf freed. */
  flush(): void {
    this.closed = true;
    this.syncache.flush();
    for (const tp of [...this.all]) {
      tp.sockId = 0;
      this.close(tp);
    }
    if (this.sockets !== null) this.sockets.flush();
  }

  /** Count a segment we could not allocate memory for. */
  nobufs(): number {
    return ENOBUFS;
  }
}

export { TH_ACK };
