/**
 * The semi-lockless socket buffer of the seed thread: a ring of mbuf chains
 * in the arena with exactly one producer and one consumer and no lock on
 * either side.
 *
 * Record (Int32 words from sb >> 2; docs/mp.md has the full table):
 *   SB_HIWAT/SB_LOWAT  water marks (set through sbreserve / setsockopt)
 *   SB_STATE           SBS_* bits, set with Atomics.or
 *   producer line      SB_TAIL (next slot to fill), SB_IN (bytes ever appended,
 *                      wrapping 32-bit), SB_OOBMARK
 *   consumer line      SB_HEAD (first unconsumed slot), SB_OUT (bytes ever
 *                      consumed), SB_OFF (bytes already read from the head chain)
 *   wake words         SB_RWAIT/SB_RSEQ (reader asleep / its futex),
 *                      SB_WWAIT/SB_WSEQ (writer asleep / its futex)
 *   producer-private   SB_PTAIL/SB_PIN (staged tail and bytes, not yet
 *                      published), SB_HCACHE (last SB_HEAD it saw)
 *   consumer-private   SB_TCACHE (last SB_TAIL it saw)
 *   slots              SB_SLOTS + 4 * i: chain head, bytes, SL_* flags, spare
 *
 * The producer fills a slot and advances its private SB_PTAIL/SB_PIN with
 * plain stores (sbstage); sbpublish then stores SB_TAIL, and only then
 * SB_IN, with one Atomics.store each, for any number of staged slots. The
 * consumer frees what it read, advances SB_HEAD, and only then SB_OUT. Each
 * index has one writer, so no read-modify-write atomic is ever needed, and
 * each side reads the other's index only when its cached copy says the ring
 * is full (producer) or empty (consumer): the line moves between CPUs once
 * per batch, not once per chain. Hence cc = SB_IN - SB_OUT is, as the seed
 * says, a lower bound for the reader (data can only have arrived since) and
 * an upper bound for the writer (data can only have left since): a reader
 * never looks for bytes that are not there and a writer never overfills.
 * Nobody can know cc exactly, and no code here pretends to.
 *
 * A published slot belongs to the consumer; the producer never looks at it
 * again, which is why stream appends cannot coalesce into the previous chain
 * and the ring has a slot limit besides the byte limit.
 */
import { ArgumentError } from '../errors.js';
import type { Mbufs } from '../mbuf/mbuf.js';
import { M_DATA, M_LEN, M_NEXT, M_PKTHDR, M_FLAGS, MT_SONAME, MT_DATA, PH_LEN, MLEN, MCLBYTES, M_EOR, MSIZE } from '../mbuf/layout.js';
import { M_NOWAIT } from '../../uma/flags.js';
import type { Zone } from '../../uma/zone.js';
import type { Uma } from '../../uma/uma.js';
import { tunableIndex } from '../sysctl/tunables.js';

export const SB_ZONE = 'sockbuf';
export const SB_SLOTS_DEFAULT = 256;

export const SB_MAGIC_WORD = 0;
export const SB_HIWAT = 1;
export const SB_LOWAT = 2;
export const SB_STATE = 3;
export const SB_CAP = 4;
export const SB_MASK = 5;
/** Bytes the producer has been refused for lack of room (statistics). */
export const SB_FULL = 6;
export const SB_TAIL = 16;
export const SB_IN = 17;
export const SB_OOBMARK = 18;
export const SB_HEAD = 32;
export const SB_OUT = 33;
export const SB_OFF = 34;
export const SB_RWAIT = 48;
export const SB_RSEQ = 49;
export const SB_WWAIT = 56;
export const SB_WSEQ = 57;
/** Producer-private line: staged tail, staged bytes, cached head. */
export const SB_PTAIL = 64;
export const SB_PIN = 65;
export const SB_HCACHE = 66;
/** Consumer-private line: cached tail; the sbsndptr cache (slot index, its offset from the read position, valid). */
export const SB_TCACHE = 80;
export const SB_SPSLOT = 81;
export const SB_SPOFF = 82;
export const SB_SPVALID = 83;
export const SB_SLOTS = 96;
export const SLOT_WORDS = 4;
export const SL_CHAIN = 0;
export const SL_LEN = 1;
export const SL_FLAGS = 2;

/** Slot flags: the slot starts a record; its first mbuf is an MT_SONAME address. */
export const SL_RECORD = 0x1;
export const SL_ADDR = 0x2;
/** The record ends with this slot (M_EOR). */
export const SL_EOR = 0x4;

/** State bits: the producer will append no more (EOF); the consumer is gone (EPIPE); an OOB mark is set. */
export const SBS_CANTRCVMORE = 0x1;
export const SBS_CANTSENDMORE = 0x2;
export const SBS_HAVEOOB = 0x4;

const SB_MAGIC = 0x53425546; // "SBUF"

/** Bytes of a sockbuf record with `slots` slots. */
export function sockbufBytes(slots: number): number {
  return (SB_SLOTS + slots * SLOT_WORDS) * 4;
}

