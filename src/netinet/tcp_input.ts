/**
 * TCP input (tcp_input.c): validate a segment (length, header offset,
 * checksum over the chain with the pseudo-header, no broadcast), find its
 * connection or listener, and run the state machine of RFC 9293 as FreeBSD
 * does: RFC 5961 RST/SYN/ACK checks with challenge ACKs (rate limited by
 * net.inet.tcp.ack_war_*), PAWS, trimming to the window, ACK processing
 * with RTT sampling, NewReno fast retransmit / recovery (RFC 6582) and
 * limited transmit, window updates, in-order data straight to so_rcv and
 * the rest to the reassembly queue, FIN handling and the close states,
 * TIME_WAIT (tcp_twcheck), and RSTs for segments nobody wants.
 *
 * Runs on the stack's thread; no lock; never sleeps. Every path frees the
 * segment or hands it on (so_rcv, the reassembly queue).
 */
import { m_adj } from '../kern/mbuf/ops.js';
import { CSUM_L4_CALC, CSUM_L4_VALID, PH_LEN, PH_RCVIF } from '../kern/mbuf/layout.js';
import { IPPROTO_TCP, ipDst, ipSrc, ipTotalLen } from '../wire/ipv4.js';
import { cksumFold, pseudoHeaderSum } from '../wire/checksum.js';
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
  tcpAck,
  tcpDport,
  tcpFlags,
  tcpHlen,
  tcpParseOptions,
  tcpSeq,
  tcpSport,
  tcpWin,
} from '../wire/tcp.js';
import { chainSum, mtod, pullup } from '../net/mchain.js';
import { l4Verified } from '../net/if_offload.js';
import {
  TCPS_CLOSE_WAIT,
  TCPS_CLOSED,
  TCPS_CLOSING,
  TCPS_ESTABLISHED,
  TCPS_FIN_WAIT_1,
  TCPS_FIN_WAIT_2,
  TCPS_HAVEESTABLISHED,
  TCPS_HAVERCVDFIN,
  TCPS_LAST_ACK,
  TCPS_LISTEN,
  TCPS_SYN_RECEIVED,
  TCPS_SYN_SENT,
  TCPS_TIME_WAIT,
} from './tcp_fsm.js';
import { SEQ_GEQ, SEQ_GT, SEQ_LEQ, SEQ_LT, seqAdd, seqDiff } from './tcp_seq.js';
import { TCPS_STAT } from './tcp_stats.js';
import type { TcpTable } from './tcp_subr.js';
import { tcpReass, tcpReassFull } from './tcp_reass.js';
import {
  SACK_NEWLOSS,
  SACKHINT_NONE,
  sackhintOf,
  SACK_NOCHANGE,
  TCP_DUPTHRESH,
  tcpSackDoack,
  tcpSackDsackUndo,
  tcpSackEnterRecovery,
  tcpSackPartialAck,
  tcpSackPostRecovery,
  tcpSackRecoveryAck,
  tcpSackTrim,
  tcpSackUndoSave,
  tcpSetDsack,
  tcpUpdateSackList,
} from './tcp_sack.js';
import { rackOn, tcpRackAck, tcpRackArmPto, tcpRackDsack, tcpRackRecoveryDone } from './tcp_rack.js';
import { TT_REXMT, tcpMaxidle, tcpRangeset, tcpRexmtval, tcpTimer2mslArm, tcpTimerDelackArm, tcpTimerKeepArm, tcpTimerRexmtArm, tcpTimerStop, tcpTwstart } from './tcp_timer.js';
import { tcpComputeInitwnd, tcpMaxseg } from './tcp_output.js';
import { CC_ACK, CC_DUPACK, CC_ECN, CC_NDUPACK, CC_RTO_ERR, ccAckReceived, ccCongSignal, ccConnInitAlgo, ccNewRound, ccPostRecovery, ccRttSample } from './cc/cc.js';
import {
  TCPTV_REXMTMAX,
  TCP_DELTA_SHIFT,
  TCP_MAXWIN,
  TCP_RTTVAR_SHIFT,
  TCP_RTT_SHIFT,
  TF_ACKNOW,
  TF_CONGRECOVERY,
  TF_DELACK,
  TF_ECN_PERMIT,
  TF_FASTRECOVERY,
  TF_NEEDFIN,
  TF_NEEDSYN,
  TF_PREVVALID,
  TF_RCVD_SCALE,
  TF_RCVD_TSTMP,
  TF_REQ_SCALE,
  TF_REQ_TSTMP,
  TF_RXWIN0SENT,
  TF_SACK_PERMIT,
  TF_TSO,
  TF2_ECN_SND_CWR,
  TF2_ECN_SND_ECE,
  TF2_ECN_SYN_DISABLED,
  SS_ISCONNECTED,
  SS_ISCONNECTING,
  type Tcpcb,
} from './tcp_var.js';
import { SBS_CANTRCVMORE, SBS_RCVDFIN, sbMaxAdj } from './tcp_sockbuf.js';

/** Internal flag beside th_flags: the FIN came out of the reassembly queue. */
const TH_QUEUEDFIN = 0x1000;

const ECONNREFUSED = 61;
const ECONNRESET = 54;
/** tcprexmtthresh: duplicate ACKs that trigger fast retransmit. */
const TCPREXMTTHRESH = TCP_DUPTHRESH;
/** 24 days: a ts_recent older than this is invalidated (PAWS idle). */
const TCP_PAWS_IDLE = 24 * 24 * 60 * 60 * 1000;
const IPTOS_ECN_MASK = 0x03;
const IPTOS_ECN_ECT1 = 0x01;
const IPTOS_ECN_ECT0 = 0x02;
const IPTOS_ECN_CE = 0x03;

/** The decoded segment, reused for every input (no object per segment). */
export class Seg {
  src = 0;
  dst = 0;
  sport = 0;
  dport = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  win = 0;
  tlen = 0;
  tos = 0;
  /** The data only (headers trimmed), or 0 once consumed. */
  m = 0;
  /** TCP over UDP: the peer's UDP source port (0: plain TCP). */
  port = 0;
}
const SEG = new Seg();

/**
 * tcp_input: m has the IP header (hlen bytes) in front. With `port` (TCP
 * over UDP, net.inet.tcp.udp_tunneling_port) a UDP header of that source
 * port sits between them and `ulen` is its length. Consumes m.
 */
