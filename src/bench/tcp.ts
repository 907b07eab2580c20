/**
 * The `tcp` benchmark suite, each case against its baseline in the same run
 * (conventions: ../shared/BENCHMARKS.md):
 *
 *  - bulk transfer between two slabnet stacks over the in-memory link (MTU
 *    65535, as loopback), Gbit/s of payload, vs Node's `net` over the
 *    kernel's 127.0.0.1 moving the same 64 KiB chunks:
 *      * through lib/net.ts (node:net-shaped Duplex streams, the real clock,
 *        passes scheduled on the event loop: what an application sees);
 *      * through the socket calls (TcpSockets write/read) in a tight loop
 *        that runs the stacks' thread passes itself, on the real clock (timers
 *        fire at their real time): the stack without streams or event loop.
 *      * through lib/netmp.ts streams with TCP on the worker CPUs (tcpmp.ts);
 *  - HTTP/1.1 keep-alive requests/s (also on the worker CPUs, tcpmp.ts): Node's http.Server on a slabnet listener
 *    (serveHttp) and an http.Agent whose sockets are slabnet connections
 *    (HttpAgent), vs the same server and agent on kernel loopback.
 *  - connection setup + close per second (connect, the server ends at once,
 *    the client ends on EOF; 16 in flight), lib/net.ts vs Node's net.
 *  - over a TAP against real Linux programs (tcptap.ts): iperf3 both ways vs
 *    iperf3 over a veth pair, wrk against http.Server vs the same on the
 *    kernel (skipped, with the reason, without root or the tools);
 *  - goodput under 1% random loss, 10 ms RTT, 100 Mbit/s (goodput.ts, the
 *    manual clock: virtual time, exact), CUBIC and NewReno, against the
 *    Mathis bound of the configured link (goal: >= 0.8 of it for CUBIC);
 *    docs/goodput.md has the whole sweep;
 *  - idle established connections (tcpidle.ts): 100,000 connections
 *    (--quick: 2,000) between two stacks in this process, i.e. 200,000
 *    endpoints; arena bytes (UMA zone items in use) and JS heap (after a
 *    forced GC) per endpoint, each against the goal of 2 KiB.
 *
 * `--case=SUBSTR` (run.ts) runs only the cases whose names contain SUBSTR
 * (e.g. `node dist/bench/run.js tcp --case=idle`).
 *
 * SLABNET_BENCH_TCP_DELACK=0 runs the slabnet cases with
 * net.inet.tcp.delayed_ack=0 (a diagnosis: the default's 40 ms delayed ACK
 * is what stalls one-segment-in-flight exchanges); SLABNET_BENCH_TRACE=1
 * prints each step on stderr.
 *
 * Everything runs in this thread: both slabnet stacks share one LocalThread
 * (single-thread system), Node's client and server share this event loop.
 */
import net from 'node:net';
import http from 'node:http';
import { Uma } from '../uma/uma.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { LocalThread } from '../kern/lwkt/netthread.js';
import { Ifnet } from '../net/if.js';
import { MemLink } from '../net/phy/memlink.js';
import { Stack } from '../netinet/stack.js';
import { TcpSockets } from '../netinet/tcp_usrreq.js';
import { EAGAIN, EINPROGRESS } from '../kern/errno.js';
import { System, type NetStack } from '../lib/topology.js';
import { connect as slabConnect, createServer as slabCreateServer, type Socket as SlabSocket } from '../lib/net.js';
import { Agent as HttpAgent, serveHttp } from '../lib/http.js';
import { allocBuffer, freeBuffer } from '../lib/zcopy.js';
import { compared, median, wanted, type BenchOptions, type BenchResult, type Suite } from './harness.js';
import { TAP_BULK_IN, TAP_BULK_OUT, TAP_HTTP, tapCases } from './tcptap.js';
import { IDLE_GOAL, idleConnections } from './tcpidle.js';
import { mpCases } from './tcpmp.js';
import { runGoodput } from './goodput.js';
import { mpScaling } from './tcpscale.js';

const SUITE = 'tcp';
/** Bytes per write in the bulk cases (both sides). */
const CHUNK = 64 * 1024;
/** Requests in flight (and keep-alive sockets) in the HTTP case. */
const HTTP_CONC = 8;
/** Connections in flight in the setup + close case. */
const CONN_CONC = 16;

