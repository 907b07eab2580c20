/**
 * One CPU of the demo: allocates packet-zone items and malloc memory of
 * random sizes, stamps each with its origin, hands it to the next CPU through
 * a shared ring, and frees (after checking the stamp) what the previous CPU
 * handed over: every item it receives was allocated on another CPU.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../vm/arena.js';
import { Uma } from '../uma/uma.js';
import { Malloc } from '../uma/malloc.js';
import { M_NOWAIT } from '../uma/flags.js';
import { HandleRing } from './ring.js';
import { C_PROGRESS, C_STOP, C_STOPPED, C_STRIDE, DEMO_ZONE, type DemoWorkerData, type DemoWorkerReport } from './demo-protocol.js';

const data = workerData as DemoWorkerData;
const arena = Arena.attach(data.sab);
arena.registerCpu();
const uma = Uma.attach(arena);
uma.logger = () => {};
const zone = uma.zone(DEMO_ZONE);
const malloc = new Malloc(uma);
const ctrl = new Int32Array(data.ctrl);
const inbox = new HandleRing(data.inbox);
const outbox = new HandleRing(data.outbox);
const i32 = arena.i32;

// Stamp layout in the first words of every item: magic, origin cpu, kind (0 = zone, else malloc size).
const MAGIC = 0x51ab_0e77;
const report: DemoWorkerReport = { index: data.index, cpu: arena.cpu, allocated: 0, sent: 0, received: 0, freedLocal: 0, verifyErrors: 0, firstError: '' };
let seed = (data.index + 1) * 0x9e3779b1;

/** xorshift32: deterministic per worker, no allocation. */
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

/** Allocate one item (3 in 4 from the packet zone, else malloc of 16 B .. 12 KiB) and stamp it. */
function make(): number {
  const kind = (rand() & 3) === 0 ? 16 + (rand() % 12288) : 0;
  const h = kind === 0 ? zone.alloc(M_NOWAIT) : malloc.malloc(kind, M_NOWAIT);
  if (h === 0) return 0;
  const w = h >> 2;
  i32[w] = MAGIC;
  i32[w + 1] = arena.cpu;
  i32[w + 2] = kind;
  report.allocated++;
  return h;
}

/** Check the stamp and free through the right allocator. */
function dispose(h: number, fromOther: boolean): void {
  const w = h >> 2;
  const kind = i32[w + 2];
  if (i32[w] !== MAGIC || (fromOther && i32[w + 1] === arena.cpu)) {
    report.verifyErrors++;
    if (report.firstError === '') report.firstError = `bad stamp on 0x${h.toString(16)}: ${i32[w].toString(16)} from cpu ${i32[w + 1]}`;
  }
  i32[w] = 0;
  if (kind === 0) zone.free(h);
  else {
    if (malloc.mallocUsableSize(h) < kind) {
      report.verifyErrors++;
      if (report.firstError === '') report.firstError = `malloc item 0x${h.toString(16)} smaller than its ${kind} bytes`;
    }
    malloc.free(h);
  }
}

function receive(max: number): number {
  let n = 0;
  for (; n < max; n++) {
    const h = inbox.pop();
    if (h === 0) break;
    report.received++;
    dispose(h, data.nworkers > 1);
  }
  return n;
}

const progress = C_PROGRESS + data.index * C_STRIDE;
let ops = 0;
while (Atomics.load(ctrl, C_STOP) === 0) {
  for (let k = 0; k < 64; k++) {
    const burst = 1 + (rand() & 7);
    for (let b = 0; b < burst; b++) {
      const h = make();
      if (h === 0) break;
      if (outbox.push(h)) report.sent++;
      else {
        dispose(h, false); // the next CPU is behind: free it here
        report.freedLocal++;
      }
    }
    ops += burst + receive(64);
  }
  Atomics.store(ctrl, progress, ops);
  uma.poll();
}
// Stop producing; keep draining until every producer has stopped and our inbox is empty.
Atomics.add(ctrl, C_STOPPED, 1);
while (Atomics.load(ctrl, C_STOPPED) < data.nworkers || inbox.length > 0) {
  if (receive(1024) === 0) Atomics.wait(ctrl, C_STOPPED, Atomics.load(ctrl, C_STOPPED), 1);
}
uma.flushCpuCaches();
parentPort!.postMessage(report);
