/**
 * The protocol thread of one CPU (DragonFly's netisr thread): a loop that
 * takes requests from the CPU's port, runs replies, runs due callouts, polls
 * the interfaces the CPU owns, honours UMA drain requests and sleeps when
 * there is nothing to do.
 *
 * Idle and wake-up: the loop runs on the worker's event loop, never in a
 * blocking Atomics.wait. When idle it arms Atomics.waitAsync on the port's
 * P_WAKE word with a timeout equal to the next callout's due time; senders
 * notify that word (only when P_SLEEPING is set). Because the event loop
 * stays free, a native poll handle (the TAP addon's uv_poll) can wake the
 * same loop later just by scheduling `kick()`; Atomics.wait could not be
 * woken by native code. Before arming the wait the loop spins for
 * `spinUs` microseconds (kern.mp.spin_us), which saves the event-loop
 * round trip when requests come back to back.
 */
import { ArgumentError } from '../errors.js';
import { CalloutWheel, HZ_DEFAULT } from './callout.js';
import { realClock, type Clock } from '../clock.js';
import type { NetThread } from './netthread.js';
import { EFAULT, EINVAL, EJUSTRETURN, ESHUTDOWN } from '../errno.js';
import {
  CMD_SETTLE,
  MC_DEBUG,
  MC_HERRORS,
  MC_QUIESCED,
  MC_STATE,
  MSG_CMD,
  MSG_FLAGS,
  MSG_NEXT,
  MSG_PAYLOAD,
  MSG_RCMD,
  MSGF_DONE,
  MSGF_QUEUED,
  MSGF_SYNC,
  MSTATE_RUNNING,
  P_SLEEPING,
  P_STAT,
  P_STAT_BUSY_US,
  P_STAT_HANDLED,
  P_STAT_SLEEPS,
  P_WAKE,
} from './layout.js';
import type { MsgContext } from './msgport.js';
import { portGet, portHasWork, portSpaceWake, portTakeReplies } from './port.js';

/**
 * A request handler: returns an errno (0 = success) and the loop replies, or
 * EJUSTRETURN when it kept the message and will call replymsg itself.
 */
export type Handler = (td: ProtocolThread, msg: number) => number;
/** Runs on the CPU that sent a message with a reply port when the reply arrives; owns (and frees) it. */
export type ReplyHandler = (td: ProtocolThread, msg: number) => void;
/** An interface poll hook: returns how much work it did (0 = idle). */
export type PollHook = (td: ProtocolThread) => number;
/** A shutdown hook: frees what the layer holds on this CPU. */
export type ShutdownHook = (td: ProtocolThread) => void;

/** register()'s cargo mask: argument 0 of the command's messages is an mbuf chain. */
export const MBUF_ARG0 = 1;

/** A cargo mask naming the arguments that hold mbuf chains. */
export function mbufArgs(...args: number[]): number {
  let mask = 0;
  for (const a of args) {
    if (!Number.isInteger(a) || a < 0 || a >= 16) throw new ArgumentError(`no message argument ${a}`);
    mask |= 1 << a;
  }
  return mask;
}

/** kern.mp.idle_block_us default: an idle CPU blocks up to 1 ms before arming waitAsync. */
export const IDLE_BLOCK_US_DEFAULT = 1000;

/** Messages handled per pass before timers and polls get a turn. */
const BATCH = 64;

/** At most this many handler-error reports per CPU per second (ppsratecheck-like). */
const ERROR_LOGS_PER_SEC = 5;

/**
 * A handler, callout or poll hook threw on a CPU in debug mode (or where it
 * cannot be survived): the worker dies with this error, and the machine
 * reports it (MachineError) with the CPU, the handler's name and command.
 */
