/**
 * The message API of one thread (lwkt_msgport.c): allocate, send, wait for,
 * reply to and free messages. Every thread that talks to the machine has one
 * MsgContext: the main thread, each CPU worker (whose protocol thread adds a
 * port loop, see protothread.ts) and any user worker.
 *
 * Message ownership: the sender owns a message until it is queued; the
 * handler owns it until replymsg; after the reply the sender owns it again
 * (domsg, or a reply queued to its reply port) or nobody wants it (MSGF_DROP)
 * and replymsg frees it. Handlers never see the caller's memory: everything
 * they need is copied into the message first (arguments, payload).
 */
import { ArgumentError } from '../errors.js';
import { M_NOWAIT } from '../../uma/flags.js';
import type { Uma } from '../../uma/uma.js';
import type { Zone } from '../../uma/zone.js';
import { ENOBUFS, ESHUTDOWN, ErrnoError } from '../errno.js';
import { Mbufs } from '../mbuf/mbuf.js';
import {
  MC_CARGO,
  MC_CARGO_SLOTS,
  MC_MAGIC,
  MC_PORTS,
  MC_STATE,
  MSG_ARG0,
  MSG_CMD,
  MSG_COOKIE,
  MSG_ERROR,
  MSG_FLAGS,
  MSG_NARGS,
  MSG_NEXT,
  MSG_PAYLOAD,
  MSG_PAYLOAD_LEN,
  MSG_PAYLOAD_MAX,
  MSG_RCMD,
  MSG_REPLYPORT,
  MSG_SRC,
  MSG_ZONE,
  MSGF_DONE,
  MSGF_DROP,
  MSGF_QUEUED,
  MSGF_REPLY,
  MSGF_SYNC,
  MSGF_UNDELIVERED,
  MSGF_WAITING,
  MSTATE_RUNNING,
  P_RHEAD,
  P_SLEEPING,
  P_WAKE,
} from './layout.js';
import { tunableIndex } from '../sysctl/tunables.js';

/** kern.mp.spin_us default: how long a waiter spins before it sleeps. */
export const SPIN_US_DEFAULT = 20;
import { portPut, portPutReply, portPutWait, portPutWaitAsync, portTakeReplies, portWake } from './port.js';

/**
 * Arena tunable (never a sysctl node) counting user-worker sends in progress:
 * a user worker raises it around every put into a CPU port, and Machine.stop
 * waits for it to be 0 before it drains and frees the ports and the record
 * (see MsgContext.enterSend). One word per arena, shared by every machine in it.
 */
export const USER_SENDS_TUNABLE = 'kern.mp.user_sends';

/** A sleeping domsg waiter checks every this often whether its machine is gone. */
const ORPHAN_CHECK_MS = 200;

/** sendmsg flags. */
export const MSG_F_NOWAIT = 0;
export const MSG_F_WAITOK = 1;

/** What a thread needs to attach to a running machine (fits in workerData). */
export interface MachineInfo {
  sab: SharedArrayBuffer;
  /** Handle of the machine record. */
  record: number;
  ncpus: number;
  /** The record's MC_MAGIC while this machine lives. */
  magic: number;
}

/** First probe of `cmd` in the cargo table. */
function cargoSlot(cmd: number): number {
  return (Math.imul(cmd, 0x9e3779b1) >>> 23) & (MC_CARGO_SLOTS - 1);
}

export class MsgContext {
  readonly uma: Uma;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly msgZone: Zone;
  readonly record: number;
  readonly ncpus: number;
  /** Port handle of each CPU. */
  readonly ports: Int32Array;
  /** This thread's machine CPU, or -1 for the main thread and user workers. */
  readonly curcpu: number;
  /** Runs a handler in this thread for direct dispatch (set by the protocol thread). */
  direct: ((msg: number) => void) | null = null;
  /** Pumps this CPU's port while a direct-dispatched handler has not replied. */
  pump: (() => void) | null = null;

