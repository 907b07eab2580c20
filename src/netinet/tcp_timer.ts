/**
 * TCP timers (tcp_timer.c): retransmission, persist, keepalive (also the
 * connection-establishment limit, TCP_KEEPINIT), 2MSL (TIME_WAIT and the
 * FIN_WAIT_2 limit) and delayed ACK. Each is a callout on the stack's
 * thread (st.td.callouts, 1 tick = 1 ms), so on a manual clock everything
 * is deterministic. Times follow FreeBSD: RTO = srtt + 4 rttvar bounded
 * below by net.inet.tcp.rexmit_min, plus rexmit_slop, backed off by
 * tcp_backoff[]; SYNs back off from rexmit_initial.
 *
 * Run on the stack's thread; no lock; never sleep.
 */
import { TCPS_CLOSING, TCPS_CLOSE_WAIT, TCPS_ESTABLISHED, TCPS_SYN_RECEIVED, TCPS_SYN_SENT, TCPS_TIME_WAIT } from './tcp_fsm.js';
import { TCPS_STAT } from './tcp_stats.js';
import {
  SO_KEEPALIVE_OPT,
  TCPTV_REXMTMAX,
  TCP_DELTA_SHIFT,
  TCP_MAXRXTSHIFT,
  TCP_RTT_SHIFT,
  TF_ACKNOW,
  
  TF_FORCEDATA,
  TF_PREVVALID,
  TF_REQ_SCALE,
  TF_REQ_TSTMP,
  TF_SACK_PERMIT,
  TF2_ECN_SYN_DISABLED,
  TF_FASTRECOVERY,
  TF_CONGRECOVERY,
  TF_WASFRECOVERY,
  TF_WASCRECOVERY,
  tcp_backoff,
  tcp_totbackoff,
  type Tcpcb,
  type TcpCallout,
} from './tcp_var.js';
import type { CalloutFn } from '../kern/lwkt/callout.js';
import { sackhintOf, tcpSackClearScoreboard } from './tcp_sack.js';
import { CC_RTO, EXIT_RECOVERY, ccCongSignal } from './cc/cc.js';
import { seqAdd } from './tcp_seq.js';

const ETIMEDOUT = 60;

function ticksOf(tp: Tcpcb, ms: number): number {
  return Math.max(1, Math.round(ms / tp.tcp.st.td.callouts.tickMs));
}

/** TCPT_RANGESET: value + rexmit_slop, clamped to [min, max]. */
export function tcpRangeset(tp: Tcpcb, value: number, min: number, max: number): number {
  let v = value + tp.tcp.cfg.rexmit_slop;
  if (v < min) v = min;
  else if (v > max) v = max;
  return v;
}

/** TCP_REXMTVAL: srtt + 4 * rttvar, at least t_rttmin (ms). */
export function tcpRexmtval(tp: Tcpcb): number {
  const v = ((tp.t_srtt >> (TCP_RTT_SHIFT - TCP_DELTA_SHIFT)) + tp.t_rttvar) >> TCP_DELTA_SHIFT;
  return Math.max(tp.t_rttmin, v);
}

/** TP_MAXIDLE: how long keepalive probes go unanswered before the drop. */
export function tcpMaxidle(tp: Tcpcb): number {
  return tp.keepcnt() * tp.keepintvl();
}

/** The timers (t_timers[] indices, FreeBSD's order: the dispatcher runs ties in it). */
export const TT_DELACK = 0;
export const TT_REXMT = 1;
export const TT_PERSIST = 2;
export const TT_KEEP = 3;
export const TT_2MSL = 4;
const TT_N = 5;

/** The tick timer `which` is due at, 0 when it is not armed. */
export function tcpTimerDue(tp: Tcpcb, which: number): number {
  switch (which) {
    case TT_DELACK:
      return tp.tt_delack;
    case TT_REXMT:
      return tp.tt_rexmt;
    case TT_PERSIST:
      return tp.tt_persist;
    case TT_KEEP:
      return tp.tt_keep;
    default:
      return tp.tt_2msl;
  }
}

