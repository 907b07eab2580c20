/**
 * TCP output (tcp_output.c): decide whether a segment is due (data the
 * windows allow, a window update, a pending ACK, SYN, FIN, or a persist
 * probe), build it (options in FreeBSD's order, data referenced from
 * so_snd with m_copym, the checksum over the pseudo-header) and hand it to
 * ip_output; loop while more is due. Timers: the retransmission timer runs
 * while data is outstanding, the persist timer while the peer's window is
 * closed and data waits.
 *
 * Runs on the stack's thread; no lock; never sleeps (M_NOWAIT: a failed
 * allocation leaves the segment for the retransmission timer).
 */
import { M_NOWAIT } from '../uma/flags.js';
import { M_DATA, M_LEN, M_NEXT, MT_DATA, PH_LEN, MHLEN } from '../kern/mbuf/layout.js';
import {
  TCP_HLEN,
  TH_ACK,
  TH_CWR,
  TH_ECE,
  TH_FIN,
  TH_PUSH,
  TH_RST,
  TH_SYN,
  TOF_MSS,
  TOF_SACK,
  TOF_SACKPERM,
  TOF_SCALE,
  TOF_TS,
  tcpEmit,
  tcpEmitOptions,
} from '../wire/tcp.js';
import { tcpCksumRequest } from '../net/if_offload.js';
import { ENOBUFS } from './tcp_errno.js';
import { TCPS_ESTABLISHED, TCPS_HAVERCVDFIN, TCPS_SYN_RECEIVED, TCPS_SYN_SENT, tcp_outflags, TCPS_CLOSED } from './tcp_fsm.js';
import { SEQ_GT, SEQ_LT, seqAdd, seqDiff } from './tcp_seq.js';
import { TCPS_STAT } from './tcp_stats.js';
import { TCP_LINKHDR } from './tcp_subr.js';
import { TT_DELACK, TT_PERSIST, TT_REXMT, tcpSetpersist, tcpTimerRexmtArm, tcpTimerStop } from './tcp_timer.js';
import { sackhintOf, tcpComputePipe, tcpSackOutput, tcpSackRxmitSent } from './tcp_sack.js';
import { ccAfterIdle } from './cc/cc.js';
import { sbMaxAdj } from './tcp_sockbuf.js';
import { rackOn, tcpRackArmPto, tcpRackSent } from './tcp_rack.js';
import {
  TCP_MAXWIN,
  TF_ACKNOW,
  TF_DELACK,
  TF_FORCEDATA,
  TF_NODELAY,
  TF_NOOPT,
  TF_NOPUSH,
  TF_RCVD_SCALE,
  TF_RCVD_TSTMP,
  TF_REQ_SCALE,
  TF_REQ_TSTMP,
  TF_RXWIN0SENT,
  TF_SACK_PERMIT,
  TF_SENTFIN,
  TF_ECN_PERMIT,
  TF2_ECN_SND_CWR,
  TF2_ECN_SND_ECE,
  TF2_ECN_SYN_DISABLED,
  TF_FASTRECOVERY,
  TF_TSO,
  type Tcpcb,
} from './tcp_var.js';
import { IP_HLEN_MIN } from '../wire/ipv4.js';
import { MAX_LINKHDR } from '../kern/mbuf/ops.js';

/** ECT(0) codepoint in the IP TOS byte. */
const IPTOS_ECN_ECT0 = 0x02;

/**
 * tcp_output: send what is due. Returns 0 or an errno from ip_output (a
 * local failure: the data stays queued and the timer retries).
 */
export function tcpOutput(tp: Tcpcb): number {
  const tcp = tp.tcp;
  if (tcp.closed || tp.state === TCPS_CLOSED) return 0;
  // Idle for more than an RTO: the algorithm restarts the window (cc_after_idle, RFC 5681 4.1).
  const idle = tp.snd_max === tp.snd_una;
  if (idle && tp.state >= TCPS_ESTABLISHED && tcp.ticks() - tp.t_rcvtime >= Math.max(tp.t_rxtcur, 1) && tp.t_lastdatasent !== 0) ccAfterIdle(tp);
  for (let loops = 0; loops < 10000; loops++) {
    const r = outputOne(tp, idle);
    if (r <= 0) return r < 0 ? -r : 0;
  }
  return 0;
}

