/**
 * node:net towards the worker CPUs (System.start({ cpus: n })): the same
 * Socket / Server shapes as lib/net.ts, for a stack that runs on the CPUs.
 * Every TcpSockets call is a NET_TCP request (lib/tcpcpu.ts) to the CPU
 * that owns the connection, awaited without blocking the event loop:
 *
 * - a connection lives on the CPU its segments arrive on: netisr dispatches
 *   TCP by the 4-tuple, so L:lp -> F:fp lives on rssFlowCpu(F, L, fp, lp).
 *   An active open goes to a CPU (connect({cpu}) or round robin) whose port
 *   partitioning picks an ephemeral port hashing to itself; with an explicit
 *   localPort the 4-tuple decides the CPU;
 * - a listener has a replica on every CPU, each with an accept loop here;
 * - data crosses as mbuf chains by handle (one copy in, one copy out at
 *   this edge); a read or write that would block waits with TCP_POLL, which
 *   the CPU answers from TCP's wakeup, so backpressure is TCP's own: a
 *   paused stream issues no reads, so_rcv fills and the window closes.
 *
 * What differs from the single-thread form (docs/tcp-mp.md): requests and
 * polls are messages rather than the semi-lockless sockbuf rings, idle
 * timeouts are the user thread's timers, and TCP connections between two
 * stacks of the system go through netisr like any frame.
 *
 * Runs in the thread that made the System; nothing blocks.
 */
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { ArgumentError } from '../kern/errors.js';
import { EADDRNOTAVAIL, EAGAIN, ECONNREFUSED, EINPROGRESS, ENOBUFS, ENOTCONN, ESHUTDOWN, ESRCH, ErrnoError } from '../kern/errno.js';
import { M_DATA, M_LEN, M_NEXT, M_PKTHDR, MCLBYTES, MJUM16BYTES, MJUMPAGESIZE, MT_DATA, PH_LEN } from '../kern/mbuf/layout.js';
import { M_TRAILINGSPACE, m_copydata } from '../kern/mbuf/ops.js';
import { allocAligned } from '../kern/mbuf/copy.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_NOWAIT } from '../uma/flags.js';
import { rssFlowCpu } from '../net/rss.js';
import { ipToString } from '../wire/ipv4.js';
import { prefixToMask } from '../wire/ipv4.js';
import { toAddr } from '../netinet/stack.js';
import type { SocketLayer } from '../kern/socket/socket.js';
import { IPPROTO_TCP, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, SHUT_WR, SOL_SOCKET, SO_ERROR, SO_KEEPALIVE, SO_LINGER, SO_REUSEADDR, TCP_CONGESTION, TCP_KEEPIDLE, TCP_NODELAY } from '../netinet/tcp_api.js';
import {
  NET_TCP,
  TCP_ACCEPT,
  TCP_A_CHAIN,
  TCP_BIND,
  TCP_CLOSE,
  TCP_CONNECT,
  TCP_GETSOCKOPT,
  TCP_IO_MAX,
  TCP_READ_MAX,
  TCP_READ_WAIT,
  TCP_LISTEN,
  TCP_NAMES,
  TCP_POLL,
  TCP_READ,
  TCP_SETSOCKOPT,
  TCP_SHUTDOWN,
  TCP_SOCKET,
  TCP_WRITE,
} from './tcpcpu.js';
import type { AddressInfo } from './net.js';
import { checkOnRead, type OnRead } from './onread.js';
import { CC_ALGOS, ccAlgoIndex } from '../netinet/cc/cc_list.js';
import { NET_CTL_TCPSTATS } from '../net/ctl_handlers.js';
import { MSG_PAYLOAD_MAX } from '../kern/lwkt/layout.js';
import { tcpStatObject } from '../netinet/tcp_stats.js';

/** TCP_CONGESTION's name as the index the CPUs take; ESRCH (FreeBSD's) for a name no algorithm has. */
function congestionIndex(name: string): number {
  const i = typeof name === 'string' ? ccAlgoIndex(name) : -1;
  if (i < 0) throw new ErrnoError(ESRCH, 'setsockopt', { info: `TCP_CONGESTION: no algorithm '${String(name)}'` });
  return i;
}

/**
 * The chain a write hands the CPU: data[off, off + len) copied once into
 * 16 KiB jumbo clusters (page clusters, then 2 KiB ones, for the tail or
 * when a jumbo zone is at its limit), so so_snd, TSO's m_copym and the
 * peer's reader each walk a few large mbufs instead of many small ones.
 * A packet header carries the length. 0 when memory is short (nothing
 * kept). User thread; never sleeps (M_NOWAIT).
 */
