/**
 * Per-CPU callouts (callout(9)) on a timer wheel, driven by the CPU's
 * protocol thread. A callout belongs to the CPU that created it and is only
 * touched from that thread, so nothing here takes a lock or an atomic
 * (DragonFly's per-CPU softclock makes the same choice).
 *
 * Time is counted in ticks of 1/hz seconds of the wheel's Clock (real or
 * manual, src/kern/clock.ts), from the moment the wheel was made. The wheel
 * has WHEEL_SIZE buckets; a callout due at tick t hangs in bucket t & mask
 * and is skipped by softclock until its tick comes, however many laps away.
 * Buckets are intrusive doubly linked lists of Callout objects, so schedule
 * and stop are O(1) and allocate nothing.
 */
import { ArgumentError } from '../errors.js';
import { realClock, type Clock } from '../clock.js';

export const HZ_DEFAULT = 1000;
const WHEEL_SIZE = 256;
const WHEEL_MASK = WHEEL_SIZE - 1;

/**
 * A callout's handler: called with its argument and the callout itself, so
 * one shared function can serve many callouts that carry their owner (a
 * subclass field) instead of one closure per owner.
 */
export type CalloutFn = (arg: number, c: Callout) => void;

/** One timer (struct callout). Create it once and reuse it. */
export class Callout {
  readonly wheel: CalloutWheel;
  /** Due tick while pending. */
  time = 0;
  fn: CalloutFn | null = null;
  arg = 0;
  pending = false;
  /** The handler is running right now (callout_active-like). */
  active = false;
  prev: Callout | null = null;
  next: Callout | null = null;

  constructor(wheel: CalloutWheel) {
    this.wheel = wheel;
  }

  /**
   * callout_reset: (re)arm to run `fn(arg)` after `ticks` ticks (>= 0; 0 is
   * the next softclock pass). Returns true if it was pending before. Does not sleep.
   */
  reset(ticks: number, fn: CalloutFn, arg = 0): boolean {
    if (!Number.isInteger(ticks) || ticks < 0) throw new ArgumentError(`callout_reset: ticks must be a non-negative integer, got ${ticks}`);
    const was = this.pending;
    if (was) this.wheel.unlink(this);
    this.fn = fn;
    this.arg = arg;
    this.wheel.link(this, this.wheel.now() + Math.max(ticks, 1));
    return was;
  }

  /** callout_schedule: re-arm with the function and argument already set. */
  schedule(ticks: number): boolean {
    if (this.fn === null) throw new ArgumentError('callout_schedule: callout has no function (use reset first)');
    return this.reset(ticks, this.fn, this.arg);
  }

  /** callout_stop: cancel; true if it was pending. Does not sleep. */
  stop(): boolean {
    if (!this.pending) return false;
    this.wheel.unlink(this);
    return true;
  }
}

/** The wheel of one CPU (callwheel + softclock). */
export class CalloutWheel {
  readonly hz: number;
  private readonly heads: (Callout | null)[] = new Array(WHEEL_SIZE).fill(null);
  private readonly t0: number;
  /** Last tick softclock processed. */
  private softTicks: number;
  /** Callouts pending on the wheel. */
  count = 0;
  /** Called when a callout is armed (a real-time scheduler re-arms its timer); null: nothing. */
  onLink: (() => void) | null = null;
  /** Handlers that threw: (error) reported through this hook. */
  onError: (err: unknown) => void = (e) => {
    throw e;
  };

  readonly clock: Clock;

  constructor(hz = HZ_DEFAULT, clock: Clock = realClock) {
    this.clock = clock;
    if (!Number.isInteger(hz) || hz < 1 || hz > 100000) throw new ArgumentError(`hz must be an integer in 1..100000, got ${hz}`);
    this.hz = hz;
    this.t0 = clock.now();
    this.softTicks = 0;
  }

  /** Current tick (ticks since the wheel was made). */
  now(): number {
    return Math.floor(((this.clock.now() - this.t0) * this.hz) / 1000);
  }

  /** Milliseconds per tick. */
  get tickMs(): number {
    return 1000 / this.hz;
  }

  /** A new callout bound to this wheel (callout_init). */
  callout(): Callout {
    return new Callout(this);
  }

  link(c: Callout, time: number): void {
    if (this.onLink !== null) this.onLink();
    c.time = time;
    const b = time & WHEEL_MASK;
    const head = this.heads[b];
    c.prev = null;
    c.next = head;
    if (head !== null) head.prev = c;
    this.heads[b] = c;
    c.pending = true;
    this.count++;
  }

  unlink(c: Callout): void {
    if (c.prev !== null) c.prev.next = c.next;
    else this.heads[c.time & WHEEL_MASK] = c.next;
    if (c.next !== null) c.next.prev = c.prev;
    c.prev = c.next = null;
    c.pending = false;
    this.count--;
  }

  /**
   * softclock: run every callout whose tick has come, in tick order. A
   * handler may reset or stop any callout, itself included. Returns the
   * number of handlers run. Protocol thread only; does not sleep.
   */
  softclock(): number {
    if (this.count === 0) {
      this.softTicks = this.now();
      return 0;
    }
    const now = this.now();
    let ran = 0;
    // Cap the walk at one lap: after that every bucket has been visited.
    let from = this.softTicks + 1;
    if (now - from >= WHEEL_SIZE) from = now - WHEEL_SIZE + 1;
    for (let t = from; t <= now; t++) {
      let c = this.heads[t & WHEEL_MASK];
      while (c !== null) {
        const next = c.next;
        if (c.time <= now) {
          this.unlink(c);
          ran++;
          c.active = true;
          try {
            c.fn!(c.arg, c);
          } catch (e) {
            this.onError(e);
          } finally {
            c.active = false;
          }
          // The handler may have unlinked `next`; restart the bucket then.
          if (next !== null && !next.pending) {
            c = this.heads[t & WHEEL_MASK];
            continue;
          }
        }
        c = next;
      }
    }
    this.softTicks = now;
    return ran;
  }

  /**
   * Milliseconds until the earliest pending callout is due (0 if one is
   * overdue), or -1 when none is pending. Walks the wheel: idle path only.
   */
  msUntilNext(): number {
    if (this.count === 0) return -1;
    let min = Infinity;
    for (let b = 0; b < WHEEL_SIZE; b++) {
      for (let c = this.heads[b]; c !== null; c = c.next) if (c.time < min) min = c.time;
    }
    const now = this.clock.now() - this.t0;
    const dueMs = (min * 1000) / this.hz;
    return Math.max(0, dueMs - now);
  }

  /** Stop every pending callout (CPU shutdown). */
  stopAll(): number {
    let n = 0;
    for (let b = 0; b < WHEEL_SIZE; b++) {
      while (this.heads[b] !== null) {
        this.unlink(this.heads[b]!);
        n++;
      }
    }
    return n;
  }
}
