/**
 * node:net over slabnet TCP: createServer, connect / createConnection,
 * Socket and Server with Node's shapes, on a single-thread Stack (a stack
 * of System.local(), or any Stack on a LocalThread), on the real clock or a
 * manual one.
 *
 *   import { connect, createServer } from './lib/net.js';
 *   const srv = createServer({ stack: b }, (sock) => sock.pipe(sock)).listen(7);
 *   const c = connect({ stack: a, host: '10.0.0.2', port: 7 }, () => c.end('hi'));
 *
 * or, with Node's exact signatures bound to one stack (what http.request's
 * createConnection option and an http.Agent want): `const n = netFor(a);
 * n.connect(7, '10.0.0.2')`.
 *
 * A Socket is a stream.Duplex over one TcpSockets id (tcp_usrreq.ts):
 * - reads are pulled from so_rcv only while the stream wants data (_read);
 *   when push() says the consumer is slow we stop reading, so_rcv fills and
 *   TCP closes the receive window;
 * - writes go into so_snd; a chunk so_snd cannot take waits for POLLOUT and
 *   its callback with it, so write() returns false and 'drain' comes as in
 *   Node (writableLength counts the bytes so_snd has not taken yet);
 * - end() sends FIN (shutdown SHUT_WR) once every write is in so_snd;
 *   allowHalfOpen (default false) keeps the writable side open after the
 *   peer's FIN; destroy() closes the id (graceful FIN), resetAndDestroy()
 *   sends RST (SO_LINGER {on, 0}); 'close' carries hadError.
 *
 * Threading: every call into TCP runs in the stack's thread, which is the
 * caller's (the single-thread system). TCP's wakeups (so.onwakeup) only
 * mark the socket and kick the thread; the socket's work (reading, pending
 * writes, connect completion, accepting) runs from a poll hook on the next
 * pass, never inside tcp_input. User calls kick the thread so that output
 * goes out promptly on the real clock. Idle timeouts (setTimeout) are
 * callouts on the thread's clock, so a manual clock drives them too.
 *
 * Errors are ErrnoErrors (kern/errno.ts) with Node's codes and messages
 * ("connect ECONNREFUSED 10.0.0.2:80"), errno the BSD number, syscall,
 * address and port.
 *
 * Nothing here sleeps or locks. Buffers exist only at this edge: one copy
 * from a caller's chunk into so_snd's mbufs, one copy out of so_rcv per read.
 */
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { ArgumentError } from '../kern/errors.js';
import { EAGAIN, EALREADY, ENOBUFS, EPIPE, ECONNREFUSED, EINPROGRESS, EINVAL, EISCONN, ENOTCONN, ESRCH, ErrnoError } from '../kern/errno.js';
import { ipToString } from '../wire/ipv4.js';
import { toAddr, type Stack } from '../netinet/stack.js';
import type { TcpSockets } from '../netinet/tcp_usrreq.js';
import type { NetThread } from '../kern/lwkt/netthread.js';
import type { Callout } from '../kern/lwkt/callout.js';
import { TCPS_CLOSED, TCPS_ESTABLISHED } from '../netinet/tcp_fsm.js';
import { isMpStack, connect as connectMp, createServer as createServerMp, type MpServer, type MpSocket, type MpStackLike } from './netmp.js';
import {
  IPPROTO_TCP,
  POLLERR,
  POLLOUT,
  SHUT_WR,
  SOL_SOCKET,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_LINGER,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_SNDBUF,
  TCP_CONGESTION,
  TCP_KEEPIDLE,
  TCP_NODELAY,
} from '../netinet/tcp_api.js';
import { ccAlgoByName } from '../netinet/cc/cc_list.js';
import { ZcArena, ZCOPY_EXT_FREE_ID, ZCOPY_PIECE, type ZcWrite } from './zcopy.js';
import { allocAligned } from '../kern/mbuf/copy.js';
import { bytesChain, fileChain, SENDFILE_CHUNK } from './sendfile.js';
import { checkOnRead, type OnRead } from './onread.js';
export type { OnRead } from './onread.js';
import { open as openFile } from 'node:fs/promises';
import { fstat } from 'node:fs';

/** Something that has a Stack: a Stack, or a topology NetStack (its `.stack`). */
export type StackLike = Stack | { readonly stack: Stack };

function stackOf(s: StackLike | undefined, what: string): Stack {
  if (s === undefined || s === null) throw new ArgumentError(`${what}: a slabnet stack is required (option "stack")`);
  if (isMpStack(s)) throw new ArgumentError(`${what}: stack runs on the worker CPUs: use connect({ stack, ... }) / createServer({ stack }) (lib/netmp.ts)`);
  const st = (s as { tcp?: unknown }).tcp !== undefined ? (s as Stack) : (s as { stack: Stack }).stack;
  if (st === undefined || (st as { tcp?: { sockets?: unknown } }).tcp?.sockets == null) throw new ArgumentError(`${what}: not a slabnet stack with TCP`);
  return st;
}

/** Most bytes one 'data' read takes from so_rcv (the largest Buffer it pushes). */
const READ_CHUNK = 64 * 1024;

/** Anything the host's poll hook services: a Socket or a Server. */
interface Endpoint {
  /** Do what TCP's wakeup asked for (runs in a pass of the stack's thread). */
  service(): void;
  /** The stack closed under it (System.stop()): its id is gone; close without calling TCP. */
  abort(): void;
}

/** How often a ref'd host checks that its stack still runs (a stopped system lets the process exit). */
const STACK_CHECK_MS = 500;

/**
 * One stack's user side: owns TcpSockets.onwakeup (a wakeup for an id
 * nobody here owns goes to whoever had the hook before), the set of
 * endpoints to service on the next pass, and the handle that keeps the
 * process alive while a ref'd socket or server exists (the thread's own
 * timers do not).
 */
export class TcpHost {
  private static readonly hosts = new WeakMap<Stack, TcpHost>();
  readonly so: TcpSockets;
  readonly td: NetThread;
  /** What a 'data' read is handed when so_rcv has nothing (it stays unwritten; a zero-length buffer would read as EOF). */
  readonly scratch = Buffer.allocUnsafe(READ_CHUNK);
  /** rcvPending's alignment result (one word, reused). */
  readonly alignWord = new Int32Array(1);
  readonly opt = new Int32Array(2);
  private readonly owners = new Map<number, Endpoint>();
  private dirty = new Set<Endpoint>();
  private hooked = false;
  private refs = 0;
  private keepalive: NodeJS.Timeout | null = null;
  private readonly prev: ((id: number) => void) | null;