function setDue(tp: Tcpcb, which: number, due: number): void {
  switch (which) {
    case TT_DELACK:
      tp.tt_delack = due;
      break;
    case TT_REXMT:
      tp.tt_rexmt = due;
      break;
    case TT_PERSIST:
      tp.tt_persist = due;
      break;
    case TT_KEEP:
      tp.tt_keep = due;
      break;
    default:
      tp.tt_2msl = due;
  }
}

/**
 * tcp_timer_next: the timer due first (ties to the lower index) among those
 * due by `by`, or -1 when none is. Any context; does not sleep.
 */
function tcpTimerNext(tp: Tcpcb, by: number): number {
  let which = -1;
  let min = by;
  for (let i = 0; i < TT_N; i++) {
    const due = tcpTimerDue(tp, i);
    if (due !== 0 && due <= min && (which < 0 || due < min)) {
      which = i;
      min = due;
    }
  }
  return which;
}

/**
 * Put the tcpcb's one callout on the earliest deadline, or stop it when no
 * timer is armed. Skipped while the dispatcher runs (it re-arms once at the
 * end). Stack thread; does not sleep.
 */
function tcpTimerRearm(tp: Tcpcb): void {
  const c = tp.t_callout;
  if (c.active) return;
  const which = tcpTimerNext(tp, Infinity);
  if (which < 0) {
    c.stop();
    return;
  }
  const due = tcpTimerDue(tp, which);
  if (c.pending) {
    if (c.time === due) return;
    c.wheel.unlink(c);
  }
  c.fn = TCP_TIMER_ENTER;
  c.wheel.link(c, Math.max(due, c.wheel.now() + 1));
}

/**
 * tcp_timer_activate: arm timer `which` to fire after `ticks` ticks (at
 * least one), or cancel it when `ticks` is 0. Stack thread; does not sleep.
 */
export function tcpTimerActivate(tp: Tcpcb, which: number, ticks: number): void {
  setDue(tp, which, ticks === 0 ? 0 : tp.t_callout.wheel.now() + Math.max(1, ticks));
  tcpTimerRearm(tp);
}

/** Cancel timer `which` (tcp_timer_activate with 0). Does not sleep. */
export function tcpTimerStop(tp: Tcpcb, which: number): void {
  if (tcpTimerDue(tp, which) === 0) return;
  setDue(tp, which, 0);
  tcpTimerRearm(tp);
}

/**
 * tcp_timer_enter: the callout fired; run every timer now due, earliest
 * first (a handler may arm, stop or close; a closed tcpcb has none left),
 * then re-arm for the next one. Stack thread (softclock); does not sleep.
 */
function tcpTimerEnter(tp: Tcpcb): void {
  const c = tp.t_callout;
  try {
    for (;;) {
      const which = tcpTimerNext(tp, c.wheel.now());
      if (which < 0) break;
      setDue(tp, which, 0);
      TT_HANDLERS[which](tp);
    }
  } finally {
    c.active = false;
    tcpTimerRearm(tp);
  }
}

const TCP_TIMER_ENTER: CalloutFn = (_a, c) => tcpTimerEnter((c as TcpCallout).tp);

export function tcpTimerRexmtArm(tp: Tcpcb): void {
  tcpTimerActivate(tp, TT_REXMT, ticksOf(tp, tp.t_rxtcur));
}

/** Arm the keepalive / connection-establishment timer for `ms`. */
export function tcpTimerKeepArm(tp: Tcpcb, ms: number): void {
  tcpTimerActivate(tp, TT_KEEP, ticksOf(tp, ms));
}

/** Arm the 2MSL / FIN_WAIT_2 timer for `ms`. */
export function tcpTimer2mslArm(tp: Tcpcb, ms: number): void {
  tcpTimerActivate(tp, TT_2MSL, ticksOf(tp, ms));
}

/** Arm the delayed-ACK timer (net.inet.tcp.delacktime) unless it is pending. */
export function tcpTimerDelackArm(tp: Tcpcb): void {
  if (tp.tt_delack === 0) tcpTimerActivate(tp, TT_DELACK, ticksOf(tp, tp.tcp.cfg.delacktime));
}

/** tcp_canceltimers */
export function tcpCancelTimers(tp: Tcpcb): void {
  tp.rack?.stopTimers();
  tp.tt_delack = tp.tt_rexmt = tp.tt_persist = tp.tt_keep = tp.tt_2msl = 0;
  tcpTimerRearm(tp);
}

