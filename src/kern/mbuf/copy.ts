/**
 * Copying JS bytes into the arena fast (m_devget, m_uiotombuf, m_append,
 * m_copyback).
 *
 * Why this exists: the arena is a SharedArrayBuffer, and V8 copies into
 * shared memory with a "relaxed" memmove that moves whole words only when
 * source and destination have the same alignment modulo the word size; a
 * frame copied to m_data + ETHER_ALIGN (2) is moved byte by byte, five times
 * slower than an aligned copy. And `src.subarray()` per call costs about as
 * much as copying a 1500-byte frame.
 *
 * So: runs of a few bytes go by a byte loop; a source inside the arena
 * itself is moved with copyWithin; a run whose alignment matches
 * is copied straight (the whole source array when possible, no view made);
 * a misaligned run is first copied into private (non-shared, plain memmove)
 * scratch memory at the destination's alignment, then from the scratch into
 * the arena word by word through a pre-made view of the scratch. Those views
 * have lengths in 256-byte steps, so the copy may write up to 255 bytes past
 * the run: allowed only when the caller says that much room follows the run
 * in storage it owns (the trailing space of a fresh buffer); otherwise one
 * exact view is made.
 *
 * Per thread (one per Mbufs), no lock, never sleeps.
 */
import { MJUM16BYTES } from './layout.js';

/** Runs up to this many bytes are copied by a plain loop. */
const SHORT = 32;
/** Length step of the pre-made scratch views. */
const STEP_SHIFT = 8;
const STEP = 1 << STEP_SHIFT;
/** Largest run staged at once; longer runs go in pieces of this size. */
const CHUNK = MJUM16BYTES;
const NCLASS = CHUNK >> STEP_SHIFT;

export class ArenaCopier {
  private readonly u8: Uint8Array;
  /** Private staging memory: CHUNK bytes at any alignment 0..7, plus one step of overrun. */
  private readonly scratch = new Uint8Array(CHUNK + STEP + 8);
  /** views[a * (NCLASS + 1) + k]: scratch bytes [a, a + k * STEP), made on first use. */
  private readonly views: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(8 * (NCLASS + 1));

  constructor(u8: Uint8Array) {
    this.u8 = u8;
  }

  /**
   * Copy src[srcOff, srcOff + len) to arena offset dst. `room` (>= len) is
   * how many bytes from dst the caller owns and may see overwritten (bytes
   * past len get junk). Bounds are the caller's to check.
   */
  copyIn(src: Uint8Array, srcOff: number, len: number, dst: number, room: number): void {
    const u8 = this.u8;
    if (len <= SHORT) {
      for (let k = 0; k < len; k++) u8[dst + k] = src[srcOff + k];
      return;
    }
    if (src.buffer === u8.buffer) {
      // Already in the arena: no view needed. (A misaligned pair is moved byte
      // by byte whatever we do: one of the two shared-memory copies a staging
      // would need is misaligned too.)
      const s = src.byteOffset - u8.byteOffset + srcOff;
      u8.copyWithin(dst, s, s + len);
      return;
    }
    if (((src.byteOffset + srcOff - dst) & 7) === 0) {
      u8.set(srcOff === 0 && len === src.length ? src : src.subarray(srcOff, srcOff + len), dst);
      return;
    }
    while (len > CHUNK) {
      this.staged(src, srcOff, CHUNK, dst, CHUNK);
      srcOff += CHUNK;
      dst += CHUNK;
      len -= CHUNK;
      room -= CHUNK;
    }
    this.staged(src, srcOff, len, dst, room);
  }

  /**
   * Copy arena bytes [src, src + len) to dst[dstOff, dstOff + len) (m_copydata,
   * soreceive): the way out of the arena, where the same rule holds: a run
   * whose source and destination differ in alignment modulo 8 would be moved
   * byte by byte, so it goes through the private scratch at the source's
   * alignment (a word copy out of shared memory, then a plain memmove), about
   * 3x faster for a segment at an odd offset. Bounds are the caller's to
   * check. Per thread; never sleeps.
   */
  copyOut(src: number, len: number, dst: Uint8Array, dstOff: number): void {
    const u8 = this.u8;
    if (len <= SHORT) {
      for (let k = 0; k < len; k++) dst[dstOff + k] = u8[src + k];
      return;
    }
    if (((dst.byteOffset + dstOff - src) & 7) === 0 || dst.buffer === u8.buffer) {
      dst.set(u8.subarray(src, src + len), dstOff);
      return;
    }
    const scratch = this.scratch;
    while (len > 0) {
      const n = Math.min(len, CHUNK);
      const a = src & 7;
      scratch.set(u8.subarray(src, src + n), a);
      dst.set(scratch.subarray(a, a + n), dstOff);
      src += n;
      dstOff += n;
      len -= n;
    }
  }

  /** A misaligned run of at most CHUNK bytes through the scratch. */
  private staged(src: Uint8Array, srcOff: number, len: number, dst: number, room: number): void {
    const a = dst & 7;
    const scratch = this.scratch;
    scratch.set(srcOff === 0 && len === src.length ? src : src.subarray(srcOff, srcOff + len), a);
    const k = (len + STEP - 1) >> STEP_SHIFT;
    if (k << STEP_SHIFT <= room) {
      const i = a * (NCLASS + 1) + k;
      let v = this.views[i];
      if (v === undefined) v = this.views[i] = new Uint8Array(scratch.buffer, a, k << STEP_SHIFT);
      this.u8.set(v, dst);
    } else {
      this.u8.set(scratch.subarray(a, a + len), dst);
    }
  }
}

/**
 * A fresh, not zero-filled Buffer of `len` bytes whose start is `align`
 * (0..7) modulo 8, the arena alignment of the bytes to be copied into it:
 * with both sides alike, copyOut moves words rather than bytes. Allocations
 * are 8-aligned, so the Buffer is a view `align` bytes into one of len +
 * align. Any thread; never sleeps.
 */
export function allocAligned(len: number, align: number): Buffer {
  return align === 0 ? Buffer.allocUnsafe(len) : Buffer.allocUnsafe(len + align).subarray(align);
}