  private constructor(readonly stack: Stack) {
    this.so = stack.tcp.sockets!;
    this.td = stack.td;
    this.prev = this.so.onwakeup;
    this.so.onwakeup = (id) => {
      const e = this.owners.get(id);
      if (e === undefined) {
        this.prev?.(id);
        return;
      }
      this.dirty.add(e);
      this.td.kick();
    };
  }

  /** The host of a stack (made at first use). */
  static of(stack: Stack): TcpHost {
    let h = TcpHost.hosts.get(stack);
    if (h === undefined) TcpHost.hosts.set(stack, (h = new TcpHost(stack)));
    return h;
  }

  /** Route id's wakeups to e; the first owner installs the poll hook. */
  own(id: number, e: Endpoint): void {
    this.owners.set(id, e);
    if (!this.hooked) {
      this.hooked = true;
      this.td.addPollHook(this.poll);
    }
  }

  /** Forget id; the last owner removes the poll hook. */
  disown(id: number): void {
    const e = this.owners.get(id);
    this.owners.delete(id);
    if (e !== undefined) this.dirty.delete(e);
    if (this.owners.size === 0 && this.hooked) {
      this.hooked = false;
      this.td.removePollHook(this.poll);
    }
  }

  /** Service e on the next pass (as if TCP had woken it). */
  wake(e: Endpoint): void {
    this.dirty.add(e);
    this.td.kick();
  }

  /** Keep the process alive while count > 0 (Node's ref()). */
  ref(): void {
    if (this.refs++ === 0) this.keepalive = setInterval(this.checkStack, STACK_CHECK_MS);
  }

  /** The stack was closed: every endpoint here lost its id; close them (Node's 'close'). */
  private readonly checkStack = (): void => {
    if (!this.stack.tcp.closed) return;
    const all = [...this.owners.values()];
    this.owners.clear();
    this.dirty.clear();
    if (this.hooked) {
      this.hooked = false;
      this.td.removePollHook(this.poll);
    }
    for (const e of all) e.abort();
  };

  unref(): void {
    if (--this.refs === 0 && this.keepalive !== null) {
      clearInterval(this.keepalive);
      this.keepalive = null;
    }
  }

  /** The poll hook: service every endpoint TCP woke since the last pass. */
  private readonly poll = (): number => {
    if (this.dirty.size === 0) return 0;
    const list = [...this.dirty];
    this.dirty.clear();
    for (const e of list) e.service();
    return list.length;
  };
}

export interface AddressInfo {
  address: string;
  family: 'IPv4';
  port: number;
}

export interface SocketOptions {
  stack?: StackLike;
  /** Keep the writable side open after the peer's FIN (default false, as Node). */
  allowHalfOpen?: boolean;
  /** Stream high-water marks (default Node's 16 KiB). */
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
  /** SO_RCVBUF / SO_SNDBUF of the TCP socket. */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /**
   * Node's onread: data is copied from so_rcv straight into `buffer` (or the
   * buffer the function returns, asked before every read) and callback(nread,
   * buf) is called instead of 'data' events; a callback returning false
   * pauses reading until resume(). 'end' still comes at the peer's FIN.
   */
  onread?: OnRead;
}

/** Socket.sendFile's options (sendfile(2)'s offset, nbytes and sf_hdtr). */
export interface SendFileOptions {
  /** Sent before the file, in the same chain as its first bytes (so in the same first segment). */
  headers?: Uint8Array | readonly Uint8Array[];
  /** Sent after the file. */
  trailers?: Uint8Array | readonly Uint8Array[];
  /** Where in the file to start (default 0). */
  offset?: number;
  /** File bytes to send; default (or 0, as sendfile's nbytes) to the end of the file. */
  length?: number;
}

/** A write() taken by reference (lib/zcopy.ts): its user callback waits for the stream and for the stack's last reference. */
interface ZcRec {
  readonly buf: Uint8Array;
  readonly alloc: NonNullable<ReturnType<ZcArena['lookup']>>;
  readonly userCb: ((e?: Error | null) => void) | null;
  /** so_snd's record of the pieces (made when the chunk reaches _write). */
  w: ZcWrite | null;
  /** Bytes so_snd took by reference. */
  taken: number;
  streamDone: boolean;
  streamErr: Error | null;
  /** Every piece was freed (or none was attached). */
  freed: boolean;
  /** The socket was destroyed before this write completed: its callback gets an error. */
  aborted: boolean;
  completed: boolean;
}

const EMPTY = new Uint8Array(0);

/** One buffer of an iovec (headers / trailers are small: joined once). */
function iovBytes(v: Uint8Array | readonly Uint8Array[] | undefined): Uint8Array {
  if (v === undefined) return EMPTY;
  if (v instanceof Uint8Array) return v;
  return v.length === 1 ? v[0] : Buffer.concat(v as Uint8Array[]);
}

function fstatFd(fd: number): Promise<number> {
  return new Promise((res, rej) => fstat(fd, (e, st) => (e ? rej(e) : res(st.size))));
}

/** Same memory, same length (the stream may hand _write a new Buffer over a Uint8Array's memory). */
function sameView(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || (a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length);
}


export interface ConnectOptions extends SocketOptions {
  port: number | string;
  /** An IPv4 address (or 'localhost'); default 'localhost' (127.0.0.1) as in Node. */
  host?: string;
  localAddress?: string;
  localPort?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** setTimeout(timeout) once created. */
  timeout?: number;
  family?: number;
}

/** Internal: a socket for an id TCP already has (accepted). */
interface Attached {
  host: TcpHost;
  id: number;
}

function hostAddr(host: string | undefined): number {
  if (host === undefined || host === 'localhost' || host === '') return 0x7f000001;
  try {
    return toAddr(host);
  } catch {
    throw new ArgumentError(`slabnet net: host must be an IPv4 address or 'localhost' (no name resolution), got ${JSON.stringify(host)}`);
  }
}

function checkPort(p: unknown, what: string): number {
  const n = typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : p;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new ArgumentError(`${what}: port must be an integer 0..65535, got ${String(p)}`);
  return n;
}

/**
 * A TCP connection as a stream.Duplex (net.Socket's shape). Runs in the
 * stack's thread; see the file comment for reading, writing and closing.
 */