function userChain(mb: Mbufs, data: Uint8Array, off: number, len: number): number {
  const i32 = mb.i32;
  if (len <= 0) return mb.m_gethdr(M_NOWAIT, MT_DATA);
  let head = 0;
  let tail = 0;
  let done = 0;
  while (done < len) {
    const left = len - done;
    const flags = head === 0 ? M_PKTHDR : 0;
    let m = 0;
    if (left > MJUMPAGESIZE) m = mb.m_getjcl(M_NOWAIT, MT_DATA, flags, MJUM16BYTES);
    if (m === 0 && left > MCLBYTES) m = mb.m_getjcl(M_NOWAIT, MT_DATA, flags, MJUMPAGESIZE);
    if (m === 0) m = mb.m_getcl(M_NOWAIT, MT_DATA, flags);
    if (m === 0) {
      mb.m_freem(head);
      return 0;
    }
    const room = M_TRAILINGSPACE(mb, m);
    const n = Math.min(room, left);
    mb.copier.copyIn(data, off + done, n, i32[(m + M_DATA) >> 2], room);
    i32[(m + M_LEN) >> 2] = n;
    if (head === 0) head = m;
    else i32[(tail + M_NEXT) >> 2] = m;
    tail = m;
    done += n;
  }
  i32[(head + PH_LEN) >> 2] = len;
  return head;
}

/** Largest Buffer a read makes (lib/netmp.ts MpTcp.read). */
const READ_PIECE = 64 * 1024;

/**
 * Copy the n bytes of chain m into Buffers of at most READ_PIECE bytes.
 * Each Buffer starts at the first mbuf's alignment modulo 8 (allocations
 * are 8-aligned, READ_PIECE is a multiple of 8): a stream's pieces keep one
 * alignment relative to it, so the copies out of the shared arena move
 * words, not bytes (kern/mbuf/copy.ts). User thread; never sleeps.
 */
function chainToBuffers(mb: Mbufs, m: number, n: number): Buffer[] {
  const i32 = mb.i32;
  const k = i32[(m + M_DATA) >> 2] & 7;
  const out: Buffer[] = [];
  let buf: Buffer | null = null;
  let at = 0;
  let left = n;
  let moff = 0;
  while (left > 0 && m !== 0) {
    if (buf === null) {
      const len = Math.min(left, READ_PIECE);
      buf = allocAligned(len, k);
      at = 0;
    }
    const take = Math.min(i32[(m + M_LEN) >> 2] - moff, buf.length - at);
    mb.copier.copyOut(i32[(m + M_DATA) >> 2] + moff, take, buf, at);
    at += take;
    moff += take;
    left -= take;
    if (moff === i32[(m + M_LEN) >> 2]) {
      m = i32[(m + M_NEXT) >> 2];
      moff = 0;
    }
    if (at === buf.length) {
      out.push(buf);
      buf = null;
    }
  }
  return out;
}

/** A stack of an MP System, as topology.ts's NetStack shows it. */
export interface MpStackLike {
  readonly index: number;
  readonly interfaces: readonly { readonly addrs: readonly { addr: number; prefix: number }[] }[];
  readonly system: { readonly layer: SocketLayer | null; readonly cpus: number };
}

/** Whether `s` is a stack that runs on worker CPUs. */
export function isMpStack(s: unknown): s is MpStackLike {
  const sys = (s as { system?: { cpus?: number; layer?: unknown } } | null)?.system;
  return sys !== undefined && typeof sys.cpus === 'number' && sys.cpus > 0 && sys.layer != null;
}

/** One host's TCP on the CPUs, seen from this thread. */
export class MpTcp {
  private static readonly all = new WeakMap<object, MpTcp>();
  readonly layer: SocketLayer;
  readonly host: number;
  readonly ncpus: number;
  private refs = 0;
  private rr = 0;
  private keepalive: NodeJS.Timeout | null = null;

  private constructor(readonly stack: MpStackLike) {
    this.layer = stack.system.layer!;
    this.host = stack.index;
    this.ncpus = stack.system.cpus;
  }

  static of(stack: MpStackLike): MpTcp {
    let t = MpTcp.all.get(stack);
    if (t === undefined) MpTcp.all.set(stack, (t = new MpTcp(stack)));
    return t;
  }

  /** One NET_TCP request; the CPU's results (result 0 is the call's return value). */
  async op(cpu: number, op: number, id: number, args: number[] = []): Promise<number[]> {
    const r = await this.layer.request(cpu, NET_TCP, [op, this.host, id, ...args], undefined, 5);
    if (r.err !== 0) throw new ErrnoError(r.err, 'tcp request');
    return r.res;
  }

