/**
 * The `net` benchmark suite (issue 5), each case against its baseline in the
 * same run:
 *  - UDP request/response (64-byte requests, a window of 32 in flight)
 *    between two slabnet stacks over the in-memory link, on one CPU, vs the
 *    same exchange over Node's dgram sockets on 127.0.0.1;
 *  - IPv4 reassembly of 8 KiB datagrams (6 fragments each), datagrams/s, vs
 *    putting the same fragments together with Buffer.concat.
 *
 *  - the same request/response on the MP core (src/net/mpnet.ts): 1..ncpus
 *    CPU workers, each with a server and a load generator per host, frames
 *    dispatched between CPUs by RSS; requests/s and scaling efficiency
 *    (rate_n / (n * rate_1)), against node:dgram's single-thread rate.
 */
import dgram from 'node:dgram';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Machine } from '../kern/lwkt/machine.js';
import { NET_ECHO_BIND, NET_LOADGEN, NET_QUIESCE, NET_SETUP } from '../net/mpnet.js';
import { Uma } from '../uma/uma.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_NOWAIT } from '../uma/flags.js';
import { M_DATA, M_LEN, M_PKTHDR, MT_DATA, PH_LEN } from '../kern/mbuf/layout.js';
import { Ifnet } from '../net/if.js';
import { MemLink } from '../net/phy/memlink.js';
import { Stack } from '../netinet/stack.js';
import { createSocket } from '../lib/dgram.js';
import { IP_HLEN_MIN, IP_MF, IPPROTO_UDP, ipv4Emit } from '../wire/ipv4.js';
import { compared, consume, measureRate, median, type BenchOptions, type BenchResult, type Suite } from './harness.js';

const SUITE = 'net';
const WINDOW = 32;

/** Run a request/response loop for `ms` and return responses per second. */
async function rrRate(ms: number, send: (onReply: () => void) => void): Promise<number> {
  let replies = 0;
  let stop = false;
  await new Promise<void>((resolve) => {
    let inflight = 0;
    const onReply = (): void => {
      replies++;
      inflight--;
      if (!stop) {
        inflight++;
        send(onReply);
      } else if (inflight === 0) resolve();
    };
    for (let i = 0; i < WINDOW; i++) {
      inflight++;
      send(onReply);
    }
    setTimeout(() => {
      stop = true;
      if (inflight === 0) resolve();
    }, ms);
    // Lost replies would hang the loop: resolve anyway a little later.
    setTimeout(resolve, ms + 500).unref();
  });
  return replies / (ms / 1000);
}

async function rounds(opts: BenchOptions, f: (ms: number) => Promise<number>): Promise<number> {
  const ms = opts.quick ? 200 : 1000;
  const n = opts.quick ? 3 : 5;
  await f(ms / 4); // warm-up
  const r: number[] = [];
  for (let i = 0; i < n; i++) r.push(await f(ms));
  return median(r);
}

/** The client side both request-response cases share: the socket calls of node:dgram it uses. */
interface RRClient {
  on(event: 'message', listener: () => void): unknown;
  send(msg: Uint8Array, port: number, address: string): void;
}

/**
 * Request-response rate of `cli` against an echo server at (port, address):
 * 64-byte requests, each sent when the previous reply arrived (rrRate),
 * over the rounds of `opts`. Adds a 'message' listener to `cli`.
 */
async function echoRR(opts: BenchOptions, cli: RRClient, port: number, address: string): Promise<number> {
  const req = Buffer.alloc(64, 1);
  const waiting: (() => void)[] = [];
  cli.on('message', () => waiting.shift()?.());
  return rounds(opts, (ms) =>
    rrRate(ms, (onReply) => {
      waiting.push(onReply);
      cli.send(req, port, address);
    }),
  );
}

async function slabnetRR(mb: Mbufs, opts: BenchOptions): Promise<number> {
  const a = new Stack(mb, { name: 'client' });
  const b = new Stack(mb, { name: 'server', seed: 9 });
  const ifa = new Ifnet(mb, 'mem0', 0x0200_0000_0001);
  const ifb = new Ifnet(mb, 'mem0', 0x0200_0000_0002);
  const link = MemLink.connect(ifa, ifb);
  a.addInterface(ifa, '10.1.0.1', 24);
  b.addInterface(ifb, '10.1.0.2', 24);
  a.arp.set(ifa, 0x0a010002, 0x0200_0000_0002);
  b.arp.set(ifb, 0x0a010001, 0x0200_0000_0001);
  const srv = createSocket(b, 'udp4', (m, r) => srv.send(m, r.port, r.address));
  await new Promise<void>((r) => srv.bind(53, r));
  const cli = createSocket(a, { type: 'udp4', recvBufferSize: 1 << 20 });
  const rate = await echoRR(opts, cli, 53, '10.1.0.2');
  cli.close();
  srv.close();
  await link.idle();
  a.close();
  b.close();
  link.close();
  return rate;
}

async function nodeRR(opts: BenchOptions): Promise<number> {
  const srv = dgram.createSocket('udp4');
  srv.on('message', (m, r) => srv.send(m, r.port, r.address));
  await new Promise<void>((r) => srv.bind(0, '127.0.0.1', r));
  const port = srv.address().port;
  const cli = dgram.createSocket('udp4');
  const rate = await echoRR(opts, cli, port, '127.0.0.1');
  cli.close();
  srv.close();
  return rate;
}

