/**
 * The `mbuf` benchmark suite (issue 3), each case against its baseline in
 * the same run:
 *  - m_getcl + m_freem pairs per second on one CPU vs Buffer.allocUnsafe(2048);
 *  - building a 1500-byte packet with m_devget and m_uiotombuf vs Buffer.from;
 *  - m_copym of a 64 KiB chain (references) vs copying its bytes;
 *  - handing 1500-byte packets to another worker by handle through a shared
 *    ring vs postMessage of the bytes.
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

  const count = opts.quick ? 20000 : 200000;
  const byHandle = await handoffRing(uma, mb, frame, count);
  const byCopy = await handoffCopy(frame, count);
  results.push(compared(SUITE, 'handoff 1500-byte packets to a worker by handle', 'packets/s', byHandle, 'postMessage of the bytes', byCopy, { workers: 2 }));
  return results;
};

async function handoffRing(uma: Uma, mb: MB.Mbufs, frame: Uint8Array, count: number): Promise<number> {
  const ringSab = new SharedArrayBuffer((2 + 4096) * 4);
  const ring = new Int32Array(ringSab);
  const SLOTS = 4096;
  const w = new Worker(workerPath, { workerData: { sab: uma.arena.sab, ring: ringSab, mode: 'ring' } });
  await new Promise((r) => w.once('message', r));
  const finished = new Promise<number>((r) => w.once('message', r));
  const t0 = performance.now();
  let head = 0;
  for (let i = 0; i <= count; i++) {
    let m = -1;
    if (i < count) {
      m = MB.m_devget(mb, frame, 0, frame.length, 0, 1);
      if (m === 0) throw new Error('mbuf bench: arena exhausted');
    }
    while (head - Atomics.load(ring, 1) >= SLOTS) Atomics.wait(ring, 1, Atomics.load(ring, 1), 1);
    ring[2 + (head % SLOTS)] = m;
    head++;
    if ((head & 63) === 0 || m === -1) {
      Atomics.store(ring, 0, head);
      Atomics.notify(ring, 0);
    }
  }
  await finished;
  const dt = (performance.now() - t0) / 1000;
  await w.terminate();
  return count / dt;
}

async function handoffCopy(frame: Uint8Array, count: number): Promise<number> {
  const w = new Worker(workerPath, { workerData: { mode: 'copy' } });
  await new Promise((r) => w.once('message', r));
  const t0 = performance.now();
  const done = new Promise<number>((r) => w.once('message', r));
  for (let i = 0; i < count; i++) w.postMessage(Buffer.from(frame));
  w.postMessage(0);
  await done;
  const dt = (performance.now() - t0) / 1000;
  await w.terminate();
  return count / dt;
}
