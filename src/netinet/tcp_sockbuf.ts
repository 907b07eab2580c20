/**
 * The protocol side's socket buffers of a TCP connection (struct sockbuf,
 * single-thread form, uipc_sockbuf.c): a chain of mbufs with its byte count
 * (sb_ccc), high and low water marks and state bits.
 *
 * so_snd holds data written but not yet acknowledged: sbappendstream copies
 * user bytes into clusters (filling the last one first), tcp_output copies
 * a range at an offset with m_copym (sbsndptr-style: the clusters are
 * shared, nothing is copied), and sbdrop frees what the peer acknowledged.
 * so_rcv holds in-order received data: the segments' own mbufs are appended
 * (zero copy) and the reader copies out and drops.
 *
 * Touched only by the stack's thread; no lock; never sleeps (M_NOWAIT).
 */
import { M_NOWAIT } from '../uma/flags.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_DATA, M_EXT, M_FLAGS, M_LEN, M_NEXT, M_PKTHDR, M_RDONLY, MCLBYTES, MSIZE, MT_DATA, PH_TAGS } from '../kern/mbuf/layout.js';
import { m_copym, M_SIZE, M_TRAILINGSPACE, M_WRITABLE } from '../kern/mbuf/ops.js';
import { m_tag_delete_chain } from '../kern/mbuf/tags.js';

/** sb_state bits */
export const SBS_CANTSENDMORE = 0x0010;
export const SBS_CANTRCVMORE = 0x0020;
/** The peer's FIN arrived: the reader sees EOF once the buffer is empty. */
export const SBS_RCVDFIN = 0x1000;

/**
 * sb_max_adj: the largest buffer sbreserve grants, kern.ipc.maxsockbuf scaled
 * by MCLBYTES / (MSIZE + MCLBYTES) (the rest of sb_max pays for mbuf
 * headers): 1864135 bytes for the default 2 MiB. Pure; never sleeps.
 */
export function sbMaxAdj(maxsockbuf: number): number {
  return Math.floor((maxsockbuf * MCLBYTES) / (MSIZE + MCLBYTES));
}

export class Sockbuf {
  /** First and last mbuf of the chain (0: empty). */
  mb0 = 0;
  mbtail = 0;
  /** Bytes in the chain (sb_ccc). */
  cc = 0;
  hiwat: number;
  lowat = 1;
  state = 0;
  /**
   * SB_AUTOSIZE: TCP may grow the buffer with the path (tcp_autorcvbuf,
   * tcp_sndbuf_autoscale). Set for every new socket, cleared by
   * setsockopt(SO_SNDBUF / SO_RCVBUF) and when a growth would pass sb_max_adj.
   */
  autosize = true;
  /** Storage the chain pins (sb_mbcnt: MSIZE per mbuf plus its cluster), bounded by 8 x hiwat (sb_mbmax). */
  mbcnt = 0;

  constructor(
    readonly mb: Mbufs,
    hiwat: number,
  ) {
    this.hiwat = hiwat;
  }

  /**
   * sbspace: room left, the lesser of the bytes under hiwat and the storage
   * under sb_mbmax (8 x hiwat, FreeBSD's sb_efficiency), so a stream of tiny
   * segments cannot pin unbounded mbufs. May be negative after a shrink.
   */
  space(): number {
    return Math.min(this.hiwat - this.cc, 8 * this.hiwat - this.mbcnt);
  }

  private static storage(mb: Mbufs, m: number): number {
    return (mb.i32[(m + M_FLAGS) >> 2] & M_EXT) !== 0 ? MSIZE + M_SIZE(mb, m) : MSIZE;
  }