/** kern.ipc.maxsockbuf: the ceiling of sbreserve (default 2 MiB, as FreeBSD). */
export const MAXSOCKBUF_DEFAULT = 2 * 1024 * 1024;
/** Bounds of kern.ipc.maxsockbuf. */
export const MAXSOCKBUF_MIN = 2048;
export const MAXSOCKBUF_MAX = 0x4000_0000;

/**
 * Bind the sockbuf zone in this thread, whatever its slot count (the first
 * creator chose it), or create it with `slots` slots. Creation goes through
 * zfindOrCreate, so CPUs that start together race safely. Cold; takes the
 * zone registry lock; does not sleep.
 */
export function sockbufZone(uma: Uma, slots = SB_SLOTS_DEFAULT): Zone {
  try {
    return uma.zone(SB_ZONE);
  } catch {
    // Cache-line aligned so that the producer and consumer lines never share one.
    return uma.zfindOrCreate(SB_ZONE, { size: sockbufBytes(slots), align: 64 });
  }
}

/** The data of one datagram record taken by sbrecvrecord. */
export interface SbRecord {
  /** Source address bytes (MT_SONAME) or null. */
  addr: Uint8Array | null;
  /** The data chain (owned by the caller now) and its length. */
  m: number;
  len: number;
}

/**
 * Reusable result of sbrecvrecordInto: one per reader, filled in place so
 * that a datagram read allocates nothing. `addr` holds the first `addrLen`
 * bytes of the source address (addrLen -1: the record had none).
 */
export class SbRecordBuf {
  /** The data chain (owned by the caller after a successful read); 0 for an empty datagram. */
  m = 0;
  /** Data bytes of the record. */
  len = 0;
  /** Bytes of `addr` that are valid; -1 when the record carried no address. */
  addrLen = -1;
  /** Address storage (an MT_SONAME mbuf holds at most MLEN bytes). */
  readonly addr = new Uint8Array(MLEN);
}

/**
 * Where sbsndptr found a byte: the mbuf holding it and the offset inside
 * that mbuf (sbsndptr_noadv's return value and *moff), reused by the caller.
 */
export class SbPtr {
  m = 0;
  moff = 0;
}

/** sbread copies runs up to this many bytes by a plain loop instead of making a view. */
const COPY_SHORT = 32;

/**
 * Socket-buffer operations of one thread. Whether the thread acts as the
 * producer or the consumer of a given sockbuf is the caller's business;
 * each function says which side may call it.
 */
export class SockBufs {
  readonly mb: Mbufs;
  readonly zone: Zone;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  private readonly maxIdx: number;
  /** Result object of the old-form sbrecvrecord's inner call. */
  private readonly recBuf = new SbRecordBuf();
  /** sbcopyat's pointer. */
  private readonly ptr = new SbPtr();

  constructor(mb: Mbufs, zone?: Zone) {
    this.mb = mb;
    this.zone = zone ?? sockbufZone(mb.uma);
    this.i32 = mb.i32;
    this.u8 = mb.u8;
    this.maxIdx = tunableIndex(mb.uma.arena, 'kern.ipc.maxsockbuf', MAXSOCKBUF_DEFAULT);
  }

  /** kern.ipc.maxsockbuf, shared by every thread. */
  get maxsockbuf(): number {
    return Atomics.load(this.i32, this.maxIdx);
  }
  set maxsockbuf(v: number) {
    if (!Number.isInteger(v) || v < MAXSOCKBUF_MIN || v > MAXSOCKBUF_MAX) throw new ArgumentError(`kern.ipc.maxsockbuf must be in ${MAXSOCKBUF_MIN}..2^30, got ${v}`);
    Atomics.store(this.i32, this.maxIdx, v);
  }

  /**
   * sb_max_adj: the largest buffer setsockopt(SO_SNDBUF / SO_RCVBUF) may
   * ask for, kern.ipc.maxsockbuf scaled by MCLBYTES / (MSIZE + MCLBYTES) as
   * FreeBSD's sbreserve does (the rest of sb_max pays for mbuf headers):
   * 1864135 bytes for the default 2 MiB.
   */
  get maxAdj(): number {
    return Math.floor((this.maxsockbuf * MCLBYTES) / (MSIZE + MCLBYTES));
  }

  /** Sysctl nodes for registration in a tree (name, get, set, description). */
  sysctlNodes(): { name: string; description: string; get: () => number; set: (v: number) => void }[] {
    return [{ name: 'kern.ipc.maxsockbuf', description: 'Maximum socket buffer size', get: () => this.maxsockbuf, set: (v) => (this.maxsockbuf = v) }];
  }

  /**
   * Make an empty sockbuf of `hiwat` bytes (bounded by kern.ipc.maxsockbuf).
   * Returns its handle, or 0 when memory is short (NOWAIT). Does not sleep.
   */
  sbcreate(hiwat: number, lowat = 1): number {
    const sb = this.zone.alloc(M_NOWAIT);
    if (sb === 0) return 0;
    const s = sb >> 2;
    const slots = (this.zone.keg.size / 4 - SB_SLOTS) / SLOT_WORDS;
    const cap = 1 << Math.floor(Math.log2(slots));
    this.i32.fill(0, s, s + SB_SLOTS + cap * SLOT_WORDS);
    this.i32[s + SB_CAP] = cap;
    this.i32[s + SB_MASK] = cap - 1;
    this.i32[s + SB_MAGIC_WORD] = SB_MAGIC;
    if (!this.sbreserve(sb, hiwat)) {
      this.zone.free(sb);
      throw new ArgumentError(`sockbuf of ${hiwat} bytes exceeds kern.ipc.maxsockbuf (${this.maxsockbuf})`);
    }
    this.i32[s + SB_LOWAT] = Math.min(lowat, hiwat);
    return sb;
  }

