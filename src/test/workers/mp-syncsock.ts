/**
 * A user worker for the blocking socket calls: it attaches to the machine,
 * drives a socketpair with the *Sync forms only, then blocks in recvSync on
 * a socket the main thread lent it (workerData.so) until the main thread
 * sends to it. Reports what it saw; the test thread asserts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { attachMachine } from '../../kern/lwkt/user.js';
import type { MachineInfo } from '../../kern/lwkt/msgport.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { Socket, SocketLayer } from '../../kern/socket/socket.js';
import { IPPROTO_LOOP, LOOP_LEVEL, LOOP_TAG } from '../../kern/socket/loopdgram.js';

const wd = workerData as { info: MachineInfo; so: number };
const ctx = attachMachine(wd.info);
const mb = Mbufs.attach(ctx.uma);
const layer = new SocketLayer(ctx, mb);
const codeOf = (f: () => unknown): string => {
  try {
    f();
    return 'none';
  } catch (e) {
    return String((e as { code?: string }).code);
  }
};

const [a, b] = layer.socketpairSync(IPPROTO_LOOP);
let inOrder = 0;
for (let i = 0; i < 20; i++) a.sendSync(Uint8Array.from({ length: 5 + i }, (_, k) => (k * 3 + i) & 0xff));
for (let i = 0; i < 20; i++) {
  const d = b.recvSync(1000)!;
  if (d.data.length === 5 + i && d.data[1] === ((3 + i) & 0xff) && new DataView(d.from!.buffer).getUint32(0) === a.pcb) inOrder++;
}
a.setsockoptIntSync(LOOP_LEVEL, LOOP_TAG, 777);
const tag = a.getsockoptIntSync(LOOP_LEVEL, LOOP_TAG);
const wrongSize = codeOf(() => a.setsockoptSync(LOOP_LEVEL, LOOP_TAG, new Uint8Array(2)));
const t0 = performance.now();
const timeout = codeOf(() => b.recvSync(30));
const waited = performance.now() - t0;
a.shutdownSync();
const eof = b.recvSync(1000);
a.closeSync();
b.closeSync();
const closedSend = codeOf(() => a.sendSync(Uint8Array.of(1)));

// Blocking wake-up: sleep in recvSync until the main thread's datagram arrives.
const lent = new Socket(layer, wd.so);
parentPort!.postMessage({ type: 'blocking' });
const d = lent.recvSync(10_000);
ctx.uma.flushCpuCaches();
parentPort!.postMessage({ type: 'done', inOrder, tag, wrongSize, timeout, waited, eof, closedSend, lent: d === null ? null : [...d.data], open: layer.open.size });
