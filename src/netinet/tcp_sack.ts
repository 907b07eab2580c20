/**
 * SACK (RFC 2018) and D-SACK (RFC 2883), tcp_sack.c.
 *
 * Receiver side: the list of blocks to report (sackblks), most recent
 * first, updated on every out-of-order arrival (tcp_update_sack_list) and
 * trimmed as rcv_nxt advances; a one-shot D-SACK block for duplicate data
 * goes in front of them in the next ACK.
 *
 * Sender side: the scoreboard of what the peer reported above snd_una, as
 * merged ordered ranges (sb_start/sb_end), so retransmission in recovery
 * skips data the peer already holds (tcp_sack_doack / tcp_sack_output).
 *
 * Per connection on the stack's thread; no lock; never sleeps.
 */
import { SEQ_GEQ, SEQ_GT, SEQ_LEQ, SEQ_LT } from './tcp_seq.js';
import type { Tcpcb } from './tcp_var.js';
import type { TcpOpt } from '../wire/tcp.js';
import { TCPS_STAT } from './tcp_stats.js';

const MAX_SACK_BLKS = 4;
/** Most ranges the scoreboard keeps (TCP_MAX_SACK_HOLES-like bound). */
const MAX_SCOREBOARD = 64;

/** tcp_update_sack_list: the segment [start, end) arrived out of order (or was a duplicate). */
export function tcpUpdateSackList(tp: Tcpcb, start: number, end: number): void {
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
  tcpSackClearScoreboard(tp);
}

/** tcp_free_sackholes */
export function tcpSackClearScoreboard(tp: Tcpcb): void {
  tp.sb_start.length = 0;
  tp.sb_end.length = 0;
}

/**
 * tcp_sack_doack: merge the valid SACK blocks of an ACK (above snd_una and
 * th_ack, below snd_max) into the scoreboard and drop what th_ack covers.
 */
export function tcpSackDoack(tp: Tcpcb, to: TcpOpt, thAck: number): void {
  const ss = tp.sb_start;
  const se = tp.sb_end;
  // Cumulative ACK: drop covered ranges.
  let drop = 0;
  while (drop < ss.length && SEQ_LEQ(se[drop], thAck)) drop++;
  if (drop > 0) removeRanges(ss, se, 0, drop, 0, 0, false);
  if (ss.length > 0 && SEQ_LT(ss[0], thAck)) ss[0] = thAck;
  for (let i = 0; i < to.nsacks; i++) {
    const s = to.sacks[2 * i];
    const e = to.sacks[2 * i + 1];
    if (!(SEQ_GT(e, s) && SEQ_GT(s, tp.snd_una) && SEQ_GT(s, thAck) && SEQ_LT(s, tp.snd_max) && SEQ_LEQ(e, tp.snd_max))) continue;
    tp.tcp.stats[TCPS_STAT.sack_rcv_blocks]++;
    insertRange(ss, se, s, e);
  }
  if (ss.length > MAX_SCOREBOARD) {
    ss.length = MAX_SCOREBOARD;
    se.length = MAX_SCOREBOARD;
  }
}

function insertRange(ss: number[], se: number[], s: number, e: number): void {
  let i = 0;
  while (i < ss.length && SEQ_LT(se[i], s)) i++;
  // Merge every range that touches [s, e).
  let j = i;
  while (j < ss.length && SEQ_LEQ(ss[j], e)) {
    if (SEQ_LT(ss[j], s)) s = ss[j];
    if (SEQ_GT(se[j], e)) e = se[j];
    j++;
  }
  removeRanges(ss, se, i, j - i, s, e, true);
}

/** Replace ranges [i, i+count) by (s, e) when `put`, else remove them; in place, no array made. */
function removeRanges(ss: number[], se: number[], i: number, count: number, s: number, e: number, put: boolean): void {
  const add = put ? 1 : 0;
  const n = ss.length;
  const shift = add - count;
  if (shift > 0) for (let k = n - 1; k >= i + count; k--) {
    ss[k + shift] = ss[k];
    se[k + shift] = se[k];
  }
  else if (shift < 0) for (let k = i + count; k < n; k++) {
    ss[k + shift] = ss[k];
    se[k + shift] = se[k];
  }
  if (put) {
    ss[i] = s;
    se[i] = e;
  }
  ss.length = se.length = n + shift;
}

/**
 * The end of the sacked range that starts at or covers `seq`, or `seq`
 * itself when the peer has not reported it: retransmission skips to there.
 */
export function tcpSackSkip(tp: Tcpcb, seq: number): number {
  const ss = tp.sb_start;
  const se = tp.sb_end;
  for (let i = 0; i < ss.length; i++) {
    if (SEQ_LEQ(ss[i], seq) && SEQ_LT(seq, se[i])) return se[i];
    if (SEQ_GT(ss[i], seq)) break;
  }
  return seq;
}

/**
 * tcp_sack_output's question: the first byte at or after `from` the peer
 * has not SACKed and that lies below the highest SACKed byte (snd_fack), so
 * it is a hole worth retransmitting now; -1 when there is none.
 */
export function tcpSackNextHole(tp: Tcpcb, from: number): number {
  const ss = tp.sb_start;
  const se = tp.sb_end;
  const n = ss.length;
  if (n === 0) return -1;
  const fack = se[n - 1];
  let seq = from;
  for (let i = 0; i < n; i++) {
    if (SEQ_LEQ(ss[i], seq) && SEQ_LT(seq, se[i])) seq = se[i];
    else if (SEQ_GT(ss[i], seq)) break;
  }
  return SEQ_LT(seq, fack) ? seq : -1;
}

/** The first sacked range start above seq (the hole ends there), or -1 if none. */
export function tcpSackNextBlock(tp: Tcpcb, seq: number): number {
  const ss = tp.sb_start;
  for (let i = 0; i < ss.length; i++) if (SEQ_GT(ss[i], seq)) return ss[i];
  return -1;
}
