/**
 * iperf3 over TCP: a server that Linux's `iperf3 -c` can test against (both
 * directions: -R makes the server send) and a client for Linux's `iperf3
 * -s`. Written from the protocol's behaviour (esnet iperf3, 3.x), not its
 * code:
 *
 *   control connection (TCP, port 5201 by default): the client sends its
 *   cookie (36 characters + NUL); the server answers with one-byte states.
 *   PARAM_EXCHANGE: the client sends its parameters as JSON (a 4-byte
 *   big-endian length, then the text: tcp, time, parallel, len, reverse ...).
 *   CREATE_STREAMS: the client opens `parallel` data connections to the
 *   same port, each starting with the cookie. TEST_START, TEST_RUNNING: data
 *   flows (client to server, or server to client with reverse) until the
 *   client's clock runs out and it sends TEST_END. The server closes the
 *   data connections and sends EXCHANGE_RESULTS; the client sends its
 *   results JSON (per stream: id, bytes, retransmits, times), the server its
 *   own; DISPLAY_RESULTS; the client answers IPERF_DONE and closes.
 *   Stream ids are 1, 3, 4, 5 ... (iperf3 skips 2; both sides number the same way).
 *   A busy server answers a second client ACCESS_DENIED; a refused
 *   parameter set gets SERVER_ERROR followed by two 32-bit error numbers.
 *
 * Both sides take any node:net-shaped module (lib/net.ts netFor(stack) for
 * slabnet, or node:net itself), so the same code measures slabnet and the
 * kernel. Application code: it runs on the caller's event loop and uses its
 * timers; nothing here is protocol code of the stack.
 */
import { randomInt } from 'node:crypto';

// States (iperf_api.h).
export const TEST_START = 1;
export const TEST_RUNNING = 2;
export const TEST_END = 4;
export const PARAM_EXCHANGE = 9;
export const CREATE_STREAMS = 10;
export const SERVER_TERMINATE = 11;
export const CLIENT_TERMINATE = 12;
export const EXCHANGE_RESULTS = 13;
export const DISPLAY_RESULTS = 14;
export const IPERF_DONE = 16;
export const ACCESS_DENIED = -1;
export const SERVER_ERROR = -2;

/** The cookie: 36 characters of this alphabet and a NUL. */
export const COOKIE_SIZE = 37;
const COOKIE_CHARS = 'abcdefghijklmnopqrstuvwxyz234567';
/** Default block (the `len` parameter) for TCP, and the largest JSON accepted. */
export const DEFAULT_TCP_BLKSIZE = 128 * 1024;
const MAX_JSON = 64 * 1024;
/** iperf3's error number for a parameter it cannot serve (IEUDPBLOCKSIZE-like "unsupported"): we send IEPROTOCOL. */
const IE_PROTOCOL = 3;

/** What this module needs of a socket (lib/net.ts Socket and node:net's Socket both are). */
export interface SocketLike {
  write(b: Uint8Array, cb?: (e?: Error | null) => void): boolean;
  end(): unknown;
  destroy(): unknown;
  on(ev: 'data', fn: (d: Buffer) => void): unknown;
  on(ev: 'end' | 'close' | 'drain' | 'connect', fn: () => void): unknown;
  on(ev: 'error', fn: (e: Error) => void): unknown;
  once(ev: 'drain' | 'connect' | 'close', fn: () => void): unknown;
  once(ev: 'error', fn: (e: Error) => void): unknown;
  removeListener(ev: string, fn: (...a: never[]) => void): unknown;
  setNoDelay?(on?: boolean): unknown;
  /** slabnet's TCP_INFO (retransmitted segments for the results). */
  info?(): { tcpi_snd_rexmitpack?: number } | null;
}

export interface ServerLike {
  listen(port: number, cb: () => void): unknown;
  close(cb?: () => void): unknown;
  on(ev: 'error', fn: (e: Error) => void): unknown;
}

export interface NetLike {
  createServer(listener: (s: never) => void): ServerLike;
  connect(port: number, host: string): SocketLike;
}

