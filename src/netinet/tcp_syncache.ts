/**
 * The SYN cache and SYN cookies (tcp_syncache.c): a listener's half-open
 * connections live here, not as full control blocks, until the ACK of our
 * SYN|ACK arrives (syncache_expand makes the connection). Each entry keeps
 * the peer's ISN and options, our ISN, and retransmits the SYN|ACK with
 * FreeBSD's backoff from net.inet.tcp.rexmit_initial, at most
 * net.inet.tcp.syncache.rexmtlimit times. When the cache holds
 * net.inet.tcp.syncache.cachelimit entries (or syncookies_only is set),
 * net.inet.tcp.syncookies answers with a SYN cookie instead: our ISN
 * encodes a MAC of the 4-tuple, the peer's ISN and a 15 s time slot,
 * plus the MSS index, window scale and SACK-permitted, so the ACK alone
 * can rebuild the connection.
 *
 * Per stack instance on its thread; no lock; never sleeps.
 */
import type { Callout } from '../kern/lwkt/callout.js';
import { TH_ACK, TH_CWR, TH_ECE, TH_SYN, TOF_MSS, TOF_SACKPERM, TOF_SCALE, TOF_TS, type TcpOpt, TcpOpt as TcpOptClass, tcpEmit, tcpEmitOptions, tcpSetCksum, TCP_HLEN } from '../wire/tcp.js';
import { M_NOWAIT } from '../uma/flags.js';
import { M_DATA, M_LEN, MT_DATA, PH_LEN } from '../kern/mbuf/layout.js';
import { IPPROTO_TCP } from '../wire/ipv4.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import { chainSum } from '../net/mchain.js';
import { SEQ_GT, SEQ_LEQ, seqAdd } from './tcp_seq.js';
import { TCPS_STAT } from './tcp_stats.js';
import { TCPS_SYN_RECEIVED } from './tcp_fsm.js';
import { ccSwitch } from './cc/cc_list.js';
import { TCP_LINKHDR, type TcpTable } from './tcp_subr.js';
import { tcpTimerKeepArm } from './tcp_timer.js';
import {
  TCP_MAXWIN,
  SO_ACCEPTCONN_OPT,
  TF_ECN_PERMIT,
  TF_NODELAY,
  TF_NOOPT,
  TF_RCVD_SCALE,
  TF_RCVD_TSTMP,
  TF_REQ_SCALE,
  TF_REQ_TSTMP,
  TF_SACK_PERMIT,
  tcp_backoff,
  type Tcpcb,
} from './tcp_var.js';
import type { Seg } from './tcp_input.js';

/** MSS values a cookie can carry (FreeBSD's tcp_sc_msstab). */
const MSSTAB = [216, 536, 1200, 1360, 1400, 1440, 1452, 1460];
const COOKIE_SLOT_MS = 15000;

class SynEntry {
  laddr = 0;
  lport = 0;
  faddr = 0;
  fport = 0;
  irs = 0;
  iss = 0;
  peerMss = 0;
  /** Peer's window scale (-1: none) and ours. */
  sWscale = -1;
  rWscale = 0;
  sack = false;
  ts = false;
  tsRecent = 0;
  tsOffset = 0;
  ecn = false;
  wnd = 0;
  rxmits = 0;
  tos = 0;
  ttl = 64;
  /** TCP over UDP: the peer's UDP port (0: plain TCP). */
  port = 0;
  timer: Callout | null = null;
  constructor(readonly lp: Tcpcb) {}
}

export class Syncache {
  private readonly entries = new Map<number, SynEntry[]>();
  count = 0;
  private readonly to = new TcpOptClass();

  constructor(readonly tcp: TcpTable) {}

  private static key(faddr: number, fport: number): number {
    return faddr * 65536 + fport;
  }

  private lookup(laddr: number, lport: number, faddr: number, fport: number): SynEntry | null {
    const l = this.entries.get(Syncache.key(faddr, fport));
    if (l === undefined) return null;
    for (const e of l) if (e.laddr === laddr && e.lport === lport) return e;
    return null;
  }