export function tcpInput(tcp: TcpTable, m: number, hlen: number, port = 0, ulen = 0): void {
  const st = tcp.st;
  const mb = st.mb;
  const s = tcp.stats;
  s[TCPS_STAT.rcvtotal]++;
  const h0 = mtod(mb, m);
  const iplen = ipTotalLen(mb.u8, h0);
  // The TCP segment starts after the IP header, or after the UDP header too.
  const toff = port === 0 ? hlen : hlen + 8;
  const len = port === 0 ? iplen - hlen : ulen - 8;
  if (len < TCP_HLEN || mb.i32[(m + PH_LEN) >> 2] < iplen) {
    s[TCPS_STAT.rcvshort]++;
    mb.m_freem(m);
    return;
  }
  m = pullup(mb, m, toff + TCP_HLEN);
  if (m === 0) {
    s[TCPS_STAT.rcvshort]++;
    return;
  }
  let h = mtod(mb, m);
  let u8 = mb.u8;
  const off = tcpHlen(u8, h + toff);
  if (off < TCP_HLEN || off > len) {
    s[TCPS_STAT.rcvbadoff]++;
    mb.m_freem(m);
    return;
  }
  if (off > TCP_HLEN) {
    m = pullup(mb, m, toff + off);
    if (m === 0) {
      s[TCPS_STAT.rcvshort]++;
      return;
    }
    h = mtod(mb, m);
  }
  u8 = mb.u8;
  const src = ipSrc(u8, h);
  const dst = ipDst(u8, h);
  // The interface's verdict (CSUM_DATA_VALID | CSUM_PSEUDO_HDR) stands in for the software sum.
  if (!l4Verified(mb, m)) {
    const sum = chainSum(mb, m, toff, len, pseudoHeaderSum(src, dst, IPPROTO_TCP, len));
    if (cksumFold(sum) !== 0xffff) {
      s[TCPS_STAT.rcvbadsum]++;
      mb.m_freem(m);
      return;
    }
  }
  // Never answer broadcast or multicast.
  if (st.isBroadcast(dst) || dst >>> 28 === 0xe || st.isBroadcast(src) || src >>> 28 === 0xe) {
    mb.m_freem(m);
    return;
  }
  const th = h + toff;
  const seg = SEG;
  seg.port = port;
  seg.src = src;
  seg.dst = dst;
  seg.sport = tcpSport(u8, th);
  seg.dport = tcpDport(u8, th);
  seg.seq = tcpSeq(u8, th);
  seg.ack = tcpAck(u8, th);
  seg.flags = tcpFlags(u8, th) & 0xff;
  seg.win = tcpWin(u8, th);
  seg.tlen = len - off;
  seg.tos = u8[h + 1];
  const to = tcp.opt;
  tcpParseOptions(u8, th + TCP_HLEN, off - TCP_HLEN, (seg.flags & TH_SYN) !== 0, to);
  // Strip the headers: what is left is the data.
  m_adj(mb, m, toff + off);
  if (mb.i32[(m + PH_LEN) >> 2] > seg.tlen) m_adj(mb, m, seg.tlen - mb.i32[(m + PH_LEN) >> 2]);
  seg.m = m;

  if ((seg.flags & (TH_SYN | TH_FIN)) === (TH_SYN | TH_FIN) && tcp.cfg.drop_synfin !== 0) {
    s[TCPS_STAT.synfin_drop]++;
    drop(tcp, seg);
    return;
  }
  let tp = tcp.lookupConn(dst, seg.dport, src, seg.sport);
  if (tp !== null && tp.t_port !== port) {
    // Encapsulated for a plain connection or the other way round: not this connection's segment (FreeBSD resets).
    dropWithReset(tcp, tp, seg);
    return;
  }
  if (tp !== null && tp.state === TCPS_TIME_WAIT) {
    if (!twcheck(tp, seg)) return;
    tp = null; // a new SYN recycles TIME_WAIT: find the listener
  }
  if (tp === null) {
    const lp = tcp.lookupListen(dst, seg.dport, src, seg.sport);
    if (lp === null || lp.state !== TCPS_LISTEN) {
      noConnection(tcp, seg, lp);
      return;
    }
    listenInput(lp, seg);
    return;
  }
  doSegment(tp, seg);
}

/** Free what is left of the segment. */
function drop(tcp: TcpTable, seg: Seg): void {
  if (seg.m !== 0) tcp.st.mb.m_freem(seg.m);
  seg.m = 0;
}

/** No PCB: RST unless the segment is a RST (or net.inet.tcp.blackhole says no). */
function noConnection(tcp: TcpTable, seg: Seg, bound: Tcpcb | null): void {
  const bh = tcp.cfg.blackhole;
  if (bh === 2 || (bh === 1 && (seg.flags & TH_SYN) !== 0)) {
    drop(tcp, seg);
    return;
  }
  // A socket bound to the port (not listening) lends its TTL and TOS to the RST, as its inpcb does in FreeBSD.
  dropWithReset(tcp, bound, seg);
}

/**
 * tcp_dropwithreset: answer an unacceptable segment with a RST (never a RST
 * for a RST): with its ACK as our sequence if it had one, else RST|ACK
 * acknowledging it.
 */
export function dropWithReset(tcp: TcpTable, tp: Tcpcb | null, seg: Seg): void {
  if ((seg.flags & TH_RST) === 0) {
    if ((seg.flags & TH_ACK) !== 0) tcp.respond(tp, seg.dst, seg.dport, seg.src, seg.sport, seg.ack, 0, TH_RST, 0, -1, 0, seg.port);
    else {
      let n = seg.tlen;
      if (seg.flags & TH_SYN) n++;
      if (seg.flags & TH_FIN) n++;
      tcp.respond(tp, seg.dst, seg.dport, seg.src, seg.sport, 0, seqAdd(seg.seq, n), TH_RST | TH_ACK, 0, -1, 0, seg.port);
    }
  }
  drop(tcp, seg);
}

/** A segment for a listener: SYN to the syncache, ACK to complete a handshake. */
function listenInput(lp: Tcpcb, seg: Seg): void {
  const tcp = lp.tcp;
  const f = seg.flags;
  if ((f & TH_RST) !== 0) {
    tcp.syncache.chkrst(seg);
    drop(tcp, seg);
    return;
  }
  if ((f & TH_ACK) !== 0) {
    if ((f & TH_SYN) !== 0) {
      // A SYN|ACK to a listener is bogus; FreeBSD's suite expects it ignored.
      tcp.stats[TCPS_STAT.badsyn]++;
      drop(tcp, seg);
      return;
    }
    const tp = tcp.syncache.expand(lp, seg, tcp.opt);
    if (tp === null) {
      if (seg.m !== 0) dropWithReset(tcp, null, seg);
      return;
    }
    doSegment(tp, seg);
    return;
  }
  if ((f & TH_SYN) === 0) {
    drop(tcp, seg);
    return;
  }
  tcp.syncache.add(lp, seg, tcp.opt);
  drop(tcp, seg);
}

/**
 * ACK-war prevention: may this connection send one more ACK that answers an
 * unacceptable segment (challenge ACKs, ACKs for unsent data, ACKs for old
 * pure ACKs)? At most net.inet.tcp.ack_war_cnt per ack_war_timewindow ms
 * (0 in either: no limit). Two endpoints whose sequence state was
 * desynchronized by forged segments would otherwise ACK each other forever.
 */
function ackWarOk(tp: Tcpcb): boolean {
  const tcp = tp.tcp;
  const cfg = tcp.cfg;
  if (cfg.ack_war_timewindow > 0 && cfg.ack_war_cnt > 0) {
    const now = tcp.ticks();
    if (now - tp.t_challenge_start >= cfg.ack_war_timewindow || tp.t_challenge_start === 0) {
      tp.t_challenge_start = now || 1;
      tp.t_challenge_cnt = 0;
    }
    if (tp.t_challenge_cnt >= cfg.ack_war_cnt) {
      tcp.stats[TCPS_STAT.ack_war_limited]++;
      return false;
    }
    tp.t_challenge_cnt++;
  }
  return true;
}

/** Send a challenge ACK (RFC 5961), within the ACK-war limit. */
function challengeAck(tp: Tcpcb, seg: Seg): void {
  const tcp = tp.tcp;
  if (!ackWarOk(tp)) return;
  tcp.stats[TCPS_STAT.ack_war]++;
  tcp.respondAck(tp, tp.rcv_nxt, tp.snd_nxt);
  tp.last_ack_sent = tp.rcv_nxt;
}


