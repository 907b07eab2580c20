/**
 * The `mbuf` benchmark suite (issue 3), each case against its baseline in
 * the same run:
 *  - m_getcl + m_freem pairs per second on one CPU vs Buffer.allocUnsafe(2048);
 *  - building a 1500-byte packet with m_devget and m_uiotombuf vs Buffer.from;
 *  - m_copym of a 64 KiB chain (references) vs copying its bytes;
 *  - handing 1500-byte packets to another worker by handle through a shared
 *    ring vs postMessage of the bytes: building included (m_devget vs
 *    Buffer.from), and packets from a pool (handles recycled) vs postMessage
 *    of a ready array.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { Uma } from '../uma/uma.js';
import * as MB from '../kern/mbuf/index.js';
import { SpscRing } from '../test/workers/mbuf-handoff-ring.js';
import { compared, consume, measureRate, type BenchResult, type Suite } from './harness.js';

const SUITE = 'mbuf';
const workerPath = fileURLToPath(new URL('../test/workers/mbuf-handoff.js', import.meta.url));

export const run: Suite = async (opts) => {
  const uma = Uma.create({ size: 128 << 20, ncpus: 4, debug: false });
  uma.logger = () => {};
  const mb = MB.Mbufs.create(uma);
  const results: BenchResult[] = [];
  const { M_NOWAIT, MT_DATA, M_PKTHDR } = MB;

  // Each body is run a while before it is measured, its baseline too: in quick
  // mode measureRate's own warm-up is too short for V8 to finish optimizing on
  // a loaded machine (the first case came out several times too slow).
  const frame = new Uint8Array(1500).map((_, i) => i);
  const getclFree = (n: number): void => {
    for (let i = 0; i < n; i++) mb.m_freem(mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR));
  };
  const bufAlloc = (n: number): void => {
    for (let i = 0; i < n; i++) consume(Buffer.allocUnsafe(2048).length);
  };
  const devgetFree = (n: number): void => {
    for (let i = 0; i < n; i++) mb.m_freem(MB.m_devget(mb, frame, 0, 1500, 2, 1));
  };
  const uioFree = (n: number): void => {
    for (let i = 0; i < n; i++) mb.m_freem(MB.m_uiotombuf(mb, frame, M_NOWAIT, 0, 0, M_PKTHDR));
  };
  const bufFrom = (n: number): void => {
    for (let i = 0; i < n; i++) consume(Buffer.from(frame).length);
  };
  const measure = (body: (n: number) => void): { rate: number; cpu: number } => {
    calibrate(body, opts.quick ? 0.05 : 0.2);
    return { rate: measureRate(body, opts), cpu: cpuRate(body, opts) };
  };

  const pairs = measure(getclFree);
  const bufPairs = measure(bufAlloc);
  results.push(compared(SUITE, 'getcl+freem pairs', 'pairs/s', pairs.rate, 'Buffer.allocUnsafe(2048)', bufPairs.rate, { workers: 1, note: cpuNote(pairs.cpu, bufPairs.cpu) }));
  const devget = measure(devgetFree);
  const uio = measure(uioFree);
  const from = measure(bufFrom);
  results.push(compared(SUITE, 'devget 1500-byte packet (ETHER_ALIGN 2)', 'packets/s', devget.rate, 'Buffer.from', from.rate, { note: cpuNote(devget.cpu, from.cpu) }));
  results.push(compared(SUITE, 'uiotombuf 1500-byte packet', 'packets/s', uio.rate, 'Buffer.from', from.rate, { note: cpuNote(uio.cpu, from.cpu) }));

  const big = MB.m_uiotombuf(mb, new Uint8Array(65536), M_NOWAIT, 0, 0, M_PKTHDR);
  const copym = measure((n) => {
    for (let i = 0; i < n; i++) mb.m_freem(MB.m_copym(mb, big, 0, MB.M_COPYALL, M_NOWAIT));
  });
  const copyBytes = measure((n) => {
    for (let i = 0; i < n; i++) consume(MB.m_tobytes(mb, big).length);
  });
  mb.m_freem(big);
  results.push(compared(SUITE, 'copym 64 KiB chain (reference)', 'copies/s', copym.rate, 'copy of the bytes', copyBytes.rate, { note: cpuNote(copym.cpu, copyBytes.cpu) }));

  // Cross-worker handoff, two fair pairs (same per-packet work on both sides of
  // each pair; see src/test/workers/mbuf-handoff.ts):
  //  build + hand off: the producer makes the packet from the frame bytes
  //    (m_devget vs Buffer.from) and hands it over (handle through a ring vs
  //    postMessage); the consumer reads it and drops it (m_freem vs the GC).
  //  hand off only: packets already built; handles cycle through a pool (a
  //    return ring) vs postMessage of a ready-made array.
  const count = opts.quick ? 100_000 : 1_000_000;
  const built = await handoffRing(uma, mb, frame, count, 'ring');
  const builtCopy = await handoffCopy(frame, count, true);
  results.push(compared(SUITE, 'handoff 1500-byte packets (build + hand off + free)', 'packets/s', built.rate, 'Buffer.from + postMessage', builtCopy.rate, { workers: 2, note: cpuNote(built.cpu, builtCopy.cpu) }));
  const pooled = await handoffRing(uma, mb, frame, count, 'recycle');
  const pooledCopy = await handoffCopy(frame, count, false);
  results.push(compared(SUITE, 'handoff 1500-byte packets by handle (pool)', 'packets/s', pooled.rate, 'postMessage of the bytes', pooledCopy.rate, { workers: 2, note: cpuNote(pooled.cpu, pooledCopy.cpu) }));
  return results;
};

/**
 * The same comparison per CPU-second (all threads of the process): on a shared,
 * loaded machine wall time mostly measures waiting for a core.
 */
