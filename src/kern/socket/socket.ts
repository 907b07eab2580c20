/**
 * The user side of sockets: a Socket object lives with its user (the main
 * thread or any worker); its PCB lives on one CPU and every request is a
 * message to that CPU (DragonFly's so_pru_* as netmsgs). Calls are async
 * (domsg with Atomics.waitAsync), so the main thread's event loop never
 * blocks; workers may use them too. Workers also have blocking forms (the
 * *Sync methods: domsg and sbwaitRead with Atomics.wait), as a BSD process
 * blocks in the system call; the main thread may not use those.
 *
 * The user is the consumer of its receive sockbuf and reads it directly,
 * with no message: the CPU produces, the user consumes, no lock.
 */
import { isMainThread } from 'node:worker_threads';
import { ArgumentError } from '../errors.js';
import { EAGAIN, EINVAL, ENOBUFS, ErrnoError, ESHUTDOWN, check } from '../errno.js';
import { MSG_PAYLOAD_MAX } from '../lwkt/layout.js';
import type { MsgContext } from '../lwkt/msgport.js';
import type { Mbufs } from '../mbuf/mbuf.js';
import { m_copydata } from '../mbuf/ops.js';
import { SO_ACCQ, SO_CPU, SO_PCB, SO_PROTO, SO_RCV, SO_RSEQ, SO_RWAIT, SS_CANTSENDMORE } from './layout.js';
import { A_PCB, PRU_ATTACH, PRU_CONNECT2, PRU_CTLOUTPUT, PRU_DETACH, PRU_LISTEN, PRU_SEND, PRU_SHUTDOWN, SOCK_DGRAM, SOPT_GET, SOPT_SET } from './protosw.js';
import { SBS_CANTRCVMORE, SockBufs } from './sockbuf.js';
import { SocketRecords } from './socketvar.js';
import { AcceptQueues } from './soqueue.js';
import { SO_ACCEPTCONN } from './sockopt.js';

/** Default receive buffer (net.local.dgram.recvspace-like). */
export const RECVSPACE_DEFAULT = 64 * 1024;

/** The socket API of one user thread. */
export class SocketLayer {
  readonly ctx: MsgContext;
  readonly mb: Mbufs;
  readonly sbs: SockBufs;
  /** The socket records (layout.ts) this thread makes and frees. */
  readonly sor: SocketRecords;
  private accqs: AcceptQueues | null = null;
  private nextCpu = 0;
  /** Open sockets of this thread (closed by closeAll before a machine stops). */
  readonly open = new Set<Socket>();

  constructor(ctx: MsgContext, mb: Mbufs) {
    this.ctx = ctx;
    this.mb = mb;
    this.sbs = new SockBufs(mb);
    this.sor = new SocketRecords(this.sbs);
  }

  /** Accept queues of this thread's listeners (made at the first listen: they bind the malloc zones). */
  get accq(): AcceptQueues {
    if (this.accqs === null) this.accqs = new AcceptQueues(this.ctx.uma);
    return this.accqs;
  }

  /** Send a request and await its reply; returns [errno, results...]. The message is freed. */
  async request(cpu: number, cmd: number, args: number[], payload?: Uint8Array, nres = 0): Promise<{ err: number; res: number[]; out: Uint8Array | null }> {
    const ctx = this.ctx;
    const msg = ctx.allocmsg(cmd);
    if (msg === 0) return { err: ENOBUFS, res: [], out: null };
    try {
      for (let i = 0; i < args.length; i++) ctx.setArg(msg, i, args[i]);
      if (payload !== undefined) ctx.setPayload(msg, payload);
      const err = await ctx.domsgAsync(cpu, msg);
      const res: number[] = [];
      for (let i = 0; i < nres; i++) res.push(ctx.arg(msg, i));
      return { err, res, out: payload !== undefined && err === 0 ? ctx.copyPayload(msg) : null };
    } finally {
      ctx.freemsg(msg);
    }
  }

