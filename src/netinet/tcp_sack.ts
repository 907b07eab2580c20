/**
 * SACK (RFC 2018) and D-SACK (RFC 2883), tcp_sack.c.
 *
 * Receiver side: the list of blocks to report (sackblks), most recent
 * first, updated on every out-of-order arrival (tcp_update_sack_list) and
 * trimmed as rcv_nxt advances; a one-shot D-SACK block for duplicate data
 * goes in front of them in the next ACK.
 *
 * Sender side (RFC 6675 as FreeBSD's tcp_sack.c keeps it): the scoreboard
 * of holes, the unSACKed ranges between the cumulative ACK and the highest
 * SACKed byte (snd_fack), each with the next byte to retransmit (rxmit), in
 * three typed arrays per connection (sackhole's start / end / rxmit, grown
 * by doubling up to net.inet.tcp.sack.maxholes, never one object per hole).
 * tcp_sack_doack folds each ACK's blocks in and derives what the recovery
 * code needs: sacked_bytes, sack_bytes_rexmit, the holes RFC 6675's IsLost
 * calls lost and their bytes, the data this ACK delivered, and D-SACK
 * blocks (RFC 2883) reported back to us (counted, and handed to the
 * caller, which undoes a reduction that only spurious retransmissions
 * caused and widens RACK's reordering window).
 *
 * Per connection on the stack's thread; no lock; never sleeps.
 */
import { SEQ_GEQ, SEQ_GT, SEQ_LEQ, SEQ_LT, seqDiff } from './tcp_seq.js';
import type { Tcpcb } from './tcp_var.js';
import { TOF_SACK, type TcpOpt } from '../wire/tcp.js';
import { TF_ACKNOW, TF_FASTRECOVERY, TF_SACK_PERMIT, TF_SENTFIN } from './tcp_var.js';
import { TCPS_STAT } from './tcp_stats.js';
import { tcpPrrAck, tcpPrrStart } from './tcp_prr.js';
import { CC_NDUPACK, ENTER_RECOVERY, EXIT_RECOVERY, ccCongSignal } from './cc/cc.js';
import { TT_REXMT, tcpTimerStop } from './tcp_timer.js';

const MAX_SACK_BLKS = 4;
/** tcprexmtthresh: RFC 6675's DupThresh. */
export const TCP_DUPTHRESH = 3;

/** What an ACK did to the scoreboard (FreeBSD's sackstatus_t). */
export const SACK_NOCHANGE = 0;
export const SACK_CHANGE = 1;
/** A new hole appeared, or more of the scoreboard became lost: further loss (PRR is conservative then). */
export const SACK_NEWLOSS = 2;

const NOHOLES = new Uint32Array(0);

/**
 * The sender's SACK state of one connection (FreeBSD's snd_holes, snd_fack
 * and struct sackhint), plus PRR's and the undo's per-episode numbers. One
 * per tcpcb, made with it; the hole arrays are allocated on the first hole.
 */