  private insert(e: SynEntry): void {
    const k = Syncache.key(e.faddr, e.fport);
    let l = this.entries.get(k);
    if (l === undefined) this.entries.set(k, (l = []));
    l.push(e);
    this.count++;
  }

  private remove(e: SynEntry): void {
    const k = Syncache.key(e.faddr, e.fport);
    const l = this.entries.get(k);
    if (l === undefined) return;
    const i = l.indexOf(e);
    if (i < 0) return;
    l.splice(i, 1);
    if (l.length === 0) this.entries.delete(k);
    this.count--;
    e.timer?.stop();
  }

  /**
   * syncache_add: a SYN for listener lp. A duplicate SYN for an entry
   * resends its SYN|ACK; a full cache (or syncookies_only) answers with a
   * cookie; otherwise a new entry is made and its SYN|ACK sent.
   */
  add(lp: Tcpcb, seg: Seg, to: TcpOpt): void {
    const tcp = this.tcp;
    const cfg = tcp.cfg;
    const s = tcp.stats;
    const old = this.lookup(seg.dst, seg.dport, seg.src, seg.sport);
    if (old !== null) {
      s[TCPS_STAT.sc_dupsyn]++;
      old.irs = seg.seq;
      if ((to.flags & TOF_TS) !== 0) old.tsRecent = to.tsval;
      this.sendSynAck(old);
      return;
    }
    const e = new SynEntry(lp);
    e.laddr = seg.dst;
    e.lport = seg.dport;
    e.faddr = seg.src;
    e.fport = seg.sport;
    e.irs = seg.seq;
    e.tos = lp.tos;
    e.ttl = lp.ttl;
    e.port = seg.port;
    const noopt = (lp.t_flags & TF_NOOPT) !== 0;
    e.peerMss = (to.flags & TOF_MSS) !== 0 ? to.mss : 0;
    const r = cfg.rfc1323;
    if (!noopt && (to.flags & TOF_SCALE) !== 0 && (r === 1 || r === 2)) {
      e.sWscale = to.wscale;
      e.rWscale = tcp.requestScale();
    }
    if (!noopt && (to.flags & TOF_TS) !== 0 && (r === 1 || r === 3)) {
      e.ts = true;
      e.tsRecent = to.tsval;
      e.tsOffset = tcp.tsOffset(e.laddr, e.lport, e.faddr, e.fport);
    }
    e.sack = !noopt && (to.flags & TOF_SACKPERM) !== 0 && cfg.sack_enable !== 0;
    e.ecn = (seg.flags & (TH_ECE | TH_CWR)) === (TH_ECE | TH_CWR) && cfg.ecn_enable !== 0;
    e.wnd = Math.min(Math.max(lp.so_rcv.hiwat, 0), TCP_MAXWIN);
    const useCookie = cfg.syncookies !== 0 && (cfg.syncookies_only !== 0 || this.count >= cfg.syncache_cachelimit);
    if (!useCookie && this.count >= cfg.syncache_cachelimit) {
      s[TCPS_STAT.sc_cacheoverflow]++;
      return;
    }
    if (useCookie) {
      if (this.count >= cfg.syncache_cachelimit) s[TCPS_STAT.sc_cacheoverflow]++;
      e.iss = this.cookie(e, Math.floor(tcp.st.now() / COOKIE_SLOT_MS));
      s[TCPS_STAT.sc_sendcookie]++;
      this.sendSynAck(e);
      return;
    }
    e.iss = (tcp.hash4(e.laddr, e.lport, e.faddr, e.fport, 0) + Math.floor(tcp.st.now() * 250)) >>> 0;
    this.insert(e);
    s[TCPS_STAT.sc_added]++;
    this.sendSynAck(e);
    this.armTimer(e);
  }

  private armTimer(e: SynEntry): void {
    const tcp = this.tcp;
    if (e.timer === null) e.timer = tcp.st.td.callouts.callout();
    const ms = tcp.cfg.rexmit_initial * tcp_backoff[Math.min(e.rxmits, tcp_backoff.length - 1)];
    e.timer.reset(Math.max(1, Math.round(ms / tcp.st.td.callouts.tickMs)), () => this.timeout(e));
  }

