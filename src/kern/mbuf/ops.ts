/**
 * Chain operations of mbuf(9) (FreeBSD uipc_mbuf.c). Each takes the thread's
 * Mbufs first. A chain is linked by m_next; a packet's first mbuf carries the
 * packet header. Unless said otherwise these do not sleep (M_NOWAIT) or sleep
 * only in allocation (M_WAITOK), and take no lock of their own: a chain
 * belongs to one thread at a time.
 */
import { ArgumentError } from '../errors.js';
import * as L from './layout.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { checkHow, checkLen, type Mbufs } from './mbuf.js';
import { m_tag_copy_chain, m_tag_delete_chain } from './tags.js';

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
  while (m !== 0 && off >= i32[(m + M_LEN) >> 2]) {
    off -= i32[(m + M_LEN) >> 2];
    m = i32[(m + M_NEXT) >> 2];
  }
  while (len > 0) {
    if (m === 0) throw new ArgumentError('m_copydata: offset + length beyond the end of the chain');
    const mlen = i32[(m + M_LEN) >> 2];
    const n = Math.min(mlen - off, len);
    mb.copier.copyOut(i32[(m + M_DATA) >> 2] + off, n, dst, dstOff);
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
    mb.copier.copyIn(src, srcOff, n, i32[(m + M_DATA) >> 2] + i32[(m + M_LEN) >> 2], space);
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
    mb.copier.copyIn(src, srcOff, k, i32[(n + M_DATA) >> 2], space);
    i32[(n + M_LEN) >> 2] = k;
    i32[(m + M_NEXT) >> 2] = n;
    m = n;
    srcOff += k;
    remain -= k;
  }
  if ((i32[(m0 + M_FLAGS) >> 2] & M_PKTHDR) !== 0) i32[(m0 + PH_LEN) >> 2] += len - remain;
  return remain === 0;
}


/** m_copym's "to the end" length. */
export const M_COPYALL = 1_000_000_000;
/** Room left before a small first packet for link headers (max_linkhdr). */
export const MAX_LINKHDR = 16;

const i32of = (mb: Mbufs): Int32Array => mb.i32;

/** A fresh mbuf like `m` (pkthdr or not), no data. */
function getLike(mb: Mbufs, how: number, type: number, pkthdr: boolean): number {
  return pkthdr ? mb.m_gethdr(how, type) : mb.m_get(how, type);
}

/**
 * m_adj: trim `req` bytes from the head (req > 0) or the tail (req < 0) of
 * the packet; the pkthdr length follows. Head trims leave empty mbufs in the
 * chain; a tail trim frees the mbufs past the new end (as current FreeBSD).
 */
export function m_adj(mb: Mbufs, mp: number, req: number): void {
  if (!Number.isInteger(req)) throw new ArgumentError(`m_adj: length must be an integer, got ${req}`);
  if (mp === 0) return;
  const i32 = i32of(mb);
  let len = req;
  let m = mp;
  if (len >= 0) {
    while (m !== 0 && len > 0) {
      const ml = i32[(m + M_LEN) >> 2];
      if (ml <= len) {
        len -= ml;
        i32[(m + M_LEN) >> 2] = 0;
        m = i32[(m + M_NEXT) >> 2];
      } else {
        i32[(m + M_LEN) >> 2] = ml - len;
        i32[(m + M_DATA) >> 2] += len;
        len = 0;
      }
    }
    if ((i32[(mp + M_FLAGS) >> 2] & M_PKTHDR) !== 0) i32[(mp + PH_LEN) >> 2] -= req - len;
    return;
  }
  len = -len;
  let count = m_length(mb, mp);
  const trimmed = Math.min(len, count);
  count -= trimmed;
  if ((i32[(mp + M_FLAGS) >> 2] & M_PKTHDR) !== 0) i32[(mp + PH_LEN) >> 2] = count;
  for (m = mp; m !== 0; m = i32[(m + M_NEXT) >> 2]) {
    const ml = i32[(m + M_LEN) >> 2];
    if (ml >= count) {
      i32[(m + M_LEN) >> 2] = count;
      const rest = i32[(m + M_NEXT) >> 2];
      if (rest !== 0) {
        i32[(m + M_NEXT) >> 2] = 0;
        mb.m_freem(rest);
      }
      break;
    }
    count -= ml;
  }
}

/**
 * What m_move_pkthdr and m_dup_pkthdr share: free `to`'s own tags (if it
 * has a header), give it `from`'s copyable flags (keeping its own M_EXT and
 * M_RDONLY: both describe to's storage, not the packet, so a fresh copy of
 * read-only storage is writable),
 * point a non-external `to`'s data after its header, and copy every header
 * field from PH_RCVIF on (the tag list head included: the callers decide
 * what `to`'s and `from`'s tag lists become). No lock, no sleep.
 */
function copyPkthdrFields(mb: Mbufs, i32: Int32Array, to: number, from: number): void {
  const tf = i32[(to + M_FLAGS) >> 2];
  if ((tf & M_PKTHDR) !== 0 && i32[(to + L.PH_TAGS) >> 2] !== 0) m_tag_delete_chain(mb, to, 0);
  i32[(to + M_FLAGS) >> 2] = (i32[(from + M_FLAGS) >> 2] & L.M_COPYFLAGS & ~M_RDONLY) | (tf & (M_EXT | M_RDONLY));
  if ((tf & M_EXT) === 0) i32[(to + M_DATA) >> 2] = to + MPKTHSIZE;
  for (let off = L.PH_RCVIF; off < L.MPKTHSIZE; off += 4) i32[(to + off) >> 2] = i32[(from + off) >> 2];
}