/**
 * tcp_compute_initwnd: RFC 6928's initial window of
 * net.inet.tcp.initcwnd_segments segments of `maxseg` bytes (RFC 3390's
 * with 0).
 */
export function tcpComputeInitwnd(tp: Tcpcb, maxseg: number): number {
  const n = tp.tcp.cfg.initcwnd_segments;
  if (n > 0) return Math.min(n * maxseg, Math.max(2 * maxseg, n * 1460));
  return Math.min(4 * maxseg, Math.max(2 * maxseg, 4380));
}

/** tcp_maxseg: the data a full segment carries with our usual options. */
export function tcpMaxseg(tp: Tcpcb): number {
  let optlen = 0;
  if ((tp.t_flags & TF_NOOPT) === 0) {
    if ((tp.t_flags & (TF_REQ_TSTMP | TF_RCVD_TSTMP)) === (TF_REQ_TSTMP | TF_RCVD_TSTMP)) optlen += 12;
  }
  return tp.t_maxseg - optlen;
}

/** The receive window we can offer now (sbspace, bounded by what scaling can express). */
function recvWindow(tp: Tcpcb): number {
  let recwin = tp.so_rcv.space();
  if (recwin < 0) recwin = 0;
  const max = TCP_MAXWIN << tp.rcv_scale;
  if (recwin > max) recwin = max;
  return recwin;
}

/**
 * tcp_sndbuf_autoscale: grow so_snd by net.inet.tcp.sendbuf_inc, up to
 * sendbuf_max, while the peer's window could take more than the buffer holds
 * and the application keeps it nearly full, so a fast path is not held to
 * one buffer per round trip. A step past sb_max_adj clears SB_AUTOSIZE
 * instead (sbreserve refuses it). Only for a buffer the user did not size
 * (SO_SNDBUF clears SB_AUTOSIZE). Stack thread; never sleeps.
 */
function tcpSndbufAutoscale(tp: Tcpcb, sendwin: number): void {
  const cfg = tp.tcp.cfg;
  const sb = tp.so_snd;
  if (cfg.sendbuf_auto === 0 || !sb.autosize) return;
  const inflight = seqDiff(tp.snd_nxt, tp.snd_una);
  if (Math.floor(tp.snd_wnd / 4) * 5 < sb.hiwat) return; // the peer's window would not take more
  if (sb.cc < Math.floor(sb.hiwat / 8) * 7 || sb.cc >= cfg.sendbuf_max) return; // not nearly full, or at the cap
  if (sendwin < sb.cc - inflight) return; // the window cannot take what is already queued
  const next = Math.min(sb.hiwat + cfg.sendbuf_inc, cfg.sendbuf_max);
  // sbreserve refuses a size above sb_max_adj: FreeBSD then gives up autosizing this buffer.
  if (next > sbMaxAdj(cfg.maxsockbuf)) sb.autosize = false;
  else if (next > sb.hiwat) sb.hiwat = next;
}