const SRV = '10.7.0.2';
const CLI = '10.7.0.1';

/** Round length and count: a warm-up round, then the median of the rest. */
function plan(opts: BenchOptions): { ms: number; n: number } {
  return opts.quick ? { ms: 120, n: 3 } : { ms: 800, n: 5 };
}

async function rounds(opts: BenchOptions, f: (ms: number) => Promise<number>): Promise<number> {
  const { ms, n } = plan(opts);
  await f(ms / 2); // warm-up
  const r: number[] = [];
  for (let i = 0; i < n; i++) r.push(await f(ms));
  return median(r);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A single-thread system (real clock) with two stacks on a 64 KiB-MTU in-memory link. */
function slabPair(): { sys: System; cli: NetStack; srv: NetStack } {
  const tcpo = process.env.SLABNET_BENCH_TCP_DELACK === "0" ? { tcp: { delayed_ack: 0 } } : {};
  const sys = System.local({ arenaSize: 256 << 20 });
  sys.uma.logger = () => {};
  const cli = sys.addStack('client', { options: { ...tcpo, udp: { portFirst: 1024 } } });
  const srv = sys.addStack('server', { options: tcpo });
  sys.link(cli, srv, { a: `${CLI}/24`, b: `${SRV}/24`, mtu: 65535 });
  return { sys, cli, srv };
}

// ---- bulk ----

/** What the bulk rounds need from either stack's client socket. */
interface BulkSocket {
  write(b: Uint8Array): boolean;
  once(ev: 'drain', f: () => void): unknown;
  destroy(): unknown;
}

/**
 * Pump CHUNK-byte writes into `c` with backpressure (write until it says
 * false, resume on 'drain') while rounds sample the receiver's byte count.
 * Returns Gbit/s of payload.
 */
async function bulkRounds(opts: BenchOptions, c: BulkSocket, received: () => number): Promise<number> {
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  let stop = false;
  const pump = (): void => {
    while (!stop) {
      if (!c.write(chunk)) {
        c.once('drain', pump);
        return;
      }
    }
  };
  pump();
  const rate = await rounds(opts, async (ms) => {
    const b0 = received();
    const t0 = performance.now();
    await sleep(ms);
    return ((received() - b0) * 8) / ((performance.now() - t0) / 1000) / 1e9;
  });
  stop = true;
  return rate;
}

/** Node's net over 127.0.0.1: Gbit/s. */
async function nodeBulk(opts: BenchOptions): Promise<number> {
  let bytes = 0;
  const srv = net.createServer((s) => {
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  await new Promise<void>((r) => c.once('connect', r));
  const rate = await bulkRounds(opts, c, () => bytes);
  c.destroy();
  await new Promise<void>((r) => srv.close(() => r()));
  return rate;
}

/** lib/net.ts streams between two slabnet stacks: Gbit/s. */
async function slabBulk(opts: BenchOptions): Promise<number> {
  const { sys, cli, srv } = slabPair();
  let bytes = 0;
  const server = slabCreateServer({ stack: srv }, (s) => {
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.on('error', () => {});
  }).listen(5001);
  const c = slabConnect({ stack: cli, host: SRV, port: 5001 });
  c.on('error', () => {});
  await new Promise<void>((r) => c.once('connect', () => r()));
  const rate = await bulkRounds(opts, c, () => bytes);
  c.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  await sys.stop();
  return rate;
}

/** Bytes per write and writes in flight in the zero-copy case. */
const ZC_CHUNK = 256 * 1024;
const ZC_POOL = 8;

/**
 * Bulk from the server's socket to a client reading with onread (into one
 * 64 KiB buffer, no 'data' Buffers): ZC_POOL buffers of ZC_CHUNK bytes cycle
 * through write(), each written again when its callback says it is free.
 * With `zerocopy` they are allocBuffer memory (sent by reference: the
 * callback comes when the stack freed the last piece); without, ordinary
 * Buffers (copied into so_snd: the callback comes when so_snd took the
 * copy). Everything else is the same. Gbit/s.
 */
async function slabBulkPool(opts: BenchOptions, zerocopy: boolean): Promise<number> {
  const { sys, cli, srv } = slabPair();
  let bytes = 0;
  const pool: Buffer[] = [];
  for (let i = 0; i < ZC_POOL; i++) pool.push(zerocopy ? allocBuffer(srv, ZC_CHUNK).fill(0x5a) : Buffer.alloc(ZC_CHUNK, 0x5a));
  const all = [...pool];
  let stop = false;
  let draining = false;
  let writer: SlabSocket | null = null;
  const pump = (): void => {
    while (!stop && !draining && pool.length > 0 && writer !== null) {
      const b = pool.pop()!;
      const s = writer;
      const ok = s.write(b, () => {
        pool.push(b);
        pump();
      });
      if (!ok) {
        draining = true;
        s.once('drain', () => {
          draining = false;
          pump();
        });
      }
    }
  };
  const server = slabCreateServer({ stack: srv }, (s) => {
    s.on('error', () => {});
    writer = s;
    pump();
  }).listen(5002);
  const rbuf = Buffer.allocUnsafe(64 * 1024);
  const c = slabConnect({ stack: cli, host: SRV, port: 5002, onread: { buffer: rbuf, callback: (n) => void (bytes += n) } });
  c.on('error', () => {});
  await new Promise<void>((r) => c.once('connect', () => r()));
  const rate = await rounds(opts, async (ms) => {
    const b0 = bytes;
    const t0 = performance.now();
    await sleep(ms);
    return ((bytes - b0) * 8) / ((performance.now() - t0) / 1000) / 1e9;
  });
  stop = true;
  c.destroy();
  (writer as SlabSocket | null)?.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  if (zerocopy) for (const b of all) freeBuffer(srv, b);
  await sys.stop();
  return rate;
}

/**
 * The socket calls in a tight loop: one connection, the client writes
 * CHUNK-byte pieces as so_snd takes them, the server reads everything into
 * one buffer, and the loop runs the thread's passes (memlink delivery,
 * callouts) itself. Real clock, nothing on the event loop. Gbit/s.
 */
function rawBulk(opts: BenchOptions): number {
  const uma = Uma.create({ size: 256 << 20, ncpus: 4 });
  uma.logger = () => {};
  const mb = Mbufs.create(uma);
  const td = new LocalThread();
  const tcpo = process.env.SLABNET_BENCH_TCP_DELACK === "0" ? { tcp: { delayed_ack: 0 } } : {};
  const a = new Stack(mb, { name: 'client', thread: td, ...tcpo });
  const b = new Stack(mb, { name: 'server', thread: td, seed: 9, ...tcpo });
  const ifa = new Ifnet(mb, 'mem0', 0x0200_0000_0001, 65535);
  const ifb = new Ifnet(mb, 'mem0', 0x0200_0000_0002, 65535);
  const link = MemLink.connect(ifa, ifb);
  a.addInterface(ifa, CLI, 24);
  b.addInterface(ifb, SRV, 24);
  a.arp.set(ifa, 0x0a070002, 0x0200_0000_0002);
  b.arp.set(ifb, 0x0a070001, 0x0200_0000_0001);
  const sa = new TcpSockets(a);
  const sb = new TcpSockets(b);
  const l = sb.socket();
  sb.bind(l, 0, 5001);
  sb.listen(l, 16);
  const c = sa.socket();
  if (sa.connect(c, 0x0a070002, 5001) !== -EINPROGRESS) throw new Error('tcp bench: connect failed');
  let s = -EAGAIN;
  for (let i = 0; i < 1000 && s === -EAGAIN; i++) {
    td.pass();
    s = sb.accept(l);
  }
  if (s < 0) throw new Error(`tcp bench: accept failed (${s})`);
  const chunk = new Uint8Array(CHUNK).fill(0x5a);
  const rbuf = new Uint8Array(256 * 1024);
  let off = 0;
  let received = 0;
  /** Move data for `ms` of real time; returns the bytes received. */
  const run = (ms: number): number => {
    const r0 = received;
    const end = performance.now() + ms;
    let k = 0;
    for (;;) {
      for (;;) {
        const n = sa.write(c, off === 0 ? chunk : chunk.subarray(off));
        if (n <= 0) break;
        off = (off + n) % CHUNK;
      }
      td.pass();
      for (;;) {
        const n = sb.read(s, rbuf);
        if (n <= 0) break;
        received += n;
      }
      if ((++k & 15) === 0 && performance.now() >= end) break;
    }
    return received - r0;
  };
  const { ms, n } = plan(opts);
  run(ms / 2);
  const rates: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const got = run(ms);
    rates.push((got * 8) / ((performance.now() - t0) / 1000) / 1e9);
  }
  sa.close(c);
  sb.close(s);
  sb.close(l);
  for (let i = 0; i < 100; i++) td.pass();
  a.close();
  b.close();
  link.close();
  return median(rates);
}

// ---- HTTP keep-alive ----

/** Keep HTTP_CONC GET requests in flight through `agent` for each round: requests/s. */
async function httpRounds(opts: BenchOptions, agent: http.Agent, host: string, port: number): Promise<number> {
  let done = 0;
  let stop = false;
  let inflight = 0;
  let failed: Error | null = null;
  let idle: (() => void) | null = null;
  const one = (): void => {
    inflight++;
    const req = http.get({ agent, host, port, path: '/' }, (res) => {
      res.resume();
      res.on('end', () => {
        done++;
        inflight--;
        if (!stop) one();
        else if (inflight === 0) idle?.();
      });
    });
    req.on('error', (e) => {
      failed = e;
      inflight--;
      if (inflight === 0) idle?.();
    });
  };
  for (let i = 0; i < HTTP_CONC; i++) one();
  const rate = await rounds(opts, async (ms) => {
    const d0 = done;
    const t0 = performance.now();
    await sleep(ms);
    return (done - d0) / ((performance.now() - t0) / 1000);
  });
  stop = true;
  if (inflight > 0) await Promise.race([new Promise<void>((r) => (idle = r)), sleep(3000)]);
  if (failed !== null) throw failed;
  return rate;
}

function httpServer(): http.Server {
  const body = Buffer.from('hello from slabnet\n');
  return http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(body);
  });
}

