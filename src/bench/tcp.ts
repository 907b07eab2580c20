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
 *  - HTTP/1.1 keep-alive requests/s: Node's http.Server on a slabnet listener
 *    (serveHttp) and an http.Agent whose sockets are slabnet connections
 *    (HttpAgent), vs the same server and agent on kernel loopback.
 *  - connection setup + close per second (connect, the server ends at once,
 *    the client ends on EOF; 16 in flight), lib/net.ts vs Node's net.
 *  - over a TAP against real Linux programs (tcptap.ts): iperf3 both ways vs
 *    iperf3 over a veth pair, wrk against http.Server vs the same on the
 *    kernel (skipped, with the reason, without root or the tools);
 *  - arena bytes per idle established connection endpoint (zone items in
 *    use before and after opening N connections with the socket calls, on a
 *    manual clock), against the goal of 2 KiB; the JS heap per endpoint after
 *    a forced GC is in the note.
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
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Uma } from '../uma/uma.js';
import { zoneStats } from '../uma/stats.js';
import { H_PAGE_FREE } from '../vm/layout.js';
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
import { compared, median, type BenchOptions, type BenchResult, type Suite } from './harness.js';
import { tapCases } from './tcptap.js';
import { mpScaling } from './tcpmp.js';

const SUITE = 'tcp';
/** Bytes per write in the bulk cases (both sides). */
const CHUNK = 64 * 1024;
/** Requests in flight (and keep-alive sockets) in the HTTP case. */
const HTTP_CONC = 8;
/** Connections in flight in the setup + close case. */
const CONN_CONC = 16;
/** The goal for arena bytes per idle connection. */
const IDLE_GOAL = 2048;

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

// ---- idle connections ----

/** A forced full GC: --expose-gc's gc(), or the same function enabled at run time. */
function gcFunction(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as unknown;
    return typeof f === 'function' ? (f as () => void) : null;
  } catch {
    return null;
  }
}

/** Bytes of every zone's items in use. */
function zoneBytes(uma: Uma): number {
  let n = 0;
  for (const z of uma.allZones()) {
    const s = zoneStats(z);
    n += s.used * s.size;
  }
  return n;
}

interface IdleFigures {
  endpoints: number;
  arenaPerEndpoint: number;
  pagesPerEndpoint: number;
  heapPerEndpoint: number | null;
  openRate: number;
}

/**
 * Open connections with the socket calls between two stacks on a manual
 * clock (nothing times out while they sit idle) until `budgetMs` has gone
 * or `max` are open, spread over several client addresses and server ports
 * (the 4-tuples stay unique, the ephemeral ranges never run out); measure
 * zone bytes, arena pages and (after a forced GC) JS heap before and after.
 */
function idleConnections(opts: BenchOptions): IdleFigures {
  const max = opts.quick ? 4000 : 100_000;
  const budgetMs = opts.quick ? 400 : 4000;
  const NADDR = 4;
  const NPORT = 4;
  const uma = Uma.create({ size: 256 << 20, ncpus: 4 });
  uma.logger = () => {};
  const mb = Mbufs.create(uma);
  const td = LocalThread.manual();
  const a = new Stack(mb, { name: 'client', thread: td, udp: { portFirst: 1024 } });
  const b = new Stack(mb, { name: 'server', thread: td, seed: 9 });
  const ifa = new Ifnet(mb, 'mem0', 0x0200_0000_0001, 65535);
  const ifb = new Ifnet(mb, 'mem0', 0x0200_0000_0002, 65535);
  const link = MemLink.connect(ifa, ifb);
  a.addInterface(ifa, CLI, 24);
  for (let i = 1; i < NADDR; i++) a.addAddress(ifa, 0x0a070010 + i, 24);
  b.addInterface(ifb, SRV, 24);
  for (let i = 0; i < NADDR; i++) b.arp.set(ifb, i === 0 ? 0x0a070001 : 0x0a070010 + i, 0x0200_0000_0001);
  a.arp.set(ifa, 0x0a070002, 0x0200_0000_0002);
  const sa = new TcpSockets(a);
  const sb = new TcpSockets(b);
  const listeners: number[] = [];
  for (let p = 0; p < NPORT; p++) {
    const l = sb.socket();
    sb.bind(l, 0, 6000 + p);
    sb.listen(l, 4096);
    listeners.push(l);
  }
  const clients: number[] = [];
  const servers: number[] = [];
  /** Open k connections, run the handshakes, accept them all. */
  const open = (k: number): void => {
    for (let i = 0; i < k; i++) {
      const n = clients.length + i;
      const c = sa.socket();
      sa.bind(c, n % NADDR === 0 ? 0x0a070001 : 0x0a070010 + (n % NADDR), 0);
      const r = sa.connect(c, 0x0a070002, 6000 + ((n >> 2) % NPORT));
      if (r !== -EINPROGRESS) throw new Error(`tcp bench: connect ${n} failed (${r})`);
      clients.push(c);
    }
    td.runUntilIdle();
    for (const l of listeners) {
      for (let s = sb.accept(l); s > 0; s = sb.accept(l)) servers.push(s);
    }
  };
  open(64); // warm-up: zones made, code compiled
  td.runUntilIdle();
  const gc = gcFunction();
  gc?.();
  const z0 = zoneBytes(uma);
  const p0 = Atomics.load(uma.arena.i32, H_PAGE_FREE);
  const h0 = process.memoryUsage().heapUsed;
  const c0 = clients.length;
  const t0 = performance.now();
  while (clients.length - c0 < max && performance.now() - t0 < budgetMs) open(Math.min(256, max - (clients.length - c0)));
  const dt = performance.now() - t0;
  td.runUntilIdle();
  if (servers.length !== clients.length) throw new Error(`tcp bench: ${clients.length} connects, ${servers.length} accepted`);
  gc?.();
  const opened = clients.length - c0;
  const endpoints = 2 * opened;
  const res: IdleFigures = {
    endpoints,
    arenaPerEndpoint: (zoneBytes(uma) - z0) / endpoints,
    pagesPerEndpoint: ((p0 - Atomics.load(uma.arena.i32, H_PAGE_FREE)) * 4096) / endpoints,
    heapPerEndpoint: gc === null ? null : (process.memoryUsage().heapUsed - h0) / endpoints,
    openRate: opened / (dt / 1000),
  };
  for (const c of clients) sa.setsockopt(c, 0xffff, 0x0080, 1, 0); // SO_LINGER {on, 0}: RST, no TIME_WAIT
  for (const c of clients) sa.close(c);
  for (const s of servers) sb.close(s);
  for (const l of listeners) sb.close(l);
  td.advance(1000);
  a.close();
  b.close();
  link.close();
  td.runUntilIdle();
  return res;
}

