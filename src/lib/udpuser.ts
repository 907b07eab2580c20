/**
 * node:dgram in any user thread (the main thread included) against a
 * Machine running the network stack: createSocket(layer, 'udp4') gives a
 * socket with Node's shape (bind, connect, send, close, address,
 * remoteAddress, setBroadcast, setTTL; events 'listening', 'connect',
 * 'message', 'close', 'error'; Buffers at the edge), whose every request is
 * a PRU_* message to the CPU owning its PCB (udpsock.ts) and whose datagrams
 * arrive through one semi-lockless sockbuf ring per CPU.
 *
 * Everything is asynchronous under the hood: requests await their replies
 * with Atomics.waitAsync (domsgAsync), and the reader sleeps on the socket
 * record's wake word, so the user's event loop never blocks.
 *
 * Control requests (bind, connect, close) run one after the other; sends
 * start as soon as the control requests before them are done and then run
 * concurrently (per-sender FIFO keeps their order on one CPU).
 */
import { EventEmitter } from 'node:events';
import { ArgumentError } from '../kern/errors.js';
import { msgBytes, parseBindArgs, type MsgInput, type SendCb } from './dgramargs.js';
import { EADDRINUSE, EINVAL, EISCONN, ENOBUFS, ENOTCONN, ESHUTDOWN, ErrnoError, type ErrnoDetail } from '../kern/errno.js';
import { M_PKTHDR, MT_DATA, M_DATA } from '../kern/mbuf/layout.js';
import { m_append, m_copydata } from '../kern/mbuf/ops.js';
import { M_NOWAIT } from '../uma/flags.js';
import { A_X, A_Y, A_Z, PRU_ATTACH, PRU_BIND, PRU_CONNECT, PRU_CTLOUTPUT, PRU_DETACH, PRU_SEND, SOCK_DGRAM, SOPT_GET, SOPT_SET } from '../kern/socket/protosw.js';
import { SBS_CANTRCVMORE, SbRecordBuf } from '../kern/socket/sockbuf.js';
import type { SocketLayer } from '../kern/socket/socket.js';
import { SO_ERROR, SO_MAX_RINGS, SO_RCV, SO_RSEQ, SO_RWAIT } from '../kern/socket/layout.js';
import { SOL_SOCKET, SO_BROADCAST, SO_RCVBUF, SO_REUSEADDR, SO_REUSEPORT_LB, SO_SNDBUF } from '../kern/socket/sockopt.js';
import { IPPROTO_UDP, ipToString } from '../wire/ipv4.js';
import { MAX_HDR } from '../net/mchain.js';
import { toAddr } from '../netinet/stack.js';
import { UDP_DEFAULTS } from '../netinet/udp_usrreq.js';
import type { RemoteInfo } from './dgram.js';
import { A_PHASE, CONNECT_ABORT, CONNECT_INSERT, CONNECT_SELECT, IP_TTL, IPPROTO_IP, connectedCpu } from '../netinet/udp_socket.js';

export interface UserSocketOptions {
  type: 'udp4';
  /** Which host of the machine's stack the socket belongs to (default 0). */
  host?: number;
  /** SO_RCVBUF of each CPU's receive ring (default net.inet.udp.recvspace; capped at sb_max_adj). */
  recvBufferSize?: number;
  /** SO_SNDBUF: the largest datagram (default net.inet.udp.maxdgram). */
  sendBufferSize?: number;
  /** SO_REUSEADDR before bind (Node's option). */
  reuseAddr?: boolean;
  /** SO_REUSEPORT_LB before bind: sockets on one address and port share its datagrams by flow (libuv's reusePort on FreeBSD). */
  reusePort?: boolean;
}

/** Tries of an ephemeral bind whose port turned out taken on another CPU. */
const BIND_RETRIES = 8;

/** How long the reader sleeps before re-checking on its own (a lost wake-up costs at most this). */
const READ_WAIT_MS = 50;