export class Socket extends Duplex {
  private host: TcpHost | null = null;
  private id = 0;
  /** connect() called, the handshake is not done. */
  connecting = false;
  private connected = false;
  /** The stream asked for data (_read) and push() has not said stop. */
  private reading = false;
  private eof = false;
  private pendingWrite: { buf: Uint8Array; off: number; cb: (e?: Error | null) => void; zc: ZcRec | null } | null = null;
  /** Zero-copy writes given to write() whose chunk has not reached _write yet, in order. */
  private readonly zcQueue: ZcRec[] = [];
  /** Zero-copy writes whose callback has not run. */
  private readonly zcLive = new Set<ZcRec>();
  /** A sendFile is running: stream writes issued after it wait behind it. */
  private sfBusy = false;
  /** Chunks given to write() so far, chunks that reached _write, chunks so_snd is done with (sendFile's ordering). */
  private writesIssued = 0;
  private writesStarted = 0;
  private writesDone = 0;
  /** The pending chunk's number (writesStarted when it reached _write). */
  private pendingSeq = 0;
  /** Writes numbered up to this go before the running sendFile. */
  private sfBarrier = 0;
  /** A sendFile waiting for so_snd room (resolved by the next wakeup or destroy). */
  private sfWait: (() => void) | null = null;
  /** Node's onread (null: reads are pushed as 'data'). */
  private readonly onread: OnRead | null;
  private pendingFinal: ((e?: Error | null) => void) | null = null;
  private refed = true;
  private holdsRef = false;
  private timeoutMs = 0;
  private timer: Callout | null = null;
  private lastActive = 0;
  private peer: { addr: number; port: number } | null = null;
  private local: { addr: number; port: number } | null = null;
  private bytesIn = 0;
  private bytesOut = 0;
  private initOpts: SockoptInit = {};
  /** The Server that accepted this socket, if any (Node sets socket.server). */
  server: Server | null = null;

  constructor(opts: SocketOptions = {}) {
    super({
      allowHalfOpen: opts.allowHalfOpen ?? false,
      readableHighWaterMark: opts.readableHighWaterMark,
      writableHighWaterMark: opts.writableHighWaterMark,
      emitClose: false,
      autoDestroy: true,
      decodeStrings: true,
    });
    if (opts.stack !== undefined) this.host = TcpHost.of(stackOf(opts.stack, 'net.Socket'));
    this.onread = checkOnRead(opts.onread);
    // Node starts an onread socket reading at connect (read(0)): it never pushes, so _read is not asked again.
    if (this.onread !== null) this.reading = true;
    this.initOpts.rcv = opts.recvBufferSize;
    this.initOpts.snd = opts.sendBufferSize;
  }

  /** @internal a Socket for a connection a listener accepted (TcpSockets id `id`). */
  static accepted(at: Attached, opts: SocketOptions): Socket {
    const s = new Socket(opts);
    s.attach(at.host, at.id, true);
    return s;
  }

  /** @internal: bind this object to TCP id `id` of `host`. */
  private attach(host: TcpHost, id: number, connected: boolean): void {
    this.host = host;
    this.id = id;
    this.connected = connected;
    host.own(id, this);
    this.updateRef();
    if (connected) this.cacheNames();
    if (this.timeoutMs > 0) this.armTimer();
  }

  private cacheNames(): void {
    const so = this.host!.so;
    this.peer = so.peername(this.id) ?? this.peer;
    this.local = so.sockname(this.id) ?? this.local;
  }

  // ---- connect ----

  /**
   * connect(options[, cb]) | connect(port[, host][, cb]): start the
   * handshake; 'connect' and 'ready' when it completes, 'error' (and
   * 'close' with hadError) when it fails.
   */
  connect(...args: unknown[]): this {
    const { opts, cb } = normalizeConnectArgs(args);
    if (this.id !== 0 || this.connecting) throw new ErrnoError(this.connected ? EISCONN : EALREADY, 'connect');
    if (opts.stack !== undefined) this.host = TcpHost.of(stackOf(opts.stack, 'connect'));
    if (this.host === null) throw new ArgumentError('connect: a slabnet stack is required (option "stack", or a Socket made with one)');
    const port = checkPort(opts.port, 'connect');
    if (port === 0) throw new ArgumentError('connect: port must be 1..65535');
    const addr = hostAddr(opts.host);
    const address = ipToString(addr);
    if (cb) this.once('connect', cb);
    if (opts.timeout !== undefined) this.setTimeout(opts.timeout);
    const host = this.host;
    const so = host.so;
    const id = so.socket();
    if (id < 0) {
      this.failSoon(new ErrnoError(-id, 'socket'));
      return this;
    }
    this.connecting = true;
    this.attach(host, id, false);
    this.applySockopts({ ...this.initOpts, noDelay: opts.noDelay, keepAlive: opts.keepAlive, keepAliveInitialDelay: opts.keepAliveInitialDelay });
    if (opts.localAddress !== undefined || opts.localPort !== undefined) {
      const la = opts.localAddress === undefined ? 0 : hostAddr(opts.localAddress);
      const lp = checkPort(opts.localPort ?? 0, 'connect localPort');
      const e = so.bind(id, la, lp);
      if (e < 0) {
        this.failSoon(new ErrnoError(-e, 'bind', { address: ipToString(la), port: lp }));
        return this;
      }
    }
    const r = so.connect(id, addr, port);
    this.peer = { addr, port };
    if (r !== -EINPROGRESS && r !== 0) {
      this.failSoon(new ErrnoError(-r, 'connect', { address, port }));
      return this;
    }
    host.td.kick();
    return this;
  }

  /** Apply the options a connect or a server gives (before or after the handshake). */
  private applySockopts(o: SockoptInit): void {
    const so = this.host!.so;
    if (o.congestion !== undefined) checkSockopt(so.setsockoptString(this.id, IPPROTO_TCP, TCP_CONGESTION, o.congestion), 'setsockopt');
    if (o.rcv !== undefined) checkSockopt(so.setsockopt(this.id, SOL_SOCKET, SO_RCVBUF, o.rcv), 'setsockopt');
    if (o.snd !== undefined) checkSockopt(so.setsockopt(this.id, SOL_SOCKET, SO_SNDBUF, o.snd), 'setsockopt');
    if (o.noDelay) this.setNoDelay(true);
    if (o.keepAlive) this.setKeepAlive(true, o.keepAliveInitialDelay ?? 0);
  }

  /** Report err asynchronously and destroy (Node's failed connect). */
  private failSoon(err: Error): void {
    this.connecting = false;
    process.nextTick(() => this.destroy(err));
  }

