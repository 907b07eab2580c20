/**
 * Operations on the one socket record (layout.ts): make and free it with its
 * sockbufs, read its fields, change its state and option bits, publish and
 * take so_error, and wake its user (sorwakeup). Used by every protocol (on
 * the CPUs) and every user-side API (socket.ts, udpuser.ts, dgram.ts).
 *
 * Which side may call what is said on each function; the record's own
 * words are either single-writer or changed with an atomic bit operation,
 * so nothing here takes a lock, and nothing sleeps.
 */
import { ArgumentError } from '../errors.js';
import { ENOBUFS, ErrnoError } from '../errno.js';
import type { Uma } from '../../uma/uma.js';
import type { Zone } from '../../uma/zone.js';
import { M_NOWAIT } from '../../uma/flags.js';
import {
  SO_ACCQ,
  SO_BYTES,
  SO_CPU,
  SO_ERROR,
  SO_HOST,
  SO_MAGIC,
  SO_MAX_RINGS,
  SO_NCPUS,
  SO_OPTIONS,
  SO_PCB,
  SO_PROTO,
  SO_RCV,
  SO_RSEQ,
  SO_RWAIT,
  SO_SND,
  SO_STATE,
  SO_TYPE,
  SO_ZONE,
  SOCKET_MAGIC,
} from './layout.js';
import type { SockBufs } from './sockbuf.js';

/** Bind the socket record zone in this thread, or create it (race-safe when threads start together). */
export function socketZone(uma: Uma): Zone {
  return uma.zfindOrCreate(SO_ZONE, { size: SO_BYTES });
}

export interface SoallocOptions {
  /** so_type (SOCK_DGRAM, SOCK_STREAM). */
  type: number;
  /** Protocol number. */
  proto: number;
  /** Receive rings: 1 (default), or one per CPU for a socket replicated on every CPU. */
  rings?: number;
  /** Owning CPU (-1: replicated). */
  cpu?: number;
  host?: number;
  /** Bytes of each receive ring (its hiwat; the protocol's soreserve may change it). */
  rcvspace: number;
  /** A send sockbuf of this many bytes (0: none, the protocol sends by message). */
  sndspace?: number;
}

/** The record operations of one thread. */
export class SocketRecords {
  readonly sbs: SockBufs;
  readonly zone: Zone;
  readonly i32: Int32Array;

  constructor(sbs: SockBufs) {
    this.sbs = sbs;
    this.zone = socketZone(sbs.mb.uma);
    this.i32 = sbs.i32;
  }

  /**
   * Make a record with its receive ring(s) (and send ring). Throws
   * ErrnoError ENOBUFS (syscall 'socket') when memory is short, having
   * freed what it made. The user side; no lock; never sleeps.
   */
  soalloc(o: SoallocOptions): number {
    const rings = o.rings ?? 1;
    if (!Number.isInteger(rings) || rings < 1 || rings > SO_MAX_RINGS) throw new ArgumentError(`a socket has 1..${SO_MAX_RINGS} receive rings, got ${rings}`);
    const so = this.zone.alloc(M_NOWAIT);
    if (so === 0) throw new ErrnoError(ENOBUFS, 'socket');
    const w = so >> 2;
    const i32 = this.i32;
    i32.fill(0, w, w + SO_BYTES / 4);
    i32[w + SO_TYPE] = o.type;
    i32[w + SO_PROTO] = o.proto;
    i32[w + SO_NCPUS] = rings;
    i32[w + SO_HOST] = o.host ?? 0;
    i32[w + SO_CPU] = o.cpu ?? -1;
    const hiwat = Math.min(o.rcvspace, this.sbs.maxsockbuf);
    for (let r = 0; r < rings; r++) {
      const sb = this.sbs.sbcreate(hiwat);
      if (sb === 0) {
        this.sofree(so);
        throw new ErrnoError(ENOBUFS, 'socket');
      }
      i32[w + SO_RCV + r] = sb;
    }
    if ((o.sndspace ?? 0) > 0) {
      const sb = this.sbs.sbcreate(Math.min(o.sndspace!, this.sbs.maxsockbuf));
      if (sb === 0) {
        this.sofree(so);
        throw new ErrnoError(ENOBUFS, 'socket');
      }
      i32[w + SO_SND] = sb;
    }
    i32[w + SO_MAGIC] = SOCKET_MAGIC;
    return so;
  }

