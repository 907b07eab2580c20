/**
 * NewReno congestion control (RFC 5681, RFC 6582; FreeBSD's cc_newreno.c
 * and the newreno_cc_* functions of cc.c that other algorithms reuse):
 *
 * - slow start with appropriate byte counting (RFC 3465): each ACK grows
 *   cwnd by the bytes it covered, at most net.inet.tcp.abc_l_var segments
 *   (one segment while retransmitting after an RTO, snd_nxt < snd_max);
 * - congestion avoidance: one segment per cwnd of acknowledged bytes;
 * - a loss (three duplicate ACKs) or an ECN echo sets ssthresh to
 *   cwnd * net.inet.tcp.cc.newreno.beta / 100 (beta_ecn with
 *   net.inet.tcp.cc.abe for ECN, RFC 8511), whole segments, at least two;
 * - an RTO sets ssthresh to half the flight (on the first one) and cwnd to
 *   one segment;
 * - leaving fast recovery, cwnd is ssthresh, or the flight plus one segment
 *   when less is in flight (RFC 6582 3.2 step 3, no burst);
 * - after an idle period cwnd restarts from the initial window and
 *   ssthresh keeps at least 3/4 of the old cwnd (RFC 5681 4.1, RFC 2861).
 *
 * With CCF_HYSTART_ALLOWED slow start is HyStart++'s (cc_hystart.ts): the
 * per-connection state is one HystartData (cb_init). Stack thread; no
 * lock; never sleeps.
 */
import { TCP_MAXWIN, type Tcpcb } from '../tcp_var.js';
import { tcpComputeInitwnd } from '../tcp_output.js';
import {
  CC_ACK,
  CC_ECN,
  CC_NDUPACK,
  CC_RTO,
  CCF_ABC_SENTAWND,
  CCF_CWND_LIMITED,
  CCF_USE_LOCAL_ABC,
  ENTER_CONGRECOVERY,
  ENTER_RECOVERY,
  IN_CONGRECOVERY,
  IN_FASTRECOVERY,
  IN_RECOVERY,
  ccMaxseg,
  ccPipe,
  type CcAlgo,
  type CcVar,
} from './cc.js';
import { HystartData, hystartAfterIdle, hystartCongestion, hystartLeftSlowStart, hystartNewRound, hystartRttSample, hystartSlowStartIncr } from './cc_hystart.js';

/**
 * newreno_cc_ack_received: open cwnd for an ACK of new data outside
 * recovery while cwnd limits the sender (slow start or congestion
 * avoidance with ABC).
 */
export function newrenoCcAckReceived(ccv: CcVar, type: number): void {
  const tp = ccv.tp;
  if (type !== CC_ACK || IN_RECOVERY(tp.t_flags) || (ccv.flags & CCF_CWND_LIMITED) === 0) return;
  const h = ccv.cc_data instanceof HystartData ? ccv.cc_data : null;
  const cw = tp.snd_cwnd;
  let incr = tp.t_maxseg;
  if (cw > tp.snd_ssthresh) {
    if (h !== null) hystartLeftSlowStart(h);
    // Congestion avoidance: a segment once a cwnd's worth was acknowledged.
    if ((ccv.flags & CCF_ABC_SENTAWND) !== 0) ccv.flags &= ~CCF_ABC_SENTAWND;
    else incr = 0;
  } else {
    incr = newrenoSlowStartIncr(ccv);
    if (h !== null) incr = hystartSlowStartIncr(ccv, h, incr);
  }
  if (incr > 0) tp.snd_cwnd = Math.min(cw + incr, TCP_MAXWIN << tp.snd_scale);
}

/**
 * The slow-start increment with ABC: the bytes this ACK covered, at most
 * abc_l_var segments per segment acknowledged, or one segment while
 * retransmitting after an RTO (snd_nxt was pulled back to snd_una).
 */
export function newrenoSlowStartIncr(ccv: CcVar): number {
  const tp = ccv.tp;
  const abc = (ccv.flags & CCF_USE_LOCAL_ABC) !== 0 ? ccv.labc : tp.tcp.cfg.abc_l_var;
  if (tp.snd_nxt === tp.snd_max) return Math.min(ccv.bytes_this_ack, ccv.nsegs * abc * tp.t_maxseg);
  return Math.min(ccv.bytes_this_ack, tp.t_maxseg);
}

/** cwnd * factor / 100 in whole segments, at least two (newreno_cc_cwnd_on_multiplicative_decrease). */
export function newrenoDecrease(tp: Tcpcb, factor: number): number {
  const mss = ccMaxseg(tp);
  return Math.max(Math.floor((tp.snd_cwnd * factor) / (100 * mss)), 2) * mss;
}