  /**
   * The blocking form of request() for workers: domsg sleeps in
   * Atomics.wait (after spinning kern.mp.spin_us). Throws ArgumentError in
   * the main thread, whose event loop must never block.
   */
  requestSync(cpu: number, cmd: number, args: number[], payload?: Uint8Array, nres = 0): { err: number; res: number[]; out: Uint8Array | null } {
    assertWorker(cmd);
    const ctx = this.ctx;
    const msg = ctx.allocmsg(cmd);
    if (msg === 0) return { err: ENOBUFS, res: [], out: null };
    try {
      for (let i = 0; i < args.length; i++) ctx.setArg(msg, i, args[i]);
      if (payload !== undefined) ctx.setPayload(msg, payload);
      const err = ctx.domsg(cpu, msg);
      const res: number[] = [];
      for (let i = 0; i < nres; i++) res.push(ctx.arg(msg, i));
      return { err, res, out: payload !== undefined && err === 0 ? ctx.copyPayload(msg) : null };
    } finally {
      ctx.freemsg(msg);
    }
  }

  /** A socket record (one receive ring on `cpu`), not yet attached. */
  private allocSocket(proto: number, cpu: number, type = SOCK_DGRAM): number {
    return this.sor.soalloc({ type, proto, cpu, rcvspace: RECVSPACE_DEFAULT });
  }

  private freeSocket(so: number): void {
    this.sor.sofree(so);
  }

  /**
   * Wrap a record a CPU made for an accepted connection (sonewconn) as a
   * Socket of this thread. The record is ours to close from now on.
   */
  adopt(so: number): Socket {
    if (!this.sor.valid(so)) throw new ArgumentError(`adopt: 0x${so.toString(16)} is not a socket record`);
    const s = new Socket(this, so);
    this.open.add(s);
    return s;
  }

  /**
   * The end of socket() and socketSync(), once pru_attach has replied: on
   * failure free the record and throw; else record the PCB and open the
   * Socket. No lock, no sleep.
   */
  private attached(so: number, r: { err: number; res: number[] }): Socket {
    if (r.err !== 0) {
      this.freeSocket(so);
      throw new ErrnoError(r.err, 'socket');
    }
    this.ctx.i32[(so >> 2) + SO_PCB] = r.res[A_PCB];
    const s = new Socket(this, so);
    this.open.add(s);
    return s;
  }

  /** socket(2) + pru_attach on a CPU chosen round robin (or `cpu`). */
  async socket(proto: number, cpu = this.nextCpu++ % this.ctx.ncpus): Promise<Socket> {
    const so = this.allocSocket(proto, cpu);
    const r = await this.request(cpu, PRU_ATTACH, [proto, 0, so], undefined, 2);
    return this.attached(so, r);
  }

  /** socket(2) for workers: blocks until the owning CPU has attached the PCB. */
  socketSync(proto: number, cpu = this.nextCpu++ % this.ctx.ncpus): Socket {
    assertWorker('socket');
    const so = this.allocSocket(proto, cpu);
    const r = this.requestSync(cpu, PRU_ATTACH, [proto, 0, so], undefined, 2);
    return this.attached(so, r);
  }

  /** socketpair(2) for workers (blocking). */
  socketpairSync(proto: number): [Socket, Socket] {
    const cpu = this.nextCpu++ % this.ctx.ncpus;
    const a = this.socketSync(proto, cpu);
    const b = this.socketSync(proto, cpu);
    const r = this.requestSync(cpu, PRU_CONNECT2, [proto, a.pcb, a.so, b.pcb]);
    if (r.err !== 0) {
      a.closeSync();
      b.closeSync();
      throw new ErrnoError(r.err, 'socketpair');
    }
    return [a, b];
  }

  /** closeAll for workers (blocking). */
  closeAllSync(): void {
    for (const s of [...this.open]) s.closeSync();
  }

  /** socketpair(2): two connected sockets whose PCBs share one CPU. */
  async socketpair(proto: number): Promise<[Socket, Socket]> {
    const cpu = this.nextCpu++ % this.ctx.ncpus;
    const a = await this.socket(proto, cpu);
    const b = await this.socket(proto, cpu);
    const r = await this.request(cpu, PRU_CONNECT2, [proto, a.pcb, a.so, b.pcb]);
    if (r.err !== 0) {
      await a.close();
      await b.close();
      throw new ErrnoError(r.err, 'socketpair');
    }
    return [a, b];
  }

  /** Close every socket this thread still has open. */
  async closeAll(): Promise<void> {
    for (const s of [...this.open]) await s.close();
  }

  /** @internal */
  release(s: Socket): void {
    this.open.delete(s);
    this.freeSocket(s.so);
  }