  /**
   * sofree: free the sockbufs (and whatever they still queue) and the
   * record. Only once no CPU produces into it any more (after pru_detach).
   * An accept queue must have been destroyed by its owner first.
   */
  sofree(so: number): void {
    const w = so >> 2;
    const i32 = this.i32;
    if (i32[w + SO_ACCQ] !== 0) throw new ArgumentError('sofree: the listener still has its accept queue');
    for (let r = 0; r < SO_MAX_RINGS; r++) {
      const sb = i32[w + SO_RCV + r];
      if (sb !== 0) this.sbs.sbdestroy(sb);
      i32[w + SO_RCV + r] = 0;
    }
    if (i32[w + SO_SND] !== 0) this.sbs.sbdestroy(i32[w + SO_SND]);
    i32[w + SO_SND] = 0;
    i32[w + SO_MAGIC] = 0;
    this.zone.free(so);
  }

  /** Is `so` a live socket record? */
  valid(so: number): boolean {
    return so !== 0 && (so & 3) === 0 && this.i32[(so >> 2) + SO_MAGIC] === SOCKET_MAGIC;
  }

  /** Receive ring `r` (0 for a one-ring socket). */
  rcv(so: number, r = 0): number {
    return this.i32[(so >> 2) + SO_RCV + r];
  }

  /** The ring a producer on `cpu` appends to: its own for a replicated socket, else ring 0. */
  rcvFor(so: number, cpu: number): number {
    const w = so >> 2;
    return this.i32[w + SO_RCV + (this.i32[w + SO_NCPUS] > 1 ? cpu : 0)];
  }

  snd(so: number): number {
    return this.i32[(so >> 2) + SO_SND];
  }
  rings(so: number): number {
    return this.i32[(so >> 2) + SO_NCPUS];
  }
  cpu(so: number): number {
    return Atomics.load(this.i32, (so >> 2) + SO_CPU);
  }
  setCpu(so: number, cpu: number): void {
    Atomics.store(this.i32, (so >> 2) + SO_CPU, cpu);
  }
  pcb(so: number): number {
    return this.i32[(so >> 2) + SO_PCB];
  }
  setPcb(so: number, pcb: number): void {
    this.i32[(so >> 2) + SO_PCB] = pcb;
  }

  /** so_state bits: set, clear, read (atomic bit operations: either side). */
  soSetState(so: number, bits: number): void {
    Atomics.or(this.i32, (so >> 2) + SO_STATE, bits);
  }
  soClearState(so: number, bits: number): void {
    Atomics.and(this.i32, (so >> 2) + SO_STATE, ~bits);
  }
  state(so: number): number {
    return Atomics.load(this.i32, (so >> 2) + SO_STATE);
  }

  /** so_options bits (sosetopt on the owning CPU; getsockopt and other CPUs read them). */
  soSetOptions(so: number, bits: number, on: boolean): void {
    if (on) Atomics.or(this.i32, (so >> 2) + SO_OPTIONS, bits);
    else Atomics.and(this.i32, (so >> 2) + SO_OPTIONS, ~bits);
  }
  options(so: number): number {
    return Atomics.load(this.i32, (so >> 2) + SO_OPTIONS);
  }

  /**
   * sorwakeup for a user that sleeps on the record's wake word (a socket
   * with several rings): bump and notify SO_RSEQ only when the user
   * announced its sleep in SO_RWAIT (Dekker: the producer published first,
   * the user stored SO_RWAIT first). Producer side; no lock; never sleeps.
   */
  sorwakeup(so: number): void {
    const w = so >> 2;
    if (Atomics.load(this.i32, w + SO_RWAIT) !== 0) this.wake(w);
  }

  /** Wake the record's reader unconditionally (close, shutdown: rare). Either side. */
  sowakeupAlways(so: number): void {
    this.wake(so >> 2);
  }

  private wake(w: number): void {
    Atomics.add(this.i32, w + SO_RSEQ, 1);
    Atomics.notify(this.i32, w + SO_RSEQ);
  }

  /**
   * in_pcbnotify's so_error + sorwakeup: publish `errno` as the socket's
   * pending error (a later one overwrites it, as so_error does) and wake
   * the user. CPU side; never sleeps.
   */
  soSetError(so: number, errno: number): void {
    Atomics.store(this.i32, (so >> 2) + SO_ERROR, errno);
    this.sorwakeup(so);
  }

  /** soreceive's so_error read-and-clear: the pending errno (0 none), taken exactly once. User side. */
  soTakeError(so: number): number {
    return Atomics.exchange(this.i32, (so >> 2) + SO_ERROR, 0);
  }

  /** Peek at so_error without clearing it (the reader's sleep check). */
  soPeekError(so: number): number {
    return Atomics.load(this.i32, (so >> 2) + SO_ERROR);
  }
}