  /** syncache_timer: resend the SYN|ACK, or give the entry up after rexmtlimit resends. */
  private timeout(e: SynEntry): void {
    const tcp = this.tcp;
    if (e.rxmits >= tcp.cfg.syncache_rexmtlimit) {
      tcp.stats[TCPS_STAT.sc_stale]++;
      this.remove(e);
      return;
    }
    e.rxmits++;
    tcp.stats[TCPS_STAT.sc_retransmitted]++;
    this.sendSynAck(e);
    this.armTimer(e);
  }

  /** The cookie ISN: 24 bits of MAC, then MSS index (3), SACK (1), window scale (4, 15 = none). */
  private cookie(e: SynEntry, slot: number): number {
    let idx = 0;
    const mss = e.peerMss === 0 ? this.tcp.cfg.mssdflt : e.peerMss;
    for (let i = 0; i < MSSTAB.length; i++) if (MSSTAB[i] <= mss) idx = i;
    const low = (idx << 5) | ((e.sack ? 1 : 0) << 4) | (e.sWscale < 0 ? 15 : e.sWscale);
    const mac = this.tcp.hash4(e.laddr, e.lport, e.faddr, e.fport, (e.irs ^ Math.imul(slot, 0x9e3779b1) ^ low) >>> 0, true) >>> 8;
    return ((mac << 8) | low) >>> 0;
  }

  /** Check an ACK against the cookies of this and the previous slot; fills e from the cookie. */
  private cookieValid(e: SynEntry, iss: number): boolean {
    const slot = Math.floor(this.tcp.st.now() / COOKIE_SLOT_MS);
    const low = iss & 0xff;
    const ws = low & 15;
    e.sWscale = ws === 15 ? -1 : ws;
    e.sack = ((low >> 4) & 1) !== 0;
    e.peerMss = MSSTAB[(low >> 5) & 7];
    for (const sl of [slot, slot - 1]) {
      if (this.cookie(e, sl) === iss) return true;
    }
    return false;
  }

  /** Build and send the SYN|ACK of an entry (syncache_respond). */
  private sendSynAck(e: SynEntry): void {
    const tcp = this.tcp;
    const mb = tcp.st.mb;
    const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
    if (m === 0) return;
    const i32 = mb.i32;
    const u8 = mb.u8;
    i32[(m + M_DATA) >> 2] += TCP_LINKHDR;
    const th = i32[(m + M_DATA) >> 2];
    const to = this.to;
    to.clear();
    if ((e.lp.t_flags & TF_NOOPT) === 0) {
      to.flags |= TOF_MSS;
      to.mss = tcp.mssopt(e.faddr, e.port);
      if (e.sWscale >= 0) {
        to.flags |= TOF_SCALE;
        to.wscale = e.rWscale;
      }
      if (e.sack) to.flags |= TOF_SACKPERM;
      if (e.ts) {
        to.flags |= TOF_TS;
        to.tsval = seqAdd(tcp.ticks(), e.tsOffset);
        to.tsecr = e.tsRecent;
      }
    }
    const olen = tcpEmitOptions(u8, th + TCP_HLEN, to);
    const hlen = TCP_HLEN + olen;
    const flags = TH_SYN | TH_ACK | (e.ecn ? TH_ECE : 0);
    tcpEmit(u8, th, e.lport, e.fport, e.iss, seqAdd(e.irs, 1), hlen, flags, e.wnd, 0);
    i32[(m + M_LEN) >> 2] = hlen;
    i32[(m + PH_LEN) >> 2] = hlen;
    tcpSetCksum(u8, th, chainSum(mb, m, 0, hlen, pseudoHeaderSum(e.laddr, e.faddr, IPPROTO_TCP, hlen)));
    tcp.stats[TCPS_STAT.sndtotal]++;
    tcp.stats[TCPS_STAT.sndctrl]++;
    const o = tcp.ipo;
    o.ttl = e.ttl;
    o.tos = e.tos;
    o.df = tcp.cfg.path_mtu_discovery !== 0;
    tcp.ipOutput(m, e.laddr, e.faddr, e.port);
  }