export class SackHint {
  /** Holes ordered by sequence: [hs, he) unSACKed, hr the next byte to retransmit (hs <= hr <= he). */
  hs = NOHOLES;
  he = NOHOLES;
  hr = NOHOLES;
  /** snd_max when the hole's retransmission was completed: SACKs above it mean that retransmission was lost. */
  hx = NOHOLES;
  nholes = 0;
  /** snd_fack: one past the highest SACKed byte (meaningful while holes exist). */
  fack = 0;
  /** The cumulative ACK of the last tcp_sack_doack (snd_una may not have caught up yet). */
  ack = 0;
  /** Bytes SACKed above the cumulative ACK. */
  sacked_bytes = 0;
  /** Bytes of the holes retransmitted (sum of hr - hs). */
  sack_bytes_rexmit = 0;
  /** Bytes of the holes RFC 6675's IsLost() calls lost, and the highest lost hole (-1: none). */
  lost_bytes = 0;
  lost_idx = -1;
  /** RACK's lost mark (tcp_rack.ts): holes starting below it are lost too. */
  rack_lost_end = 0;
  rack_lost_valid = false;
  /** Bytes the last ACK delivered (cumulatively or by SACK). */
  delivered_data = 0;
  /** delivered_data when this ACK went through tcp_sack_doack, else -1 (tcp_input resets it per ACK). */
  ack_delivered = -1;
  /** PRR (RFC 6937): delivered and sent since recovery began, and the flight size then. */
  prr_delivered = 0;
  prr_out = 0;
  recover_fs = 0;
  /** The recovery episode under way is SACK-based (RFC 6675), not NewReno. */
  sackrec = false;
  /** The rescue retransmission (RFC 6675 rule 4) of this episode was made. */
  rescue = false;
  /** Undo of a spurious recovery: cwnd / ssthresh before it, and its retransmitted vs D-SACKed bytes. */
  undo_valid = false;
  undo_cwnd = 0;
  undo_ssthresh = 0;
  undo_una = 0;
  undo_recover = 0;
  undo_rexmit = 0;
  undo_dsacked = 0;
  /** The undo came while the episode was still under way: restore cwnd when it ends. */
  undo_at_exit = false;
}

/** The scoreboard of every connection that never wrote one: initial values, frozen (a stray write throws). */
export const SACKHINT_NONE: Readonly<SackHint> = Object.freeze(new SackHint());

/**
 * The connection's own SackHint for writing, made on the first call (the
 * first SACK, recovery or RTO); the same initial values SACKHINT_NONE reads.
 */
export function sackhintOf(tp: Tcpcb): SackHint {
  let sh = tp.sackhint;
  if (sh === SACKHINT_NONE) tp.sackhint = sh = new SackHint();
  return sh as SackHint;
}

/** Scratch for one ACK's blocks, sorted (no array per ACK). */
const BLK = new Uint32Array(2 * (MAX_SACK_BLKS + 1));

/** tcp_update_sack_list: the segment [start, end) arrived out of order (or was a duplicate). */
export function tcpUpdateSackList(tp: Tcpcb, start: number, end: number): void {
  // The first out-of-order arrival makes the block array (idle connections have none).
  if (tp.sackblks.length === 0) tp.sackblks = new Uint32Array(2 * MAX_SACK_BLKS);
  const b = tp.sackblks;
  let hs = start;
  let he = end;
  // Saved blocks, kept in arrival order; merged ones are folded into the head.
  const saved = SAVED;
  let ns = 0;
  for (let i = 0; i < tp.rcv_numsacks; i++) {
    const s = b[2 * i];
    const e = b[2 * i + 1];
    if (SEQ_GEQ(s, e) || SEQ_LEQ(s, tp.rcv_nxt)) continue;
    if (SEQ_LEQ(hs, e) && SEQ_GEQ(he, s)) {
      if (SEQ_GT(hs, s)) hs = s;
      if (SEQ_LT(he, e)) he = e;
    } else {
      saved[2 * ns] = s;
      saved[2 * ns + 1] = e;
      ns++;
    }
  }
  let n = 0;
  if (SEQ_GT(hs, tp.rcv_nxt)) {
    b[0] = hs;
    b[1] = he;
    n = 1;
  }
  for (let i = 0; i < ns && n < MAX_SACK_BLKS; i++, n++) {
    b[2 * n] = saved[2 * i];
    b[2 * n + 1] = saved[2 * i + 1];
  }
  tp.rcv_numsacks = n;
}
const SAVED = new Uint32Array(2 * MAX_SACK_BLKS);

/** Drop blocks at or below rcv_nxt (after it advanced). */
export function tcpSackTrim(tp: Tcpcb): void {
  const b = tp.sackblks;
  let n = 0;
  for (let i = 0; i < tp.rcv_numsacks; i++) {
    if (SEQ_LEQ(b[2 * i + 1], tp.rcv_nxt)) continue;
    if (SEQ_LT(b[2 * i], tp.rcv_nxt)) b[2 * i] = tp.rcv_nxt;
    b[2 * n] = b[2 * i];
    b[2 * n + 1] = b[2 * i + 1];
    n++;
  }
  tp.rcv_numsacks = n;
}

