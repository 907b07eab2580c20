/**
 * The machine: one arena, ncpus worker threads that are the CPUs, each
 * running a protocol thread over its own message port (DragonFly's per-CPU
 * netisr threads). Made and stopped from the main thread.
 *
 * Start: make (or bind) the MP zones, lay out the machine record and one port
 * per CPU, start the workers with the handler modules to load, and wait until
 * every CPU says it is ready.
 * Stop: flip the machine state to STOPPING and wake every port; each CPU runs
 * its layers' shutdown hooks, answers what is queued with ESHUTDOWN, waits
 * for the others (so nothing is stranded), flushes its UMA caches and exits.
 * The main thread then drains whatever a dead CPU left in its port and frees
 * the ports and the record, so every zone's `used` is back where it was.
 * A worker that throws is reported (MachineError with its CPU id, and the
 * handler's name when a handler threw: logged, emitted as 'cpuerror', kept
 * in stopReason) and the machine stops itself the same way.
 *
 * Time: every CPU reads the real clock, or (clock: 'manual') one Float64
 * clock in the machine record that only advance() moves, so tests with real
 * worker CPUs run callouts of seconds without waiting.
 */
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ArgumentError, SlabnetError } from '../errors.js';
import { M_WAITOK, M_ZERO } from '../../uma/flags.js';
import { Uma } from '../../uma/uma.js';
import type { Zone } from '../../uma/zone.js';
import { tunableIndex } from '../sysctl/tunables.js';
import type { Sysctl } from '../sysctl/sysctl.js';
import { sysctlFor } from '../sysctl/vm.js';
import { registerMpSysctls } from './sysctl.js';
import { ESHUTDOWN, ErrnoError } from '../errno.js';
import { realClock, SharedClock, type Clock } from '../clock.js';
import { bootSecret } from '../prng.js';
import {
  CMD_SETTLE,
  MC_CLOCK_F64,
  MC_CLOCK_MODE,
  MC_CLOCK_SEQ,
  MC_DEBUG,
  MC_RSS_KEY,
  MC_HERRORS,
  MCLOCK_MANUAL,
  MSG_PAYLOAD,
  MACHINE_BYTES,
  MACHINE_ZONE,
  MACHINE_MAGIC,
  MC_MAGIC,
  MC_MAX_CPUS,
  MC_NCPUS,
  MC_PORTS,
  MC_QUIESCED,
  MC_STATE,
  MSG_BYTES,
  MSG_NEXT,
  MSG_ZONE,
  MSTATE_DRAINED,
  MSTATE_RUNNING,
  MSTATE_STOPPING,
  PORT_ZONE,
  portBytes,
} from './layout.js';
import { MsgContext, USER_SENDS_TUNABLE, type MachineInfo } from './msgport.js';
import { portFormat, portGet, portSpaceWake, portTakeReplies, portWake } from './port.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { isRssKeyName, RSS_KEY_NAMES, useRssKey, type RssKeyName } from '../../net/rss.js';

export interface MachineOptions {
  /** CPUs (worker threads); default os.availableParallelism(). */
  ncpus?: number;
  /** An existing UMA (main thread); otherwise one is created. */
  uma?: Uma;
  /** Arena bytes when the machine creates the UMA (default 256 MiB). */
  arenaSize?: number;
  /** Extra arena CPU slots for user workers that attach later (default 8). */
  userThreads?: number;
  debug?: boolean;
  /** Paths (or file: URLs) of modules exporting register(td), loaded in every CPU. */
  handlers?: string[];
  /** Cells per port (a power of two; default 1024): the backpressure bound. */
  portCapacity?: number;
  /** Microseconds a CPU spins before sleeping (kern.mp.spin_us). */
  spinUs?: number;
  /** Milliseconds to wait for a worker to exit before terminating it. */
  stopTimeoutMs?: number;
  /**
   * 'real' (default): every CPU reads performance.now(). 'manual': every CPU
   * reads one clock in the arena, starting at 0 ms, that only advance() moves.
   */
  clock?: 'real' | 'manual';
  /** Where CPU failures are reported (default: the UMA's logger, stderr). */
  log?: (message: string) => void;
  /**
   * The RSS key flows are hashed to CPUs with (net/rss.ts): 'symmetric'
   * (default; both directions of a flow, so both ends of a connection between
   * two stacks of the system, on one CPU) or 'microsoft' (the RSS spec's key,
   * as NICs hash). Fixed for the machine's life, as FreeBSD's boot-time
   * net.inet.rss.key; readable as the sysctl net.inet.rss.key.
   */
  rss?: RssKeyName;
}

