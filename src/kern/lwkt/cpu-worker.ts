/**
 * Entry point of a CPU worker: attach to the arena, register as a CPU, bind
 * the MP zones, load the handler modules (each exports `register(td)`), tell
 * the machine it is ready and run the protocol thread until the machine stops.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { MC_CLOCK_F64, MC_CLOCK_MODE, MC_CLOCK_SEQ, MC_RSS_KEY, MC_STARTED, MCLOCK_MANUAL } from './layout.js';
import { RSS_KEY_NAMES, useRssKey } from '../../net/rss.js';
import { realClock, SharedClock, type Clock } from '../clock.js';
import { MsgContext } from './msgport.js';
import { IDLE_BLOCK_US_DEFAULT, ProtocolThread } from './protothread.js';
import { tunableIndex } from '../sysctl/tunables.js';

export interface CpuWorkerData {
  sab: SharedArrayBuffer;
  record: number;
  magic: number;
  cpu: number;
  handlers: string[];
  spinUs: number;
}

export interface HandlerModule {
  register(td: ProtocolThread): void | Promise<void>;
}

async function main(): Promise<void> {
  const wd = workerData as CpuWorkerData;
  const arena = Arena.attach(wd.sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  uma.logger = (m) => parentPort!.postMessage({ type: 'log', cpu: wd.cpu, message: m });
  const ctx = new MsgContext(uma, wd.record, wd.cpu, wd.magic);
  const r = wd.record >> 2;
  // Held for the worker's life: one machine per CPU worker.
  useRssKey(RSS_KEY_NAMES[Atomics.load(arena.i32, r + MC_RSS_KEY)]);
  const clock: Clock = Atomics.load(arena.i32, r + MC_CLOCK_MODE) === MCLOCK_MANUAL ? new SharedClock(wd.sab, r + MC_CLOCK_SEQ, wd.record + MC_CLOCK_F64 * 4) : realClock;
  const td = new ProtocolThread(ctx, clock);
  td.spinUs = wd.spinUs;
  td.spinIdx = ctx.spinIdx; // kern.mp.spin_us, read live
  td.blockIdx = tunableIndex(arena, 'kern.mp.idle_block_us', IDLE_BLOCK_US_DEFAULT);
  for (const path of wd.handlers) {
    const url = path.startsWith('file:') ? path : pathToFileURL(path).href;
    const mod = (await import(url)) as Partial<HandlerModule>;
    if (typeof mod.register !== 'function') throw new Error(`handler module ${path} exports no register(td)`);
    await mod.register(td);
  }
  // Atomics.waitAsync does not keep an event loop alive; the port listener does
  // (and lets the machine kick a CPU by message, for tools).
  parentPort!.on('message', (m: unknown) => {
    if (m === 'kick') td.kick();
  });
  Atomics.add(arena.i32, (wd.record >> 2) + MC_STARTED, 1);
  parentPort!.postMessage({ type: 'ready', cpu: wd.cpu });
  td.start(() => {
    parentPort!.postMessage({ type: 'stopped', cpu: wd.cpu, handled: td.handled, sleeps: td.sleeps });
    parentPort!.close();
    // The shutdown hooks have run and the caches are flushed: whatever JS
    // timers or handles a handler left (a pending setTimeout) must not keep
    // this CPU, and so machine.stop(), waiting. One more turn lets pending
    // I/O callbacks run, then the worker ends.
    setImmediate(() => process.exit(0));
  });
}

void main().catch((e) => {
  // Rethrow outside the promise chain: the machine sees an 'error' event with this CPU's id.
  setImmediate(() => {
    throw e;
  });
});
