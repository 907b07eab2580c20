/**
 * Time for protocol code (FreeBSD's `ticks` / `sbinuptime()`, smoltcp's
 * `Instant` passed in). Every CPU, and every single-thread stack, reads one
 * Clock; protocol code never calls performance.now() or a JS timer itself,
 * so a system can run on real time or on a manual clock that a test (or the
 * packetdrill runner) advances.
 *
 * `now()` is monotonic milliseconds (fractional: microsecond resolution)
 * from an arbitrary origin. No lock; never sleeps.
 */
import { ArgumentError } from './errors.js';

export interface Clock {
  /** Monotonic milliseconds (fractional). */
  now(): number;
  /** True for a clock that only moves when advanced (tests, packetdrill). */
  readonly manual: boolean;
}

/** The process's monotonic clock (the one place protocol time meets the wall). */
export const realClock: Clock = {
  now: () => performance.now(),
  manual: false,
};

/**
 * A clock that moves only when told: `advance(ms)` or `set(ms)`. Whoever
 * drives it (a test, the packetdrill runner, LocalThread.advance) then runs
 * the callouts that came due.
 */
export class ManualClock implements Clock {
  readonly manual = true;
  private t: number;

  constructor(start = 0) {
    if (!Number.isFinite(start) || start < 0) throw new ArgumentError(`clock start must be a finite ms value >= 0, got ${start}`);
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  /** Move forward by ms (>= 0). */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new ArgumentError(`clock advance must be finite and >= 0, got ${ms}`);
    this.t += ms;
  }

  /** Move to ms (never backwards). */
  set(ms: number): void {
    if (!Number.isFinite(ms) || ms < this.t) throw new ArgumentError(`clock set must not go backwards (${this.t} -> ${ms})`);
    this.t = ms;
  }
}

/**
 * A manual clock kept in shared memory, so that every thread of a machine
 * reads one time: a Float64 of milliseconds guarded by a seqlock word (odd
 * while the one writer, the main thread, updates the value). A Float64
 * access may tear, so a reader retries when the sequence moved or was odd.
 * Readers cache the value per sequence: one Atomics.load per now() while
 * time stands still. No lock; never sleeps.
 */
export class SharedClock implements Clock {
  readonly manual = true;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly seqIdx: number;
  private readonly valIdx: number;
  private cachedSeq = -1;
  private cached = 0;

  /**
   * `seqIdx`: Int32 index of the sequence word; `valByte`: 8-aligned byte
   * offset of the Float64 value, both in `sab`.
   */
  constructor(sab: SharedArrayBuffer, seqIdx: number, valByte: number) {
    if ((valByte & 7) !== 0) throw new ArgumentError(`shared clock value must be 8-byte aligned, got offset ${valByte}`);
    this.i32 = new Int32Array(sab);
    this.f64 = new Float64Array(sab);
    this.seqIdx = seqIdx;
    this.valIdx = valByte >> 3;
  }

  now(): number {
    const i32 = this.i32;
    let s = Atomics.load(i32, this.seqIdx);
    if (s === this.cachedSeq) return this.cached;
    for (;;) {
      const v = this.f64[this.valIdx];
      const s2 = Atomics.load(i32, this.seqIdx);
      if ((s & 1) === 0 && s2 === s) {
        this.cachedSeq = s;
        this.cached = v;
        return v;
      }
      s = s2;
    }
  }

  /** Writer only (one thread): move to ms, never backwards. */
  set(ms: number): void {
    const t = this.now();
    if (!Number.isFinite(ms) || ms < t) throw new ArgumentError(`clock set must not go backwards (${t} -> ${ms})`);
    Atomics.add(this.i32, this.seqIdx, 1);
    this.f64[this.valIdx] = ms;
    Atomics.add(this.i32, this.seqIdx, 1);
  }

  /** Writer only: move forward by ms (>= 0). */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new ArgumentError(`clock advance must be finite and >= 0, got ${ms}`);
    this.set(this.now() + ms);
  }
}