/**
 * m_move_pkthdr: move the packet header (and its tags) from `from` to `to`;
 * `from` loses M_PKTHDR. `to`'s own tags, if any, are freed first.
 */
export function m_move_pkthdr(mb: Mbufs, to: number, from: number): void {
  M_ASSERTPKTHDR(mb, from);
  const i32 = i32of(mb);
  copyPkthdrFields(mb, i32, to, from);
  i32[(from + L.PH_TAGS) >> 2] = 0;
  i32[(from + M_FLAGS) >> 2] &= ~M_PKTHDR;
}

/**
 * m_dup_pkthdr: copy the packet header of `from` to `to`, deep-copying the
 * tags. `to`'s existing tags (a fresh MAC label) are freed first. Returns
 * false when a tag copy failed (to keeps the fields but no tags).
 */
export function m_dup_pkthdr(mb: Mbufs, to: number, from: number, how: number): boolean {
  M_ASSERTPKTHDR(mb, from);
  const i32 = i32of(mb);
  copyPkthdrFields(mb, i32, to, from);
  i32[(to + L.PH_TAGS) >> 2] = 0;
  return m_tag_copy_chain(mb, to, from, how);
}

/**
 * m_prepend: put a new mbuf of `len` bytes (data at its end, M_ALIGN) in
 * front of m, moving the packet header to it. On failure the whole chain
 * is freed and 0 returned (mbuf(9)).
 */