export class UdpSocket extends EventEmitter {
  readonly layer: SocketLayer;
  readonly host: number;
  /** The socket record (zone "socket", one receive ring per CPU): also the PCB id on every CPU. */
  readonly rec: number;
  private readonly ncpus: number;
  /** CPUs holding a PCB of this socket. */
  private replicas: boolean[];
  private hostAddr = 0;
  private laddr = 0;
  private lport = 0;
  private faddr = 0;
  private fport = 0;
  private bound = false;
  private closed = false;
  private ops: Promise<unknown>;
  private reader: Promise<void> | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private refed = true;
  private sndbuf = UDP_DEFAULTS.maxdgram;
  /** SO_RCVBUF given at creation, re-applied to replicas made again after a failed bind. */
  private rcvbuf = 0;
  /** Datagrams read from each CPU's ring (which CPUs served this socket). */
  readonly receivedPerCpu: number[];
  /** Reused for every datagram read (sbrecvrecordInto), so a read allocates no record. */
  private readonly record = new SbRecordBuf();
  /** Asynchronous errors (so_error, e.g. ECONNREFUSED) taken from the socket record. */
  soErrors = 0;

  constructor(layer: SocketLayer, opts: UserSocketOptions) {
    super();
    if (opts.type !== 'udp4') throw new ArgumentError(`only udp4 sockets are supported, got ${String(opts.type)}`);
    const ctx = layer.ctx;
    this.layer = layer;
    this.host = opts.host ?? 0;
    this.ncpus = ctx.ncpus;
    if (this.ncpus > SO_MAX_RINGS) throw new ArgumentError(`UDP sockets support at most ${SO_MAX_RINGS} CPUs`);
    const rcvbuf = opts.recvBufferSize;
    if (rcvbuf !== undefined && (!Number.isInteger(rcvbuf) || rcvbuf < 1)) throw new ArgumentError(`recvBufferSize must be a positive integer, got ${rcvbuf}`);
    const sndbuf = opts.sendBufferSize;
    if (sndbuf !== undefined && (!Number.isInteger(sndbuf) || sndbuf < 1)) throw new ArgumentError(`sendBufferSize must be a positive integer, got ${sndbuf}`);
    // Each CPU's pru_attach sizes its own ring (soreserve: net.inet.udp.recvspace).
    this.rec = layer.sor.soalloc({ type: SOCK_DGRAM, proto: IPPROTO_UDP, rings: this.ncpus, cpu: -1, host: this.host, rcvspace: UDP_DEFAULTS.recvspace });
    const rec = this.rec;
    this.replicas = new Array<boolean>(this.ncpus).fill(false);
    this.receivedPerCpu = new Array<number>(this.ncpus).fill(0);
    // pru_attach on every CPU: an unconnected socket is served by all of them.
    this.ops = this.control('socket', async () => {
      await Promise.all(
        Array.from({ length: this.ncpus }, async (_, c) => {
          const r = await this.req(c, PRU_ATTACH, [IPPROTO_UDP, 0, rec, this.host], 4);
          if (r.err !== 0) throw new ErrnoError(r.err, 'socket');
          this.replicas[c] = true;
          this.hostAddr = r.res[A_X] >>> 0;
        }),
      );
      // Options given at creation, by message to every replica (early copy-in).
      if (opts.reuseAddr === true) await this.setOptAll('socket', SOL_SOCKET, SO_REUSEADDR, 1);
      if (opts.reusePort === true) await this.setOptAll('socket', SOL_SOCKET, SO_REUSEPORT_LB, 1);
      if (rcvbuf !== undefined) {
        this.rcvbuf = Math.min(rcvbuf, layer.sbs.maxAdj);
        await this.setOptAll('socket', SOL_SOCKET, SO_RCVBUF, this.rcvbuf);
      }
      if (sndbuf !== undefined) {
        await this.setOptAll('socket', SOL_SOCKET, SO_SNDBUF, sndbuf);
        this.sndbuf = sndbuf;
      }
    });
  }