  /** Free every chain still queued and the record. Only when neither side uses it any more. */
  sbdestroy(sb: number): void {
    this.sbpublish(sb); // nobody else runs now: staged chains are freed too
    this.sbflush(sb);
    this.i32[(sb >> 2) + SB_MAGIC_WORD] = 0;
    this.zone.free(sb);
  }

  /**
   * sbreserve: set the high-water mark; false (ENOBUFS in BSD) above
   * kern.ipc.maxsockbuf. Either side; the other sees it at its next check.
   */
  sbreserve(sb: number, cc: number): boolean {
    if (!Number.isInteger(cc) || cc <= 0 || cc > this.maxsockbuf) return false;
    Atomics.store(this.i32, (sb >> 2) + SB_HIWAT, cc);
    const lo = Atomics.load(this.i32, (sb >> 2) + SB_LOWAT);
    if (lo > cc) Atomics.store(this.i32, (sb >> 2) + SB_LOWAT, cc);
    return true;
  }

  hiwat(sb: number): number {
    return Atomics.load(this.i32, (sb >> 2) + SB_HIWAT);
  }
  lowat(sb: number): number {
    return Atomics.load(this.i32, (sb >> 2) + SB_LOWAT);
  }
  setLowat(sb: number, v: number): void {
    Atomics.store(this.i32, (sb >> 2) + SB_LOWAT, Math.max(1, Math.min(v, this.hiwat(sb))));
  }
  state(sb: number): number {
    return Atomics.load(this.i32, (sb >> 2) + SB_STATE);
  }

  // ------------------------------------------------------------ producer side

  /**
   * sbspace for the writer: hiwat minus cc, where cc is an upper bound (the
   * reader may have consumed more since), so the result never overstates
   * the room. 0 when no slot is free. Producer only; no lock, no sleep.
   */
  sbspace(sb: number): number {
    const s = sb >> 2;
    const i32 = this.i32;
    const tail = i32[s + SB_PTAIL];
    const head = Atomics.load(i32, s + SB_HEAD);
    i32[s + SB_HCACHE] = head;
    if (((tail - head) | 0) >= i32[s + SB_CAP]) return 0;
    const cc = (i32[s + SB_PIN] - Atomics.load(i32, s + SB_OUT)) | 0;
    return Math.max(0, Atomics.load(i32, s + SB_HIWAT) - cc);
  }

  /**
   * sbstage: fill the next slot with chain `m` of `len` bytes without making
   * it visible (plain stores to producer-private words only); sbpublish
   * makes every staged slot visible at once. Returns false (the chain stays
   * the caller's) when no slot is free. Byte limits are the caller's check
   * (sbspace), as in BSD. Producer only; no lock, no sleep, no allocation.
   * A producer must publish before it sleeps or returns to its loop.
   */
  sbstage(sb: number, m: number, len: number, flags = 0): boolean {
    const s = sb >> 2;
    const i32 = this.i32;
    const tail = i32[s + SB_PTAIL];
    if (((tail - i32[s + SB_HCACHE]) | 0) >= i32[s + SB_CAP] && !this.refreshHead(s, tail)) return false;
    const slot = s + SB_SLOTS + (tail & i32[s + SB_MASK]) * SLOT_WORDS;
    i32[slot + SL_CHAIN] = m;
    i32[slot + SL_LEN] = len;
    i32[slot + SL_FLAGS] = flags;
    i32[s + SB_PTAIL] = (tail + 1) | 0;
    i32[s + SB_PIN] = (i32[s + SB_PIN] + len) | 0;
    return true;
  }

  /** Slow path of sbstage: the cached head says full; look at the real one. */
  private refreshHead(s: number, tail: number): boolean {
    const head = Atomics.load(this.i32, s + SB_HEAD);
    this.i32[s + SB_HCACHE] = head;
    if (((tail - head) | 0) < this.i32[s + SB_CAP]) return true;
    this.i32[s + SB_FULL]++;
    return false;
  }

  /**
   * sbpublish: make the staged slots visible: one Atomics.store of SB_TAIL,
   * then one of SB_IN (so cc stays a lower bound for the reader), then wake
   * the reader only if it sleeps. Producer only; no lock, no sleep.
   */
  sbpublish(sb: number): void {
    const s = sb >> 2;
    const i32 = this.i32;
    const tail = i32[s + SB_PTAIL];
    if (tail === i32[s + SB_TAIL]) return;
    Atomics.store(i32, s + SB_TAIL, tail);
    Atomics.store(i32, s + SB_IN, i32[s + SB_PIN]);
    if (Atomics.load(i32, s + SB_RWAIT) !== 0) this.wakeReader(s);
  }

