/**
 * CUBIC congestion control (RFC 9438; FreeBSD's cc_cubic.c and cc_cubic.h
 * for the shape: W_max, K, t_epoch, the mean RTT of the last epoch, fast
 * convergence, the RTO rules, the undo of a spurious RTO).
 *
 * In congestion avoidance the window follows
 *
 *     W_cubic(t) = C * (t - K)^3 + W_max,   K = cbrt((W_max - cwnd_epoch) / C)
 *
 * (segments, seconds; C = 0.4) with t the time since the epoch began,
 * evaluated one mean RTT ahead: below W_max it is concave (fast at first,
 * flat near W_max), above it convex (probing). Each ACK moves cwnd toward
 * min(W_cubic(t + RTT), 1.5 cwnd) by (target - cwnd) / cwnd per segment
 * acknowledged. W_est, the window an AIMD flow with alpha =
 * 3(1 - beta)/(1 + beta) would have (1 once it passes the window before the
 * last reduction), floors cwnd: the Reno-friendly region (RFC 9438 4.3).
 *
 * A loss or an ECN echo: cwnd_prior = cwnd, ssthresh = cwnd * beta (0.7,
 * at least two segments), W_max = cwnd, or cwnd * (1 + beta) / 2 when cwnd
 * had not regained the last W_max (fast convergence, 4.7). The next epoch
 * starts with the first ACK in congestion avoidance, from the cwnd recovery
 * left (so K is measured from it). An RTO: ssthresh = 0.7 of the flight,
 * cwnd one segment, and after the slow start that follows the epoch starts
 * with W_max = cwnd and K = 0 (4.8). Slow start, recovery exit and idle
 * restart are NewReno's (cc_newreno.ts); as FreeBSD's, CUBIC stays in slow
 * start until it has 8 RTT samples to take the mean RTT from. With
 * CCF_HYSTART_ALLOWED slow start is HyStart++'s (cc_hystart.ts; its state
 * is CubicData's hs).
 *
 * Per connection: one CubicData, made on the first ACK or signal (an idle
 * connection has none), nothing allocated per ACK; plain
 * double arithmetic, windows kept in whole bytes.
 * Stack thread; no lock; never sleeps.
 */
import { TCP_MAXWIN, TCP_RTT_SHIFT, type Tcpcb } from '../tcp_var.js';
import {
  CC_ACK,
  CC_ECN,
  CC_NDUPACK,
  CC_RTO,
  CC_RTO_ERR,
  CCF_CWND_LIMITED,
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
import { newrenoCcAfterIdle, newrenoCcPostRecovery, newrenoSlowStartIncr } from './cc_newreno.js';

/** RFC 9438's constants. */
export const CUBIC_C = 0.4;
export const CUBIC_BETA = 0.7;
/** alpha_cubic: the AIMD increase that matches Reno's average rate with CUBIC's beta. */
export const CUBIC_ALPHA_AIMD = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);
/** Fast convergence: W_max = cwnd * (1 + beta) / 2. */
export const CUBIC_FC_FACTOR = (1 + CUBIC_BETA) / 2;
/** Don't trust srtt until this many RTT samples (CUBIC_MIN_RTT_SAMPLES). */
export const CUBIC_MIN_RTT_SAMPLES = 8;

// flags (cc_cubic.h), plus EPOCH_PENDING: start an epoch on the next congestion-avoidance ACK.
export const CUBICFLAG_CONG_EVENT = 0x00000001;
export const CUBICFLAG_IN_SLOWSTART = 0x00000002;
export const CUBICFLAG_IN_APPLIMIT = 0x00000004;
export const CUBICFLAG_RTO_EVENT = 0x00000008;
export const CUBICFLAG_IN_TF = 0x00000040;
export const CUBICFLAG_EPOCH_PENDING = 0x00000080;

