/**
 * Child process of the async-allocation test. The main thread fills a zone to
 * its limit and waits in zone.allocAsync; an unref'd worker frees the item
 * 200 ms later. Nothing else keeps the event loop busy, so the process prints
 * "served" only if the pending asynchronous wait keeps it alive.
 */
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { M_NOWAIT, M_WAITOK } from '../../uma/flags.js';

if (isMainThread) {
  const uma = Uma.create({ size: 8 << 20, ncpus: 4, debug: true });
  uma.logger = () => {};
  const zone = uma.zcreate('async', { size: 128 });
  zone.setMaxItems(1);
  const item = zone.alloc(M_NOWAIT);
  const w = new Worker(new URL(import.meta.url), { workerData: { sab: uma.arena.sab, item } });
  w.unref();
  void zone.allocAsync(M_WAITOK).then((got) => {
    console.log(got > 0 && got === item ? 'served' : `wrong item ${got}`);
    zone.free(got);
  });
} else {
  const { sab, item } = workerData as { sab: SharedArrayBuffer; item: number };
  const arena = Arena.attach(sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const zone = uma.zone('async');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  zone.free(item);
  uma.flushCpuCaches();
}
