/**
 * TCP reassembly (tcp_reass.c): out-of-order segments wait on the
 * connection's queue, ordered by sequence, as mbuf chains holding only
 * their data; overlaps are trimmed on insertion (the new segment loses what
 * a queued predecessor has, queued successors lose what the new one
 * covers), and the in-order prefix is appended to so_rcv. A segment that
 * dovetails with a queued one joins its entry (FreeBSD's tcp_reass_append,
 * prepend and merge), so an entry is a run of contiguous data and the queue
 * holds at most net.inet.tcp.reass.maxqueuelen runs (t_segqlen counts
 * entries); a segment that would need a new entry past that is dropped and
 * counted (tcps_rcvreassfull), except the one that fills the hole at rcv_nxt.
 *
 * Per connection on the stack's thread; no lock; never sleeps.
 */
import { m_adj, m_demote_pkthdr, m_last } from '../kern/mbuf/ops.js';
import { M_FLAGS, M_NEXT, M_PKTHDR, PH_LEN } from '../kern/mbuf/layout.js';
import { TH_FIN } from '../wire/tcp.js';
import {   SEQ_LEQ, SEQ_LT, seqAdd, seqDiff } from './tcp_seq.js';
import { TCPS_STAT } from './tcp_stats.js';
import { tcpSetDsack } from './tcp_sack.js';
import { RQ_NONE_BOOL, RQ_NONE_NUM, TF_SACK_PERMIT, type Tcpcb } from './tcp_var.js';
import { TCPS_ESTABLISHED } from './tcp_fsm.js';

/**
 * tcp_reass: queue the segment [seq, seq+len) held in m (data only, m may
 * be 0 with len 0 and fin false to just present what is in order), then
 * move the in-order prefix to so_rcv. Returns TH_FIN when a FIN was reached
 * in order, plus REASS_FULL when the segment was dropped for the queue
 * limit (such a segment must not be SACKed). Consumes m.
 */
export function tcpReass(tp: Tcpcb, seq: number, len: number, m: number, fin: boolean): number {
  let r = 0;
  if (m !== 0 || fin) {
    const full = tcpReassFull(tp, seq, len);
    insert(tp, seq, len, m, fin);
    if (full) r = REASS_FULL;
  }
  return present(tp) | r;
}

/**
 * Would the segment [seq, seq+len) be dropped for the queue limit: it
 * touches no queued run (so it needs an entry of its own), the queue has
 * net.inet.tcp.reass.maxqueuelen entries, and it is not the one at rcv_nxt.
 */
export function tcpReassFull(tp: Tcpcb, seq: number, len: number): boolean {
  const qs = tp.rq_seq;
  const n = qs.length;
  if (n < tp.tcp.cfg.reass_maxqueuelen || seq === tp.rcv_nxt) return false;
  let i = 0;
  while (i < n && SEQ_LEQ(qs[i], seq)) i++;
  if (i > 0 && SEQ_LEQ(seq, seqAdd(qs[i - 1], tp.rq_len[i - 1]))) return false;
  return !(i < n && SEQ_LEQ(qs[i], seqAdd(seq, len)));
}

/** tcpReass result bit: the segment was dropped because the queue was full. */
export const REASS_FULL = 0x10000;

