/**
 * A UDP socket API in the shape of node:dgram over a slabnet Stack:
 * createSocket(stack, 'udp4', listener), bind, connect, send (Buffers,
 * strings, arrays at the edge), 'message' / 'listening' / 'close' / 'error'
 * events, address(), remoteAddress(), setBroadcast(), setTTL().
 *
 * The socket is the edge between JS objects and arena memory: send() copies
 * the caller's bytes into mbufs once; a received datagram is copied out of
 * its mbufs into a Buffer once and the mbufs are freed at once. Events are
 * emitted asynchronously, as Node does. The socket lives in the thread of
 * its stack; nothing here locks or sleeps.
 */
import { EventEmitter } from 'node:events';
import { ArgumentError } from '../kern/errors.js';
import { msgBytes, parseBindArgs, type MsgInput, type SendCb } from './dgramargs.js';
import { ipToString } from '../wire/ipv4.js';
import type { UdpPcb } from '../netinet/udp_usrreq.js';
import { toAddr, type Stack } from '../netinet/stack.js';
import { EINVAL, EISCONN, ENOBUFS, ENOTCONN, ErrnoError } from '../kern/errno.js';
import { m_copydata } from '../kern/mbuf/ops.js';
import { SO_REUSEADDR, SO_REUSEPORT_LB } from '../kern/socket/sockopt.js';

/** Datagrams one pass of the socket's poll hook emits before yielding the pass. */
const DRAIN_BATCH = 64;

export interface RemoteInfo {
  address: string;
  family: 'IPv4';
  port: number;
  size: number;
}

export interface SocketOptions {
  type: 'udp4';
  /** Receive buffer size in bytes (SO_RCVBUF); default net.inet.udp.recvspace; capped at sb_max_adj as Linux caps at rmem_max. */
  recvBufferSize?: number;
  /** Send buffer size (SO_SNDBUF: the largest datagram); default net.inet.udp.maxdgram. */
  sendBufferSize?: number;
  /** SO_REUSEADDR before bind (Node's option). */
  reuseAddr?: boolean;
  /** SO_REUSEPORT_LB before bind: sockets on one address and port share its datagrams by flow (libuv's reusePort on FreeBSD). */
  reusePort?: boolean;
}

/**
 * A node:dgram socket over a Stack in this thread. Its PCB delivers into the
 * socket record's receive ring (udp_usrreq.ts) and calls the upcall, which
 * only marks the socket readable and kicks the stack's thread; the socket's
 * poll hook then copies the datagrams out and emits them, in the thread's
 * pass and never inside udp_input (a 'message' listener that sends does
 * not re-enter the input path). On a manual clock, td.runUntilIdle()
 * delivers every queued datagram.
 */
export class Socket extends EventEmitter {
  readonly stack: Stack;
  private readonly pcb: UdpPcb;
  private bound = false;
  private closed = false;
  private readable = false;

  constructor(stack: Stack, opts: SocketOptions) {
    super();
    if (opts.type !== 'udp4') throw new ArgumentError(`only udp4 sockets are supported, got ${String(opts.type)}`);
    this.stack = stack;
    this.pcb = stack.udp.attach();
    this.pcb.upcall = this.upcall;
    if (opts.reuseAddr === true) this.pcb.soOptions |= SO_REUSEADDR;
    if (opts.reusePort === true) this.pcb.soOptions |= SO_REUSEPORT_LB;
    if (opts.recvBufferSize !== undefined) this.setRecvBufferSize(Math.min(opts.recvBufferSize, stack.udp.sbs.maxAdj));
    if (opts.sendBufferSize !== undefined) this.setSendBufferSize(opts.sendBufferSize);
    stack.td.addPollHook(this.poll);
  }

