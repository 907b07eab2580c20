// Zone registry: zfindOrCreate lets CPUs that start together set up the same
// zone without racing (helper-9's report: two CPU workers both creating
// "sockbuf" made one fail with 'zone "sockbuf" already exists').
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { testUma, leakCheck } from '../helpers.js';

const ARENA_JS = fileURLToPath(new URL('../../vm/arena.js', import.meta.url));
const UMA_JS = fileURLToPath(new URL('../../uma/uma.js', import.meta.url));

test('zfindOrCreate returns the existing zone, and refuses another item size', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const a = uma.zfindOrCreate('reg-a', { size: 128 });
  const b = uma.zfindOrCreate('reg-a', { size: 128 });
  assert.equal(a, b);
  assert.throws(() => uma.zfindOrCreate('reg-a', { size: 256 }), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => uma.zcreate('reg-a', { size: 128 }), /already exists/);
  done();
});

test('four workers racing to create the same zone all get the one zone', async () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    (async () => {
      const { Arena } = await import(workerData.arenaJs);
      const { Uma } = await import(workerData.umaJs);
      const arena = Arena.attach(workerData.sab);
      arena.registerCpu();
      const uma = Uma.attach(arena);
      Atomics.add(workerData.gate, 0, 1);
      while (Atomics.load(workerData.gate, 0) < 4) {} // start together
      const z = uma.zfindOrCreate('raced', { size: 512 });
      const item = z.alloc();
      z.free(item);
      uma.flushCpuCaches();
      parentPort.postMessage(z.index);
    })().catch((e) => parentPort.postMessage('error: ' + e.message));`;
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const results = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<unknown>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { sab: uma.arena.sab, gate, arenaJs: ARENA_JS, umaJs: UMA_JS } });
          w.once('message', (m) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  assert.ok(results.every((r) => typeof r === 'number'), `a worker failed: ${JSON.stringify(results)}`);
  assert.equal(new Set(results).size, 1);
  assert.equal(uma.zone('raced').index, results[0]);
  done();
});
