/**
 * Chain operations of mbuf(9) (FreeBSD uipc_mbuf.c). Each takes the thread's
 * Mbufs first. A chain is linked by m_next; a packet's first mbuf carries the
 * packet header. Unless said otherwise these do not sleep (M_NOWAIT) or sleep
 * only in allocation (M_WAITOK), and take no lock of their own: a chain
 * belongs to one thread at a time.
 */
import { ArgumentError } from '../errors.js';
import * as L from './layout.js';
import { M_NOWAIT } from '../uma/flags.js';
import { checkHow, checkLen, type Mbufs } from './mbuf.js';

const { M_NEXT, M_DATA, M_LEN, M_FLAGS, PH_LEN, M_EXT, M_PKTHDR, M_RDONLY, EXT_BUF, EXT_SIZE, EXT_CNT, MHSIZE, MPKTHSIZE } = L;

/** m_length: bytes in the chain (and, through `last`, its last mbuf). */
export function m_length(mb: Mbufs, m: number): number {
  const i32 = mb.i32;
  let len = 0;
  for (; m !== 0; m = i32[(m + M_NEXT) >> 2]) len += i32[(m + M_LEN) >> 2];
  return len;
}

/** m_last: the last mbuf of a chain. */
export function m_last(mb: Mbufs, m: number): number {
  const i32 = mb.i32;
  while (i32[(m + M_NEXT) >> 2] !== 0) m = i32[(m + M_NEXT) >> 2];
  return m;
}

/** M_WRITABLE: no M_RDONLY, and external storage only when not shared. */
export function M_WRITABLE(mb: Mbufs, m: number): boolean {
  const f = mb.i32[(m + M_FLAGS) >> 2];
  if ((f & M_RDONLY) !== 0) return false;
  if ((f & M_EXT) === 0) return true;
  return Atomics.load(mb.i32, mb.i32[(m + EXT_CNT) >> 2] >> 2) === 1;
}

/** Start of m's buffer (M_START). */
export function M_START(mb: Mbufs, m: number): number {
  const f = mb.i32[(m + M_FLAGS) >> 2];
  if ((f & M_EXT) !== 0) return mb.i32[(m + EXT_BUF) >> 2];
  return (f & M_PKTHDR) !== 0 ? m + MPKTHSIZE : m + MHSIZE;
}

/** Size of m's buffer (M_SIZE). */
export function M_SIZE(mb: Mbufs, m: number): number {
  const f = mb.i32[(m + M_FLAGS) >> 2];
  if ((f & M_EXT) !== 0) return mb.i32[(m + EXT_SIZE) >> 2];
  return (f & M_PKTHDR) !== 0 ? L.MHLEN : L.MLEN;
}

/** M_LEADINGSPACE: bytes before m_data that may be used (0 when not writable). */
export function M_LEADINGSPACE(mb: Mbufs, m: number): number {
  if (!M_WRITABLE(mb, m)) return 0;
  return mb.i32[(m + M_DATA) >> 2] - M_START(mb, m);
}

/** M_TRAILINGSPACE: bytes after the data that may be used (0 when not writable). */
export function M_TRAILINGSPACE(mb: Mbufs, m: number): number {
  if (!M_WRITABLE(mb, m)) return 0;
  return M_START(mb, m) + M_SIZE(mb, m) - mb.i32[(m + M_DATA) >> 2] - mb.i32[(m + M_LEN) >> 2];
}

/** M_ASSERTPKTHDR: throw unless m carries a packet header. */
export function M_ASSERTPKTHDR(mb: Mbufs, m: number): void {
  if (m === 0 || (mb.i32[(m + M_FLAGS) >> 2] & M_PKTHDR) === 0) {
    throw new ArgumentError(`M_ASSERTPKTHDR: mbuf 0x${m.toString(16)} has no packet header`);
  }
}

/**
 * m_copydata: copy `len` bytes from offset `off` of the chain into dst at
 * dstOff. Throws when the chain is shorter than off + len (FreeBSD panics).
 */
export function m_copydata(mb: Mbufs, m: number, off: number, len: number, dst: Uint8Array, dstOff = 0): void {
  checkLen(off, 'm_copydata off');
  checkLen(len, 'm_copydata len');
  if (dstOff + len > dst.length) throw new ArgumentError('m_copydata: destination too small');
  const i32 = mb.i32;
  const u8 = mb.u8;
  while (m !== 0 && off >= i32[(m + M_LEN) >> 2]) {
    off -= i32[(m + M_LEN) >> 2];
    m = i32[(m + M_NEXT) >> 2];
  }
  while (len > 0) {
    if (m === 0) throw new ArgumentError('m_copydata: offset + length beyond the end of the chain');
    const mlen = i32[(m + M_LEN) >> 2];
    const n = Math.min(mlen - off, len);
    const d = i32[(m + M_DATA) >> 2] + off;
    dst.set(u8.subarray(d, d + n), dstOff);
    dstOff += n;
    len -= n;
    off = 0;
    m = i32[(m + M_NEXT) >> 2];
  }
}

/**
 * m_append: append `len` bytes of src to the chain, filling the last mbuf's
 * trailing space and then new mbufs (clusters when worth it). Returns false
 * when an allocation failed; the bytes appended so far stay (as FreeBSD).
 * The pkthdr length of the first mbuf is updated.
 */
export function m_append(mb: Mbufs, m0: number, len: number, src: Uint8Array, srcOff = 0): boolean {
  checkLen(len, 'm_append len');
  if (srcOff + len > src.length) throw new ArgumentError('m_append: source too small');
  const i32 = mb.i32;
  let m = m_last(mb, m0);
  let remain = len;
  let space = M_TRAILINGSPACE(mb, m);
  if (space > 0) {
    const n = Math.min(space, remain);
    mb.u8.set(src.subarray(srcOff, srcOff + n), i32[(m + M_DATA) >> 2] + i32[(m + M_LEN) >> 2]);
    i32[(m + M_LEN) >> 2] += n;
    srcOff += n;
    remain -= n;
  }
  while (remain > 0) {
    // As FreeBSD: an mbuf, or a cluster for anything that would not fit one.
    const n = remain > L.MLEN ? mb.m_getcl(M_NOWAIT, i32[(m + L.M_TYPE) >> 2], 0) : mb.m_get(M_NOWAIT, i32[(m + L.M_TYPE) >> 2]);
    if (n === 0) break;
    space = M_TRAILINGSPACE(mb, n);
    const k = Math.min(space, remain);
    mb.u8.set(src.subarray(srcOff, srcOff + k), i32[(n + M_DATA) >> 2]);
    i32[(n + M_LEN) >> 2] = k;
    i32[(m + M_NEXT) >> 2] = n;
    m = n;
    srcOff += k;
    remain -= k;
  }
  if ((i32[(m0 + M_FLAGS) >> 2] & M_PKTHDR) !== 0) i32[(m0 + PH_LEN) >> 2] += len - remain;
  return remain === 0;
}