  /** SO_RCVBUF (FreeBSD rules: at least 1, at most sb_max_adj, kept as given). Throws ErrnoError EINVAL / ENOBUFS. */
  setRecvBufferSize(size: number): void {
    this.checkOpen('setsockopt');
    if (!Number.isInteger(size) || size < 1) throw new ErrnoError(EINVAL, 'setsockopt', { info: `SO_RCVBUF ${size}` });
    const sbs = this.stack.udp.sbs;
    if (size > sbs.maxAdj || !sbs.sbreserve(this.pcb.rcv, size)) throw new ErrnoError(ENOBUFS, 'setsockopt', { info: `SO_RCVBUF ${size}` });
  }

  getRecvBufferSize(): number {
    return this.stack.udp.sbs.hiwat(this.pcb.rcv);
  }

  /** SO_SNDBUF: for UDP the largest datagram send() accepts (EMSGSIZE above). */
  setSendBufferSize(size: number): void {
    this.checkOpen('setsockopt');
    if (!Number.isInteger(size) || size < 1) throw new ErrnoError(EINVAL, 'setsockopt', { info: `SO_SNDBUF ${size}` });
    if (size > this.stack.udp.sbs.maxAdj) throw new ErrnoError(ENOBUFS, 'setsockopt', { info: `SO_SNDBUF ${size}` });
    this.pcb.sndbuf = size;
  }

  getSendBufferSize(): number {
    return this.pcb.sndbuf;
  }