async function nodeHttp(opts: BenchOptions): Promise<number> {
  const web = httpServer();
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const port = (web.address() as net.AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: HTTP_CONC });
  const rate = await httpRounds(opts, agent, '127.0.0.1', port);
  agent.destroy();
  web.closeAllConnections();
  await new Promise<void>((r) => web.close(() => r()));
  return rate;
}

async function slabHttp(opts: BenchOptions): Promise<number> {
  const { sys, cli, srv } = slabPair();
  const web = httpServer();
  const listener = slabCreateServer({ stack: srv }).listen(80);
  serveHttp(web, listener);
  const agent = new HttpAgent(cli, { keepAlive: true, maxSockets: HTTP_CONC });
  const rate = await httpRounds(opts, agent, SRV, 80);
  agent.destroy();
  web.closeAllConnections();
  await new Promise<void>((r) => listener.close(() => r()));
  await sys.stop();
  return rate;
}

// ---- connection setup + close ----

/** What the connection loop needs from either stack: a connect that gives a Socket-like object. */
type Connector = () => net.Socket | SlabSocket;

/** Keep CONN_CONC connections opening and closing for each round: connections/s. */
async function connRounds(opts: BenchOptions, open: Connector): Promise<number> {
  let done = 0;
  let stop = false;
  let inflight = 0;
  let failed: Error | null = null;
  let idle: (() => void) | null = null;
  const one = (): void => {
    inflight++;
    const s = open();
    s.on('error', (e: Error) => (failed = e));
    s.resume();
    s.once('close', () => {
      done++;
      inflight--;
      if (!stop && failed === null) one();
      else if (inflight === 0) idle?.();
    });
  };
  for (let i = 0; i < CONN_CONC; i++) one();
  const rate = await rounds(opts, async (ms) => {
    const d0 = done;
    const t0 = performance.now();
    await sleep(ms);
    return (done - d0) / ((performance.now() - t0) / 1000);
  });
  stop = true;
  if (inflight > 0) await Promise.race([new Promise<void>((r) => (idle = r)), sleep(3000)]);
  if (failed !== null) throw failed;
  return rate;
}