  /**
   * A listener is closing: every connection still in its accept queue is
   * detached on its CPU and freed (soabort of the queued sockets).
   */
  async abortQueued(q: number): Promise<void> {
    const queued: number[] = [];
    this.accq.destroy(q, (so) => queued.push(so));
    for (const so of queued) {
      await this.request(this.sor.cpu(so), PRU_DETACH, [this.ctx.i32[(so >> 2) + SO_PROTO], this.sor.pcb(so), so]);
      this.sor.sofree(so);
    }
  }
}

/** A received datagram. */
export interface Datagram {
  from: Uint8Array | null;
  data: Uint8Array;
}

export class Socket {
  readonly layer: SocketLayer;
  readonly so: number;
  private closed = false;

  constructor(layer: SocketLayer, so: number) {
    this.layer = layer;
    this.so = so;
  }

  get cpu(): number {
    return this.layer.ctx.i32[(this.so >> 2) + SO_CPU];
  }
  get pcb(): number {
    return this.layer.ctx.i32[(this.so >> 2) + SO_PCB];
  }
  get proto(): number {
    return this.layer.ctx.i32[(this.so >> 2) + SO_PROTO];
  }
  get rcv(): number {
    return this.layer.ctx.i32[(this.so >> 2) + SO_RCV];
  }

  private live(what: string): void {
    if (this.closed) throw new ErrnoError(EINVAL, what, { info: "socket is closed" });
  }

  /**
   * listen(2): make the accept queue (backlog capped by
   * kern.ipc.soacceptqueue), set SO_ACCEPTCONN, and ask the protocol
   * (pru_listen, A_X the backlog). A second listen changes the backlog.
   * A protocol without listen (datagram ones) answers EOPNOTSUPP; the
   * queue is freed again.
   */
  async listen(backlog = -1): Promise<void> {
    this.live('listen');
    const { sor, accq } = this.layer;
    const i32 = this.layer.ctx.i32;
    const w = this.so >> 2;
    let q = i32[w + SO_ACCQ];
    const fresh = q === 0;
    if (fresh) {
      q = accq.create(backlog);
      if (q === 0) throw new ErrnoError(ENOBUFS, 'listen');
      i32[w + SO_ACCQ] = q;
    } else accq.setBacklog(q, backlog);
    const r = await this.layer.request(this.cpu, PRU_LISTEN, [this.proto, this.pcb, this.so, accq.qlimit(q)]);
    if (r.err !== 0) {
      if (fresh) {
        i32[w + SO_ACCQ] = 0;
        accq.destroy(q, () => {});
      }
      throw new ErrnoError(r.err, 'listen');
    }
    sor.soSetOptions(this.so, SO_ACCEPTCONN, true);
  }

  /** The accept queue of a listener (0 when not listening). */
  get acceptQueue(): number {
    return this.layer.ctx.i32[(this.so >> 2) + SO_ACCQ];
  }

  /**
   * accept(2) without sleeping: the oldest completed connection as a
   * Socket of this thread, or null when none is queued. EINVAL when the
   * socket is not listening.
   */
  tryAccept(): Socket | null {
    this.live('accept');
    const q = this.acceptQueue;
    if (q === 0) throw new ErrnoError(EINVAL, 'accept', { info: 'socket is not listening' });
    const so = this.layer.accq.take(q);
    return so === 0 ? null : this.layer.adopt(so);
  }

  /**
   * accept(2): waits (asynchronously, on the record's wake word, which the
   * listener's CPU bumps after queueing: sorwakeup) for a connection.
   */
  async accept(): Promise<Socket> {
    const i32 = this.layer.ctx.i32;
    const w = this.so >> 2;
    for (;;) {
      const s = this.tryAccept();
      if (s !== null) return s;
      const seq = Atomics.load(i32, w + SO_RSEQ);
      Atomics.store(i32, w + SO_RWAIT, 1);
      if (this.layer.accq.qlen(this.acceptQueue) === 0) {
        const r = Atomics.waitAsync(i32, w + SO_RSEQ, seq, 100);
        if (r.async) await r.value;
      }
      Atomics.store(i32, w + SO_RWAIT, 0);
    }
  }