/** Record a D-SACK block (duplicate data [start, end)) for the next ACK. */
export function tcpSetDsack(tp: Tcpcb, start: number, end: number): void {
  if (SEQ_LT(start, end)) {
    tp.dsack_start = start;
    tp.dsack_end = end;
  }
}


/** tcp_clean_sackreport + the scoreboard: forget all SACK state. */
export function tcpSackClear(tp: Tcpcb): void {
  tp.rcv_numsacks = 0;
  tp.dsack_start = tp.dsack_end = 0;
  // A connection that never had a scoreboard is being torn down: nothing to clear, none to make.
  if (tp.sackhint !== SACKHINT_NONE) tcpSackClearScoreboard(tp);
}

/** tcp_free_sackholes: drop every hole (the arrays stay for the next episode). */
export function tcpSackClearScoreboard(tp: Tcpcb): void {
  const sh = sackhintOf(tp);
  tp.tcp.sack_globalholes -= sh.nholes;
  sh.nholes = 0;
  sh.sackrec = false;
  sh.sacked_bytes = sh.sack_bytes_rexmit = sh.lost_bytes = 0;
  sh.lost_idx = -1;
  sh.rack_lost_valid = false;
  sh.fack = tp.snd_una;
  sh.ack = tp.snd_una;
}

/**
 * tcp_sackhole_insert: a hole [start, end) at index i. Fails (counted as
 * "SACK scoreboard overflow") past net.inet.tcp.sack.maxholes for the
 * connection or sack.globalmaxholes for the stack.
 */
function holeInsert(tp: Tcpcb, i: number, start: number, end: number, rxmit: number): boolean {
  const sh = sackhintOf(tp);
  const tcp = tp.tcp;
  if (sh.nholes >= tcp.cfg.sack_maxholes || tcp.sack_globalholes >= tcp.cfg.sack_globalmaxholes) {
    tcp.stats[TCPS_STAT.sack_sboverflow]++;
    return false;
  }
  if (sh.nholes === sh.hs.length) growHoles(sh);
  const n = sh.nholes;
  sh.hs.copyWithin(i + 1, i, n);
  sh.he.copyWithin(i + 1, i, n);
  sh.hr.copyWithin(i + 1, i, n);
  sh.hx.copyWithin(i + 1, i, n);
  sh.hs[i] = start;
  sh.he[i] = end;
  sh.hr[i] = rxmit;
  sh.hx[i] = tp.snd_max;
  sh.nholes = n + 1;
  tcp.sack_globalholes++;
  return true;
}

/** Double the hole arrays (rare: the first hole, or a scoreboard longer than ever before). */
function growHoles(sh: SackHint): void {
  const cap = Math.max(8, sh.hs.length * 2);
  const hs = new Uint32Array(cap);
  const he = new Uint32Array(cap);
  const hr = new Uint32Array(cap);
  const hx = new Uint32Array(cap);
  hs.set(sh.hs);
  he.set(sh.he);
  hr.set(sh.hr);
  hx.set(sh.hx);
  sh.hs = hs;
  sh.he = he;
  sh.hr = hr;
  sh.hx = hx;
}

/** tcp_sackhole_remove: holes [i, i + count). */
function holeRemove(tp: Tcpcb, i: number, count: number): void {
  const sh = sackhintOf(tp);
  const n = sh.nholes;
  sh.hs.copyWithin(i, i + count, n);
  sh.he.copyWithin(i, i + count, n);
  sh.hr.copyWithin(i, i + count, n);
  sh.hx.copyWithin(i, i + count, n);
  sh.nholes = n - count;
  tp.tcp.sack_globalholes -= count;
}