/**
 * tcp_twcheck: a segment for a connection in TIME_WAIT. A SYN above
 * rcv_nxt recycles it (returns false after closing, the caller looks for a
 * listener); RSTs and segments without ACK are dropped; a retransmitted FIN
 * restarts 2MSL; anything but the exact duplicate ACK is answered with an
 * ACK. Returns true when the segment was consumed.
 */
function twcheck(tp: Tcpcb, seg: Seg): boolean {
  const tcp = tp.tcp;
  const f = seg.flags;
  if ((f & TH_RST) !== 0) {
    drop(tcp, seg);
    return false;
  }
  if ((f & (TH_SYN | TH_ACK)) === TH_SYN && SEQ_GT(seg.seq, tp.rcv_nxt)) {
    tcp.close(tp);
    return true;
  }
  if ((f & TH_ACK) === 0) {
    drop(tcp, seg);
    return false;
  }
  if ((f & TH_FIN) !== 0) {
    const end = seqAdd(seg.seq, seg.tlen + ((f & TH_SYN) !== 0 ? 1 : 0));
    if (seqAdd(end, 1) === tp.rcv_nxt) tcpTimer2mslArm(tp, 2 * tcp.cfg.msl);
  }
  if (f !== TH_ACK || seg.tlen !== 0 || seg.seq !== tp.rcv_nxt || seg.ack !== tp.snd_nxt) tcp.respondAck(tp, tp.rcv_nxt, tp.snd_nxt);
  drop(tcp, seg);
  return false;
}

/** tcp_xmit_timer: fold an RTT sample (ms) into srtt / rttvar and the RTO. */
function xmitTimer(tp: Tcpcb, rtt: number): void {
  const tcp = tp.tcp;
  tcp.stats[TCPS_STAT.rttupdated]++;
  if (rtt < 1) rtt = 1;
  if (tp.t_srtt !== 0) {
    let delta = ((rtt - 1) << TCP_DELTA_SHIFT) - (tp.t_srtt >> (TCP_RTT_SHIFT - TCP_DELTA_SHIFT));
    if ((tp.t_srtt += delta) <= 0) tp.t_srtt = 1;
    if (delta < 0) delta = -delta;
    delta -= tp.t_rttvar >> (TCP_RTTVAR_SHIFT - TCP_DELTA_SHIFT);
    if ((tp.t_rttvar += delta) <= 0) tp.t_rttvar = 1;
  } else {
    tp.t_srtt = rtt << TCP_RTT_SHIFT;
    tp.t_rttvar = rtt << (TCP_RTTVAR_SHIFT - 1);
  }
  tp.t_rttupdated++;
  tp.t_rtttime = 0;
  tp.t_rxtshift = 0;
  tp.t_rxtcur = tcpRangeset(tp, tcpRexmtval(tp), Math.max(tp.t_rttmin, rtt + 2), TCPTV_REXMTMAX);
  tp.t_softerror = 0;
}

/** Options of a SYN we received (tcp_dooptions results into the tcpcb). */
function synOptions(tp: Tcpcb): void {
  const to = tp.tcp.opt;
  if ((to.flags & TOF_SCALE) !== 0 && (tp.t_flags & TF_REQ_SCALE) !== 0) {
    tp.t_flags |= TF_RCVD_SCALE;
    tp.requested_s_scale = to.wscale;
  }
  if ((to.flags & TOF_TS) !== 0 && (tp.t_flags & TF_REQ_TSTMP) !== 0) {
    tp.t_flags |= TF_RCVD_TSTMP;
    tp.ts_recent = to.tsval;
    tp.ts_recent_age = tp.tcp.ticks();
  }
  if ((to.flags & TOF_SACKPERM) === 0 || tp.tcp.cfg.sack_enable === 0) tp.t_flags &= ~TF_SACK_PERMIT;
}

/** The user side learns the connection is up (soisconnected); a passive one joins its listener's accept queue. */
function soisconnected(tp: Tcpcb): void {
  tp.so_state = (tp.so_state & ~SS_ISCONNECTING) | SS_ISCONNECTED;
  const head = tp.so_head;
  if (head !== null && head.so_comp !== null && tp.sockId === 0 && !head.so_comp.includes(tp)) head.so_comp.push(tp);
  tp.tcp.wakeup(tp);
}

/**
 * cc_conn_init: the initial congestion window (RFC 6928, or one segment
 * when the SYN or SYN|ACK had to be retransmitted: the timer left
 * snd_cwnd at 1 then) and ssthresh.
 */
function ccConnInit(tp: Tcpcb): void {
  // A peer we talked to before: start from its remembered RTT and ssthresh (tcp_hc_get).
  const hc = tp.tcp.hostcache.get(tp, tp.tcp.st.now());
  if (hc !== null) {
    if (tp.t_srtt === 0 || tp.t_rttupdated <= 1) {
      tp.t_srtt = hc.srtt;
      tp.t_rttvar = hc.rttvar;
      tp.t_rxtcur = tcpRangeset(tp, tcpRexmtval(tp), tp.t_rttmin, TCPTV_REXMTMAX);
      tp.tcp.stats[TCPS_STAT.usedrtt]++;
    }
    if (hc.ssthresh !== 0) tp.snd_ssthresh = Math.max(2 * tcpMaxseg(tp), hc.ssthresh);
  }
  const maxseg = tcpMaxseg(tp);
  tp.snd_cwnd = tp.snd_cwnd === 1 ? maxseg : tcpComputeInitwnd(tp, maxseg);
  if (tp.snd_ssthresh === 0) tp.snd_ssthresh = TCP_MAXWIN << 14;
  ccConnInitAlgo(tp);
}

/**
 * tcp_ecn_input_segment (RFC 3168 6.1): count the ECN codepoint of an
 * arriving segment; on a connection that negotiated ECN, a CWR stops our
 * ECE echo (and is acknowledged at once), a CE mark starts it, and an ECE
 * (not on a SYN) is a congestion signal to the algorithm, which reacts once
 * per window (cc.ts).
 */
function ecnInput(tp: Tcpcb, seg: Seg): void {
  const s = tp.tcp.stats;
  const ecn = seg.tos & IPTOS_ECN_MASK;
  if (ecn === IPTOS_ECN_CE) s[TCPS_STAT.ecn_ce]++;
  else if (ecn === IPTOS_ECN_ECT0) s[TCPS_STAT.ecn_ect0]++;
  else if (ecn === IPTOS_ECN_ECT1) s[TCPS_STAT.ecn_ect1]++;
  if ((tp.t_flags & TF_ECN_PERMIT) === 0) return;
  if ((seg.flags & TH_CWR) !== 0) {
    tp.t_flags2 &= ~TF2_ECN_SND_ECE;
    tp.t_flags |= TF_ACKNOW;
  }
  if (ecn === IPTOS_ECN_CE) tp.t_flags2 |= TF2_ECN_SND_ECE;
  if ((seg.flags & (TH_SYN | TH_ECE)) === TH_ECE) ccCongSignal(tp, seg.ack, CC_ECN);
}

/**
 * tcp_do_segment: the state machine for a segment on connection tp
 * (anything but LISTEN and TIME_WAIT). Consumes the segment.
 */
