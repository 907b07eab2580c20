/**
 * One side of the cross-thread accept-queue test: the producer inserts the
 * handles 4, 8, ... 4·total into the queue whenever there is room (retrying
 * a refusal, as a listener's CPU would drop and a client retry); each
 * consumer takes until it has seen the end marker count, recording what it
 * took in its own slice of a shared Int32Array, so the parent can check that
 * every connection was taken exactly once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { AcceptQueues } from '../../kern/socket/soqueue.js';

interface Data {
  sab: SharedArrayBuffer;
  q: number;
  role: 'producer' | 'consumer';
  total: number;
  /** Consumers: where to record taken handles, and the shared taken counter. */
  out?: Int32Array;
  done?: Int32Array;
}
const wd = workerData as Data;
const arena = Arena.attach(wd.sab);
arena.registerCpu();
const uma = Uma.attach(arena);
const aq = new AcceptQueues(uma);
let refused = 0;
if (wd.role === 'producer') {
  for (let i = 1; i <= wd.total; ) {
    if (aq.insert(wd.q, i * 4)) i++;
    else refused++;
  }
} else {
  const out = wd.out!;
  const done = wd.done!;
  let n = 0;
  while (Atomics.load(done, 0) < wd.total) {
    const so = aq.take(wd.q);
    if (so === 0) continue;
    out[n++] = so;
    Atomics.add(done, 0, 1);
  }
  out[out.length - 1] = n;
}
parentPort!.postMessage({ refused });