/**
 * tcp_sack_doack: fold an ACK into the scoreboard. The cumulative ACK
 * removes or trims the holes below it; each valid block (above snd_una and
 * th_ack, within snd_max) either lies above snd_fack (a new hole up to it)
 * or removes, trims or splits the holes it covers. A first block below the
 * ACK or inside the second is a D-SACK (RFC 2883): counted and handed to
 * onDsack, never merged. Then sacked_bytes, sack_bytes_rexmit, lost_bytes
 * (RFC 6675 IsLost with net.inet.tcp.sack.revised; else no hole counts as
 * lost in the pipe) and delivered_data are recomputed. Returns SACK_*.
 * Stack thread; never sleeps; no allocation but the rare hole-array growth.
 */
export function tcpSackDoack(tp: Tcpcb, to: TcpOpt, thAck: number, maxseg: number, onDsack: ((tp: Tcpcb, s: number, e: number) => void) | null): number {
  const sh = sackhintOf(tp);
  const tcp = tp.tcp;
  const base = SEQ_GT(thAck, tp.snd_una) ? thAck : tp.snd_una;
  const oldSacked = sh.sacked_bytes;
  const oldLost = sh.lost_bytes;
  const oldHoles = sh.nholes;
  let changed = SEQ_GT(thAck, sh.ack) && sh.nholes > 0;
  let newloss = false;
  sh.ack = base;
  // Blocks of this ACK, D-SACK aside, sorted by start (at most 4: insertion sort).
  let nb = 0;
  const n = (to.flags & TOF_SACK) !== 0 ? to.nsacks : 0;
  for (let i = 0; i < n; i++) {
    const s = to.sacks[2 * i];
    const e = to.sacks[2 * i + 1];
    if (i === 0 && SEQ_LT(s, e) && (SEQ_LEQ(e, thAck) || (n > 1 && SEQ_GEQ(s, to.sacks[2]) && SEQ_LEQ(e, to.sacks[3])))) {
      tcp.stats[TCPS_STAT.dsack_count]++;
      tcp.stats[TCPS_STAT.dsack_bytes] += seqDiff(e, s);
      if (onDsack !== null) onDsack(tp, s, e);
      continue;
    }
    if (!(SEQ_GT(e, s) && SEQ_GT(s, tp.snd_una) && SEQ_GT(s, thAck) && SEQ_LT(s, tp.snd_max) && SEQ_LEQ(e, tp.snd_max))) continue;
    tcp.stats[TCPS_STAT.sack_rcv_blocks]++;
    let k = nb++;
    while (k > 0 && SEQ_GT(BLK[2 * (k - 1)], s)) {
      BLK[2 * k] = BLK[2 * (k - 1)];
      BLK[2 * k + 1] = BLK[2 * (k - 1) + 1];
      k--;
    }
    BLK[2 * k] = s;
    BLK[2 * k + 1] = e;
  }
  cumAck(tp, base);
  if (sh.nholes === 0) sh.fack = base;
  for (let b = 0; b < nb; b++) {
    const s = BLK[2 * b];
    const e = BLK[2 * b + 1];
    if (SEQ_LT(sh.fack, s)) {
      // Beyond everything SACKed so far: the gap below it is a new hole.
      if (!holeInsert(tp, sh.nholes, sh.fack, s, sh.fack)) continue;
      sh.fack = e;
      newloss = true;
      changed = true;
      continue;
    }
    if (SEQ_LT(sh.fack, e)) {
      sh.fack = e;
      changed = true;
    }
    if (sackCover(tp, s, e)) changed = true;
  }
  // A scoreboard without holes has nothing to tell: forget what lies above the ACK.
  if (sh.nholes === 0) sh.fack = base;
  sackRecount(tp, base, maxseg);
  sh.delivered_data = seqDiff(base, tp.snd_una) + sh.sacked_bytes - oldSacked;
  if (sh.delivered_data < 0) sh.delivered_data = seqDiff(base, tp.snd_una);
  sh.ack_delivered = sh.delivered_data;
  if (sh.nholes > oldHoles || sh.lost_bytes > oldLost) newloss = true;
  return newloss ? SACK_NEWLOSS : changed ? SACK_CHANGE : SACK_NOCHANGE;
}