  /**
   * syncache_expand: an ACK for listener lp. The entry (or a valid cookie)
   * becomes a connection in SYN_RECEIVED that the caller hands the ACK to;
   * null when there is none (the caller resets) or when the accept queue is
   * full (counted as a listen drop; the caller resets as FreeBSD does).
   */
  expand(lp: Tcpcb, seg: Seg, to: TcpOpt): Tcpcb | null {
    const tcp = this.tcp;
    const s = tcp.stats;
    let e = this.lookup(seg.dst, seg.dport, seg.src, seg.sport);
    if (e !== null && e.port !== seg.port) return null;
    if (e !== null) {
      if (seg.ack !== seqAdd(e.iss, 1) || SEQ_LEQ(seg.seq, e.irs) || SEQ_GT(seg.seq, seqAdd(e.irs, e.wnd + 1))) {
        s[TCPS_STAT.sc_badack]++;
        return null;
      }
      this.remove(e);
    } else {
      if (tcp.cfg.syncookies === 0) return null;
      e = new SynEntry(lp);
      e.laddr = seg.dst;
      e.lport = seg.dport;
      e.faddr = seg.src;
      e.fport = seg.sport;
      e.irs = seqAdd(seg.seq, -1);
      e.port = seg.port;
      const iss = seqAdd(seg.ack, -1);
      if (!this.cookieValid(e, iss)) {
        s[TCPS_STAT.sc_badack]++;
        return null;
      }
      e.iss = iss;
      e.tos = lp.tos;
      e.ttl = lp.ttl;
      if (e.sWscale >= 0) e.rWscale = tcp.requestScale();
      if ((to.flags & TOF_TS) !== 0 && (tcp.cfg.rfc1323 === 1 || tcp.cfg.rfc1323 === 3)) {
        e.ts = true;
        e.tsRecent = to.tsval;
        e.tsOffset = tcp.tsOffset(e.laddr, e.lport, e.faddr, e.fport);
      }
      e.wnd = Math.min(lp.so_rcv.hiwat, TCP_MAXWIN);
      s[TCPS_STAT.sc_recvcookie]++;
    }
    const q = lp.so_comp;
    if (q === null || q.length >= lp.so_qlimit) {
      s[TCPS_STAT.listendrop]++;
      s[TCPS_STAT.sc_aborted]++;
      return null;
    }
    s[TCPS_STAT.sc_completed]++;
    s[TCPS_STAT.accepts]++;
    return this.socket(lp, e);
  }