/** One pass of tcp_output's decision and send. Returns 1 to go again, 0 done, -errno. */
function outputOne(tp: Tcpcb, idle: boolean): number {
  const tcp = tp.tcp;
  const sb = tp.so_snd;
  let off = seqDiff(tp.snd_nxt, tp.snd_una);
  let sendwin = Math.min(tp.snd_wnd, tp.snd_cwnd);
  let flags = tcp_outflags[tp.state];
  let sendalot = false;
  // SACK recovery (RFC 6675): a lost hole first, else new data, both within cwnd - pipe.
  const sackRec = (tp.t_flags & TF_FASTRECOVERY) !== 0 && tp.sackhint.sackrec;
  let rx = -1;
  let len = 0;
  let room = 0;
  if (sackRec) {
    room = Math.min(tp.snd_wnd, tp.snd_cwnd) - tcpComputePipe(tp);
    rx = sackRxmitHole(tp, off, room);
    if (rx >= 0) {
      const sh = tp.sackhint;
      off = seqDiff(sh.hr[rx], tp.snd_una);
      len = Math.min(seqDiff(sh.he[rx], sh.hr[rx]), seqDiff(tp.snd_recover, sh.hr[rx]), tcpMaxseg(tp));
      sendalot = true;
    } else sendwin = tp.snd_wnd; // new data: the peer's window here, cwnd - pipe below
  }
  if ((tp.t_flags & TF_FORCEDATA) !== 0) {
    // A window probe: one byte past a closed window, or the FIN.
    if (sendwin === 0) {
      if (off < sb.cc) flags &= ~TH_FIN;
      sendwin = 1;
    } else {
      tcpTimerStop(tp, TT_PERSIST);
      tp.t_rxtshift = 0;
    }
  }
  tcpSndbufAutoscale(tp, sendwin);
  if (rx < 0) len = Math.min(sb.cc, sendwin) - off;
  if (sackRec && rx < 0 && len > room) len = room > 0 ? room : 0;
  // The SYN occupies one sequence number and carries no data here.
  if ((flags & TH_SYN) !== 0 && SEQ_GT(tp.snd_nxt, tp.snd_una)) {
    if (tp.state === TCPS_SYN_RECEIVED && (tp.t_flags & TF_ACKNOW) !== 0) {
      // Resend the SYN|ACK of a simultaneous open from the ISN.
      tp.snd_nxt = tp.snd_una;
      off = 0;
    } else {
      flags &= ~TH_SYN;
      off--;
      len++;
    }
  }
  if ((flags & TH_SYN) !== 0 || tp.state === TCPS_SYN_SENT || tp.state === TCPS_SYN_RECEIVED) {
    len = 0;
    if ((flags & TH_SYN) === 0 && tp.state === TCPS_SYN_SENT) return 0;
  }
  if (len < 0) {
    len = 0;
    if (sendwin === 0) {
      // The peer closed its window: wait in persist, resend from snd_una when it opens.
      tcpTimerStop(tp, TT_REXMT);
      tp.t_rxtshift = 0;
      tp.snd_nxt = tp.snd_una;
      if (tp.tt_persist === 0) tcpSetpersist(tp);
    }
  }
  const maxseg = tcpMaxseg(tp);
  let tso = false;
  if (len > maxseg) {
    const want = len;
    if (rx < 0 && tsoUsable(tp, flags)) {
      len = tsoLength(tp, off, len, maxseg);
      tso = len > maxseg;
    } else len = maxseg;
    if (len < want) sendalot = true;
  }
  // A hole's retransmission never carries the FIN (it goes with the data after the hole).
  if (rx >= 0 || SEQ_LT(seqAdd(tp.snd_nxt, len), seqAdd(tp.snd_una, sb.cc))) flags &= ~TH_FIN;
  const recwin = recvWindow(tp);

  let send = false;
  if (len > 0) {
    if (len >= maxseg) send = true;
    else if ((idle || (tp.t_flags & TF_NODELAY) !== 0) && len + off >= sb.cc && (tp.t_flags & TF_NOPUSH) === 0) send = true;
    else if ((tp.t_flags & TF_FORCEDATA) !== 0) send = true;
    else if (tp.max_sndwnd > 0 && len >= tp.max_sndwnd / 2) send = true;
    else if (SEQ_LT(tp.snd_nxt, tp.snd_max) || rx >= 0) send = true;
  }
  if (!send && recwin > 0 && (tp.t_flags & TF_DELACK) === 0 && !TCPS_HAVERCVDFIN(tp.state) && tp.state >= TCPS_ESTABLISHED) {
    let adv = recwin;
    let oldwin = 0;
    if (SEQ_GT(tp.rcv_adv, tp.rcv_nxt)) {
      oldwin = seqDiff(tp.rcv_adv, tp.rcv_nxt);
      adv = adv > oldwin ? adv - oldwin : 0;
    }
    if (oldwin >> tp.rcv_scale < (adv + oldwin) >> tp.rcv_scale) {
      const hi = tp.so_rcv.hiwat;
      if (adv >= 2 * tp.t_maxseg && (adv >= hi / 4 || recwin <= hi / 8 || hi <= 8 * tp.t_maxseg || adv >= TCP_MAXWIN << tp.rcv_scale)) send = true;
      else if (2 * adv >= hi) send = true;
      if (send) tcp.stats[TCPS_STAT.sndwinup]++;
    }
  }
  if (!send && (tp.t_flags & TF_ACKNOW) !== 0) send = true;
  if (!send && (flags & (TH_SYN | TH_RST)) !== 0) send = true;
  if (!send && (flags & TH_FIN) !== 0 && ((tp.t_flags & TF_SENTFIN) === 0 || tp.snd_nxt === tp.snd_una)) send = true;
  if (!send) {
    // Data waits for a window: make sure a timer will bring it out.
    if (sb.cc > 0 && tp.tt_rexmt === 0 && tp.tt_persist === 0) {
      tp.t_rxtshift = 0;
      tcpSetpersist(tp);
    }
    return 0;
  }
  return sendSegment(tp, off, len, flags, recwin, sendalot, rx, tso);
}