  /** TCP_WRITE of data[off, off + len) as a chain: [bytes taken or -errno, so_snd's free room after it]. */
  async write(cpu: number, id: number, data: Uint8Array, off: number, len: number): Promise<[number, number]> {
    const mb = this.layer.mb;
    const m = userChain(mb, data, off, len);
    if (m === 0) return [-ENOBUFS, 0];
    const args = [TCP_WRITE, this.host, id, 0, m, len];
    const r = await this.layer.request(cpu, NET_TCP, args, undefined, 2);
    if (r.err === ESHUTDOWN) mb.m_freem(m); // no handler ran: the chain is still ours
    if (r.err !== 0) return [-r.err, 0];
    return [r.res[0], r.res[1]];
  }

  /** TCP_READ of at most buf.length bytes copied into buf (onread): bytes, 0 at EOF, or -errno. */
  async readInto(cpu: number, id: number, buf: Uint8Array): Promise<number> {
    const r = await this.op(cpu, TCP_READ, id, [Math.min(buf.length, TCP_READ_MAX)]);
    const n = r[0];
    if (n <= 0) return n;
    const mb = this.layer.mb;
    m_copydata(mb, r[1], 0, n, buf);
    mb.m_freem(r[1]);
    return n;
  }

  /**
   * TCP_READ, parked (TCP_READ_WAIT: the CPU answers once data, EOF or an
   * error is there): what so_rcv held (up to TCP_READ_MAX) as Buffers of at
   * most READ_PIECE bytes each, null at EOF, or -errno (-ESHUTDOWN: the
   * socket was closed or the CPU stopped meanwhile). Pieces, not one Buffer:
   * a Buffer over malloc's mmap threshold is fresh pages to fault in and
   * unmap at every read (Node's net reads 64 KiB too).
   */
  async read(cpu: number, id: number): Promise<Buffer[] | null | number> {
    const r = await this.op(cpu, TCP_READ, id, [TCP_READ_MAX, TCP_READ_WAIT]);
    const n = r[0];
    if (n <= 0) return n === 0 ? null : n;
    const bufs = chainToBuffers(this.layer.mb, r[1], n);
    this.layer.mb.m_freem(r[1]);
    return bufs;
  }

  /**
   * This host's tcpstat counters on one CPU (netstat -s of that CPU alone):
   * what the protocol did there, for per-CPU checks and the benchmark.
   */
  async stats(cpu: number): Promise<Record<string, number>> {
    const v: number[] = [];
    for (let start = 0; ; ) {
      const r = await this.layer.request(cpu, NET_CTL_TCPSTATS, [this.host, start], new Uint8Array(MSG_PAYLOAD_MAX), 2);
      if (r.err !== 0 || r.out === null) throw new ErrnoError(r.err, 'tcp stats');
      const [total, n] = r.res;
      const f = new Float64Array(r.out.buffer.slice(r.out.byteOffset, r.out.byteOffset + n * 8));
      for (let k = 0; k < n; k++) v.push(f[k]);
      start += n;
      if (n === 0 || start >= total) break;
    }
    return tcpStatObject(Float64Array.from(v));
  }

  /** The local address a connection to faddr leaves from: an address on faddr's network, else the first. */
  sourceFor(faddr: number): number {
    if (faddr >>> 24 === 127) return 0x7f000001;
    let first = 0;
    for (const i of this.stack.interfaces)
      for (const a of i.addrs) {
        if (a.addr >>> 24 === 127) continue;
        if (first === 0) first = a.addr;
        if (((a.addr ^ faddr) & prefixToMask(a.prefix)) === 0) return a.addr;
      }
    return first;
  }

  /**
   * The CPU that owns the connection laddr:lport -> faddr:fport: the one its
   * segments arrive on (netisr hashes TCP by the 4-tuple as received,
   * faddr:fport -> laddr:lport).
   */
  flowCpu(laddr: number, lport: number, faddr: number, fport: number): number {
    return rssFlowCpu(faddr, laddr, fport, lport, this.ncpus);
  }

  /** The CPU for the next active open without a preferred one: round robin. */
  nextCpu(): number {
    const c = this.rr;
    this.rr = (this.rr + 1) % this.ncpus;
    return c;
  }

  ref(): void {
    if (this.refs++ === 0) this.keepalive = setInterval(() => {}, 1 << 30);
  }

  unref(): void {
    if (--this.refs === 0 && this.keepalive !== null) {
      clearInterval(this.keepalive);
      this.keepalive = null;
    }
  }
}

export interface MpConnectOptions {
  stack: MpStackLike;
  port: number | string;
  host?: string;
  localPort?: number;
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  timeout?: number;
  /** TCP_CONGESTION before the SYN: "newreno" or "cubic" (the CPUs' default otherwise). */
  congestion?: string;
  /** Node's onread (lib/onread.ts): reads go into the user's buffer, no 'data' events. */
  onread?: OnRead;
  /**
   * The CPU to open on (0 .. cpus-1; default round robin): it picks an
   * ephemeral port whose 4-tuple hashes to itself (port partitioning), so
   * the connection lives there; when its share of the ports is used up the
   * next CPU tries. Ignored with localPort: the 4-tuple then decides.
   */
  cpu?: number;
}