async function nodeConn(opts: BenchOptions): Promise<number> {
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', 1024, r));
  const port = (srv.address() as net.AddressInfo).port;
  const rate = await connRounds(opts, () => net.connect(port, '127.0.0.1'));
  await new Promise<void>((r) => srv.close(() => r()));
  return rate;
}

async function slabConn(opts: BenchOptions): Promise<number> {
  const { sys, cli, srv } = slabPair();
  const server = slabCreateServer({ stack: srv }, (s) => {
    s.on('error', () => {});
    s.end();
  }).listen(7, undefined, 1024);
  const rate = await connRounds(opts, () => slabConnect({ stack: cli, host: SRV, port: 7 }));
  await Promise.race([new Promise<void>((r) => server.close(() => r())), sleep(1000)]);
  await sys.stop();
  return rate;
}

/** Progress on stderr with SLABNET_BENCH_TRACE=1. */
function trace(what: string): void {
  if (process.env.SLABNET_BENCH_TRACE) process.stderr.write(`tcp: ${what}\n`);
}

const C_STREAM = 'bulk transfer, lib/net.ts streams, in-memory link MTU 65535, 1 thread';
const C_RAW = 'bulk transfer, socket calls in a tight loop, MTU 65535, 1 thread';
const C_HTTP = 'HTTP/1.1 keep-alive GET, http.Server + http.Agent on slabnet';
const C_ZCOPY = 'bulk transfer, zero-copy writes (allocBuffer), lib/net.ts, MTU 65535';
const C_CONN = 'connection setup + close, lib/net.ts';
export const C_IDLE_ARENA = 'arena bytes per idle established endpoint';
export const C_IDLE_HEAP = 'JS heap bytes per idle established endpoint';