/**
 * May this segment go as one TSO packet (tcp_output.c's tso test)? The
 * route's interface has TSO (TF_TSO, net.inet.tcp.tso), plain TCP, no SYN,
 * and every piece would carry the same options: no SACK blocks to send, no
 * D-SACK, not a retransmission in SACK recovery.
 */
function tsoUsable(tp: Tcpcb, flags: number): boolean {
  return (
    (tp.t_flags & TF_TSO) !== 0 &&
    tp.tcp.cfg.tso !== 0 &&
    tp.t_tsomax > 0 &&
    tp.t_port === 0 &&
    (flags & TH_SYN) === 0 &&
    tp.rcv_numsacks === 0 &&
    tp.dsack_start === tp.dsack_end &&
    !((tp.t_flags & TF_FASTRECOVERY) !== 0 && SEQ_LT(tp.snd_nxt, tp.snd_max))
  );
}

/**
 * The length of a TSO packet for `len` sendable bytes at offset `off`: at
 * most t_tsomax with the headers (and link header room, max_linkhdr), and a
 * whole number of `maxseg` segments unless it empties so_snd, so no small
 * piece is left in the middle of a stream. A result <= maxseg means: send
 * one plain segment instead.
 */
function tsoLength(tp: Tcpcb, off: number, len: number, maxseg: number): number {
  const hdr = IP_HLEN_MIN + TCP_HLEN + (tp.t_maxseg - maxseg) + MAX_LINKHDR;
  const max = tp.t_tsomax - hdr;
  if (len > max) len = max;
  if (off + len < tp.so_snd.cc) len -= len % maxseg;
  return len <= maxseg ? maxseg : len;
}

/**
 * In SACK recovery: the hole (index) whose next bytes are due now, or -1.
 * NextSeg's rule 3 applies when no new data could go (none queued, or no
 * window for it); nothing is due while cwnd - pipe (`room`) cannot take the
 * retransmission, and nothing at or past the recovery point (that belongs
 * to the next episode, as in FreeBSD).
 */
function sackRxmitHole(tp: Tcpcb, off: number, room: number): number {
  const sh = tp.sackhint;
  if (sh.nholes === 0) return -1;
  const noNew = tp.so_snd.cc - off <= 0 || tp.snd_wnd - off <= 0;
  const i = tcpSackOutput(tp, noNew);
  if (i < 0 || !SEQ_LT(sh.hr[i], tp.snd_recover)) return -1;
  const len = Math.min(seqDiff(sh.he[i], sh.hr[i]), seqDiff(tp.snd_recover, sh.hr[i]), tcpMaxseg(tp));
  return room >= len ? i : -1;
}

