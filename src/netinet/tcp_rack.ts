/**
 * RACK-TLP (RFC 8985): loss detection by time, and the tail loss probe.
 * FreeBSD ships it as a separate TCP stack (tcp_stacks/rack.c, chosen with
 * net.inet.tcp.functions_default=rack); slabnet keeps one stack and makes
 * RACK-TLP an option of it: net.inet.tcp.rack.enable (default 0) and
 * net.inet.tcp.rack.tlp (default 1, TLP while RACK is on).
 *
 * RACK: every (re)transmission is remembered in a per-connection ring of
 * (start, end, transmit time, flags) typed arrays, in transmit order. On
 * each ACK the segments it delivered (cumulatively or by SACK) advance
 * RACK.xmit_ts / end_seq / rtt to the most recently sent one; a segment
 * still outstanding that was sent before it by more than RACK.rtt +
 * reo_wnd is lost (RFC 8985 6.2). reo_wnd is min_RTT / 4 times a
 * multiplier that D-SACKs raise (6.2 step 4), zero while no reordering was
 * ever seen and the connection is already in recovery; a segment not yet
 * old enough arms the reordering timer for the rest. Lost bytes join the
 * SACK scoreboard (holes below the lost mark are lost for NextSeg and the
 * pipe; a lost retransmission makes its hole due again) and start recovery
 * as DupThresh would.
 *
 * TLP: while data is outstanding and no recovery runs, a probe timeout of
 * 2 * SRTT (plus the worst delayed ACK when one segment is out, at most the
 * RTO) sends one new segment, or retransmits the last one; its ACK shows a
 * tail loss (counted, and a cwnd reduction through cc as for a recovery
 * episode) or, with a D-SACK, a spurious probe.
 *
 * Timers are callouts on the connection's thread (the stack's callout
 * wheel); nothing here allocates per segment (the ring doubles when a
 * flight outgrows it). Per connection on the stack's thread; no lock;
 * never sleeps.
 */
import type { Callout } from '../kern/lwkt/callout.js';
import { SEQ_GEQ, SEQ_GT, SEQ_LEQ, SEQ_LT, seqDiff } from './tcp_seq.js';
import { TCPS_STAT } from './tcp_stats.js';
import { TCPS_ESTABLISHED } from './tcp_fsm.js';
import { TCP_RTT_SHIFT, TF_FASTRECOVERY, TF_SACK_PERMIT, TF_SENTFIN, type Tcpcb } from './tcp_var.js';
import { CC_NDUPACK, ccCongSignal, ccPostRecovery } from './cc/cc.js';
import { tcpSackRackLost } from './tcp_sack.js';
import { tcpMaxseg } from './tcp_output.js';
import { tcpTimerRexmtArm } from './tcp_timer.js';
import { tcpRackLossAct } from './tcp_input.js';

/** Segment flags in the ring. */
const R_RETRANS = 1;
const R_DELIVERED = 2;
const R_LOST = 4;
/** A later retransmission of the same bytes replaced this entry. */
const R_STALE = 8;

/** RFC 8985's WCDelAckT: the worst delayed ACK a single outstanding segment may wait for (ms). */
const TLP_WCDELACKT = 200;
/** Most the reordering window multiplier grows to from D-SACKs (RFC 8985 6.2 step 4). */
const REO_MULT_MAX = 16;
/** Recoveries after which a raised reordering window falls back (RFC 8985: 16). */
const REO_DECAY = 16;

