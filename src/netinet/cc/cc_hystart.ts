/**
 * HyStart++ (RFC 9406; FreeBSD 14's CC_NEWRENO_HYSTART_* / CUBICFLAG_HYSTART_*
 * logic of cc_newreno.c and cc_cubic.c, tunables in cc.c): a modified slow
 * start shared by NewReno and CUBIC.
 *
 * Per round (an RTT: an ACK passes the snd_max of the round's start, cc.ts
 * ccNewRound) the minimum of its RTT samples is kept. Once a round has
 * net.inet.tcp.cc.hystartplusplus.n_rttsamples of them, an ACK whose
 * round minimum so far is at least last round's minimum plus
 * clamp(last / 8, minrtt_thresh, maxrtt_thresh) (a queue is building at the
 * bottleneck) moves slow start into Conservative Slow Start: growth is
 * divided by css_growth_div. An RTT
 * below the minimum that started CSS means the entry was spurious: back to
 * slow start. After css_rounds rounds in CSS, ssthresh = cwnd: congestion
 * avoidance, before the loss that plain slow start would have run into.
 * A loss or an ECN echo ends HyStart++ for the connection (recovery sets
 * ssthresh); an idle restart (after_idle) allows it again.
 *
 * Only connections with CCF_HYSTART_ALLOWED use it (set at connection
 * start from net.inet.tcp.cc.hystartplusplus.allowed, default 0: FreeBSD
 * 14's default stack never sets that flag, only RACK does on request, so
 * the default behaves as FreeBSD's).
 *
 * RTTs are in microseconds (our samples are whole ms ticks, times 1000).
 * One HystartData per connection, inside the algorithm's cc_data; nothing
 * allocated per ACK. Stack thread; no lock; never sleeps.
 */
import type { TcpConfig } from '../tcp_tunables.js';
import { CCF_HYSTART_ALLOWED, type CcVar } from './cc.js';

/** The connection may still use HyStart++ (a loss or ECN echo clears it). */
export const HYSTART_ENABLED = 0x0002;
/** In Conservative Slow Start. */
export const HYSTART_IN_CSS = 0x0004;
/** "No sample yet" for the round minima. */
export const HYSTART_INF = 0xffffffff;

/** One connection's HyStart++ state (struct newreno's / struct cubic's css_* fields). */
export class HystartData {
  flags = HYSTART_ENABLED;
  baseline_minrtt = HYSTART_INF;
  current_round_minrtt = HYSTART_INF;
  lastround_minrtt = HYSTART_INF;
  rttsample_count = 0;
  entered_at_round = 0;
  current_round = 0;
  /** Times this connection entered CSS, and left slow start from CSS (for tests and TCP_INFO-like reads). */
  css_entries = 0;
  css_exits = 0;
}

/** Whether this connection runs HyStart++ now (allowed, not switched off by a loss). */
function active(ccv: CcVar, h: HystartData): boolean {
  return (ccv.flags & CCF_HYSTART_ALLOWED) !== 0 && (h.flags & HYSTART_ENABLED) !== 0;
}

/**
 * newround: a new round starts. The last round's minimum is the reference
 * for this one; CSS that has lasted css_rounds rounds ends slow start
 * (ssthresh = cwnd), and HyStart++ is done until an idle restart.
 */
export function hystartNewRound(ccv: CcVar, h: HystartData, round: number): void {
  const cfg = ccv.tp.tcp.cfg;
  h.lastround_minrtt = h.current_round_minrtt;
  h.current_round_minrtt = HYSTART_INF;
  h.rttsample_count = 0;
  h.current_round = round;
  if ((h.flags & HYSTART_IN_CSS) !== 0 && ((round - h.entered_at_round) >>> 0) >= cfg.hystart_css_rounds) {
    ccv.tp.snd_ssthresh = ccv.tp.snd_cwnd;
    h.flags &= ~(HYSTART_IN_CSS | HYSTART_ENABLED);
    h.css_exits++;
  }
}

/**
 * rttsample: one RTT sample (usec) of the current round; `rxtcnt` > 1 is a
 * retransmitted segment's, ambiguous, not used. In CSS a sample below the
 * baseline (once the round has its n_rttsamples) undoes the CSS entry.
 */
export function hystartRttSample(ccv: CcVar, h: HystartData, usecRtt: number, rxtcnt: number): void {
  if (rxtcnt > 1 || !active(ccv, h)) return;
  h.rttsample_count++;
  if (usecRtt < h.current_round_minrtt) h.current_round_minrtt = usecRtt;
  if (
    (h.flags & HYSTART_IN_CSS) !== 0 &&
    h.rttsample_count >= ccv.tp.tcp.cfg.hystart_n_rttsamples &&
    h.current_round_minrtt < h.baseline_minrtt &&
    h.lastround_minrtt !== HYSTART_INF
  ) {
    h.flags &= ~HYSTART_IN_CSS;
    h.baseline_minrtt = HYSTART_INF;
  }
}

/** The RTT rise that counts as a queue building: clamp(last round's minimum / 8, minrtt_thresh, maxrtt_thresh). */
export function hystartRttThresh(cfg: TcpConfig, lastMin: number): number {
  return Math.min(Math.max(lastMin >>> 3, cfg.hystart_minrtt_thresh), cfg.hystart_maxrtt_thresh);
}

/**
 * The slow-start ACK's part: maybe enter CSS (the round's minimum rose by
 * the threshold over the last round's), then the increment to apply:
 * `incr`, or incr / css_growth_div in CSS.
 */
export function hystartSlowStartIncr(ccv: CcVar, h: HystartData, incr: number): number {
  if (!active(ccv, h)) return incr;
  const cfg = ccv.tp.tcp.cfg;
  if (
    (h.flags & HYSTART_IN_CSS) === 0 &&
    h.rttsample_count >= cfg.hystart_n_rttsamples &&
    h.current_round_minrtt !== HYSTART_INF &&
    h.lastround_minrtt !== HYSTART_INF &&
    h.current_round_minrtt >= h.lastround_minrtt + hystartRttThresh(cfg, h.lastround_minrtt)
  ) {
    h.flags |= HYSTART_IN_CSS;
    h.baseline_minrtt = h.current_round_minrtt;
    h.entered_at_round = h.current_round;
    h.css_entries++;
  }
  return (h.flags & HYSTART_IN_CSS) !== 0 ? Math.floor(incr / cfg.hystart_css_growth_div) : incr;
}

/** Congestion avoidance was reached while in CSS (cwnd passed ssthresh): HyStart++ is done. */
export function hystartLeftSlowStart(h: HystartData): void {
  if ((h.flags & HYSTART_IN_CSS) !== 0) h.flags &= ~(HYSTART_IN_CSS | HYSTART_ENABLED);
}

/** A loss or ECN echo: recovery takes over; no HyStart++ until an idle restart. */
export function hystartCongestion(h: HystartData): void {
  h.flags &= ~(HYSTART_IN_CSS | HYSTART_ENABLED);
}

/** After an idle restart slow start runs again, with HyStart++. */
export function hystartAfterIdle(h: HystartData): void {
  if ((h.flags & HYSTART_ENABLED) === 0) {
    h.flags &= ~HYSTART_IN_CSS;
    h.flags |= HYSTART_ENABLED;
  }
}