/** One stream's figures, as the results JSON carries them. */
export interface StreamResult {
  id: number;
  bytes: number;
  retransmits: number;
  jitter: number;
  errors: number;
  omitted_errors: number;
  packets: number;
  omitted_packets: number;
  start_time: number;
  end_time: number;
}

export interface Results {
  cpu_util_total: number;
  cpu_util_user: number;
  cpu_util_system: number;
  sender_has_retransmits: number;
  congestion_used?: string;
  streams: StreamResult[];
}

/** A finished test, seen from one side. */
export interface TestReport {
  /** The parameters the client sent. */
  params: Record<string, unknown>;
  /** True when this side sent the data. */
  sender: boolean;
  /** This side's results (what it sent to the other) and the other side's. */
  local: Results;
  remote: Results;
  /** Bytes this side moved (sum over streams) and the seconds it measured. */
  bytes: number;
  seconds: number;
}

/** iperf3 failed: a protocol violation, a refusal, or a broken connection. */
export class Iperf3Error extends Error {
  constructor(
    message: string,
    readonly state?: number,
  ) {
    super(message);
    this.name = 'Iperf3Error';
  }
}

/** A fresh cookie (NUL-terminated). */
export function makeCookie(): Buffer {
  const b = Buffer.alloc(COOKIE_SIZE);
  for (let i = 0; i < COOKIE_SIZE - 1; i++) b[i] = COOKIE_CHARS.charCodeAt(randomInt(COOKIE_CHARS.length));
  return b;
}

/** Stream ids as iperf3 assigns them: 1, then 3, 4, 5 ... */
export function streamId(index: number): number {
  return index === 0 ? 1 : index + 2;
}

/**
 * Reads exact byte counts from a socket: the control channel's states,
 * length prefixes and JSON. Data that arrives before it is asked for waits
 * in a queue; end or error fails the pending read.
 */
class Reader {
  private chunks: Buffer[] = [];
  private have = 0;
  private want = 0;
  private waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private failed: Error | null = null;
  private readonly onData = (d: Buffer): void => {
    this.chunks.push(d);
    this.have += d.length;
    this.pump();
  };
  private readonly onEnd = (): void => this.fail(new Iperf3Error('the control connection was closed'));
  private readonly onError = (e: Error): void => this.fail(e);

  constructor(readonly sock: SocketLike) {
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('error', this.onError);
  }

  /** Stop reading (the socket becomes a data stream): returns the bytes that arrived beyond what was read. */
  detach(): number {
    this.sock.removeListener('data', this.onData);
    this.sock.removeListener('end', this.onEnd);
    this.sock.removeListener('error', this.onError);
    const n = this.have;
    this.chunks = [];
    this.have = 0;
    return n;
  }

  /** The next n bytes. */
  read(n: number): Promise<Buffer> {
    if (this.failed !== null) return Promise.reject(this.failed);
    if (this.waiter !== null) return Promise.reject(new Iperf3Error('reader busy'));
    return new Promise((resolve, reject) => {
      this.want = n;
      this.waiter = { resolve, reject };
      this.pump();
    });
  }

  async state(): Promise<number> {
    return (await this.read(1)).readInt8(0);
  }

  /** A length-prefixed JSON object. */
  async json(): Promise<Record<string, unknown>> {
    const n = (await this.read(4)).readUInt32BE(0);
    if (n === 0 || n > MAX_JSON) throw new Iperf3Error(`JSON of ${n} bytes`);
    const v: unknown = JSON.parse((await this.read(n)).toString('utf8'));
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Iperf3Error('JSON is not an object');
    return v as Record<string, unknown>;
  }

  private pump(): void {
    if (this.waiter === null || this.have < this.want) return;
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, this.want);
    const rest = all.subarray(this.want);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.have = rest.length;
    const w = this.waiter;
    this.waiter = null;
    w.resolve(out);
  }

  private fail(e: Error): void {
    if (this.failed !== null) return;
    this.failed = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }
}

function sendState(s: SocketLike, state: number): void {
  const b = Buffer.alloc(1);
  b.writeInt8(state, 0);
  s.write(b);
}