  /** Wake a sleeping reader (slow path: a futex system call). */
  private wakeReader(s: number): void {
    Atomics.add(this.i32, s + SB_RSEQ, 1);
    Atomics.notify(this.i32, s + SB_RSEQ);
  }

  /** Wake a sleeping writer (slow path). */
  private wakeWriter(s: number): void {
    Atomics.add(this.i32, s + SB_WSEQ, 1);
    Atomics.notify(this.i32, s + SB_WSEQ);
  }

  /**
   * sbappendv: stage `n` chains from `chains` (from index `off`) and publish
   * them once: the batch form of sbappendstream. Lengths come from `lens`
   * when given (else each chain is walked). Returns how many were appended
   * (fewer when the slots run out; the rest stay the caller's). Producer
   * only; no allocation, no sleep.
   */
  sbappendv(sb: number, chains: Int32Array, n: number, off = 0, lens?: Int32Array): number {
    let k = 0;
    for (; k < n; k++) {
      const m = chains[off + k];
      if (!this.sbstage(sb, m, lens === undefined ? this.chainLen(m) : lens[off + k])) break;
    }
    this.sbpublish(sb);
    return k;
  }

  /**
   * Publish chain `m` of `len` bytes in the next slot (producer only). The
   * caller checked sbspace; returns false (and keeps the chain) when there is
   * no free slot. Wakes the reader only if it sleeps.
   */
  private put(sb: number, m: number, len: number, flags: number): boolean {
    if (!this.sbstage(sb, m, len, flags)) return false;
    this.sbpublish(sb);
    return true;
  }

  /** Bytes in chain m (m_length). */
  private chainLen(m: number): number {
    let n = 0;
    for (let x = m; x !== 0; x = this.i32[(x + M_NEXT) >> 2]) n += this.i32[(x + M_LEN) >> 2];
    return n;
  }

  /**
   * sbappendstream: append stream data with no record boundary. Returns
   * false (chain still the caller's) when there is no slot. Byte limits are
   * the caller's check (sbspace), as in BSD. Producer only.
   */
  sbappendstream(sb: number, m: number): boolean {
    if (m === 0) return true;
    return this.put(sb, m, this.chainLen(m), 0);
  }

  /** sbappend: on a stream socket the same as sbappendstream. */
  sbappend(sb: number, m: number): boolean {
    return this.sbappendstream(sb, m);
  }

  /** sbappendrecord: `m` starts a new record (and ends it when M_EOR is set). Producer only. */
  sbappendrecord(sb: number, m: number): boolean {
    if (m === 0) return true;
    const eor = (this.i32[(m + M_FLAGS) >> 2] & M_EOR) !== 0 ? SL_EOR : 0;
    return this.put(sb, m, this.chainLen(m), SL_RECORD | eor);
  }

  /**
   * sbappendaddr: a datagram with its source address: an MT_SONAME mbuf
   * holding `addr` is put before the data (and control, if any). Returns
   * false and frees nothing when space or memory is short (the caller drops
   * and counts, as udp_input does). Producer only.
   */
  sbappendaddr(sb: number, addr: Uint8Array, m: number, control = 0): boolean {
    if (addr.length > MLEN) throw new ArgumentError(`sbappendaddr: address of ${addr.length} bytes is too long`);
    const len = this.chainLen(m) + (control === 0 ? 0 : this.chainLen(control));
    if (len > this.sbspace(sb)) return false;
    const a = this.mb.m_get(M_NOWAIT, MT_SONAME);
    if (a === 0) return false;
    this.u8.set(addr, this.i32[(a + M_DATA) >> 2]);
    this.i32[(a + M_LEN) >> 2] = addr.length;
    let tail = a;
    if (control !== 0) {
      this.i32[(a + M_NEXT) >> 2] = control;
      tail = control;
      while (this.i32[(tail + M_NEXT) >> 2] !== 0) tail = this.i32[(tail + M_NEXT) >> 2];
    }
    this.i32[(tail + M_NEXT) >> 2] = m;
    if (this.put(sb, a, len, SL_RECORD | SL_ADDR | SL_EOR)) return true;
    this.i32[(tail + M_NEXT) >> 2] = 0;
    if (control !== 0) {
      let t = a;
      while (this.i32[(t + M_NEXT) >> 2] !== control) t = this.i32[(t + M_NEXT) >> 2];
      this.i32[(t + M_NEXT) >> 2] = 0;
    }
    this.mb.m_free(a);
    return false;
  }

  /**
   * Set the out-of-band mark `ahead` bytes past everything appended so far
   * (TCP's so_oobmark: the urgent byte's position in the stream). Producer only.
   */
  sbsetoobmark(sb: number, ahead = 0): void {
    const s = sb >> 2;
    Atomics.store(this.i32, s + SB_OOBMARK, (this.i32[s + SB_PIN] + ahead) | 0);
    Atomics.or(this.i32, s + SB_STATE, SBS_HAVEOOB);
  }

  /** socantrcvmore from the producer: no more data will come (EOF after the queued bytes). */
  sbmarkeof(sb: number): void {
    const s = sb >> 2;
    this.sbpublish(sb);
    Atomics.or(this.i32, s + SB_STATE, SBS_CANTRCVMORE);
    Atomics.add(this.i32, s + SB_RSEQ, 1);
    Atomics.notify(this.i32, s + SB_RSEQ);
  }