/** The cumulative ACK at `ack`: holes below it go, the first one is trimmed. */
function cumAck(tp: Tcpcb, ack: number): void {
  const sh = tp.sackhint;
  let drop = 0;
  while (drop < sh.nholes && SEQ_LEQ(sh.he[drop], ack)) drop++;
  if (drop > 0) holeRemove(tp, 0, drop);
  if (sh.nholes > 0 && SEQ_LT(sh.hs[0], ack)) {
    sh.hs[0] = ack;
    if (SEQ_LT(sh.hr[0], ack)) sh.hr[0] = ack;
  }
}

/** A SACK block [s, e) at or below snd_fack: remove, trim or split the holes it covers. Returns whether any changed. */
function sackCover(tp: Tcpcb, s: number, e: number): boolean {
  const sh = tp.sackhint;
  let changed = false;
  let i = 0;
  while (i < sh.nholes && SEQ_LEQ(sh.he[i], s)) i++;
  while (i < sh.nholes && SEQ_LT(sh.hs[i], e)) {
    const hs = sh.hs[i];
    const he = sh.he[i];
    changed = true;
    if (SEQ_LEQ(s, hs)) {
      if (SEQ_GEQ(e, he)) {
        holeRemove(tp, i, 1);
        continue;
      }
      // The block covers the hole's front.
      sh.hs[i] = e;
      if (SEQ_LT(sh.hr[i], e)) sh.hr[i] = e;
      break;
    }
    if (SEQ_GEQ(e, he)) {
      // The block covers the hole's back.
      sh.he[i] = s;
      if (SEQ_GT(sh.hr[i], s)) sh.hr[i] = s;
      i++;
      continue;
    }
    // Inside the hole: split it (kept whole when the scoreboard is full: we may retransmit SACKed data, never skip lost data).
    const r = sh.hr[i];
    if (!holeInsert(tp, i + 1, e, he, SEQ_GT(r, e) ? r : e)) return changed;
    sh.hx[i + 1] = sh.hx[i];
    sh.he[i] = s;
    if (SEQ_GT(r, s)) sh.hr[i] = s;
    break;
  }
  return changed;
}

/**
 * Recompute the scoreboard's sums: sacked_bytes, sack_bytes_rexmit and,
 * walking down from the highest hole, which holes IsLost() calls lost: a
 * hole with more than (DupThresh - 1) * SMSS SACKed bytes above it (RFC
 * 6675 4), and every hole below such a one. In recovery the first hole is
 * lost too (it was presumed so to enter). O(holes).
 */
export function sackRecount(tp: Tcpcb, base: number, maxseg: number): void {
  const sh = sackhintOf(tp);
  const n = sh.nholes;
  let holes = 0;
  let rexmit = 0;
  let lostIdx = -1;
  const limit = (TCP_DUPTHRESH - 1) * maxseg;
  for (let i = n - 1; i >= 0; i--) {
    if (lostIdx < 0 && seqDiff(sh.fack, sh.he[i]) - holes > limit) lostIdx = i;
    holes += seqDiff(sh.he[i], sh.hs[i]);
    rexmit += seqDiff(sh.hr[i], sh.hs[i]);
  }
  if (n > 0 && lostIdx < 0 && (tp.t_flags & TF_FASTRECOVERY) !== 0) lostIdx = 0;
  // RACK's time-based losses (tcp_rack.ts) reach further than the byte count may.
  if (sh.rack_lost_valid) while (lostIdx + 1 < n && SEQ_LT(sh.hs[lostIdx + 1], sh.rack_lost_end)) lostIdx++;
  let lost = 0;
  for (let i = 0; i <= lostIdx; i++) lost += seqDiff(sh.he[i], sh.hs[i]);
  sh.sacked_bytes = n > 0 ? seqDiff(sh.fack, base) - holes : 0;
  sh.sack_bytes_rexmit = rexmit;
  sh.lost_idx = tp.tcp.cfg.sack_revised !== 0 ? lostIdx : n - 1;
  sh.lost_bytes = tp.tcp.cfg.sack_revised !== 0 ? lost : 0;
}