function portOf(p: unknown, what: string): number {
  const n = typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : p;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new ArgumentError(`${what}: port must be an integer 0..65535, got ${String(p)}`);
  return n;
}

function addrOf(host: string | undefined): number {
  if (host === undefined || host === 'localhost' || host === '') return 0x7f000001;
  return toAddr(host);
}

/** A TCP connection on the CPUs as a stream.Duplex (net.Socket's shape). */
export class MpSocket extends Duplex {
  private tcp: MpTcp;
  private cpu = 0;
  private id = 0;
  connecting = false;
  private connected = false;
  private wantRead = false;
  private readLoop = false;
  private eof = false;
  private ready: Promise<void>;
  private readyResolve!: () => void;
  private peer: { addr: number; port: number } | null = null;
  private local: { addr: number; port: number } | null = null;
  private bytesIn = 0;
  private bytesOut = 0;
  /** A lower bound on so_snd's free room (_write's comment); bytes sent in pipelined writes. */
  private credit = 0;
  private sentBytes = 0;
  /** Settles when the last pipelined write's reply is in; never rejects (its error goes to writeErr). */
  private writesDone: Promise<void> = Promise.resolve();
  private writeErr: Error | null = null;
  private holdsRef = false;
  private refed = true;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Requests in flight (close waits for them: see settled()). */
  private inflight = new Set<Promise<unknown>>();
  server: MpServer | null = null;
  /** Node's onread (null: reads are pushed as 'data'). */
  private readonly onread: OnRead | null;