  /** The consumer is gone: the producer gets EPIPE from now on. Consumer side. */
  sbmarkclosed(sb: number): void {
    const s = sb >> 2;
    Atomics.or(this.i32, s + SB_STATE, SBS_CANTSENDMORE);
    Atomics.add(this.i32, s + SB_WSEQ, 1);
    Atomics.notify(this.i32, s + SB_WSEQ);
  }

  // ------------------------------------------------------------ consumer side

  /**
   * cc for the reader: a lower bound (more may have arrived since).
   * Consumer only; no lock, no sleep.
   */
  sbavail(sb: number): number {
    const s = sb >> 2;
    return (Atomics.load(this.i32, s + SB_IN) - this.i32[s + SB_OUT]) | 0;
  }

  /** Published slots not yet consumed (datagrams, for a datagram socket): the reader's view. Consumer only. */
  sbslots(sb: number): number {
    const s = sb >> 2;
    return (Atomics.load(this.i32, s + SB_TAIL) - this.i32[s + SB_HEAD]) | 0;
  }

  /** True when the reader is at the out-of-band mark (SIOCATMARK). Consumer only. */
  sbatmark(sb: number): boolean {
    const s = sb >> 2;
    return (this.state(sb) & SBS_HAVEOOB) !== 0 && Atomics.load(this.i32, s + SB_OOBMARK) === this.i32[s + SB_OUT];
  }

  /** Bytes from the read position to the OOB mark, or Infinity without a mark ahead. */
  private toMark(sb: number): number {
    const s = sb >> 2;
    if ((this.state(sb) & SBS_HAVEOOB) === 0) return Infinity;
    const d = (Atomics.load(this.i32, s + SB_OOBMARK) - this.i32[s + SB_OUT]) | 0;
    return d > 0 ? d : Infinity;
  }

  /** After consuming: advance SB_OUT, then wake the writer if it sleeps. */
  private consumed(sb: number, n: number): void {
    const s = sb >> 2;
    // The sbsndptr cache is measured from the read position, which moved by n.
    if (this.i32[s + SB_SPVALID] !== 0) {
      const off = this.i32[s + SB_SPOFF] - n;
      if (off <= 0) this.i32[s + SB_SPVALID] = 0;
      else this.i32[s + SB_SPOFF] = off;
    }
    // The consumer is SB_OUT's only writer: a plain read and a store, no RMW.
    Atomics.store(this.i32, s + SB_OUT, (this.i32[s + SB_OUT] + n) | 0);
    if (Atomics.load(this.i32, s + SB_WWAIT) !== 0) this.wakeWriter(s);
  }

  /**
   * The head slot's word index, or -1 when no slot is published. SB_TAIL
   * is read only when the cached copy says the ring is empty.
   */
  private headSlot(sb: number): number {
    const s = sb >> 2;
    const i32 = this.i32;
    const head = i32[s + SB_HEAD];
    if (head === i32[s + SB_TCACHE]) {
      const tail = Atomics.load(i32, s + SB_TAIL);
      i32[s + SB_TCACHE] = tail;
      if (head === tail) return -1;
    }
    return s + SB_SLOTS + (head & i32[s + SB_MASK]) * SLOT_WORDS;
  }

  /** Retire the (emptied) head slot. */
  private popSlot(sb: number): void {
    const s = sb >> 2;
    this.i32[s + SB_OFF] = 0;
    Atomics.store(this.i32, s + SB_HEAD, (this.i32[s + SB_HEAD] + 1) | 0);
  }