/** The RACK-TLP state of one connection, made on its first transmission with RACK on. */
export class RackState {
  /** The transmit ring: start / end sequence, time (ms), flags; `head` the oldest, `n` entries. */
  rs: Uint32Array = new Uint32Array(64);
  re: Uint32Array = new Uint32Array(64);
  rt: Float64Array = new Float64Array(64);
  rf: Uint8Array = new Uint8Array(64);
  head = 0;
  n = 0;
  /** RACK.xmit_ts / end_seq / rtt: the most recently sent segment known delivered. */
  xmit_ts = -1;
  end_seq = 0;
  rtt = 0;
  min_rtt = Infinity;
  /** Highest end of a delivered segment, for reordering detection (RACK.fack). */
  fack = 0;
  fack_valid = false;
  reordering_seen = false;
  reo_mult = 1;
  reo_decay = 0;
  /** End of the highest segment RACK marked lost (the scoreboard's lost mark). */
  lost_end = 0;
  lost_valid = false;
  /** TLP under way: the probe's end, whether it was a retransmission, a D-SACK for it seen. */
  tlp_pending = false;
  tlp_end = 0;
  tlp_retrans = false;
  tlp_time = 0;
  readonly tt_reo: Callout;
  readonly tt_pto: Callout;
  readonly reoFn: () => void;
  readonly ptoFn: () => void;

  constructor(readonly tp: Tcpcb) {
    const w = tp.tcp.st.td.callouts;
    this.tt_reo = w.callout();
    this.tt_pto = w.callout();
    this.reoFn = () => rackReoTimeout(tp);
    this.ptoFn = () => rackPtoTimeout(tp);
  }

  stopTimers(): void {
    this.tt_reo.stop();
    this.tt_pto.stop();
  }
}

/** Is RACK on for this connection (the sysctl, and SACK to learn what was delivered)? */
export function rackOn(tp: Tcpcb): boolean {
  return tp.tcp.cfg.rack_enable !== 0 && (tp.t_flags & TF_SACK_PERMIT) !== 0;
}

function rackOf(tp: Tcpcb): RackState {
  let r = tp.rack;
  if (r === null) r = tp.rack = new RackState(tp);
  return r;
}

/** Double the ring, keeping order (rare: a larger flight than before). */
function growRing(r: RackState): void {
  const cap = r.rs.length;
  const rs = new Uint32Array(cap * 2);
  const re = new Uint32Array(cap * 2);
  const rt = new Float64Array(cap * 2);
  const rf = new Uint8Array(cap * 2);
  for (let k = 0; k < r.n; k++) {
    const i = (r.head + k) & (cap - 1);
    rs[k] = r.rs[i];
    re[k] = r.re[i];
    rt[k] = r.rt[i];
    rf[k] = r.rf[i];
  }
  r.rs = rs;
  r.re = re;
  r.rt = rt;
  r.rf = rf;
  r.head = 0;
}

/**
 * A segment [start, end) went out now (tcp_output). A retransmission makes
 * older entries of the same bytes stale: only the newest copy's time counts.
 */
export function tcpRackSent(tp: Tcpcb, start: number, end: number, retrans: boolean): void {
  const r = rackOf(tp);
  const now = tp.tcp.ticks();
  const mask0 = r.rs.length - 1;
  if (retrans) {
    for (let k = 0; k < r.n; k++) {
      const i = (r.head + k) & mask0;
      if ((r.rf[i] & R_STALE) === 0 && SEQ_LT(r.rs[i], end) && SEQ_GT(r.re[i], start)) r.rf[i] |= R_STALE;
    }
  }
  if (r.n === r.rs.length) growRing(r);
  const mask = r.rs.length - 1;
  const i = (r.head + r.n) & mask;
  r.rs[i] = start;
  r.re[i] = end;
  r.rt[i] = now;
  r.rf[i] = retrans ? R_RETRANS : 0;
  r.n++;
}

/** RACK_sent_after: was (t1, s1) sent after (t2, s2)? */
function sentAfter(t1: number, s1: number, t2: number, s2: number): boolean {
  return t1 > t2 || (t1 === t2 && SEQ_GT(s1, s2));
}

/** Are the bytes [s, e) SACKed (below snd_fack and in no hole)? Binary search over the holes. */
function sacked(tp: Tcpcb, s: number, e: number): boolean {
  const sh = tp.sackhint;
  if (sh.nholes === 0 || SEQ_GT(e, sh.fack)) return false;
  let lo = 0;
  let hi = sh.nholes;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (SEQ_LEQ(sh.he[mid], s)) lo = mid + 1;
    else hi = mid;
  }
  return lo === sh.nholes || SEQ_GEQ(sh.hs[lo], e);
}