  /**
   * sbappendstream for a packet's data: append chain m (its packet header
   * is stripped; empty mbufs are freed). Consumes m.
   */
  appendChain(m: number, len: number): void {
    const mb = this.mb;
    const i32 = mb.i32;
    if ((i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0) {
      if (i32[(m + PH_TAGS) >> 2] !== 0) m_tag_delete_chain(mb, m, 0);
      i32[(m + M_FLAGS) >> 2] &= ~M_PKTHDR;
    }
    while (m !== 0) {
      const next = i32[(m + M_NEXT) >> 2];
      const l = i32[(m + M_LEN) >> 2];
      if (l === 0) {
        mb.m_free(m);
      } else if (this.mbtail !== 0 && l <= 128 && (i32[(this.mbtail + M_FLAGS) >> 2] & M_EXT) === 0 && M_TRAILINGSPACE(mb, this.mbtail) >= l) {
        // Small pieces are copied into the last mbuf (sbcompress), so tiny segments do not pin mbufs.
        const t = this.mbtail;
        const d = i32[(t + M_DATA) >> 2] + i32[(t + M_LEN) >> 2];
        const s = i32[(m + M_DATA) >> 2];
        mb.u8.copyWithin(d, s, s + l);
        i32[(t + M_LEN) >> 2] += l;
        mb.m_free(m);
      } else {
        i32[(m + M_NEXT) >> 2] = 0;
        if (this.mbtail === 0) this.mb0 = m;
        else i32[(this.mbtail + M_NEXT) >> 2] = m;
        this.mbtail = m;
        this.mbcnt += Sockbuf.storage(mb, m);
      }
      m = next;
    }
    this.cc += len;
  }

  /**
   * sbappendstream for user data: copy buf[off, off+len) into the chain,
   * filling the last mbuf's room first, then new clusters. Returns the bytes
   * taken (fewer when memory is short).
   */
  appendBytes(buf: Uint8Array, off: number, len: number): number {
    const mb = this.mb;
    const i32 = mb.i32;
    let done = 0;
    const t = this.mbtail;
    if (t !== 0 && M_WRITABLE(mb, t)) {
      const room = M_TRAILINGSPACE(mb, t);
      const n = Math.min(room, len);
      if (n > 0) {
        const d = i32[(t + M_DATA) >> 2] + i32[(t + M_LEN) >> 2];
        mb.copier.copyIn(buf, off, n, d, room);
        i32[(t + M_LEN) >> 2] += n;
        done = n;
      }
    }
    while (done < len) {
      const m = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
      if (m === 0) break;
      const room = M_TRAILINGSPACE(mb, m);
      const n = Math.min(len - done, room);
      // ArenaCopier: word copies whatever the alignment, no view per call.
      mb.copier.copyIn(buf, off + done, n, i32[(m + M_DATA) >> 2], room);
      this.link(m, n);
      done += n;
    }
    this.cc += done;
    return done;
  }

  /**
   * sbappendstream of user storage by reference (zero-copy send): append
   * mbufs whose external storage is arena memory [addr, addr+len), each
   * piece at most `piece` bytes with its own reference count, freed through
   * the ext free routine `freeId` (arg1, arg2 passed on) when the last copy
   * of it goes (acknowledged and dropped, or flushed). Read-only (M_RDONLY):
   * nothing in the stack writes into the user's memory. Returns the bytes
   * taken (fewer when mbufs run out); `onPiece` runs once per mbuf attached,
   * before any of them can be freed. Never sleeps.
   */
  appendExt(addr: number, len: number, piece: number, freeId: number, arg1: number, arg2: number, onPiece: () => void): number {
    const mb = this.mb;
    const i32 = mb.i32;
    let done = 0;
    while (done < len) {
      const m = mb.m_get(M_NOWAIT, MT_DATA);
      if (m === 0) break;
      const n = Math.min(len - done, piece);
      mb.m_extadd(m, addr + done, n, freeId, arg1, arg2, M_RDONLY);
      onPiece();
      this.link(m, n);
      done += n;
    }
    this.cc += done;
    return done;
  }

  /** Put m (holding n bytes) at the chain's end and count its storage (cc is the caller's). */
  private link(m: number, n: number): void {
    const i32 = this.mb.i32;
    i32[(m + M_LEN) >> 2] = n;
    if (this.mbtail === 0) this.mb0 = m;
    else i32[(this.mbtail + M_NEXT) >> 2] = m;
    this.mbtail = m;
    this.mbcnt += Sockbuf.storage(this.mb, m);
  }

  /** sbdrop: free `len` bytes from the front. */
  drop(len: number): void {
    const mb = this.mb;
    const i32 = mb.i32;
    if (len > this.cc) len = this.cc;
    this.cc -= len;
    let m = this.mb0;
    while (m !== 0 && len > 0) {
      const l = i32[(m + M_LEN) >> 2];
      if (l <= len) {
        len -= l;
        this.mbcnt -= Sockbuf.storage(mb, m);
        m = mb.m_free(m);
      } else {
        i32[(m + M_LEN) >> 2] = l - len;
        i32[(m + M_DATA) >> 2] += len;
        len = 0;
      }
    }
    // Empty mbufs at the front carry nothing.
    while (m !== 0 && i32[(m + M_LEN) >> 2] === 0 && m !== this.mbtail) {
      this.mbcnt -= Sockbuf.storage(mb, m);
      m = mb.m_free(m);
    }
    this.mb0 = m;
    if (m === 0) this.mbtail = 0;
  }

  /** The arena address of the first buffered byte modulo 8 (0 when empty): where a reader's copy should start to move words. */
  headAlign(): number {
    let m = this.mb0;
    const i32 = this.mb.i32;
    while (m !== 0 && i32[(m + M_LEN) >> 2] === 0) m = i32[(m + M_NEXT) >> 2];
    return m === 0 ? 0 : i32[(m + M_DATA) >> 2] & 7;
  }

  /** Copy `len` bytes at offset `off` to dst[dstOff...] (the chain is unchanged). */
  copyOut(off: number, len: number, dst: Uint8Array, dstOff: number): void {
    const i32 = this.mb.i32;
    let m = this.mb0;
    while (m !== 0 && off >= i32[(m + M_LEN) >> 2]) {
      off -= i32[(m + M_LEN) >> 2];
      m = i32[(m + M_NEXT) >> 2];
    }
    while (len > 0 && m !== 0) {
      const n = Math.min(i32[(m + M_LEN) >> 2] - off, len);
      this.mb.copier.copyOut(i32[(m + M_DATA) >> 2] + off, n, dst, dstOff);
      dstOff += n;
      len -= n;
      off = 0;
      m = i32[(m + M_NEXT) >> 2];
    }
  }

  /**
   * Take the first `len` bytes (at most cc) off the front as a chain of
   * their own, by handle: whole mbufs move, the one the boundary cuts is
   * shared (m_copym of its front, a cluster reference, no copy) and the
   * rest stays. For a reader on another thread (lib/tcpcpu.ts TCP_READ).
   * Returns the chain (no packet header), or 0 when len is 0 or memory is
   * short for the cut (nothing taken then). Never sleeps.
   */
  take(len: number): number {
    const mb = this.mb;
    const i32 = mb.i32;
    if (len > this.cc) len = this.cc;
    if (len <= 0) return 0;
    let head = 0;
    let tail = 0;
    let left = len;
    let m = this.mb0;
    while (m !== 0 && left > 0) {
      const l = i32[(m + M_LEN) >> 2];
      if (l > left) {
        const cut = m_copym(mb, m, 0, left, M_NOWAIT);
        if (cut === 0) {
          // Give back what moved: the buffer is as it was.
          if (head !== 0) {
            i32[(tail + M_NEXT) >> 2] = m;
            this.mb0 = head;
          }
          return 0;
        }
        i32[(m + M_DATA) >> 2] += left;
        i32[(m + M_LEN) >> 2] = l - left;
        if (head === 0) head = cut;
        else i32[(tail + M_NEXT) >> 2] = cut;
        left = 0;
        break;
      }
      const next = i32[(m + M_NEXT) >> 2];
      i32[(m + M_NEXT) >> 2] = 0;
      this.mbcnt -= Sockbuf.storage(mb, m);
      if (head === 0) head = m;
      else i32[(tail + M_NEXT) >> 2] = m;
      tail = m;
      left -= l;
      m = next;
      this.mb0 = m;
    }
    if (this.mb0 === 0) this.mbtail = 0;
    this.cc -= len;
    return head;
  }

  /** m_copym of `len` bytes at `off` (shared clusters); 0 on memory shortage. */
  copyChain(off: number, len: number): number {
    if (len === 0) return 0;
    return m_copym(this.mb, this.mb0, off, len, M_NOWAIT);
  }

  /** sbflush: free everything. */
  flush(): void {
    if (this.mb0 !== 0) this.mb.m_freem(this.mb0);
    this.mb0 = 0;
    this.mbtail = 0;
    this.cc = 0;
    this.mbcnt = 0;
  }
}
