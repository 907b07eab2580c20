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
import { M_DATA, M_LEN, M_NEXT, PH_LEN } from '../kern/mbuf/layout.js';
import { ArgumentError } from '../kern/errors.js';
import { msgBytes, parseBindArgs, type MsgInput, type SendCb } from './dgramargs.js';
import { ipToString } from '../wire/ipv4.js';
import type { UdpPcb } from '../netinet/udp_usrreq.js';
import { toAddr, type Stack } from '../netinet/stack.js';
import { EINVAL, EISCONN, ENOTCONN, ErrnoError } from '../kern/errno.js';

export interface RemoteInfo {
  address: string;
  family: 'IPv4';
  port: number;
  size: number;
}

export interface SocketOptions {
  type: 'udp4';
  /** Receive buffer size in bytes (SO_RCVBUF); default the stack's udp recvspace. */
  recvBufferSize?: number;
}

export class Socket extends EventEmitter {
  readonly stack: Stack;
  private readonly pcb: UdpPcb;
  private bound = false;
  private closed = false;

  constructor(stack: Stack, opts: SocketOptions) {
    super();
    if (opts.type !== 'udp4') throw new ArgumentError(`only udp4 sockets are supported, got ${String(opts.type)}`);
    this.stack = stack;
    this.pcb = stack.udp.attach();
    this.pcb.onReadable = () => this.drain();
    this.pcb.onError = (e) => {
      this.pcb.soError = 0;
      this.emit('error', new ErrnoError(e, 'recvmsg'));
    };
    if (opts.recvBufferSize !== undefined) this.setRecvBufferSize(opts.recvBufferSize);
  }

  /** SO_RCVBUF. */
  setRecvBufferSize(size: number): void {
    if (!Number.isInteger(size) || size < 1 || size > 64 << 20) throw new ArgumentError(`recvBufferSize must be 1..64 MiB, got ${size}`);
    this.pcb.recvspace = size;
  }

  getRecvBufferSize(): number {
    return this.pcb.recvspace;
  }

  /** bind([port][, address][, callback]) or bind({port, address}[, callback]). */
  bind(...args: unknown[]): this {
    const { port, address, cb } = parseBindArgs(args);
    this.checkOpen();
    if (this.bound) throw new ErrnoError(EINVAL, 'bind');
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ArgumentError(`port must be 0..65535, got ${port}`);
    const e = this.stack.udp.bind(this.pcb, address === '0.0.0.0' ? 0 : toAddr(address), port);
    if (e !== 0) {
      const err = new ErrnoError(e, 'bind');
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
    this.checkOpen();
    const e = this.stack.udp.connect(this.pcb, toAddr(address ?? '127.0.0.1'), port);
    if (e !== 0) {
      const err = new ErrnoError(e, 'connect');
      process.nextTick(() => (cb ? this.emit('error', err) : this.emit('error', err)));
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
    this.checkOpen();
    let faddr = 0;
    let fport = 0;
    if (port !== undefined) {
      if (this.pcb.faddr !== 0) throw new ErrnoError(EISCONN, 'send');
      fport = port;
      faddr = toAddr(address ?? '127.0.0.1');
    }
    const e = this.stack.udp.output(this.pcb, data, off, len, faddr, fport);
    this.bound = true;
    const err = e === 0 ? null : new ErrnoError(e, 'send');
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

  /** Datagrams dropped because the receive buffer was full. */
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
    this.stack.udp.detach(this.pcb);
    if (cb) this.once('close', cb);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  private checkOpen(): void {
    if (this.closed) throw new ErrnoError(EINVAL, 'socket is closed');
  }

  /** Copy every queued datagram out of the arena into a Buffer and emit it. */
  private drain(): void {
    const mb = this.stack.mb;
    const i32 = mb.i32;
    for (;;) {
      const m = this.pcb.dequeue();
      if (m === 0) return;
      const len = i32[(m + PH_LEN) >> 2];
      const buf = Buffer.allocUnsafe(len);
      let k = 0;
      for (let x = m; x !== 0 && k < len; x = i32[(x + M_NEXT) >> 2]) {
        const n = Math.min(i32[(x + M_LEN) >> 2], len - k);
        const d = i32[(x + M_DATA) >> 2];
        buf.set(mb.u8.subarray(d, d + n), k);
        k += n;
      }
      mb.m_freem(m);
      const rinfo: RemoteInfo = { address: ipToString(this.pcb.lastAddr), family: 'IPv4', port: this.pcb.lastPort, size: len };
      if (!this.closed) this.emit('message', buf, rinfo);
    }
  }
}

/** dgram.createSocket for a slabnet stack. */
export function createSocket(stack: Stack, type: 'udp4' | SocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): Socket {
  const s = new Socket(stack, typeof type === 'string' ? { type } : type);
  if (listener) s.on('message', listener);
  return s;
}