  constructor(tcp: MpTcp, opts: { allowHalfOpen?: boolean; onread?: OnRead } = {}) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false, emitClose: false, autoDestroy: true, decodeStrings: true });
    this.tcp = tcp;
    this.onread = checkOnRead(opts.onread);
    // As Node: an onread socket starts reading at connect; it never pushes, so _read is not asked again.
    if (this.onread !== null) this.wantRead = true;
    this.ready = new Promise((r) => (this.readyResolve = r));
  }

  /** @internal a connection a listener replica accepted on `cpu`. */
  static accepted(tcp: MpTcp, cpu: number, id: number, names: number[], allowHalfOpen: boolean): MpSocket {
    const s = new MpSocket(tcp, { allowHalfOpen });
    s.cpu = cpu;
    s.id = id;
    s.peer = { addr: names[1] >>> 0, port: names[2] };
    s.local = { addr: names[3] >>> 0, port: names[4] };
    s.connected = true;
    s.updateRef();
    s.readyResolve();
    return s;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => {});
    return p;
  }

  /** Resolves when no request of this socket is in flight (after close: its TCP_CLOSE is done). */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** connect(options[, cb]): the handshake on the connection's CPU. */
  connect(o: MpConnectOptions, cb?: () => void): this {
    if (this.id !== 0 || this.connecting) throw new ArgumentError('connect: the socket is connected or connecting');
    const port = portOf(o.port, 'connect');
    if (port === 0) throw new ArgumentError('connect: port must be 1..65535');
    const faddr = addrOf(o.host);
    if (o.cpu !== undefined && (!Number.isInteger(o.cpu) || o.cpu < 0 || o.cpu >= this.tcp.ncpus)) throw new ArgumentError(`connect: cpu must be an integer 0..${this.tcp.ncpus - 1}, got ${String(o.cpu)}`);
    if (cb) this.once('connect', cb);
    if (o.timeout !== undefined) this.setTimeout(o.timeout);
    this.connecting = true;
    this.peer = { addr: faddr, port };
    this.track(this.doConnect(faddr, port, o)).catch((e: Error) => this.destroy(e));
    return this;
  }

  private async doConnect(faddr: number, port: number, o: MpConnectOptions): Promise<void> {
    const tcp = this.tcp;
    const detail = { address: ipToString(faddr), port };
    const lport = o.localPort ?? 0;
    const laddr = tcp.sourceFor(faddr);
    // An explicit local port fixes the 4-tuple and so the CPU; else the chosen CPU picks a port of its own.
    const first = lport !== 0 ? tcp.flowCpu(laddr, lport, faddr, port) : o.cpu !== undefined ? o.cpu : tcp.nextCpu();
    const tries = lport !== 0 ? 1 : tcp.ncpus;
    for (let k = 0; ; k++) {
      const cpu = (this.cpu = (first + k) % tcp.ncpus);
      const id = (await tcp.op(cpu, TCP_SOCKET, 0))[0];
      if (id < 0) throw new ErrnoError(-id, 'socket');
      this.id = id;
      this.updateRef();
      if (this.destroyed) return;
      if (lport !== 0) {
        const b = (await tcp.op(cpu, TCP_BIND, id, [laddr | 0, lport]))[0];
        if (b < 0) throw new ErrnoError(-b, 'bind', { address: ipToString(laddr), port: lport });
      }
      await this.presetOptions(o);
      const r = (await tcp.op(cpu, TCP_CONNECT, id, [faddr | 0, port]))[0];
      if (r === -EINPROGRESS || r === 0) break;
      if (r !== -EADDRNOTAVAIL || k + 1 >= tries) throw new ErrnoError(-r, 'connect', detail);
      // This CPU's share of the ephemeral ports toward faddr:port is used up: the next CPU's.
      this.id = 0;
      this.updateRef();
      await tcp.op(cpu, TCP_CLOSE, id);
    }
    const cpu = this.cpu;
    const id = this.id;
    const bits = (await tcp.op(cpu, TCP_POLL, id, [POLLOUT]))[0];
    if (this.destroyed) return;
    if ((bits & POLLOUT) === 0 || (bits & (POLLERR | POLLNVAL)) !== 0) {
      const e = (await tcp.op(cpu, TCP_GETSOCKOPT, id, [SOL_SOCKET, SO_ERROR]))[1];
      throw new ErrnoError(e !== 0 ? e : ECONNREFUSED, 'connect', detail);
    }
    const n = await tcp.op(cpu, TCP_NAMES, id);
    this.local = { addr: n[0] >>> 0, port: n[1] };
    this.connecting = false;
    this.connected = true;
    this.touch();
    this.readyResolve();
    this.emit('connect');
    this.emit('ready');
    if (this.wantRead) this.startReading();
  }

  /** The options connect() takes that must be set before the SYN. */
  private async presetOptions(o: MpConnectOptions): Promise<void> {
    if (o.noDelay) await this.sockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    if (o.congestion !== undefined) await this.sockopt(IPPROTO_TCP, TCP_CONGESTION, congestionIndex(o.congestion));
    if (o.keepAlive) {
      if ((o.keepAliveInitialDelay ?? 0) > 0) await this.sockopt(IPPROTO_TCP, TCP_KEEPIDLE, Math.ceil(o.keepAliveInitialDelay! / 1000));
      await this.sockopt(SOL_SOCKET, SO_KEEPALIVE, 1);
    }
  }

  private async sockopt(level: number, name: number, v: number, v2 = 0): Promise<void> {
    const r = (await this.tcp.op(this.cpu, TCP_SETSOCKOPT, this.id, [level, name, v, v2]))[0];
    if (r < 0) throw new ErrnoError(-r, 'setsockopt');
  }

  // ---- stream.Duplex ----

  override _read(): void {
    this.wantRead = true;
    if (this.connected) this.startReading();
  }

  private startReading(): void {
    if (this.readLoop || this.eof) return;
    this.readLoop = true;
    this.track(this.readMore())
      .catch((e: Error) => this.destroy(e))
      .finally(() => (this.readLoop = false));
  }

  /** onread: pause()/resume() stop and restart the reads into the user's buffer. */
  override pause(): this {
    if (this.onread !== null) this.wantRead = false;
    return super.pause();
  }

  override resume(): this {
    if (this.onread !== null && !this.eof && !this.destroyed) {
      this.wantRead = true;
      if (this.connected) this.startReading();
    }
    return super.resume();
  }

  /** onread: one TCP_READ into the user's buffer and its callback (or a TCP_POLL on EAGAIN); false when the loop should stop. */
  private async readIntoUser(or: OnRead): Promise<boolean> {
    const buf = typeof or.buffer === 'function' ? or.buffer() : or.buffer;
    const n = await this.tcp.readInto(this.cpu, this.id, buf);
    if (this.destroyed) return false;
    if (n === 0) {
      this.eof = true;
      this.push(null);
      this.read(0); // nothing was pushed: let the stream see the end
      return false;
    }
    if (n > 0) {
      this.bytesIn += n;
      this.touch();
      if (or.callback(n, buf) === false) this.wantRead = false;
      return true;
    }
    if (n !== -EAGAIN) throw new ErrnoError(-n, 'read');
    const bits = (await this.tcp.op(this.cpu, TCP_POLL, this.id, [POLLIN]))[0];
    return (bits & POLLNVAL) === 0;
  }

  private async readMore(): Promise<void> {
    while (this.wantRead && !this.destroyed && !this.eof && this.id !== 0) {
      if (this.onread !== null) {
        if (!(await this.readIntoUser(this.onread))) return;
        continue;
      }
      const r = await this.tcp.read(this.cpu, this.id);
      if (this.destroyed) return;
      if (r === null) {
        this.eof = true;
        this.push(null);
        return;
      }
      if (typeof r !== 'number') {
        let more = true;
        for (const b of r) {
          this.bytesIn += b.length;
          more = this.push(b);
        }
        this.touch();
        if (!more) this.wantRead = false;
        continue;
      }
      if (r === -ESHUTDOWN) return; // closed under the kept read, or the CPU stopped
      throw new ErrnoError(-r, 'read');
    }
  }

  /*
   * _write / _writev: hand the bytes to the CPU, pipelined by credit.
   *
   * credit is a lower bound on so_snd's free room: the room the CPU last
   * reported (TCP_WRITE's result 1) less the bytes of the writes sent after
   * that one (the CPU only frees room in between). A write that fits the
   * credit is sent without awaiting its reply (the port's FIFO keeps the
   * order, and it is taken whole since it fits), and the stream's callback
   * runs once it is handed over. At zero credit the socket waits for the
   * replies in flight, then writes and waits (TCP_POLL POLLOUT on EAGAIN),
   * which learns the room again. An error a pipelined reply brings fails
   * the next write, or 'end'. Runs on the user thread; may sleep.
   */
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.track(this.writeAll(chunk)).then(() => cb(), (e: Error) => cb(e));
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    const data = chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.track(this.writeAll(data)).then(() => cb(), (e: Error) => cb(e));
  }

  private async writeAll(chunk: Buffer): Promise<void> {
    await this.ready;
    let off = 0;
    while (off < chunk.length) {
      if (this.writeErr !== null) throw this.writeErr;
      if (this.destroyed || this.id === 0) throw new ErrnoError(ENOTCONN, 'write');
      const len = Math.min(chunk.length - off, TCP_IO_MAX);
      if (this.credit > 0) {
        const n = Math.min(len, this.credit);
        this.sendPiped(chunk, off, n);
        off += n;
        continue;
      }
      await this.writesDone;
      if (this.writeErr !== null) throw this.writeErr;
      if (this.credit > 0 || this.destroyed || this.id === 0) continue;
      const [n, space] = await this.tcp.write(this.cpu, this.id, chunk, off, len);
      if (n > 0) {
        off += n;
        this.bytesOut += n;
        this.credit = space;
        this.touch();
        continue;
      }
      if (n !== -EAGAIN) throw new ErrnoError(n === 0 ? ENOTCONN : -n, 'write');
      const bits = (await this.tcp.op(this.cpu, TCP_POLL, this.id, [POLLOUT]))[0];
      if ((bits & POLLNVAL) !== 0) throw new ErrnoError(ENOTCONN, 'write');
    }
  }

  /** Send chunk[off, off + n) within the credit, not awaiting the reply; the reply renews the credit. */
  private sendPiped(chunk: Buffer, off: number, n: number): void {
    this.credit -= n;
    this.sentBytes += n;
    const end = this.sentBytes;
    const p = this.tcp.write(this.cpu, this.id, chunk, off, n).then(([r, space]) => {
      if (r === n) {
        this.bytesOut += n;
        this.touch();
        // Room now = space less what was sent after this write: a newer lower bound.
        this.credit = Math.max(space - (this.sentBytes - end), 0);
        return;
      }
      this.credit = 0;
      // A write within the credit is taken whole; less means the stream lost bytes.
      this.writeErr ??= new ErrnoError(r < 0 && r !== -EAGAIN ? -r : r === 0 ? ENOTCONN : ENOBUFS, 'write');
    }, (e: Error) => {
      this.credit = 0;
      this.writeErr ??= e;
    });
    this.writesDone = this.track(p);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.track(
      (async () => {
        await this.ready;
        await this.writesDone;
        if (this.writeErr !== null) throw this.writeErr;
        if (this.id === 0) return;
        const r = (await this.tcp.op(this.cpu, TCP_SHUTDOWN, this.id, [SHUT_WR]))[0];
        if (r < 0 && r !== -ENOTCONN) throw new ErrnoError(-r, 'shutdown');
      })(),
    ).then(() => cb(), (e: Error) => cb(e));
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.connecting = false;
    this.wantRead = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const id = this.id;
    this.id = 0;
    this.readyResolve();
    if (id !== 0) this.track(this.tcp.op(this.cpu, TCP_CLOSE, id)).catch(() => {});
    this.updateRef();
    cb(err);
    const hadError = err !== null;
    process.nextTick(() => this.emit('close', hadError));
  }

  /** RST instead of FIN (SO_LINGER {on, 0}), then destroy. */
  resetAndDestroy(): this {
    if (this.id === 0) return this.destroy();
    const id = this.id;
    this.track(this.tcp.op(this.cpu, TCP_SETSOCKOPT, id, [SOL_SOCKET, SO_LINGER, 1, 0]))
      .catch(() => {})
      .finally(() => this.destroy());
    return this;
  }

  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  setNoDelay(noDelay = true): this {
    void this.ready.then(() => (this.id !== 0 ? this.sockopt(IPPROTO_TCP, TCP_NODELAY, noDelay ? 1 : 0) : undefined)).catch(() => {});
    return this;
  }

  /**
   * TCP_CONGESTION on the connection's CPU (as net.Socket's setCongestion):
   * resolves once it switched; an unknown name rejects with ESRCH.
   */
  async setCongestion(name: string): Promise<void> {
    const i = congestionIndex(name);
    await this.ready;
    if (this.id === 0) throw new ErrnoError(ENOTCONN, 'setsockopt');
    await this.sockopt(IPPROTO_TCP, TCP_CONGESTION, i);
  }

  /** The connection's congestion control algorithm (getsockopt TCP_CONGESTION on its CPU). */
  async getCongestion(): Promise<string> {
    await this.ready;
    if (this.id === 0) throw new ErrnoError(ENOTCONN, 'getsockopt');
    const r = await this.tcp.op(this.cpu, TCP_GETSOCKOPT, this.id, [IPPROTO_TCP, TCP_CONGESTION]);
    if (r[0] < 0) throw new ErrnoError(-r[0], 'getsockopt');
    return CC_ALGOS[r[1]].name;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    void this.ready
      .then(async () => {
        if (this.id === 0) return;
        if (enable && initialDelay > 0) await this.sockopt(IPPROTO_TCP, TCP_KEEPIDLE, Math.max(1, Math.ceil(initialDelay / 1000)));
        await this.sockopt(SOL_SOCKET, SO_KEEPALIVE, enable ? 1 : 0);
      })
      .catch(() => {});
    return this;
  }

  /** 'timeout' after ms of no activity (the user thread's timers). */
  setTimeout(ms: number, cb?: () => void): this {
    if (cb) this.once('timeout', cb);
    this.timeoutMs = ms;
    this.touch();
    return this;
  }

  private touch(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.timeoutMs > 0 && !this.destroyed) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.emit('timeout');
      }, this.timeoutMs);
      this.timer.unref();
    }
  }

  ref(): this {
    this.refed = true;
    this.updateRef();
    return this;
  }

  unref(): this {
    this.refed = false;
    this.updateRef();
    return this;
  }

  private updateRef(): void {
    const want = this.refed && this.id !== 0;
    if (want === this.holdsRef) return;
    this.holdsRef = want;
    if (want) this.tcp.ref();
    else this.tcp.unref();
  }

  address(): AddressInfo | Record<string, never> {
    return this.local === null ? {} : { address: ipToString(this.local.addr), family: 'IPv4', port: this.local.port };
  }
  get remoteAddress(): string | undefined {
    return this.connected && this.peer ? ipToString(this.peer.addr) : undefined;
  }
  get remotePort(): number | undefined {
    return this.connected && this.peer ? this.peer.port : undefined;
  }
  get remoteFamily(): 'IPv4' | undefined {
    return this.connected ? 'IPv4' : undefined;
  }
  get localAddress(): string | undefined {
    return this.local === null ? undefined : ipToString(this.local.addr);
  }
  get localPort(): number | undefined {
    return this.local?.port;
  }
  get bytesRead(): number {
    return this.bytesIn;
  }
  get bytesWritten(): number {
    return this.bytesOut;
  }
  get pending(): boolean {
    return !this.connected;
  }
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }
  /** The CPU that owns the connection. */
  get ownerCpu(): number {
    return this.cpu;
  }
}

