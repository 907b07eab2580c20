// Worker of the mbuf benchmark's cross-worker handoff: frees chains received by
// handle through a shared ring ('ring' mode), or counts postMessage'd byte copies ('copy' mode).
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../arena/arena.js';
import { Uma } from '../../uma/uma.js';
import * as MB from '../../mbuf/index.js';

const d = workerData as { sab: SharedArrayBuffer; ring: SharedArrayBuffer; mode: 'ring' | 'copy' };
if (d.mode === 'ring') {
  const arena = Arena.attach(d.sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const mb = MB.Mbufs.attach(uma);
  const ring = new Int32Array(d.ring);
  const SLOTS = ring.length - 2;
  parentPort!.postMessage('ready');
  let freed = 0;
  for (;;) {
    const head = Atomics.load(ring, 0);
    let tail = ring[1];
    if (head === tail) {
      Atomics.wait(ring, 0, head, 50);
      continue;
    }
    let stop = false;
    while (tail !== head) {
      const m = ring[2 + (tail % SLOTS)];
      tail++;
      if (m === -1) stop = true;
      else {
        mb.m_freem(m);
        freed++;
      }
    }
    Atomics.store(ring, 1, tail);
    if (stop) break;
  }
  uma.flushCpuCaches();
  parentPort!.postMessage(freed);
} else {
  let got = 0;
  parentPort!.on('message', (msg: Uint8Array | number) => {
    if (typeof msg === 'number') {
      parentPort!.postMessage(got);
      got = 0;
      return;
    }
    got += msg.length > 0 ? 1 : 0;
  });
  parentPort!.postMessage('ready');
}