/** RACK's reordering window (RFC 8985 6.2 step 4), ms. */
function reoWnd(tp: Tcpcb, r: RackState): number {
  if (!r.reordering_seen && (tp.t_flags & TF_FASTRECOVERY) !== 0) return 0;
  if (!Number.isFinite(r.min_rtt)) return 0;
  const srtt = tp.t_srtt >> TCP_RTT_SHIFT;
  return Math.min((r.reo_mult * r.min_rtt) / 4, srtt > 0 ? srtt : Infinity);
}

/**
 * RACK on an ACK (after tcp_sack_doack): the segments delivered advance
 * RACK's clock, then loss detection. Returns whether segments were newly
 * marked lost (the caller enters recovery or sends). `ack` is th_ack.
 */
export function tcpRackAck(tp: Tcpcb, ack: number): boolean {
  const r = tp.rack;
  if (r === null) return false;
  const now = tp.tcp.ticks();
  const mask = r.rs.length - 1;
  for (let k = 0; k < r.n; k++) {
    const i = (r.head + k) & mask;
    const f = r.rf[i];
    if ((f & (R_DELIVERED | R_STALE)) !== 0) continue;
    const s = r.rs[i];
    const e = r.re[i];
    if (!SEQ_LEQ(e, ack) && !sacked(tp, s, e)) continue;
    r.rf[i] = f | R_DELIVERED;
    const t = r.rt[i];
    const rtt = now - t;
    // A retransmission acknowledged sooner than the path allows was the original's ACK (RFC 8985 6.2 step 2).
    if ((f & R_RETRANS) !== 0 && rtt < r.min_rtt) continue;
    if (rtt < r.min_rtt) r.min_rtt = rtt;
    if (sentAfter(t, e, r.xmit_ts, r.end_seq)) {
      r.xmit_ts = t;
      r.end_seq = e;
      r.rtt = rtt;
    }
    // Delivered below what was delivered before, never retransmitted: the path reorders (step 3).
    if (r.fack_valid && SEQ_LT(e, r.fack) && (f & R_RETRANS) === 0) {
      if (!r.reordering_seen) tp.tcp.stats[TCPS_STAT.rack_reorder_seen]++;
      r.reordering_seen = true;
    } else if (!r.fack_valid || SEQ_GT(e, r.fack)) {
      r.fack = e;
      r.fack_valid = true;
    }
  }
  const lost = rackDetectLoss(tp, r, now);
  trimRing(r, ack);
  tlpAck(tp, r, ack);
  return lost;
}

/** Drop delivered, stale or cumulatively acknowledged entries from the ring's head. */
function trimRing(r: RackState, ack: number): void {
  const mask = r.rs.length - 1;
  while (r.n > 0) {
    const i = r.head;
    if ((r.rf[i] & (R_DELIVERED | R_STALE)) === 0 && !SEQ_LEQ(r.re[i], ack)) break;
    r.head = (i + 1) & mask;
    r.n--;
  }
  if (r.n === 0) r.head = 0;
}

/**
 * RACK_detect_loss (RFC 8985 6.2 step 5): every outstanding segment sent
 * before RACK.xmit_ts by more than rtt + reo_wnd is lost; the youngest
 * that is not yet arms the reordering timer. Lost bytes raise the
 * scoreboard's lost mark; a lost retransmission makes its hole due again.
 */