/**
 * tcp_compute_pipe (RFC 6675 SetPipe): the bytes still in the network:
 * what is outstanding above the cumulative ACK, less what was SACKed and
 * what is lost, plus what was retransmitted.
 */
export function tcpComputePipe(tp: Tcpcb): number {
  const sh = tp.sackhint;
  const una = SEQ_GT(sh.ack, tp.snd_una) && SEQ_LEQ(sh.ack, tp.snd_max) ? sh.ack : tp.snd_una;
  const p = seqDiff(tp.snd_max, una) - sh.sacked_bytes - sh.lost_bytes + sh.sack_bytes_rexmit;
  return p > 0 ? p : 0;
}

/**
 * tcp_sack_output (RFC 6675 NextSeg): the hole to retransmit from next, or
 * -1. Rule 1: the lowest hole not yet fully retransmitted that IsLost()
 * calls lost; rule 3 (`noNewData`: nothing new can be sent): the lowest
 * such hole even if not lost.
 */
export function tcpSackOutput(tp: Tcpcb, noNewData: boolean): number {
  const sh = tp.sackhint;
  for (let i = 0; i < sh.nholes; i++) {
    if (SEQ_GEQ(sh.hr[i], sh.he[i])) continue;
    return i <= sh.lost_idx || noNewData ? i : -1;
  }
  return -1;
}

/** A retransmission of len bytes from hole i's rxmit went out. */
export function tcpSackRxmitSent(tp: Tcpcb, i: number, len: number): void {
  const sh = sackhintOf(tp);
  sh.hr[i] = (sh.hr[i] + len) >>> 0;
  if (SEQ_GEQ(sh.hr[i], sh.he[i])) sh.hx[i] = tp.snd_max;
  sh.sack_bytes_rexmit += len;
  sh.undo_rexmit += len;
}

/**
 * The rescue retransmission (RFC 6675 NextSeg rule 4, placed as FreeBSD's
 * tcp_sack_partialack does): a partial ACK left no hole, the ACK delivered
 * data and recovery is not over, so the tail of the flight up to the
 * recovery point (FIN excluded) may be lost with nothing left to SACK it:
 * make one segment of it a hole. Once per episode.
 */
export function tcpSackRescue(tp: Tcpcb, ack: number, maxseg: number, sentFin: boolean): void {
  const sh = sackhintOf(tp);
  if (sh.rescue || sh.nholes !== 0 || sh.delivered_data <= 0 || !SEQ_LT(ack, tp.snd_recover)) return;
  let high = sentFin ? (tp.snd_max - 1) >>> 0 : tp.snd_max;
  if (SEQ_GT(high, tp.snd_recover)) high = tp.snd_recover;
  if (!SEQ_LT(ack, high)) return;
  const start = seqDiff(high, ack) > maxseg ? (high - maxseg) >>> 0 : ack;
  // The hole spans [ack, high) so the pipe stays right; only its last segment is due (rxmit starts there).
  if (!holeInsert(tp, 0, ack, high, start)) return;
  sh.rescue = true;
  sh.fack = high;
  tp.tcp.stats[TCPS_STAT.sack_rescue]++;
  sackRecount(tp, ack, maxseg);
  // The rescue hole is retransmitted whether or not IsLost() says so.
  sh.lost_idx = 0;
}

// ---------------------------------------------------------------- recovery

/**
 * Remember what a recovery episode is about to change (cwnd, ssthresh,
 * its span), before cc_cong_signal reduces: if D-SACK later shows every
 * retransmission of the episode was unneeded, tcpSackDsackUndo puts
 * them back. Called on entering fast recovery (SACK or NewReno).
 */