function cpuNote(v: number, base: number): string {
  return `per CPU-s: ${Math.round(v)} vs ${Math.round(base)} (${(v / base).toFixed(2)}x)`;
}

const SLOTS = 4096;
const POOL = 1024;

/** Producer side of the ring modes (main thread); returns packets per second. */
/** Packets per second of wall time, and per second of CPU time of the whole process (both threads). */
interface Rates {
  rate: number;
  cpu: number;
}

/** Seconds of CPU (user + system, every thread of the process) since `c0`. */
function cpuSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/**
 * Operations per CPU-second of the process (best of a few rounds): what a case
 * costs when it has a core to itself, which wall time on a loaded machine hides.
 */
function cpuRate(body: (n: number) => void, opts: { quick: boolean }): number {
  const n = calibrate(body, opts.quick ? 0.04 : 0.2);
  let best = 0;
  for (let r = 0; r < (opts.quick ? 3 : 7); r++) {
    const c0 = process.cpuUsage();
    body(n);
    best = Math.max(best, n / Math.max(cpuSince(c0), 1e-6));
  }
  return best;
}

/**
 * The timing shared by the handoff cases: one warm-up run (both sides
 * compiled before timing), then `count` packets timed in wall clock and in
 * this process's CPU time. The run itself is the caller's.
 */
async function timedRun(oneRun: (n: number) => Promise<unknown>, count: number): Promise<Rates> {
  await oneRun(Math.min(50_000, count >> 1));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await oneRun(count);
  const dt = (performance.now() - t0) / 1000;
  const cpu = cpuSince(c0);
  return { rate: count / dt, cpu: count / cpu };
}

/**
 * Run body with growing n until one call takes about `seconds` of CPU; returns
 * that n. Also the warm-up: by then V8 has had time to optimize the body.
 */
