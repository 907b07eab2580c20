/**
 * Modular congestion control (FreeBSD's cc(4) / cc(9), sys/netinet/cc/cc.h
 * and the cc_* glue of tcp_input.c / tcp_output.c): the algorithm interface
 * (struct cc_algo), the per-connection state handed to it (struct cc_var,
 * reached through CCV(ccv, field): here `ccv.tp.field`), the signal and ACK
 * types, the recovery flag helpers (IN_FASTRECOVERY ... EXIT_RECOVERY), and
 * the hooks TCP calls: ccConnInit's algorithm part, ccAckReceived,
 * ccCongSignal, ccPostRecovery, ccAfterIdle.
 *
 * TCP owns the windows (snd_cwnd, snd_ssthresh, snd_recover, t_flags'
 * recovery bits); an algorithm reads and writes them through ccv.tp and keeps
 * its own state in ccv.cc_data (allocated once per connection by cb_init,
 * never per ACK). The registry of algorithms and the switch of a
 * connection's algorithm are in cc_list.ts, the algorithms in cc_newreno.ts
 * and cc_cubic.ts.
 *
 * Runs on the connection's stack thread; no lock; never sleeps.
 */
import type { Tcpcb } from '../tcp_var.js';
import { TF_CONGRECOVERY, TF_ECN_PERMIT, TF_FASTRECOVERY, TF_NOOPT, TF_PREVVALID, TF_RCVD_TSTMP, TF_REQ_TSTMP, TF_WASCRECOVERY, TF_WASFRECOVERY, TF2_ECN_SND_CWR } from '../tcp_var.js';
import { SEQ_GEQ, SEQ_GT, seqAdd, seqDiff } from '../tcp_seq.js';
import { TCPS_STAT } from '../tcp_stats.js';

/** ACK types passed to ack_received (cc.h). */
export const CC_ACK = 0x0001;
export const CC_DUPACK = 0x0002;
export const CC_PARTIALACK = 0x0004;
export const CC_SACK = 0x0008;

/** Congestion signals passed to cong_signal (cc.h). */
export const CC_ECN = 0x00000001;
export const CC_RTO = 0x00000002;
export const CC_RTO_ERR = 0x00000004;
export const CC_NDUPACK = 0x00000008;

/** cc_var flags (cc.h). */
export const CCF_ABC_SENTAWND = 0x0001;
export const CCF_CWND_LIMITED = 0x0002;
export const CCF_USE_LOCAL_ABC = 0x0004;
/** HyStart++ may run on this connection (net.inet.tcp.cc.hystartplusplus.allowed at connection start). */
export const CCF_HYSTART_ALLOWED = 0x0400;

/** Longest algorithm name, with its NUL (TCP_CA_NAME_MAX, tcp.h). */
export const TCP_CA_NAME_MAX = 16;

/** struct cc_var: what an algorithm sees of one connection. */
export class CcVar {
  flags = 0;
  /** Bytes the ACK being processed acknowledged (BYTES_THIS_ACK). */
  bytes_this_ack = 0;
  /** The ACK being processed (th_ack). */
  curack = 0;
  /** Segments this ACK stands for (LRO may merge several). */
  nsegs = 1;
  /** Per-connection abc_l_var with CCF_USE_LOCAL_ABC. */
  labc = 0;
  /** Rounds (RTTs) counted for newround: this one ends when an ACK reaches round_end (snd_max at its start). */
  round_cnt = 0;
  round_end = 0;
  /** The algorithm's per-connection state (cb_init, or its first use), or null. */
  cc_data: unknown = null;
  /**
   * The tick of cb_init and the cwnd of conn_init, for an algorithm that
   * makes cc_data on its first ACK or signal (CUBIC), so that an idle
   * connection carries none and the state it makes is what cb_init would have.
   */
  init_ticks = 0;
  init_cwnd = 0;
  constructor(readonly tp: Tcpcb) {}
}