/** Build and send one segment; returns 1 if more is due (sendalot), 0, or -errno. */
function sendSegment(tp: Tcpcb, off: number, len: number, flags: number, recwin: number, sendalot: boolean, rx: number, tso: boolean): number {
  const tcp = tp.tcp;
  const mb = tcp.st.mb;
  const u8 = mb.u8;
  const i32 = mb.i32;
  const cfg = tcp.cfg;
  const s = tcp.stats;
  const to = tcp.oopt;
  to.clear();
  // Options.
  if ((tp.t_flags & TF_NOOPT) === 0) {
    if ((flags & TH_SYN) !== 0) {
      to.flags |= TOF_MSS;
      to.mss = tcp.mssopt(tp.faddr, tp.t_port);
      if ((tp.t_flags & TF_REQ_SCALE) !== 0 && ((flags & TH_ACK) === 0 || (tp.t_flags & TF_RCVD_SCALE) !== 0)) {
        to.flags |= TOF_SCALE;
        to.wscale = tp.request_r_scale;
      }
      if ((tp.t_flags & TF_SACK_PERMIT) !== 0) to.flags |= TOF_SACKPERM;
    }
    if ((tp.t_flags & TF_REQ_TSTMP) !== 0 && ((flags & TH_SYN) !== 0 && (flags & TH_ACK) === 0 ? true : (tp.t_flags & TF_RCVD_TSTMP) !== 0)) {
      to.flags |= TOF_TS;
      to.tsval = seqAdd(tcp.ticks(), tp.ts_offset);
      to.tsecr = tp.ts_recent;
    }
    // Receive-buffer autosizing: a measurement window opens with a segment we send (tcp_autorcvbuf closes it).
    if (tp.rfbuf_ts === 0 && tp.so_rcv.autosize) tp.rfbuf_ts = tcp.ticks();
    if ((tp.t_flags & TF_SACK_PERMIT) !== 0 && (flags & TH_SYN) === 0 && tp.state >= TCPS_ESTABLISHED && (tp.rcv_numsacks > 0 || tp.dsack_start !== tp.dsack_end)) {
      to.flags |= TOF_SACK;
      let n = 0;
      if (tp.dsack_start !== tp.dsack_end) {
        to.sacks[0] = tp.dsack_start;
        to.sacks[1] = tp.dsack_end;
        n = 1;
        s[TCPS_STAT.dsack_sent]++;
      }
      for (let i = 0; i < tp.rcv_numsacks && n < 4; i++, n++) {
        to.sacks[2 * n] = tp.sackblks[2 * i];
        to.sacks[2 * n + 1] = tp.sackblks[2 * i + 1];
      }
      to.nsacks = n;
      s[TCPS_STAT.sack_send_blocks]++;
    }
  }
  // SYN options are settled on the first SYN: the peer's scale applies to what follows.
  const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
  if (m === 0) return -ENOBUFS;
  i32[(m + M_DATA) >> 2] += TCP_LINKHDR;
  const th = i32[(m + M_DATA) >> 2];
  const olen = tcpEmitOptions(u8, th + TCP_HLEN, to);
  if (to.nsacks > 0 && (to.flags & TOF_SACK) !== 0) tp.dsack_start = tp.dsack_end = 0;
  const hlen = TCP_HLEN + olen;
  // Options push data out of a full segment (a TSO packet was sized with them).
  if (!tso && len + olen > tp.t_maxseg && len > 0) {
    const cut = len + olen - tp.t_maxseg;
    const fixed = (tp.t_flags & (TF_REQ_TSTMP | TF_RCVD_TSTMP)) === (TF_REQ_TSTMP | TF_RCVD_TSTMP) ? 12 : 0;
    if (olen > fixed) {
      len -= cut;
      if (len < 0) len = 0;
      sendalot = true;
      flags &= ~TH_FIN;
    }
  }
  i32[(m + M_LEN) >> 2] = hlen;
  if (len > 0) {
    if (len <= MHLEN - TCP_LINKHDR - hlen) {
      tp.so_snd.copyOut(off, len, u8, th + hlen);
      i32[(m + M_LEN) >> 2] = hlen + len;
    } else {
      const d = tp.so_snd.copyChain(off, len);
      if (d === 0) {
        mb.m_freem(m);
        return -ENOBUFS;
      }
      i32[(m + M_NEXT) >> 2] = d;
    }
    if (off + len === tp.so_snd.cc) flags |= TH_PUSH;
    if (rx >= 0) {
      s[TCPS_STAT.sack_rexmits]++;
      s[TCPS_STAT.sack_rexmit_bytes] += len;
      tcpSackRxmitSent(tp, rx, len);
    }
    if ((tp.t_flags & TF_FASTRECOVERY) !== 0) sackhintOf(tp).prr_out += len;
    if (rx >= 0 || SEQ_LT(tp.snd_nxt, tp.snd_max)) {
      s[TCPS_STAT.sndrexmitpack]++;
      s[TCPS_STAT.sndrexmitbyte] += len;
      tp.t_sndrexmitpack++;
    } else {
      s[TCPS_STAT.sndpack]++;
      s[TCPS_STAT.sndbyte] += len;
    }
    tp.t_lastdatasent = tcp.ticks() || 1;
  } else if ((tp.t_flags & TF_ACKNOW) !== 0 && (flags & (TH_SYN | TH_FIN | TH_RST)) === 0) s[TCPS_STAT.sndacks]++;
  else if ((flags & (TH_SYN | TH_FIN | TH_RST)) !== 0) s[TCPS_STAT.sndctrl]++;
  if ((tp.t_flags & TF_FORCEDATA) !== 0 && len === 1 && tp.snd_wnd === 0) s[TCPS_STAT.sndprobe]++;
  i32[(m + PH_LEN) >> 2] = hlen + len;

  // A retransmitted FIN goes out with the sequence number it had.
  if ((flags & TH_FIN) !== 0 && (tp.t_flags & TF_SENTFIN) !== 0 && tp.snd_nxt === tp.snd_max) tp.snd_nxt = seqAdd(tp.snd_nxt, -1);
  const seq = rx >= 0 ? seqAdd(tp.snd_una, off) : len > 0 || (flags & (TH_SYN | TH_FIN)) !== 0 || tp.tt_persist !== 0 ? tp.snd_nxt : tp.snd_max;
  const rexmit = rx >= 0 || SEQ_LT(seq, tp.snd_max);
  // ECN (RFC 3168).
  let tos = tp.tos;
  if ((flags & TH_SYN) !== 0 && (flags & TH_ACK) === 0) {
    if ((cfg.ecn_enable === 1 || cfg.ecn_enable === 3) && (tp.t_flags2 & TF2_ECN_SYN_DISABLED) === 0) flags |= TH_ECE | TH_CWR;
  } else if ((flags & TH_SYN) !== 0 && (tp.t_flags & TF_ECN_PERMIT) !== 0) {
    flags |= TH_ECE;
  } else if ((tp.t_flags & TF_ECN_PERMIT) !== 0 && tp.state >= TCPS_ESTABLISHED) {
    // tcp_ecn_output_established: ECT(0) and CWR on new data only (not retransmissions, not window probes).
    const newdata = len > 0 && rx < 0 && SEQ_GEQ_(tp.snd_nxt, tp.snd_max) && !((tp.t_flags & TF_FORCEDATA) !== 0 && len === 1);
    if (newdata) {
      tos |= IPTOS_ECN_ECT0;
      s[TCPS_STAT.ecn_sndect0]++;
      if ((tp.t_flags2 & TF2_ECN_SND_CWR) !== 0) {
        flags |= TH_CWR;
        tp.t_flags2 &= ~TF2_ECN_SND_CWR;
      }
    }
    if ((tp.t_flags2 & TF2_ECN_SND_ECE) !== 0) flags |= TH_ECE;
  }
  // The window: never shrink what we advertised, silly-window avoidance, scaled but never on a SYN.
  let win = recwin;
  if (win < tp.so_rcv.hiwat / 4 && win < tp.t_maxseg) win = 0;
  if (SEQ_GT(tp.rcv_adv, tp.rcv_nxt) && win < seqDiff(tp.rcv_adv, tp.rcv_nxt)) win = seqDiff(tp.rcv_adv, tp.rcv_nxt);
  let wfield: number;
  if ((flags & TH_SYN) !== 0) wfield = Math.min(Math.max(tp.so_rcv.space(), 0), TCP_MAXWIN);
  else {
    const r = 1 << tp.rcv_scale;
    win = Math.ceil(win / r) * r;
    wfield = Math.min(win >>> tp.rcv_scale, TCP_MAXWIN);
  }
  if (wfield === 0 && (flags & TH_SYN) === 0) {
    tp.t_flags |= TF_RXWIN0SENT;
    tp.t_sndzerowin++;
  } else tp.t_flags &= ~TF_RXWIN0SENT;
  const ack = (flags & TH_ACK) !== 0 ? tp.rcv_nxt : 0;
  tcpEmit(u8, th, tp.lport, tp.fport, seq, ack, hlen, flags, wfield, 0);
  // The checksum is left to the interface (CSUM_TCP; ip_output completes it in software where it cannot).
  tcpCksumRequest(mb, m, th, tp.laddr, tp.faddr, hlen + len, tso ? tcpMaxseg(tp) : 0);

  // Advance snd_nxt / snd_max and time the segment (unless it is a persist probe or a bare ACK).
  const startseq = tp.snd_nxt;
  if (rx >= 0) {
    // A hole's retransmission leaves snd_nxt / snd_max alone; it only needs the timer running.
    if (tp.tt_rexmt === 0 && tp.tt_persist === 0) tcpTimerRexmtArm(tp);
  } else if ((tp.t_flags & TF_FORCEDATA) === 0 || tp.tt_persist === 0) {
    if ((flags & (TH_SYN | TH_FIN)) !== 0) {
      if ((flags & TH_SYN) !== 0) tp.snd_nxt = seqAdd(tp.snd_nxt, 1);
      if ((flags & TH_FIN) !== 0) {
        tp.snd_nxt = seqAdd(tp.snd_nxt, 1);
        tp.t_flags |= TF_SENTFIN;
      }
    }
    tp.snd_nxt = seqAdd(tp.snd_nxt, len);
    if (SEQ_GT(tp.snd_nxt, tp.snd_max)) {
      tp.snd_max = tp.snd_nxt;
      if (tp.t_rtttime === 0) {
        tp.t_rtttime = tcp.ticks() || 1;
        tp.t_rtseq = startseq;
        s[TCPS_STAT.segstimed]++;
      }
    }
    if (tp.tt_rexmt === 0 && tp.snd_nxt !== tp.snd_una) {
      if (tp.tt_persist !== 0) {
        tcpTimerStop(tp, TT_PERSIST);
        tp.t_rxtshift = 0;
      }
      tcpTimerRexmtArm(tp);
    }
  } else {
    // A probe beyond the window: count its sequence space so the ACK is recognised.
    let xlen = len;
    if ((flags & TH_SYN) !== 0) xlen++;
    if ((flags & TH_FIN) !== 0) {
      xlen++;
      tp.t_flags |= TF_SENTFIN;
    }
    if (SEQ_GT(seqAdd(tp.snd_nxt, xlen), tp.snd_max)) tp.snd_max = seqAdd(tp.snd_nxt, xlen);
  }
  if (win > 0 && SEQ_GT(seqAdd(tp.rcv_nxt, win), tp.rcv_adv)) tp.rcv_adv = seqAdd(tp.rcv_nxt, win);
  tp.last_ack_sent = tp.rcv_nxt;
  tp.t_flags &= ~(TF_ACKNOW | TF_DELACK);
  tcpTimerStop(tp, TT_DELACK);
  s[TCPS_STAT.sndtotal]++;
  // RACK-TLP: the segment's transmit time, and a probe timeout behind new data.
  if ((len > 0 || (flags & TH_FIN) !== 0) && tp.state >= TCPS_ESTABLISHED && rackOn(tp)) {
    tcpRackSent(tp, seq, seqAdd(seq, len + ((flags & TH_FIN) !== 0 ? 1 : 0)), rexmit);
    if (!rexmit) tcpRackArmPto(tp);
  }
  const o = tcp.ipo;
  o.ttl = tp.ttl;
  o.tos = tos;
  o.df = cfg.path_mtu_discovery !== 0;
  const err = tcp.ipOutput(m, tp.laddr, tp.faddr, tp.t_port);
  if (err !== 0) {
    // A local failure (no route, no memory): the retransmission timer tries again.
    if (tp.tt_rexmt === 0 && tp.tt_persist === 0 && tp.snd_max !== tp.snd_una) tcpTimerRexmtArm(tp);
    return -err;
  }
  return sendalot ? 1 : 0;
}

function SEQ_GEQ_(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}