function insert(tp: Tcpcb, seq: number, len: number, m: number, fin: boolean): boolean {
  const mb = tp.tcp.st.mb;
  const s = tp.tcp.stats;
  const qs = tp.rq_seq;
  const ql = tp.rq_len;
  const qm = tp.rq_m;
  const qf = tp.rq_fin;
  if (tcpReassFull(tp, seq, len)) {
    s[TCPS_STAT.rcvreassfull]++;
    if (m !== 0) mb.m_freem(m);
    return false;
  }
  // First queued segment that starts after seq.
  let i = 0;
  while (i < qs.length && SEQ_LEQ(qs[i], seq)) i++;
  // Trim what the predecessor already holds.
  if (i > 0) {
    const pend = seqAdd(qs[i - 1], ql[i - 1]);
    const over = seqDiff(pend, seq);
    if (over > 0) {
      if (over >= len && !(fin && !qf[i - 1])) {
        // A complete duplicate of queued data: report it as D-SACK.
        s[TCPS_STAT.rcvduppack]++;
        s[TCPS_STAT.rcvdupbyte] += len;
        firstDup(tp, seq, seqAdd(seq, len));
        if (m !== 0) mb.m_freem(m);
        return false;
      }
      const cut = Math.min(over, len);
      if (cut > 0) firstDup(tp, seq, seqAdd(seq, cut));
      if (m !== 0 && cut > 0) m_adj(mb, m, cut);
      seq = seqAdd(seq, cut);
      len -= cut;
    }
  }
  // Successors the new segment covers lose their front, or go.
  const end = seqAdd(seq, len);
  while (i < qs.length && SEQ_LT(qs[i], end)) {
    const over = seqDiff(end, qs[i]);
    firstDup(tp, qs[i], seqAdd(qs[i], Math.min(over, ql[i])));
    if (over >= ql[i]) {
      if (qf[i]) fin = true;
      tp.rq_bytes -= ql[i];
      if (qm[i] !== 0) mb.m_freem(qm[i]);
      removeAt(tp, i);
      continue;
    }
    if (qm[i] !== 0) m_adj(mb, qm[i], over);
    qs[i] = seqAdd(qs[i], over);
    ql[i] -= over;
    tp.rq_bytes -= over;
    break;
  }
  if (len === 0 && !fin) {
    if (m !== 0) mb.m_freem(m);
    return false;
  }
  s[TCPS_STAT.rcvoopack]++;
  s[TCPS_STAT.rcvoobyte] += len;
  tp.rq_bytes += len;
  if (!join(tp, i, seq, len, m, fin)) insertAt(tp, i, seq, len, m, fin);
  return true;
}

/**
 * Join the (trimmed) segment to the run before it (it starts where that
 * one ends, tcp_reass_append) and / or the run after it (it ends where
 * that one starts, tcp_reass_prepend; both: the two runs merge). Returns
 * false when it touches neither (it needs an entry of its own).
 */
function join(tp: Tcpcb, i: number, seq: number, len: number, m: number, fin: boolean): boolean {
  const mb = tp.tcp.st.mb;
  const qs = tp.rq_seq;
  const ql = tp.rq_len;
  const qm = tp.rq_m;
  const qf = tp.rq_fin;
  const end = seqAdd(seq, len);
  const prev = i > 0 && !qf[i - 1] && qm[i - 1] !== 0 && seqAdd(qs[i - 1], ql[i - 1]) === seq;
  const next = i < qs.length && !fin && len > 0 && m !== 0 && qm[i] !== 0 && qs[i] === end;
  if (!prev && !next) return false;
  if (prev) {
    const k = i - 1;
    if (m !== 0 && len > 0) tp.rq_tail[k] = chainAppend(mb, qm[k], tp.rq_tail[k], m);
    else if (m !== 0) mb.m_freem(m);
    ql[k] += len;
    qf[k] = fin;
    if (next) {
      tp.rq_tail[k] = chainAppend(mb, qm[k], tp.rq_tail[k], qm[i]);
      ql[k] += ql[i];
      qf[k] = qf[i];
      removeAt(tp, i);
    }
    return true;
  }
  chainAppend(mb, m, m_last(mb, m), qm[i]);
  qm[i] = m;
  qs[i] = seq;
  ql[i] += len;
  return true;
}

/** Link chain n after `tail`, the last mbuf of chain `head`; n loses its packet header. Returns the new last mbuf. */
function chainAppend(mb: Tcpcb['tcp']['st']['mb'], head: number, tail: number, n: number): number {
  const i32 = mb.i32;
  let add = 0;
  if ((i32[(n + M_FLAGS) >> 2] & M_PKTHDR) !== 0) {
    add = i32[(n + PH_LEN) >> 2];
    m_demote_pkthdr(mb, n);
  }
  if ((i32[(head + M_FLAGS) >> 2] & M_PKTHDR) !== 0) i32[(head + PH_LEN) >> 2] += add;
  i32[(tail + M_NEXT) >> 2] = n;
  return m_last(mb, n);
}