/** struct cubic: one connection's CUBIC state (windows in bytes, K in seconds, t_epoch in ticks). */
export class CubicData {
  K = 0;
  W_max = 0;
  /** cwnd before the last reduction (W_est's alpha turns 1 past it). */
  cwnd_prior = 0;
  /** cwnd when the current epoch began. */
  cwnd_epoch = 0;
  /** The Reno-friendly estimate, bytes (fractional). */
  W_est = 0;
  t_epoch = 0;
  flags = 0;
  /** Fractions of a byte of cwnd growth carried to the next ACK. */
  incr_frac = 0;
  min_rtt_usecs = 0;
  mean_rtt_usecs = 1;
  sum_rtt_usecs = 0;
  epoch_ack_count = 0;
  num_cong_events = 0;
  // before the first RTO of a series, for CC_RTO_ERR
  undo_K = 0;
  undo_W_max = 0;
  undo_cwnd_prior = 0;
  undo_cwnd_epoch = 0;
  undo_W_est = 0;
  undo_t_epoch = 0;
  undo_flags = 0;
  /** HyStart++ state. */
  readonly hs = new HystartData();
}

/**
 * The connection's CubicData, made on the first hook that needs it (an idle
 * connection has none) from what cb_init and conn_init recorded in the
 * cc_var. Stack thread; does not sleep.
 */
export function cubicData(ccv: CcVar): CubicData {
  if (ccv.cc_data !== null) return ccv.cc_data as CubicData;
  const d = new CubicData();
  d.t_epoch = ccv.init_ticks;
  d.W_max = d.cwnd_prior = ccv.init_cwnd;
  ccv.cc_data = d;
  return d;
}

/** K (seconds) for the epoch: the time W_cubic takes from cwnd_epoch back to W_max. */
export function cubicK(wmax: number, cwndEpoch: number, mss: number): number {
  return wmax > cwndEpoch ? Math.cbrt((wmax - cwndEpoch) / mss / CUBIC_C) : 0;
}

/** W_cubic(t) in bytes: C (t - K)^3 segments around W_max, never below 0 nor past the largest window. */
export function cubicCwnd(tSec: number, wmax: number, mss: number, K: number): number {
  const d = tSec - K;
  const w = CUBIC_C * d * d * d * mss + wmax;
  return w < 0 ? 0 : w > 0x7fffffff ? 0x7fffffff : w;
}

/** Begin a congestion-avoidance epoch at `now` from the current cwnd. */
function cubicNewEpoch(tp: Tcpcb, d: CubicData, now: number): void {
  const cwnd = tp.snd_cwnd;
  // Without a window to return to (first epoch, after an RTO) probe from here: K = 0.
  if ((d.flags & CUBICFLAG_RTO_EVENT) !== 0 || d.W_max < cwnd) d.W_max = cwnd;
  d.flags &= ~(CUBICFLAG_RTO_EVENT | CUBICFLAG_IN_SLOWSTART | CUBICFLAG_IN_APPLIMIT | CUBICFLAG_EPOCH_PENDING);
  d.t_epoch = now;
  d.cwnd_epoch = cwnd;
  d.W_est = cwnd;
  d.incr_frac = 0;
  d.K = cubicK(d.W_max, cwnd, tp.t_maxseg);
}

/** Record srtt for the minimum and the epoch's mean RTT (cubic_record_rtt). */
function cubicRecordRtt(tp: Tcpcb, d: CubicData): void {
  if (tp.t_rttupdated < CUBIC_MIN_RTT_SAMPLES) return;
  const srtt = Math.floor((tp.t_srtt * 1000) / (1 << TCP_RTT_SHIFT));
  if (srtt < d.min_rtt_usecs || d.min_rtt_usecs === 0) {
    d.min_rtt_usecs = Math.max(1, srtt);
    if (d.min_rtt_usecs > d.mean_rtt_usecs) d.mean_rtt_usecs = d.min_rtt_usecs;
  }
  d.sum_rtt_usecs += srtt;
  d.epoch_ack_count++;
}