export function m_prepend(mb: Mbufs, m: number, len: number, how: number): number {
  checkLen(len, 'm_prepend len');
  const i32 = i32of(mb);
  const pkthdr = (i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0;
  if (len > (pkthdr ? L.MHLEN : L.MLEN)) throw new ArgumentError(`m_prepend: ${len} bytes do not fit one mbuf`);
  const mn = getLike(mb, how, i32[(m + L.M_TYPE) >> 2], pkthdr);
  if (mn === 0) {
    mb.m_freem(m);
    return 0;
  }
  if (pkthdr) m_move_pkthdr(mb, mn, m);
  i32[(mn + M_NEXT) >> 2] = m;
  i32[(mn + M_DATA) >> 2] = M_START(mb, mn) + M_SIZE(mb, mn) - len;
  i32[(mn + M_LEN) >> 2] = len;
  return mn;
}

/**
 * M_PREPEND: make room for `plen` bytes at the front, in place when the
 * leading space allows, else with m_prepend; the pkthdr length grows.
 * Returns the new head, or 0 with the chain freed.
 */
export function M_PREPEND(mb: Mbufs, m: number, plen: number, how: number): number {
  checkLen(plen, 'M_PREPEND len');
  const i32 = i32of(mb);
  if (M_LEADINGSPACE(mb, m) >= plen) {
    i32[(m + M_DATA) >> 2] -= plen;
    i32[(m + M_LEN) >> 2] += plen;
  } else {
    m = m_prepend(mb, m, plen, how);
    if (m === 0) return 0;
  }
  if ((i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0) i32[(m + PH_LEN) >> 2] += plen;
  return m;
}

/** M_ALIGN / MH_ALIGN: place `len` bytes at the end of an empty mbuf's buffer. */
export function M_ALIGN(mb: Mbufs, m: number, len: number): void {
  mb.i32[(m + M_DATA) >> 2] = M_START(mb, m) + ((M_SIZE(mb, m) - len) & ~3);
}

/**
 * m_copym: a chain referencing `len` bytes (M_COPYALL: to the end) from
 * offset `off`: clusters are shared (reference, no copy; the copies are
 * read-only by M_WRITABLE), small mbufs copied. A copy from offset 0 of a
 * packet gets a duplicated packet header. 0 on failure, original untouched.
 */
export function m_copym(mb: Mbufs, m: number, off0: number, len: number, how: number): number {
  checkLen(off0, 'm_copym off');
  checkLen(len, 'm_copym len');
  checkHow(how);
  const i32 = i32of(mb);
  let off = off0;
  let copyhdr = off === 0 && m !== 0 && (i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0;
  while (off > 0) {
    if (m === 0) throw new ArgumentError('m_copym: offset beyond the end of the chain');
    if (off < i32[(m + M_LEN) >> 2]) break;
    off -= i32[(m + M_LEN) >> 2];
    m = i32[(m + M_NEXT) >> 2];
  }
  let top = 0;
  let tail = 0;
  while (len > 0) {
    if (m === 0) {
      if (len !== M_COPYALL) {
        mb.m_freem(top);
        throw new ArgumentError('m_copym: length beyond the end of the chain');
      }
      break;
    }
    const n = getLike(mb, how, i32[(m + L.M_TYPE) >> 2], copyhdr);
    if (n === 0) {
      mb.m_freem(top);
      return 0;
    }
    if (tail === 0) top = n;
    else i32[(tail + M_NEXT) >> 2] = n;
    tail = n;
    if (copyhdr) {
      if (!m_dup_pkthdr(mb, n, m, how)) {
        mb.m_freem(top);
        return 0;
      }
      if (len === M_COPYALL) i32[(n + PH_LEN) >> 2] -= off0;
      else i32[(n + PH_LEN) >> 2] = len;
      copyhdr = false;
    }
    const k = Math.min(len, i32[(m + M_LEN) >> 2] - off);
    i32[(n + M_LEN) >> 2] = k;
    if ((i32[(m + M_FLAGS) >> 2] & M_EXT) !== 0) {
      i32[(n + M_DATA) >> 2] = i32[(m + M_DATA) >> 2] + off;
      mb.dupExt(n, m);
    } else {
      const s = i32[(m + M_DATA) >> 2] + off;
      mb.u8.copyWithin(i32[(n + M_DATA) >> 2], s, s + k);
    }
    if (len !== M_COPYALL) len -= k;
    off = 0;
    m = i32[(m + M_NEXT) >> 2];
  }
  return top;
}

/** m_copypacket: m_copym of a whole packet (shared clusters, copied header). */
export function m_copypacket(mb: Mbufs, m: number, how: number): number {
  M_ASSERTPKTHDR(mb, m);
  return m_copym(mb, m, 0, M_COPYALL, how);
}

/**
 * m_dup: a deep, writable copy of a packet (data copied into fresh mbufs and
 * clusters, header and tags duplicated). 0 on failure, original untouched.
 */
export function m_dup(mb: Mbufs, m: number, how: number): number {
  if (m === 0) return 0;
  M_ASSERTPKTHDR(mb, m);
  const i32 = i32of(mb);
  const total = m_length(mb, m);
  let remain = total;
  let top = 0;
  let tail = 0;
  let moff = 0;
  let src = m;
  do {
    const first = top === 0;
    const n = remain >= L.MINCLSIZE ? mb.m_getcl(how, i32[(m + L.M_TYPE) >> 2], first ? M_PKTHDR : 0) : getLike(mb, how, i32[(m + L.M_TYPE) >> 2], first);
    if (n === 0) {
      mb.m_freem(top);
      return 0;
    }
    if (first) {
      top = n;
      if (!m_dup_pkthdr(mb, n, m, how)) {
        mb.m_freem(top);
        return 0;
      }
    } else i32[(tail + M_NEXT) >> 2] = n;
    tail = n;
    const room = M_TRAILINGSPACE(mb, n);
    let filled = 0;
    while (filled < room && src !== 0) {
      const sl = i32[(src + M_LEN) >> 2] - moff;
      if (sl <= 0) {
        src = i32[(src + M_NEXT) >> 2];
        moff = 0;
        continue;
      }
      const k = Math.min(sl, room - filled);
      const s = i32[(src + M_DATA) >> 2] + moff;
      mb.u8.copyWithin(i32[(n + M_DATA) >> 2] + filled, s, s + k);
      filled += k;
      moff += k;
    }
    i32[(n + M_LEN) >> 2] = filled;
    remain -= filled;
  } while (remain > 0);
  return top;
}

/**
 * m_cat: append chain n to m. n's bytes are copied into m's last mbuf when
 * it is writable, n has no external storage and they fit (n is then freed);
 * otherwise n is linked. Packet header lengths are not touched.
 */
export function m_cat(mb: Mbufs, m: number, n: number): void {
  const i32 = i32of(mb);
  m = m_last(mb, m);
  while (n !== 0) {
    const nl = i32[(n + M_LEN) >> 2];
    if (!M_WRITABLE(mb, m) || (i32[(n + M_FLAGS) >> 2] & M_EXT) !== 0 || M_TRAILINGSPACE(mb, m) < nl) {
      i32[(m + M_NEXT) >> 2] = n;
      return;
    }
    const s = i32[(n + M_DATA) >> 2];
    mb.u8.copyWithin(i32[(m + M_DATA) >> 2] + i32[(m + M_LEN) >> 2], s, s + nl);
    i32[(m + M_LEN) >> 2] += nl;
    n = mb.m_free(n);
  }
}

/** m_demote_pkthdr: strip n's packet header (tags freed). */
export function m_demote_pkthdr(mb: Mbufs, m: number): void {
  M_ASSERTPKTHDR(mb, m);
  if (mb.i32[(m + L.PH_TAGS) >> 2] !== 0) m_tag_delete_chain(mb, m, 0);
  mb.i32[(m + M_FLAGS) >> 2] &= ~M_PKTHDR;
}

/** m_catpkt: append packet n to packet m; m's length grows, n loses its header. */
export function m_catpkt(mb: Mbufs, m: number, n: number): void {
  M_ASSERTPKTHDR(mb, m);
  M_ASSERTPKTHDR(mb, n);
  mb.i32[(m + PH_LEN) >> 2] += mb.i32[(n + PH_LEN) >> 2];
  m_demote_pkthdr(mb, n);
  m_cat(mb, m, n);
}

/**
 * The copy shared by m_pullup and m_copyup: move `len` bytes from the front
 * of chain n to the end of the data of mbuf m (which has room for them in
 * its own storage), freeing the mbufs of n it empties, and link the rest of
 * n after m. Returns m, or 0 when n held fewer than `len` bytes (m and the
 * rest of n freed). Plain function on the packet path: no lock, no sleep,
 * no allocation.
 */
function pullInto(mb: Mbufs, i32: Int32Array, m: number, n: number, len: number): number {
  let space = m + L.MSIZE - (i32[(m + M_DATA) >> 2] + i32[(m + M_LEN) >> 2]);
  do {
    const count = Math.min(len, space, i32[(n + M_LEN) >> 2]);
    const s = i32[(n + M_DATA) >> 2];
    mb.u8.copyWithin(i32[(m + M_DATA) >> 2] + i32[(m + M_LEN) >> 2], s, s + count);
    len -= count;
    i32[(m + M_LEN) >> 2] += count;
    i32[(n + M_LEN) >> 2] -= count;
    space -= count;
    if (i32[(n + M_LEN) >> 2] !== 0) i32[(n + M_DATA) >> 2] += count;
    else n = mb.m_free(n);
  } while (len > 0 && n !== 0);
  if (len > 0) {
    mb.m_free(m);
    mb.m_freem(n);
    return 0;
  }
  i32[(m + M_NEXT) >> 2] = n;
  return m;
}

/**
 * m_pullup: make the first `len` bytes contiguous in the first mbuf (at most
 * MHLEN, more than the chain holds fails). On failure the chain is freed and
 * 0 returned (mbuf(9)).
 */
export function m_pullup(mb: Mbufs, n: number, len: number): number {
  checkLen(len, 'm_pullup len');
  const i32 = i32of(mb);
  if (i32[(n + M_LEN) >> 2] >= len) return n;
  let m: number;
  const nf = i32[(n + M_FLAGS) >> 2];
  if ((nf & M_EXT) === 0 && i32[(n + M_DATA) >> 2] + len < n + L.MSIZE && i32[(n + M_NEXT) >> 2] !== 0) {
    m = n;
    len -= i32[(m + M_LEN) >> 2];
    n = i32[(n + M_NEXT) >> 2];
  } else {
    if (len > L.MHLEN) {
      mb.m_freem(n);
      return 0;
    }
    m = mb.m_get(M_NOWAIT, i32[(n + L.M_TYPE) >> 2]);
    if (m === 0) {
      mb.m_freem(n);
      return 0;
    }
    if ((nf & M_PKTHDR) !== 0) m_move_pkthdr(mb, m, n);
  }
  return pullInto(mb, i32, m, n, len);
}

/**
 * m_copyup: like m_pullup, but always into a new first mbuf with `dstoff`
 * bytes of leading space. Fails (chain freed) when len > MHLEN - dstoff.
 */
export function m_copyup(mb: Mbufs, n: number, len: number, dstoff: number): number {
  checkLen(len, 'm_copyup len');
  checkLen(dstoff, 'm_copyup dstoff');
  const i32 = i32of(mb);
  if (len > L.MHLEN - dstoff) {
    mb.m_freem(n);
    return 0;
  }
  const m = mb.m_get(M_NOWAIT, i32[(n + L.M_TYPE) >> 2]);
  if (m === 0) {
    mb.m_freem(n);
    return 0;
  }
  if ((i32[(n + M_FLAGS) >> 2] & M_PKTHDR) !== 0) m_move_pkthdr(mb, m, n);
  i32[(m + M_DATA) >> 2] += dstoff;
  return pullInto(mb, i32, m, n, len);
}

/**
 * m_pulldown: make bytes [off, off+len) contiguous in one mbuf of the chain;
 * returns that mbuf and stores the offset of the bytes in it in offp[0]. On
 * failure (past the end, len > MCLBYTES, no memory) the chain is freed and 0
 * returned (as FreeBSD).
 */
export function m_pulldown(mb: Mbufs, m: number, off: number, len: number, offp: Int32Array): number {
  checkLen(off, 'm_pulldown off');
  checkLen(len, 'm_pulldown len');
  const i32 = i32of(mb);
  if (len > L.MCLBYTES) {
    mb.m_freem(m);
    return 0;
  }
  let n = m;
  while (n !== 0 && off > 0) {
    const nl = i32[(n + M_LEN) >> 2];
    if (nl > off) break;
    off -= nl;
    n = i32[(n + M_NEXT) >> 2];
  }
  // Skip empty mbufs so that the result points at data (FreeBSD: "be sure to
  // point non-empty mbuf"); an offset at the very end so finds none and fails.
  while (n !== 0 && i32[(n + M_LEN) >> 2] === 0) n = i32[(n + M_NEXT) >> 2];
  if (n === 0 || m_length(mb, n) - off < len) {
    mb.m_freem(m);
    return 0;
  }
  const nl = i32[(n + M_LEN) >> 2];
  if (off + len <= nl) {
    offp[0] = off;
    return n;
  }
  const hlen = nl - off;
  const tlen = len - hlen;
  // Enough room after n's data: pull the tail bytes into n.
  if (M_TRAILINGSPACE(mb, n) >= tlen) {
    m_copydata(mb, i32[(n + M_NEXT) >> 2], 0, tlen, mb.u8, i32[(n + M_DATA) >> 2] + nl);
    i32[(n + M_LEN) >> 2] += tlen;
    m_adj(mb, i32[(n + M_NEXT) >> 2], tlen);
    offp[0] = off;
    return n;
  }
  // Otherwise a new mbuf (or cluster) holds the whole range after n's head part.
  const o = len > L.MLEN ? mb.m_getcl(M_NOWAIT, i32[(n + L.M_TYPE) >> 2], 0) : mb.m_get(M_NOWAIT, i32[(n + L.M_TYPE) >> 2]);
  if (o === 0) {
    mb.m_freem(m);
    return 0;
  }
  const d = i32[(o + M_DATA) >> 2];
  const s = i32[(n + M_DATA) >> 2] + off;
  mb.u8.copyWithin(d, s, s + hlen);
  m_copydata(mb, i32[(n + M_NEXT) >> 2], 0, tlen, mb.u8, d + hlen);
  m_adj(mb, i32[(n + M_NEXT) >> 2], tlen);
  i32[(o + M_LEN) >> 2] = len;
  i32[(n + M_LEN) >> 2] = off;
  i32[(o + M_NEXT) >> 2] = i32[(n + M_NEXT) >> 2];
  i32[(n + M_NEXT) >> 2] = o;
  offp[0] = 0;
  return o;
}

/**
 * m_split: cut the chain after `len0` bytes and return the tail (0 on
 * failure, with the chain as it was). A packet's tail gets its own header.
 * A cut inside a cluster makes the tail share it, so the result (and the
 * head) may be read-only (M_WRITABLE false).
 */
export function m_split(mb: Mbufs, m0: number, len0: number, how: number): number {
  checkLen(len0, 'm_split len');
  const i32 = i32of(mb);
  let len = len0;
  let m = m0;
  while (m !== 0 && len > i32[(m + M_LEN) >> 2]) {
    len -= i32[(m + M_LEN) >> 2];
    m = i32[(m + M_NEXT) >> 2];
  }
  if (m === 0) return 0;
  const remain = i32[(m + M_LEN) >> 2] - len;
  let n: number;
  if ((i32[(m0 + M_FLAGS) >> 2] & M_PKTHDR) !== 0) {
    n = mb.m_gethdr(how, i32[(m0 + L.M_TYPE) >> 2]);
    if (n === 0) return 0;
    i32[(n + L.PH_RCVIF) >> 2] = i32[(m0 + L.PH_RCVIF) >> 2];
    const total = i32[(m0 + PH_LEN) >> 2];
    if (remain === 0) {
      i32[(n + M_NEXT) >> 2] = i32[(m + M_NEXT) >> 2];
      i32[(m + M_NEXT) >> 2] = 0;
      i32[(n + PH_LEN) >> 2] = total - len0;
      i32[(m0 + PH_LEN) >> 2] = len0;
      return n;
    }
    if ((i32[(m + M_FLAGS) >> 2] & M_EXT) === 0 && remain > L.MHLEN) {
      // m cannot be the lead mbuf here (that one holds at most MHLEN).
      const rest = m_split(mb, m, len, how);
      if (rest === 0) {
        mb.m_free(n);
        return 0;
      }
      i32[(n + PH_LEN) >> 2] = total - len0;
      i32[(m0 + PH_LEN) >> 2] = len0;
      i32[(n + M_NEXT) >> 2] = rest;
      return n;
    }
    i32[(n + PH_LEN) >> 2] = total - len0;
    i32[(m0 + PH_LEN) >> 2] = len0;
    M_ALIGN(mb, n, remain);
  } else if (remain === 0) {
    n = i32[(m + M_NEXT) >> 2];
    i32[(m + M_NEXT) >> 2] = 0;
    return n;
  } else {
    n = mb.m_get(how, i32[(m + L.M_TYPE) >> 2]);
    if (n === 0) return 0;
    M_ALIGN(mb, n, remain);
  }
  if ((i32[(m + M_FLAGS) >> 2] & M_EXT) !== 0 && remain > 0) {
    i32[(n + M_DATA) >> 2] = i32[(m + M_DATA) >> 2] + len;
    mb.dupExt(n, m);
  } else {
    const s = i32[(m + M_DATA) >> 2] + len;
    mb.u8.copyWithin(i32[(n + M_DATA) >> 2], s, s + remain);
  }
  i32[(n + M_LEN) >> 2] = remain;
  i32[(m + M_LEN) >> 2] = len;
  i32[(n + M_NEXT) >> 2] = i32[(m + M_NEXT) >> 2];
  i32[(m + M_NEXT) >> 2] = 0;
  return n;
}

/**
 * m_getm2: append to m (or make, when m is 0) a chain with room for `len`
 * bytes: jumbo page clusters for large remainders, clusters, else mbufs; the
 * first mbuf gets a pkthdr when flags has M_PKTHDR and m is 0, the last M_EOR
 * (and m's old last mbuf loses M_EOR). On failure the new part is freed and 0
 * returned; m is left as it was. len 0: see below.
 */
export function m_getm2(mb: Mbufs, m: number, len: number, how: number, type: number, flags: number): number {
  checkLen(len, 'm_getm2 len');
  checkHow(how);
  const i32 = i32of(mb);
  flags &= M_PKTHDR | L.M_EOR;
  if ((flags & M_PKTHDR) !== 0 && m !== 0) flags &= ~M_PKTHDR;
  let nm = 0;
  let mtail = 0;
  while (len > 0) {
    let n = 0;
    if (len > L.MCLBYTES) n = mb.m_getjcl(M_NOWAIT, type, flags & M_PKTHDR, L.MJUMPAGESIZE);
    if (n === 0) {
      if (len >= L.MINCLSIZE) n = mb.m_getcl(how, type, flags & M_PKTHDR);
      else n = (flags & M_PKTHDR) !== 0 ? mb.m_gethdr(how, type) : mb.m_get(how, type);
    }
    if (n === 0) {
      mb.m_freem(nm);
      return 0;
    }
    len -= M_SIZE(mb, n);
    if (mtail !== 0) i32[(mtail + M_NEXT) >> 2] = n;
    else nm = n;
    mtail = n;
    flags &= ~M_PKTHDR;
  }
  if (nm === 0) {
    // len 0. Appending nothing to m: m comes back, its last mbuf ending the
    // record only when M_EOR was asked for (FreeBSD would clear it, and
    // dereference a NULL tail with M_EOR). Without m: one empty mbuf, so that
    // a successful call always returns a chain (FreeBSD returns NULL, which
    // its callers cannot tell from a failure; they avoid len 0).
    if (m !== 0) {
      const last = m_last(mb, m);
      if ((flags & L.M_EOR) !== 0) i32[(last + M_FLAGS) >> 2] |= L.M_EOR;
      else i32[(last + M_FLAGS) >> 2] &= ~L.M_EOR;
      return m;
    }
    nm = (flags & M_PKTHDR) !== 0 ? mb.m_gethdr(how, type) : mb.m_get(how, type);
    if (nm === 0) return 0;
    mtail = nm;
  }
  if ((flags & L.M_EOR) !== 0) i32[(mtail + M_FLAGS) >> 2] |= L.M_EOR;
  if (m !== 0) {
    const last = m_last(mb, m);
    i32[(last + M_NEXT) >> 2] = nm;
    i32[(last + M_FLAGS) >> 2] &= ~L.M_EOR;
    return m;
  }
  return nm;
}

/** m_getm: m_getm2 with M_PKTHDR. */
export function m_getm(mb: Mbufs, m: number, len: number, how: number, type: number): number {
  return m_getm2(mb, m, len, how, type, M_PKTHDR);
}

/**
 * m_copyback: copy len bytes of src into the chain at offset off, extending
 * the chain (zero-filling any gap) with mbufs as needed; the pkthdr length
 * grows to cover it. Stops quietly when an mbuf cannot be had. The caller
 * makes sure the bytes it overwrites are writable (as in FreeBSD).
 */
export function m_copyback(mb: Mbufs, m0: number, off: number, len: number, src: Uint8Array, srcOff = 0): void {
  checkLen(off, 'm_copyback off');
  checkLen(len, 'm_copyback len');
  if (srcOff + len > src.length) throw new ArgumentError('m_copyback: source too small');
  const i32 = i32of(mb);
  let m = m0;
  let totlen = 0;
  let mlen: number;
  if (m0 === 0 || len === 0) return; // nothing to copy: the chain is not extended
  while (off > (mlen = i32[(m + M_LEN) >> 2])) {
    off -= mlen;
    totlen += mlen;
    if (i32[(m + M_NEXT) >> 2] === 0) {
      const n = mb.m_get(M_NOWAIT, i32[(m + L.M_TYPE) >> 2]);
      if (n === 0) return finishCopyback(mb, m0, totlen);
      mb.u8.fill(0, i32[(n + M_DATA) >> 2], i32[(n + M_DATA) >> 2] + L.MLEN);
      i32[(n + M_LEN) >> 2] = Math.min(L.MLEN, len + off);
      i32[(m + M_NEXT) >> 2] = n;
    }
    m = i32[(m + M_NEXT) >> 2];
  }
  while (len > 0) {
    const ml = i32[(m + M_LEN) >> 2];
    if (i32[(m + M_NEXT) >> 2] === 0 && len > ml - off) {
      i32[(m + M_LEN) >> 2] += Math.min(len - (ml - off), M_TRAILINGSPACE(mb, m));
    }
    mlen = Math.min(i32[(m + M_LEN) >> 2] - off, len);
    mb.copier.copyIn(src, srcOff, mlen, i32[(m + M_DATA) >> 2] + off, mlen);
    srcOff += mlen;
    len -= mlen;
    totlen += mlen + off;
    off = 0;
    if (len === 0) break;
    if (i32[(m + M_NEXT) >> 2] === 0) {
      const n = mb.m_get(M_NOWAIT, i32[(m + L.M_TYPE) >> 2]);
      if (n === 0) break;
      i32[(n + M_LEN) >> 2] = Math.min(L.MLEN, len);
      i32[(m + M_NEXT) >> 2] = n;
    }
    m = i32[(m + M_NEXT) >> 2];
  }
  finishCopyback(mb, m0, totlen);
}

function finishCopyback(mb: Mbufs, m0: number, totlen: number): void {
  const i32 = i32of(mb);
  if ((i32[(m0 + M_FLAGS) >> 2] & M_PKTHDR) !== 0 && i32[(m0 + PH_LEN) >> 2] < totlen) i32[(m0 + PH_LEN) >> 2] = totlen;
}

/**
 * m_apply: call f(arg, dataOffset, length) over `len` bytes from `off`,
 * segment by segment; stop at the first non-zero result and return it.
 */
export function m_apply(mb: Mbufs, m: number, off: number, len: number, f: (arg: number, data: number, len: number) => number, arg = 0): number {
  checkLen(off, 'm_apply off');
  checkLen(len, 'm_apply len');
  const i32 = i32of(mb);
  while (off > 0) {
    if (m === 0) throw new ArgumentError('m_apply: offset beyond the end of the chain');
    if (off < i32[(m + M_LEN) >> 2]) break;
    off -= i32[(m + M_LEN) >> 2];
    m = i32[(m + M_NEXT) >> 2];
  }
  while (len > 0) {
    if (m === 0) throw new ArgumentError('m_apply: length beyond the end of the chain');
    const count = Math.min(i32[(m + M_LEN) >> 2] - off, len);
    const rval = f(arg, i32[(m + M_DATA) >> 2] + off, count);
    if (rval !== 0) return rval;
    len -= count;
    off = 0;
    m = i32[(m + M_NEXT) >> 2];
  }
  return 0;
}

/**
 * m_getptr: the mbuf holding byte `loc` of the chain, its offset in offp[0];
 * loc == length gives the last mbuf and its m_len. 0 when beyond.
 */
export function m_getptr(mb: Mbufs, m: number, loc: number, offp: Int32Array): number {
  checkLen(loc, 'm_getptr loc');
  const i32 = i32of(mb);
  while (m !== 0) {
    const ml = i32[(m + M_LEN) >> 2];
    if (ml > loc) {
      offp[0] = loc;
      return m;
    }
    loc -= ml;
    if (i32[(m + M_NEXT) >> 2] === 0) {
      if (loc === 0) {
        offp[0] = ml;
        return m;
      }
      return 0;
    }
    m = i32[(m + M_NEXT) >> 2];
  }
  return 0;
}

/**
 * m_devget: a packet holding `totlen` bytes of src (from srcOff), with `off`
 * bytes of leading space in the first mbuf (ETHER_ALIGN, the seed's offset
 * argument) and rcvif set; always M_NOWAIT (driver context). 0 on failure
 * (nothing leaked) or when totlen <= 0 or off is outside 0..MHLEN.
 */
export function m_devget(mb: Mbufs, src: Uint8Array, srcOff: number, totlen: number, off: number, ifindex: number): number {
  if (!Number.isInteger(totlen) || totlen <= 0 || !Number.isInteger(off) || off < 0 || off > L.MHLEN) return 0;
  if (srcOff + totlen > src.length) throw new ArgumentError('m_devget: source too small');
  const i32 = i32of(mb);
  let top = 0;
  let tail = 0;
  while (totlen > 0) {
    let m: number;
    let len: number;
    if (top === 0) {
      if (totlen + off >= L.MINCLSIZE) {
        m = mb.m_getcl(M_NOWAIT, L.MT_DATA, M_PKTHDR);
        len = L.MCLBYTES;
      } else {
        m = mb.m_gethdr(M_NOWAIT, L.MT_DATA);
        len = L.MHLEN;
        if (m !== 0 && totlen + off + MAX_LINKHDR <= L.MHLEN) {
          i32[(m + M_DATA) >> 2] += MAX_LINKHDR;
          len -= MAX_LINKHDR;
        }
      }
      if (m === 0) return 0;
      i32[(m + L.PH_RCVIF) >> 2] = ifindex;
      i32[(m + PH_LEN) >> 2] = totlen;
      top = m;
    } else {
      if (totlen + off >= L.MINCLSIZE) {
        m = mb.m_getcl(M_NOWAIT, L.MT_DATA, 0);
        len = L.MCLBYTES;
      } else {
        m = mb.m_get(M_NOWAIT, L.MT_DATA);
        len = L.MLEN;
      }
      if (m === 0) {
        mb.m_freem(top);
        return 0;
      }
      i32[(tail + M_NEXT) >> 2] = m;
    }
    tail = m;
    if (off !== 0) {
      i32[(m + M_DATA) >> 2] += off;
      len -= off;
      off = 0;
    }
    const room = len;
    len = Math.min(totlen, len);
    i32[(m + M_LEN) >> 2] = len;
    mb.copier.copyIn(src, srcOff, len, i32[(m + M_DATA) >> 2], room);
    srcOff += len;
    totlen -= len;
  }
  return top;
}

/** m_uiotombuf's iovec for a single buffer (synchronous use only; cleared after). */
const ONE_IOV: Uint8Array[] = [new Uint8Array(0)];
const EMPTY = new Uint8Array(0);

/**
 * m_uiotombuf: a chain holding the bytes of a Buffer/Uint8Array or an array
 * of them (an iovec), at most `len` bytes when len > 0, with `align` bytes of
 * leading space; M_PKTHDR in flags gives a packet header with its length.
 * 0 on failure (nothing leaked) or when align >= MHLEN.
 */
export function m_uiotombuf(mb: Mbufs, uio: Uint8Array | readonly Uint8Array[], how: number, len: number, align: number, flags: number): number {
  checkLen(len, 'm_uiotombuf len');
  checkLen(align, 'm_uiotombuf align');
  let iov: readonly Uint8Array[];
  if (uio instanceof Uint8Array) {
    // One buffer: a reused one-element iovec instead of a new array per call.
    ONE_IOV[0] = uio;
    iov = ONE_IOV;
  } else {
    iov = uio;
  }
  let resid = 0;
  for (const v of iov) {
    if (!(v instanceof Uint8Array)) throw new ArgumentError('m_uiotombuf: the iovec must hold Buffers or Uint8Arrays');
    resid += v.length;
  }
  const total = len > 0 ? Math.min(resid, len) : resid;
  const m = align >= L.MHLEN ? 0 : m_getm2(mb, 0, Math.max(total + align, 1), how, L.MT_DATA, flags);
  if (m === 0) {
    ONE_IOV[0] = EMPTY;
    return 0;
  }
  const i32 = i32of(mb);
  i32[(m + M_DATA) >> 2] += align;
  let vi = 0;
  let vo = 0;
  let left = total;
  for (let mm = m; mm !== 0 && left > 0; mm = i32[(mm + M_NEXT) >> 2]) {
    const space = M_TRAILINGSPACE(mb, mm);
    const room = Math.min(space, left);
    let done = 0;
    while (done < room) {
      const v = iov[vi];
      const k = Math.min(v.length - vo, room - done);
      mb.copier.copyIn(v, vo, k, i32[(mm + M_DATA) >> 2] + done, space - done);
      done += k;
      vo += k;
      if (vo === v.length) {
        vi++;
        vo = 0;
      }
    }
    i32[(mm + M_LEN) >> 2] = room;
    left -= room;
  }
  if ((flags & M_PKTHDR) !== 0) i32[(m + PH_LEN) >> 2] = total;
  ONE_IOV[0] = EMPTY; // hold no reference to the caller's buffer
  return m;
}

/**
 * m_unshare: make every mbuf of the packet writable, copying shared or
 * read-only data into fresh storage (into the previous mbuf when it fits).
 * On failure the chain is freed and 0 returned (as FreeBSD).
 */
export function m_unshare(mb: Mbufs, m0: number, how: number): number {
  checkHow(how);
  const i32 = i32of(mb);
  let mprev = 0;
  let m = m0;
  while (m !== 0) {
    const next = i32[(m + M_NEXT) >> 2];
    if (M_WRITABLE(mb, m)) {
      mprev = m;
      m = next;
      continue;
    }
    const ml = i32[(m + M_LEN) >> 2];
    // Small enough to fold into the previous (writable) mbuf?
    if (mprev !== 0 && M_TRAILINGSPACE(mb, mprev) >= ml && (i32[(m + M_FLAGS) >> 2] & M_PKTHDR) === 0) {
      const s = i32[(m + M_DATA) >> 2];
      mb.u8.copyWithin(i32[(mprev + M_DATA) >> 2] + i32[(mprev + M_LEN) >> 2], s, s + ml);
      i32[(mprev + M_LEN) >> 2] += ml;
      i32[(mprev + M_NEXT) >> 2] = next;
      mb.m_free(m);
      m = next;
      continue;
    }
    // Replace m by fresh writable storage holding the same bytes.
    const pk = (i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0;
    const n = ml > (pk ? L.MHLEN : L.MLEN) ? mb.m_getcl(how, i32[(m + L.M_TYPE) >> 2], pk ? M_PKTHDR : 0) : getLike(mb, how, i32[(m + L.M_TYPE) >> 2], pk);
    if (n === 0 || (ml > L.MCLBYTES)) {
      if (n !== 0) mb.m_free(n);
      if (ml > L.MCLBYTES) return unshareBig(mb, m0, mprev, m, how);
      mb.m_freem(m0);
      return 0;
    }
    if (pk) m_move_pkthdr(mb, n, m);
    const s = i32[(m + M_DATA) >> 2];
    mb.u8.copyWithin(i32[(n + M_DATA) >> 2], s, s + ml);
    i32[(n + M_LEN) >> 2] = ml;
    i32[(n + M_NEXT) >> 2] = next;
    if (mprev === 0) m0 = n;
    else i32[(mprev + M_NEXT) >> 2] = n;
    mb.m_free(m);
    mprev = n;
    m = next;
  }
  return m0;
}

/** m_unshare of a shared jumbo cluster: its bytes go to a fresh chain of clusters. */
function unshareBig(mb: Mbufs, m0: number, mprev: number, m: number, how: number): number {
  const i32 = i32of(mb);
  const ml = i32[(m + M_LEN) >> 2];
  const pk = (i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0;
  const bytes = mb.u8.subarray(i32[(m + M_DATA) >> 2], i32[(m + M_DATA) >> 2] + ml);
  const n = m_getm2(mb, 0, ml, how, i32[(m + L.M_TYPE) >> 2], pk ? M_PKTHDR : 0);
  if (n === 0) {
    mb.m_freem(m0);
    return 0;
  }
  if (pk) m_move_pkthdr(mb, n, m);
  let left = ml;
  let at = 0;
  let last = n;
  for (let x = n; x !== 0 && left > 0; x = i32[(x + M_NEXT) >> 2]) {
    const k = Math.min(M_TRAILINGSPACE(mb, x), left);
    mb.u8.copyWithin(i32[(x + M_DATA) >> 2], bytes.byteOffset + at, bytes.byteOffset + at + k);
    i32[(x + M_LEN) >> 2] = k;
    at += k;
    left -= k;
    last = x;
  }
  const next = i32[(m + M_NEXT) >> 2];
  const extra = i32[(last + M_NEXT) >> 2];
  if (extra !== 0) {
    i32[(last + M_NEXT) >> 2] = 0;
    mb.m_freem(extra);
  }
  i32[(last + M_NEXT) >> 2] = next;
  if (mprev === 0) m0 = n;
  else i32[(mprev + M_NEXT) >> 2] = n;
  mb.m_free(m);
  return m_unshare(mb, m0, how);
}

/** Copy a chain's bytes into a new Uint8Array (the edge: tests, pcap, sockets' userland copy). */
export function m_tobytes(mb: Mbufs, m: number): Uint8Array {
  const out = new Uint8Array(m_length(mb, m));
  m_copydata(mb, m, 0, out.length, out);
  return out;
}

/** Iterate zero-copy views of every non-empty segment of a chain. */
export function* m_segments(mb: Mbufs, m: number): Generator<Uint8Array> {
  const i32 = i32of(mb);
  for (; m !== 0; m = i32[(m + M_NEXT) >> 2]) {
    const len = i32[(m + M_LEN) >> 2];
    if (len > 0) yield mb.u8.subarray(i32[(m + M_DATA) >> 2], i32[(m + M_DATA) >> 2] + len);
  }
}

/** Number of mbufs in a chain. */
export function m_count(mb: Mbufs, m: number): number {
  let n = 0;
  for (; m !== 0; m = mb.i32[(m + M_NEXT) >> 2]) n++;
  return n;
}

/** m_fixhdr: set the pkthdr length from the chain; returns it. */
export function m_fixhdr(mb: Mbufs, m: number): number {
  M_ASSERTPKTHDR(mb, m);
  const len = m_length(mb, m);
  mb.i32[(m + PH_LEN) >> 2] = len;
  return len;
}