export function doSegment(tp: Tcpcb, seg: Seg): void {
  const tcp = tp.tcp;
  const s = tcp.stats;
  const cfg = tcp.cfg;
  const to = tcp.opt;
  let f = seg.flags;
  let tlen = seg.tlen;
  let seq = seg.seq;
  const ack = seg.ack;
  const now = tcp.ticks();
  let needoutput = false;

  tp.t_rcvtime = now;
  tp.t_keepprobes = 0;
  if (tlen > 0) tp.t_lastdatarecv = now;
  ecnInput(tp, seg);
  const tiwin = (f & TH_SYN) !== 0 ? seg.win : seg.win << tp.snd_scale;
  if (tp.state === TCPS_SYN_SENT) {
    synSent(tp, seg, tiwin);
    return;
  }

  // The receive window as tcp_input sees it: what so_rcv can take, at least what we advertised.
  let win = tp.so_rcv.space();
  if (win < 0) win = 0;
  tp.rcv_wnd = Math.max(win, seqDiff(tp.rcv_adv, tp.rcv_nxt));

  // RFC 5961 3.2: a RST is accepted only at exactly rcv_nxt (or anywhere in the window with insecure_rst).
  if ((f & TH_RST) !== 0) {
    if ((SEQ_GEQ(seq, tp.last_ack_sent) && SEQ_LT(seq, seqAdd(tp.last_ack_sent, tp.rcv_wnd))) || (tp.rcv_wnd === 0 && tp.last_ack_sent === seq)) {
      if (cfg.insecure_rst !== 0 || tp.last_ack_sent === seq) {
        s[TCPS_STAT.drops]++;
        if (tp.state === TCPS_SYN_RECEIVED) tp.so_error = ECONNREFUSED;
        else if (tp.state !== TCPS_TIME_WAIT) tp.so_error = ECONNRESET;
        tp.state = TCPS_CLOSED;
        drop(tcp, seg);
        tcp.close(tp);
        return;
      }
      s[TCPS_STAT.badrst]++;
      challengeAck(tp, seg);
    }
    drop(tcp, seg);
    return;
  }

  // RFC 5961 4.2: a SYN on a synchronized connection gets a challenge ACK (or a reset with insecure_syn in the window).
  if ((f & TH_SYN) !== 0 && tp.state !== TCPS_SYN_RECEIVED) {
    s[TCPS_STAT.badsyn]++;
    if (cfg.insecure_syn !== 0 && SEQ_GEQ(seq, tp.last_ack_sent) && SEQ_LT(seq, seqAdd(tp.last_ack_sent, tp.rcv_wnd))) {
      drop(tcp, seg);
      tcp.drop(tp, ECONNRESET);
      return;
    }
    challengeAck(tp, seg);
    drop(tcp, seg);
    return;
  }

  // An ACK that does not belong to our SYN|ACK: reset (the handshake is not complete).
  if (tp.state === TCPS_SYN_RECEIVED && (f & TH_ACK) !== 0 && (SEQ_LEQ(ack, tp.snd_una) || SEQ_GT(ack, tp.snd_max))) {
    dropWithReset(tcp, tp, seg);
    return;
  }

  // PAWS (RFC 7323 5): an old timestamp marks an old duplicate.
  if ((to.flags & TOF_TS) !== 0 && (tp.t_flags & TF_RCVD_TSTMP) !== 0 && tp.ts_recent !== 0 && SEQ_LT(to.tsval, tp.ts_recent)) {
    if (now - tp.ts_recent_age > TCP_PAWS_IDLE) tp.ts_recent = 0;
    else {
      s[TCPS_STAT.rcvduppack]++;
      s[TCPS_STAT.rcvdupbyte] += tlen;
      s[TCPS_STAT.pawsdrop]++;
      dropAfterAck(tp, seg);
      return;
    }
  }

  // Trim what we already have from the front (a SYN counts one).
  let todrop = seqDiff(tp.rcv_nxt, seq);
  if (todrop > 0) {
    if ((f & TH_SYN) !== 0) {
      f &= ~TH_SYN;
      seq = seqAdd(seq, 1);
      todrop--;
    }
    if (todrop > tlen || (todrop === tlen && (f & TH_FIN) === 0)) {
      f &= ~TH_FIN;
      // An old pure ACK is answered within the ACK-war limit; a duplicate with data always.
      if (tlen > 0 || (f & TH_SYN) !== 0 || ackWarOk(tp)) tp.t_flags |= TF_ACKNOW;
      todrop = tlen;
      s[TCPS_STAT.rcvduppack]++;
      s[TCPS_STAT.rcvdupbyte] += todrop;
    } else {
      s[TCPS_STAT.rcvpartduppack]++;
      s[TCPS_STAT.rcvpartdupbyte] += todrop;
    }
    if (todrop > 0 && (tp.t_flags & TF_SACK_PERMIT) !== 0) {
      tcpSetDsack(tp, seq, seqAdd(seq, todrop));
      tp.t_flags |= TF_ACKNOW;
    }
    if (todrop > 0 && seg.m !== 0) m_adj(tcp.st.mb, seg.m, todrop);
    seq = seqAdd(seq, todrop);
    tlen -= todrop;
  }

  // Data for a socket the user closed: reset (RFC 9293 "data after close").
  if (tp.sockId === 0 && tp.so_head === null && tp.state > TCPS_CLOSE_WAIT && tlen > 0) {
    s[TCPS_STAT.rcvafterclose]++;
    tcp.close(tp);
    dropWithReset(tcp, null, seg);
    return;
  }

  // Trim what lies beyond the window.
  todrop = seqDiff(seqAdd(seq, tlen), seqAdd(tp.rcv_nxt, tp.rcv_wnd));
  if (todrop > 0) {
    s[TCPS_STAT.rcvpackafterwin]++;
    if (todrop >= tlen) {
      s[TCPS_STAT.rcvbyteafterwin] += tlen;
      if (tp.rcv_wnd === 0 && seq === tp.rcv_nxt) {
        tp.t_flags |= TF_ACKNOW;
        s[TCPS_STAT.rcvwinprobe]++;
      } else {
        dropAfterAck(tp, seg);
        return;
      }
    } else s[TCPS_STAT.rcvbyteafterwin] += todrop;
    if (seg.m !== 0) m_adj(tcp.st.mb, seg.m, -todrop);
    tlen -= todrop;
    f &= ~(TH_PUSH | TH_FIN);
  }

  // Remember the timestamp to echo (RFC 7323 4.3).
  if ((to.flags & TOF_TS) !== 0 && SEQ_LEQ(seq, tp.last_ack_sent) && SEQ_LEQ(tp.last_ack_sent, seqAdd(seq, tlen + ((f & (TH_SYN | TH_FIN)) !== 0 ? 1 : 0)))) {
    tp.ts_recent_age = now;
    tp.ts_recent = to.tsval;
  }

  if ((f & TH_ACK) === 0) {
    if (tp.state === TCPS_SYN_RECEIVED || (tp.t_flags & TF_NEEDSYN) !== 0) {
      step6(tp, seg, seq, tlen, f, tiwin, needoutput);
      return;
    }
    if ((tp.t_flags & TF_ACKNOW) !== 0) dropAfterAck(tp, seg);
    else drop(tcp, seg);
    return;
  }

  // RFC 5961 5.2: an ACK below what could still be acknowledged is answered with a challenge.
  // Before max_sndwnd bytes have been acknowledged the bound is ISS + 1. Whether they have is the
  // distance from the ISS modulo 2^32, not a sequence comparison: after 2 GiB the ISS + 1 would read as
  // ahead of snd_una, and every ACK of a long transfer drew a challenge (the stall at 2^31 bytes).
  const acked = (tp.snd_una - tp.iss) >>> 0;
  const seqMin = acked < tp.max_sndwnd ? seqAdd(tp.iss, 1) : seqAdd(tp.snd_una, -tp.max_sndwnd);
  if (SEQ_LT(ack, seqMin)) {
    challengeAck(tp, seg);
    drop(tcp, seg);
    return;
  }

  let wasSynRcvd = false;
  if (tp.state === TCPS_SYN_RECEIVED) {
    wasSynRcvd = true;
    tp.t_flags &= ~TF_NEEDSYN;
    s[TCPS_STAT.connects]++;
    // The ACK covers our SYN: it takes one sequence number, not data.
    tp.snd_una = seqAdd(tp.snd_una, 1);
    // FreeBSD's process_ACK (incforsyn) samples the RTT on this ACK too: the passive side's first
    // srtt, which receive-buffer autosizing needs. One that also acknowledges data is sampled below.
    if (ack === tp.snd_una) ackRttSample(tp, ack, now);
    if (tp.snd_una === tp.snd_max) tcpTimerStop(tp, TT_REXMT);
    tp.t_rxtshift = 0;
    if ((tp.t_flags & (TF_RCVD_SCALE | TF_REQ_SCALE)) === (TF_RCVD_SCALE | TF_REQ_SCALE)) {
      tp.snd_scale = tp.requested_s_scale;
      tp.rcv_scale = tp.request_r_scale;
    }
    tp.snd_wnd = seg.win << tp.snd_scale;
    tp.t_starttime = now;
    if ((tp.t_flags & TF_NEEDFIN) !== 0) {
      tp.state = TCPS_FIN_WAIT_1;
      tp.t_flags &= ~TF_NEEDFIN;
    } else {
      tp.state = TCPS_ESTABLISHED;
      ccConnInit(tp);
      tcpTimerKeepArm(tp, tp.keepidle());
    }
    soisconnected(tp);
    // Data and a FIN queued while half-synchronized reach the user now.
    if (tp.rq_seq.length > 0) {
      const before = tp.rcv_nxt;
      if ((tcpReass(tp, 0, 0, 0, false) & TH_FIN) !== 0) f |= TH_FIN | TH_QUEUEDFIN;
      if (tp.rcv_nxt !== before) tcp.wakeup(tp);
    }
    tp.snd_wl1 = seqAdd(seq, -1);
  }
  const tiwinNow = seg.win << tp.snd_scale;

  // ACK processing (established and later states).
  if (SEQ_GT(ack, tp.snd_max)) {
    s[TCPS_STAT.rcvacktoomuch]++;
    if (ackWarOk(tp)) dropAfterAck(tp, seg);
    else drop(tcp, seg);
    return;
  }
  let sackChanged = SACK_NOCHANGE;
  // This ACK's DeliveredData is unknown until tcpSackDoack says (SACKHINT_NONE already reads -1).
  if (tp.sackhint !== SACKHINT_NONE) sackhintOf(tp).ack_delivered = -1;
  if ((tp.t_flags & TF_SACK_PERMIT) !== 0 && ((to.flags & TOF_SACK) !== 0 || tp.sackhint.nholes > 0)) sackChanged = tcpSackDoack(tp, to, ack, tcpMaxseg(tp), onDsack);
  // RACK (net.inet.tcp.rack.enable): time-based loss marks join the scoreboard.
  const rackLost = tp.rack !== null && rackOn(tp) && tcpRackAck(tp, ack);
  if (rackLost) sackChanged = SACK_NEWLOSS;
  if (SEQ_LEQ(ack, tp.snd_una)) {
    if (!wasSynRcvd && dupAck(tp, seg, tlen, f, tiwinNow, sackChanged, rackLost)) return;
  } else {
    if (!newAck(tp, seg, ack, sackChanged)) return;
    if (rackLost && (tp.t_flags & TF_FASTRECOVERY) === 0 && tp.sackhint.nholes > 0) enterRecovery(tp, seg, sackChanged, tcpMaxseg(tp));
    const fin = ackedData(tp, ack);
    if (fin === null) {
      drop(tcp, seg);
      return;
    }
    needoutput = true;
  }
  step6(tp, seg, seq, tlen, f, tiwinNow, needoutput);
}