/** Congestion avoidance for one ACK: toward W_cubic(t + RTT), floored by W_est. */
function cubicCaIncrease(ccv: CcVar, d: CubicData, now: number): void {
  const tp = ccv.tp;
  const mss = tp.t_maxseg;
  const cwnd = tp.snd_cwnd;
  const t = (now - d.t_epoch) / 1000 + d.mean_rtt_usecs / 1e6;
  d.W_est += ((d.W_est >= d.cwnd_prior ? 1 : CUBIC_ALPHA_AIMD) * ccv.bytes_this_ack * mss) / cwnd;
  const wc = cubicCwnd(t, d.W_max, mss, d.K);
  let next = cwnd;
  if (wc < d.W_est) {
    d.flags |= CUBICFLAG_IN_TF;
    if (cwnd < d.W_est) next = Math.floor(d.W_est);
  } else {
    d.flags &= ~CUBICFLAG_IN_TF;
    if (cwnd < wc) {
      const target = Math.min(wc, cwnd * 1.5);
      d.incr_frac += ((target - cwnd) * ccv.bytes_this_ack) / cwnd;
      const whole = Math.floor(d.incr_frac);
      d.incr_frac -= whole;
      next = cwnd + whole;
    }
  }
  if (next > cwnd) tp.snd_cwnd = Math.min(next, TCP_MAXWIN << tp.snd_scale);
}

/** cubic_ack_received. */
function cubicAckReceived(ccv: CcVar, type: number): void {
  const tp = ccv.tp;
  const d = cubicData(ccv);
  cubicRecordRtt(tp, d);
  if (type !== CC_ACK || IN_RECOVERY(tp.t_flags)) return;
  if ((ccv.flags & CCF_CWND_LIMITED) === 0) {
    d.flags |= CUBICFLAG_IN_APPLIMIT;
    return;
  }
  if (tp.snd_cwnd <= tp.snd_ssthresh || d.min_rtt_usecs === 0) {
    d.flags |= CUBICFLAG_IN_SLOWSTART;
    const incr = hystartSlowStartIncr(ccv, d.hs, newrenoSlowStartIncr(ccv));
    if (incr > 0) tp.snd_cwnd = Math.min(tp.snd_cwnd + incr, TCP_MAXWIN << tp.snd_scale);
    return;
  }
  hystartLeftSlowStart(d.hs);
  const now = tp.tcp.ticks();
  if ((d.flags & (CUBICFLAG_IN_SLOWSTART | CUBICFLAG_IN_APPLIMIT | CUBICFLAG_EPOCH_PENDING)) !== 0) cubicNewEpoch(tp, d, now);
  cubicCaIncrease(ccv, d, now);
}

/** The multiplicative decrease of a loss or ECN echo (cubic_ssthresh_update), fast convergence included. */
function cubicSsthreshUpdate(tp: Tcpcb, d: CubicData): void {
  const cwnd = tp.snd_cwnd;
  d.undo_W_max = d.W_max;
  d.cwnd_prior = cwnd;
  d.W_max = cwnd < d.W_max ? cwnd * CUBIC_FC_FACTOR : cwnd;
  tp.snd_ssthresh = Math.max(Math.floor(cwnd * CUBIC_BETA), 2 * ccMaxseg(tp));
  d.flags |= CUBICFLAG_CONG_EVENT | CUBICFLAG_EPOCH_PENDING;
  d.num_cong_events++;
}

/** cubic_cong_signal. */
function cubicCongSignal(ccv: CcVar, type: number): void {
  const tp = ccv.tp;
  const d = cubicData(ccv);
  if (type === CC_NDUPACK || type === CC_ECN) hystartCongestion(d.hs);
  switch (type) {
    case CC_NDUPACK:
      if (!IN_FASTRECOVERY(tp.t_flags)) {
        if (!IN_CONGRECOVERY(tp.t_flags)) cubicSsthreshUpdate(tp, d);
        ENTER_RECOVERY(tp);
      }
      break;
    case CC_ECN:
      if (!IN_CONGRECOVERY(tp.t_flags)) {
        cubicSsthreshUpdate(tp, d);
        tp.snd_cwnd = tp.snd_ssthresh;
        ENTER_CONGRECOVERY(tp);
      }
      break;
    case CC_RTO:
      cubicRto(tp, d);
      break;
    case CC_RTO_ERR:
      d.K = d.undo_K;
      d.W_max = d.undo_W_max;
      d.cwnd_prior = d.undo_cwnd_prior;
      d.cwnd_epoch = d.undo_cwnd_epoch;
      d.W_est = d.undo_W_est;
      d.t_epoch = d.undo_t_epoch;
      d.flags = d.undo_flags;
      d.num_cong_events--;
      break;
    default:
      break;
  }
}

