/**
 * The `tcp` suite's scaling case for TCP on the MP core (lib/netmp.ts):
 * request/response over many connections between two stacks on 1..ncpus
 * worker CPUs, connections spread over the CPUs by their 4-tuple (port
 * partitioning picks each one's CPU, round robin). Reported with `workers`
 * and the efficiency against workers x the 1-CPU figure of the same run
 * (../shared/BENCHMARKS.md). The user side (node:net's streams) runs in
 * this one thread for every CPU count, so it bounds the scaling.
 *
 * The second case takes the user thread out: every CPU runs the request/
 * response load itself (apps/tcprr.ts, NET_TCP_RR: clients and echo server
 * on that CPU's instances of the two hosts, driven by TcpSockets from a
 * poll hook), so it measures how TCP on the CPUs scales with them.
 */
import { availableParallelism } from 'node:os';
import type { NetStack, System } from '../lib/topology.js';
import { withPair } from './tcpmp.js';
import { connect, createServer, type MpSocket } from '../lib/netmp.js';
import { NET_TCP_RR } from '../apps/handlers.js';
import { ipFromString } from '../wire/ipv4.js';
import { compared, median, type BenchOptions, type BenchResult } from './harness.js';

const SUITE = 'tcp';
/** Connections per run, and the request (and reply) size. */
const CONNS = 32;
const MSG = 64;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Transactions/s of CONNS ping-pong connections on n CPUs: each client
 * sends MSG bytes and sends again once the MSG-byte echo is back. The
 * median of the timed rounds after a warm-up.
 */
function mpRR(n: number, opts: BenchOptions): Promise<number> {
  return withPair(n, (cli, srv) => rrOnPair(cli, srv, opts), { a: '10.8.0.1/24', b: '10.8.0.2/24', mtu: 1500, arenaSize: 256 << 20 });
}

async function rrOnPair(cli: NetStack, srv: NetStack, opts: BenchOptions): Promise<number> {
  const socks: MpSocket[] = [];
  const server = createServer({ stack: srv }, (s) => {
    socks.push(s);
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => s.write(d));
  });
  server.listen(7);
  await new Promise((r) => server.once('listening', r));
  let done = 0;
  let stop = false;
  const msg = Buffer.alloc(MSG, 0x61);
  const clients: MpSocket[] = [];
  for (let i = 0; i < CONNS; i++) {
    const c = connect({ stack: cli, host: '10.8.0.2', port: 7, noDelay: true });
    let got = 0;
    c.on('data', (d: Buffer) => {
      got += d.length;
      while (got >= MSG) {
        got -= MSG;
        done++;
        if (!stop) c.write(msg);
      }
    });
    c.once('connect', () => c.write(msg));
    clients.push(c);
  }
  const rates: number[] = [];
  try {
    const ms = opts.quick ? 150 : 1000;
    for (let r = 0; r < (opts.quick ? 3 : 6); r++) {
      const d0 = done;
      const t0 = performance.now();
      await sleep(ms);
      if (r > 0) rates.push((done - d0) / ((performance.now() - t0) / 1000)); // round 0 warms up
    }
  } finally {
    stop = true;
    for (const s of [...clients, ...socks]) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await server.settled();
    for (const s of [...clients, ...socks]) await s.settled();
  }
  return median(rates);
}

/** Connections each CPU's own load generator keeps busy in the CPU-only case. */
const CPU_CONNS = 16;

/**
 * Transactions/s of n CPUs each running CPU_CONNS ping-pong connections of
 * its own (NET_TCP_RR), summed: the median of rounds after a warm-up in
 * each. Nothing of the load is in this thread.
 */
function cpuRR(n: number, opts: BenchOptions): Promise<number> {
  return withPair(n, (cli, srv, sys) => cpuRROnPair(n, cli, srv, sys, opts), { a: '10.8.1.1/24', b: '10.8.1.2/24', mtu: 1500, arenaSize: 256 << 20 });
}

async function cpuRROnPair(n: number, cli: NetStack, srv: NetStack, sys: System, opts: BenchOptions): Promise<number> {
  const dst = ipFromString('10.8.1.2') | 0;
  const rates: number[] = [];
  const ms = opts.quick ? 150 : 1000;
  for (let r = 0; r < (opts.quick ? 2 : 5); r++) {
    const runs = await Promise.all(Array.from({ length: n }, (_, c) => sys.machine!.call(c, NET_TCP_RR, [cli.index, srv.index, dst, 7100 + r, CPU_CONNS, MSG, 100, ms], 4)));
    let rate = 0;
    for (const [err, trans, us, connected, errors] of runs) {
      if (err !== 0 || errors !== 0 || connected !== CPU_CONNS) throw new Error(`NET_TCP_RR: err ${err}, ${connected} of ${CPU_CONNS} connected, ${errors} errors`);
      rate += trans / (us / 1e6);
    }
    rates.push(rate);
  }
  return median(rates);
}

/** The scaling cases: 1..min(ncpus, 8) CPUs (1..2 with --quick). */
export async function mpScaling(opts: BenchOptions): Promise<BenchResult[]> {
  const maxCpus = Math.max(1, Math.min(availableParallelism(), opts.quick ? 2 : 8));
  const out: BenchResult[] = [];
  let one = 0;
  for (let n = 1; n <= maxCpus; n++) {
    const rate = await mpRR(n, opts);
    if (n === 1) one = rate;
    out.push(
      compared(SUITE, `TCP request/response on the MP core, ${n} CPU${n > 1 ? 's' : ''}, ${CONNS} connections`, 'trans/s', rate, `1 CPU x ${n}`, n * one, {
        workers: n,
        efficiency: rate / (n * one),
        note: `${MSG}-byte ping-pong per connection, TCP_NODELAY, connections on the CPU of their 4-tuple (round robin opens); the node:net side of all of them in the main thread`,
      }),
    );
  }
  let cpuOne = 0;
  for (let n = 1; n <= maxCpus; n++) {
    const rate = await cpuRR(n, opts);
    if (n === 1) cpuOne = rate;
    out.push(
      compared(SUITE, `TCP request/response run on the CPUs alone, ${n} CPU${n > 1 ? 's' : ''}, ${CPU_CONNS} connections each`, 'trans/s', rate, `1 CPU x ${n}`, n * cpuOne, {
        workers: n,
        efficiency: rate / (n * cpuOne),
        note: `${MSG}-byte ping-pong, TCP_NODELAY; each CPU's clients and echo server on its instances of the two hosts (NET_TCP_RR), both ends of every connection on that CPU (symmetric RSS); no user thread in the loop`,
      }),
    );
  }
  return out;
}