  /** The handshake finished or failed (poll bits moved). */
  private checkConnect(): void {
    const so = this.host!.so;
    const ev = so.poll(this.id);
    const info = so.info(this.id);
    const state = info?.tcpi_state ?? TCPS_CLOSED;
    if ((ev & POLLERR) !== 0 || state === TCPS_CLOSED) {
      const out = this.host!.opt;
      so.getsockopt(this.id, SOL_SOCKET, SO_ERROR, out);
      const e = out[0] !== 0 ? out[0] : ECONNREFUSED;
      this.connecting = false;
      const p = this.peer!;
      this.destroy(new ErrnoError(e, 'connect', { address: ipToString(p.addr), port: p.port }));
      return;
    }
    if (state < TCPS_ESTABLISHED && (ev & POLLOUT) === 0) return;
    this.connecting = false;
    this.connected = true;
    this.cacheNames();
    this.touch();
    this.emit('connect');
    this.emit('ready');
    this.serviceData();
  }

  // ---- the poll hook's work ----

  /** @internal TCP woke this socket: connect completion, data, room, errors. */
  service(): void {
    if (this.id === 0 || this.destroyed) return;
    if (this.connecting) {
      this.checkConnect();
      return;
    }
    if (this.connected) this.serviceData();
  }

  private serviceData(): void {
    if (this.reading) this.pumpRead();
    if (this.sfWait !== null) this.sfWake();
    if (this.pendingWrite !== null && this.id !== 0 && this.mayWrite()) this.tryWrite();
    if (this.pendingFinal !== null && this.pendingWrite === null && this.id !== 0) this.doFinal();
  }

  /**
   * Move data from so_rcv into the stream while it wants more, or, with
   * onread, into the user's buffer (one copy) while its callback does not
   * say stop.
   */
  private pumpRead(): void {
    const host = this.host!;
    const so = host.so;
    const scratch = host.scratch;
    const or = this.onread;
    while (this.reading && this.id !== 0 && !this.eof) {
      const buf = or === null ? this.freshReadBuffer(so, scratch) : typeof or.buffer === 'function' ? or.buffer() : or.buffer;
      const n = so.read(this.id, buf);
      if (n > 0) {
        this.bytesIn += n;
        this.touch();
        if (or !== null) {
          if (or.callback(n, buf) === false) this.reading = false;
        } else if (!this.push(n === buf.length ? buf : buf.subarray(0, n))) this.reading = false; // fresh: bytes came only where rcvPending saw them
        continue;
      }
      if (n === 0) {
        this.eof = true;
        this.reading = false;
        this.push(null);
        // Nothing was pushed, so the stream asks nothing: read(0) lets it see the end ('end').
        if (or !== null) this.read(0);
        return;
      }
      if (n === -EAGAIN) return;
      this.reading = false;
      this.destroy(new ErrnoError(-n, 'read'));
      return;
    }
  }

  /**
   * The Buffer a 'data' read copies so_rcv into: a fresh one of what is
   * buffered (at most READ_CHUNK), not zero-filled, starting at the first
   * byte's alignment modulo 8, so the copy out of the arena moves words and
   * is the only copy. With nothing buffered (EOF, an error, EAGAIN) the
   * scratch buffer, which the read leaves unused.
   */
  private freshReadBuffer(so: TcpSockets, scratch: Buffer): Buffer {
    const align = this.host!.alignWord;
    const cc = so.rcvPending(this.id, align);
    if (cc <= 0) return scratch;
    return allocAligned(Math.min(cc, READ_CHUNK), align[0]);
  }

  /**
   * Give the pending chunk to so_snd (copied, or by reference for a
   * zero-copy write); its stream callback runs when so_snd took all of it.
   */
  private tryWrite(): void {
    const w = this.pendingWrite!;
    const so = this.host!.so;
    while (w.off < w.buf.length) {
      const n = w.zc === null ? so.write(this.id, w.off === 0 ? w.buf : w.buf.subarray(w.off)) : this.writeRef(w.zc, w.buf, w.off);
      if (n > 0) {
        w.off += n;
        this.bytesOut += n;
        continue;
      }
      if (n === -EAGAIN) {
        this.host!.td.kick();
        return;
      }
      this.pendingWrite = null;
      this.endPending(w, new ErrnoError(n === 0 ? EINVAL : -n, 'write'));
      return;
    }
    this.touch();
    this.pendingWrite = null;
    this.host!.td.kick();
    this.endPending(w, null);
  }

  /** so_snd takes buf[off..] by reference (pieces of the user's arena memory). */
  private writeRef(z: ZcRec, buf: Uint8Array, off: number): number {
    const za = ZcArena.of(this.host!.stack.mb);
    if (z.w === null) {
      const w = (z.w = za.newWrite(z.alloc, () => this.zcFreed(z)));
      this.zcAttach = () => za.attached(w);
    }
    const n = this.host!.so.writeExt(this.id, buf.byteOffset + off, buf.length - off, ZCOPY_PIECE, ZCOPY_EXT_FREE_ID, z.w.slot, 0, this.zcAttach);
    if (n > 0) z.taken += n;
    return n;
  }

  /** The onPiece hook of the zero-copy write in progress (one per write, not per piece). */
  private zcAttach: () => void = () => {};

  /** The pending chunk is done with (taken, failed, or the socket destroyed): seal its pieces, run the stream callback. */
  private endPending(w: NonNullable<Socket['pendingWrite']>, err: Error | null): void {
    this.writesDone++;
    const z = w.zc;
    if (z !== null) {
      if (z.w !== null) ZcArena.of(this.host!.stack.mb).sealed(z.w, z.taken);
      else z.freed = true;
    }
    w.cb(err);
  }

  // ---- sendfile (lib/sendfile.ts) ----

  /**
   * sendfile(2): send `length` bytes (default: to the end) of a file (an fd
   * or a path) from `offset`, with optional headers in front (in the same
   * chain as the file's first bytes, so in the same first segment) and
   * trailers after. The file's bytes are read straight into clusters (no JS
   * copy). Resolves with the bytes sent (headers + file + trailers, as
   * sbytes) once so_snd holds all of them; cb(err, sent) too when given.
   * Writes issued meanwhile wait until it is done; writes issued before go
   * first. Backpressure is so_snd's: each chain is at most its room.
   */
  sendFile(file: number | string, opts: SendFileOptions = {}, cb?: (err: Error | null, sent: number) => void): Promise<number> {
    const p = this.doSendFile(file, opts);
    if (cb) p.then((n) => cb(null, n), (e: Error) => cb(e, 0));
    return p;
  }