/** struct cc_algo: the hooks of one algorithm; any may be absent. */
export interface CcAlgo {
  readonly name: string;
  /** Allocate ccv.cc_data (once per connection, or on TCP_CONGESTION). */
  cb_init?(ccv: CcVar): void;
  cb_destroy?(ccv: CcVar): void;
  /** The connection is established: cwnd and ssthresh have their initial values. */
  conn_init?(ccv: CcVar): void;
  /** An ACK arrived (CC_ACK: it acknowledged new data; CC_DUPACK: a duplicate). */
  ack_received?(ccv: CcVar, type: number): void;
  /** Congestion: CC_NDUPACK (fast retransmit), CC_ECN, CC_RTO, CC_RTO_ERR (the RTO was spurious). */
  cong_signal?(ccv: CcVar, type: number): void;
  /** Recovery ends (the ACK covers snd_recover). */
  post_recovery?(ccv: CcVar): void;
  /** Sending again after an idle period longer than the RTO. */
  after_idle?(ccv: CcVar): void;
  /** A new round (an RTT of data) begins; round_cnt counts them (FreeBSD's newround). */
  newround?(ccv: CcVar, round: number): void;
  /** An RTT sample (usec) of a segment sent rxtcnt times, with `fas` bytes in flight (FreeBSD's rttsample). */
  rttsample?(ccv: CcVar, usecRtt: number, rxtcnt: number, fas: number): void;
}

// ---- recovery flags (tcp_var.h macros)
export const IN_FASTRECOVERY = (f: number): boolean => (f & TF_FASTRECOVERY) !== 0;
export const IN_CONGRECOVERY = (f: number): boolean => (f & TF_CONGRECOVERY) !== 0;
export const IN_RECOVERY = (f: number): boolean => (f & (TF_FASTRECOVERY | TF_CONGRECOVERY)) !== 0;
/** ENTER_RECOVERY: loss recovery is also congestion recovery. */
export function ENTER_RECOVERY(tp: Tcpcb): void {
  tp.t_flags |= TF_FASTRECOVERY | TF_CONGRECOVERY;
}
export function ENTER_CONGRECOVERY(tp: Tcpcb): void {
  tp.t_flags |= TF_CONGRECOVERY;
}
export function EXIT_RECOVERY(tp: Tcpcb): void {
  tp.t_flags &= ~(TF_FASTRECOVERY | TF_CONGRECOVERY);
}
export function EXIT_CONGRECOVERY(tp: Tcpcb): void {
  tp.t_flags &= ~TF_CONGRECOVERY;
}

/**
 * tcp_fixed_maxseg: the data a full segment carries with the options every
 * segment has (timestamps), which is what the algorithms count in.
 */
export function ccMaxseg(tp: Tcpcb): number {
  const ts = TF_REQ_TSTMP | TF_RCVD_TSTMP;
  return (tp.t_flags & TF_NOOPT) === 0 && (tp.t_flags & ts) === ts ? tp.t_maxseg - 12 : tp.t_maxseg;
}

/** Bytes in flight as the non-SACK pipe estimate (snd_max - snd_una). */
export function ccPipe(tp: Tcpcb): number {
  return seqDiff(tp.snd_max, tp.snd_una);
}

/**
 * The algorithm's part of cc_conn_init: called once cwnd and ssthresh have
 * their initial values (tcp_input's ccConnInit sets those).
 */
export function ccConnInitAlgo(tp: Tcpcb): void {
  const a = tp.cc_algo;
  const ccv = tp.t_ccv;
  if (tp.tcp.cfg.hystart_allowed !== 0) ccv.flags |= CCF_HYSTART_ALLOWED;
  else ccv.flags &= ~CCF_HYSTART_ALLOWED;
  ccv.round_end = tp.snd_max;
  if (a.conn_init !== undefined) a.conn_init(tp.t_ccv);
}

/**
 * cc_ack_received: note how much this ACK covered and whether the sender is
 * cwnd limited (cwnd within the peer's window), count bytes for appropriate
 * byte counting in congestion avoidance (RFC 3465: CCF_ABC_SENTAWND once a
 * cwnd's worth was acknowledged), then let the algorithm grow cwnd.
 * `acked` is bytes newly acknowledged (0 for a duplicate).
 */
export function ccAckReceived(tp: Tcpcb, ack: number, acked: number, nsegs: number, type: number): void {
  const ccv = tp.t_ccv;
  ccv.nsegs = nsegs;
  ccv.bytes_this_ack = acked;
  if (tp.snd_cwnd <= tp.snd_wnd) ccv.flags |= CCF_CWND_LIMITED;
  else ccv.flags &= ~CCF_CWND_LIMITED;
  if (type === CC_ACK) {
    if (tp.snd_cwnd > tp.snd_ssthresh) {
      tp.t_bytes_acked += acked;
      if (tp.t_bytes_acked >= tp.snd_cwnd) {
        tp.t_bytes_acked -= tp.snd_cwnd;
        ccv.flags |= CCF_ABC_SENTAWND;
      }
    } else {
      ccv.flags &= ~CCF_ABC_SENTAWND;
      tp.t_bytes_acked = 0;
    }
  }
  const a = tp.cc_algo;
  if (a.ack_received !== undefined) {
    ccv.curack = ack;
    a.ack_received(ccv, type);
  }
}

