/**
 * Worker for the exhaustion tests: a CPU that makes one M_WAITOK allocation
 * when the control block says it is its turn, records the order in which it
 * was served, holds the item until told to let go, then frees it.
 *
 * Control block (Int32Array over its own SharedArrayBuffer):
 *   [C_TURN]          whose turn it is to go to sleep (worker ids in order)
 *   [C_SERVED]        next serve sequence number (Atomics.add)
 *   [C_ORDER + id]    serve sequence number of worker id (-1 = not served)
 *   [C_ITEM + id]     the item worker id got
 *   [C_RELEASE]       1: free the item and exit
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { M_WAITOK } from '../../uma/flags.js';

export const C_TURN = 0;
export const C_SERVED = 1;
export const C_RELEASE = 2;
export const C_ORDER = 8;
export const C_ITEM = 24;
export const C_WORDS = 40;

interface SleeperData {
  sab: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  id: number;
  zone: string;
}

/** Block this worker until ctl[idx] === value. */
function waitFor(ctl: Int32Array, idx: number, value: number): void {
  for (let v = Atomics.load(ctl, idx); v !== value; v = Atomics.load(ctl, idx)) Atomics.wait(ctl, idx, v, 100);
}

if (parentPort !== null && workerData !== null && (workerData as SleeperData).ctl !== undefined) {
  const { sab, ctl: ctlSab, id, zone: zoneName } = workerData as SleeperData;
  const ctl = new Int32Array(ctlSab);
  const arena = Arena.attach(sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  uma.logger = () => {};
  const zone = uma.zone(zoneName);
  parentPort.postMessage({ ready: true, cpu: arena.cpu });
  waitFor(ctl, C_TURN, id);
  const item = zone.alloc(M_WAITOK);
  const seq = Atomics.add(ctl, C_SERVED, 1);
  Atomics.store(ctl, C_ITEM + id, item);
  Atomics.store(ctl, C_ORDER + id, seq);
  Atomics.notify(ctl, C_SERVED);
  waitFor(ctl, C_RELEASE, 1);
  zone.free(item);
  uma.flushCpuCaches();
  parentPort.postMessage({ done: true });
}
