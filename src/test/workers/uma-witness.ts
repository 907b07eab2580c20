/**
 * Worker for the lock tests. Roles (workerData.role):
 *   order    take class A then class B, release both (establishes A -> B)
 *   reverse  take class B then class A; report the witness error it raises
 *   hold     take the lock at word `a`, signal, keep it `ms` milliseconds, release
 *   count    `n` times: lock word `a`, bump the plain (non-atomic) word `b`, unlock
 * Locks are futex words in the arena; witness is on when the arena is in debug mode.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Mutex } from '../../kern/lock/mutex.js';
import { witness } from '../../kern/lock/witness.js';
import type { SlabnetError } from '../../kern/errors.js';

interface LockData {
  sab: SharedArrayBuffer;
  role: 'order' | 'reverse' | 'hold' | 'count';
  a: number;
  b: number;
  classA: string;
  classB: string;
  ms?: number;
  n?: number;
  signal?: SharedArrayBuffer;
}

function run(d: LockData): unknown {
  const arena = Arena.attach(d.sab);
  arena.registerCpu();
  witness.attach(arena.i32, arena.witnessRegion, arena.debug);
  const i32 = arena.i32;
  const A = new Mutex(i32, d.a, d.classA);
  const B = new Mutex(i32, d.b, d.classB);
  switch (d.role) {
    case 'order':
      A.lock();
      B.lock();
      B.unlock();
      A.unlock();
      return { ok: true };
    case 'reverse':
      B.lock();
      try {
        A.lock();
        A.unlock();
        return { ok: true };
      } catch (e) {
        const err = e as SlabnetError;
        return { code: err.code, message: err.message };
      } finally {
        B.unlock();
      }
    case 'hold': {
      const sig = new Int32Array(d.signal!);
      A.lock();
      Atomics.store(sig, 0, 1);
      Atomics.notify(sig, 0);
      Atomics.wait(sig, 1, 0, d.ms ?? 50);
      A.unlock();
      return { ok: true };
    }
    case 'count':
      for (let k = 0; k < (d.n ?? 0); k++) {
        A.lock();
        i32[d.b] = i32[d.b] + 1;
        A.unlock();
      }
      return { ok: true, contended: A.contended };
  }
}

if (parentPort !== null && workerData !== null && (workerData as LockData).role !== undefined) {
  parentPort.postMessage(run(workerData as LockData));
}
