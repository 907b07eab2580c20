// Per-CPU caches across real workers: another CPU's cache is drained by
// request, honoured when that CPU polls; bucket sizes grow when the zone lock
// is contended by another thread; REFCNT counters (kept with the slab) shared
// by several CPUs, the last decrement freeing (the seed's ref_cnt race).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { testUma, leakCheck } from '../helpers.js';
import { nextMessage, signalStep } from '../workers/step.js';
import { zoneStats } from '../../uma/stats.js';
import { M_NOWAIT, UMA_ZONE_REFCNT } from '../../uma/flags.js';

const CPU_WORKER = new URL('../workers/uma-cpu.js', import.meta.url);
const LOCK_WORKER = new URL('../workers/uma-witness.js', import.meta.url);
const REF_WORKER = new URL('../workers/uma-refcnt.js', import.meta.url);


test("another CPU's cache is drained by request, honoured when it polls", async () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('remote', { size: 128 });
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const w = new Worker(CPU_WORKER, { workerData: { sab: uma.arena.sab, ctl: ctl.buffer, zone: 'remote', n: 100 } });
  try {
    const first = await nextMessage(w);
    assert.ok(first.cached > 0, 'the worker caches freed items');
    assert.ok(z.items >= 100, 'its cached items are still charged to the zone');
    z.drain(); // cannot reach the worker's cache: only asks for it
    assert.ok(z.items >= first.cached, 'a drain leaves another CPU cache alone until it honours the request');
    z.requestCpuDrain(first.cpu);
    const polled = nextMessage(w);
    signalStep(ctl, 1);
    assert.equal((await polled).cached, 0, 'the worker flushed its cache at poll()');
    z.drain();
    assert.equal(z.items, 0, 'the flushed buckets were drained back to the keg');
    assert.equal(z.keg.pagesHeld, 0);
  } finally {
    signalStep(ctl, 2);
    await w.terminate();
  }
  done();
});

test('bucket size grows when the zone lock is contended', async () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('grow', { size: 256 });
  const start = z.bucketSize;
  const sig = new Int32Array(new SharedArrayBuffer(8));
  const w = new Worker(LOCK_WORKER, {
    workerData: { sab: uma.arena.sab, role: 'hold', a: z.lock.index, b: 0, classA: 'UMA zone', classB: 'test unused', ms: 50, signal: sig.buffer },
  });
  const finished = nextMessage(w);
  while (Atomics.load(sig, 0) === 0) await new Promise((r) => setTimeout(r, 1));
  z.trim(); // takes the zone lock, which the worker holds: contended
  assert.equal((await finished).ok, true);
  assert.equal(z.bucketSize, start + 1, 'contention grew the bucket size by one');
  z.trim(); // uncontended: no further growth
  assert.equal(z.bucketSize, start + 1);
  assert.ok(z.bucketSize <= z.bucketMax);
  await w.terminate();
  done();
});

test('REFCNT counters shared by 4 workers: the last atomic decrement frees each item exactly once', async () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('rc', { size: 2048, flags: UMA_ZONE_REFCNT });
  const N = 3000;
  const list = new Int32Array(new SharedArrayBuffer(N * 4));
  for (let k = 0; k < N; k++) {
    const it = z.alloc(M_NOWAIT);
    list[k] = it;
    Atomics.store(uma.arena.i32, z.keg.refcntIndex(it), 4);
  }
  const res = await Promise.all(
    Array.from({ length: 4 }, (_, w) => {
      const worker = new Worker(REF_WORKER, { workerData: { sab: uma.arena.sab, list: list.buffer, zone: 'rc', start: (w * N) / 4 } });
      return nextMessage(worker).finally(() => worker.terminate());
    }),
  );
  assert.equal(res.reduce((a, r) => a + r.freed, 0), N, 'each item freed once (a second free would throw: debug mode)');
  assert.equal(zoneStats(z).used, 0);
  z.drain();
  assert.equal(z.keg.pagesHeld, 0);
  done();
});
