/**
 * The few chain operations the protocols need beyond src/kern/mbuf (trim at
 * either end, make the first n bytes contiguous, prepend header room, copy
 * arena-to-arena, checksum a chain). Each takes the thread's Mbufs, takes no
 * lock and never sleeps (allocation is M_NOWAIT: on failure the packet is
 * freed and 0 returned, so the caller only counts a drop).
 */
import { M_NOWAIT } from '../uma/flags.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_TRAILINGSPACE, M_LEADINGSPACE } from '../kern/mbuf/ops.js';
import { M_DATA, M_FLAGS, M_LEN, M_NEXT, M_PKTHDR, MCLBYTES, MJUM16BYTES, MJUM9BYTES, MJUMPAGESIZE, MT_DATA, PH_LEN, PH_RCVIF, PH_SPARE } from '../kern/mbuf/layout.js';
import { cksumAdd, cksumAddOdd } from '../wire/checksum.js';

/** Room left before the data of every packet we build: link + IP + transport headers. */
export const MAX_HDR = 64;

/** Packet length from the packet header. */
export function pktLen(mb: Mbufs, m: number): number {
  return mb.i32[(m + PH_LEN) >> 2];
}

/** Trim `n` bytes from the front of a packet (m_adj with n > 0). */
export function trimFront(mb: Mbufs, m: number, n: number): void {
  const i32 = mb.i32;
  i32[(m + PH_LEN) >> 2] -= n;
  for (let x = m; x !== 0 && n > 0; x = i32[(x + M_NEXT) >> 2]) {
    const l = i32[(x + M_LEN) >> 2];
    const k = l < n ? l : n;
    i32[(x + M_LEN) >> 2] = l - k;
    i32[(x + M_DATA) >> 2] += k;
    n -= k;
  }
}

/** Trim `n` bytes from the end of a packet (m_adj with n < 0): empties trailing mbufs, frees none. */
export function trimBack(mb: Mbufs, m: number, n: number): void {
  const i32 = mb.i32;
  const total = i32[(m + PH_LEN) >> 2];
  let keep = total - n;
  if (keep < 0) keep = 0;
  i32[(m + PH_LEN) >> 2] = keep;
  for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
    const l = i32[(x + M_LEN) >> 2];
    if (l <= keep) keep -= l;
    else {
      i32[(x + M_LEN) >> 2] = keep;
      keep = 0;
    }
  }
}

/** Move the packet header (all pkthdr words, tags included) from `from` to `to` (m_move_pkthdr). */
export function movePkthdr(mb: Mbufs, to: number, from: number): void {
  const i32 = mb.i32;
  for (let o = PH_RCVIF; o <= PH_SPARE; o += 4) i32[(to + o) >> 2] = i32[(from + o) >> 2];
  i32[(to + M_FLAGS) >> 2] |= M_PKTHDR;
  i32[(from + M_FLAGS) >> 2] &= ~M_PKTHDR;
  i32[(from + 32) >> 2] = 0; // PH_TAGS now belongs to `to`
}

/**
 * m_pullup: make the first `n` bytes of the packet contiguous in its first
 * mbuf. Returns the (possibly new) first mbuf, or 0 after freeing the packet
 * when it is shorter than n or memory is short.
 */
export function pullup(mb: Mbufs, m: number, n: number): number {
  const i32 = mb.i32;
  if (i32[(m + M_LEN) >> 2] >= n) return m;
  return pullupSlow(mb, m, n);
}

function pullupSlow(mb: Mbufs, m: number, n: number): number {
  const i32 = mb.i32;
  if (n > MCLBYTES - MAX_HDR || i32[(m + PH_LEN) >> 2] < n) {
    mb.m_freem(m);
    return 0;
  }
  const h = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  if (h === 0) {
    mb.m_freem(m);
    return 0;
  }
  i32[(h + M_DATA) >> 2] += MAX_HDR;
  copyOut(mb, m, 0, n, i32[(h + M_DATA) >> 2]);
  movePkthdr(mb, h, m);
  i32[(h + M_LEN) >> 2] = n;
  // Drop the copied bytes from the old chain (without touching the pkthdr length we moved).
  let rest = n;
  let x = m;
  while (x !== 0 && rest > 0) {
    const l = i32[(x + M_LEN) >> 2];
    const k = l < rest ? l : rest;
    i32[(x + M_LEN) >> 2] = l - k;
    i32[(x + M_DATA) >> 2] += k;
    rest -= k;
    if (i32[(x + M_LEN) >> 2] === 0) x = mb.m_free(x);
    else break;
  }
  i32[(h + M_NEXT) >> 2] = x;
  return h;
}

/** Copy `len` bytes at offset `off` of a chain to arena byte offset `dst` (no JS buffer in between). */
export function copyOut(mb: Mbufs, m: number, off: number, len: number, dst: number): void {
  const i32 = mb.i32;
  const u8 = mb.u8;
  while (m !== 0 && off >= i32[(m + M_LEN) >> 2]) {
    off -= i32[(m + M_LEN) >> 2];
    m = i32[(m + M_NEXT) >> 2];
  }
  while (len > 0 && m !== 0) {
    const d = i32[(m + M_DATA) >> 2] + off;
    const n = Math.min(i32[(m + M_LEN) >> 2] - off, len);
    u8.copyWithin(dst, d, d + n);
    dst += n;
    len -= n;
    off = 0;
    m = i32[(m + M_NEXT) >> 2];
  }
}