  // ------------------------------------------------------------------ API

  /** bind([port][, address][, callback]) or bind({port, address}[, callback]). */
  bind(...args: unknown[]): this {
    const { port, address, cb } = parseBindArgs(args);
    this.checkOpen('bind');
    if (this.bound) throw new ErrnoError(EINVAL, 'bind', { info: 'already bound' });
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ArgumentError(`port must be 0..65535, got ${port}`);
    const laddr = address === '0.0.0.0' ? 0 : toAddr(address);
    this.bound = true;
    if (cb) this.once('listening', cb);
    this.control('bind', () => this.doBind(laddr, port)).then(
      () => this.emit('listening'),
      () => {},
    );
    return this;
  }

  /**
   * connect(port[, address][, callback]): fix the peer and move the PCB to
   * the one CPU the replies hash to. A connected socket may connect again
   * (BSD semantics): the PCB moves when the new peer hashes elsewhere.
   */
  connect(port: number, address?: string | (() => void), cb?: () => void): void {
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    this.checkOpen('connect');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ArgumentError(`port must be 1..65535, got ${port}`);
    const faddr = toAddr(address ?? '127.0.0.1');
    this.bound = true;
    this.control('connect', () => this.doConnect(faddr, port)).then(
      () => {
        this.emit('connect');
        cb?.();
      },
      () => {},
    );
  }