/**
 * Duplicate ACK handling (fast retransmit / NewReno / limited transmit).
 * Returns true when the segment was consumed.
 */
function dupAck(tp: Tcpcb, seg: Seg, tlen: number, f: number, tiwin: number, sackChanged: number, rackLost: boolean): boolean {
  const tcp = tp.tcp;
  const s = tcp.stats;
  const maxseg = tcpMaxseg(tp);
  // With SACK a window change does not stop an ACK from counting as a duplicate (FreeBSD).
  if (tlen !== 0 || (tiwin !== tp.snd_wnd && (tp.t_flags & TF_SACK_PERMIT) === 0)) {
    return false;
  }
  if ((f & TH_FIN) !== 0 && !TCPS_HAVERCVDFIN(tp.state)) {
    tp.t_dupacks = 0;
    return false;
  }
  s[TCPS_STAT.rcvdupack]++;
  if (tp.tt_rexmt === 0 || seg.ack !== tp.snd_una) {
    tp.t_dupacks = 0;
    return false;
  }
  tp.t_dupacks++;
  if ((tp.t_flags & TF_FASTRECOVERY) !== 0) {
    ccAckReceived(tp, seg.ack, 0, 1, CC_DUPACK);
    // SACK recovery: PRR or RFC 6675 decides what goes; NewReno inflates by a segment.
    if (tp.sackhint.sackrec) tcpSackRecoveryAck(tp, seg.ack, sackChanged, maxseg);
    else {
      tp.snd_cwnd += maxseg;
      tcp.output(tp);
    }
    drop(tcp, seg);
    return true;
  }
  if (tp.t_dupacks === TCPREXMTTHRESH || sackIsLost(tp, maxseg) || (rackLost && tp.sackhint.nholes > 0)) {
    // NewReno does not start again below the last recovery point (RFC 6582's careful variant); the scoreboard knows better (FreeBSD).
    const sackrec = (tp.t_flags & TF_SACK_PERMIT) !== 0 && tp.sackhint.nholes > 0;
    if (!sackrec && SEQ_LEQ(seg.ack, tp.snd_recover) && tp.snd_recover !== tp.iss && SEQ_GT(tp.snd_recover, tp.snd_una)) {
      tp.t_dupacks = 0;
      return false;
    }
    enterRecovery(tp, seg, sackChanged, maxseg);
    drop(tcp, seg);
    return true;
  }
  if (tp.t_dupacks > TCPREXMTTHRESH) return false;
  if (tcp.cfg.rfc3042 !== 0) {
    // Limited transmit (RFC 3042): one new segment per early duplicate ACK (snd_limited: those already sent).
    const oldcwnd = tp.snd_cwnd;
    const oldmax = tp.snd_max;
    if (tp.t_dupacks === 1) tp.snd_limited = 0;
    tp.snd_cwnd = seqDiff(tp.snd_nxt, tp.snd_una) + (tp.t_dupacks - tp.snd_limited) * maxseg;
    const avail = tp.so_snd.cc - seqDiff(tp.snd_nxt, tp.snd_una);
    if (avail > 0 || (tp.t_flags & TF_ACKNOW) !== 0) tcp.output(tp);
    const sent = seqDiff(tp.snd_max, oldmax);
    if (sent > maxseg) tp.snd_limited = 2;
    else if (sent > 0) tp.snd_limited++;
    tp.snd_cwnd = oldcwnd;
    drop(tcp, seg);
    return true;
  }
  return false;
}