/** net.connect for a stack on the CPUs. */
export function connect(o: MpConnectOptions, cb?: () => void): MpSocket {
  const s = new MpSocket(MpTcp.of(o.stack), { allowHalfOpen: o.allowHalfOpen, onread: o.onread });
  return s.connect(o, cb);
}

export interface MpServerOptions {
  stack: MpStackLike;
  allowHalfOpen?: boolean;
  /** TCP_CONGESTION on every CPU's listener: the connections it accepts run this algorithm. */
  congestion?: string;
}

/** net.Server for a stack on the CPUs: a listener replica on every CPU, one accept loop each. */
export class MpServer extends EventEmitter {
  private readonly tcp: MpTcp;
  private lids: number[] = [];
  private addr: AddressInfo | null = null;
  private readonly conns = new Set<MpSocket>();
  private closing = false;
  private held = false;
  private pendingOps = new Set<Promise<unknown>>();
  maxConnections = Infinity;

  constructor(
    private readonly opts: MpServerOptions,
    listener?: (s: MpSocket) => void,
  ) {
    super();
    if (opts.congestion !== undefined) congestionIndex(opts.congestion);
    this.tcp = MpTcp.of(opts.stack);
    if (listener) this.on('connection', listener);
  }

  get listening(): boolean {
    return this.lids.length > 0;
  }