  private readonly magic: number;
  /** Arena word of kern.mp.spin_us (shared by every thread, read live). */
  readonly spinIdx: number;
  /** mbuf API of this thread, bound on the first cargo that must be freed. */
  private mbufs: Mbufs | null = null;
  /** domsgAsync messages sent and not answered yet (this thread's; see abandonInflight). */
  private readonly inflight = new Set<number>();
  /**
   * The main thread's reply port (Machine.start gives it one; 0: none, as in
   * a user worker): domsgAsync replies are queued there, and one pump with
   * one Atomics.waitAsync takes them all, instead of a waiter per message.
   */
  private replyPort = 0;
  /** Resolvers of the domsgAsync messages whose replies come to replyPort. */
  private readonly waiting = new Map<number, () => void>();
  private pumping = false;
  /** Times the reply pump waited for replies (statistics and tests). */
  replyWaits = 0;
  /**
   * Arena word of kern.mp.user_sends for a user worker (its puts race the
   * main thread's free of the ports), -1 for the main thread and the CPUs
   * (the CPUs have exited, and the main thread is the one that frees).
   */
  private readonly sendsIdx: number;
  /** Seen stopping once: never touch the record or the ports again. */
  private gone = false;

  constructor(uma: Uma, record: number, curcpu: number, magic: number, userWorker = false) {
    this.uma = uma;
    this.i32 = uma.arena.i32;
    this.u8 = uma.arena.u8;
    this.record = record;
    this.magic = magic;
    if (Atomics.load(this.i32, (record >> 2) + MC_MAGIC) !== magic) throw new ErrnoError(ESHUTDOWN, 'attach to machine');
    this.ncpus = this.i32[(record >> 2) + 1];
    this.ports = new Int32Array(this.ncpus);
    for (let c = 0; c < this.ncpus; c++) this.ports[c] = this.i32[(record >> 2) + MC_PORTS + c];
    this.msgZone = uma.zone(MSG_ZONE);
    this.curcpu = curcpu;
    this.spinIdx = tunableIndex(uma.arena, 'kern.mp.spin_us', SPIN_US_DEFAULT);
    this.sendsIdx = userWorker ? tunableIndex(uma.arena, USER_SENDS_TUNABLE, 0) : -1;
  }

  /** kern.mp.spin_us now. */
  get spinUs(): number {
    return Atomics.load(this.i32, this.spinIdx);
  }

  /** True while the machine accepts requests. */
  alive(): boolean {
    if (this.gone) return false;
    const r = this.record >> 2;
    if (Atomics.load(this.i32, r + MC_STATE) === MSTATE_RUNNING && Atomics.load(this.i32, r + MC_MAGIC) === this.magic) return true;
    this.gone = true;
    return false;
  }

  /**
   * Enter a put into a CPU port: true when the machine is running, and then
   * the ports stay allocated until leaveSend. A user worker announces the
   * put in kern.mp.user_sends before it reads the state (Dekker with stop,
   * which stores STOPPING before it reads the count), so either it sees the
   * machine stopping and touches nothing, or stop waits for it; a message
   * it put late is answered by stop's drain. Lock-free; does not sleep.
   */
  private enterSend(): boolean {
    if (this.sendsIdx < 0) return this.alive();
    if (this.gone) return false;
    Atomics.add(this.i32, this.sendsIdx, 1);
    if (this.alive()) return true;
    Atomics.sub(this.i32, this.sendsIdx, 1);
    return false;
  }

  /** End of a put begun by a successful enterSend. */
  private leaveSend(): void {
    if (this.sendsIdx >= 0) Atomics.sub(this.i32, this.sendsIdx, 1);
  }

  /**
   * Allocate a message for command `cmd` (lwkt_initmsg). Returns its handle,
   * or 0 when the message zone is exhausted (NOWAIT). Does not sleep.
   */
  allocmsg(cmd: number, flags = M_NOWAIT): number {
    const msg = this.msgZone.alloc(flags);
    if (msg === 0) return 0;
    const m = msg >> 2;
    const i32 = this.i32;
    i32[m + MSG_FLAGS] = 0;
    i32[m + MSG_CMD] = cmd;
    i32[m + MSG_ERROR] = 0;
    i32[m + MSG_REPLYPORT] = 0;
    i32[m + MSG_SRC] = this.curcpu;
    i32[m + MSG_COOKIE] = 0;
    i32[m + MSG_PAYLOAD_LEN] = 0;
    return msg;
  }