/** D-SACK blocks received: the undo of spurious recovery, and RACK's reordering window. */
function onDsack(tp: Tcpcb, s: number, e: number): void {
  tcpSackDsackUndo(tp, s, e);
  tcpRackDsack(tp, s, e);
}

/**
 * RACK's reordering timer found losses (tcp_rack.ts): enter SACK recovery
 * as a duplicate ACK would (snd_una as the ACK), or, already in it, let
 * the newly lost holes out.
 */
export function tcpRackLossAct(tp: Tcpcb): void {
  if ((tp.t_flags & TF_FASTRECOVERY) !== 0) {
    tp.tcp.output(tp);
    return;
  }
  if ((tp.t_flags & TF_SACK_PERMIT) === 0 || tp.sackhint.nholes === 0) return;
  const seg = SEG;
  seg.ack = tp.snd_una;
  enterRecovery(tp, seg, SACK_NEWLOSS, tcpMaxseg(tp));
}

/**
 * RFC 6675's other way into recovery (net.inet.tcp.sack.revised): more
 * than (DupThresh - 1) * SMSS bytes SACKed above the cumulative ACK, which
 * fewer than DupThresh duplicate ACKs can report (stretch ACKs, ACK loss).
 */
function sackIsLost(tp: Tcpcb, maxseg: number): boolean {
  const sh = tp.sackhint;
  return (tp.t_flags & TF_SACK_PERMIT) !== 0 && tp.tcp.cfg.sack_revised !== 0 && sh.nholes > 0 && sh.sacked_bytes > (TCPREXMTTHRESH - 1) * maxseg;
}

/**
 * Fast retransmit: enter recovery on the duplicate ACK that showed loss.
 * cc_cong_signal(CC_NDUPACK) reduces (cc owns ssthresh); with a scoreboard the episode is
 * RFC 6675's (tcp_sack.ts, PRR), else NewReno's (retransmit snd_una,
 * inflate by the duplicates).
 */
function enterRecovery(tp: Tcpcb, seg: Seg, sackChanged: number, maxseg: number): void {
  const tcp = tp.tcp;
  const onxt = tp.snd_nxt;
  tcpSackUndoSave(tp);
  // Congestion signal before the ACK: the algorithm sets ssthresh, snd_recover and enters recovery.
  ccCongSignal(tp, seg.ack, CC_NDUPACK);
  ccAckReceived(tp, seg.ack, 0, 1, CC_DUPACK);
  tcpTimerStop(tp, TT_REXMT);
  tp.t_rtttime = 0;
  if ((tp.t_flags & TF_SACK_PERMIT) !== 0 && tp.sackhint.nholes > 0) {
    tcp.stats[TCPS_STAT.sack_recovery_episode]++;
    tcpSackEnterRecovery(tp, sackChanged, maxseg);
    return;
  }
  tp.snd_nxt = tp.snd_una;
  tp.snd_cwnd = maxseg;
  tcp.output(tp);
  tp.snd_cwnd = tp.snd_ssthresh + maxseg * (tp.t_dupacks - tp.snd_limited);
  if (SEQ_GT(onxt, tp.snd_nxt)) tp.snd_nxt = onxt;
}

/** The recovery side of a new ACK (partial / full ACK). Returns false when consumed. */
function newAck(tp: Tcpcb, seg: Seg, ack: number, sackChanged: number): boolean {
  const tcp = tp.tcp;
  const maxseg = tcpMaxseg(tp);
  const acked = seqDiff(ack, tp.snd_una);
  if ((tp.t_flags & TF_FASTRECOVERY) !== 0) {
    if (SEQ_LT(ack, tp.snd_recover) && tp.sackhint.sackrec) tcpSackPartialAck(tp, ack, sackChanged, maxseg);
    else if (SEQ_LT(ack, tp.snd_recover)) {
      // NewReno partial ACK (RFC 6582): retransmit the next hole at once, deflate.
      const onxt = tp.snd_nxt;
      const ocwnd = tp.snd_cwnd;
      tcpTimerStop(tp, TT_REXMT);
      tp.t_rtttime = 0;
      tp.snd_nxt = ack;
      tp.snd_cwnd = seqDiff(tp.snd_nxt, tp.snd_una) + maxseg;
      tp.t_flags |= TF_ACKNOW;
      tcp.output(tp);
      tp.snd_cwnd = ocwnd;
      if (SEQ_GT(onxt, tp.snd_nxt)) tp.snd_nxt = onxt;
      tp.snd_cwnd = (tp.snd_cwnd > acked ? tp.snd_cwnd - acked : 0) + maxseg;
    } else {
      // Full ACK: the algorithm sets the window recovery ends with (cc_post_recovery).
      ccPostRecovery(tp, ack);
      tcpSackPostRecovery(tp);
      tcpRackRecoveryDone(tp);
    }
  } else if ((tp.t_flags & TF_CONGRECOVERY) !== 0 && SEQ_GEQ(ack, tp.snd_recover)) ccPostRecovery(tp, ack);
  tp.t_dupacks = 0;
  return true;
}

/**
 * process_ACK's RTT sample: the echoed timestamp when there is one, else the
 * timed segment (t_rtttime) once the ACK covers it. Stack thread; never sleeps.
 */
function ackRttSample(tp: Tcpcb, ack: number, now: number): void {
  const to = tp.tcp.opt;
  let rtt = -1;
  ccNewRound(tp, ack);
  if ((to.flags & TOF_TS) !== 0 && to.tsecr !== 0 && (tp.t_flags & TF_RCVD_TSTMP) !== 0) {
    const t = now - (((to.tsecr - tp.ts_offset) >>> 0) | 0);
    const r = ((t | 0) + 0x100000000) % 0x100000000;
    if (r < 0x40000000) rtt = r + 1;
  } else if (tp.t_rtttime !== 0 && SEQ_GT(ack, tp.t_rtseq)) rtt = now - tp.t_rtttime;
  if (rtt < 0) return;
  // A timestamp echo dates the segment it acknowledges: unambiguous even after a retransmission.
  const rxtcnt = (to.flags & TOF_TS) !== 0 ? 1 : tp.t_rxtshift + 1;
  xmitTimer(tp, rtt);
  ccRttSample(tp, rtt, rxtcnt, ack);
}

/**
 * ACK of new data: RTT sample, timers, congestion window, so_snd, and the
 * close states. Returns whether our FIN is now acknowledged, or null when
 * the connection went away (the segment is consumed then).
 */