/** Progress on stderr with SLABNET_BENCH_TRACE=1. */
function trace(what: string): void {
  if (process.env.SLABNET_BENCH_TRACE) process.stderr.write(`tcp: ${what}\n`);
}

export const run: Suite = async (opts) => {
  const results: BenchResult[] = [];
  const chunkNote = `${CHUNK / 1024} KiB writes, one connection, default socket buffers`;
  const nodeBulkRate = (trace('nodeBulk'), await nodeBulk(opts));
  const streamRate = (trace('slabBulk'), await slabBulk(opts));
  results.push(
    compared(SUITE, 'bulk transfer, lib/net.ts streams, in-memory link MTU 65535, 1 thread', 'Gbit/s', streamRate, 'node:net over 127.0.0.1', nodeBulkRate, {
      workers: 1,
      note: `${chunkNote}; both stacks in this thread, real clock, passes on the event loop`,
    }),
  );
  trace('rawBulk');
  const rawRate = rawBulk(opts);
  results.push(
    compared(SUITE, 'bulk transfer, socket calls in a tight loop, MTU 65535, 1 thread', 'Gbit/s', rawRate, 'node:net over 127.0.0.1', nodeBulkRate, {
      workers: 1,
      note: `${chunkNote}; the loop runs the thread's passes itself, real clock`,
    }),
  );
  const nodeHttpRate = (trace('nodeHttp'), await nodeHttp(opts));
  const slabHttpRate = (trace('slabHttp'), await slabHttp(opts));
  results.push(
    compared(SUITE, 'HTTP/1.1 keep-alive GET, http.Server + http.Agent on slabnet', 'req/s', slabHttpRate, 'the same on kernel 127.0.0.1', nodeHttpRate, {
      workers: 1,
      note: `${HTTP_CONC} requests in flight over ${HTTP_CONC} keep-alive sockets, 19-byte body`,
    }),
  );
  const nodeConnRate = (trace('nodeConn'), await nodeConn(opts));
  const slabConnRate = (trace('slabConn'), await slabConn(opts));
  results.push(
    compared(SUITE, 'connection setup + close, lib/net.ts', 'conn/s', slabConnRate, 'node:net over 127.0.0.1', nodeConnRate, {
      workers: 1,
      note: `${CONN_CONC} in flight; connect, the server ends at once, the client ends on EOF`,
    }),
  );
  trace('idle');
  const idle = idleConnections(opts);
  const heap = idle.heapPerEndpoint === null ? 'JS heap not measured (no gc())' : `JS heap ${Math.round(idle.heapPerEndpoint)} B/endpoint after a forced GC`;
  results.push(
    compared(SUITE, 'arena bytes per idle established endpoint', 'B', idle.arenaPerEndpoint, 'goal: 2 KiB', IDLE_GOAL, {
      workers: 1,
      note: `${idle.endpoints} endpoints (${idle.endpoints / 2} connections, both ends here), opened at ${Math.round(idle.openRate)} conn/s with the socket calls; arena pages ${Math.round(idle.pagesPerEndpoint)} B/endpoint; ${heap}`,
    }),
  );
  trace('mp');
  results.push(...(await mpScaling(opts)));
  trace('tap');
  results.push(...(await tapCases(opts)));
  return results;
};
