// Worker of the mbuf reference-count race test (DPDK-style): the producer shares
// storages many times over (m_copym references) and hands the references to
// consumers through SPSC rings; everyone frees. The ext free routine counts frees.
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import * as MB from '../../kern/mbuf/index.js';

interface Data {
  sab: SharedArrayBuffer;
  rings: SharedArrayBuffer[];
  freed: SharedArrayBuffer;
  role: 'producer' | 'consumer';
  index: number;
  storages: number;
  copies: number;
}
const d = workerData as Data;
const arena = Arena.attach(d.sab);
arena.registerCpu();
const uma = Uma.attach(arena);
uma.logger = () => {};
const mb = MB.Mbufs.attach(uma, { seed: 99 + d.index });
const freed = new Int32Array(d.freed);
const EXT_ID = 1;
// The free routine: count the free of storage arg1 and give the cluster back.
mb.registerExtFree(EXT_ID, (_m, buf, arg1) => {
  Atomics.add(freed, arg1, 1);
  mb.zClust.free(buf);
});

const RING_SLOTS = 1024;
function push(ring: Int32Array, v: number): void {
  for (;;) {
    const head = Atomics.load(ring, 0);
    const tail = Atomics.load(ring, 1);
    if (head - tail < RING_SLOTS) {
      ring[2 + (head % RING_SLOTS)] = v;
      Atomics.store(ring, 0, head + 1);
      Atomics.notify(ring, 0);
      return;
    }
    Atomics.wait(ring, 1, tail, 5);
  }
}
function pop(ring: Int32Array): number {
  for (;;) {
    const head = Atomics.load(ring, 0);
    const tail = Atomics.load(ring, 1);
    if (head !== tail) {
      const v = ring[2 + (tail % RING_SLOTS)];
      Atomics.store(ring, 1, tail + 1);
      Atomics.notify(ring, 1);
      return v;
    }
    Atomics.wait(ring, 0, head, 5);
  }
}

const rings = d.rings.map((r) => new Int32Array(r));
if (d.role === 'producer') {
  let k = 0;
  for (let i = 0; i < d.storages; i++) {
    let m: number;
    if (i % 2 === 0) {
      // User storage over a cluster, freed by the registered routine.
      m = mb.m_gethdr(MB.M_WAITOK, MB.MT_DATA);
      const buf = mb.zClust.alloc(MB.M_WAITOK);
      mb.m_extadd(m, buf, MB.MCLBYTES, EXT_ID, i, 0, 0);
    } else {
      m = mb.m_getcl(MB.M_WAITOK, MB.MT_DATA, MB.M_PKTHDR);
    }
    mb.setLen(m, 100);
    mb.setPkthdrLen(m, 100);
    for (let c = 0; c < d.copies; c++) {
      const n = MB.m_copym(mb, m, 0, MB.M_COPYALL, MB.M_WAITOK);
      push(rings[k++ % rings.length], n);
    }
    mb.m_freem(m);
  }
  for (const r of rings) push(r, -1);
} else {
  const ring = rings[0];
  for (;;) {
    const m = pop(ring);
    if (m === -1) break;
    mb.m_freem(m);
  }
}
mb.drainPacketCache();
uma.flushCpuCaches();
parentPort!.postMessage('done');