  /** listen(port[, host][, backlog][, cb]). */
  listen(port: number, host?: string | (() => void), backlog?: number | (() => void), cb?: () => void): this {
    if (typeof host === 'function') [cb, host] = [host, undefined];
    if (typeof backlog === 'function') [cb, backlog] = [backlog, undefined];
    const p = portOf(port, 'listen');
    if (p === 0) throw new ArgumentError('listen: an MP listener needs an explicit port (every CPU binds the same one)');
    const addr = host === undefined || host === '0.0.0.0' ? 0 : addrOf(host);
    if (cb) this.once('listening', cb);
    const op = this.doListen(p, addr, (backlog as number | undefined) ?? 511).catch((e: Error) => this.emit('error', e));
    this.pendingOps.add(op);
    void op.finally(() => this.pendingOps.delete(op));
    return this;
  }

  private async doListen(port: number, addr: number, backlog: number): Promise<void> {
    const tcp = this.tcp;
    const ids: number[] = [];
    try {
      for (let c = 0; c < tcp.ncpus; c++) {
        const id = (await tcp.op(c, TCP_SOCKET, 0))[0];
        if (id < 0) throw new ErrnoError(-id, 'listen');
        ids.push(id);
        await tcp.op(c, TCP_SETSOCKOPT, id, [SOL_SOCKET, SO_REUSEADDR, 1, 0]);
        if (this.opts.congestion !== undefined) await tcp.op(c, TCP_SETSOCKOPT, id, [IPPROTO_TCP, TCP_CONGESTION, congestionIndex(this.opts.congestion), 0]);
        let e = (await tcp.op(c, TCP_BIND, id, [addr | 0, port]))[0];
        if (e === 0) e = (await tcp.op(c, TCP_LISTEN, id, [backlog]))[0];
        if (e < 0) throw new ErrnoError(-e, 'listen', { address: ipToString(addr), port });
      }
    } catch (err) {
      for (let c = 0; c < ids.length; c++) await tcp.op(c, TCP_CLOSE, ids[c]).catch(() => {});
      throw err;
    }
    this.lids = ids;
    this.addr = { address: ipToString(addr), family: 'IPv4', port };
    this.held = true;
    tcp.ref();
    this.emit('listening');
    for (let c = 0; c < ids.length; c++) {
      const loop = this.acceptLoop(c, ids[c]).catch((e: Error) => this.emit('error', e));
      this.pendingOps.add(loop);
      void loop.finally(() => this.pendingOps.delete(loop));
    }
  }

