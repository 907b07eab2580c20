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