  /** Give a message back to its zone. The caller must own it. */
  freemsg(msg: number): void {
    this.msgZone.free(msg);
  }

  arg(msg: number, i: number): number {
    return this.i32[(msg >> 2) + MSG_ARG0 + i];
  }
  setArg(msg: number, i: number, v: number): void {
    this.i32[(msg >> 2) + MSG_ARG0 + i] = v;
  }
  cmd(msg: number): number {
    return this.i32[(msg >> 2) + MSG_CMD];
  }
  error(msg: number): number {
    return this.i32[(msg >> 2) + MSG_ERROR];
  }
  cookie(msg: number): number {
    return this.i32[(msg >> 2) + MSG_COOKIE];
  }
  setCookie(msg: number, v: number): void {
    this.i32[(msg >> 2) + MSG_COOKIE] = v;
  }

  /** Copy bytes into the payload (early copy-in). EMSGSIZE-like ArgumentError if too long. */
  setPayload(msg: number, bytes: Uint8Array): void {
    if (bytes.length > MSG_PAYLOAD_MAX) throw new ArgumentError(`message payload of ${bytes.length} bytes exceeds ${MSG_PAYLOAD_MAX}`);
    this.u8.set(bytes, msg + MSG_PAYLOAD);
    this.i32[(msg >> 2) + MSG_PAYLOAD_LEN] = bytes.length;
  }
  payloadLength(msg: number): number {
    return this.i32[(msg >> 2) + MSG_PAYLOAD_LEN];
  }
  setPayloadLength(msg: number, n: number): void {
    if (n < 0 || n > MSG_PAYLOAD_MAX) throw new ArgumentError(`payload length ${n} out of range`);
    this.i32[(msg >> 2) + MSG_PAYLOAD_LEN] = n;
  }
  /** Byte offset of the payload (handlers read and write it in place). */
  payload(msg: number): number {
    return msg + MSG_PAYLOAD;
  }
  /** A copy of the payload (late copy-out). */
  copyPayload(msg: number): Uint8Array {
    const n = this.payloadLength(msg);
    return this.u8.slice(msg + MSG_PAYLOAD, msg + MSG_PAYLOAD + n);
  }

  // ------------------------------------------------------------ cargo

  /**
   * Declare what messages of `cmd` carry: bit i of `mask` says argument i
   * holds an mbuf chain the message owns until its handler takes it. Kept in
   * the machine record (MC_CARGO), so any thread that drops such a message
   * undelivered (a CPU's drain at stop, the main thread draining a dead CPU's
   * port) frees the chain. Every CPU registering the same command must give
   * the same mask. Lock-free (CAS); does not sleep. ArgumentError when the
   * table is full or the masks disagree.
   */
  registerCargo(cmd: number, mask: number): void {
    if (!Number.isInteger(mask) || mask < 0 || mask >= 1 << MSG_NARGS) throw new ArgumentError(`cargo mask must be a ${MSG_NARGS}-bit argument mask, got ${mask}`);
    if (mask === 0) return;
    const i32 = this.i32;
    const base = (this.record >> 2) + MC_CARGO;
    const entry = ((cmd << 16) | mask) | 0;
    for (let k = 0, slot = cargoSlot(cmd); k < MC_CARGO_SLOTS; k++, slot = (slot + 1) & (MC_CARGO_SLOTS - 1)) {
      const seen = Atomics.compareExchange(i32, base + slot, 0, entry);
      if (seen === 0 || seen === entry) return;
      if (seen >>> 16 === cmd) throw new ArgumentError(`command ${cmd} registered with cargo mask ${seen & 0xffff} elsewhere, not ${mask}`);
    }
    throw new ArgumentError(`cargo table full (${MC_CARGO_SLOTS} commands)`);
  }

