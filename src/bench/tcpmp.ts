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
import { System } from '../lib/topology.js';
import { connect as mpConnect, createServer as mpCreateServer, type MpSocket } from '../lib/netmp.js';
import { compared, type BenchOptions, type BenchResult } from './harness.js';

/** The bulk pump of tcp.ts: writes with backpressure while rounds sample the receiver. */
export type BulkPump = (opts: BenchOptions, c: MpSocket, received: () => number) => Promise<number>;

const PORT = 5002;

/** Worker CPUs for the MP cases: 2, or 1 on a one-core machine. */
function mpCpus(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

/**
 * Bulk transfer between two stacks on the CPUs: Gbit/s of payload the
 * server's 'data' handler received. Stops the system (leak-free) before
 * returning.
 */
async function mpBulk(opts: BenchOptions, pump: BulkPump, cpus: number): Promise<number> {
  const sys = await System.start({ cpus });
  try {
    const a = sys.addStack('client');
    const b = sys.addStack('server');
    sys.link(a, b, { a: '10.7.1.1/24', b: '10.7.1.2/24', mtu: 65535 });
    await sys.up();
    let bytes = 0;
    const server = mpCreateServer({ stack: b }, (s) => {
      s.on('data', (d: Buffer) => (bytes += d.length));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(PORT, () => r()));
    const c = mpConnect({ stack: a, host: '10.7.1.2', port: PORT });
    c.on('error', () => {});
    await new Promise<void>((r) => c.once('connect', () => r()));
    const rate = await pump(opts, c, () => bytes);
    c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    return rate;
  } finally {
    await sys.stop();
  }
}

/** The MP cases, against Node's net figure measured earlier in the same run. */
export async function mpCases(opts: BenchOptions, pump: BulkPump, suite: string, nodeBulkRate: number, chunkNote: string): Promise<BenchResult[]> {
  const cpus = mpCpus();
  const rate = await mpBulk(opts, pump, cpus);
  return [
    compared(suite, `bulk transfer, lib/netmp.ts streams, two stacks on ${cpus} CPUs, in-memory link MTU 65535`, 'Gbit/s', rate, 'node:net over 127.0.0.1', nodeBulkRate, {
      workers: cpus,
      note: `${chunkNote}; TCP on the worker CPUs, user streams on the main thread (one copy in, one out)`,
    }),
  ];
}
