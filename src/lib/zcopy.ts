/**
 * Zero-copy send for the node:net layer: Buffers whose memory is arena pages
 * (allocBuffer), and the bookkeeping that lets a write() of one be taken by
 * reference (m_extadd) instead of copied, its callback resolving when the
 * stack has freed every mbuf that references it.
 *
 *   const buf = allocBuffer(stack, 1 << 20);   // a Buffer over arena memory
 *   fill(buf);
 *   sock.write(buf, (err) => { ... buf may be reused or freed now ... });
 *   ...
 *   freeBuffer(stack, buf);                    // gives the memory back
 *
 * Why arena memory: an mbuf's external storage is an arena offset (every
 * thread, every interface and the in-memory link reach packet bytes through
 * the one SharedArrayBuffer), so m_extadd can only reference memory inside
 * the arena. A caller's ordinary Buffer lives in V8's heap, which the stack
 * cannot address: such writes are copied whatever their size. A Buffer made
 * by allocBuffer (or a slice of one) is a view of arena memory (malloc(9) over
 * UMA: the malloc-N zones up to 4 KiB, whole page runs above), so a write of
 * it at least kern.ipc.zero_copy.send_min bytes long becomes read-only
 * external storage pieces in so_snd (Sockbuf.appendExt), each with its own
 * reference count; tcp_output's m_copym shares them, a receiver on the
 * in-memory link may even hold them in its so_rcv. The write's callback runs
 * when the last reference to the last piece is gone (acknowledged and
 * dropped, flushed, or read by the receiver), never inside the stack: it is
 * queued with process.nextTick.
 *
 * The user must not modify the buffer between write() and its callback: the
 * bytes on the wire (and retransmissions of them) are read from it. Nothing
 * copies or write-protects it. freeBuffer() before the callback is allowed:
 * the memory goes back only when the last reference does.
 *
 * Threading: one ZcArena per Mbufs (the thread's mbuf allocator); the ext
 * free routine is registered in that thread only, so zero-copy applies to
 * the single-thread stack (lib/net.ts); the worker-CPU sockets (netmp.ts)
 * copy. No lock; nothing sleeps (M_NOWAIT).
 */
import { ArgumentError, OutOfMemoryError } from '../kern/errors.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { Malloc } from '../uma/malloc.js';
import { M_NOWAIT } from '../uma/flags.js';
import type { Stack } from '../netinet/stack.js';

/** The ext free routine id of zero-copy send pieces (registerExtFree; unique per thread's Mbufs). */
export const ZCOPY_EXT_FREE_ID = 0x7a01;
/** Largest piece one mbuf references: a TSO packet's worth, so mbcnt accounting stays as for clusters. */
export const ZCOPY_PIECE = 64 * 1024;

/** One allocBuffer allocation. */
interface ArenaAlloc {
  readonly addr: number;
  readonly size: number;
  /** Mbufs referencing it now. */
  refs: number;
  /** freeBuffer was called: give it back when refs reaches 0. */
  freed: boolean;
}

/** One zero-copy write in so_snd: its pieces' references and what to call when they are gone. */
export interface ZcWrite {
  readonly slot: number;
  readonly alloc: ArenaAlloc;
  /** Pieces attached and not yet freed. */
  refs: number;
  /** Every piece it will have is attached (or the write stopped early). */
  appended: boolean;
  done: () => void;
}