  /** The cargo mask of `cmd` (0: carries nothing to free). Any thread; no lock. */
  cargoMask(cmd: number): number {
    const i32 = this.i32;
    const base = (this.record >> 2) + MC_CARGO;
    for (let k = 0, slot = cargoSlot(cmd); k < MC_CARGO_SLOTS; k++, slot = (slot + 1) & (MC_CARGO_SLOTS - 1)) {
      const e = Atomics.load(i32, base + slot);
      if (e === 0) return 0;
      if (e >>> 16 === cmd) return e & 0xffff;
    }
    return 0;
  }

  /**
   * Free what an undelivered message carries (its cargo mask's mbuf chains)
   * and zero those arguments, so nothing is freed twice. The caller owns the
   * message. Does not sleep.
   */
  disposeCargo(msg: number): void {
    const mask = this.cargoMask(this.i32[(msg >> 2) + MSG_CMD]);
    if (mask === 0) return;
    const a = (msg >> 2) + MSG_ARG0;
    for (let i = 0; i < MSG_NARGS; i++) {
      if ((mask & (1 << i)) === 0) continue;
      const m = this.i32[a + i];
      if (m === 0) continue;
      this.i32[a + i] = 0;
      (this.mbufs ??= Mbufs.attach(this.uma)).m_freem(m);
    }
  }

  /**
   * Drop a message that was never delivered (sendmsg refused it: full port,
   * stopping machine): its cargo is freed, then the message. The caller owns
   * it. Does not sleep.
   */
  dropmsg(msg: number): void {
    this.disposeCargo(msg);
    this.msgZone.free(msg);
  }

  /**
   * Answer a queued request whose handler will never run (port drains at
   * stop, a dead CPU's port): ESHUTDOWN with MSGF_UNDELIVERED. A message
   * nobody waits for (MSGF_DROP) has its cargo freed first; a synchronous
   * waiter or a reply handler gets the cargo back with the reply. Any
   * thread that owns the port's consumer side; never sleeps.
   */
  answerUndelivered(msg: number): void {
    const m = msg >> 2;
    // Atomic: a domsg waiter may be setting MSGF_WAITING.
    const f = Atomics.or(this.i32, m + MSG_FLAGS, MSGF_UNDELIVERED) | MSGF_UNDELIVERED;
    Atomics.and(this.i32, m + MSG_FLAGS, ~MSGF_QUEUED);
    if ((f & MSGF_DROP) !== 0) this.disposeCargo(msg);
    this.replymsg(msg, ESHUTDOWN);
  }

  /**
   * Free a reply nobody will consume (a stopped CPU's reply list): an
   * undelivered request's cargo is freed with it. Does not sleep.
   */
  freeReply(msg: number): void {
    if ((this.i32[(msg >> 2) + MSG_FLAGS] & MSGF_UNDELIVERED) !== 0) this.disposeCargo(msg);
    this.msgZone.free(msg);
  }

