/**
 * The `tcp` suite's cases on the worker CPUs (System.start({ cpus })): two
 * stacks of one MP system joined by an in-memory link of MTU 65535, the
 * protocol threads on the CPUs, the user side (lib/netmp.ts streams) on
 * this thread. The baseline is the figure tcp.ts measured in the same run
 * (Node's net over the kernel's 127.0.0.1), handed in.
 *
 * What this measures is an application's view: every write crosses to the
 * owning CPU as an mbuf chain by handle (one copy in at this edge), the
 * receiver's data comes back the same way (one copy out), and the CPUs run
 * TCP, the link and netisr between them.
 */
import os from 'node:os';
import type http from 'node:http';
import { System, type NetStack } from '../lib/topology.js';
import { Agent as HttpAgent, serveHttp } from '../lib/http.js';
import { connect as mpConnect, createServer as mpCreateServer, type MpSocket } from '../lib/netmp.js';
import { compared, wanted, type BenchOptions, type BenchResult } from './harness.js';

/** What tcp.ts lends these cases, so both forms measure the same way. */
export interface Drivers {
  /** The bulk pump: writes with backpressure while rounds sample the receiver (Gbit/s). */
  bulk: (opts: BenchOptions, c: MpSocket, received: () => number) => Promise<number>;
  /** Keep-alive GETs in flight through `agent` for each round (req/s). */
  http: (opts: BenchOptions, agent: http.Agent, host: string, port: number) => Promise<number>;
  /** The HTTP server both forms serve with. */
  httpServer: () => http.Server;
}

/** tcp.ts's kernel-loopback baselines, measured in this run when a case here wants them. */
export interface Baselines {
  nodeBulk: () => Promise<number>;
  nodeHttp: () => Promise<number>;
}

const PORT = 5002;

/** Worker CPUs for the MP cases: 2, or 1 on a one-core machine. */
function mpCpus(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

/** A pair's link and system: addresses of the client (a) and server (b) ends, MTU, arena size. */
export interface PairOptions {
  a?: string;
  b?: string;
  mtu?: number;
  arenaSize?: number;
}

/**
 * Run `f` on a client and a server stack of a fresh MP system of `cpus`
 * CPUs, joined by one link (default 10.7.1.1 - 10.7.1.2, MTU 65535); stop
 * (leak-free) after.
 */
export async function withPair<T>(cpus: number, f: (a: NetStack, b: NetStack, sys: System) => Promise<T>, o: PairOptions = {}): Promise<T> {
  const sys = await System.start({ cpus, ...(o.arenaSize !== undefined ? { arenaSize: o.arenaSize } : {}) });
  sys.uma.logger = () => {};
  try {
    const a = sys.addStack('client');
    const b = sys.addStack('server');
    sys.link(a, b, { a: o.a ?? '10.7.1.1/24', b: o.b ?? '10.7.1.2/24', mtu: o.mtu ?? 65535 });
    await sys.up();
    return await f(a, b, sys);
  } finally {
    await sys.stop();
  }
}

/** Bulk transfer between two stacks on the CPUs: Gbit/s of payload the server's 'data' handler received. */
function mpBulk(opts: BenchOptions, d: Drivers, cpus: number): Promise<number> {
  return withPair(cpus, async (a, b) => {
    let bytes = 0;
    const server = mpCreateServer({ stack: b }, (s) => {
      s.on('data', (d: Buffer) => (bytes += d.length));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(PORT, () => r()));
    const c = mpConnect({ stack: a, host: '10.7.1.2', port: PORT });
    c.on('error', () => {});
    await new Promise<void>((r) => c.once('connect', () => r()));
    const rate = await d.bulk(opts, c, () => bytes);
    c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    return rate;
  });
}

/** Node's http.Server on the server stack, an http.Agent of slabnet sockets on the client stack: req/s. */
function mpHttp(opts: BenchOptions, d: Drivers, cpus: number, conc: number): Promise<number> {
  return withPair(cpus, async (a, b) => {
    const web = d.httpServer();
    const listener = mpCreateServer({ stack: b });
    await new Promise<void>((r) => listener.listen(80, () => r()));
    serveHttp(web, listener);
    const agent = new HttpAgent(a, { keepAlive: true, maxSockets: conc });
    const rate = await d.http(opts, agent, '10.7.1.2', 80);
    agent.destroy();
    web.closeAllConnections();
    await new Promise<void>((r) => listener.close(() => r()));
    return rate;
  });
}

/** The MP cases, against Node's net figure measured earlier in the same run. */
export async function mpCases(opts: BenchOptions, d: Drivers, base: Baselines, suite: string, notes: { bulk: string; httpConc: number }): Promise<BenchResult[]> {
  const cpus = mpCpus();
  const out: BenchResult[] = [];
  const bulkCase = `bulk transfer, lib/netmp.ts streams, two stacks on ${cpus} CPUs, in-memory link MTU 65535`;
  const httpCase = `HTTP/1.1 keep-alive GET, http.Server + http.Agent on slabnet, two stacks on ${cpus} CPUs`;
  if (wanted(opts, bulkCase)) {
    const nodeRate = await base.nodeBulk();
    const rate = await mpBulk(opts, d, cpus);
    out.push(
      compared(suite, bulkCase, 'Gbit/s', rate, 'node:net over 127.0.0.1', nodeRate, {
        workers: cpus,
        note: `${notes.bulk}; TCP on the worker CPUs, user streams on the main thread (one copy in, one out)`,
      }),
    );
  }
  if (wanted(opts, httpCase)) {
    const nodeRate = await base.nodeHttp();
    const reqs = await mpHttp(opts, d, cpus, notes.httpConc);
    out.push(
      compared(suite, httpCase, 'req/s', reqs, 'the same on kernel 127.0.0.1', nodeRate, {
        workers: cpus,
        note: `${notes.httpConc} requests in flight over ${notes.httpConc} keep-alive sockets, 19-byte body; TCP on the worker CPUs, Node's http on the main thread`,
      }),
    );
  }
  return out;
}
