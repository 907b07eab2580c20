/**
 * Worker of the cross-free bucket tests: a CPU that frees what another CPU
 * allocated (TCP's send path: the protocol CPU frees what the user CPU
 * built). Frees every handle of a shared list, reports its cross-free bucket,
 * then on command flushes its caches as a CPU going away does (or exits
 * without, when told so) and reports again.
 *
 * Control words: [0] step (main -> worker: 1 = flush and report, 2 = exit).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { waitStep } from './step.js';

interface XfreeData {
  sab: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  list: SharedArrayBuffer;
  zone: string;
}

if (parentPort !== null && workerData !== null && (workerData as XfreeData).list !== undefined) {
  const d = workerData as XfreeData;
  const ctl = new Int32Array(d.ctl);
  const arena = Arena.attach(d.sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const z = uma.zone(d.zone);
  const list = new Int32Array(d.list);
  for (let k = 0; k < list.length; k++) z.free(list[k]);
  parentPort.postMessage({ cpu: arena.cpu, cross: z.crossCachedHere, cached: z.cachedHere });
  waitStep(ctl, 1);
  uma.flushCpuCaches();
  parentPort.postMessage({ cross: z.crossCachedHere, cached: z.cachedHere });
  waitStep(ctl, 2);
}