  private async acceptLoop(cpu: number, lid: number): Promise<void> {
    const tcp = this.tcp;
    while (this.lids[cpu] === lid) {
      const bits = (await tcp.op(cpu, TCP_POLL, lid, [POLLIN]))[0];
      if ((bits & (POLLNVAL | POLLHUP)) !== 0 || this.lids[cpu] !== lid) return;
      for (;;) {
        const r = await tcp.op(cpu, TCP_ACCEPT, lid);
        if (r[0] === -EAGAIN) break;
        if (r[0] < 0) {
          if (this.lids[cpu] !== lid) return;
          continue;
        }
        if (this.conns.size >= this.maxConnections || this.lids[cpu] !== lid) {
          await tcp.op(cpu, TCP_CLOSE, r[0]);
          continue;
        }
        const s = MpSocket.accepted(tcp, cpu, r[0], r, this.opts.allowHalfOpen ?? false);
        s.server = this;
        this.conns.add(s);
        s.once('close', () => {
          this.conns.delete(s);
          this.emitCloseIfDrained();
        });
        this.emit('connection', s);
      }
    }
  }

  address(): AddressInfo | null {
    return this.lids.length > 0 ? this.addr : null;
  }

  /** Stop accepting on every CPU; cb and 'close' once every connection has closed. */
  close(cb?: (err?: Error) => void): this {
    if (cb) this.once('close', () => cb());
    if (this.lids.length > 0) {
      const ids = this.lids;
      this.lids = [];
      this.closing = true;
      const done = Promise.all(ids.map((id, c) => this.tcp.op(c, TCP_CLOSE, id).catch(() => {})));
      this.pendingOps.add(done);
      void done.finally(() => {
        this.pendingOps.delete(done);
        if (this.held) {
          this.held = false;
          this.tcp.unref();
        }
        this.emitCloseIfDrained();
      });
    }
    return this;
  }

  private emitCloseIfDrained(): void {
    if (!this.closing || this.conns.size > 0) return;
    this.closing = false;
    process.nextTick(() => this.emit('close'));
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    const n = this.conns.size;
    process.nextTick(() => cb(null, n));
    return this;
  }

  /** Resolves when no request of the server is in flight (its accept loops ended after close). */
  async settled(): Promise<void> {
    while (this.pendingOps.size > 0) await Promise.allSettled([...this.pendingOps]);
  }
}

/** net.createServer for a stack on the CPUs. */
export function createServer(o: MpServerOptions, listener?: (s: MpSocket) => void): MpServer {
  return new MpServer(o, listener);
}

