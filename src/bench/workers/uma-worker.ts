/**
 * A CPU of the uma benchmark: attaches to the benchmark's arena and, on each
 * command from bench/uma.ts, warms up, waits at the shared start line, runs
 * its part for the given time and reports operations done and seconds spent.
 *
 * Modes:
 *   pairs         zalloc + zfree of the same item (cache hit) on this CPU
 *   pairs-locked  the same with every call inside one global futex mutex
 *   produce       zalloc and push the handle into the shared SPSC ring
 *   consume       pop handles from the ring and zfree them (a cross-CPU free)
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { Mutex } from '../../kern/lock/mutex.js';
import { M_NOWAIT } from '../../uma/flags.js';
import type { Zone } from '../../uma/zone.js';
import { CTRL_GO, CTRL_STOP, RING_CWAIT, RING_HEAD, RING_PWAIT, RING_SLOTS, RING_TAIL, type UmaBenchCommand, type UmaBenchReport } from './uma-protocol.js';

const arena = Arena.attach(workerData.sab as SharedArrayBuffer);
arena.registerCpu();
const uma = Uma.attach(arena);
const zone: Zone = uma.zone(workerData.zone as string);
const lock = new Mutex(arena.i32, workerData.lockIndex as number, 'bench global');
const ctrl = new Int32Array(workerData.ctrl as SharedArrayBuffer);
const ring = new Int32Array(workerData.ring as SharedArrayBuffer);
const RING_MASK = ring.length - RING_SLOTS - 1;
const CHUNK = 1024;
/** Empty (or full) polls of the ring before a side sleeps, letting the other side have the CPU. */
const SPINS = 64;

let sink = 0;

/** n alloc+free pairs on this CPU's cache: the fast path being measured. */
function pairs(n: number): void {
  for (let i = 0; i < n; i++) {
    const it = zone.alloc(M_NOWAIT);
    sink ^= it;
    zone.free(it);
  }
}

/** The same with one global lock around each call (the allocator without per-CPU caches' benefit). */
function pairsLocked(n: number): void {
  for (let i = 0; i < n; i++) {
    lock.lock();
    const it = zone.alloc(M_NOWAIT);
    lock.unlock();
    sink ^= it;
    lock.lock();
    zone.free(it);
    lock.unlock();
  }
}

/** Allocate up to n items into the ring; returns how many went in (the ring may be full). */
function produce(n: number): number {
  let tail = ring[RING_TAIL];
  const head = Atomics.load(ring, RING_HEAD);
  const room = RING_MASK + 1 - (tail - head);
  const k = Math.min(n, room);
  if (k === 0) return 0;
  for (let i = 0; i < k; i++) {
    ring[RING_SLOTS + (tail & RING_MASK)] = zone.alloc(M_NOWAIT);
    tail++;
  }
  Atomics.store(ring, RING_TAIL, tail);
  if (Atomics.load(ring, RING_CWAIT) !== 0) Atomics.notify(ring, RING_TAIL);
  return k;
}

/** Free up to n items taken from the ring; returns how many. */
function consume(n: number): number {
  let head = ring[RING_HEAD];
  const tail = Atomics.load(ring, RING_TAIL);
  const k = Math.min(n, tail - head);
  if (k === 0) return 0;
  for (let i = 0; i < k; i++) {
    zone.free(ring[RING_SLOTS + (head & RING_MASK)]);
    head++;
  }
  Atomics.store(ring, RING_HEAD, head);
  if (Atomics.load(ring, RING_PWAIT) !== 0) Atomics.notify(ring, RING_HEAD);
  return k;
}

/**
 * A side that found the ring full (producer) or empty (consumer) SPINS times
 * sleeps until the other side moves its index: raise the wait flag, then wait
 * on the index as last seen (the other side stores its index, then reads the
 * flag, so either it notifies or the wait sees the new index at once).
 */
function sleepOnRing(mode: UmaBenchCommand['mode']): void {
  const flag = mode === 'produce' ? RING_PWAIT : RING_CWAIT;
  const idx = mode === 'produce' ? RING_HEAD : RING_TAIL;
  const seen = Atomics.load(ring, idx);
  Atomics.store(ring, flag, 1);
  if (Atomics.load(ctrl, CTRL_STOP) === 0) Atomics.wait(ring, idx, seen, 5);
  Atomics.store(ring, flag, 0);
}

/** Run `step` until `ms` have passed (or STOP is raised); returns operations done and seconds. */
function timed(step: (n: number) => number, ms: number, mode: UmaBenchCommand['mode'] = 'pairs'): { ops: number; seconds: number } {
  let ops = 0;
  let idle = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms && Atomics.load(ctrl, CTRL_STOP) === 0) {
    const k = step(CHUNK);
    ops += k;
    if (k !== 0) idle = 0;
    else if (++idle > SPINS) {
      sleepOnRing(mode);
      idle = 0;
    }
    t = performance.now();
  }
  return { ops, seconds: (t - t0) / 1000 };
}

function stepFor(mode: UmaBenchCommand['mode']): (n: number) => number {
  switch (mode) {
    case 'pairs':
      return (n) => (pairs(n), n);
    case 'pairs-locked':
      return (n) => (pairsLocked(n), n);
    case 'produce':
      return produce;
    case 'consume':
      return consume;
  }
}

parentPort!.on('message', (cmd: UmaBenchCommand) => {
  const step = stepFor(cmd.mode);
  // Warm-up (JIT, caches) outside the measured window; the producer/consumer warm up as pairs.
  timed(cmd.mode === 'produce' || cmd.mode === 'consume' ? stepFor('pairs') : step, cmd.warmMs);
  parentPort!.postMessage({ ready: true });
  while (Atomics.load(ctrl, CTRL_GO) !== cmd.go) Atomics.wait(ctrl, CTRL_GO, Atomics.load(ctrl, CTRL_GO), 100);
  const r = timed(step, cmd.ms, cmd.mode);
  if (cmd.mode === 'consume') {
    // Drain what the producer left so nothing leaks; those frees are not counted.
    while (Atomics.load(ctrl, CTRL_STOP) === 0 || Atomics.load(ring, RING_TAIL) !== ring[RING_HEAD]) consume(CHUNK);
  }
  uma.flushCpuCaches();
  const report: UmaBenchReport = { ops: r.ops, seconds: r.seconds, cpu: arena.cpu, sink };
  parentPort!.postMessage(report);
});