  private async doSendFile(file: number | string, o: SendFileOptions): Promise<number> {
    if (typeof file !== 'number' && typeof file !== 'string') throw new ArgumentError('sendFile: file must be an fd or a path');
    const offset = o.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) throw new ArgumentError(`sendFile: offset must be an integer >= 0, got ${String(o.offset)}`);
    if (o.length !== undefined && (!Number.isInteger(o.length) || o.length < 0)) throw new ArgumentError(`sendFile: length must be an integer >= 0, got ${String(o.length)}`);
    if (this.writableEnded && !this.destroyed) throw new ErrnoError(EPIPE, 'sendfile');
    if (this.sfBusy) throw new ErrnoError(EALREADY, 'sendfile');
    // Synchronously, before any await: writes issued from now on wait behind the file.
    this.sfBusy = true;
    this.sfBarrier = this.writesIssued;
    let fh: Awaited<ReturnType<typeof openFile>> | null = null;
    try {
      fh = typeof file === 'string' ? await openFile(file, 'r') : null;
      const fd = fh !== null ? fh.fd : (file as number);
      const size = o.length !== undefined && o.length > 0 ? o.length : Math.max(0, (fh !== null ? (await fh.stat()).size : (await fstatFd(fd))) - offset);
      await this.sfWaitConnected();
      // Writes issued before go first: wait until the stream has handed them all to so_snd.
      while (this.writesDone < this.sfBarrier) await this.sfRoomOrWake(true);
      let sent = 0;
      let hdr = iovBytes(o.headers);
      let pos = offset;
      let left = size;
      const mb = this.host!.stack.mb;
      while (hdr.length > 0 || left > 0) {
        const space = await this.sfRoomOrWake(false);
        const want = Math.min(left, Math.max(0, space - hdr.length), SENDFILE_CHUNK);
        const c = await fileChain(mb, hdr, fd, pos, want);
        if (c.len < 0) throw new ErrnoError(ENOBUFS, 'sendfile');
        if (c.m !== 0) {
          const r = this.id === 0 ? -ENOTCONN : this.host!.so.writeChain(this.id, c.m, c.len);
          if (this.id === 0) mb.m_freem(c.m);
          if (r < 0) throw new ErrnoError(-r, 'sendfile');
          this.host!.td.kick();
        }
        sent += c.len;
        this.bytesOut += c.len;
        pos += c.fileBytes;
        left -= c.fileBytes;
        hdr = EMPTY;
        if (c.fileBytes < want) break; // end of file before `length`
      }
      const trl = iovBytes(o.trailers);
      if (trl.length > 0) {
        await this.sfRoomOrWake(false);
        const m = bytesChain(mb, [trl]);
        if (m === 0) throw new ErrnoError(ENOBUFS, 'sendfile');
        const r = this.id === 0 ? -ENOTCONN : this.host!.so.writeChain(this.id, m, trl.length);
        if (this.id === 0) mb.m_freem(m);
        if (r < 0) throw new ErrnoError(-r, 'sendfile');
        sent += trl.length;
        this.bytesOut += trl.length;
        this.host!.td.kick();
      }
      this.touch();
      return sent;
    } finally {
      this.sfBusy = false;
      if (fh !== null) await fh.close();
      if (this.pendingWrite !== null && this.host !== null && this.id !== 0) this.host.wake(this);
    }
  }

  /** Wait for the handshake (a sendFile right after connect()). */
  private async sfWaitConnected(): Promise<void> {
    if (this.destroyed || this.host === null) throw new ErrnoError(ENOTCONN, 'sendfile');
    if (this.connecting) await new Promise<void>((res, rej) => {
      this.once('connect', res);
      this.once('close', () => rej(new ErrnoError(ENOTCONN, 'sendfile')));
    });
  }

  /**
   * Wait for so_snd room (returns it) or, with `turn`, just for the next
   * wakeup or event-loop turn (prior stream writes progress there).
   * Throws ENOTCONN when the socket is destroyed meanwhile.
   */
  private async sfRoomOrWake(turn: boolean): Promise<number> {
    for (;;) {
      if (this.destroyed || this.id === 0) throw new ErrnoError(ENOTCONN, 'sendfile');
      if (turn) {
        await new Promise<void>((r) => setImmediate(r));
        return 0;
      }
      const space = this.host!.so.sendSpace(this.id);
      if (space < 0) throw new ErrnoError(-space, 'sendfile');
      if (space > 0) return space;
      await new Promise<void>((r) => (this.sfWait = r));
    }
  }

  private sfWake(): void {
    const f = this.sfWait!;
    this.sfWait = null;
    f();
  }

  // ---- zero-copy writes (lib/zcopy.ts) ----

  /**
   * write(chunk[, encoding][, cb]): Node's, except that a chunk of arena
   * memory (allocBuffer) at least kern.ipc.zero_copy.send_min long is sent
   * by reference, and its callback runs when the stack has freed every mbuf
   * that references it (with an error when the socket was destroyed first).
   * The caller must not modify the chunk until then.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | ((e?: Error | null) => void), cb?: (e?: Error | null) => void): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    this.writesIssued++;
    const alloc = this.zcEligible(chunk);
    if (alloc === null) return encoding === undefined ? super.write(chunk, cb) : super.write(chunk, encoding, cb);
    const rec: ZcRec = { buf: chunk as Uint8Array, alloc, userCb: cb ?? null, w: null, taken: 0, streamDone: false, streamErr: null, freed: false, aborted: false, completed: false };
    this.zcQueue.push(rec);
    this.zcLive.add(rec);
    return super.write(chunk, (e) => this.zcStreamDone(rec, e ?? null));
  }

  /** end([chunk][, encoding][, cb]): the chunk goes through write() (so it may go by reference and keeps sendFile's order). */
  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    if (typeof chunk === 'function') return super.end(chunk as () => void);
    if (chunk !== undefined && chunk !== null) {
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      if (typeof encoding === 'string') this.write(chunk, encoding as BufferEncoding);
      else this.write(chunk);
    }
    return cb === undefined ? super.end() : super.end(cb as () => void);
  }

  /** The pending chunk may go to so_snd now (no sendFile, or it was written before the sendFile started). */
  private mayWrite(): boolean {
    return !this.sfBusy || this.pendingSeq <= this.sfBarrier;
  }

  /** The arena allocation holding chunk when a write of it goes by reference, else null. */
  private zcEligible(chunk: unknown): ZcRec['alloc'] | null {
    if (this.host === null || !(chunk instanceof Uint8Array)) return null;
    const cfg = this.host.stack.tcp.cfg;
    if (cfg.zero_copy_send === 0 || chunk.length < cfg.zero_copy_send_min) return null;
    return ZcArena.of(this.host.stack.mb).lookup(chunk);
  }

  /** The stream is done with a zero-copy chunk (so_snd took it, or it failed / never reached _write). */
  private zcStreamDone(z: ZcRec, err: Error | null): void {
    z.streamDone = true;
    z.streamErr = err;
    const i = this.zcQueue.indexOf(z);
    if (i >= 0) {
      this.zcQueue.splice(i, 1);
      z.freed = true; // never reached _write: nothing references it
    }
    if (z.freed) this.zcComplete(z);
  }

  /** Every piece of a zero-copy write was freed by the stack. */
  private zcFreed(z: ZcRec): void {
    z.freed = true;
    if (z.streamDone) this.zcComplete(z);
  }

  private zcComplete(z: ZcRec): void {
    if (z.completed) return;
    z.completed = true;
    this.zcLive.delete(z);
    const err = z.streamErr ?? (z.aborted ? new ErrnoError(ENOTCONN, 'write') : null);
    z.userCb?.(err);
  }

  private doFinal(): void {
    const cb = this.pendingFinal!;
    this.pendingFinal = null;
    const e = this.host!.so.shutdown(this.id, SHUT_WR);
    this.host!.td.kick();
    cb(e < 0 && e !== -ENOTCONN ? new ErrnoError(-e, 'shutdown') : null);
  }

  // ---- stream.Duplex implementation ----

  override _read(): void {
    this.reading = true;
    if (this.connected && this.id !== 0) {
      this.pumpRead();
      this.host!.td.kick();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const head = this.zcQueue[0];
    const zc = head !== undefined && sameView(head.buf, chunk) ? this.zcQueue.shift()! : null;
    const w = (this.pendingWrite = { buf: chunk, off: 0, cb, zc });
    this.pendingSeq = ++this.writesStarted;
    if (this.connected && this.id !== 0) {
      if (this.mayWrite()) this.tryWrite();
    }
    else if (!this.connecting && this.id === 0) {
      this.pendingWrite = null;
      this.endPending(w, new ErrnoError(ENOTCONN, 'write'));
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.pendingFinal = cb;
    if (this.connected && this.id !== 0) this.doFinal();
    else if (!this.connecting) {
      this.pendingFinal = null;
      cb();
    }
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.connecting = false;
    this.reading = false;
    this.timer?.stop();
    if (this.host !== null && this.id !== 0) {
      const host = this.host;
      host.disown(this.id);
      host.so.close(this.id);
      host.td.kick();
      this.id = 0;
    }
    this.updateRef();
    const w = this.pendingWrite;
    this.pendingWrite = null;
    const f = this.pendingFinal;
    this.pendingFinal = null;
    // Zero-copy writes still referenced by the stack report the destroy when it frees them.
    for (const z of this.zcLive) z.aborted = true;
    if (this.sfWait !== null) this.sfWake();
    cb(err);
    const hadError = err !== null;
    if (w !== null) this.endPending(w, err ?? new ErrnoError(ENOTCONN, 'write'));
    if (f !== null) f(err ?? null);
    process.nextTick(() => this.emit('close', hadError));
  }

  /** Node's pause(); with onread it stops reading into the buffer (as a callback returning false does). */
  override pause(): this {
    if (this.onread !== null) this.reading = false;
    return super.pause();
  }

  /** Node's resume(); with onread it starts reading into the buffer again. */
  override resume(): this {
    if (this.onread !== null && !this.eof && !this.destroyed) {
      this.reading = true;
      if (this.connected && this.id !== 0) this.host!.wake(this);
    }
    return super.resume();
  }

  /** @internal the stack closed: the id is gone already (closes without an error: nobody has to listen for one). */
  abort(): void {
    this.id = 0;
    this.destroy();
  }

  /** Send RST instead of FIN (SO_LINGER {on, 0}), then destroy. */
  resetAndDestroy(): this {
    if (this.host !== null && this.id !== 0) this.host.so.setsockopt(this.id, SOL_SOCKET, SO_LINGER, 1, 0);
    this.destroy();
    return this;
  }

  /** end(), then destroy once everything is written (Node's destroySoon). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  // ---- options ----

  setNoDelay(noDelay = true): this {
    if (this.host !== null && this.id !== 0) this.host.so.setsockopt(this.id, IPPROTO_TCP, TCP_NODELAY, noDelay ? 1 : 0);
    else this.initOpts.noDelay = noDelay;
    return this;
  }

  /**
   * TCP_CONGESTION: run this connection's congestion control with the named
   * algorithm ("newreno", "cubic": net.inet.tcp.cc.available); it continues
   * from its current window. Before the socket has a connection the name is
   * kept and applied when it gets one. An unknown name throws ErrnoError
   * ESRCH (FreeBSD's errno for it).
   */
  setCongestion(name: string): this {
    if (typeof name !== 'string' || ccAlgoByName(name) === null) throw new ErrnoError(ESRCH, 'setsockopt', { info: `TCP_CONGESTION: no algorithm '${String(name)}'` });
    if (this.host !== null && this.id !== 0) checkSockopt(this.host.so.setsockoptString(this.id, IPPROTO_TCP, TCP_CONGESTION, name), 'setsockopt');
    else this.initOpts.congestion = name;
    return this;
  }

  /**
   * The connection's congestion control algorithm (getsockopt TCP_CONGESTION);
   * before it has one, the name setCongestion kept, or undefined (the stack's
   * net.inet.tcp.cc.algorithm will apply).
   */
  get congestion(): string | undefined {
    if (this.host === null || this.id === 0) return this.initOpts.congestion;
    const r = this.host.so.getsockoptString(this.id, IPPROTO_TCP, TCP_CONGESTION);
    return typeof r === 'string' ? r : this.initOpts.congestion;
  }

  /** SO_KEEPALIVE, and TCP_KEEPIDLE = initialDelay (ms, rounded up to seconds) when > 0. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    if (this.host === null || this.id === 0) {
      this.initOpts.keepAlive = enable;
      this.initOpts.keepAliveInitialDelay = initialDelay;
      return this;
    }
    const so = this.host.so;
    if (enable && initialDelay > 0) so.setsockopt(this.id, IPPROTO_TCP, TCP_KEEPIDLE, Math.max(1, Math.ceil(initialDelay / 1000)));
    so.setsockopt(this.id, SOL_SOCKET, SO_KEEPALIVE, enable ? 1 : 0);
    return this;
  }

  /** Emit 'timeout' after `ms` of no activity (0 disables), on the stack's clock. */
  setTimeout(ms: number, cb?: () => void): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new ArgumentError(`setTimeout: ms must be a finite number >= 0, got ${String(ms)}`);
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    this.timeoutMs = ms;
    if (ms === 0) this.timer?.stop();
    else if (this.host !== null) {
      this.touch();
      this.armTimer();
    }
    return this;
  }

  /** The idle timeout Node reports (0 when none). */
  get timeout(): number | undefined {
    return this.timeoutMs === 0 ? undefined : this.timeoutMs;
  }

  private touch(): void {
    if (this.host !== null) this.lastActive = this.host.td.clock.now();
  }

  private armTimer(): void {
    const td = this.host!.td;
    if (this.timer === null) this.timer = td.callouts.callout();
    const left = this.lastActive + this.timeoutMs - td.clock.now();
    this.timer.reset(Math.max(1, Math.ceil(left / td.callouts.tickMs)), this.onTimer);
  }

  private readonly onTimer = (): void => {
    if (this.timeoutMs === 0 || this.destroyed) return;
    const now = this.host!.td.clock.now();
    if (now - this.lastActive + 1e-9 >= this.timeoutMs) {
      this.lastActive = now;
      this.armTimer();
      this.emit('timeout');
    } else this.armTimer();
  };

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
    const want = this.refed && this.host !== null && this.id !== 0;
    if (want === this.holdsRef) return;
    this.holdsRef = want;
    if (want) this.host!.ref();
    else this.host!.unref();
  }

  // ---- names and counters ----

  address(): AddressInfo | Record<string, never> {
    if (this.host !== null && this.id !== 0) this.local = this.host.so.sockname(this.id) ?? this.local;
    const l = this.local;
    return l === null ? {} : { address: ipToString(l.addr), family: 'IPv4', port: l.port };
  }

  get remoteAddress(): string | undefined {
    return this.connected && this.peer !== null ? ipToString(this.peer.addr) : undefined;
  }

  get remotePort(): number | undefined {
    return this.connected && this.peer !== null ? this.peer.port : undefined;
  }

  get remoteFamily(): 'IPv4' | undefined {
    return this.connected && this.peer !== null ? 'IPv4' : undefined;
  }

  get localAddress(): string | undefined {
    const a = this.address();
    return 'address' in a ? a.address : undefined;
  }

  get localPort(): number | undefined {
    const a = this.address();
    return 'port' in a ? a.port : undefined;
  }

  get localFamily(): 'IPv4' | undefined {
    return this.local === null ? undefined : 'IPv4';
  }

  /** Bytes received (read out of so_rcv). */
  get bytesRead(): number {
    return this.bytesIn;
  }

  /** Bytes so_snd has taken, plus those still waiting in the stream (Node counts both). */
  get bytesWritten(): number {
    // writableLength counts the chunk in _write whole, of which so_snd has taken `off`.
    return this.bytesOut + this.writableLength - (this.pendingWrite?.off ?? 0);
  }

  get pending(): boolean {
    return this.id === 0 || this.connecting;
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The TcpSockets id (0 when closed): for TCP_INFO and the tools. */
  get fd(): number {
    return this.id;
  }

  /** TCP_INFO of the connection (null when closed). */
  info(): ReturnType<TcpSockets['info']> {
    return this.host !== null && this.id !== 0 ? this.host.so.info(this.id) : null;
  }
}