  /** bind([port][, address][, callback]) or bind({port, address}[, callback]). */
  bind(...args: unknown[]): this {
    const { port, address, cb } = parseBindArgs(args);
    this.checkOpen('bind');
    if (this.bound) throw new ErrnoError(EINVAL, 'bind', { info: 'already bound' });
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ArgumentError(`port must be 0..65535, got ${port}`);
    const laddr = address === '0.0.0.0' ? 0 : toAddr(address);
    const e = this.stack.udp.bind(this.pcb, laddr, port);
    if (e !== 0) {
      const err = new ErrnoError(e, 'bind', { address: ipToString(laddr), port });
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    this.bound = true;
    if (cb) this.once('listening', cb);
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  /** connect(port[, address][, callback]): fix the peer (address defaults to 127.0.0.1 as in Node). */
  connect(port: number, address?: string | (() => void), cb?: () => void): void {
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    this.checkOpen('connect');
    const faddr = toAddr(address ?? '127.0.0.1');
    const e = this.pcb.faddr !== 0 ? EISCONN : this.stack.udp.connect(this.pcb, faddr, port);
    if (e !== 0) {
      const err = new ErrnoError(e, 'connect', { address: ipToString(faddr), port });
      process.nextTick(() => this.emit('error', err));
      return;
    }
    this.bound = true;
    process.nextTick(() => {
      this.emit('connect');
      cb?.();
    });
  }

  disconnect(): void {
    if (this.pcb.faddr === 0) throw new ErrnoError(ENOTCONN, 'disconnect');
    this.stack.udp.disconnect(this.pcb);
  }

  /**
   * send(msg[, offset, length][, port][, address][, callback]). Datagrams
   * larger than the MTU are fragmented by IP; errors go to the callback or
   * an 'error' event.
   */
  send(msg: MsgInput, ...rest: unknown[]): void {
    let cb: SendCb | undefined;
    if (typeof rest[rest.length - 1] === 'function') cb = rest.pop() as SendCb;
    const data = msgBytes(msg);
    let off = 0;
    let len = data.length;
    if (rest.length >= 2 && typeof rest[0] === 'number' && typeof rest[1] === 'number' && (rest.length >= 3 || this.pcb.faddr !== 0)) {
      if (!(msg instanceof Uint8Array)) throw new ArgumentError('send: offset/length need a Uint8Array');
      off = rest.shift() as number;
      len = rest.shift() as number;
      if (off < 0 || len < 0 || off + len > data.length) throw new ArgumentError('send: offset/length outside the buffer');
    }
    const port = rest[0] as number | undefined;
    const address = rest[1] as string | undefined;
    this.checkOpen('send');
    let faddr = 0;
    let fport = 0;
    if (port !== undefined) {
      if (this.pcb.faddr !== 0) throw new ErrnoError(EISCONN, 'send');
      fport = port;
      faddr = toAddr(address ?? '127.0.0.1');
    }
    const e = this.stack.udp.output(this.pcb, data, off, len, faddr, fport);
    this.bound = true;
    const err = e === 0 ? null : new ErrnoError(e, 'send', faddr !== 0 ? { address: ipToString(faddr), port: fport } : {});
    process.nextTick(() => {
      if (cb) cb(err, e === 0 ? len : undefined);
      else if (err) this.emit('error', err);
    });
  }

  address(): { address: string; family: 'IPv4'; port: number } {
    if (!this.bound) throw new ErrnoError(EINVAL, 'getsockname');
    return { address: ipToString(this.pcb.laddr), family: 'IPv4', port: this.pcb.lport };
  }

  remoteAddress(): { address: string; family: 'IPv4'; port: number } {
    if (this.pcb.faddr === 0) throw new ErrnoError(ENOTCONN, 'getpeername');
    return { address: ipToString(this.pcb.faddr), family: 'IPv4', port: this.pcb.fport };
  }

  setBroadcast(flag: boolean): void {
    this.pcb.broadcast = flag;
  }

  setTTL(ttl: number): number {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new ArgumentError(`ttl must be 1..255, got ${ttl}`);
    this.pcb.ttl = ttl;
    return ttl;
  }

  /** Datagrams dropped because the receive buffer was full (this socket's share of udps_fullsock). */
  get drops(): number {
    return this.pcb.drops;
  }

  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  close(cb?: () => void): this {
    if (this.closed) return this;
    this.closed = true;
    this.stack.td.removePollHook(this.poll);
    this.stack.udp.detach(this.pcb);
    if (cb) this.once('close', cb);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  private checkOpen(syscall: string): void {
    if (this.closed) throw new ErrnoError(EINVAL, syscall, { info: 'socket is closed' });
  }

  /** so_upcall from udp_input (inside the pass): mark readable and ask for a pass; nothing else. */
  private readonly upcall = (): void => {
    this.readable = true;
    this.stack.td.kick();
  };

  /**
   * The socket's poll hook: take so_error (emitted as 'error', syscall
   * 'recvmsg'), then copy up to DRAIN_BATCH datagrams out of the arena
   * into Buffers and emit them, freeing each chain at once. Returns the
   * work done (more queued: stays readable for the next pass).
   */
  private readonly poll = (): number => {
    if (!this.readable || this.closed) return 0;
    this.readable = false;
    const udp = this.stack.udp;
    const e = udp.sor.soTakeError(this.pcb.so);
    if (e !== 0) this.emit('error', new ErrnoError(e, 'recvmsg'));
    const mb = this.stack.mb;
    let n = 0;
    for (; n < DRAIN_BATCH && !this.closed; n++) {
      const m = this.pcb.dequeue();
      if (m === 0) break;
      const len = this.pcb.lastLen;
      const buf = Buffer.allocUnsafe(len);
      if (len > 0) m_copydata(mb, m, 0, len, buf);
      mb.m_freem(m);
      const rinfo: RemoteInfo = { address: ipToString(this.pcb.lastAddr), family: 'IPv4', port: this.pcb.lastPort, size: len };
      this.emit('message', buf, rinfo);
    }
    if (n === DRAIN_BATCH) this.readable = true;
    return n + (e !== 0 ? 1 : 0);
  };
}
/** dgram.createSocket for a slabnet stack. */
export function createSocket(stack: Stack, type: 'udp4' | SocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): Socket {
  const s = new Socket(stack, typeof type === 'string' ? { type } : type);
  if (listener) s.on('message', listener);
  return s;
}