  /**
   * Free the first `n` bytes of the head chain in place: whole mbufs go back
   * to their zones, a partly read one has m_data/m_len trimmed.
   */
  private trimHead(slot: number, n: number): void {
    const i32 = this.i32;
    let m = i32[slot + SL_CHAIN];
    while (n > 0 && m !== 0) {
      const len = i32[(m + M_LEN) >> 2];
      if (len <= n) {
        n -= len;
        m = this.mb.m_free(m);
      } else {
        i32[(m + M_DATA) >> 2] += n;
        i32[(m + M_LEN) >> 2] = len - n;
        if ((i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0) i32[(m + PH_LEN) >> 2] -= n;
        n = 0;
      }
    }
    // Zero-length mbufs left in front (an emptied pkthdr mbuf) go too.
    while (m !== 0 && i32[(m + M_LEN) >> 2] === 0 && i32[(m + M_NEXT) >> 2] !== 0) m = this.mb.m_free(m);
    i32[slot + SL_CHAIN] = m;
  }

  /** Free the MT_SONAME mbuf in front of a partly consumed datagram slot. */
  private stripAddr(slot: number): void {
    const i32 = this.i32;
    if ((i32[slot + SL_FLAGS] & SL_ADDR) === 0) return;
    const a = i32[slot + SL_CHAIN];
    i32[slot + SL_CHAIN] = i32[(a + M_NEXT) >> 2];
    i32[(a + M_NEXT) >> 2] = 0;
    this.mb.m_free(a);
    i32[slot + SL_FLAGS] &= ~SL_ADDR;
  }

  /**
   * sbdrop: discard `len` bytes from the front (len <= sbavail, the lower
   * bound, so the bytes are certainly there). Consumer only; no sleep.
   */
  sbdrop(sb: number, len: number): void {
    const avail = this.sbavail(sb);
    if (!Number.isInteger(len) || len < 0 || len > avail) throw new ArgumentError(`sbdrop: ${len} bytes asked, ${avail} available`);
    let left = len;
    while (left > 0) {
      const slot = this.headSlot(sb);
      if (slot < 0) throw new ArgumentError('sbdrop: cc promised bytes the ring does not hold (broken cc bound)');
      const rest = this.i32[slot + SL_LEN];
      if (rest <= left) {
        this.mb.m_freem(this.i32[slot + SL_CHAIN]);
        this.i32[slot + SL_CHAIN] = 0;
        this.popSlot(sb);
        left -= rest;
      } else {
        this.stripAddr(slot);
        this.trimHead(slot, left);
        this.i32[slot + SL_LEN] = rest - left;
        left = 0;
      }
    }
    this.consumed(sb, len);
  }

  /**
   * sbsndptr (sbsndptr_noadv): find the byte `off` bytes past the read
   * position without consuming anything: out.m is the mbuf holding it and
   * out.moff its offset there, for TCP to copy a segment from the send
   * buffer (m_copym / m_copydata from there). False when off is not below
   * sbavail (the reader's lower bound). The slot found is cached
   * (sb_sndptr / sb_sndptroff), so sending a window forward segment by
   * segment walks each slot once; sbdrop (the ACK) moves the cache with the
   * read position. Consumer only; no allocation; never sleeps.
   */
  sbsndptr(sb: number, off: number, out: SbPtr): boolean {
    if (!Number.isInteger(off) || off < 0 || off >= this.sbavail(sb)) return false;
    const s = sb >> 2;
    const i32 = this.i32;
    const mask = i32[s + SB_MASK];
    let idx = i32[s + SB_HEAD];
    let base = 0;
    if (i32[s + SB_SPVALID] !== 0 && i32[s + SB_SPOFF] <= off) {
      idx = i32[s + SB_SPSLOT];
      base = i32[s + SB_SPOFF];
    }
    for (;;) {
      const len = i32[s + SB_SLOTS + (idx & mask) * SLOT_WORDS + SL_LEN];
      if (off < base + len) break;
      base += len;
      idx = (idx + 1) | 0;
    }
    i32[s + SB_SPSLOT] = idx;
    i32[s + SB_SPOFF] = base;
    i32[s + SB_SPVALID] = 1;
    const slot = s + SB_SLOTS + (idx & mask) * SLOT_WORDS;
    let m = i32[slot + SL_CHAIN];
    if ((i32[slot + SL_FLAGS] & SL_ADDR) !== 0) m = i32[(m + M_NEXT) >> 2];
    let rel = off - base;
    while (m !== 0) {
      const l = i32[(m + M_LEN) >> 2];
      if (rel < l) break;
      rel -= l;
      m = i32[(m + M_NEXT) >> 2];
    }
    if (m === 0) throw new ArgumentError('sbsndptr: slot holds fewer bytes than its length (broken chain)');
    out.m = m;
    out.moff = rel;
    return true;
  }

  /**
   * Copy `len` bytes starting `off` bytes past the read position into dst
   * without consuming them (m_copydata over the send buffer: what TCP
   * retransmits stays queued until sbdrop). Returns the bytes copied (less
   * when fewer are available). Consumer only; never sleeps.
   */
  sbcopyat(sb: number, off: number, len: number, dst: Uint8Array, dstOff = 0): number {
    const ptr = this.ptr;
    const want = Math.min(len, this.sbavail(sb) - off, dst.length - dstOff);
    if (want <= 0 || !this.sbsndptr(sb, off, ptr)) return 0;
    const s = sb >> 2;
    const i32 = this.i32;
    const mask = i32[s + SB_MASK];
    let idx = i32[s + SB_SPSLOT];
    let m = ptr.m;
    let moff = ptr.moff;
    let done = 0;
    while (done < want) {
      if (m === 0) {
        // Next slot: its chain, past an address mbuf.
        idx = (idx + 1) | 0;
        const slot = s + SB_SLOTS + (idx & mask) * SLOT_WORDS;
        m = i32[slot + SL_CHAIN];
        if ((i32[slot + SL_FLAGS] & SL_ADDR) !== 0) m = i32[(m + M_NEXT) >> 2];
        moff = 0;
        continue;
      }
      const k = Math.min(i32[(m + M_LEN) >> 2] - moff, want - done);
      const d = i32[(m + M_DATA) >> 2] + moff;
      if (k <= COPY_SHORT) for (let j = 0; j < k; j++) dst[dstOff + done + j] = this.u8[d + j];
      else dst.set(this.u8.subarray(d, d + k), dstOff + done);
      done += k;
      m = i32[(m + M_NEXT) >> 2];
      moff = 0;
    }
    return done;
  }

  /** sbflush: drop everything published. Consumer only (or after both sides are gone). */
  sbflush(sb: number): void {
    let n = 0;
    for (;;) {
      const slot = this.headSlot(sb);
      if (slot < 0) break;
      n += this.i32[slot + SL_LEN];
      this.mb.m_freem(this.i32[slot + SL_CHAIN]);
      this.i32[slot + SL_CHAIN] = 0;
      this.popSlot(sb);
    }
    if (n > 0) this.consumed(sb, n);
  }

  /**
   * Stream read (soreceive on SOCK_STREAM): copy up to `len` bytes into dst,
   * never past the OOB mark, and drop them. Returns bytes read (0 when
   * nothing is available). Consumer only; never sleeps.
   */
  sbread(sb: number, dst: Uint8Array, dstOff = 0, len = dst.length - dstOff): number {
    const want = Math.min(len, this.sbavail(sb), this.toMark(sb));
    if (want <= 0) return 0;
    let done = 0;
    const i32 = this.i32;
    while (done < want) {
      const slot = this.headSlot(sb);
      if (slot < 0) throw new ArgumentError('sbread: cc promised bytes the ring does not hold (broken cc bound)');
      let m = i32[slot + SL_CHAIN];
      const skipAddr = (i32[slot + SL_FLAGS] & SL_ADDR) !== 0;
      if (skipAddr) m = i32[(m + M_NEXT) >> 2];
      const rest = i32[slot + SL_LEN];
      const n = Math.min(rest, want - done);
      let copied = 0;
      for (let x = m; copied < n && x !== 0; x = i32[(x + M_NEXT) >> 2]) {
        const k = Math.min(i32[(x + M_LEN) >> 2], n - copied);
        const d = i32[(x + M_DATA) >> 2];
        // Short runs by a loop (no view); longer ones need a view of the run: Node 20
        // has no allocation-free copy from part of the arena into a JS array.
        if (k <= COPY_SHORT) for (let j = 0; j < k; j++) dst[dstOff + done + copied + j] = this.u8[d + j];
        else dst.set(this.u8.subarray(d, d + k), dstOff + done + copied);
        copied += k;
      }
      if (n === rest) {
        this.mb.m_freem(i32[slot + SL_CHAIN]);
        i32[slot + SL_CHAIN] = 0;
        this.popSlot(sb);
      } else {
        // Reading a datagram as a stream: the address goes with its first byte.
        this.stripAddr(slot);
        this.trimHead(slot, n);
        i32[slot + SL_LEN] = rest - n;
      }
      done += n;
    }
    this.consumed(sb, done);
    return done;
  }

  /**
   * Take the next whole slot's chain (zero-copy, for protocol consumers and
   * datagram reads). Returns 0 when none is published. Consumer only.
   */
  sbtake(sb: number): number {
    const slot = this.headSlot(sb);
    if (slot < 0) return 0;
    const m = this.i32[slot + SL_CHAIN];
    const len = this.i32[slot + SL_LEN];
    this.i32[slot + SL_CHAIN] = 0;
    this.popSlot(sb);
    this.consumed(sb, len);
    return m;
  }

  /**
   * sbtakev: take up to `max` whole slots at once (zero-copy batch form of
   * sbtake): their chains go to `chains` (and their byte counts to `lens`
   * when given), then one store of SB_HEAD and one of SB_OUT retire them
   * all. Returns how many were taken (0 when none is published). The
   * caller owns the chains. Consumer only; no allocation, no sleep.
   */
  sbtakev(sb: number, chains: Int32Array, max = chains.length, lens?: Int32Array): number {
    const s = sb >> 2;
    const i32 = this.i32;
    const head = i32[s + SB_HEAD];
    let avail = (i32[s + SB_TCACHE] - head) | 0;
    if (avail < max) {
      // The cached tail cannot fill the request: look at the real one (one load per batch).
      const tail = Atomics.load(i32, s + SB_TAIL);
      i32[s + SB_TCACHE] = tail;
      avail = (tail - head) | 0;
      if (avail === 0) return 0;
    }
    const k = avail < max ? avail : max;
    const mask = i32[s + SB_MASK];
    let bytes = 0;
    for (let j = 0; j < k; j++) {
      const slot = s + SB_SLOTS + ((head + j) & mask) * SLOT_WORDS;
      chains[j] = i32[slot + SL_CHAIN];
      const len = i32[slot + SL_LEN];
      if (lens !== undefined) lens[j] = len;
      bytes += len;
    }
    // Retired slots are not cleared: past SB_HEAD nobody reads them, and not
    // writing them keeps their lines clean for the producer's next lap.
    Atomics.store(i32, s + SB_HEAD, (head + k) | 0);
    this.consumed(sb, bytes);
    return k;
  }

  /**
   * Datagram read (soreceive on SOCK_DGRAM): the next record with its source
   * address; the caller owns and frees `m`. null when none is queued.
   * Consumer only.
   */
  sbrecvrecord(sb: number): SbRecord | null {
    const r = this.recBuf;
    if (!this.sbrecvrecordInto(sb, r)) return null;
    return { addr: r.addrLen < 0 ? null : r.addr.slice(0, r.addrLen), m: r.m, len: r.len };
  }

  /**
   * sbrecvrecord without allocation: fills `out` (its chain, length and a
   * copy of the source address) and returns true, or false when no record
   * is queued (`out` untouched). The caller owns and frees `out.m`.
   * Consumer only; never sleeps.
   */
  sbrecvrecordInto(sb: number, out: SbRecordBuf): boolean {
    const slot = this.headSlot(sb);
    if (slot < 0) return false;
    const i32 = this.i32;
    const flags = i32[slot + SL_FLAGS];
    const len = i32[slot + SL_LEN];
    let m = this.sbtake(sb);
    let addrLen = -1;
    if ((flags & SL_ADDR) !== 0) {
      const d = i32[(m + M_DATA) >> 2];
      addrLen = i32[(m + M_LEN) >> 2];
      const a = out.addr;
      // At most MLEN bytes (sbappendaddr's bound): a loop, no view.
      for (let j = 0; j < addrLen; j++) a[j] = this.u8[d + j];
      m = this.mb.m_free(m);
    }
    out.m = m;
    out.len = len;
    out.addrLen = addrLen;
    return true;
  }

  /** Whether the head slot starts a record (datagram boundaries). Consumer only. */
  sbrecordstart(sb: number): boolean {
    const slot = this.headSlot(sb);
    return slot >= 0 && (this.i32[slot + SL_FLAGS] & SL_RECORD) !== 0;
  }

  // ------------------------------------------------------------ sleeping

  /**
   * Reader sleep (sbwait on so_rcv) for workers: returns when data may be
   * there, at EOF, or after `timeoutMs`. Sets SB_RWAIT so that the producer
   * wakes it; never called with a lock held. Blocks the thread.
   */
  sbwaitRead(sb: number, timeoutMs = Infinity): void {
    const s = sb >> 2;
    const i32 = this.i32;
    const seq = Atomics.load(i32, s + SB_RSEQ);
    Atomics.store(i32, s + SB_RWAIT, 1);
    if (this.sbavail(sb) === 0 && (this.state(sb) & SBS_CANTRCVMORE) === 0) Atomics.wait(i32, s + SB_RSEQ, seq, timeoutMs);
    Atomics.store(i32, s + SB_RWAIT, 0);
  }

  /** The same for the main thread (Atomics.waitAsync). */
  async sbwaitReadAsync(sb: number, timeoutMs = Infinity): Promise<void> {
    const s = sb >> 2;
    const i32 = this.i32;
    const seq = Atomics.load(i32, s + SB_RSEQ);
    Atomics.store(i32, s + SB_RWAIT, 1);
    if (this.sbavail(sb) === 0 && (this.state(sb) & SBS_CANTRCVMORE) === 0) {
      const r = Atomics.waitAsync(i32, s + SB_RSEQ, seq, timeoutMs);
      if (r.async) await r.value;
    }
    Atomics.store(i32, s + SB_RWAIT, 0);
  }

  /**
   * Writer sleep (sbwait on so_snd) for workers: returns when at least
   * `need` bytes (default the low-water mark) may be free, the reader is
   * gone, or after `timeoutMs`. Blocks the thread.
   */
  sbwaitWrite(sb: number, need = this.lowat(sb), timeoutMs = Infinity): void {
    const s = sb >> 2;
    const i32 = this.i32;
    const seq = Atomics.load(i32, s + SB_WSEQ);
    Atomics.store(i32, s + SB_WWAIT, 1);
    if (this.sbspace(sb) < need && (this.state(sb) & SBS_CANTSENDMORE) === 0) Atomics.wait(i32, s + SB_WSEQ, seq, timeoutMs);
    Atomics.store(i32, s + SB_WWAIT, 0);
  }

  /** The same for the main thread. */
  async sbwaitWriteAsync(sb: number, need = this.lowat(sb), timeoutMs = Infinity): Promise<void> {
    const s = sb >> 2;
    const i32 = this.i32;
    const seq = Atomics.load(i32, s + SB_WSEQ);
    Atomics.store(i32, s + SB_WWAIT, 1);
    if (this.sbspace(sb) < need && (this.state(sb) & SBS_CANTSENDMORE) === 0) {
      const r = Atomics.waitAsync(i32, s + SB_WSEQ, seq, timeoutMs);
      if (r.async) await r.value;
    }
    Atomics.store(i32, s + SB_WWAIT, 0);
  }

  /**
   * Make a data chain holding a copy of `bytes` (a helper for writers): an
   * mbuf for small data, clusters otherwise. 0 when memory is short. No sleep.
   */
  mchain(bytes: Uint8Array): number {
    const i32 = this.i32;
    let head = 0;
    let tail = 0;
    let off = 0;
    do {
      const rem = bytes.length - off;
      const n = rem > MLEN ? this.mb.m_getcl(M_NOWAIT, MT_DATA, 0) : this.mb.m_get(M_NOWAIT, MT_DATA);
      if (n === 0) {
        this.mb.m_freem(head);
        return 0;
      }
      const k = Math.min(rem, rem > MLEN ? MCLBYTES : MLEN);
      this.u8.set(bytes.subarray(off, off + k), i32[(n + M_DATA) >> 2]);
      i32[(n + M_LEN) >> 2] = k;
      if (head === 0) head = n;
      else i32[(tail + M_NEXT) >> 2] = n;
      tail = n;
      off += k;
    } while (off < bytes.length);
    return head;
  }
}