function ackedData(tp: Tcpcb, ack: number): boolean | null {
  const tcp = tp.tcp;
  const s = tcp.stats;
  const now = tcp.ticks();
  const acked = seqDiff(ack, tp.snd_una);
  s[TCPS_STAT.rcvackpack]++;
  s[TCPS_STAT.rcvackbyte] += acked;
  tp.t_lastackrecv = now;
  // An ACK within half an RTT of the first retransmission was already on its way: undo the RTO.
  if (tp.t_rxtshift === 1 && (tp.t_flags & TF_PREVVALID) !== 0 && now < tp.t_badrxtwin) ccCongSignal(tp, ack, CC_RTO_ERR);
  ackRttSample(tp, ack, now);
  if (ack === tp.snd_max) tcpTimerStop(tp, TT_REXMT);
  else if (tp.tt_persist === 0) tcpTimerRexmtArm(tp);

  // The algorithm opens the window (cc_ack_received). An ACK of a TSO packet stands for each of its
  // segments (FreeBSD's ccv nsegs: the peer's LRO took them as one), so slow start is not held to
  // abc_l_var segments per 64 KiB. Only segments this ACK delivered count: bytes SACKed earlier
  // (the full ACK that ends a recovery episode) were delivered then, and counting them let slow
  // start double cwnd at once past ssthresh after every recovery.
  const sh = tp.sackhint;
  const fresh = sh.ack_delivered >= 0 ? Math.min(acked, sh.ack_delivered) : acked;
  ccAckReceived(tp, ack, acked, (tp.t_flags & TF_TSO) !== 0 ? Math.max(1, Math.ceil(fresh / tcpMaxseg(tp))) : 1, CC_ACK);

  let fin = false;
  const sb = tp.so_snd;
  if (acked > sb.cc) {
    tp.snd_wnd -= sb.cc;
    sb.drop(sb.cc);
    fin = true;
  } else {
    sb.drop(acked);
    tp.snd_wnd -= acked;
  }
  if (tp.snd_wnd < 0) tp.snd_wnd = 0;
  tp.snd_una = ack;
  if (SEQ_LT(tp.snd_nxt, tp.snd_una)) tp.snd_nxt = tp.snd_una;
  if (tp.rack !== null) tcpRackArmPto(tp);
  tcp.wakeup(tp);
  switch (tp.state) {
    case TCPS_FIN_WAIT_1:
      if (fin) {
        // The user closed: do not wait forever for the peer's FIN.
        if ((tp.so_rcv.state & SBS_CANTRCVMORE) !== 0) {
          const limit = tcp.cfg.fast_finwait2_recycle ? tcp.cfg.finwait2_timeout : tcpMaxidle(tp);
          tcpTimer2mslArm(tp, limit);
        }
        tp.state = TCPS_FIN_WAIT_2;
        tcp.wakeup(tp);
      }
      break;
    case TCPS_CLOSING:
      if (fin) {
        tcpTwstart(tp);
        tcp.wakeup(tp);
        return null;
      }
      break;
    case TCPS_LAST_ACK:
      if (fin) {
        tcp.close(tp);
        return null;
      }
      break;
    default:
      break;
  }
  return fin;
}

/** ACK the segment and drop it (dropafterack). */
function dropAfterAck(tp: Tcpcb, seg: Seg): void {
  const tcp = tp.tcp;
  if (tp.state === TCPS_SYN_RECEIVED && (seg.flags & TH_ACK) !== 0 && (SEQ_GT(tp.snd_una, seg.ack) || SEQ_GT(seg.ack, tp.snd_max))) {
    dropWithReset(tcp, tp, seg);
    return;
  }
  drop(tcp, seg);
  tp.t_flags |= TF_ACKNOW;
  tcp.output(tp);
}

/**
 * tcp_autorcvbuf (net.inet.tcp.recvbuf_auto, recvbuf_max): receive-buffer
 * autosizing for in-order data. tcp_output opens a measurement window with
 * the segment it sends (rfbuf_ts); data counts into rfbuf_cnt until the
 * window is older than half the smoothed RTT. Then, if more than 3/8 of
 * so_rcv arrived in it (the peer fills 3/4 of the buffer per round trip: the
 * window limits it, not the path), so_rcv grows by half, up to recvbuf_max,
 * so it keeps ahead of the sender's slow start; either way the window
 * closes and the next segment we send opens another. A growth sbreserve
 * would refuse (above sb_max_adj) clears SB_AUTOSIZE instead: the size then
 * stays. A buffer sized with SO_RCVBUF never grows. The buffer never
 * shrinks (an idle one holds no memory). Stack thread; never sleeps.
 */
function tcpAutorcvbuf(tp: Tcpcb, tlen: number): void {
  const tcp = tp.tcp;
  const cfg = tcp.cfg;
  const sb = tp.so_rcv;
  if (cfg.recvbuf_auto === 0 || !sb.autosize || tp.t_srtt === 0 || tp.rfbuf_ts === 0 || tcp.ticks() - tp.rfbuf_ts <= (tp.t_srtt >> TCP_RTT_SHIFT) >> 1) {
    tp.rfbuf_cnt += tlen;
    return;
  }
  const hiwat = sb.hiwat;
  if (tp.rfbuf_cnt > Math.floor(hiwat / 8) * 3 && hiwat < cfg.recvbuf_max) {
    const newsize = Math.min(hiwat + Math.floor(hiwat / 2), cfg.recvbuf_max);
    if (newsize > sbMaxAdj(cfg.maxsockbuf)) sb.autosize = false;
    else sb.hiwat = newsize;
  }
  tp.rfbuf_ts = 0;
  tp.rfbuf_cnt = 0;
}

/** Window update, data, FIN (step 6 onwards), then output. Consumes the segment. */
function step6(tp: Tcpcb, seg: Seg, seq: number, tlen: number, f: number, tiwin: number, needoutput: boolean): void {
  const tcp = tp.tcp;
  const s = tcp.stats;
  const mb = tcp.st.mb;
  const ack = seg.ack;
  if ((f & TH_ACK) !== 0 && (SEQ_LT(tp.snd_wl1, seq) || (tp.snd_wl1 === seq && (SEQ_LT(tp.snd_wl2, ack) || (tp.snd_wl2 === ack && tiwin > tp.snd_wnd))))) {
    if (tlen === 0 && tp.snd_wl2 === ack && tiwin > tp.snd_wnd) s[TCPS_STAT.rcvwinupd]++;
    tp.snd_wnd = tiwin;
    tp.snd_wl1 = seq;
    tp.snd_wl2 = ack;
    if (tp.snd_wnd > tp.max_sndwnd) tp.max_sndwnd = tp.snd_wnd;
    needoutput = true;
  }
  let m = seg.m;
  seg.m = 0;
  const queuedFin = (f & TH_QUEUEDFIN) !== 0;
  f &= ~TH_QUEUEDFIN;
  if (queuedFin && tlen === 0) {
    // The FIN came out of the reassembly queue: no new data to place.
  } else if ((tlen > 0 || (f & TH_FIN) !== 0) && !TCPS_HAVERCVDFIN(tp.state)) {
    if (seq === tp.rcv_nxt && tp.rq_seq.length === 0 && TCPS_HAVEESTABLISHED(tp.state)) {
      // In order, nothing queued: straight to so_rcv, ACK every second segment.
      if (tp.tt_delack === 0 && (tp.t_flags & TF_RXWIN0SENT) === 0 && tlen <= tp.t_maxseg && tcp.cfg.delayed_ack !== 0 && tlen > 0) tp.t_flags |= TF_DELACK;
      else tp.t_flags |= TF_ACKNOW;
      tp.rcv_nxt = seqAdd(tp.rcv_nxt, tlen);
      s[TCPS_STAT.rcvpack]++;
      s[TCPS_STAT.rcvbyte] += tlen;
      if (tlen > 0) tcpAutorcvbuf(tp, tlen);
      if (tlen > 0 && m !== 0 && (tp.so_rcv.state & SBS_CANTRCVMORE) === 0) {
        tp.so_rcv.appendChain(m, tlen);
        m = 0;
      }
      f &= TH_FIN;
      if (tp.rcv_numsacks > 0) tcpSackTrim(tp);
      if (tlen > 0) tcp.wakeup(tp);
    } else {
      const before = tp.rcv_nxt;
      const fin = (f & TH_FIN) !== 0;
      const full = tcpReassFull(tp, seq, tlen);
      // The segment's block leads the SACK list, unless it is dropped for the queue limit (never SACK what we drop).
      if (!full && tlen > 0 && (tp.t_flags & TF_SACK_PERMIT) !== 0 && SEQ_GT(seq, before)) tcpUpdateSackList(tp, seq, seqAdd(seq, tlen));
      const r = tcpReass(tp, seq, tlen, m, fin);
      m = 0;
      f = (r & TH_FIN) | (queuedFin ? TH_FIN : 0);
      tp.t_flags |= TF_ACKNOW;
      if (tp.rcv_nxt !== before) {
        s[TCPS_STAT.rcvpack]++;
        if (tp.rcv_numsacks > 0) tcpSackTrim(tp);
        tcp.wakeup(tp);
      }
    }
  } else {
    f &= ~TH_FIN;
  }
  if (m !== 0) mb.m_freem(m);

  if ((f & TH_FIN) !== 0) {
    if (!TCPS_HAVERCVDFIN(tp.state)) {
      tp.so_rcv.state |= SBS_RCVDFIN;
      if ((tp.t_flags & TF_NEEDSYN) !== 0) tp.t_flags |= TF_DELACK;
      else tp.t_flags |= TF_ACKNOW;
      tp.rcv_nxt = seqAdd(tp.rcv_nxt, 1);
    }
    switch (tp.state) {
      case TCPS_SYN_RECEIVED:
      case TCPS_ESTABLISHED:
        tp.state = TCPS_CLOSE_WAIT;
        break;
      case TCPS_FIN_WAIT_1:
        tp.state = TCPS_CLOSING;
        break;
      case TCPS_FIN_WAIT_2:
        tp.t_flags |= TF_ACKNOW;
        tcp.output(tp);
        tcpTwstart(tp);
        tcp.wakeup(tp);
        return;
      case TCPS_TIME_WAIT:
        tcpTimer2mslArm(tp, 2 * tcp.cfg.msl);
        break;
      default:
        break;
    }
    tcp.wakeup(tp);
  }
  if (needoutput || (tp.t_flags & TF_ACKNOW) !== 0) tcp.output(tp);
  if ((tp.t_flags & TF_DELACK) !== 0 && tp.state !== TCPS_CLOSED) tcpTimerDelackArm(tp);
}