function calibrate(body: (n: number) => void, seconds: number): number {
  for (let n = 1000; ; n *= 4) {
    const c0 = process.cpuUsage();
    body(n);
    const t = cpuSince(c0);
    if (t >= seconds / 2 || n > 1e9) return Math.max(1, Math.round((n * seconds) / Math.max(t, 1e-6)));
  }
}

async function handoffRing(uma: Uma, mb: MB.Mbufs, frame: Uint8Array, count: number, mode: 'ring' | 'recycle'): Promise<Rates> {
  const ringSab = new SharedArrayBuffer(SpscRing.bytes(SLOTS));
  const backSab = new SharedArrayBuffer(SpscRing.bytes(POOL));
  const ring = new SpscRing(ringSab);
  const back = new SpscRing(backSab);
  const pool: number[] = [];
  if (mode === 'recycle') {
    for (let i = 0; i < POOL; i++) {
      const m = MB.m_devget(mb, frame, 0, frame.length, 0, 1);
      if (m === 0) throw new Error('mbuf bench: arena exhausted');
      pool.push(m);
    }
  }
  const w = new Worker(workerPath, { workerData: { sab: uma.arena.sab, ring: ringSab, back: backSab, mode } });
  const replies: ((n: number) => void)[] = [];
  w.on('message', (n: number) => replies.shift()?.(n));
  await new Promise<number>((r) => replies.push(r)); // 'ready'
  /** One run of n packets; resolves when the consumer has seen the end mark. */
  const oneRun = async (n: number): Promise<number> => {
    const finished = new Promise<number>((r) => replies.push(r));
    for (let i = 0; i < n; i++) {
      let m: number;
      if (mode === 'ring') {
        m = MB.m_devget(mb, frame, 0, frame.length, 0, 1);
        if (m === 0) throw new Error('mbuf bench: arena exhausted');
      } else {
        if (pool.length === 0) {
          back.waitData();
          for (let k = back.poll(); k > 0; k--) pool.push(back.pop());
          back.release();
        }
        m = pool.pop()!;
      }
      ring.push(m);
    }
    ring.push(-1);
    ring.flush();
    const got = await finished;
    if (got !== n) throw new Error(`mbuf bench: the consumer saw ${got} of ${n} packets`);
    return got;
  };
  const rates = await timedRun(oneRun, count);
  await w.terminate();
  if (mode === 'recycle') {
    for (let k = back.poll(); k > 0; k--) pool.push(back.pop());
    if (pool.length !== POOL) throw new Error(`mbuf bench: ${POOL - pool.length} pooled packets did not come back`);
    for (const m of pool) mb.m_freem(m);
  }
  return rates;
}

/**
 * Producer side of postMessage (main thread): the same window as the ring
 * (at most SLOTS packets in flight, acknowledged every 1024), so neither side
 * buffers more than the other. `build`: a fresh Buffer.from(frame) per packet.
 */
async function handoffCopy(frame: Uint8Array, count: number, build: boolean): Promise<Rates> {
  const w = new Worker(workerPath, { workerData: { mode: 'copy' } });
  await new Promise((r) => w.once('message', r));
  let acked = 0;
  let wake: (() => void) | null = null;
  let done: ((n: number) => void) | null = null;
  w.on('message', (n: number) => {
    if (n < 0) {
      acked = -n;
      if (wake !== null) {
        const f = wake;
        wake = null;
        f();
      }
    } else if (done !== null) done(n);
  });
  const oneRun = async (n: number): Promise<void> => {
    acked = 0;
    const finished = new Promise<number>((r) => (done = r));
    for (let i = 0; i < n; i++) {
      while (i - acked >= SLOTS) await new Promise<void>((r) => (wake = r));
      w.postMessage(build ? Buffer.from(frame) : frame);
    }
    w.postMessage(0);
    const got = await finished;
    if (got !== n) throw new Error(`mbuf bench: the consumer saw ${got} of ${n} messages`);
  };
  const rates = await timedRun(oneRun, count);
  await w.terminate();
  return rates;
}