  /** send(msg[, offset, length][, port][, address][, callback]). */
  send(msg: MsgInput, ...rest: unknown[]): void {
    let cb: SendCb | undefined;
    if (typeof rest[rest.length - 1] === 'function') cb = rest.pop() as SendCb;
    const data = msgBytes(msg);
    let off = 0;
    let len = data.length;
    if (rest.length >= 2 && typeof rest[0] === 'number' && typeof rest[1] === 'number' && (rest.length >= 3 || this.fport !== 0)) {
      off = rest.shift() as number;
      len = rest.shift() as number;
      if (!Number.isInteger(off) || !Number.isInteger(len) || off < 0 || len < 0 || off + len > data.length) throw new ArgumentError('send: offset/length outside the buffer');
    }
    const port = rest[0] as number | undefined;
    const address = rest[1] as string | undefined;
    this.checkOpen('send');
    let faddr = 0;
    let fport = 0;
    if (port !== undefined) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ArgumentError(`port must be 1..65535, got ${port}`);
      fport = port;
      faddr = toAddr(address ?? '127.0.0.1');
    }
    // An unbound socket binds an ephemeral port first, as Node does.
    if (!this.bound) this.bind();
    const bytes = data.subarray(off, off + len);
    // After the control requests before it, whatever their outcome (a failed
    // connect was reported as its own 'error'; the send stands on its own).
    this.ops
      .catch(() => {})
      .then(() => this.doSend(bytes, faddr, fport))
      .then(
        () => cb?.(null, len),
        (e: Error) => (cb ? cb(e) : this.emit('error', e)),
      );
  }

  address(): { address: string; family: 'IPv4'; port: number } {
    if (this.lport === 0) throw new ErrnoError(EINVAL, 'getsockname');
    return { address: ipToString(this.laddr), family: 'IPv4', port: this.lport };
  }

  remoteAddress(): { address: string; family: 'IPv4'; port: number } {
    if (this.fport === 0) throw new ErrnoError(ENOTCONN, 'getpeername');
    return { address: ipToString(this.faddr), family: 'IPv4', port: this.fport };
  }

  /** The CPU a connected socket's PCB lives on; -1 while every CPU has one. */
  get cpu(): number {
    return this.layer.sor.cpu(this.rec);
  }

  /** CPUs that hold a PCB of this socket. */
  pcbCpus(): number[] {
    return this.replicas.flatMap((r, c) => (r ? [c] : []));
  }

  setBroadcast(flag: boolean): void {
    this.setOpt('setBroadcast', SOL_SOCKET, SO_BROADCAST, flag ? 1 : 0);
  }

  /** SO_RCVBUF of every CPU's ring, by message (FreeBSD rules: 1..sb_max_adj, else an 'error' EINVAL / ENOBUFS). */
  setRecvBufferSize(size: number): void {
    this.setOpt('setsockopt', SOL_SOCKET, SO_RCVBUF, size);
  }

  /** The receive ring's size (read from the ring itself, no message). */
  getRecvBufferSize(): number {
    const sor = this.layer.sor;
    const cpu = sor.cpu(this.rec);
    return this.layer.sbs.hiwat(sor.rcv(this.rec, cpu >= 0 ? cpu : 0));
  }

  /** SO_SNDBUF (for UDP the largest datagram: EMSGSIZE above), by message. */
  setSendBufferSize(size: number): void {
    this.setOpt('setsockopt', SOL_SOCKET, SO_SNDBUF, size);
    if (Number.isInteger(size) && size >= 1 && size <= this.layer.sbs.maxAdj) this.sndbuf = size;
  }

  getSendBufferSize(): number {
    return this.sndbuf;
  }

  /**
   * setsockopt(level, name, int) on every PCB of the socket (SO_REUSEADDR,
   * SO_REUSEPORT, SO_REUSEPORT_LB, IP_PORTRANGE ...): queued after the
   * control requests before it; rejects with the protocol's ErrnoError.
   */
  async setsockoptInt(level: number, name: number, v: number): Promise<void> {
    this.checkOpen('setsockopt');
    const p = this.control('setsockopt', () => this.setOptAll('setsockopt', level, name, v));
    await p;
  }

  /** getsockopt(level, name) as an int, from the owning CPU (or the first replica): late copy-out. */
  async getsockoptInt(level: number, name: number): Promise<number> {
    this.checkOpen('getsockopt');
    let out = 0;
    await this.control('getsockopt', async () => {
      const cpu = this.cpu >= 0 ? this.cpu : this.pcbCpus()[0];
      const r = await this.req(cpu, PRU_CTLOUTPUT, [IPPROTO_UDP, this.rec, this.rec, SOPT_GET, level, name], 0, new Uint8Array(4));
      if (r.err !== 0) throw new ErrnoError(r.err, 'getsockopt');
      out = new Int32Array(r.out!.buffer, r.out!.byteOffset, 1)[0];
    });
    return out;
  }

  setTTL(ttl: number): number {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new ArgumentError(`ttl must be 1..255, got ${ttl}`);
    this.setOpt('setTTL', IPPROTO_IP, IP_TTL, ttl);
    return ttl;
  }

  ref(): this {
    this.refed = true;
    this.keepalive?.ref();
    return this;
  }

  unref(): this {
    this.refed = false;
    this.keepalive?.unref();
    return this;
  }

  /** close([callback]): detach every PCB, then free the rings and the record; 'close' after. */
  close(cb?: () => void): this {
    if (this.closed) return this;
    this.closed = true;
    if (cb) this.once('close', cb);
    this.wakeReader();
    const prev = this.ops;
    this.ops = prev
      .catch(() => {})
      .then(async () => {
        const errs = await Promise.all(this.pcbCpus().map((c) => this.req(c, PRU_DETACH, [IPPROTO_UDP, this.rec, this.rec]).then((r) => r.err)));
        if (this.reader !== null) await this.reader;
        if (this.keepalive !== null) clearInterval(this.keepalive);
        this.keepalive = null;
        this.replicas.fill(false);
        this.layer.sor.sofree(this.rec);
        const bad = errs.find((e) => e !== 0 && e !== ESHUTDOWN);
        if (bad !== undefined) this.emit('error', new ErrnoError(bad, 'close'));
        this.emit('close');
      });
    return this;
  }

  /** Resolves once every request issued so far (close included) is done. */
  async settled(): Promise<void> {
    await this.ops.catch(() => {});
  }

  // ------------------------------------------------------------ internals

  private checkOpen(syscall: string): void {
    if (this.closed) throw new ErrnoError(EINVAL, syscall, { info: 'socket is closed' });
  }

  private req(cpu: number, cmd: number, args: number[], nres = 0, payload?: Uint8Array) {
    return this.layer.request(cpu, cmd, args, payload, nres);
  }

  /** Queue a control request after the previous ones; its failure is an 'error' event. */
  private control(what: string, fn: () => Promise<void>): Promise<void> {
    const p = (this.ops ?? Promise.resolve()).catch(() => {}).then(fn);
    this.ops = p;
    p.catch((e: Error) => {
      if (!this.closed) this.emit('error', e instanceof ErrnoError ? e : new ErrnoError(EINVAL, what, { info: e.message }));
    });
    return p;
  }

  /**
   * in_pcbbind on every replica: the first CPU picks the port, the others
   * take the same. An ephemeral port another CPU already holds (a connected
   * socket moved there) is given back and another one tried.
   */
  private async doBind(laddr: number, port: number): Promise<void> {
    const detail: ErrnoDetail = { address: ipToString(laddr), port };
    for (let attempt = 0; ; attempt++) {
      const cpus = this.pcbCpus();
      const first = await this.req(cpus[0], PRU_BIND, [IPPROTO_UDP, this.rec, this.rec, laddr, port], 5);
      if (first.err !== 0) throw new ErrnoError(first.err, 'bind', detail);
      const lport = first.res[A_Y];
      const rest = await Promise.all(cpus.slice(1).map((c) => this.req(c, PRU_BIND, [IPPROTO_UDP, this.rec, this.rec, laddr, lport])));
      const bad = rest.find((r) => r.err !== 0);
      if (bad === undefined) {
        this.laddr = laddr;
        this.lport = lport;
        this.startReader();
        return;
      }
      await this.resetReplicas();
      if (port !== 0 || bad.err !== EADDRINUSE || attempt + 1 >= BIND_RETRIES) throw new ErrnoError(bad.err, 'bind', { address: detail.address, port: lport });
    }
  }

  /** A bind failed half way: replace every replica by a fresh unbound one. */
  private async resetReplicas(): Promise<void> {
    for (const c of this.pcbCpus()) {
      await this.req(c, PRU_DETACH, [IPPROTO_UDP, this.rec, this.rec]);
      this.replicas[c] = false;
    }
    for (let c = 0; c < this.ncpus; c++) {
      const r = await this.req(c, PRU_ATTACH, [IPPROTO_UDP, 0, this.rec, this.host]);
      if (r.err === 0) this.replicas[c] = true;
    }
    // so_options come back from the record's word; the buffer sizes by message again.
    if (this.rcvbuf !== 0) await this.setOptAll('bind', SOL_SOCKET, SO_RCVBUF, this.rcvbuf).catch(() => {});
    if (this.sndbuf !== UDP_DEFAULTS.maxdgram) await this.setOptAll('bind', SOL_SOCKET, SO_SNDBUF, this.sndbuf).catch(() => {});
  }

  /**
   * The PCB move: select on the current CPU (it connects its replica and
   * names the target), insert on the target, delete every other replica.
   * A failed insert is backed out on the selecting CPU (CONNECT_ABORT).
   */
  private async doConnect(faddr: number, fport: number): Promise<void> {
    const detail: ErrnoDetail = { address: ipToString(faddr), port: fport };
    const from = this.cpu >= 0 ? this.cpu : this.pcbCpus()[0];
    const sel = await this.req(from, PRU_CONNECT, [IPPROTO_UDP, this.rec, this.rec, faddr, fport, 0, CONNECT_SELECT], 6);
    if (sel.err !== 0) throw new ErrnoError(sel.err, 'connect', detail);
    const laddr = sel.res[A_X] >>> 0;
    const lport = sel.res[A_Y];
    const target = sel.res[A_Z];
    const ins = await this.req(target, PRU_CONNECT, [IPPROTO_UDP, this.rec, this.rec, faddr, fport, laddr, CONNECT_INSERT, lport, this.host]);
    if (ins.err !== 0) {
      await this.req(from, PRU_CONNECT, [IPPROTO_UDP, this.rec, this.rec, faddr, fport, 0, CONNECT_ABORT]);
      throw new ErrnoError(ins.err, 'connect', detail);
    }
    this.replicas[target] = true;
    this.layer.sor.setCpu(this.rec, target);
    await Promise.all(
      this.pcbCpus()
        .filter((c) => c !== target)
        .map(async (c) => {
          await this.req(c, PRU_DETACH, [IPPROTO_UDP, this.rec, this.rec]);
          this.replicas[c] = false;
        }),
    );
    this.laddr = laddr;
    this.lport = lport;
    this.faddr = faddr;
    this.fport = fport;
    this.startReader();
  }

  /** Copy the datagram into a pkthdr chain (leading room for the headers) and hand it to a CPU. */
  private async doSend(data: Uint8Array, faddr: number, fport: number): Promise<void> {
    if (this.closed) throw new ErrnoError(EINVAL, 'send', { info: 'socket is closed' });
    if (faddr !== 0 && this.fport !== 0) throw new ErrnoError(EISCONN, 'send');
    if (faddr === 0 && this.fport === 0) throw new ErrnoError(ENOTCONN, 'send');
    const mb = this.layer.mb;
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
    if (m === 0) throw new ErrnoError(ENOBUFS, 'send');
    mb.i32[(m + M_DATA) >> 2] += MAX_HDR;
    if (data.length > 0 && !m_append(mb, m, data.length, data, 0)) {
      mb.m_freem(m);
      throw new ErrnoError(ENOBUFS, 'send');
    }
    // Unconnected: send from the CPU the peer's answers will come back to.
    const cpu = this.fport !== 0 ? this.cpu : connectedCpu(this.laddr !== 0 ? this.laddr : this.hostAddr, this.lport, faddr, fport, this.ncpus);
    const r = await this.req(cpu, PRU_SEND, [IPPROTO_UDP, this.rec, this.rec, m, faddr, fport]);
    // ESHUTDOWN: no handler ran, the chain is still ours.
    if (r.err === ESHUTDOWN) mb.m_freem(m);
    if (r.err !== 0) throw new ErrnoError(r.err, 'send', faddr !== 0 ? { address: ipToString(faddr), port: fport } : {});
  }

  private setOpt(what: string, level: number, name: number, v: number): void {
    this.checkOpen(what);
    this.control(what, () => this.setOptAll(what, level, name, v));
  }

  /** setsockopt on every replica now (inside a control request); the protocol's errno as ErrnoError. */
  private async setOptAll(what: string, level: number, name: number, v: number): Promise<void> {
    const val = new Uint8Array(Int32Array.of(v).buffer);
    for (const c of this.pcbCpus()) {
      const r = await this.req(c, PRU_CTLOUTPUT, [IPPROTO_UDP, this.rec, this.rec, SOPT_SET, level, name], 0, val);
      if (r.err !== 0) throw new ErrnoError(r.err, what);
    }
  }

  private wakeReader(): void {
    this.layer.sor.sowakeupAlways(this.rec);
  }

  /** Start the receive loop once the socket has an address (idempotent). */
  private startReader(): void {
    if (this.reader !== null) return;
    this.keepalive = setInterval(() => {}, 1 << 30);
    if (!this.refed) this.keepalive.unref();
    this.reader = this.readLoop();
  }

  /**
   * soreceive over every CPU's ring: emit what is queued, then sleep on the
   * wake word (announce RWAIT, re-check, waitAsync), Dekker with the CPUs.
   * Yields to the event loop after each batch so requests' replies run.
   */
  private async readLoop(): Promise<void> {
    const ctx = this.layer.ctx;
    const sbs = this.layer.sbs;
    const i32 = ctx.i32;
    const w = this.rec >> 2;
    const rings: number[] = [];
    for (let c = 0; c < this.ncpus; c++) rings.push(i32[w + SO_RCV + c]);
    while (!this.closed) {
      this.takeError();
      if (this.closed) return;
      let got = 0;
      let eof = 0;
      for (let c = 0; c < rings.length && !this.closed; c++) {
        for (let k = 0; k < 64 && !this.closed; k++) {
          const r = this.record;
          if (!sbs.sbrecvrecordInto(rings[c], r)) break;
          got++;
          this.receivedPerCpu[c]++;
          this.deliver(r.addr, r.addrLen, r.m, r.len);
        }
        if ((sbs.state(rings[c]) & SBS_CANTRCVMORE) !== 0 && sbs.sbavail(rings[c]) === 0) eof++;
      }
      if (eof === rings.length) return;
      if (got > 0) {
        await new Promise<void>((res) => setImmediate(res));
        continue;
      }
      const seq = Atomics.load(i32, w + SO_RSEQ);
      Atomics.store(i32, w + SO_RWAIT, 1);
      let any = Atomics.load(i32, w + SO_ERROR) !== 0;
      for (let c = 0; c < rings.length; c++) if (sbs.sbavail(rings[c]) > 0) any = true;
      if (!any && !this.closed) {
        const r = Atomics.waitAsync(i32, w + SO_RSEQ, seq, READ_WAIT_MS);
        if (r.async) await r.value;
      }
      Atomics.store(i32, w + SO_RWAIT, 0);
    }
  }

  /**
   * soreceive's so_error check: take the pending error the owning CPU
   * published (the record's SO_ERROR word), clearing it in the same atomic step
   * so it is reported exactly once, and emit it as 'error' (code
   * ECONNREFUSED, errno 61 for an ICMP port unreachable) if anyone listens.
   * The socket stays usable. User thread; no lock, never sleeps.
   */
  private takeError(): void {
    const e = this.layer.sor.soTakeError(this.rec);
    if (e === 0) return;
    this.soErrors++;
    // On the next tick, so a throwing listener cannot stop the reader; with
    // no listener the error is only counted (soErrors), never a crash.
    const err = new ErrnoError(e, 'recvmsg');
    process.nextTick(() => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  /** The edge: one copy out of the arena into a Buffer, the chain freed at once. */
  /** Emit one datagram: its bytes as a Buffer (the edge), the source from the record's address. */
  private deliver(addr: Uint8Array, addrLen: number, m: number, len: number): void {
    const mb = this.layer.mb;
    const buf = Buffer.allocUnsafe(len);
    if (len > 0) m_copydata(mb, m, 0, len, buf);
    if (m !== 0) mb.m_freem(m);
    let a = 0;
    let p = 0;
    if (addrLen >= 6) {
      a = ((addr[0] << 24) | (addr[1] << 16) | (addr[2] << 8) | addr[3]) >>> 0;
      p = (addr[4] << 8) | addr[5];
    }
    const rinfo: RemoteInfo = { address: ipToString(a), family: 'IPv4', port: p, size: len };
    this.emit('message', buf, rinfo);
  }
}

/** dgram.createSocket against a machine's stack, from this thread's socket layer. */
export function createSocket(layer: SocketLayer, type: 'udp4' | UserSocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): UdpSocket {
  const s = new UdpSocket(layer, typeof type === 'string' ? { type } : type);
  if (listener) s.on('message', listener);
  return s;
}
