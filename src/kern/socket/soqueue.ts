/**
 * The accept queue of a listening socket (FreeBSD's sol_comp, the
 * completed-connection queue): the CPU owning the listener's PCB puts each
 * connection that finished its handshake (the new socket's record handle)
 * at the tail; user threads take them from the head in accept(2).
 *
 * A ring of record handles in the arena (malloc(9)): one producer (the
 * listener's CPU: plain stores, one Atomics.store of the tail per insert)
 * and any number of consumers (user threads claim the head slot with one
 * compare-and-swap, so two accepting threads never take the same
 * connection). The producer reads the head only to check for room.
 *
 * Limits, as sonewconn: the listen backlog is capped by
 * kern.ipc.soacceptqueue (registered with kern.ipc.maxsockbuf, sysctl.ts) (somaxconn, default 128; a negative backlog means
 * the cap) and a connection is refused once more than 3/2 of the backlog
 * is queued (`qlen > 3 * qlimit / 2`); every refusal is counted
 * (SQ_OVERFLOWS, what FreeBSD logs as "Listen queue overflow" and TCP
 * counts as tcps_listendrop).
 *
 * Words (Int32 from q >> 2): 0 magic, 1 capacity (power of two), 2 mask,
 * 3 qlimit, 4 overflows (producer), 16 tail (producer line), 32 head
 * (consumers' line), 48.. slots.
 */
import { ArgumentError } from '../errors.js';
import { Malloc } from '../../uma/malloc.js';
import type { Uma } from '../../uma/uma.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { tunableIndex } from '../sysctl/tunables.js';

export const SOMAXCONN = 128;
export const SOACCEPTQUEUE_MAX = 65535;
export const SQ_MAGIC = 0;
export const SQ_CAP = 1;
export const SQ_MASK = 2;
export const SQ_QLIMIT = 3;
export const SQ_OVERFLOWS = 4;
export const SQ_TAIL = 16;
export const SQ_HEAD = 32;
export const SQ_SLOTS = 48;
const SQ_MAGIC_VALUE = 0x53514351; // "SQCQ"

/** The most connections sonewconn lets wait for a backlog of qlimit. */
export function acceptQueueMax(qlimit: number): number {
  return ((3 * qlimit) >> 1) + 1;
}

/** Accept-queue operations of one thread (producer and consumer sides are the caller's business). */
export class AcceptQueues {
  readonly uma: Uma;
  private readonly malloc: Malloc;
  private readonly i32: Int32Array;
  private readonly maxIdx: number;

  constructor(uma: Uma) {
    this.uma = uma;
    this.malloc = new Malloc(uma);
    this.i32 = uma.arena.i32;
    this.maxIdx = tunableIndex(uma.arena, 'kern.ipc.soacceptqueue', SOMAXCONN);
  }

  /** kern.ipc.soacceptqueue (somaxconn), shared by every thread. */
  get somaxconn(): number {
    return Atomics.load(this.i32, this.maxIdx);
  }

  /** solisten's backlog rule: negative or above somaxconn means somaxconn. */
  qlimitFor(backlog: number): number {
    const max = this.somaxconn;
    if (!Number.isInteger(backlog) || backlog < 0 || backlog > max) return max;
    return backlog;
  }

  /**
   * A queue for a listener with `backlog` (capped as qlimitFor). Returns its
   * handle, 0 when memory is short. Its capacity fits the cap in force now:
   * a later solisten may lower the backlog, and raise it up to that.
   */
  create(backlog: number): number {
    const qlimit = this.qlimitFor(backlog);
    let cap = 1;
    while (cap < acceptQueueMax(this.somaxconn)) cap <<= 1;
    const q = this.malloc.malloc((SQ_SLOTS + cap) * 4, M_NOWAIT);
    if (q === 0) return 0;
    const w = q >> 2;
    this.i32.fill(0, w, w + SQ_SLOTS);
    this.i32[w + SQ_CAP] = cap;
    this.i32[w + SQ_MASK] = cap - 1;
    this.i32[w + SQ_QLIMIT] = qlimit;
    this.i32[w + SQ_MAGIC] = SQ_MAGIC_VALUE;
    return q;
  }

  /**
   * solisten on a listening socket again: a new backlog (capped by
   * somaxconn and by the capacity chosen at create). Either side.
   */
  setBacklog(q: number, backlog: number): void {
    const w = q >> 2;
    let qlimit = this.qlimitFor(backlog);
    while (acceptQueueMax(qlimit) > this.i32[w + SQ_CAP]) qlimit--;
    Atomics.store(this.i32, w + SQ_QLIMIT, qlimit);
  }

  qlimit(q: number): number {
    return Atomics.load(this.i32, (q >> 2) + SQ_QLIMIT);
  }

  /** Connections queued (exact for the producer, a snapshot for others). */
  qlen(q: number): number {
    const w = q >> 2;
    return (Atomics.load(this.i32, w + SQ_TAIL) - Atomics.load(this.i32, w + SQ_HEAD)) | 0;
  }

  /** Connections refused because the queue was over its limit. */
  overflows(q: number): number {
    return Atomics.load(this.i32, (q >> 2) + SQ_OVERFLOWS);
  }

  /**
   * sonewconn's queueing (soisconnected on a new connection): put record
   * `so` at the tail. False (counted in SQ_OVERFLOWS) when more than 3/2 of
   * the backlog is queued; the caller drops the connection. Producer (the
   * listener's CPU) only; no lock; never sleeps.
   */
  insert(q: number, so: number): boolean {
    if (so === 0) throw new ArgumentError('accept queue: cannot queue socket 0');
    const w = q >> 2;
    const i32 = this.i32;
    const tail = i32[w + SQ_TAIL];
    const len = (tail - Atomics.load(i32, w + SQ_HEAD)) | 0;
    if (len > (3 * Atomics.load(i32, w + SQ_QLIMIT)) >> 1 || len >= i32[w + SQ_CAP]) {
      i32[w + SQ_OVERFLOWS]++;
      return false;
    }
    i32[w + SQ_SLOTS + (tail & i32[w + SQ_MASK])] = so;
    Atomics.store(i32, w + SQ_TAIL, (tail + 1) | 0);
    return true;
  }

  /**
   * accept(2)'s dequeue: the oldest completed connection's record, or 0
   * when none. Any user thread: the head slot is claimed with one CAS, so
   * concurrent takers never share a connection. Never sleeps.
   */
  take(q: number): number {
    const w = q >> 2;
    const i32 = this.i32;
    for (;;) {
      const head = Atomics.load(i32, w + SQ_HEAD);
      if (head === Atomics.load(i32, w + SQ_TAIL)) return 0;
      // Read before the claim: the producer cannot reuse the slot until head passes it.
      const so = i32[w + SQ_SLOTS + (head & i32[w + SQ_MASK])];
      if (Atomics.compareExchange(i32, w + SQ_HEAD, head, (head + 1) | 0) === head) return so;
    }
  }

  /**
   * Free the queue, handing every connection still queued to `abort`
   * (soabort: the caller drops them). Only when no side uses it any more.
   */
  destroy(q: number, abort: (so: number) => void): void {
    for (let so = this.take(q); so !== 0; so = this.take(q)) abort(so);
    this.i32[(q >> 2) + SQ_MAGIC] = 0;
    this.malloc.free(q);
  }
}