/** A CPU worker failed: thrown by start(), listed in machine.failures. */
export class MachineError extends SlabnetError {
  readonly cpu: number;
  /** The handler (or 'callout', 'poll hook') that threw, when known (a CpuFault). */
  readonly handler: string | null;
  /** Its command (0: not a message handler). */
  readonly cmd: number;
  override readonly cause: unknown;
  constructor(cpu: number, cause: unknown) {
    super('ERR_SLABNET_CPU_FAILED', `cpu${cpu}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.cpu = cpu;
    this.cause = cause;
    // A CpuFault thrown in the worker arrives as an Error with its own properties.
    const f = cause as { handler?: unknown; cmd?: unknown } | null;
    this.handler = f !== null && typeof f === 'object' && typeof f.handler === 'string' ? f.handler : null;
    this.cmd = f !== null && typeof f === 'object' && typeof f.cmd === 'number' ? f.cmd : 0;
  }
}

/** Why a machine stopped: stop() was called, or a CPU failed. */
export type StopReason = { kind: 'stop' } | { kind: 'cpu'; error: MachineError };

/** Settle rounds advance() makes at most before it reports a livelock. */
const MAX_SETTLE_ROUNDS = 100_000;

/** Makes each machine's magic distinct, so a stale MachineInfo is refused. */
let generation = Math.floor(Math.random() * 0x10000);

const WORKER_URL = new URL('./cpu-worker.js', import.meta.url);

/** Bind or create the MP zones in this thread. */
function mpZones(uma: Uma, portCap: number): { msg: Zone; port: Zone; machine: Zone } {
  const get = (name: string, size: number): Zone => {
    try {
      return uma.zone(name);
    } catch {
      return uma.zcreate(name, { size });
    }
  };
  const port = get(PORT_ZONE, portBytes(portCap));
  if (port.keg.size < portBytes(portCap)) throw new ArgumentError(`zone "${PORT_ZONE}" exists with room for fewer than ${portCap} cells`);
  return { msg: get(MSG_ZONE, MSG_BYTES), port, machine: get(MACHINE_ZONE, MACHINE_BYTES) };
}

/**
 * Events: 'cpuerror' (MachineError) when a CPU fails, before the machine
 * stops itself; 'stopped' when stop() has freed everything.
 */
export class Machine extends EventEmitter {
  readonly uma: Uma;
  readonly ncpus: number;
  /** The main thread's message context (use its *Async methods). */
  readonly ctx: MsgContext;
  /** CPU failures seen (a throwing worker). */
  readonly failures: MachineError[] = [];
  /** Called once per failure, before the machine stops itself. */
  onFailure: ((err: MachineError) => void) | null = null;
  /** Null while running; why the machine stopped once stop() began. */
  stopReason: StopReason | null = null;
  /** The CPUs' clock (main thread's view): realClock, or the manual clock advance() moves. */
  readonly clock: Clock;
  private readonly manualClock: SharedClock | null;
  private readonly log: (message: string) => void;
  private readonly record: number;
  private readonly magic: number;
  private readonly zones: { msg: Zone; port: Zone; machine: Zone };
  private readonly workers: Worker[] = [];
  private readonly exited: Promise<void>[] = [];
  private stopPromise: Promise<void> | null = null;
  private readonly stopTimeoutMs: number;
  private readonly ownsUma: boolean;
  /** Gives back this thread's hold on the RSS key (at the end of stop). */
  private releaseRss: () => void = () => {};
  /** The main thread's reply port (MsgContext.useReplyPort). */
  private replyPort = 0;
  private rssKeyName: RssKeyName = 'symmetric';

  /** The RSS key every thread of this machine hashes flows with (MachineOptions.rss). */
  get rss(): RssKeyName {
    return this.rssKeyName;
  }

  private constructor(uma: Uma, ownsUma: boolean, ncpus: number, record: number, magic: number, zones: { msg: Zone; port: Zone; machine: Zone }, stopTimeoutMs: number, manual: boolean, log: ((m: string) => void) | undefined) {
    super();
    this.uma = uma;
    this.manualClock = manual ? new SharedClock(uma.arena.sab, (record >> 2) + MC_CLOCK_SEQ, record + MC_CLOCK_F64 * 4) : null;
    this.clock = this.manualClock ?? realClock;
    this.log = log ?? ((m) => uma.logger(m));
    this.magic = magic;
    this.ownsUma = ownsUma;
    this.ncpus = ncpus;
    this.record = record;
    this.zones = zones;
    this.stopTimeoutMs = stopTimeoutMs;
    this.ctx = new MsgContext(uma, record, -1, magic);
  }

  /**
   * Start a machine and wait until every CPU is running its protocol thread.
   * Rejects with a MachineError (after a clean stop) if a CPU fails to start.
   */
  static async start(opts: MachineOptions = {}): Promise<Machine> {
    const ncpus = opts.ncpus ?? availableParallelism();
    if (opts.clock !== undefined && opts.clock !== 'real' && opts.clock !== 'manual') throw new ArgumentError(`clock must be 'real' or 'manual', got ${String(opts.clock)}`);
    if (opts.rss !== undefined && !isRssKeyName(opts.rss)) throw new ArgumentError(`rss must be 'symmetric' or 'microsoft', got ${String(opts.rss)}`);
    const rss = opts.rss ?? 'symmetric';
    if (!Number.isInteger(ncpus) || ncpus < 1 || ncpus > MC_MAX_CPUS) throw new ArgumentError(`ncpus must be an integer in 1..${MC_MAX_CPUS}, got ${ncpus}`);
    const cap = opts.portCapacity ?? 1024;
    if (!Number.isInteger(cap) || cap < 2 || cap > 65536 || (cap & (cap - 1)) !== 0) throw new ArgumentError(`portCapacity must be a power of two in 2..65536, got ${cap}`);
    const ownsUma = opts.uma === undefined;
    const uma = opts.uma ?? Uma.create({ size: opts.arenaSize, ncpus: Math.min(64, ncpus + 1 + (opts.userThreads ?? 8)), debug: opts.debug });
    if (uma.arena.ncpusRegistered + ncpus > uma.arena.ncpusMax) {
      throw new ArgumentError(`arena has ${uma.arena.ncpusMax - uma.arena.ncpusRegistered} free CPU slots, machine needs ${ncpus}`);
    }
    // This thread computes flow CPUs for the machine (port choice, placement): it hashes as the CPUs do.
    const releaseRss = useRssKey(rss);
    bootSecret(uma.arena); // made here, from crypto random bytes, before any CPU reads it
    const zones = mpZones(uma, cap);
    const record = zones.machine.alloc(M_WAITOK | M_ZERO);
    const i32 = uma.arena.i32;
    const r = record >> 2;
    i32[r + MC_NCPUS] = ncpus;
    i32[r + MC_CLOCK_MODE] = opts.clock === 'manual' ? MCLOCK_MANUAL : 0;
    i32[r + MC_DEBUG] = uma.arena.debug ? 1 : 0;
    i32[r + MC_RSS_KEY] = RSS_KEY_NAMES.indexOf(rss);
    for (let c = 0; c < ncpus; c++) {
      const port = zones.port.alloc(M_WAITOK);
      portFormat(i32, port, c, cap);
      i32[r + MC_PORTS + c] = port;
    }
    const magic = (MACHINE_MAGIC ^ (++generation << 8)) | 0;
    Atomics.store(i32, r + MC_MAGIC, magic);
    Atomics.store(i32, r + MC_STATE, MSTATE_RUNNING);
    const spinIdx = tunableIndex(uma.arena, 'kern.mp.spin_us', 20);
    if (opts.spinUs !== undefined) Atomics.store(i32, spinIdx, opts.spinUs);
    const m = new Machine(uma, ownsUma, ncpus, record, magic, zones, opts.stopTimeoutMs ?? 10000, opts.clock === 'manual', opts.log);
    m.releaseRss = releaseRss;
    // The main thread's reply port: every domsgAsync reply is queued there (one wait for all of them).
    m.replyPort = zones.port.alloc(M_WAITOK);
    portFormat(i32, m.replyPort, -1, 2);
    m.ctx.useReplyPort(m.replyPort);
    m.rssKeyName = rss;
    const handlers = (opts.handlers ?? []).map((h) => (h.startsWith('file:') ? fileURLToPath(h) : h));
    const ready: Promise<void>[] = [];
    for (let c = 0; c < ncpus; c++) ready.push(m.spawn(c, handlers, Atomics.load(i32, spinIdx)));
    try {
      await Promise.all(ready);
    } catch (e) {
      await m.stop();
      throw m.failures[0] ?? e;
    }
    return m;
  }

  private spawn(cpu: number, handlers: string[], spinUs: number): Promise<void> {
    const w = new Worker(WORKER_URL, {
      workerData: { sab: this.uma.arena.sab, record: this.record, magic: this.magic, cpu, handlers, spinUs },
    });
    this.workers.push(w);
    let readyResolve!: () => void;
    let readyReject!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    w.on('message', (m: { type: string; message?: string }) => {
      if (m.type === 'ready') readyResolve();
      else if (m.type === 'log') this.log(`cpu${cpu}: ${m.message}`);
    });
    w.on('error', (e) => {
      const err = new MachineError(cpu, e);
      readyReject(err);
      this.cpuFailed(err);
    });
    this.exited.push(
      new Promise<void>((res) => {
        w.on('exit', (code) => {
          if (code !== 0 && this.failures.every((f) => f.cpu !== cpu) && this.stopPromise === null) {
            const err = new MachineError(cpu, new Error(`worker exited with code ${code}`));
            readyReject(err);
            this.cpuFailed(err);
          }
          readyReject(new MachineError(cpu, new Error('worker exited before it was ready')));
          res();
        });
      }),
    );
    return ready;
  }

  /**
   * A CPU failed: record it, report it (log, onFailure, 'cpuerror') and stop
   * the machine (the first failure is the stop reason). Cold.
   */
  private cpuFailed(err: MachineError): void {
    this.failures.push(err);
    const cause = err.cause instanceof Error ? (err.cause.stack ?? err.cause.message) : String(err.cause);
    this.log(`slabnet: cpu${err.cpu} failed${err.handler !== null ? ` in ${err.handler}` : ''}, stopping the machine: ${cause}`);
    if (this.stopReason === null) this.stopReason = { kind: 'cpu', error: err };
    this.onFailure?.(err);
    this.emit('cpuerror', err);
    void this.stop();
  }

  /**
   * Handler errors CPU `cpu` survived (all CPUs' sum without an argument):
   * handlers, callouts and poll hooks that threw outside debug mode. Any time
   * before stop() completes; no lock.
   */
  handlerErrors(cpu?: number): number {
    if (this.drained) return this.herrorsAtStop[cpu ?? -1] ?? 0;
    const base = (this.record >> 2) + MC_HERRORS;
    if (cpu !== undefined) return Atomics.load(this.uma.arena.i32, base + cpu);
    let n = 0;
    for (let c = 0; c < this.ncpus; c++) n += Atomics.load(this.uma.arena.i32, base + c);
    return n;
  }

  /**
   * Manual clock only: move every CPU's time forward by `ms`, stopping at
   * each callout's due time on the way (the earliest over all CPUs) and
   * letting every CPU settle at each stop: requests, replies, due callouts
   * and the messages they send to one another, until no CPU did any work in
   * a whole round. Resolves when the machine is idle at the new time, like
   * LocalThread.advance. Main thread; never blocks (awaits each settle).
   * ErrnoError ESHUTDOWN when the machine stops meanwhile.
   */
  async advance(ms: number): Promise<void> {
    const clock = this.manualClock;
    if (clock === null) throw new ArgumentError("advance() needs a machine started with clock: 'manual'");
    if (!Number.isFinite(ms) || ms < 0) throw new ArgumentError(`advance: ms must be finite and >= 0, got ${ms}`);
    const end = clock.now() + ms;
    let next = await this.settle();
    while (next >= 0 && next <= end) {
      // Step to the next due time (at least 1 us, so a callout whose tick
      // rounds just short still comes due) and settle there.
      clock.set(Math.min(end, Math.max(next, clock.now() + 0.001)));
      next = await this.settle();
      if (clock.now() >= end) break;
    }
    if (clock.now() < end) clock.set(end);
    await this.settle();
  }

  /**
   * Settle rounds: CMD_SETTLE to every CPU (each answers when idle), until
   * two consecutive rounds see the same activity count on every CPU, so no
   * message between CPUs can still be in flight. Returns the earliest next
   * callout due time over all CPUs (ms, -1: none). Main thread.
   */
  private async settle(): Promise<number> {
    let prev: number[] | null = null;
    for (let round = 0; round < MAX_SETTLE_ROUNDS; round++) {
      // allSettled, not all: when one CPU fails, the others' settle messages are still out, and
      // advance must not reject before each is answered and freed (a caller that stops the machine
      // and checks zones right after the rejection would see a message still in use).
      const settled = await Promise.allSettled(Array.from({ length: this.ncpus }, (_, c) => this.settleOne(c)));
      const failed = settled.find((x) => x.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      const res = settled.map((x) => (x as PromiseFulfilledResult<[number, number]>).value);
      const acts = res.map((r) => r[0]);
      if (prev !== null && acts.every((a, i) => a === prev![i])) {
        let next = -1;
        for (const r of res) if (r[1] >= 0 && (next < 0 || r[1] < next)) next = r[1];
        return next;
      }
      prev = acts;
    }
    throw new ArgumentError(`advance: CPUs still busy after ${MAX_SETTLE_ROUNDS} settle rounds (livelock?)`);
  }

  /** One CPU's settle answer: [activity, next due ms]. */
  private async settleOne(cpu: number): Promise<[number, number]> {
    const ctx = this.ctx;
    const msg = ctx.allocmsg(CMD_SETTLE, M_NOWAIT);
    if (msg === 0) throw new ErrnoError(ESHUTDOWN, 'advance: no message');
    try {
      const err = await ctx.domsgAsync(cpu, msg);
      if (err !== 0) throw new ErrnoError(err, `advance: cpu${cpu}`);
      return [ctx.arg(msg, 0), new Float64Array(this.uma.arena.sab)[(msg + MSG_PAYLOAD) >> 3]];
    } finally {
      ctx.freemsg(msg);
    }
  }

  /**
   * This thread's sysctl tree for the machine's arena (sysctlFor) with the
   * kern.mp.* nodes registered. Cold; does not sleep.
   */
  sysctl(): Sysctl {
    const t = sysctlFor(this.uma);
    registerMpSysctls(t, this.uma.arena);
    return t;
  }

  /** What a user worker passes to attachMachine(). */
  info(): MachineInfo {
    return { sab: this.uma.arena.sab, record: this.record, ncpus: this.ncpus, magic: this.magic };
  }

  /** Port handle of CPU `cpu`. */
  port(cpu: number): number {
    return this.ctx.ports[cpu];
  }

  /** True until stop() begins. */
  get running(): boolean {
    return this.ctx.alive();
  }

  /** Send a request to `cpu` and await the reply: [errno, results...]. */
  call(cpu: number, cmd: number, args: ArrayLike<number> = [], nres = 0): Promise<number[]> {
    return this.ctx.callAsync(cpu, cmd, args, nres);
  }

  /**
   * Stop every CPU and free the machine's memory. Idempotent; resolves when
   * every worker has exited. Never throws because of a failed CPU: see failures.
   */
  stop(): Promise<void> {
    if (this.stopPromise === null) {
      if (this.stopReason === null) this.stopReason = { kind: 'stop' };
      this.stopPromise = this.doStop();
    }
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    const i32 = this.uma.arena.i32;
    const r = this.record >> 2;
    Atomics.store(i32, r + MC_STATE, MSTATE_STOPPING);
    for (let c = 0; c < this.ncpus; c++) portWake(i32, this.ctx.ports[c]);
    // A CPU that died never reaches the quiesce barrier: count it in for the others.
    const dead = new Set<number>();
    const countDead = (): void => {
      for (const f of this.failures) {
        if (!dead.has(f.cpu)) {
          dead.add(f.cpu);
          Atomics.add(i32, r + MC_QUIESCED, 1);
          Atomics.notify(i32, r + MC_QUIESCED);
        }
      }
    };
    countDead();
    const timer = setTimeout(() => {
      for (const w of this.workers) void w.terminate();
    }, this.stopTimeoutMs);
    const poll = setInterval(countDead, 5);
    try {
      await Promise.all(this.exited);
    } finally {
      clearTimeout(timer);
      clearInterval(poll);
    }
    // A user worker may be inside a put (it saw RUNNING just before STOPPING):
    // wait until none is, so no put reaches a port after it is freed.
    await this.userSendsDrained();
    // Every CPU is gone: what is left in a port (a dead CPU's, or a user
    // worker's last put) is answered here.
    for (let c = 0; c < this.ncpus; c++) this.answerDeadPort(this.ctx.ports[c]);
    for (let c = 0; c < this.ncpus; c++) this.freeReplies(this.ctx.ports[c]);
    // A waiter of ours whose message a dead CPU held (or a layer kept and forgot) is answered now.
    const abandoned = this.ctx.abandonInflight();
    if (abandoned > 0 && this.failures.length === 0) this.log(`slabnet: stop answered ${abandoned} request(s) a handler kept without replying`);
    this.ctx.closeReplyPort();
    this.zones.port.free(this.replyPort);
    for (let c = 0; c < this.ncpus; c++) this.zones.port.free(this.ctx.ports[c]);
    let total = 0;
    for (let c = 0; c < this.ncpus; c++) total += this.herrorsAtStop[c] = Atomics.load(i32, r + MC_HERRORS + c);
    this.herrorsAtStop[-1] = total;
    this.drained = true;
    Atomics.store(i32, r + MC_STATE, MSTATE_DRAINED);
    Atomics.store(i32, r + MC_MAGIC, 0);
    this.zones.machine.free(this.record);
    this.releaseRss();
    this.emit('stopped');
  }

  /**
   * Resolves when no user worker is inside a put (kern.mp.user_sends is 0).
   * Puts are short (a WAITOK sender re-checks the state at least every 10 ms),
   * so this polls every millisecond. Main thread; never blocks.
   */
  private async userSendsDrained(): Promise<void> {
    const i32 = this.uma.arena.i32;
    const idx = tunableIndex(this.uma.arena, USER_SENDS_TUNABLE, 0);
    for (;;) {
      const v = Atomics.load(i32, idx);
      if (v === 0) return;
      const w = Atomics.waitAsync(i32, idx, v, 1);
      if (w.async) await w.value;
    }
  }

  /** Handler error counts read just before the record was freed (handlerErrors after stop). */
  private readonly herrorsAtStop: Record<number, number> = {};
  /** The record is freed: nothing of it may be read any more. */
  private drained = false;

  /**
   * Answer requests a dead CPU left queued (sync waiters wake with
   * ESHUTDOWN; the cargo of a message nobody waits for is freed).
   */
  private answerDeadPort(port: number): void {
    const i32 = this.uma.arena.i32;
    for (;;) {
      const msg = portGet(i32, port);
      if (msg === 0) break;
      this.ctx.answerUndelivered(msg);
    }
    portSpaceWake(i32, port);
  }

  /** Free replies nobody will consume any more (with the cargo of undelivered ones). */
  private freeReplies(port: number): void {
    const i32 = this.uma.arena.i32;
    let msg = portTakeReplies(i32, port);
    while (msg !== 0) {
      const next = i32[(msg >> 2) + MSG_NEXT];
      this.ctx.freeReply(msg);
      msg = next;
    }
  }

  /** Whether stop() also owns the UMA (made by start). */
  get ownsArena(): boolean {
    return this.ownsUma;
  }
}