  /** pru_send: the data is copied into a chain that travels with the message. */
  async send(data: Uint8Array): Promise<void> {
    this.live('send');
    const m = this.layer.sbs.mchain(data);
    if (m === 0) throw new ErrnoError(ENOBUFS, 'send');
    const r = await this.layer.request(this.cpu, PRU_SEND, [this.proto, this.pcb, this.so, m]);
    // ESHUTDOWN means no handler ran: the chain is still ours.
    if (r.err === ESHUTDOWN) this.layer.mb.m_freem(m);
    check(r.err, 'send');
  }

  /**
   * The part of soreceive that does not sleep, shared by recv and recvSync:
   * the next queued datagram copied out of the arena (its chain freed),
   * null at end of file (shut down and drained), undefined when nothing is
   * queued yet. No lock of ours; never sleeps.
   */
  private takeDatagram(sbs: SockBufs, rcv: number): Datagram | null | undefined {
    const rec = sbs.sbrecvrecord(rcv);
    if (rec !== null) {
      const data = new Uint8Array(rec.len);
      m_copydata(this.layer.mb, rec.m, 0, rec.len, data);
      this.layer.mb.m_freem(rec.m);
      return { from: rec.addr, data };
    }
    if ((sbs.state(rcv) & SBS_CANTRCVMORE) !== 0 && sbs.sbavail(rcv) === 0) return null;
    return undefined;
  }

  /**
   * Receive one datagram (soreceive): waits (asynchronously) until one is
   * queued; null at end of file (the peer shut down or closed).
   */
  async recv(): Promise<Datagram | null> {
    this.live('recv');
    const sbs = this.layer.sbs;
    const rcv = this.rcv;
    for (;;) {
      const d = this.takeDatagram(sbs, rcv);
      if (d !== undefined) return d;
      await sbs.sbwaitReadAsync(rcv, 100);
    }
  }

  /**
   * recv for workers: blocks (sbwaitRead: Atomics.wait, woken by the
   * producer only because this side announced its sleep) until a datagram
   * is queued; null at end of file; ErrnoError EAGAIN after `timeoutMs`
   * without one (as SO_RCVTIMEO). Main thread: ArgumentError.
   */
  recvSync(timeoutMs = Infinity): Datagram | null {
    this.live('recv');
    assertWorker('recv');
    const sbs = this.layer.sbs;
    const rcv = this.rcv;
    const until = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    for (;;) {
      const d = this.takeDatagram(sbs, rcv);
      if (d !== undefined) return d;
      const left = until - performance.now();
      if (left <= 0) throw new ErrnoError(EAGAIN, 'recv');
      // Bounded sleeps: a machine that stops without marking EOF still lets us see it.
      sbs.sbwaitRead(rcv, Math.min(left, 100));
    }
  }

  /** send for workers: blocks until the owning CPU has queued (or refused) the datagram. */
  sendSync(data: Uint8Array): void {
    this.live('send');
    const m = this.layer.sbs.mchain(data);
    if (m === 0) throw new ErrnoError(ENOBUFS, 'send');
    let r: { err: number };
    try {
      r = this.layer.requestSync(this.cpu, PRU_SEND, [this.proto, this.pcb, this.so, m]);
    } catch (e) {
      this.layer.mb.m_freem(m); // not sent (main thread): still ours
      throw e;
    }
    if (r.err === ESHUTDOWN) this.layer.mb.m_freem(m);
    check(r.err, 'send');
  }

  /** setsockopt for workers (blocking; same copy-in as setsockopt). */
  setsockoptSync(level: number, name: number, value: Uint8Array): void {
    this.live('setsockopt');
    if (value.length > MSG_PAYLOAD_MAX) throw new ErrnoError(EINVAL, 'setsockopt');
    const r = this.layer.requestSync(this.cpu, PRU_CTLOUTPUT, [this.proto, this.pcb, this.so, SOPT_SET, level, name], value);
    check(r.err, 'setsockopt');
  }

  /** getsockopt for workers (blocking; same late copy-out as getsockopt). */
  getsockoptSync(level: number, name: number, size: number): Uint8Array {
    this.live('getsockopt');
    if (!Number.isInteger(size) || size < 0 || size > MSG_PAYLOAD_MAX) throw new ErrnoError(EINVAL, 'getsockopt');
    const r = this.layer.requestSync(this.cpu, PRU_CTLOUTPUT, [this.proto, this.pcb, this.so, SOPT_GET, level, name], new Uint8Array(size));
    check(r.err, 'getsockopt');
    return r.out!;
  }

