// Consumer worker of the mbuf benchmark's cross-worker handoff. Every mode does
// the same per-packet work on the received packet: read its first data byte and
// its length (so the bytes are really reached) and drop it.
//  'ring'    chains arrive by handle through an SPSC ring in a SharedArrayBuffer;
//            the consumer frees them (m_freem).
//  'recycle' as 'ring', but the handle goes back to the producer through a
//            second ring (a pool: no allocation on either side).
//  'copy'    byte arrays arrive by postMessage (structured clone copies them);
//            dropping them leaves them to the GC.
// Ring layout (Int32Array): [0] head (written by the producer), [1] tail
// (written by the consumer), [2..] slots; -1 in a slot ends the run.
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../arena/arena.js';
import { Uma } from '../../uma/uma.js';
import * as MB from '../../mbuf/index.js';

const d = workerData as { sab: SharedArrayBuffer; ring: SharedArrayBuffer; back: SharedArrayBuffer; mode: 'ring' | 'recycle' | 'copy' };
let sum = 0;

if (d.mode === 'copy') {
  let got = 0;
  parentPort!.on('message', (msg: Uint8Array | number) => {
    if (typeof msg === 'number') {
      parentPort!.postMessage(got + (sum & 0));
      got = 0;
      return;
    }
    sum += msg[0] + msg.length;
    got++;
    if ((got & 1023) === 0) parentPort!.postMessage(-got); // window acknowledgement
  });
  parentPort!.postMessage('ready');
} else {
  const arena = Arena.attach(d.sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const mb = MB.Mbufs.attach(uma);
  const i32 = mb.i32;
  const u8 = mb.u8;
  const ring = new Int32Array(d.ring);
  const SLOTS = ring.length - 2;
  const back = d.mode === 'recycle' ? new Int32Array(d.back) : null;
  let bhead = 0;
  parentPort!.postMessage('ready');
  let got = 0;
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
      if (m === -1) {
        stop = true;
        break;
      }
      sum += u8[i32[(m + MB.M_DATA) >> 2]] + i32[(m + MB.PH_LEN) >> 2];
      got++;
      if (back === null) {
        mb.m_freem(m);
      } else {
        // The return ring has as many slots as the pool: it never fills.
        back[2 + (bhead % (back.length - 2))] = m;
        bhead++;
        if ((bhead & 31) === 0) Atomics.store(back, 0, bhead);
      }
    }
    Atomics.store(ring, 1, tail);
    Atomics.notify(ring, 1); // a producer waiting for room
    if (back !== null) {
      Atomics.store(back, 0, bhead);
      Atomics.notify(back, 0); // a producer waiting for pooled packets
    }
    if (stop) break;
  }
  uma.flushCpuCaches();
  parentPort!.postMessage(got + (sum & 0));
}