  private checkCpu(cpu: number): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.ncpus) throw new ArgumentError(`no CPU ${cpu} (machine has ${this.ncpus})`);
    return this.ports[cpu];
  }

  /**
   * lwkt_sendmsg: queue `msg` to CPU `cpu`. With `replyPort` the reply is
   * queued there (a CPU port) and that CPU runs the reply handler of
   * `replyCmd` (default: the message's command) on it; without a reply port
   * the message is dropped at reply.
   * NOWAIT returns false when the port is full (the message stays the
   * caller's); WAITOK sleeps for room (workers only). Returns false too when
   * the machine is stopping.
   */
  sendmsg(cpu: number, msg: number, flags = MSG_F_NOWAIT, replyPort = 0, replyCmd = 0): boolean {
    const port = this.checkCpu(cpu);
    const m = msg >> 2;
    this.i32[m + MSG_RCMD] = replyCmd === 0 ? this.i32[m + MSG_CMD] : replyCmd;
    this.i32[m + MSG_FLAGS] = (replyPort === 0 ? MSGF_DROP : 0) | MSGF_QUEUED;
    this.i32[m + MSG_REPLYPORT] = replyPort;
    if (!this.enterSend()) return this.unqueued(msg);
    try {
      if (portPut(this.i32, port, msg)) return true;
      if (flags !== MSG_F_WAITOK) return this.unqueued(msg);
      return portPutWait(this.i32, port, msg, () => this.alive()) || this.unqueued(msg);
    } finally {
      this.leaveSend();
    }
  }

  private unqueued(msg: number): false {
    this.i32[(msg >> 2) + MSG_FLAGS] = 0;
    return false;
  }

  /**
   * lwkt_domsg for workers: send and sleep until the reply; returns its errno.
   * On the target CPU itself the handler runs directly (no queueing, the
   * seed's maybe_preempt). Blocks the thread (Atomics.wait): never call it
   * from the main thread (use domsgAsync). The message stays the caller's.
   */
  domsg(cpu: number, msg: number): number {
    const port = this.checkCpu(cpu);
    const m = msg >> 2;
    const i32 = this.i32;
    i32[m + MSG_REPLYPORT] = 0;
    if (cpu === this.curcpu && this.direct !== null) {
      i32[m + MSG_FLAGS] = MSGF_SYNC;
      this.direct(msg);
      while ((Atomics.load(i32, m + MSG_FLAGS) & MSGF_DONE) === 0) this.pump!();
      return i32[m + MSG_ERROR];
    }
    i32[m + MSG_FLAGS] = MSGF_SYNC | MSGF_QUEUED;
    if (!this.enterSend()) {
      i32[m + MSG_FLAGS] = 0;
      return ESHUTDOWN;
    }
    let queued: boolean;
    try {
      queued = portPut(i32, port, msg) || portPutWait(i32, port, msg, () => this.alive());
    } finally {
      this.leaveSend();
    }
    if (!queued) {
      i32[m + MSG_FLAGS] = 0;
      return ESHUTDOWN;
    }
    if (!this.spinForReply(m)) this.sleepForReply(m);
    return i32[m + MSG_ERROR];
  }

  /**
   * Spin up to kern.mp.spin_us for MSGF_DONE (a reply usually comes back
   * faster than a futex wake-up would). True if it came. No sleep, no
   * allocation.
   */
  private spinForReply(m: number): boolean {
    const i32 = this.i32;
    if ((Atomics.load(i32, m + MSG_FLAGS) & MSGF_DONE) !== 0) return true;
    const us = Atomics.load(i32, this.spinIdx);
    if (us <= 0) return false;
    const until = performance.now() + us / 1000;
    do {
      for (let k = 0; k < 16; k++) if ((Atomics.load(i32, m + MSG_FLAGS) & MSGF_DONE) !== 0) return true;
    } while (performance.now() < until);
    return false;
  }

  /**
   * Sleep on the flags word until MSGF_DONE: announce the sleep with
   * MSGF_WAITING (a CAS, so a reply racing with it is never missed: the
   * CAS fails and the loop sees DONE). Blocks the thread.
   */
  private sleepForReply(m: number): void {
    const i32 = this.i32;
    for (;;) {
      const f = Atomics.load(i32, m + MSG_FLAGS);
      if ((f & MSGF_DONE) !== 0) return;
      if ((f & MSGF_WAITING) === 0 && Atomics.compareExchange(i32, m + MSG_FLAGS, f, f | MSGF_WAITING) !== f) continue;
      if (Atomics.wait(i32, m + MSG_FLAGS, f | MSGF_WAITING, ORPHAN_CHECK_MS) === 'timed-out' && this.orphaned(m)) return;
    }
  }

  /**
   * A synchronous waiter's check while it sleeps: the machine is gone (its
   * record freed after stop) and nobody answered, because the CPU died
   * holding the message. Answer it ESHUTDOWN here so the waiter returns.
   */
  private orphaned(m: number): boolean {
    if (Atomics.load(this.i32, (this.record >> 2) + MC_MAGIC) === this.magic) return false;
    this.i32[m + MSG_ERROR] = ESHUTDOWN;
    Atomics.or(this.i32, m + MSG_FLAGS, MSGF_DONE);
    return true;
  }

  /**
   * lwkt_domsg for the main thread: sends (waiting for room asynchronously)
   * and awaits the reply, never blocking the event loop. With a reply port
   * the reply is queued there and the pump resolves it; otherwise (a user
   * worker) the message is synchronous and awaited with its own waitAsync.
   */
  async domsgAsync(cpu: number, msg: number): Promise<number> {
    const port = this.checkCpu(cpu);
    if (this.replyPort === 0) return this.domsgAsyncWaiter(port, msg);
    const m = msg >> 2;
    const i32 = this.i32;
    // No MSG_RCMD: only a CPU's loop runs reply handlers; this port's replies go to the pump.
    i32[m + MSG_REPLYPORT] = this.replyPort;
    i32[m + MSG_FLAGS] = MSGF_QUEUED;
    // The resolver goes in before the put: a put that waited for room
    // resumes a turn later, and the pump may have taken the reply by then.
    const replied = new Promise<void>((resolve) => this.waiting.set(msg, resolve));
    if (!this.alive() || !(portPut(i32, port, msg) || (await portPutWaitAsync(i32, port, msg, () => this.alive())))) {
      this.waiting.delete(msg);
      i32[m + MSG_FLAGS] = 0;
      return ESHUTDOWN;
    }
    this.inflight.add(msg);
    if (!this.pumping) void this.pumpReplies();
    await replied;
    this.inflight.delete(msg);
    return i32[m + MSG_ERROR];
  }

  /**
   * Main thread: queue domsgAsync replies to `port` (a port of the
   * machine's port zone, owned by this thread for its reply list only).
   * Called once by Machine.start, before any request.
   */
  useReplyPort(port: number): void {
    this.replyPort = port;
  }

  /**
   * The reply pump: while any domsgAsync waits, take the reply list whole
   * and resolve each; when it is empty, announce the sleep (P_SLEEPING, the
   * port protocol's Dekker) and wait on P_WAKE, which the first reply after
   * it wakes. One wait however many requests are in flight. Never blocks.
   */
  private async pumpReplies(): Promise<void> {
    this.pumping = true;
    const i32 = this.i32;
    try {
      while (this.waiting.size > 0 && this.replyPort !== 0) {
        if (this.takeReplies() > 0) continue;
        const p = this.replyPort >> 2;
        const w = Atomics.load(i32, p + P_WAKE);
        Atomics.store(i32, p + P_SLEEPING, 1);
        if (Atomics.load(i32, p + P_RHEAD) === 0) {
          this.replyWaits++;
          const r = Atomics.waitAsync(i32, p + P_WAKE, w);
          if (r.async) await r.value;
          // Closed while waiting (Machine.stop): the port may be freed already.
          if (this.replyPort === 0) return;
        }
        Atomics.store(i32, p + P_SLEEPING, 0);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Resolve every reply queued to the reply port; how many. Main thread; never sleeps. */
  private takeReplies(): number {
    const i32 = this.i32;
    let msg = portTakeReplies(i32, this.replyPort);
    let n = 0;
    while (msg !== 0) {
      const next = i32[(msg >> 2) + MSG_NEXT];
      const resolve = this.waiting.get(msg);
      if (resolve !== undefined) {
        this.waiting.delete(msg);
        resolve();
        n++;
      }
      msg = next;
    }
    return n;
  }

  /**
   * Machine.stop, after every CPU exited and abandonInflight: resolve what
   * the reply port holds and stop using it (the pump returns without
   * touching it again), so the caller may free it. Never sleeps.
   */
  closeReplyPort(): void {
    if (this.replyPort === 0) return;
    this.takeReplies();
    const port = this.replyPort;
    this.replyPort = 0;
    portWake(this.i32, port);
  }

  /** domsgAsync without a reply port: a synchronous message awaited with its own Atomics.waitAsync. */
  private async domsgAsyncWaiter(port: number, msg: number): Promise<number> {
    const m = msg >> 2;
    const i32 = this.i32;
    i32[m + MSG_REPLYPORT] = 0;
    i32[m + MSG_FLAGS] = MSGF_SYNC | MSGF_QUEUED;
    if (!this.alive() || !(portPut(i32, port, msg) || (await portPutWaitAsync(i32, port, msg, () => this.alive())))) {
      i32[m + MSG_FLAGS] = 0;
      return ESHUTDOWN;
    }
    this.inflight.add(msg);
    try {
      for (;;) {
        const f = Atomics.load(i32, m + MSG_FLAGS);
        if ((f & MSGF_DONE) !== 0) break;
        if ((f & MSGF_WAITING) === 0 && Atomics.compareExchange(i32, m + MSG_FLAGS, f, f | MSGF_WAITING) !== f) continue;
        const r = Atomics.waitAsync(i32, m + MSG_FLAGS, f | MSGF_WAITING);
        if (r.async) await r.value;
      }
    } finally {
      this.inflight.delete(msg);
    }
    return i32[m + MSG_ERROR];
  }

  /**
   * After every CPU has exited (Machine.stop): answer ESHUTDOWN to this
   * thread's domsgAsync messages nobody answered: the ones a CPU held when
   * it died, or a handler kept and its layer forgot at shutdown. No waiter
   * of the main thread hangs on a stopped machine. Never sleeps.
   */
  abandonInflight(): number {
    let n = 0;
    for (const msg of this.inflight) {
      if ((Atomics.load(this.i32, (msg >> 2) + MSG_FLAGS) & MSGF_DONE) !== 0) continue;
      this.replymsg(msg, ESHUTDOWN);
      n++;
    }
    return n;
  }

  /**
   * lwkt_replymsg: the handler's answer. Writes the errno, then either wakes
   * the synchronous waiter, queues the message to its reply port, or frees it
   * (MSGF_DROP). Any thread; never sleeps; never fails.
   */
  replymsg(msg: number, error: number): void {
    const m = msg >> 2;
    const i32 = this.i32;
    i32[m + MSG_ERROR] = error;
    const f = i32[m + MSG_FLAGS];
    if ((f & MSGF_SYNC) !== 0) {
      // Exchange, not store: the waiter may set MSGF_WAITING meanwhile, and
      // the old value says whether it sleeps (notify only then).
      const old = Atomics.exchange(i32, m + MSG_FLAGS, (f & ~(MSGF_QUEUED | MSGF_WAITING)) | MSGF_DONE);
      if ((old & MSGF_WAITING) !== 0) Atomics.notify(i32, m + MSG_FLAGS);
    } else if ((f & MSGF_DROP) !== 0) {
      this.msgZone.free(msg);
    } else {
      i32[m + MSG_FLAGS] = (f & ~MSGF_QUEUED) | MSGF_DONE | MSGF_REPLY;
      portPutReply(i32, i32[m + MSG_REPLYPORT], msg);
    }
  }

  /**
   * Convenience for user code: allocate, fill the arguments, domsg, and
   * return [errno, results...] after freeing the message. Workers only.
   */
  call(cpu: number, cmd: number, args: ArrayLike<number> = [], nres = 0): number[] {
    const msg = this.allocOrThrow(cmd, args);
    try {
      const err = this.domsg(cpu, msg);
      return this.results(msg, err, nres);
    } finally {
      this.freemsg(msg);
    }
  }

  /** The same for the main thread (async). */
  async callAsync(cpu: number, cmd: number, args: ArrayLike<number> = [], nres = 0): Promise<number[]> {
    const msg = this.allocOrThrow(cmd, args);
    try {
      const err = await this.domsgAsync(cpu, msg);
      return this.results(msg, err, nres);
    } finally {
      this.freemsg(msg);
    }
  }

  private allocOrThrow(cmd: number, args: ArrayLike<number>): number {
    if (args.length > MSG_NARGS) throw new ArgumentError(`at most ${MSG_NARGS} message arguments`);
    const msg = this.allocmsg(cmd);
    if (msg === 0) throw new ErrnoError(ENOBUFS, 'allocmsg');
    for (let i = 0; i < args.length; i++) this.i32[(msg >> 2) + MSG_ARG0 + i] = args[i];
    return msg;
  }

  private results(msg: number, err: number, nres: number): number[] {
    const out = [err];
    for (let i = 0; i < nres; i++) out.push(this.i32[(msg >> 2) + MSG_ARG0 + i]);
    return out;
  }
}