  /** Int helpers over the blocking set/getsockopt (4 bytes, host order as the arena). Workers only. */
  setsockoptIntSync(level: number, name: number, v: number): void {
    this.setsockoptSync(level, name, new Uint8Array(Int32Array.of(v).buffer));
  }
  getsockoptIntSync(level: number, name: number): number {
    const b = this.getsockoptSync(level, name, 4);
    return new Int32Array(b.buffer, b.byteOffset, 1)[0];
  }

  /** shutdown for workers (blocking). */
  shutdownSync(): void {
    this.live('shutdown');
    const r = this.layer.requestSync(this.cpu, PRU_SHUTDOWN, [this.proto, this.pcb, this.so]);
    check(r.err, 'shutdown');
  }

  /** close for workers (blocking); same order as close(): detach first, then free. Idempotent. */
  closeSync(): void {
    if (this.closed) return;
    assertWorker('close');
    this.closed = true;
    const r = this.layer.requestSync(this.cpu, PRU_DETACH, [this.proto, this.pcb, this.so]);
    this.layer.release(this);
    if (r.err !== 0 && r.err !== ESHUTDOWN) throw new ErrnoError(r.err, 'close');
  }

  /**
   * setsockopt(2): the value is copied into the message now (early
   * copy-in); the handler never sees `value` itself. Wrong size: EINVAL.
   */
  async setsockopt(level: number, name: number, value: Uint8Array): Promise<void> {
    this.live('setsockopt');
    if (value.length > MSG_PAYLOAD_MAX) throw new ErrnoError(EINVAL, 'setsockopt');
    const r = await this.layer.request(this.cpu, PRU_CTLOUTPUT, [this.proto, this.pcb, this.so, SOPT_SET, level, name], value);
    check(r.err, 'setsockopt');
  }

  /**
   * getsockopt(2) with a buffer of `size` bytes (the caller's valsize): the
   * answer is copied out after the reply (late copy-out).
   */
  async getsockopt(level: number, name: number, size: number): Promise<Uint8Array> {
    this.live('getsockopt');
    if (!Number.isInteger(size) || size < 0 || size > MSG_PAYLOAD_MAX) throw new ErrnoError(EINVAL, 'getsockopt');
    const r = await this.layer.request(this.cpu, PRU_CTLOUTPUT, [this.proto, this.pcb, this.so, SOPT_GET, level, name], new Uint8Array(size));
    check(r.err, 'getsockopt');
    return r.out!;
  }

  /** Int helpers over set/getsockopt (4 bytes, host order as the arena). */
  async setsockoptInt(level: number, name: number, v: number): Promise<void> {
    await this.setsockopt(level, name, new Uint8Array(Int32Array.of(v).buffer));
  }
  async getsockoptInt(level: number, name: number): Promise<number> {
    const b = await this.getsockopt(level, name, 4);
    return new Int32Array(b.buffer, b.byteOffset, 1)[0];
  }

  /** shutdown(2) for writing: the peer reads EOF after what is queued. */
  async shutdown(): Promise<void> {
    this.live('shutdown');
    const r = await this.layer.request(this.cpu, PRU_SHUTDOWN, [this.proto, this.pcb, this.so]);
    check(r.err, 'shutdown');
  }

  /**
   * close(2): pru_detach on the owning CPU (synchronously, so the CPU has
   * stopped producing into our receive buffer), then free the buffer and
   * the record. Idempotent. A stopped machine (ESHUTDOWN) already dropped the PCB.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const r = await this.layer.request(this.cpu, PRU_DETACH, [this.proto, this.pcb, this.so]);
    const q = this.acceptQueue;
    if (q !== 0) {
      this.layer.ctx.i32[(this.so >> 2) + SO_ACCQ] = 0;
      await this.layer.abortQueued(q);
    }
    this.layer.sor.soSetState(this.so, SS_CANTSENDMORE);
    this.layer.release(this);
    if (r.err !== 0 && r.err !== ESHUTDOWN) throw new ErrnoError(r.err, 'close');
  }
}


/** The blocking forms are for workers only: the main thread's event loop must never block. */
function assertWorker(what: string | number): void {
  if (isMainThread) throw new ArgumentError(`blocking socket call (${what}) in the main thread: use the async form`);
}