export class CpuFault extends Error {
  readonly cpu: number;
  readonly handler: string;
  readonly cmd: number;
  constructor(cpu: number, handler: string, cmd: number, cause: unknown) {
    super(`${handler}${cmd > 0 ? ` (cmd 0x${cmd.toString(16)})` : ''} threw: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'CpuFault';
    this.cpu = cpu;
    this.handler = handler;
    this.cmd = cmd;
    if (cause instanceof Error && cause.stack !== undefined) this.stack = `${this.name}: ${this.message}\n${cause.stack.split('\n').slice(1).join('\n')}`;
  }
}

export class ProtocolThread implements NetThread {
  readonly ctx: MsgContext;
  readonly cpu: number;
  readonly port: number;
  readonly callouts: CalloutWheel;
  private readonly handlers: (Handler | undefined)[] = [];
  private readonly handlerNames: (string | undefined)[] = [];
  private readonly replyHandlers: (ReplyHandler | undefined)[] = [];
  readonly pollHooks: PollHook[] = [];
  /** Poll hooks added with needsEventLoop: while any is present an idle CPU never blocks. */
  private readonly loopHooks = new Set<PollHook>();
  readonly shutdownHooks: ShutdownHook[] = [];
  /** Per-layer state of this CPU (a layer stores its per-CPU tables here). */
  readonly layers = new Map<string, unknown>();
  /** Microseconds to spin before sleeping (used when spinIdx is not set). */
  spinUs = 20;
  /** Arena word of kern.mp.spin_us: when set (>= 0) the spin reads it live, so sysctl changes apply at once. */
  spinIdx = -1;
  /**
   * Arena word of kern.mp.idle_block_us (-1: not set, never block): how
   * long an idle CPU without poll hooks may sleep in a blocking
   * Atomics.wait (a futex wake, several microseconds faster than waking an
   * event loop) before it falls back to Atomics.waitAsync.
   */
  blockIdx = -1;
  /** Statistics (thread-local). */
  handled = 0;
  sleeps = 0;
  /** Idle waits that blocked the thread (blockIdle), a subset of sleeps. */
  blocks = 0;
  direct = 0;
  /** Handlers, callouts and poll hooks that threw and were survived (also in the machine record, MC_HERRORS). */
  handlerErrors = 0;
  /** Work done (requests, replies, callouts, polls), settle requests excluded: Machine.advance compares it. */
  private activity = 0;
  /** Settle requests (Machine.advance) waiting for this CPU to go idle. */
  private readonly settleWaiters: number[] = [];
  private logWindow = 0;
  private logsInWindow = 0;
  private logsSuppressed = 0;
  /** Debug mode (the arena's flag): a throwing handler stops the CPU (CpuFault) instead of being survived. */
  readonly debug: boolean;
  /** Milliseconds spent in passes that did work (published as P_STAT_BUSY_US). */
  busyMs = 0;
  private loadView: Float64Array | null = null;
  private stopping = false;
  private scheduled = false;
  /** True while sleep()'s Atomics.waitAsync is armed (kick must notify it). */
  private asleep = false;
  /** True while loop() runs; a kick then only asks for another pass (rerun). */
  private running = false;
  private rerun = false;
  private onStopped: (() => void) | null = null;
  private readonly i32: Int32Array;

  constructor(ctx: MsgContext, clock: Clock = realClock) {
    if (ctx.curcpu < 0) throw new ArgumentError('a protocol thread needs a CPU context');
    this.ctx = ctx;
    this.cpu = ctx.curcpu;
    this.port = ctx.ports[this.cpu];
    this.i32 = ctx.i32;
    this.callouts = new CalloutWheel(HZ_DEFAULT, clock);
    this.callouts.onError = (e) => this.survive('callout', 0, e);
    this.debug = Atomics.load(this.i32, (ctx.record >> 2) + MC_DEBUG) !== 0;
    ctx.direct = (msg) => this.dispatch(msg);
    ctx.pump = () => this.pumpOnce();
    this.register(CMD_SETTLE, 'lwkt settle', (_td, msg) => {
      this.activity--; // a settle request is not work
      this.settleWaiters.push(msg);
      return EJUSTRETURN;
    });
  }

  /**
   * Register the handler of command `cmd` (each command once per CPU).
   * `cargo`: bit i set when argument i of its messages holds an mbuf chain
   * that the handler takes over; a message dropped undelivered (stop, dead
   * port, ctx.dropmsg) then has that chain freed by whichever thread drops
   * it (MsgContext.registerCargo). Cold; does not sleep.
   */
  register(cmd: number, name: string, fn: Handler, onReply?: ReplyHandler, cargo = 0): void {
    if (!Number.isInteger(cmd) || cmd <= 0 || cmd > 0xffff) throw new ArgumentError(`command must be an integer in 1..65535, got ${cmd}`);
    if (this.handlers[cmd] !== undefined) throw new ArgumentError(`command ${cmd} is already "${this.handlerNames[cmd]}", cannot register "${name}"`);
    this.ctx.registerCargo(cmd, cargo);
    this.handlers[cmd] = fn;
    this.handlerNames[cmd] = name;
    if (onReply) this.replyHandlers[cmd] = onReply;
  }

  /** The registered name of command `cmd` (for reports), or its number. */
  handlerName(cmd: number): string {
    return this.handlerNames[cmd] ?? `command ${cmd}`;
  }

  get clock(): Clock {
    return this.callouts.clock;
  }

  /**
   * Run `h` every pass; it returns the work it did. With `needsEventLoop`
   * its work is signalled through the event loop (a TAP's uv_poll), so an
   * idle CPU must not block in Atomics.wait while it is present. Other hooks
   * only find work that a message, a callout or a pass of this thread made,
   * and each of those wakes P_WAKE or runs before the CPU blocks.
   */
  addPollHook(h: () => number, needsEventLoop = false): void {
    this.pollHooks.push(h);
    if (needsEventLoop) this.loopHooks.add(h);
  }

  removePollHook(h: () => number): void {
    const i = this.pollHooks.indexOf(h);
    if (i >= 0) this.pollHooks.splice(i, 1);
    if (!this.pollHooks.includes(h)) this.loopHooks.delete(h);
  }

  /** Start the loop (from the worker entry, once). */
  start(onStopped: () => void): void {
    this.onStopped = onStopped;
    this.kick();
  }

  /**
   * Schedule a pass of the loop soon (a native poll callback calls this). If
   * the loop is asleep in its asynchronous wait, wake that wait instead: it
   * runs the loop when it resolves. Does not sleep.
   */
  kick(): void {
    if (this.running) {
      // Called from inside a pass (a handler or poll hook queued work): the
      // loop runs again before it sleeps.
      this.rerun = true;
      return;
    }
    if (this.asleep) {
      const p = (this.port >> 2) + P_WAKE;
      Atomics.add(this.i32, p, 1);
      Atomics.notify(this.i32, p);
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.loop);
  }

  /**
   * Run one request: look up its handler and reply with its errno unless it
   * kept the message. Unknown commands get EINVAL. A handler that throws
   * (it must not have replied) gets its message answered EFAULT; then the
   * error is counted and logged (rate-limited, with CPU and handler name)
   * and the CPU goes on, or, in debug mode, the CPU stops with a CpuFault
   * that the machine reports.
   */
  dispatch(msg: number): void {
    const i32 = this.i32;
    const m = msg >> 2;
    const f = i32[m + MSG_FLAGS];
    // Atomic only for a synchronous message, whose waiter may be setting MSGF_WAITING.
    if ((f & MSGF_SYNC) !== 0) Atomics.and(i32, m + MSG_FLAGS, ~MSGF_QUEUED);
    else i32[m + MSG_FLAGS] = f & ~MSGF_QUEUED;
    const fn = this.handlers[i32[m + MSG_CMD]];
    this.handled++;
    if (fn === undefined) {
      this.ctx.replymsg(msg, EINVAL);
      return;
    }
    let err: number;
    try {
      err = fn(this, msg);
    } catch (e) {
      this.handlerThrew(msg, e);
      return;
    }
    if (err !== EJUSTRETURN) this.ctx.replymsg(msg, err);
  }

  /**
   * Log a line about this CPU: through the UMA logger, which a CPU worker
   * forwards to the machine (prefixed with "cpuN: " there). Cold.
   */
  report(line: string): void {
    this.ctx.uma.logger(line);
  }

  /** dispatch()'s slow path: answer EFAULT (unless already answered), then survive or fault. */
  private handlerThrew(msg: number, e: unknown): void {
    const cmd = this.i32[(msg >> 2) + MSG_CMD];
    const f = Atomics.load(this.i32, (msg >> 2) + MSG_FLAGS);
    if ((f & MSGF_DONE) === 0) this.ctx.replymsg(msg, EFAULT);
    this.survive(`handler "${this.handlerName(cmd)}"`, cmd, e);
  }

  /**
   * Something this CPU runs threw. Debug mode: stop the CPU (throw a
   * CpuFault out of the loop: the worker dies and the machine reports it).
   * Otherwise count it (td.handlerErrors and MC_HERRORS, which the machine
   * reads) and log it at most ERROR_LOGS_PER_SEC times a second. Cold.
   */
  private survive(what: string, cmd: number, e: unknown): void {
    if (e instanceof CpuFault) throw e;
    if (this.debug) throw new CpuFault(this.cpu, what, cmd, e);
    this.handlerErrors++;
    Atomics.add(this.i32, (this.ctx.record >> 2) + MC_HERRORS + this.cpu, 1);
    const t = performance.now();
    if (t - this.logWindow >= 1000) {
      if (this.logsSuppressed > 0) this.report(`${this.logsSuppressed} more handler errors not shown`);
      this.logWindow = t;
      this.logsInWindow = 0;
      this.logsSuppressed = 0;
    }
    if (this.logsInWindow++ < ERROR_LOGS_PER_SEC) {
      const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
      this.report(`${what}${cmd > 0 ? ` (cmd 0x${cmd.toString(16)})` : ''} threw (counted, CPU goes on): ${detail}`);
    } else this.logsSuppressed++;
  }

  /** Run replies that came back to this CPU's port. */
  private runReplies(): number {
    let msg = portTakeReplies(this.i32, this.port);
    let n = 0;
    while (msg !== 0) {
      const next = this.i32[(msg >> 2) + MSG_NEXT];
      const rh = this.replyHandlers[this.i32[(msg >> 2) + MSG_RCMD]];
      if (rh !== undefined) rh(this, msg);
      else this.ctx.freeReply(msg);
      msg = next;
      n++;
    }
    return n;
  }

  /** One pass: up to BATCH requests, replies, callouts, polls. Returns work done. */
  private pass(): number {
    const i32 = this.i32;
    let work = 0;
    for (let i = 0; i < BATCH; i++) {
      const msg = portGet(i32, this.port);
      if (msg === 0) break;
      this.dispatch(msg);
      work++;
    }
    if (work > 0) portSpaceWake(i32, this.port);
    work += this.runReplies();
    work += this.callouts.softclock();
    for (let i = 0; i < this.pollHooks.length; i++) {
      try {
        work += this.pollHooks[i](this);
      } catch (e) {
        this.survive('poll hook', 0, e);
      }
    }
    this.activity += work;
    return work;
  }

  /**
   * The CPU is idle at the current time: answer the settle requests of
   * Machine.advance with this CPU's activity count (arg 0) and the due time
   * of its next callout (Float64 ms in the payload; -1: none).
   */
  private answerSettles(): void {
    const ms = this.callouts.msUntilNext();
    const due = ms < 0 ? -1 : this.clock.now() + ms;
    const f64 = new Float64Array(this.i32.buffer);
    for (const msg of this.settleWaiters.splice(0)) {
      this.ctx.setArg(msg, 0, this.activity | 0);
      f64[(msg + MSG_PAYLOAD) >> 3] = due;
      this.ctx.replymsg(msg, 0);
    }
  }

  /** Used by domsg on this CPU while a directly dispatched handler has not replied. */
  private pumpOnce(): void {
    if (this.pass() === 0) {
      const w = Atomics.load(this.i32, (this.port >> 2) + P_WAKE);
      Atomics.wait(this.i32, (this.port >> 2) + P_WAKE, w, 1);
    }
  }

  private readonly loop = (): void => {
    this.scheduled = false;
    this.running = true;
    try {
      this.runLoop();
    } finally {
      this.running = false;
      this.publishLoad();
    }
    if (this.rerun) {
      this.rerun = false;
      this.kick();
    }
  };

  /** loop()'s body: passes until idle or ~2 ms, then kick again or sleep. */
  private runLoop(): void {
    const i32 = this.i32;
    const rec = this.ctx.record >> 2;
    const t0 = performance.now();
    // Stay on the CPU while there is work, up to ~2 ms, then let the event loop breathe.
    for (;;) {
      if (Atomics.load(i32, rec + MC_STATE) !== MSTATE_RUNNING) {
        this.beginStop();
        return;
      }
      const tp = performance.now();
      if (this.pass() > 0) {
        const now = performance.now();
        this.busyMs += now - tp;
        if (now - t0 > 2) break;
        continue;
      }
      if (this.rerun) {
        this.rerun = false;
        continue;
      }
      if (this.settleWaiters.length !== 0) this.answerSettles();
      if (this.spin()) continue;
      if (performance.now() - t0 > 2 || !this.blockIdle()) break;
    }
    // More queued, or a settle request that needs a pass with no work to be answered: go round again.
    if (portHasWork(i32, this.port) || this.settleWaiters.length !== 0) {
      this.kick();
      return;
    }
    if (this.rerun) return; // loop() schedules the next pass
    this.sleep();
  }

  /** Publish the load counters in the port's owner line (plain stores: one writer, racy readers). */
  private publishLoad(): void {
    const f = (this.loadView ??= new Float64Array(this.i32.buffer, this.port + P_STAT * 4, 3));
    f[P_STAT_HANDLED] = this.handled;
    f[P_STAT_BUSY_US] = Math.round(this.busyMs * 1000);
    f[P_STAT_SLEEPS] = this.sleeps;
  }

  /** Spin for spinUs waiting for work; true if some arrived. */
  private spin(): boolean {
    const us = this.spinIdx >= 0 ? Atomics.load(this.i32, this.spinIdx) : this.spinUs;
    if (us <= 0) return false;
    const until = performance.now() + us / 1000;
    while (performance.now() < until) {
      if (portHasWork(this.i32, this.port)) return true;
    }
    return false;
  }

  /**
   * Idle, short form: sleep in a blocking Atomics.wait on P_WAKE for at most
   * kern.mp.idle_block_us (and not past the next callout). Not while a poll
   * hook needs the event loop (a device's native poll handle, which a blocked
   * thread could not see). Same Dekker protocol as sleep(). False
   * when blocking is off (then the caller arms the asynchronous wait).
   * Blocks the thread.
   */
  private blockIdle(): boolean {
    if (this.blockIdx < 0 || this.loopHooks.size !== 0) return false;
    const i32 = this.i32;
    const us = Atomics.load(i32, this.blockIdx);
    if (us <= 0) return false;
    const p = this.port >> 2;
    this.ctx.uma.poll();
    // Readers of the load counters must not wait for the end of the loop while it blocks.
    this.publishLoad();
    const w = Atomics.load(i32, p + P_WAKE);
    Atomics.store(i32, p + P_SLEEPING, 1);
    if (!portHasWork(i32, this.port) && Atomics.load(i32, (this.ctx.record >> 2) + MC_STATE) === MSTATE_RUNNING) {
      const ms = this.clock.manual ? -1 : this.callouts.msUntilNext();
      this.sleeps++;
      this.blocks++;
      Atomics.wait(i32, p + P_WAKE, w, ms < 0 ? us / 1000 : Math.min(ms, us / 1000));
    }
    Atomics.store(i32, p + P_SLEEPING, 0);
    return true;
  }

  /** Arm the idle wait: waitAsync on P_WAKE with the next callout as timeout. */
  private sleep(): void {
    const i32 = this.i32;
    const p = this.port >> 2;
    this.ctx.uma.poll();
    const w = Atomics.load(i32, p + P_WAKE);
    Atomics.store(i32, p + P_SLEEPING, 1);
    if (portHasWork(i32, this.port) || Atomics.load(i32, (this.ctx.record >> 2) + MC_STATE) !== MSTATE_RUNNING) {
      Atomics.store(i32, p + P_SLEEPING, 0);
      this.kick();
      return;
    }
    // On a manual clock time moves only by Machine.advance, which wakes the port.
    const ms = this.clock.manual ? -1 : this.callouts.msUntilNext();
    this.sleeps++;
    this.scheduled = true;
    this.asleep = true;
    const r = Atomics.waitAsync(i32, p + P_WAKE, w, ms < 0 ? Infinity : Math.max(ms, 0.05));
    const wake = (): void => {
      Atomics.store(i32, p + P_SLEEPING, 0);
      this.asleep = false;
      this.scheduled = false;
      this.loop();
    };
    if (r.async) r.value.then(wake);
    else setImmediate(wake);
  }

  /**
   * Stop, phase one: run the layers' shutdown hooks (they free what this CPU
   * holds and answer messages they kept), then keep answering requests with
   * ESHUTDOWN until every CPU has passed phase one, so that no message sent
   * by a late hook of another CPU is stranded. Then drain for good.
   */
  private beginStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.callouts.stopAll();
    for (const msg of this.settleWaiters.splice(0)) this.ctx.answerUndelivered(msg);
    for (const h of this.shutdownHooks) {
      try {
        h(this);
      } catch (e) {
        // A hook that throws must not strand the other CPUs at the barrier: report and go on.
        this.report(`shutdown hook threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
    const i32 = this.i32;
    const rec = this.ctx.record >> 2;
    Atomics.add(i32, rec + MC_QUIESCED, 1);
    Atomics.notify(i32, rec + MC_QUIESCED);
    const waitAll = (): void => {
      this.drainPort();
      const q = Atomics.load(i32, rec + MC_QUIESCED);
      if (q < this.ctx.ncpus) {
        const r = Atomics.waitAsync(i32, rec + MC_QUIESCED, q, 5);
        if (r.async) r.value.then(waitAll);
        else setImmediate(waitAll);
        return;
      }
      this.drainPort();
      this.ctx.uma.flushCpuCaches();
      this.onStopped?.();
    };
    waitAll();
  }

  /**
   * Answer every queued request with ESHUTDOWN (undelivered: the cargo of a
   * message nobody waits for is freed) and consume every reply.
   */
  drainPort(): void {
    const i32 = this.i32;
    for (;;) {
      const msg = portGet(i32, this.port);
      if (msg === 0) break;
      this.ctx.answerUndelivered(msg);
    }
    portSpaceWake(i32, this.port);
    this.runReplies();
  }
}
