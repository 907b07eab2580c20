/**
 * Worker of the REFCNT race test (the seed's ref_cnt race): drops one reference
 * from every item in a shared list with a single atomic decrement; whoever
 * takes a counter from 1 to 0 is the last holder and frees the item.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';

interface RefData {
  sab: SharedArrayBuffer;
  list: SharedArrayBuffer;
  zone: string;
  start: number;
}

if (parentPort !== null && workerData !== null && (workerData as RefData).list !== undefined) {
  const d = workerData as RefData;
  const arena = Arena.attach(d.sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const z = uma.zone(d.zone);
  const list = new Int32Array(d.list);
  const i32 = arena.i32;
  let freed = 0;
  // Each worker walks the list from a different start, so the last reference moves around.
  for (let k = 0; k < list.length; k++) {
    const item = list[(d.start + k) % list.length];
    if (Atomics.sub(i32, z.keg.refcntIndex(item), 1) === 1) {
      z.free(item);
      freed++;
    }
  }
  uma.flushCpuCaches();
  parentPort.postMessage({ freed });
}