function rackDetectLoss(tp: Tcpcb, r: RackState, now: number): boolean {
  if (r.xmit_ts < 0) return false;
  const reo = reoWnd(tp, r);
  const mask = r.rs.length - 1;
  let lost = false;
  let wait = 0;
  for (let k = 0; k < r.n; k++) {
    const i = (r.head + k) & mask;
    const f = r.rf[i];
    if ((f & (R_DELIVERED | R_STALE | R_LOST)) !== 0) continue;
    if (!sentAfter(r.xmit_ts, r.end_seq, r.rt[i], r.re[i])) continue;
    const remaining = r.rt[i] + r.rtt + reo - now;
    if (remaining > 0) {
      if (remaining > wait) wait = remaining;
      continue;
    }
    r.rf[i] = f | R_LOST;
    lost = true;
    tp.tcp.stats[TCPS_STAT.rack_lost]++;
    if (!r.lost_valid || SEQ_GT(r.re[i], r.lost_end)) {
      r.lost_end = r.re[i];
      r.lost_valid = true;
    }
    if ((f & R_RETRANS) !== 0) holeDueAgain(tp, r.rs[i], r.re[i]);
  }
  if (wait > 0) r.tt_reo.reset(Math.ceil(wait), r.reoFn);
  else r.tt_reo.stop();
  if (lost) markScoreboard(tp, r);
  return lost;
}

/** A lost retransmission of [s, e): the hole holding it is retransmitted from its start again. */
function holeDueAgain(tp: Tcpcb, s: number, e: number): void {
  const sh = tp.sackhint;
  for (let i = 0; i < sh.nholes; i++) {
    if (SEQ_LEQ(sh.he[i], s)) continue;
    if (SEQ_GEQ(sh.hs[i], e)) break;
    if (SEQ_GT(sh.hr[i], sh.hs[i])) sh.hr[i] = SEQ_LT(s, sh.hs[i]) ? sh.hs[i] : SEQ_LT(s, sh.hr[i]) ? s : sh.hr[i];
  }
}

/** Holes below RACK's lost mark are lost for NextSeg and the pipe (recomputed by the scoreboard). */
function markScoreboard(tp: Tcpcb, r: RackState): void {
  tcpSackRackLost(tp, r.lost_end, tcpMaxseg(tp));
}

/** The reordering timer: segments waited their reo_wnd out; detect again and act. */
function rackReoTimeout(tp: Tcpcb): void {
  const r = tp.rack;
  if (r === null || tp.state < TCPS_ESTABLISHED) return;
  tp.tcp.stats[TCPS_STAT.rack_reorder_timeouts]++;
  if (rackDetectLoss(tp, r, tp.tcp.ticks())) tcpRackLossAct(tp);
}

/** A D-SACK came back: reordering is real (widen reo_wnd), and a TLP retransmission may have been spurious. */
export function tcpRackDsack(tp: Tcpcb, s: number, e: number): void {
  const r = tp.rack;
  if (r === null) return;
  if (r.reo_mult < REO_MULT_MAX) r.reo_mult++;
  r.reo_decay = REO_DECAY;
  r.reordering_seen = true;
  if (r.tlp_pending && r.tlp_retrans && SEQ_LEQ(e, r.tlp_end) && SEQ_GT(e, seqAddNeg(r.tlp_end, tp.t_maxseg))) {
    r.tlp_pending = false;
    tp.tcp.stats[TCPS_STAT.rack_tlp_spurious]++;
  }
  void s;
}

function seqAddNeg(a: number, n: number): number {
  return (a - n) >>> 0;
}

/** A recovery episode ended: a widened reordering window decays after REO_DECAY of them. */
export function tcpRackRecoveryDone(tp: Tcpcb): void {
  const r = tp.rack;
  if (r === null || r.reo_decay === 0) return;
  if (--r.reo_decay === 0) r.reo_mult = 1;
}

// -------------------------------------------------------------------- TLP

/**
 * Arm the probe timeout (RFC 8985 7.2) after new data went out or an ACK
 * came, unless recovery runs, nothing is outstanding, a probe is already
 * out, or the RTO would fire first.
 */