/** SYN_SENT: our SYN is out; expect SYN|ACK (or a SYN: simultaneous open). */
function synSent(tp: Tcpcb, seg: Seg, tiwin: number): void {
  const tcp = tp.tcp;
  const s = tcp.stats;
  const cfg = tcp.cfg;
  const to = tcp.opt;
  const f = seg.flags;
  if ((f & TH_ACK) !== 0 && (SEQ_LEQ(seg.ack, tp.iss) || SEQ_GT(seg.ack, tp.snd_max))) {
    if ((f & TH_RST) !== 0) drop(tcp, seg);
    else dropWithReset(tcp, tp, seg);
    return;
  }
  if ((f & (TH_ACK | TH_RST)) === (TH_ACK | TH_RST)) {
    drop(tcp, seg);
    tcp.drop(tp, ECONNREFUSED);
    return;
  }
  if ((f & TH_RST) !== 0 || (f & TH_SYN) === 0) {
    drop(tcp, seg);
    return;
  }
  // The peer's SYN.
  tp.irs = seg.seq;
  tp.rcv_nxt = seqAdd(seg.seq, 1);
  tp.rcv_adv = tp.rcv_nxt;
  synOptions(tp);
  if ((f & TH_ACK) !== 0 && (f & TH_ECE) !== 0 && (f & TH_CWR) === 0 && (cfg.ecn_enable === 1 || cfg.ecn_enable === 3) && (tp.t_flags2 & TF2_ECN_SYN_DISABLED) === 0 && tp.t_rxtshift === 0) {
    tp.t_flags |= TF_ECN_PERMIT;
    s[TCPS_STAT.ecn_shs]++;
  }
  tcp.mss(tp, (to.flags & TOF_MSS) !== 0 ? to.mss : 0);
  if ((f & TH_ACK) !== 0) {
    s[TCPS_STAT.connects]++;
    tp.snd_una = seqAdd(tp.snd_una, 1);
    if ((tp.t_flags & (TF_RCVD_SCALE | TF_REQ_SCALE)) === (TF_RCVD_SCALE | TF_REQ_SCALE)) {
      tp.snd_scale = tp.requested_s_scale;
      tp.rcv_scale = tp.request_r_scale;
    }
    tp.rcv_adv = seqAdd(tp.rcv_adv, Math.min(Math.max(tp.so_rcv.space(), 0), TCP_MAXWIN << tp.rcv_scale));
    if (tp.t_rtttime !== 0) xmitTimer(tp, tcp.ticks() - tp.t_rtttime);
    tcpTimerStop(tp, TT_REXMT);
    tp.t_rxtshift = 0;
    tp.t_starttime = tcp.ticks();
    tp.t_flags |= TF_ACKNOW;
    if ((tp.t_flags & TF_NEEDFIN) !== 0) {
      tp.state = TCPS_FIN_WAIT_1;
      tp.t_flags &= ~TF_NEEDFIN;
    } else {
      tp.state = TCPS_ESTABLISHED;
      tcpTimerKeepArm(tp, tp.keepidle());
    }
    ccConnInit(tp);
    soisconnected(tp);
  } else {
    // Simultaneous open: SYN_SENT -> SYN_RECEIVED, answer with SYN|ACK (ECN if the peer asked and we allow it).
    if ((f & (TH_ECE | TH_CWR)) === (TH_ECE | TH_CWR) && cfg.ecn_enable !== 0) tp.t_flags |= TF_ECN_PERMIT;
    tp.t_flags |= TF_ACKNOW | TF_NEEDSYN;
    tcpTimerStop(tp, TT_REXMT);
    tp.state = TCPS_SYN_RECEIVED;
  }
  // The data after the SYN, trimmed to the window.
  let seq = seqAdd(seg.seq, 1);
  let tlen = seg.tlen;
  // A FIN on the peer's SYN is not taken in a simultaneous open (FreeBSD's suite: only the data is acknowledged).
  let fl = (f & TH_ACK) !== 0 ? f & ~TH_SYN : f & ~(TH_SYN | TH_FIN);
  const rwnd = Math.max(tp.so_rcv.space(), 0);
  if (tlen > rwnd) {
    const cut = tlen - rwnd;
    if (seg.m !== 0) m_adj(tcp.st.mb, seg.m, -cut);
    tlen = rwnd;
    fl &= ~TH_FIN;
    s[TCPS_STAT.rcvpackafterwin]++;
    s[TCPS_STAT.rcvbyteafterwin] += cut;
  }
  tp.snd_wl1 = seqAdd(seq, -1);
  tp.rcv_up = seq;
  tp.snd_wnd = tiwin;
  tp.snd_wl2 = seg.ack;
  if (tp.snd_wnd > tp.max_sndwnd) tp.max_sndwnd = tp.snd_wnd;
  // Window scaling applies to windows after the SYN; step6 sees this one already applied.
  step6(tp, seg, seq, tlen, fl & ~TH_ACK, tiwin, true);
  seq = 0;
}