/**
 * tcp_setpersist: arm the persist timer with the backed-off RTO bounded by
 * net.inet.tcp.persmin / persmax, and count one more backoff step.
 */
export function tcpSetpersist(tp: Tcpcb): void {
  const t = ((tp.t_srtt >> 2) + tp.t_rttvar) >> 1;
  const cfg = tp.tcp.cfg;
  const base = t === 0 ? cfg.rexmit_initial : t;
  const tt = tcpRangeset(tp, base * tcp_backoff[tp.t_rxtshift], cfg.persmin, cfg.persmax);
  tcpTimerActivate(tp, TT_PERSIST, ticksOf(tp, tt));
  if (tp.t_rxtshift < TCP_MAXRXTSHIFT) tp.t_rxtshift++;
}

/** TIME_WAIT for 2 * net.inet.tcp.msl (tcp_twstart). */
export function tcpTwstart(tp: Tcpcb): void {
  tp.state = TCPS_TIME_WAIT;
  tp.tt_delack = tp.tt_rexmt = tp.tt_persist = tp.tt_keep = 0;
  tp.so_snd.flush();
  tcpTimer2mslArm(tp, 2 * tp.tcp.cfg.msl);
}

function tcpTimerDelack(tp: Tcpcb): void {
  tp.t_flags |= TF_ACKNOW;
  tp.tcp.stats[TCPS_STAT.delack]++;
  tp.tcp.output(tp);
}

function tcpTimer2msl(tp: Tcpcb): void {
  const tcp = tp.tcp;
  if (tp.state === TCPS_TIME_WAIT) {
    tcp.close(tp);
    return;
  }
  // FIN_WAIT_2 after the user closed: drop once idle longer than the limit.
  const idle = tcp.ticks() - tp.t_rcvtime;
  const limit = tcp.cfg.fast_finwait2_recycle ? tcp.cfg.finwait2_timeout : tcpMaxidle(tp);
  if (idle >= limit) {
    tcp.stats[TCPS_STAT.finwait2_drops]++;
    tcp.close(tp);
  } else tcpTimer2mslArm(tp, limit - idle);
}

function tcpTimerKeep(tp: Tcpcb): void {
  const tcp = tp.tcp;
  const s = tcp.stats;
  s[TCPS_STAT.keeptimeo]++;
  if (tp.state < TCPS_ESTABLISHED) {
    tcp.drop(tp, ETIMEDOUT);
    return;
  }
  const keepalive = tcp.cfg.always_keepalive !== 0 || (tp.so_options & SO_KEEPALIVE_OPT) !== 0;
  if (keepalive && tp.state <= TCPS_CLOSING) {
    const idle = tcp.ticks() - tp.t_rcvtime;
    if (idle < tp.keepidle()) {
      tcpTimerKeepArm(tp, tp.keepidle() - idle);
      return;
    }
    if (idle >= tp.keepidle() + tcpMaxidle(tp)) {
      s[TCPS_STAT.keepdrops]++;
      tcp.drop(tp, ETIMEDOUT);
      return;
    }
    // A keepalive probe: an ACK one byte below snd_una, which the peer must answer.
    s[TCPS_STAT.keepprobe]++;
    tp.t_keepprobes++;
    tcp.respondAck(tp, tp.rcv_nxt, seqAdd(tp.snd_una, -1));
    tcpTimerKeepArm(tp, tp.keepintvl());
  } else tcpTimerKeepArm(tp, tp.keepidle());
}

function tcpTimerPersist(tp: Tcpcb): void {
  const tcp = tp.tcp;
  tcp.stats[TCPS_STAT.persisttimeo]++;
  const idle = tcp.ticks() - tp.t_rcvtime;
  if (tp.t_rxtshift >= TCP_MAXRXTSHIFT && (idle >= tp.keepidle() || idle >= tcpRexmtval(tp) * tcp_totbackoff)) {
    tcp.stats[TCPS_STAT.persistdrop]++;
    tcp.drop(tp, ETIMEDOUT);
    return;
  }
  if (tp.state > TCPS_CLOSE_WAIT && idle > tcpMaxidle(tp)) {
    tcp.stats[TCPS_STAT.persistdrop]++;
    tcp.drop(tp, ETIMEDOUT);
    return;
  }
  tcpSetpersist(tp);
  tp.t_flags |= TF_FORCEDATA;
  tcp.output(tp);
  tp.t_flags &= ~TF_FORCEDATA;
}

