// Multi-worker stress: 4 real worker threads, over a million random operations,
// items handed between workers through shared rings (freed on a CPU other than
// the one that allocated), ending with every zone empty again. Debug mode: the
// core throws on a double free, and each free checks the item's owner token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { testUma, leakCheck } from '../helpers.js';
import { zoneStats } from '../../uma/stats.js';
import { witness } from '../../kern/lock/witness.js';
import { CTL_WORDS, RING_STRIDE, STRESS_ZONES, stressCallbacks } from '../workers/uma-stress.js';

const WORKER = new URL('../workers/uma-stress.js', import.meta.url);
const NWORKERS = 4;
const TOTAL_OPS = 1_000_000;

// Debug mode checks every free (double free, foreign item, trash) but takes the
// slow paths; plain mode runs the real lock-free fast paths under the same load.
for (const debug of [true, false])
test(`${NWORKERS} workers, ${TOTAL_OPS} random operations with cross-CPU frees (${debug ? 'debug' : 'fast paths'}): every zone ends empty`, async () => {
  const uma = testUma({ size: 128 << 20, ncpus: 8, debug });
  const done = leakCheck(uma);
  const cbs = stressCallbacks(uma.arena.i32);
  const small = uma.zcreate('st.small', { size: 64 });
  const ctor = uma.zcreate('st.ctor', { size: 256, ...cbs['st.ctor'] });
  const big = uma.zcreate('st.big', { size: 2048 });
  const sec = uma.zsecondCreate('st.sec', cbs['st.sec'], big);
  small.setMaxItems(128); // some NOWAIT failures at the limit, under contention
  const zones = [small, ctor, big, sec];
  assert.deepEqual(zones.map((z) => z.name), [...STRESS_ZONES]);

  const rings = new SharedArrayBuffer(NWORKERS * RING_STRIDE * 4);
  const ctl = new SharedArrayBuffer(CTL_WORDS * 4);
  const workers: Worker[] = [];
  const results = await Promise.all(
    Array.from({ length: NWORKERS }, (_, id) => {
      const w = new Worker(WORKER, {
        workerData: { sab: uma.arena.sab, rings, ctl, id, nworkers: NWORKERS, ops: TOTAL_OPS / NWORKERS, seed: 0x9e3779b1 * (id + 1) },
      });
      workers.push(w);
      return new Promise<Record<string, number>>((res, rej) => {
        w.once('message', res);
        w.once('error', rej);
        w.once('exit', (code) => code !== 0 && rej(new Error(`worker ${id} exited with ${code}`)));
      });
    }),
  ).finally(() => Promise.all(workers.map((w) => w.terminate())));

  const sum = (k: string) => results.reduce((a, r) => a + r[k], 0);
  assert.ok(sum('allocs') > TOTAL_OPS / 4, `allocations: ${sum('allocs')}`);
  assert.equal(sum('sent'), sum('received'), 'every handed-over item was freed by the receiver');
  assert.ok(sum('sent') > TOTAL_OPS / 50, `handed over: ${sum('sent')}`);
  assert.equal(sum('allocs'), sum('frees'), 'every allocation freed exactly once');
  assert.equal(sum('witnessReports'), 0, 'no lock-order or sleep reports');
  assert.ok(sum('fails') > 0, 'the limited zone refused some NOWAIT allocations');

  let xdomain = 0;
  for (const z of zones) {
    const st = zoneStats(z);
    assert.equal(st.used, 0, `zone ${z.name}: used ${st.used}`);
    xdomain += st.xdomain;
  }
  assert.ok(xdomain >= sum('received'), `cross-CPU frees counted: ${xdomain}`);
  assert.equal(witness.reports.length, 0);
  // Everything the workers cached went to the zones' lists: a drain empties them.
  for (const z of [sec, small, ctor, big]) z.drain();
  for (const z of zones) assert.equal(z.items, 0, `zone ${z.name} holds ${z.items} items after the drain`);
  for (const z of [small, ctor, big]) {
    assert.equal(z.keg.freeItems, 0, `keg of ${z.name}`);
    assert.equal(z.keg.pagesHeld, 0, `keg of ${z.name} keeps ${z.keg.pagesHeld} pages`);
  }
  done();
});