/**
 * Make room for an `n`-byte header in front of the packet (M_PREPEND): in the
 * leading space when there is some, else in a new first mbuf that takes the
 * packet header. Returns the first mbuf (its m_data now at the header) or 0
 * after freeing the packet.
 */
export function prepend(mb: Mbufs, m: number, n: number): number {
  const i32 = mb.i32;
  if (M_LEADINGSPACE(mb, m) >= n) {
    i32[(m + M_DATA) >> 2] -= n;
    i32[(m + M_LEN) >> 2] += n;
    i32[(m + PH_LEN) >> 2] += n;
    return m;
  }
  const h = mb.m_gethdr(M_NOWAIT, MT_DATA);
  if (h === 0) {
    mb.m_freem(m);
    return 0;
  }
  movePkthdr(mb, h, m);
  // Headers go at the end of the new mbuf so later prepends still fit.
  i32[(h + M_DATA) >> 2] += M_TRAILINGSPACE(mb, h) - n;
  i32[(h + M_LEN) >> 2] = n;
  i32[(h + M_NEXT) >> 2] = m;
  i32[(h + PH_LEN) >> 2] += n;
  return h;
}

/**
 * A new packet holding a copy of `len` bytes at `off` of chain m, in one
 * cluster of the smallest size that holds it (up to MJUM16BYTES) with
 * MAX_HDR of leading space. 0 on memory shortage or a longer request.
 * The source is unchanged.
 */
export function copyPacket(mb: Mbufs, m: number, off: number, len: number): number {
  if (len > MJUM16BYTES) return 0;
  const need = len + MAX_HDR;
  const size = need <= MCLBYTES ? MCLBYTES : need <= MJUMPAGESIZE ? MJUMPAGESIZE : need <= MJUM9BYTES ? MJUM9BYTES : MJUM16BYTES;
  const c = size === MCLBYTES ? mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR) : mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, size);
  if (c === 0) return 0;
  const i32 = mb.i32;
  // Less head room only when the payload fills a 16K cluster: prepend() then adds an mbuf.
  i32[(c + M_DATA) >> 2] += Math.min(MAX_HDR, size - len);
  copyOut(mb, m, off, len, i32[(c + M_DATA) >> 2]);
  i32[(c + M_LEN) >> 2] = len;
  i32[(c + PH_LEN) >> 2] = len;
  return c;
}

/**
 * A full copy of a packet of any length (m_dup): clusters of MCLBYTES
 * chained. 0 on memory shortage (nothing leaks). The source is unchanged.
 */
export function dupPacket(mb: Mbufs, m: number): number {
  const i32 = mb.i32;
  const total = i32[(m + PH_LEN) >> 2];
  const first = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  if (first === 0) return 0;
  for (let o = PH_RCVIF; o <= PH_SPARE; o += 4) if (o !== 32) i32[(first + o) >> 2] = i32[(m + o) >> 2];
  let last = first;
  let off = 0;
  for (;;) {
    const n = Math.min(MCLBYTES, total - off);
    copyOut(mb, m, off, n, i32[(last + M_DATA) >> 2]);
    i32[(last + M_LEN) >> 2] = n;
    off += n;
    if (off >= total) break;
    const c = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
    if (c === 0) {
      mb.m_freem(first);
      return 0;
    }
    i32[(last + M_NEXT) >> 2] = c;
    last = c;
  }
  i32[(first + PH_LEN) >> 2] = total;
  return first;
}

/**
 * One's complement sum of `len` bytes at offset `off` of a chain, added to
 * `sum` (pieces at odd distances are byte-swapped, RFC 1071).
 */
export function chainSum(mb: Mbufs, m: number, off: number, len: number, sum: number): number {
  const i32 = mb.i32;
  const u8 = mb.u8;
  while (m !== 0 && off >= i32[(m + M_LEN) >> 2]) {
    off -= i32[(m + M_LEN) >> 2];
    m = i32[(m + M_NEXT) >> 2];
  }
  let done = 0;
  while (len > 0 && m !== 0) {
    const n = Math.min(i32[(m + M_LEN) >> 2] - off, len);
    const d = i32[(m + M_DATA) >> 2] + off;
    sum = (done & 1) === 0 ? cksumAdd(u8, d, n, sum) : cksumAddOdd(u8, d, n, sum);
    done += n;
    len -= n;
    off = 0;
    m = i32[(m + M_NEXT) >> 2];
  }
  return sum;
}

/** Arena byte offset of the first data byte. */
export function mtod(mb: Mbufs, m: number): number {
  return mb.i32[(m + M_DATA) >> 2];
}

/** Bytes in the first mbuf. */
export function mlen(mb: Mbufs, m: number): number {
  return mb.i32[(m + M_LEN) >> 2];
}
