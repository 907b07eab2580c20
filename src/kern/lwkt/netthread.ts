/**
 * What protocol code needs from the thread it runs on (a CPU's protocol
 * thread, or the one thread of a single-thread system): its clock, its
 * callout wheel, poll hooks run on every pass, and kick() to ask for another
 * pass. ProtocolThread (an MP CPU) and LocalThread (below) both provide it,
 * so the same stack code runs on either.
 *
 * LocalThread is the single-thread form: a pass runs due callouts, then the
 * poll hooks. On a manual clock the owner drives it (advance / runUntilIdle);
 * on the real clock startRealtime() schedules passes on the event loop. Only
 * this scheduler touches JS timers; protocol code never does.
 */
import { ArgumentError } from '../errors.js';
import { realClock, ManualClock, type Clock } from '../clock.js';
import { CalloutWheel, HZ_DEFAULT } from './callout.js';

export type NetPollHook = () => number;

export interface NetThread {
  readonly clock: Clock;
  readonly callouts: CalloutWheel;
  /** Ask for another pass soon (work was queued from outside or inside a pass). Never sleeps. */
  kick(): void;
  /**
   * Run `h` every pass. `needsEventLoop`: its work is signalled through the
   * event loop (a native handle's readiness, as a TAP's uv_poll), so the
   * thread must not block the loop while idle (ProtocolThread's blockIdle).
   */
  addPollHook(h: NetPollHook, needsEventLoop?: boolean): void;
  removePollHook(h: NetPollHook): void;
}

/** Passes a real-time pass runs back to back while work keeps being queued, before it yields to the event loop. */
const REALTIME_BURST = 16;

/** Passes runUntilIdle makes at most before it reports a livelock. */
const MAX_IDLE_PASSES = 1_000_000;

export class LocalThread implements NetThread {
  readonly clock: Clock;
  readonly callouts: CalloutWheel;
  private readonly hooks: NetPollHook[] = [];
  private wanted = false;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private realtime = false;
  /** Handlers (callouts, hooks) that threw; the error is reported through onError. */
  onError: (e: unknown) => void = (e) => {
    throw e;
  };

  constructor(clock: Clock = realClock, hz = HZ_DEFAULT) {
    this.clock = clock;
    this.callouts = new CalloutWheel(hz, clock);
    this.callouts.onError = (e) => this.onError(e);
  }

  /** A thread on a fresh manual clock starting at 0 ms. */
  static manual(hz = HZ_DEFAULT): LocalThread {
    return new LocalThread(new ManualClock(), hz);
  }

  addPollHook(h: NetPollHook, _needsEventLoop = false): void {
    // This thread never blocks: its idle wait is the event loop itself.
    this.hooks.push(h);
  }

  removePollHook(h: NetPollHook): void {
    const i = this.hooks.indexOf(h);
    if (i >= 0) this.hooks.splice(i, 1);
  }

  kick(): void {
    this.wanted = true;
    if (this.realtime && !this.running && this.immediate === null) this.immediate = setImmediate(this.realtimePass);
  }

  /**
   * One pass: due callouts (unless `clock` is false: the back-to-back passes
   * of one real-time burst read the clock once, in the first), then every
   * poll hook. Returns the work done.
   */
  pass(clock = true): number {
    this.wanted = false;
    this.running = true;
    let work = 0;
    try {
      if (clock) work += this.callouts.softclock();
      for (let i = 0; i < this.hooks.length; i++) {
        try {
          work += this.hooks[i]();
        } catch (e) {
          this.onError(e);
        }
      }
    } finally {
      this.running = false;
    }
    return work;
  }

  /** Pass until nothing is left to do at the current time. Returns the passes made. */
  runUntilIdle(): number {
    let n = 0;
    while (this.pass() > 0 || this.wanted) {
      if (++n > MAX_IDLE_PASSES) throw new ArgumentError(`LocalThread: still busy after ${MAX_IDLE_PASSES} passes (livelock?)`);
    }
    return n;
  }

  /**
   * Manual clock only: move time forward by ms, stopping at each callout's
   * due time on the way so timers fire in order and at their time, and run
   * to idle at every stop.
   */
  advance(ms: number): void {
    const clock = this.clock;
    if (!(clock instanceof ManualClock)) throw new ArgumentError('advance() needs a LocalThread on a ManualClock');
    const end = clock.now() + ms;
    this.runUntilIdle();
    for (;;) {
      const next = this.callouts.msUntilNext();
      if (next < 0 || clock.now() + next > end) break;
      clock.advance(Math.max(next, this.callouts.tickMs));
      this.runUntilIdle();
      if (clock.now() >= end) break;
    }
    if (clock.now() < end) clock.set(end);
    this.runUntilIdle();
  }

  /** Real clock: run passes from the event loop when kicked and when a callout is due. */
  startRealtime(): this {
    if (this.clock.manual) throw new ArgumentError('startRealtime() needs the real clock');
    this.realtime = true;
    this.callouts.onLink = () => {
      if (!this.running) this.kick();
    };
    this.kick();
    return this;
  }

  /** Stop scheduling passes (the owner closes its stacks first). */
  stop(): void {
    this.realtime = false;
    this.callouts.onLink = null;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private readonly realtimePass = (): void => {
    this.immediate = null;
    if (!this.realtime) return;
    // Work queued during a pass (a frame handed to the next hook, a reply
    // queued for delivery) runs in further passes now, up to a bound, rather
    // than one event-loop turn per hop of a request/response.
    let work = this.pass();
    for (let n = 1; this.wanted && n < REALTIME_BURST; n++) work += this.pass(false);
    if (work > 0 || this.wanted) {
      this.immediate = setImmediate(this.realtimePass);
      return;
    }
    const ms = this.callouts.msUntilNext();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (ms >= 0) {
      // Pending callouts do not keep the process alive: an idle stack lets the program exit.
      this.timer = setTimeout(() => {
        this.timer = null;
        this.realtimePass();
      }, Math.max(1, Math.ceil(ms)));
      this.timer.unref();
    }
  };
}
