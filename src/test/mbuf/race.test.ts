// Multi-worker reference-count race (DPDK-style): clusters shared many times over,
// released concurrently on other CPUs; each storage is freed exactly once and the pool ends full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { leakCheck } from '../helpers.js';
import { zoneStats } from '../../uma/stats.js';
import { setup } from './util.js';
import * as MB from '../../kern/mbuf/index.js';

const { M_NOWAIT, MT_DATA } = MB;

const workerPath = fileURLToPath(new URL('../workers/mbuf-race.js', import.meta.url));

function run(data: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerPath, { workerData: data });
    w.once('message', () => resolve());
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exit ${code}`))));
  });
}

test('refcount race: shared storages released on 3 CPUs are freed exactly once', async () => {
  const { uma, mb } = setup();
  const done = leakCheck(uma);
  const storages = 3000;
  const copies = 6;
  const freed = new SharedArrayBuffer(storages * 4);
  const consumers = 2;
  const rings = Array.from({ length: consumers }, () => new SharedArrayBuffer((2 + 1024) * 4));
  const base = { sab: uma.arena.sab, freed, storages, copies };
  await Promise.all([
    run({ ...base, role: 'producer', index: 0, rings }),
    ...rings.map((r, i) => run({ ...base, role: 'consumer', index: i + 1, rings: [r] })),
  ]);
  const counts = new Int32Array(freed);
  for (let i = 0; i < storages; i += 2) assert.equal(counts[i], 1, `user storage ${i} freed ${counts[i]} times`);
  for (let i = 1; i < storages; i += 2) assert.equal(counts[i], 0);
  // Packet items whose last reference went on another CPU (an atomic release)
  // come back from the zone whole: counter at 1, writable, own descriptor.
  const again: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
    assert.ok(m !== 0);
    assert.equal(mb.extRefs(m), 1);
    assert.equal(MB.M_WRITABLE(mb, m), true);
    assert.equal(mb.i32[(m + MB.EXT_CNT) >> 2], m + MB.EXT_COUNT);
    again.push(m);
  }
  for (const m of again) mb.m_free(m);
  mb.drainPacketCache();
  assert.equal(zoneStats(mb.zMbuf).used, 0);
  assert.equal(zoneStats(mb.zPack).used, 0);
  assert.equal(zoneStats(mb.zClust).used, 0);
  assert.deepEqual(mb.typeCounts().filter((x) => x !== 0), []);
  done();
});