/** CC_RTO: remember the state before the first RTO, ssthresh 0.7 of the flight, cwnd one segment. */
function cubicRto(tp: Tcpcb, d: CubicData): void {
  const mss = ccMaxseg(tp);
  if (tp.t_rxtshift === 1) {
    d.undo_K = d.K;
    d.undo_W_max = d.W_max;
    d.undo_cwnd_prior = d.cwnd_prior;
    d.undo_cwnd_epoch = d.cwnd_epoch;
    d.undo_W_est = d.W_est;
    d.undo_t_epoch = d.t_epoch;
    d.undo_flags = d.flags;
    tp.snd_ssthresh = Math.max(2, Math.floor((Math.min(tp.snd_wnd, ccPipe(tp)) * CUBIC_BETA) / mss)) * mss;
    d.num_cong_events++;
  }
  d.flags |= CUBICFLAG_CONG_EVENT | CUBICFLAG_RTO_EVENT;
  tp.snd_cwnd = mss;
}

/** cubic_conn_init: a sane W_max to start from (the initial window, or what the host cache gave). */
function cubicConnInit(ccv: CcVar): void {
  const cwnd = ccv.tp.snd_cwnd;
  if (ccv.cc_data === null) {
    ccv.init_cwnd = cwnd;
    return;
  }
  const d = ccv.cc_data as CubicData;
  d.W_max = cwnd;
  d.cwnd_prior = cwnd;
}

/** cubic_post_recovery: NewReno's exit window, then the epoch's mean RTT. */
function cubicPostRecovery(ccv: CcVar): void {
  const d = cubicData(ccv);
  newrenoCcPostRecovery(ccv);
  if (d.epoch_ack_count > 0 && d.sum_rtt_usecs >= d.epoch_ack_count) d.mean_rtt_usecs = Math.floor(d.sum_rtt_usecs / d.epoch_ack_count);
  d.epoch_ack_count = 0;
  d.sum_rtt_usecs = 0;
}

/** cubic_after_idle: remember the window we had, restart as NewReno, new epoch on the next CA ACK. */
function cubicAfterIdle(ccv: CcVar): void {
  const d = cubicData(ccv);
  d.W_max = Math.max(d.W_max, ccv.tp.snd_cwnd);
  newrenoCcAfterIdle(ccv);
  hystartAfterIdle(d.hs);
  d.flags |= CUBICFLAG_EPOCH_PENDING;
}

export const cubic_cc_algo: CcAlgo = {
  name: 'cubic',
  cb_init(ccv: CcVar): void {
    // The CubicData itself is made on first use (data()).
    ccv.cc_data = null;
    ccv.init_ticks = ccv.tp.tcp.ticks();
    ccv.init_cwnd = 0;
  },
  cb_destroy(ccv: CcVar): void {
    ccv.cc_data = null;
  },
  conn_init: cubicConnInit,
  ack_received: cubicAckReceived,
  cong_signal: cubicCongSignal,
  post_recovery: cubicPostRecovery,
  after_idle: cubicAfterIdle,
  newround(ccv: CcVar, round: number): void {
    hystartNewRound(ccv, cubicData(ccv).hs, round);
  },
  rttsample(ccv: CcVar, usecRtt: number, rxtcnt: number): void {
    hystartRttSample(ccv, cubicData(ccv).hs, usecRtt, rxtcnt);
  },
};