function tcpTimerRexmt(tp: Tcpcb): void {
  const tcp = tp.tcp;
  const cfg = tcp.cfg;
  if (++tp.t_rxtshift > TCP_MAXRXTSHIFT) {
    tp.t_rxtshift = TCP_MAXRXTSHIFT;
    tcp.stats[TCPS_STAT.timeoutdrop]++;
    tcp.drop(tp, ETIMEDOUT);
    return;
  }
  // Remember the state before the first retransmission so a spurious one can be undone.
  if (tp.t_rxtshift === 1) {
    tp.snd_cwnd_prev = tp.snd_cwnd;
    tp.snd_ssthresh_prev = tp.snd_ssthresh;
    tp.snd_recover_prev = tp.snd_recover;
    tp.t_flags = (tp.t_flags & ~(TF_WASFRECOVERY | TF_WASCRECOVERY)) | ((tp.t_flags & TF_FASTRECOVERY) !== 0 ? TF_WASFRECOVERY : 0) | ((tp.t_flags & TF_CONGRECOVERY) !== 0 ? TF_WASCRECOVERY : 0);
    tp.t_badrxtwin = tcp.ticks() + (tp.t_srtt >> (TCP_RTT_SHIFT + 1));
    tp.t_flags |= TF_PREVVALID;
  } else tp.t_flags &= ~TF_PREVVALID;
  tcp.stats[TCPS_STAT.rexmttimeo]++;
  const synState = tp.state === TCPS_SYN_SENT || tp.state === TCPS_SYN_RECEIVED;
  const rexmt = (synState ? cfg.rexmit_initial : tcpRexmtval(tp)) * tcp_backoff[tp.t_rxtshift];
  tp.t_rxtcur = tcpRangeset(tp, rexmt, tp.t_rttmin, TCPTV_REXMTMAX);
  if (tp.state === TCPS_SYN_SENT) {
    // The connection will start from one segment (cc_conn_init reads this marker).
    tp.snd_cwnd = 1;
    if (cfg.rexmit_drop_options && tp.t_rxtshift === 3) tp.t_flags &= ~(TF_REQ_SCALE | TF_REQ_TSTMP | TF_SACK_PERMIT);
    // ECN SYNs are given up after net.inet.tcp.ecn.maxretries retransmissions.
    if (tp.t_rxtshift > cfg.ecn_maxretries) tp.t_flags2 |= TF2_ECN_SYN_DISABLED;
  }
  if (tp.t_rxtshift > TCP_MAXRXTSHIFT / 4) {
    tp.t_rttvar += tp.t_srtt >> TCP_RTT_SHIFT;
    tp.t_srtt = 0;
  }
  tp.snd_nxt = tp.snd_una;
  tp.snd_recover = tp.snd_max;
  tp.t_flags |= TF_ACKNOW;
  tp.t_rtttime = 0;
  // The algorithm collapses the window (cc_cong_signal(CC_RTO)); a SYN's cwnd stays the marker above.
  if (tp.state !== TCPS_SYN_SENT) ccCongSignal(tp, -1, CC_RTO);
  else {
    EXIT_RECOVERY(tp);
    tp.t_dupacks = 0;
  }
  tcpSackClearScoreboard(tp);
  // A timeout ends whatever the last episode was; D-SACKs no longer undo it, and no probe is out.
  sackhintOf(tp).undo_valid = false;
  if (tp.rack !== null) {
    tp.rack.tlp_pending = false;
    tp.rack.tt_pto.stop();
  }
  tcp.output(tp);
}

/** The handlers, by timer index. */
const TT_HANDLERS: readonly ((tp: Tcpcb) => void)[] = [tcpTimerDelack, tcpTimerRexmt, tcpTimerPersist, tcpTimerKeep, tcpTimer2msl];