export function tcpSackUndoSave(tp: Tcpcb): void {
  const sh = sackhintOf(tp);
  sh.undo_valid = (tp.t_flags & TF_SACK_PERMIT) !== 0;
  sh.undo_cwnd = tp.snd_cwnd;
  sh.undo_ssthresh = tp.snd_ssthresh;
  sh.undo_una = tp.snd_una;
  sh.undo_recover = tp.snd_max;
  sh.undo_rexmit = 0;
  sh.undo_dsacked = 0;
  sh.undo_at_exit = false;
}

/**
 * Enter SACK recovery (RFC 6675 5, FreeBSD's enter_recov with SACK): the
 * first hole is lost by definition, PRR starts from the flight, and the
 * fast retransmit goes out at once (PRR's first sndcnt, or cwnd = pipe +
 * one segment without PRR; cwnd = ssthresh after it then). The caller has
 * set TF_FASTRECOVERY, snd_recover and ssthresh.
 */
export function tcpSackEnterRecovery(tp: Tcpcb, sackChanged: number, maxseg: number): void {
  const sh = sackhintOf(tp);
  sh.sackrec = true;
  sh.rescue = false;
  sackRecount(tp, sh.ack, maxseg);
  if (tp.tcp.cfg.do_prr !== 0) {
    tcpPrrStart(tp);
    tcpPrrAck(tp, sackChanged, maxseg);
    tp.tcp.output(tp);
    return;
  }
  tp.snd_cwnd = Math.max(tp.snd_ssthresh, tcpComputePipe(tp) + maxseg);
  tp.tcp.output(tp);
  tp.snd_cwnd = tp.snd_ssthresh;
}

/**
 * tcp_sack_lost_retransmission: RFC 6675 cannot see a retransmission
 * lost again; FreeBSD infers it when data sent after the first hole's
 * retransmission is SACKed while that hole is still missing. Here each
 * hole remembers snd_max when its retransmission completed (hx), so any
 * hole whose retransmission is overtaken that way becomes due again
 * (FIFO path assumed, as FreeBSD does), and the episode restarts as a new congestion signal
 * (cc reduces once more; PRR starts from the flight). Returns whether so.
 */
function sackLostRexmt(tp: Tcpcb, ack: number, maxseg: number): boolean {
  const sh = sackhintOf(tp);
  let lost = false;
  for (let i = 0; i < sh.nholes; i++) {
    if (SEQ_LT(sh.hr[i], sh.he[i]) || !SEQ_GT(sh.fack, sh.hx[i])) continue;
    sh.hr[i] = sh.hs[i];
    lost = true;
  }
  if (!lost) return false;
  tp.tcp.stats[TCPS_STAT.sack_lostrexmt]++;
  EXIT_RECOVERY(tp);
  ccCongSignal(tp, ack, CC_NDUPACK);
  ENTER_RECOVERY(tp);
  tp.snd_recover = tp.snd_max;
  // The tail guess of a rescue would now cover data sent after these retransmissions: none in this episode.
  sh.rescue = true;
  sackRecount(tp, sh.ack, maxseg);
  if (tp.tcp.cfg.do_prr !== 0) tcpPrrStart(tp);
  return true;
}

/**
 * A duplicate ACK during SACK recovery: PRR sets cwnd for what it may let
 * out (without PRR cwnd stays ssthresh, RFC 6675's rule), then send.
 */
export function tcpSackRecoveryAck(tp: Tcpcb, ack: number, sackChanged: number, maxseg: number): void {
  if (sackLostRexmt(tp, ack, maxseg)) sackChanged = SACK_NEWLOSS;
  if (tp.tcp.cfg.do_prr !== 0) tcpPrrAck(tp, sackChanged, maxseg);
  else tp.snd_cwnd = tp.snd_ssthresh;
  tp.tcp.output(tp);
}