/** The first duplicate range of a segment is what D-SACK reports (unless a duplicate below rcv_nxt already is). */
function firstDup(tp: Tcpcb, start: number, end: number): void {
  if (tp.dsack_start === tp.dsack_end && (tp.t_flags & TF_SACK_PERMIT) !== 0 && SEQ_LT(start, end)) tcpSetDsack(tp, start, end);
}

function present(tp: Tcpcb): number {
  // Nothing reaches the user before the connection is synchronized.
  if (tp.state < TCPS_ESTABLISHED) return 0;
  const mb = tp.tcp.st.mb;
  const qs = tp.rq_seq;
  const ql = tp.rq_len;
  const qm = tp.rq_m;
  const qf = tp.rq_fin;
  let flags = 0;
  while (qs.length > 0 && SEQ_LEQ(qs[0], tp.rcv_nxt)) {
    let len = ql[0];
    let m = qm[0];
    const fin = qf[0];
    const skip = seqDiff(tp.rcv_nxt, qs[0]);
    removeAt(tp, 0);
    tp.rq_bytes -= len;
    if (skip > 0) {
      if (skip >= len) {
        if (m !== 0) mb.m_freem(m);
        if (fin && skip === len) flags = TH_FIN;
        continue;
      }
      if (m !== 0) m_adj(mb, m, skip);
      len -= skip;
    }
    tp.rcv_nxt = seqAdd(tp.rcv_nxt, len);
    if (m !== 0) {
      if (len > 0 && (tp.so_rcv.state & 0x20) === 0) tp.so_rcv.appendChain(m, len);
      else mb.m_freem(m);
    }
    m = 0;
    if (fin) {
      flags = TH_FIN;
      break;
    }
  }
  return flags;
}

/** Remove queue entry i, shifting the rest down (no array is made, unlike splice). */
function removeAt(tp: Tcpcb, i: number): void {
  const qs = tp.rq_seq;
  const ql = tp.rq_len;
  const qm = tp.rq_m;
  const qf = tp.rq_fin;
  const qt = tp.rq_tail;
  const n = qs.length - 1;
  for (let k = i; k < n; k++) {
    qs[k] = qs[k + 1];
    ql[k] = ql[k + 1];
    qm[k] = qm[k + 1];
    qf[k] = qf[k + 1];
    qt[k] = qt[k + 1];
  }
  qs.length = ql.length = qm.length = qf.length = qt.length = n;
}

/** Insert an entry at i, shifting the rest up. */
function insertAt(tp: Tcpcb, i: number, seq: number, len: number, m: number, fin: boolean): void {
  if (tp.rq_seq === RQ_NONE_NUM) {
    // The connection's first out-of-order segment: its queue is made now (idle connections have none).
    tp.rq_seq = [];
    tp.rq_len = [];
    tp.rq_m = [];
    tp.rq_fin = [];
    tp.rq_tail = [];
  }
  const qs = tp.rq_seq;
  const ql = tp.rq_len;
  const qm = tp.rq_m;
  const qf = tp.rq_fin;
  const qt = tp.rq_tail;
  for (let k = qs.length; k > i; k--) {
    qs[k] = qs[k - 1];
    ql[k] = ql[k - 1];
    qm[k] = qm[k - 1];
    qf[k] = qf[k - 1];
    qt[k] = qt[k - 1];
  }
  qs[i] = seq;
  ql[i] = len;
  qm[i] = m;
  qf[i] = fin;
  qt[i] = m !== 0 ? m_last(tp.tcp.st.mb, m) : 0;
}

/** Free every queued segment (tcp_reass_flush). */
export function tcpReassFlush(tp: Tcpcb): void {
  const mb = tp.tcp.st.mb;
  for (const m of tp.rq_m) if (m !== 0) mb.m_freem(m);
  // Back to the shared empty queue: the arrays go with the data.
  tp.rq_seq = RQ_NONE_NUM;
  tp.rq_len = RQ_NONE_NUM;
  tp.rq_m = RQ_NONE_NUM;
  tp.rq_fin = RQ_NONE_BOOL;
  tp.rq_tail = RQ_NONE_NUM;
  tp.rq_bytes = 0;
}