/** Socket options kept until the socket has a connection. */
interface SockoptInit {
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  rcv?: number;
  snd?: number;
  congestion?: string;
}

function checkSockopt(r: number, syscall: string): void {
  if (r < 0) throw new ErrnoError(-r, syscall);
}

/** net.connect's argument forms: (options[, cb]), (port[, host][, cb]). */
function normalizeConnectArgs(args: unknown[]): { opts: ConnectOptions; cb?: () => void } {
  let cb: (() => void) | undefined;
  if (typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
  if (args[0] !== null && typeof args[0] === 'object') return { opts: args[0] as ConnectOptions, cb };
  if (typeof args[0] === 'string' && !/^\d+$/.test(args[0])) throw new ArgumentError('connect: Unix-domain paths are not supported');
  return { opts: { port: args[0] as number, host: args[1] as string | undefined }, cb };
}

/**
 * net.connect / net.createConnection: options must name the stack. A stack
 * of an MP system (System.start({ cpus })) gives an MpSocket (lib/netmp.ts),
 * the same shape towards TCP on the CPUs.
 */
export function connect(options: ConnectOptions, cb?: () => void): Socket;
export function connect(options: Omit<ConnectOptions, 'stack'> & { stack: MpStackLike }, cb?: () => void): MpSocket;
export function connect(options: ConnectOptions | (Omit<ConnectOptions, 'stack'> & { stack: MpStackLike }), cb?: () => void): Socket | MpSocket {
  if (isMpStack(options.stack)) return connectMp(options as Parameters<typeof connectMp>[0], cb);
  const o = options as ConnectOptions;
  const s = new Socket(o);
  return s.connect(o, ...(cb ? [cb] : []));
}

export const createConnection = connect;

export interface ServerOptions {
  stack?: StackLike;
  allowHalfOpen?: boolean;
  /** Accepted sockets start paused (no reading until resume()). */
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

export interface ListenOptions {
  port?: number;
  host?: string;
  backlog?: number;
  stack?: StackLike;
}

/**
 * net.Server: listen() binds a TcpSockets listener; each completed
 * connection becomes a Socket emitted as 'connection'. close() stops
 * accepting at once and emits 'close' when the last connection has closed.
 */
export class Server extends EventEmitter implements Endpoint {
  private host: TcpHost | null;
  private lid = 0;
  private readonly conns = new Set<Socket>();
  private closing = false;
  private refed = true;
  private holdsRef = false;
  private readonly opts: ServerOptions;
  /** Refuse (close at once) connections beyond this many (Node's maxConnections). */
  maxConnections = Infinity;

  constructor(opts: ServerOptions = {}, listener?: (s: Socket) => void) {
    super();
    this.opts = opts;
    this.host = opts.stack === undefined ? null : TcpHost.of(stackOf(opts.stack, 'net.Server'));
    if (listener) this.on('connection', listener);
  }

  get listening(): boolean {
    return this.lid !== 0;
  }

  /** listen(port[, host][, backlog][, cb]) | listen(options[, cb]). */
  listen(...args: unknown[]): this {
    let cb: (() => void) | undefined;
    if (typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
    let o: ListenOptions;
    if (args[0] !== null && typeof args[0] === 'object') o = args[0] as ListenOptions;
    else {
      o = { port: args[0] === undefined ? 0 : checkPort(args[0], 'listen') };
      if (typeof args[1] === 'string') {
        o.host = args[1];
        if (typeof args[2] === 'number') o.backlog = args[2];
      } else if (typeof args[1] === 'number') o.backlog = args[1];
    }
    if (o.stack !== undefined) this.host = TcpHost.of(stackOf(o.stack, 'listen'));
    if (this.host === null) throw new ArgumentError('listen: a slabnet stack is required (createServer({ stack }) or listen({ stack, port }))');
    if (this.lid !== 0) throw Object.assign(new Error('Listen method has been called more than once without closing.'), { code: 'ERR_SERVER_ALREADY_LISTEN' });
    const port = checkPort(o.port ?? 0, 'listen');
    const addr = o.host === undefined || o.host === '0.0.0.0' || o.host === '::' ? 0 : hostAddr(o.host);
    if (cb) this.once('listening', cb);
    const so = this.host.so;
    const id = so.socket();
    if (id < 0) {
      process.nextTick(() => this.emit('error', new ErrnoError(-id, 'listen')));
      return this;
    }
    so.setsockopt(id, SOL_SOCKET, SO_REUSEADDR, 1);
    let e = so.bind(id, addr, port);
    if (e === 0) e = so.listen(id, o.backlog ?? 511);
    if (e < 0) {
      so.close(id);
      process.nextTick(() => this.emit('error', new ErrnoError(-e, 'listen', { address: ipToString(addr), port })));
      return this;
    }
    this.lid = id;
    this.closing = false;
    this.host.own(id, this);
    this.updateRef();
    process.nextTick(() => {
      if (this.lid === id) this.emit('listening');
    });
    return this;
  }

  /** @internal accept every completed connection. */
  service(): void {
    const host = this.host!;
    const so = host.so;
    while (this.lid !== 0) {
      const id = so.accept(this.lid);
      if (id === -EAGAIN) return;
      if (id < 0) continue;
      if (this.conns.size >= this.maxConnections) {
        const l = so.sockname(id);
        const r = so.peername(id);
        so.close(id);
        host.td.kick();
        this.emit('drop', {
          localAddress: l && ipToString(l.addr),
          localPort: l?.port,
          localFamily: 'IPv4',
          remoteAddress: r && ipToString(r.addr),
          remotePort: r?.port,
          remoteFamily: 'IPv4',
        });
        continue;
      }
      const sock = Socket.accepted({ host, id }, { allowHalfOpen: this.opts.allowHalfOpen ?? false });
      sock.server = this;
      if (this.opts.noDelay) sock.setNoDelay(true);
      if (this.opts.keepAlive) sock.setKeepAlive(true, this.opts.keepAliveInitialDelay ?? 0);
      this.conns.add(sock);
      sock.once('close', () => {
        this.conns.delete(sock);
        this.emitCloseIfDrained();
      });
      if (this.opts.pauseOnConnect) sock.pause();
      this.emit('connection', sock);
    }
  }

  /** @internal the stack closed: the listener is gone. */
  abort(): void {
    if (this.lid === 0) return;
    this.lid = 0;
    this.closing = true;
    this.updateRef();
    this.emitCloseIfDrained();
  }

  address(): AddressInfo | null {
    if (this.lid === 0) return null;
    const n = this.host!.so.sockname(this.lid)!;
    return { address: ipToString(n.addr), family: 'IPv4', port: n.port };
  }

  /** Stop accepting; cb and 'close' once every connection has closed. */
  close(cb?: (err?: Error) => void): this {
    if (cb) {
      if (this.lid === 0 && !this.closing) {
        process.nextTick(() => cb(Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' })));
        return this;
      }
      this.once('close', () => cb());
    }
    if (this.lid !== 0) {
      const host = this.host!;
      host.disown(this.lid);
      host.so.close(this.lid);
      host.td.kick();
      this.lid = 0;
      this.closing = true;
      this.updateRef();
      this.emitCloseIfDrained();
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
    const want = this.refed && this.lid !== 0;
    if (want === this.holdsRef) return;
    this.holdsRef = want;
    if (want) this.host!.ref();
    else this.host!.unref();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.lid === 0) return;
    await new Promise<void>((r) => this.close(() => r()));
  }
}

/**
 * net.createServer([options][, connectionListener]); options.stack (or
 * listen({ stack })) names the stack; an MP system's stack gives an MpServer
 * (a listener on every CPU).
 */
export function createServer(options?: ServerOptions | ((s: Socket) => void), listener?: (s: Socket) => void): Server;
export function createServer(options: Omit<ServerOptions, 'stack'> & { stack: MpStackLike }, listener?: (s: MpSocket) => void): MpServer;
export function createServer(options?: ServerOptions | (Omit<ServerOptions, 'stack'> & { stack: MpStackLike }) | ((s: Socket) => void), listener?: ((s: Socket) => void) | ((s: MpSocket) => void)): Server | MpServer {
  if (typeof options === 'function') return new Server({}, options);
  if (options !== undefined && isMpStack(options.stack)) return createServerMp(options as Parameters<typeof createServerMp>[0], listener as (s: MpSocket) => void);
  return new Server((options as ServerOptions) ?? {}, listener as (s: Socket) => void);
}

/** The node:net-shaped functions of one stack (Node's exact signatures; no stack option needed). */
export interface BoundNet {
  readonly stack: Stack;
  connect(...args: unknown[]): Socket;
  createConnection(...args: unknown[]): Socket;
  createServer(options?: ServerOptions | ((s: Socket) => void), listener?: (s: Socket) => void): Server;
  Socket: new (opts?: SocketOptions) => Socket;
}

/** net-shaped functions bound to `stack`: `netFor(st).connect(80, '10.0.0.2', cb)`. */
export function netFor(s: StackLike): BoundNet {
  const stack = stackOf(s, 'netFor');
  const connectBound = (...args: unknown[]): Socket => {
    const { opts, cb } = normalizeConnectArgs(args);
    const o = { ...opts, stack };
    return new Socket(o).connect(o, ...(cb ? [cb] : []));
  };
  class BoundSocket extends Socket {
    constructor(opts: SocketOptions = {}) {
      super({ ...opts, stack: opts.stack ?? stack });
    }
  }
  return {
    stack,
    connect: connectBound,
    createConnection: connectBound,
    createServer(options, listener) {
      if (typeof options === 'function') return new Server({ stack }, options);
      return new Server({ ...options, stack: options?.stack ?? stack }, listener);
    },
    Socket: BoundSocket,
  };
}