/** The bulk cases (they share the node:net baseline). */
async function bulkCases(opts: BenchOptions): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const chunkNote = `${CHUNK / 1024} KiB writes, one connection, default socket buffers`;
  const nodeBulkRate = (trace('nodeBulk'), await nodeBulk(opts));
  if (wanted(opts, C_STREAM)) {
    const streamRate = (trace('slabBulk'), await slabBulk(opts));
    out.push(
      compared(SUITE, C_STREAM, 'Gbit/s', streamRate, 'node:net over 127.0.0.1', nodeBulkRate, {
        workers: 1,
        note: `${chunkNote}; both stacks in this thread, real clock, passes on the event loop`,
      }),
    );
  }
  if (wanted(opts, C_RAW)) {
    trace('rawBulk');
    const rawRate = rawBulk(opts);
    out.push(
      compared(SUITE, C_RAW, 'Gbit/s', rawRate, 'node:net over 127.0.0.1', nodeBulkRate, {
        workers: 1,
        note: `${chunkNote}; the loop runs the thread's passes itself, real clock`,
      }),
    );
  }
  return out;
}

/**
 * The idle cases: 100,000 connections (200,000 endpoints, both ends in this
 * process; --quick: 2,000), arena bytes and JS heap per endpoint against
 * the 2 KiB goal.
 */
function idleCases(opts: BenchOptions): BenchResult[] {
  const idle = idleConnections({ connections: opts.quick ? 2000 : 100_000, budgetMs: opts.quick ? 2000 : 120_000 });
  const what = `${idle.endpoints} endpoints = ${idle.connections} connections with both ends in this process, ${idle.established} ESTABLISHED; opened at ${Math.round(idle.openRate)} conn/s with the socket calls`;
  const out = [
    compared(SUITE, C_IDLE_ARENA, 'B', idle.arenaPerEndpoint, 'goal: 2 KiB', IDLE_GOAL, {
      workers: 1,
      note: `${what}; UMA zone bytes in use outside buffered data (none buffered); arena pages ${Math.round(idle.pagesPerEndpoint)} B/endpoint; ${idle.leakedBytes} B in use after closing all`,
    }),
  ];
  if (idle.heapPerEndpoint !== null) {
    out.push(
      compared(SUITE, C_IDLE_HEAP, 'B', idle.heapPerEndpoint, 'goal: 2 KiB', IDLE_GOAL, {
        workers: 1,
        note: `${what}; heapUsed after a forced full GC (tcpcb, socket, timers, PCB hash)`,
      }),
    );
  }
  return out;
}