export function tcpRackArmPto(tp: Tcpcb): void {
  const r = tp.rack;
  if (r === null || tp.tcp.cfg.rack_tlp === 0) return;
  if (tp.state !== TCPS_ESTABLISHED || (tp.t_flags & TF_FASTRECOVERY) !== 0 || tp.snd_una === tp.snd_max || r.tlp_pending || tp.t_rxtshift > 0) {
    r.tt_pto.stop();
    return;
  }
  const srtt = tp.t_srtt >> TCP_RTT_SHIFT;
  let pto = srtt > 0 ? 2 * srtt : 1000;
  if (seqDiff(tp.snd_max, tp.snd_una) <= tp.t_maxseg) pto += TLP_WCDELACKT;
  if (pto >= tp.t_rxtcur) {
    r.tt_pto.stop();
    return;
  }
  r.tt_pto.reset(Math.max(1, Math.ceil(pto)), r.ptoFn);
}

/**
 * The probe timeout (RFC 8985 7.3): one new segment if the windows allow,
 * else the last segment again; then the RTO covers it. Counted as FreeBSD's
 * rack counts probes (tlp_new / tlp_retran).
 */
function rackPtoTimeout(tp: Tcpcb): void {
  const r = tp.rack;
  if (r === null || tp.state !== TCPS_ESTABLISHED || (tp.t_flags & TF_FASTRECOVERY) !== 0 || tp.snd_una === tp.snd_max) return;
  const tcp = tp.tcp;
  const maxseg = tp.t_maxseg;
  const flight = seqDiff(tp.snd_max, tp.snd_una);
  const unsent = tp.so_snd.cc - flight;
  const ocwnd = tp.snd_cwnd;
  const omax = tp.snd_max;
  if (unsent > 0 && tp.snd_wnd > flight && (tp.t_flags & TF_SENTFIN) === 0) {
    // New data: one segment past cwnd.
    tp.snd_cwnd = flight + maxseg;
    tcp.output(tp);
    tp.snd_cwnd = ocwnd;
  }
  if (tp.snd_max !== omax) {
    r.tlp_retrans = false;
    tcp.stats[TCPS_STAT.rack_tlp_new]++;
  } else {
    // The last segment (with the FIN if it carried one) again.
    const onxt = tp.snd_nxt;
    const fin = (tp.t_flags & TF_SENTFIN) !== 0 ? 1 : 0;
    const len = Math.min(maxseg, flight - fin);
    tp.snd_nxt = (tp.snd_max - fin - Math.max(len, 0)) >>> 0;
    tp.snd_cwnd = flight + maxseg;
    tcp.output(tp);
    tp.snd_cwnd = ocwnd;
    if (SEQ_GT(onxt, tp.snd_nxt)) tp.snd_nxt = onxt;
    r.tlp_retrans = true;
    tcp.stats[TCPS_STAT.rack_tlp_retran]++;
  }
  r.tlp_pending = true;
  r.tlp_end = tp.snd_max;
  r.tlp_time = tcp.ticks();
  tcpTimerRexmtArm(tp);
}

/**
 * TLP loss detection (RFC 8985 7.4): the ACK of a retransmitted probe
 * repaired a tail loss, which is a congestion signal: cc reduces as for a
 * one-ACK recovery episode. An ACK sooner than min_RTT after the probe
 * answers the original (the probe was spurious, as its D-SACK will say);
 * new data probes only end the probe.
 */
function tlpAck(tp: Tcpcb, r: RackState, ack: number): void {
  if (!r.tlp_pending || !SEQ_GEQ(ack, r.tlp_end)) return;
  r.tlp_pending = false;
  if (!r.tlp_retrans) return;
  if (tp.tcp.ticks() - r.tlp_time < r.min_rtt) {
    tp.tcp.stats[TCPS_STAT.rack_tlp_spurious]++;
    return;
  }
  tp.tcp.stats[TCPS_STAT.rack_tlp_recovered]++;
  if ((tp.t_flags & TF_FASTRECOVERY) !== 0) return;
  ccCongSignal(tp, ack, CC_NDUPACK);
  ccPostRecovery(tp, ack);
}
