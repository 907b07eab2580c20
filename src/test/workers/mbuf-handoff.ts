// Consumer worker of the mbuf benchmark's cross-worker handoff. Every mode does
// the same per-packet work on the received packet: read its first data byte and
// its length (so the bytes are really reached) and drop it.
//  'ring'    chains arrive by handle through an SPSC ring in a SharedArrayBuffer;
//            the consumer frees them (m_freem).
//  'recycle' as 'ring', but the handle goes back to the producer through a
//            second ring (a pool: no allocation on either side).
//  'copy'    byte arrays arrive by postMessage (structured clone copies them);
//            dropping them leaves them to the GC.
// Rings: mbuf-handoff-ring.ts; -1 in a slot ends a run.
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import * as MB from '../../kern/mbuf/index.js';
import { SpscRing } from './mbuf-handoff-ring.js';

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
  const ring = new SpscRing(d.ring);
  const back = d.mode === 'recycle' ? new SpscRing(d.back) : null;
  parentPort!.postMessage('ready');
  // Runs follow each other (a warm-up, then the timed one); each ends with -1,
  // answered with the number of packets it carried. The producer terminates us.
  for (;;) {
    const got = oneRun();
    uma.flushCpuCaches();
    parentPort!.postMessage(got + (sum & 0));
  }

  function oneRun(): number {
    let got = 0;
    for (;;) {
      let n = ring.waitData();
      let stop = false;
      for (; n > 0; n--) {
        const m = ring.pop();
        if (m === -1) {
          stop = true;
          break;
        }
        sum += u8[i32[(m + MB.M_DATA) >> 2]] + i32[(m + MB.PH_LEN) >> 2];
        got++;
        if (back === null) mb.m_freem(m);
        else back.push(m); // the return ring holds the whole pool: never full
      }
      ring.release();
      if (back !== null) back.flush();
      if (stop) return got;
    }
  }
}
