/**
 * Worker for the per-CPU cache tests: allocates and frees `n` items of a zone
 * so that they sit in its per-CPU cache, reports, then on command calls
 * uma.poll() (the idle loop honouring drain requests) and reports what it
 * still caches.
 *
 * Control words: [0] step (main -> worker: 1 = poll, 2 = exit), [1] worker -> main.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { waitStep } from './step.js';
import { M_NOWAIT } from '../../uma/flags.js';

interface CpuData {
  sab: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  zone: string;
  n: number;
}

if (parentPort !== null && workerData !== null && (workerData as CpuData).zone !== undefined) {
  const d = workerData as CpuData;
  const ctl = new Int32Array(d.ctl);
  const arena = Arena.attach(d.sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const z = uma.zone(d.zone);
  const items: number[] = [];
  for (let i = 0; i < d.n; i++) items.push(z.alloc(M_NOWAIT));
  for (const it of items) z.free(it);
  parentPort.postMessage({ cpu: arena.cpu, cached: z.cachedHere });
  waitStep(ctl, 1);
  uma.poll();
  parentPort.postMessage({ cached: z.cachedHere });
  waitStep(ctl, 2);
}