/**
 * tcp_sack_partialack: an ACK that advanced snd_una but not to the
 * recovery point. The retransmission timer restarts with the next send;
 * the rescue retransmission may be due; PRR (or cwnd = ssthresh) decides
 * how much goes out, and an ACK goes with it. snd_una has not moved yet.
 */
export function tcpSackPartialAck(tp: Tcpcb, ack: number, sackChanged: number, maxseg: number): void {
  tcpTimerStop(tp, TT_REXMT);
  tp.t_rtttime = 0;
  tcpSackRescue(tp, ack, maxseg, (tp.t_flags & TF_SENTFIN) !== 0);
  if (sackLostRexmt(tp, ack, maxseg)) sackChanged = SACK_NEWLOSS;
  if (tp.tcp.cfg.do_prr !== 0) tcpPrrAck(tp, sackChanged, maxseg);
  else tp.snd_cwnd = tp.snd_ssthresh;
  tp.t_flags |= TF_ACKNOW;
  tp.tcp.output(tp);
}

/**
 * The episode ended (full ACK): an undo that came during it restores cwnd
 * now. Holes above the recovery point (new data lost during the episode)
 * stay: the next duplicate ACK may start the next episode from them.
 */
export function tcpSackPostRecovery(tp: Tcpcb): void {
  const sh = sackhintOf(tp);
  if (sh.undo_at_exit) {
    if (tp.snd_cwnd < sh.undo_cwnd) tp.snd_cwnd = sh.undo_cwnd;
    sh.undo_at_exit = false;
  }
  sh.sackrec = false;
}

/**
 * A D-SACK block [s, e) came back (RFC 2883): the peer got those bytes
 * twice. Inside the last recovery episode's span they show a spurious
 * retransmission (counted as "data packets unnecessarily retransmitted");
 * once D-SACKs cover every byte the episode retransmitted, the episode was
 * reordering, not loss (RFC 3708's detection): ssthresh and cwnd return to
 * what they were (cwnd when the episode ends, if it has not). A retransmit
 * timeout since invalidates the record.
 */
export function tcpSackDsackUndo(tp: Tcpcb, s: number, e: number): void {
  const sh = sackhintOf(tp);
  if (!sh.undo_valid || !SEQ_GEQ(s, sh.undo_una) || !SEQ_LEQ(e, sh.undo_recover)) return;
  const tcp = tp.tcp;
  tcp.stats[TCPS_STAT.sndrexmitbad]++;
  sh.undo_dsacked += seqDiff(e, s);
  if (sh.undo_rexmit === 0 || sh.undo_dsacked < sh.undo_rexmit) return;
  sh.undo_valid = false;
  tcp.stats[TCPS_STAT.sack_undo]++;
  if (tp.snd_ssthresh < sh.undo_ssthresh) tp.snd_ssthresh = sh.undo_ssthresh;
  if ((tp.t_flags & TF_FASTRECOVERY) !== 0) sh.undo_at_exit = true;
  else if (tp.snd_cwnd < sh.undo_cwnd) tp.snd_cwnd = sh.undo_cwnd;
}

/**
 * RACK found bytes up to `end` lost, some above snd_fack (sent before a
 * later transmission that was delivered, never SACKed themselves): they
 * join the scoreboard as a hole, so NextSeg retransmits them and the pipe
 * leaves them out. Then the sums are recomputed with the new lost mark.
 */
export function tcpSackRackLost(tp: Tcpcb, end: number, maxseg: number): void {
  const sh = sackhintOf(tp);
  const base = SEQ_GT(sh.ack, tp.snd_una) && SEQ_LEQ(sh.ack, tp.snd_max) ? sh.ack : tp.snd_una;
  if (sh.nholes === 0) sh.fack = base;
  if (SEQ_GT(end, tp.snd_max)) end = tp.snd_max;
  if (SEQ_GT(end, sh.fack) && holeInsert(tp, sh.nholes, sh.fack, end, sh.fack)) sh.fack = end;
  sh.rack_lost_end = end;
  sh.rack_lost_valid = true;
  sackRecount(tp, base, maxseg);
}