/** Per-Mbufs state: allocations, write records by slot (the ext routine's arg1), the routine itself. */
export class ZcArena {
  private static readonly all = new WeakMap<Mbufs, ZcArena>();
  private readonly malloc: Malloc;
  private readonly sab: ArrayBufferLike;
  private readonly allocs = new Map<number, ArenaAlloc>();
  private readonly writes: (ZcWrite | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  /** Bytes of writes taken by reference and pieces attached (counters for tests and netstat). */
  bytesReferenced = 0;
  piecesAttached = 0;

  private constructor(readonly mb: Mbufs) {
    this.malloc = new Malloc(mb.uma);
    this.sab = mb.u8.buffer;
    mb.registerExtFree(ZCOPY_EXT_FREE_ID, this.extFree);
  }

  /** The state of a thread's mbuf allocator (made, and its ext routine registered, at first use). */
  static of(mb: Mbufs): ZcArena {
    let z = ZcArena.all.get(mb);
    if (z === undefined) ZcArena.all.set(mb, (z = new ZcArena(mb)));
    return z;
  }

  /** allocBuffer: n bytes of arena memory as a Buffer (malloc(9), M_NOWAIT). Throws ENOBUFS-like OutOfMemoryError when short. */
  alloc(n: number): Buffer {
    if (!Number.isInteger(n) || n <= 0) throw new ArgumentError(`allocBuffer: size must be an integer > 0, got ${String(n)}`);
    const addr = this.malloc.malloc(n, M_NOWAIT);
    if (addr === 0) throw new OutOfMemoryError(`allocBuffer(${n}): the arena has no room`);
    this.allocs.set(addr, { addr, size: n, refs: 0, freed: false });
    return Buffer.from(this.sab as SharedArrayBuffer, addr, n);
  }

  /** freeBuffer: give buf's memory back (once no mbuf references it). buf must be what alloc() returned. */
  free(buf: Uint8Array): void {
    const a = buf.buffer === this.sab ? this.allocs.get(buf.byteOffset) : undefined;
    if (a === undefined || a.freed || buf.length !== a.size) throw new ArgumentError('freeBuffer: not a live Buffer from allocBuffer of this stack');
    a.freed = true;
    if (a.refs === 0) this.release(a);
  }

  /** Allocations not given back yet (freeBuffer called or not): for leak checks. */
  get live(): number {
    return this.allocs.size;
  }

  /** The live allocation that holds all of buf (buf may be a slice of it), or null. */
  lookup(buf: Uint8Array): ArenaAlloc | null {
    if (buf.buffer !== this.sab) return null;
    const off = buf.byteOffset;
    const exact = this.allocs.get(off);
    if (exact !== undefined) return !exact.freed && off + buf.length <= exact.addr + exact.size ? exact : null;
    for (const a of this.allocs.values()) if (!a.freed && off >= a.addr && off + buf.length <= a.addr + a.size) return a;
    return null;
  }

  /** A write record for pieces of `a`; done() is queued (process.nextTick) when they are all freed. */
  newWrite(a: ArenaAlloc, done: () => void): ZcWrite {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.writes.length;
    const w: ZcWrite = { slot, alloc: a, refs: 0, appended: false, done };
    this.writes[slot] = w;
    return w;
  }

  /** One more piece of w attached (Sockbuf.appendExt's onPiece). */
  attached(w: ZcWrite): void {
    w.refs++;
    w.alloc.refs++;
    this.piecesAttached++;
  }

  /** w will get no more pieces: finish it now if none is left. */
  sealed(w: ZcWrite, bytes: number): void {
    w.appended = true;
    this.bytesReferenced += bytes;
    if (w.refs === 0) this.finish(w);
  }

  /** The ext free routine: a piece's last reference went (runs inside the stack: defers the callback). */
  private readonly extFree = (_m: number, _buf: number, slot: number): void => {
    const w = this.writes[slot];
    if (w === undefined) throw new ArgumentError(`zero-copy free: no write in slot ${slot}`);
    w.refs--;
    const a = w.alloc;
    if (--a.refs === 0 && a.freed) this.release(a);
    if (w.refs === 0 && w.appended) this.finish(w);
  };

  private finish(w: ZcWrite): void {
    this.writes[w.slot] = undefined;
    this.freeSlots.push(w.slot);
    process.nextTick(w.done);
  }

  private release(a: ArenaAlloc): void {
    this.allocs.delete(a.addr);
    this.malloc.free(a.addr);
  }
}

/** A Stack's mbufs (a Stack, or a topology NetStack's `.stack`). */
function mbOf(s: Stack | { readonly stack: Stack }): Mbufs {
  const st = (s as { mb?: Mbufs }).mb !== undefined ? (s as Stack) : (s as { stack: Stack }).stack;
  if (st?.mb === undefined) throw new ArgumentError('allocBuffer: not a slabnet single-thread stack');
  return st.mb;
}

/**
 * stack.allocBuffer(n): a Buffer of n bytes over arena memory, which a
 * Socket's write() sends by reference (zero copy) when it is at least
 * kern.ipc.zero_copy.send_min long. Not zeroed. Give it back with freeBuffer.
 */
export function allocBuffer(stack: Stack | { readonly stack: Stack }, n: number): Buffer {
  return ZcArena.of(mbOf(stack)).alloc(n);
}

/** Give back a Buffer from allocBuffer (deferred while the stack still references it). */
export function freeBuffer(stack: Stack | { readonly stack: Stack }, buf: Uint8Array): void {
  ZcArena.of(mbOf(stack)).free(buf);
}