/** newreno_cc_rto: on the first RTO ssthresh is half the flight (within the peer's window); cwnd one segment. */
export function newrenoCcRto(tp: Tcpcb, beta: number): void {
  const mss = ccMaxseg(tp);
  if (tp.t_rxtshift === 1) tp.snd_ssthresh = Math.max(2, Math.floor((Math.min(tp.snd_wnd, ccPipe(tp)) * beta) / mss)) * mss;
  tp.snd_cwnd = mss;
}

/** newreno_cong_signal: ssthresh (and for ECN cwnd) by beta, entering recovery. */
function newrenoCongSignal(ccv: CcVar, type: number): void {
  const tp = ccv.tp;
  const cfg = tp.tcp.cfg;
  const beta = cfg.newreno_beta;
  const betaEcn = cfg.newreno_beta_ecn;
  const factor = type === CC_ECN && cfg.cc_abe !== 0 ? betaEcn : beta;
  const cwin = newrenoDecrease(tp, factor);
  if ((type === CC_NDUPACK || type === CC_ECN) && ccv.cc_data instanceof HystartData) hystartCongestion(ccv.cc_data);
  switch (type) {
    case CC_NDUPACK:
      if (!IN_FASTRECOVERY(tp.t_flags)) {
        // ABE: loss during an ECN reduction takes the rest of the way to the loss beta.
        if (IN_CONGRECOVERY(tp.t_flags) && cfg.cc_abe !== 0 && cfg.cc_abe_frlossreduce !== 0) {
          tp.snd_ssthresh = Math.floor((tp.snd_ssthresh * beta) / betaEcn);
        }
        if (!IN_CONGRECOVERY(tp.t_flags)) tp.snd_ssthresh = cwin;
        ENTER_RECOVERY(tp);
      }
      break;
    case CC_ECN:
      if (!IN_CONGRECOVERY(tp.t_flags)) {
        tp.snd_ssthresh = cwin;
        tp.snd_cwnd = cwin;
        ENTER_CONGRECOVERY(tp);
      }
      break;
    case CC_RTO:
      newrenoCcRto(tp, 0.5);
      break;
    default:
      break;
  }
}

/**
 * newreno_cc_post_recovery: leaving fast recovery, cwnd is ssthresh, or
 * what is still in flight plus one segment when that is less (no burst).
 */
export function newrenoCcPostRecovery(ccv: CcVar): void {
  const tp = ccv.tp;
  if (!IN_FASTRECOVERY(tp.t_flags)) return;
  const pipe = (tp.snd_max - ccv.curack) >>> 0;
  if (pipe < tp.snd_ssthresh) tp.snd_cwnd = Math.max(pipe, tp.t_maxseg) + tp.t_maxseg;
  else tp.snd_cwnd = tp.snd_ssthresh;
}

/**
 * newreno_cc_after_idle: restart from the initial window (RFC 5681 4.1),
 * keeping ssthresh at least 3/4 of the old cwnd so slow start gets back
 * there (RFC 2861 2).
 */
export function newrenoCcAfterIdle(ccv: CcVar): void {
  const tp = ccv.tp;
  const rw = tcpComputeInitwnd(tp, ccMaxseg(tp));
  tp.snd_ssthresh = Math.max(tp.snd_ssthresh, tp.snd_cwnd - (tp.snd_cwnd >>> 2));
  tp.snd_cwnd = Math.min(rw, tp.snd_cwnd);
}

const hdata = (ccv: CcVar): HystartData => ccv.cc_data as HystartData;

export const newreno_cc_algo: CcAlgo = {
  name: 'newreno',
  cb_init(ccv: CcVar): void {
    ccv.cc_data = new HystartData();
  },
  cb_destroy(ccv: CcVar): void {
    ccv.cc_data = null;
  },
  ack_received: newrenoCcAckReceived,
  cong_signal: newrenoCongSignal,
  post_recovery: newrenoCcPostRecovery,
  after_idle(ccv: CcVar): void {
    newrenoCcAfterIdle(ccv);
    hystartAfterIdle(hdata(ccv));
  },
  newround(ccv: CcVar, round: number): void {
    hystartNewRound(ccv, hdata(ccv), round);
  },
  rttsample(ccv: CcVar, usecRtt: number, rxtcnt: number): void {
    hystartRttSample(ccv, hdata(ccv), usecRtt, rxtcnt);
  },
};
