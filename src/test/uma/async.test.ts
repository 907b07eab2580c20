// Async allocation on the main thread: zone.allocAsync waits with
// Atomics.waitAsync at the limit or on a full arena without blocking the event
// loop, and the pending wait keeps the process alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testUma, leakCheck } from '../helpers.js';
import { zoneStats } from '../../uma/stats.js';
import { M_NOWAIT, M_WAITOK } from '../../uma/flags.js';

test('allocAsync at the limit resolves when an item comes back; the event loop keeps running', async () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('async', { size: 256 });
  z.setMaxItems(2);
  const a = z.alloc(M_NOWAIT);
  const b = z.alloc(M_NOWAIT);
  assert.equal(await z.allocAsync(M_NOWAIT), 0, 'allocAsync without M_WAITOK fails at once');
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  const p = z.allocAsync(M_WAITOK);
  setTimeout(() => z.free(a), 60);
  const got = await p;
  clearInterval(ticker);
  assert.equal(got, a, 'the freed item went to the waiting allocation');
  assert.ok(ticks >= 3, `event loop ran while waiting (${ticks} ticks)`);
  assert.ok(zoneStats(z).sleeps >= 1);
  assert.equal(z.sleepers, 0);
  z.free(got);
  z.free(b);
  z.setMaxItems(0);
  z.drain();
  done();
});

test('allocAsync on a full arena resolves once pages come back', async () => {
  const uma = testUma({ size: 2 << 20 });
  const done = leakCheck(uma);
  const hog = uma.zcreate('hog', { size: 2048 });
  const z = uma.zcreate('later', { size: 4096 });
  const held: number[] = [];
  for (let x = hog.alloc(M_NOWAIT); x !== 0; x = hog.alloc(M_NOWAIT)) held.push(x);
  const p = z.allocAsync(M_WAITOK);
  setTimeout(() => {
    for (const it of held) hog.free(it);
    hog.drain();
  }, 50);
  const got = await p;
  assert.ok(got > 0);
  z.free(got);
  z.drain();
  done();
});

test('a pending allocAsync keeps the process alive (child process, unref-ed worker frees the item)', async () => {
  const child = fileURLToPath(new URL('../workers/uma-async-child.js', import.meta.url));
  const out = await new Promise<string>((res, rej) => {
    execFile(process.execPath, [child], { timeout: 15000 }, (err, stdout, stderr) => (err ? rej(new Error(`${err.message}\n${stderr}`)) : res(stdout)));
  });
  assert.equal(out.trim(), 'served');
});

test('allocAsync whose ctor refuses returns 0 instead of waiting forever', async () => {
  const uma = testUma();
  const done = leakCheck(uma);
  let ok = false;
  const z = uma.zcreate('asyncctor', { size: 64, ctor: () => ok });
  assert.equal(await z.allocAsync(M_WAITOK), 0);
  assert.equal(zoneStats(z).fails, 1);
  ok = true;
  const it = await z.allocAsync(M_WAITOK);
  assert.ok(it > 0);
  z.free(it);
  z.drain();
  done();
});