function sendJson(s: SocketLike, v: unknown): void {
  const body = Buffer.from(JSON.stringify(v), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  s.write(len);
  s.write(body);
}

/**
 * One data stream: sends blocks as fast as the socket takes them, or counts
 * what arrives. `bytes` is what this side moved (for a sender: what the
 * socket accepted, as iperf3 counts write()).
 */
class Stream {
  bytes = 0;
  private sending = false;
  private startMs = 0;
  private endMs = 0;

  constructor(
    readonly sock: SocketLike,
    readonly id: number,
    private readonly block: Buffer,
  ) {
    sock.on('error', () => undefined); // the peer closes data connections abruptly at the end
  }

  /** Start counting received data (cookie already consumed; `early` are bytes that came with it). */
  receive(early: number): void {
    this.startMs = performanceNow();
    this.bytes += early;
    this.sock.on('data', (d) => {
      if (this.endMs === 0) this.bytes += d.length;
    });
  }

  /** Start sending blocks until stop(). */
  send(): void {
    this.startMs = performanceNow();
    this.sending = true;
    const pump = (): void => {
      while (this.sending) {
        this.bytes += this.block.length;
        if (!this.sock.write(this.block)) {
          this.sock.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }

  stop(): void {
    this.sending = false;
    if (this.endMs === 0) this.endMs = performanceNow();
  }

  result(sender: boolean): StreamResult {
    const rexmit = sender ? (this.sock.info?.()?.tcpi_snd_rexmitpack ?? 0) : -1;
    return {
      id: this.id,
      bytes: this.bytes,
      retransmits: rexmit,
      jitter: 0,
      errors: 0,
      omitted_errors: 0,
      packets: 0,
      omitted_packets: 0,
      start_time: 0,
      end_time: Math.max(0, (this.endMs || performanceNow()) - this.startMs) / 1000,
    };
  }
}

/** Wall-clock milliseconds for the test's own timing (application code, not the stack's clock). */
function performanceNow(): number {
  const [s, ns] = process.hrtime();
  return s * 1000 + ns / 1e6;
}

function results(streams: Stream[], sender: boolean): Results {
  return {
    cpu_util_total: 0,
    cpu_util_user: 0,
    cpu_util_system: 0,
    sender_has_retransmits: sender ? 1 : -1,
    congestion_used: 'newreno',
    streams: streams.map((s) => s.result(sender)),
  };
}

function asResults(v: Record<string, unknown>): Results {
  if (!Array.isArray(v.streams)) throw new Iperf3Error('results without streams');
  return v as unknown as Results;
}

function report(params: Record<string, unknown>, sender: boolean, streams: Stream[], local: Results, remote: Results): TestReport {
  const bytes = streams.reduce((a, s) => a + s.bytes, 0);
  const seconds = local.streams.reduce((a, s) => Math.max(a, s.end_time), 0);
  return { params, sender, local, remote, bytes, seconds };
}

export interface Iperf3ServerOptions {
  port?: number;
}

/**
 * An iperf3 server on `net` (one test at a time, as iperf3's). `done` gets
 * every finished test; errors of a test (a client that went away) end that
 * test only and go to `failed`.
 */
export class Iperf3Server {
  readonly port: number;
  readonly reports: TestReport[] = [];
  readonly errors: Error[] = [];
  private srv: ServerLike | null = null;
  private session: ServerSession | null = null;
  private readonly waiters: ((r: TestReport) => void)[] = [];

  constructor(
    private readonly net: NetLike,
    o: Iperf3ServerOptions = {},
  ) {
    this.port = o.port ?? 5201;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = this.net.createServer(((s: SocketLike) => this.accept(s)) as (s: never) => void);
      srv.on('error', reject);
      srv.listen(this.port, () => resolve());
      this.srv = srv;
    });
  }

  /** The next test to finish. */
  next(): Promise<TestReport> {
    return new Promise((r) => this.waiters.push(r));
  }

  close(): Promise<void> {
    this.session?.abort();
    const srv = this.srv;
    this.srv = null;
    return new Promise((r) => (srv === null ? r() : srv.close(() => r())));
  }

  /** A new connection: its cookie says whether it is a new control connection or a data stream of the running test. */
  private accept(s: SocketLike): void {
    s.setNoDelay?.(true);
    const rd = new Reader(s);
    rd.read(COOKIE_SIZE).then(
      (cookie) => {
        const cur = this.session;
        if (cur !== null && cur.wantsStream(cookie)) return cur.addStream(s, rd);
        if (cur !== null) {
          sendState(s, ACCESS_DENIED);
          s.end();
          return;
        }
        const sess = new ServerSession(s, rd, cookie);
        this.session = sess;
        sess.run().then(
          (r) => {
            this.session = null;
            this.reports.push(r);
            for (const w of this.waiters.splice(0)) w(r);
          },
          (e: Error) => {
            this.session = null;
            sess.abort();
            this.errors.push(e);
          },
        );
      },
      () => s.destroy(),
    );
  }
}

/** One test on the server: the control state machine and its streams. */
class ServerSession {
  private params: Record<string, unknown> = {};
  private streams: Stream[] = [];
  private expect = 0;
  private streamsReady: (() => void) | null = null;
  private block = Buffer.alloc(0);

  constructor(
    private readonly ctrl: SocketLike,
    private readonly rd: Reader,
    private readonly cookie: Buffer,
  ) {}

  wantsStream(cookie: Buffer): boolean {
    return this.streamsReady !== null && cookie.equals(this.cookie) && this.streams.length < this.expect;
  }

  /** A data connection of this test. */
  addStream(s: SocketLike, rd: Reader): void {
    const st = new Stream(s, streamId(this.streams.length), this.block);
    this.streams.push(st);
    // The reader consumed the cookie; a sender's first data may be queued in it already.
    const early = rd.detach();
    if (this.params.reverse === true) st.send();
    else st.receive(early);
    if (this.streams.length === this.expect) this.streamsReady?.();
  }

  async run(): Promise<TestReport> {
    sendState(this.ctrl, PARAM_EXCHANGE);
    this.params = await this.rd.json();
    const p = this.params;
    const parallel = typeof p.parallel === 'number' ? p.parallel : 1;
    if (p.tcp !== true || p.bidirectional === true || !(parallel >= 1 && parallel <= 128)) {
      sendState(this.ctrl, SERVER_ERROR);
      const e = Buffer.alloc(8);
      e.writeInt32BE(IE_PROTOCOL, 0);
      this.ctrl.write(e);
      this.ctrl.end();
      throw new Iperf3Error(`unsupported parameters ${JSON.stringify(p)} (TCP, one direction, 1..128 streams)`);
    }
    const len = typeof p.len === 'number' && p.len > 0 && p.len <= 1 << 20 ? p.len : DEFAULT_TCP_BLKSIZE;
    this.block = Buffer.alloc(len, 0x5a);
    this.expect = parallel;
    const ready = new Promise<void>((r) => (this.streamsReady = r));
    sendState(this.ctrl, CREATE_STREAMS);
    await ready;
    this.streamsReady = null;
    sendState(this.ctrl, TEST_START);
    sendState(this.ctrl, TEST_RUNNING);
    for (;;) {
      const st = await this.rd.state();
      if (st === TEST_END) break;
      if (st === CLIENT_TERMINATE) throw new Iperf3Error('the client terminated the test', st);
      if (st !== TEST_START) throw new Iperf3Error(`unexpected state ${st} from the client`, st);
    }
    const sender = this.params.reverse === true;
    for (const s of this.streams) s.stop();
    const local = results(this.streams, sender);
    for (const s of this.streams) s.sock.destroy();
    sendState(this.ctrl, EXCHANGE_RESULTS);
    const remote = asResults(await this.rd.json());
    sendJson(this.ctrl, local);
    sendState(this.ctrl, DISPLAY_RESULTS);
    const last = await this.rd.state().catch(() => IPERF_DONE);
    if (last !== IPERF_DONE && last !== CLIENT_TERMINATE) throw new Iperf3Error(`unexpected state ${last} after the results`, last);
    this.ctrl.end();
    return report(this.params, sender, this.streams, local, remote);
  }

  abort(): void {
    for (const s of this.streams) {
      s.stop();
      s.sock.destroy();
    }
    this.ctrl.destroy();
  }
}

export interface Iperf3ClientOptions {
  host: string;
  port?: number;
  /** Seconds of data (iperf3 -t). */
  time?: number;
  /** Server sends (iperf3 -R). */
  reverse?: boolean;
  /** Streams (iperf3 -P). */
  parallel?: number;
  /** Block size (iperf3 -l). */
  len?: number;
  /** Run fn after ms (default setTimeout); returns a cancel. A simulation passes its own clock's. */
  schedule?: (ms: number, fn: () => void) => () => void;
}

function realSchedule(ms: number, fn: () => void): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}

/**
 * Run one test against an iperf3 server. Resolves with this side's report
 * (remote: the server's results); rejects with Iperf3Error on a refusal
 * (ACCESS_DENIED, SERVER_ERROR) or a broken control connection.
 */
export async function iperf3Client(net: NetLike, o: Iperf3ClientOptions): Promise<TestReport> {
  const port = o.port ?? 5201;
  const parallel = o.parallel ?? 1;
  const len = o.len ?? DEFAULT_TCP_BLKSIZE;
  const params: Record<string, unknown> = { tcp: true, omit: 0, time: o.time ?? 10, num: 0, blockcount: 0, parallel, len, pacing_timer: 1000, client_version: '3.12' };
  if (o.reverse) params.reverse = true;
  const cookie = makeCookie();
  const block = Buffer.alloc(len, 0x5a);
  const ctrl = await connected(net.connect(port, o.host));
  ctrl.setNoDelay?.(true);
  const rd = new Reader(ctrl);
  const streams: Stream[] = [];
  let cancel: (() => void) | null = null;
  const schedule = o.schedule ?? realSchedule;
  try {
    ctrl.write(cookie);
    let remote: Results | null = null;
    let local: Results | null = null;
    for (;;) {
      const st = await rd.state();
      if (st === PARAM_EXCHANGE) sendJson(ctrl, params);
      else if (st === CREATE_STREAMS) {
        for (let i = 0; i < parallel; i++) {
          const s = await connected(net.connect(port, o.host));
          s.write(cookie);
          streams.push(new Stream(s, streamId(i), block));
        }
      } else if (st === TEST_START) continue;
      else if (st === TEST_RUNNING) {
        for (const s of streams) (o.reverse ? s.receive(0) : s.send());
        cancel = schedule((o.time ?? 10) * 1000, () => {
          for (const s of streams) s.stop();
          sendState(ctrl, TEST_END);
        });
      } else if (st === EXCHANGE_RESULTS) {
        local = results(streams, !o.reverse);
        sendJson(ctrl, local);
        remote = asResults(await rd.json());
      } else if (st === DISPLAY_RESULTS) {
        sendState(ctrl, IPERF_DONE);
        ctrl.end();
        if (local === null || remote === null) throw new Iperf3Error('DISPLAY_RESULTS before the results', st);
        return report(params, !o.reverse, streams, local, remote);
      } else if (st === ACCESS_DENIED) throw new Iperf3Error('the server is busy (ACCESS_DENIED)', st);
      else if (st === SERVER_ERROR) {
        const e = await rd.read(8).catch(() => Buffer.alloc(8));
        throw new Iperf3Error(`the server refused the test (SERVER_ERROR, i_errno ${e.readInt32BE(0)}, errno ${e.readInt32BE(4)})`, st);
      } else if (st === SERVER_TERMINATE) throw new Iperf3Error('the server terminated the test', st);
      else throw new Iperf3Error(`unexpected state ${st}`, st);
    }
  } finally {
    cancel?.();
    for (const s of streams) {
      s.stop();
      s.sock.destroy();
    }
    ctrl.destroy();
  }
}

/** Resolve when s is connected; reject on its error. */
function connected(s: SocketLike): Promise<SocketLike> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error): void => reject(e);
    s.once('error', onErr);
    s.once('connect', () => {
      s.removeListener('error', onErr as (...a: never[]) => void);
      resolve(s);
    });
  });
}
