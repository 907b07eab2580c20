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
import * as MB from '../mbuf/index.js';
import { compared, consume, measureRate, type BenchResult, type Suite } from './harness.js';

const SUITE = 'mbuf';
const workerPath = fileURLToPath(new URL('../test/workers/mbuf-handoff.js', import.meta.url));

export const run: Suite = async (opts) => {
  const uma = Uma.create({ size: 128 << 20, ncpus: 4, debug: false });
  uma.logger = () => {};
  const mb = MB.Mbufs.create(uma);
  const results: BenchResult[] = [];
  const { M_NOWAIT, MT_DATA, M_PKTHDR } = MB;

  const pairs = measureRate((n) => {
    for (let i = 0; i < n; i++) {
      const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
      mb.m_freem(m);
    }
  }, opts);
  const bufPairs = measureRate((n) => {
    for (let i = 0; i < n; i++) consume(Buffer.allocUnsafe(2048).length);
  }, opts);
  results.push(compared(SUITE, 'getcl+freem pairs', 'pairs/s', pairs, 'Buffer.allocUnsafe(2048)', bufPairs, { workers: 1 }));

  const frame = new Uint8Array(1500).map((_, i) => i);
  const devget = measureRate((n) => {
    for (let i = 0; i < n; i++) mb.m_freem(MB.m_devget(mb, frame, 0, 1500, 2, 1));
  }, opts);
  const uio = measureRate((n) => {
    for (let i = 0; i < n; i++) mb.m_freem(MB.m_uiotombuf(mb, frame, M_NOWAIT, 0, 0, M_PKTHDR));
  }, opts);
  const from = measureRate((n) => {
    for (let i = 0; i < n; i++) consume(Buffer.from(frame).length);
  }, opts);
  results.push(compared(SUITE, 'devget 1500-byte packet', 'packets/s', devget, 'Buffer.from', from));
  results.push(compared(SUITE, 'uiotombuf 1500-byte packet', 'packets/s', uio, 'Buffer.from', from));

  const big = MB.m_uiotombuf(mb, new Uint8Array(65536), M_NOWAIT, 0, 0, M_PKTHDR);
  const copym = measureRate((n) => {
    for (let i = 0; i < n; i++) mb.m_freem(MB.m_copym(mb, big, 0, MB.M_COPYALL, M_NOWAIT));
  }, opts);
  const copyBytes = measureRate((n) => {
    for (let i = 0; i < n; i++) consume(MB.m_tobytes(mb, big).length);
  }, opts);
  mb.m_freem(big);
  results.push(compared(SUITE, 'copym 64 KiB chain (reference)', 'copies/s', copym, 'copy of the bytes', copyBytes));

  // Cross-worker handoff, two fair pairs (same per-packet work on both sides of
  // each pair; see src/test/workers/mbuf-handoff.ts):
  //  build + hand off: the producer makes the packet from the frame bytes
  //    (m_devget vs Buffer.from) and hands it over (handle through a ring vs
  //    postMessage); the consumer reads it and drops it (m_freem vs the GC).
  //  hand off only: packets already built; handles cycle through a pool (a
  //    return ring) vs postMessage of a ready-made array.
  const count = opts.quick ? 20000 : 200000;
  const built = await handoffRing(uma, mb, frame, count, 'ring');
  const builtCopy = await handoffCopy(frame, count, true);
  results.push(compared(SUITE, 'handoff 1500-byte packets (build + hand off + free)', 'packets/s', built, 'Buffer.from + postMessage', builtCopy, { workers: 2 }));
  const pooled = await handoffRing(uma, mb, frame, count, 'recycle');
  const pooledCopy = await handoffCopy(frame, count, false);
  results.push(compared(SUITE, 'handoff 1500-byte packets by handle (pool)', 'packets/s', pooled, 'postMessage of the bytes', pooledCopy, { workers: 2 }));
  return results;
};

const SLOTS = 4096;
const POOL = 1024;

/** Producer side of the ring modes (main thread); returns packets per second. */
async function handoffRing(uma: Uma, mb: MB.Mbufs, frame: Uint8Array, count: number, mode: 'ring' | 'recycle'): Promise<number> {
  const ringSab = new SharedArrayBuffer((2 + SLOTS) * 4);
  const backSab = new SharedArrayBuffer((2 + POOL) * 4);
  const ring = new Int32Array(ringSab);
  const back = new Int32Array(backSab);
  const pool: number[] = [];
  if (mode === 'recycle') {
    for (let i = 0; i < POOL; i++) {
      const m = MB.m_devget(mb, frame, 0, frame.length, 0, 1);
      if (m === 0) throw new Error('mbuf bench: arena exhausted');
      pool.push(m);
    }
  }
  const w = new Worker(workerPath, { workerData: { sab: uma.arena.sab, ring: ringSab, back: backSab, mode } });
  await new Promise((r) => w.once('message', r));
  const finished = new Promise<number>((r) => w.once('message', r));
  const t0 = performance.now();
  let head = 0;
  let btail = 0;
  for (let i = 0; i <= count; i++) {
    let m = -1;
    if (i < count) {
      if (mode === 'ring') {
        m = MB.m_devget(mb, frame, 0, frame.length, 0, 1);
        if (m === 0) throw new Error('mbuf bench: arena exhausted');
      } else {
        while (pool.length === 0) {
          const bh = Atomics.load(back, 0);
          while (btail !== bh) pool.push(back[2 + (btail++ % POOL)]);
          if (pool.length === 0) Atomics.wait(back, 0, bh, 1);
        }
        m = pool.pop()!;
      }
    }
    while (head - Atomics.load(ring, 1) >= SLOTS) Atomics.wait(ring, 1, Atomics.load(ring, 1), 1);
    ring[2 + (head % SLOTS)] = m;
    head++;
    if ((head & 63) === 0 || m === -1) {
      Atomics.store(ring, 0, head);
      Atomics.notify(ring, 0);
    }
  }
  const got = await finished;
  const dt = (performance.now() - t0) / 1000;
  await w.terminate();
  if (got !== count) throw new Error(`mbuf bench: the consumer saw ${got} of ${count} packets`);
  if (mode === 'recycle') {
    const bh = Atomics.load(back, 0);
    while (btail !== bh) pool.push(back[2 + (btail++ % POOL)]);
    if (pool.length !== POOL) throw new Error(`mbuf bench: ${POOL - pool.length} pooled packets did not come back`);
    for (const m of pool) mb.m_freem(m);
  }
  return count / dt;
}

/**
 * Producer side of postMessage (main thread): the same window as the ring
 * (at most SLOTS packets in flight, acknowledged every 1024), so neither side
 * buffers more than the other. `build`: a fresh Buffer.from(frame) per packet.
 */
async function handoffCopy(frame: Uint8Array, count: number, build: boolean): Promise<number> {
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
  const finished = new Promise<number>((r) => (done = r));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    while (i - acked >= SLOTS) await new Promise<void>((r) => (wake = r));
    w.postMessage(build ? Buffer.from(frame) : frame);
  }
  w.postMessage(0);
  const got = await finished;
  const dt = (performance.now() - t0) / 1000;
  await w.terminate();
  if (got !== count) throw new Error(`mbuf bench: the consumer saw ${got} of ${count} messages`);
  return count / dt;
}