/**
 * cc_cong_signal: TCP's side of a congestion signal (snd_recover, CWR to
 * send, the RTO's reset and the spurious-RTO undo), then the algorithm's
 * (ssthresh, cwnd, entering recovery). `ack` is the ACK that signalled it
 * (-1 for the timer).
 */
export function ccCongSignal(tp: Tcpcb, ack: number, type: number): void {
  const ecn = (tp.t_flags & TF_ECN_PERMIT) !== 0;
  switch (type) {
    case CC_NDUPACK:
      if (!IN_FASTRECOVERY(tp.t_flags)) {
        tp.snd_recover = tp.snd_max;
        if (ecn) tp.t_flags2 |= TF2_ECN_SND_CWR;
      }
      break;
    case CC_ECN:
      // Once per window; the ACK of the window's end may react again (its data was CE marked too).
      if (!IN_CONGRECOVERY(tp.t_flags) || (ack >= 0 && SEQ_GEQ(ack, tp.snd_recover))) {
        EXIT_CONGRECOVERY(tp);
        tp.tcp.stats[TCPS_STAT.ecn_rcwnd]++;
        tp.snd_recover = seqAdd(tp.snd_max, 1);
        if (ecn) tp.t_flags2 |= TF2_ECN_SND_CWR;
      } else return;
      break;
    case CC_RTO:
      tp.t_dupacks = 0;
      tp.t_bytes_acked = 0;
      EXIT_RECOVERY(tp);
      if (ecn) tp.t_flags2 |= TF2_ECN_SND_CWR;
      break;
    case CC_RTO_ERR:
      tp.tcp.stats[TCPS_STAT.sndrexmitbad]++;
      // The RTO was unnecessary: put everything back as it was before it.
      tp.snd_cwnd = tp.snd_cwnd_prev;
      tp.snd_ssthresh = tp.snd_ssthresh_prev;
      tp.snd_recover = tp.snd_recover_prev;
      if ((tp.t_flags & TF_WASFRECOVERY) !== 0) tp.t_flags |= TF_FASTRECOVERY;
      if ((tp.t_flags & TF_WASCRECOVERY) !== 0) tp.t_flags |= TF_CONGRECOVERY;
      tp.t_flags &= ~TF_PREVVALID;
      tp.t_badrxtwin = 0;
      break;
    default:
      break;
  }
  const a = tp.cc_algo;
  if (a.cong_signal !== undefined) {
    if (ack >= 0) tp.t_ccv.curack = ack;
    a.cong_signal(tp.t_ccv, type);
  }
}

/**
 * cc_post_recovery: the ACK covers snd_recover; the algorithm sets the
 * window to leave recovery with, then recovery ends.
 */
export function ccPostRecovery(tp: Tcpcb, ack: number): void {
  const a = tp.cc_algo;
  if (a.post_recovery !== undefined) {
    tp.t_ccv.curack = ack;
    a.post_recovery(tp.t_ccv);
  }
  EXIT_RECOVERY(tp);
  tp.t_bytes_acked = 0;
}

/** cc_after_idle: the connection sends again after more than an RTO of silence. */
export function ccAfterIdle(tp: Tcpcb): void {
  const a = tp.cc_algo;
  if (a.after_idle !== undefined) a.after_idle(tp.t_ccv);
}

/**
 * tcp_newround: an ACK past round_end begins a new round (all that was in
 * flight when the last one began is acknowledged; the ACK of exactly
 * round_end still samples the old round's data, as Linux's
 * after(snd_una, end_seq)); the new round ends at what is sent by now.
 * Called for each ACK of new data before its RTT sample.
 */
export function ccNewRound(tp: Tcpcb, ack: number): void {
  const a = tp.cc_algo;
  const ccv = tp.t_ccv;
  if (a.newround === undefined || !SEQ_GT(ack, ccv.round_end)) return;
  ccv.round_cnt = (ccv.round_cnt + 1) >>> 0;
  ccv.round_end = tp.snd_max;
  a.newround(ccv, ccv.round_cnt);
}

/** cc_rttsample: hand an RTT sample (ms ticks) of the ACK `ack` to the algorithm, in usec. */
export function ccRttSample(tp: Tcpcb, rttTicks: number, rxtcnt: number, ack: number): void {
  const a = tp.cc_algo;
  if (a.rttsample !== undefined) a.rttsample(tp.t_ccv, Math.max(1, rttTicks) * 1000, rxtcnt, seqDiff(tp.snd_max, ack));
}