/**
 * Reassembly: datagrams of 8 KiB in 6 fragments, each fragment copied whole
 * into a cluster (the receive copy) and fed to ip_reass, which links the
 * chains without copying. Baseline: the same receive copy of every fragment
 * into a Buffer, then Buffer.concat of the payloads.
 */
function reassRate(mb: Mbufs, opts: BenchOptions): { rate: number; baseline: number } {
  const st = new Stack(mb, { name: 'reass' });
  const PAYLOAD = 8192;
  const CHUNK = 1480;
  const frags: Uint8Array[] = [];
  for (let off = 0; off < PAYLOAD; off += CHUNK) {
    const n = Math.min(CHUNK, PAYLOAD - off);
    const f = new Uint8Array(IP_HLEN_MIN + n);
    ipv4Emit(f, 0, 0, IP_HLEN_MIN + n, 1, (off + n < PAYLOAD ? IP_MF : 0) | (off >> 3), 64, IPPROTO_UDP, 0x0a000001, 0x0a000002, true);
    frags.push(f);
  }
  let id = 0;
  const rate = measureRate((n) => {
    for (let i = 0; i < n; i++) {
      id = (id + 1) & 0xffff;
      let done = 0;
      for (const f of frags) {
        const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
        const d = mb.i32[(m + M_DATA) >> 2] + 64;
        mb.i32[(m + M_DATA) >> 2] = d;
        // The whole fragment is copied in, as a NIC's receive copy would (header and payload).
        mb.u8.set(f, d);
        mb.u8[d + 4] = id >> 8;
        mb.u8[d + 5] = id & 0xff;
        mb.i32[(m + M_LEN) >> 2] = f.length;
        mb.i32[(m + PH_LEN) >> 2] = f.length;
        done = st.reass.input(m);
      }
      consume(done);
      mb.m_freem(done);
    }
  }, opts);
  const baseline = measureRate((n) => {
    for (let i = 0; i < n; i++) {
      // Same bytes as ours: each whole fragment received (copied) once, then
      // the payloads put together (Buffer.concat copies them again).
      const parts = frags.map((f) => {
        const b = Buffer.from(f);
        b[4] = id >> 8;
        b[5] = id & 0xff;
        return b.subarray(IP_HLEN_MIN);
      });
      consume(Buffer.concat(parts).length);
    }
  }, opts);
  st.close();
  return { rate, baseline };
}

/** Requests/s of the MP stack with n CPUs: every CPU runs a load generator against the servers. */
async function mpRR(n: number, opts: BenchOptions): Promise<number> {
  const uma = Uma.create({ size: 256 << 20, ncpus: n + 8, debug: false });
  uma.logger = () => {};
  const mb = Mbufs.create(uma);
  const handlers = [fileURLToPath(new URL('../net/mpnet.js', import.meta.url))];
  const m = await Machine.start({ uma, ncpus: n, handlers, spinUs: 20 });
  const count = opts.quick ? 3000 : 20000;
  const rates: number[] = [];
  try {
    for (let c = 0; c < n; c++) await m.call(c, NET_SETUP, [0x0a000001, 0x0a000002]);
    for (let c = 0; c < n; c++) await m.call(c, NET_ECHO_BIND, [1, 53]);
    for (let r = 0; r < (opts.quick ? 2 : 4); r++) {
      const t0 = performance.now();
      const res = await Promise.all(Array.from({ length: n }, (_, c) => m.call(c, NET_LOADGEN, [0, 0x0a000002, 53, count, WINDOW, 64, c], 2)));
      const dt = (performance.now() - t0) / 1000;
      const replies = res.reduce((a, x) => a + x[1], 0);
      if (r > 0) rates.push(replies / dt); // round 0 warms up
    }
    for (let c = 0; c < n; c++) await m.call(c, NET_QUIESCE);
  } finally {
    await m.stop();
  }
  void mb;
  return median(rates);
}

export const run: Suite = async (opts) => {
  const uma = Uma.create({ size: 256 << 20, ncpus: 4, debug: false });
  uma.logger = () => {};
  const mb = Mbufs.create(uma);
  const results: BenchResult[] = [];
  const ours = await slabnetRR(mb, opts);
  const theirs = await nodeRR(opts);
  results.push(
    compared(SUITE, 'UDP request/response, in-memory link, 1 CPU', 'req/s', ours, 'node:dgram over 127.0.0.1', theirs, {
      workers: 1,
      note: `64-byte requests, window ${WINDOW}, both stacks in this thread`,
    }),
  );
  const maxCpus = Math.max(1, Math.min(availableParallelism(), opts.quick ? 2 : 8));
  let one = 0;
  for (let n = 1; n <= maxCpus; n++) {
    const rate = await mpRR(n, opts);
    if (n === 1) one = rate;
    results.push(
      compared(SUITE, `UDP request/response on the MP core, ${n} CPU${n > 1 ? 's' : ''}`, 'req/s', rate, 'node:dgram over 127.0.0.1', theirs, {
        workers: n,
        efficiency: rate / (n * one),
        note: `one load generator and one server per CPU, flows chosen so requests and replies hash to the generator CPU, window ${WINDOW}`,
      }),
    );
  }
  const r = reassRate(mb, opts);
  results.push(compared(SUITE, 'IPv4 reassembly, 8 KiB in 6 fragments', 'datagrams/s', r.rate, 'Buffer.concat of the fragments', r.baseline, { workers: 1 }));
  return results;
};