/**
 * Goodput over 1% loss and a 10 ms RTT (goodput.ts), each algorithm against
 * the Mathis bound of the configured link. Virtual time: 30 s (6 s quick).
 */
function goodputCases(opts: BenchOptions): BenchResult[] {
  const seconds = opts.quick ? 6 : 30;
  return ['cubic', 'newreno'].map((cc) => {
    const r = runGoodput({ cc, loss: 0.01, rttMs: 10, seconds });
    return compared(SUITE, `goodput, 1% loss, 10 ms RTT, ${cc}`, 'Mbit/s', r.goodputBps / 1e6, 'Mathis bound', r.mathisBps / 1e6, {
      workers: 1,
      note: `100 Mbit/s, 1-BDP queue, ${seconds} virtual s (manual clock); ${r.retransmits} retransmits, ${r.timeouts} RTOs, ${r.linkLost} + ${r.queueDrops} link drops; goal >= 0.8 for cubic; sweep: docs/goodput.md`,
    });
  });
}

export const run: Suite = async (opts) => {
  const results: BenchResult[] = [];
  if (wanted(opts, C_STREAM) || wanted(opts, C_RAW)) results.push(...(await bulkCases(opts)));
  if (wanted(opts, C_HTTP)) {
    const nodeHttpRate = (trace('nodeHttp'), await nodeHttp(opts));
    const slabHttpRate = (trace('slabHttp'), await slabHttp(opts));
    results.push(
      compared(SUITE, C_HTTP, 'req/s', slabHttpRate, 'the same on kernel 127.0.0.1', nodeHttpRate, {
        workers: 1,
        note: `${HTTP_CONC} requests in flight over ${HTTP_CONC} keep-alive sockets, 19-byte body`,
      }),
    );
  }
  if (wanted(opts, C_ZCOPY)) {
    const copyRate = (trace('slabBulkPool copy'), await slabBulkPool(opts, false));
    const zcRate = (trace('slabBulkPool zerocopy'), await slabBulkPool(opts, true));
    results.push(
      compared(SUITE, C_ZCOPY, 'Gbit/s', zcRate, 'the same with copying writes (ordinary Buffers)', copyRate, {
        workers: 1,
        note: `${ZC_POOL} x ${ZC_CHUNK / 1024} KiB buffers cycling through write(), reader on onread (64 KiB buffer); zero-copy callbacks wait for the stack's last reference`,
      }),
    );
  }
  trace('mp');
  const drivers = { bulk: bulkRounds, http: httpRounds, httpServer };
  const baselines = { nodeBulk: () => nodeBulk(opts), nodeHttp: () => nodeHttp(opts) };
  const mpNotes = { bulk: `${CHUNK / 1024} KiB writes, one connection, default socket buffers`, httpConc: HTTP_CONC };
  results.push(...(await mpCases(opts, drivers, baselines, SUITE, mpNotes)));
  if (wanted(opts, 'TCP request/response on the MP core') || wanted(opts, 'TCP request/response run on the CPUs')) results.push(...(trace('scaling'), await mpScaling(opts)));
  if (wanted(opts, C_CONN)) {
    const nodeConnRate = (trace('nodeConn'), await nodeConn(opts));
    const slabConnRate = (trace('slabConn'), await slabConn(opts));
    results.push(
      compared(SUITE, C_CONN, 'conn/s', slabConnRate, 'node:net over 127.0.0.1', nodeConnRate, {
        workers: 1,
        note: `${CONN_CONC} in flight; connect, the server ends at once, the client ends on EOF`,
      }),
    );
  }
  if (wanted(opts, C_IDLE_ARENA) || wanted(opts, C_IDLE_HEAP)) results.push(...(trace('idle'), idleCases(opts)));
  if (wanted(opts, 'goodput')) results.push(...(trace('goodput'), goodputCases(opts)));
  if ([TAP_BULK_IN, TAP_BULK_OUT, TAP_HTTP].some((c) => wanted(opts, c))) results.push(...(trace('tap'), await tapCases(opts)));
  return results;
};