  /** syncache_socket: the connection of a completed entry, inheriting the listener's options. */
  private socket(lp: Tcpcb, e: SynEntry): Tcpcb | null {
    const tcp = this.tcp;
    const tp = tcp.attachConn(e.laddr, e.lport, e.faddr, e.fport);
    if (tp === null) return null;
    tp.so_head = lp;
    // The listener's congestion control (TCP_CONGESTION on it), as tcp_newtcpcb(inp, listening_tcb).
    if (tp.cc_algo !== lp.cc_algo) ccSwitch(tp, lp.cc_algo.name);
    tp.so_options = lp.so_options & ~SO_ACCEPTCONN_OPT;
    tp.so_linger = lp.so_linger;
    tp.ttl = lp.ttl;
    tp.tos = lp.tos;
    tp.t_flags = (tp.t_flags & ~(TF_REQ_SCALE | TF_REQ_TSTMP | TF_SACK_PERMIT)) | (lp.t_flags & (TF_NODELAY | TF_NOOPT));
    tp.t_keepinit = lp.t_keepinit;
    tp.t_keepidle = lp.t_keepidle;
    tp.t_keepintvl = lp.t_keepintvl;
    tp.t_keepcnt = lp.t_keepcnt;
    tp.t_usermss = lp.t_usermss;
    tp.so_snd.hiwat = lp.so_snd.hiwat;
    tp.so_rcv.hiwat = lp.so_rcv.hiwat;
    tp.so_snd.autosize = lp.so_snd.autosize;
    tp.so_rcv.autosize = lp.so_rcv.autosize;
    tp.state = TCPS_SYN_RECEIVED;
    tp.t_port = e.port;
    tp.iss = e.iss;
    tp.irs = e.irs;
    tp.snd_una = e.iss;
    tp.snd_nxt = tp.snd_max = tp.snd_up = tp.snd_recover = seqAdd(e.iss, 1);
    tp.rcv_nxt = tp.rcv_adv = tp.rcv_up = seqAdd(e.irs, 1);
    tp.rcv_adv = seqAdd(tp.rcv_nxt, e.wnd);
    tp.last_ack_sent = tp.rcv_nxt;
    tp.snd_wl1 = e.irs;
    if (e.sWscale >= 0) {
      tp.t_flags |= TF_REQ_SCALE | TF_RCVD_SCALE;
      tp.requested_s_scale = e.sWscale;
      tp.request_r_scale = e.rWscale;
    }
    if (e.ts) {
      tp.t_flags |= TF_REQ_TSTMP | TF_RCVD_TSTMP;
      tp.ts_recent = e.tsRecent;
      tp.ts_recent_age = tcp.ticks();
      tp.ts_offset = e.tsOffset;
    }
    if (e.sack) tp.t_flags |= TF_SACK_PERMIT;
    if (e.ecn) {
      tp.t_flags |= TF_ECN_PERMIT;
      tcp.stats[TCPS_STAT.ecn_shs]++;
    }
    tcp.mss(tp, e.peerMss);
    // A retransmitted SYN|ACK: start from one segment (cc_conn_init).
    if (e.rxmits > 0) tp.snd_cwnd = 1;
    // The handshake RTT (SYN|ACK to ACK) is not timed: FreeBSD starts from the initial RTO.
    tcpTimerKeepArm(tp, tp.keepinit());
    return tp;
  }

  /** syncache_chkrst: a RST for an entry removes it when its sequence is in the window. */
  chkrst(seg: Seg): void {
    const e = this.lookup(seg.dst, seg.dport, seg.src, seg.sport);
    if (e === null) return;
    const seq = seg.seq;
    const insecure = this.tcp.cfg.insecure_rst !== 0;
    const exact = seq === seqAdd(e.irs, 1);
    const inWin = SEQ_GT(seq, e.irs) && SEQ_LEQ(seq, seqAdd(e.irs, e.wnd));
    if (exact || (insecure && inWin)) {
      this.tcp.stats[TCPS_STAT.sc_reset]++;
      this.remove(e);
    } else if (inWin) {
      // RFC 5961: a RST in the window but not exact gets a challenge (resend the SYN|ACK's ACK).
      this.tcp.stats[TCPS_STAT.ack_war]++;
      const tcp = this.tcp;
      const ts = e.ts ? seqAdd(tcp.ticks(), e.tsOffset) : -1;
      tcp.respond(null, e.laddr, e.lport, e.faddr, e.fport, seqAdd(e.iss, 1), seqAdd(e.irs, 1), TH_ACK, e.wnd, ts, e.tsRecent, e.port);
    }
  }

  /** syncache_unreach: an ICMP error about an entry's SYN|ACK. */
  unreach(laddr: number, lport: number, faddr: number, fport: number, seq: number): void {
    const e = this.lookup(laddr, lport, faddr, fport);
    if (e === null || seq !== e.iss) return;
    this.tcp.stats[TCPS_STAT.sc_unreach]++;
    this.remove(e);
  }

  /** The listener is going away: forget its entries. */
  dropListener(lp: Tcpcb): void {
    for (const l of [...this.entries.values()]) for (const e of [...l]) if (e.lp === lp) this.remove(e);
  }

  /** Half-open entries for netstat -an / sockstat (state SYN_RECEIVED, no socket). */
  listEntries(): { laddr: number; lport: number; faddr: number; fport: number }[] {
    const out: { laddr: number; lport: number; faddr: number; fport: number }[] = [];
    for (const l of this.entries.values()) for (const e of l) out.push({ laddr: e.laddr, lport: e.lport, faddr: e.faddr, fport: e.fport });
    return out;
  }

  flush(): void {
    for (const l of [...this.entries.values()]) for (const e of [...l]) this.remove(e);
  }
}
