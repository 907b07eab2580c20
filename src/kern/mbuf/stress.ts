/**
 * MBUF_STRESS_TEST and the copying compactors: m_defrag (with random
 * failures behind kern.ipc.m_defragrandomfailures and its counters),
 * m_collapse and m_fragment. Randomness comes from the thread's seeded
 * source (Mbufs.random), so a failing run can be replayed.
 *
 * Locking: none of their own; counters are shared words updated with
 * Atomics (rare paths). They sleep only in allocation with M_WAITOK.
 */
import { ArgumentError } from '../errors.js';
import * as L from './layout.js';
import { checkHow, type Mbufs } from './mbuf.js';
import { M_TRAILINGSPACE, M_WRITABLE, m_cat, m_copydata, m_dup_pkthdr, m_fixhdr, m_count } from './ops.js';
import { R_DEFRAG_BYTES, R_DEFRAG_FAILURE, R_DEFRAG_PACKETS, R_DEFRAG_RANDOM_FAILURES, R_DEFRAG_USELESS, R_FRAGMENT_CALLS } from './shared.js';

const { M_NEXT, M_LEN, M_DATA, M_FLAGS, M_PKTHDR, PH_LEN, MT_DATA } = L;

/**
 * m_defrag: copy a packet into as few mbufs and clusters as possible. On
 * success the old chain is freed and the new one returned; on failure
 * (memory, or a random failure in stress mode) 0 is returned and the
 * original chain is untouched. Chains without a pkthdr come back as they are.
 */
export function m_defrag(mb: Mbufs, m0: number, how: number): number {
  checkHow(how);
  const i32 = mb.i32;
  if ((i32[(m0 + M_FLAGS) >> 2] & M_PKTHDR) === 0) return m0;
  const total = m_fixhdr(mb, m0);
  let mFinal = 0;
  if (mb.shared.get(R_DEFRAG_RANDOM_FAILURES) !== 0 && (mb.random() & 0xff) === 0xba) return defragFail(mb, mFinal);
  mFinal = total > L.MHLEN ? mb.m_getcl(how, MT_DATA, M_PKTHDR) : mb.m_gethdr(how, MT_DATA);
  if (mFinal === 0) return defragFail(mb, 0);
  if (!m_dup_pkthdr(mb, mFinal, m0, how)) return defragFail(mb, mFinal);
  let progress = 0;
  let mNew = mFinal;
  while (progress < total) {
    const length = Math.min(total - progress, L.MCLBYTES);
    if (mNew === 0) {
      mNew = length > L.MLEN ? mb.m_getcl(how, MT_DATA, 0) : mb.m_get(how, MT_DATA);
      if (mNew === 0) return defragFail(mb, mFinal);
    }
    m_copydata(mb, m0, progress, length, mb.u8, i32[(mNew + M_DATA) >> 2]);
    progress += length;
    i32[(mNew + M_LEN) >> 2] = length;
    if (mNew !== mFinal) m_cat(mb, mFinal, mNew);
    mNew = 0;
  }
  if (i32[(m0 + M_NEXT) >> 2] === 0) mb.shared.add(R_DEFRAG_USELESS, 1);
  mb.m_freem(m0);
  mb.shared.add(R_DEFRAG_PACKETS, 1);
  mb.shared.add(R_DEFRAG_BYTES, total);
  return mFinal;
}

function defragFail(mb: Mbufs, mFinal: number): number {
  mb.shared.add(R_DEFRAG_FAILURE, 1);
  if (mFinal !== 0) mb.m_freem(mFinal);
  return 0;
}

/**
 * m_collapse: squeeze a chain into at most `maxfrags` mbufs with as little
 * copying as possible (FreeBSD's algorithm), stopping as soon as the chain is
 * short enough:
 *  1. walking from the front, copy each mbuf into its predecessor when that
 *     one is writable and has more trailing space than the mbuf holds (always
 *     towards the front, so the packet header never moves);
 *  2. when that is not enough, replace the first pair of neighbours after the
 *     head whose bytes fit a cluster (n + n2 < MCLBYTES) by one fresh
 *     cluster, then go back to step 1 from that cluster (it usually has room
 *     for what follows).
 * Returns m0, or 0 when no further pair can be merged (e.g. two full clusters
 * with maxfrags 1: the first mbuf is never reallocated) or a cluster could not
 * be had; the chain is then still valid, possibly partly collapsed, and still
 * the caller's (FreeBSD callers free it). No lock; sleeps only with M_WAITOK.
 */
export function m_collapse(mb: Mbufs, m0: number, how: number, maxfrags: number): number {
  checkHow(how);
  if (!Number.isInteger(maxfrags) || maxfrags < 1) throw new ArgumentError('m_collapse: maxfrags must be >= 1');
  const i32 = mb.i32;
  let curfrags = m_count(mb, m0);
  if (curfrags <= maxfrags) return m0;
  let m = m0;
  for (;;) {
    // Step 1: absorb successors into m while they fit its trailing space.
    for (;;) {
      const n = i32[(m + M_NEXT) >> 2];
      if (n === 0) break;
      const nl = i32[(n + M_LEN) >> 2];
      if (M_WRITABLE(mb, m) && nl < M_TRAILINGSPACE(mb, m)) {
        m_copydata(mb, n, 0, nl, mb.u8, i32[(m + M_DATA) >> 2] + i32[(m + M_LEN) >> 2]);
        i32[(m + M_LEN) >> 2] += nl;
        i32[(m + M_NEXT) >> 2] = i32[(n + M_NEXT) >> 2];
        i32[(n + M_NEXT) >> 2] = 0;
        mb.m_free(n);
        if (--curfrags <= maxfrags) return m0;
      } else {
        m = n;
      }
    }
    // Step 2: the first mergeable pair after the head becomes one cluster.
    let prev = m0;
    let merged = 0;
    for (let n = i32[(prev + M_NEXT) >> 2]; n !== 0; prev = n, n = i32[(n + M_NEXT) >> 2]) {
      const n2 = i32[(n + M_NEXT) >> 2];
      if (n2 === 0) break;
      const nl = i32[(n + M_LEN) >> 2];
      const n2l = i32[(n2 + M_LEN) >> 2];
      if (nl + n2l >= L.MCLBYTES) continue;
      const c = mb.m_getcl(how, MT_DATA, 0);
      if (c === 0) return 0;
      m_copydata(mb, n, 0, nl + n2l, mb.u8, i32[(c + M_DATA) >> 2]);
      i32[(c + M_LEN) >> 2] = nl + n2l;
      i32[(c + M_NEXT) >> 2] = i32[(n2 + M_NEXT) >> 2];
      i32[(prev + M_NEXT) >> 2] = c;
      i32[(n2 + M_NEXT) >> 2] = 0;
      mb.m_freem(n);
      merged = c;
      break;
    }
    if (merged === 0) return 0;
    if (--curfrags <= maxfrags) return m0;
    m = merged;
  }
}

/**
 * m_fragment (MBUF_STRESS_TEST): rebuild a packet as a chain of clusters of
 * `length` bytes each: 0 (or < -2) leaves it alone; n > 0 fixed (at most
 * MCLBYTES); -1 one random length (1..255) for all; -2 a random length per
 * fragment. On failure the original packet is returned untouched.
 */
export function m_fragment(mb: Mbufs, m0: number, how: number, length: number): number {
  checkHow(how);
  if (!Number.isInteger(length)) throw new ArgumentError('m_fragment: length must be an integer');
  const i32 = mb.i32;
  if ((i32[(m0 + M_FLAGS) >> 2] & M_PKTHDR) === 0) return m0;
  if (length === 0 || length < -2) return m0;
  mb.shared.add(R_FRAGMENT_CALLS, 1);
  if (length > L.MCLBYTES) length = L.MCLBYTES;
  if (length === -1) length = 1 + (mb.random() % 255);
  const total = m_fixhdr(mb, m0);
  const mFinal = mb.m_getcl(how, MT_DATA, M_PKTHDR);
  if (mFinal === 0) return m0;
  if (!m_dup_pkthdr(mb, mFinal, m0, how)) {
    mb.m_freem(mFinal);
    return m0;
  }
  let last = mFinal;
  let progress = 0;
  while (progress < total) {
    let fraglen = length > 0 ? length : 1 + (mb.random() % 255);
    if (fraglen > total - progress) fraglen = total - progress;
    if (progress !== 0) {
      const t = mb.m_getcl(how, MT_DATA, 0);
      if (t === 0) {
        mb.m_freem(mFinal);
        return m0;
      }
      i32[(last + M_NEXT) >> 2] = t;
      last = t;
    }
    m_copydata(mb, m0, progress, fraglen, mb.u8, i32[(last + M_DATA) >> 2]);
    progress += fraglen;
    i32[(last + M_LEN) >> 2] = fraglen;
  }
  i32[(mFinal + PH_LEN) >> 2] = total;
  mb.m_freem(m0);
  return mFinal;
}
