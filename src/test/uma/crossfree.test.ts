// Cross-free buckets (zone.ts; FreeBSD's uc_crossbucket / zone_free_cross):
// an item freed on a CPU other than the one that allocated it goes into that
// CPU's cross-free bucket; full buckets go whole to the zone's list, where the
// allocating CPU takes them back. Two CPUs in one thread (a second attachment
// of the arena) make the interleavings deterministic; a worker shows the
// same across threads and after the freeing CPU flushes on its way out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { testUma, leakCheck } from '../helpers.js';
import { nextMessage, signalStep } from '../workers/step.js';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { zoneStats } from '../../uma/stats.js';
import { vmstatZ } from '../../uma/vmstat.js';
import { M_NOWAIT, UMA_ZONE_NOBUCKET } from '../../uma/flags.js';
import type { Zone } from '../../uma/zone.js';

const XFREE_WORKER = new URL('../workers/uma-xfree.js', import.meta.url);

/** A second CPU of `uma`'s arena in this thread, with its own view of zone `name`. */
function secondCpu(uma: Uma, name: string): { uma: Uma; zone: Zone } {
  const arena = Arena.attach(uma.arena.sab);
  arena.registerCpu();
  const other = Uma.attach(arena);
  other.logger = () => {};
  return { uma: other, zone: other.zone(name) };
}

function allocN(z: Zone, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const it = z.alloc(M_NOWAIT);
    assert.ok(it !== 0);
    out.push(it);
  }
  return out;
}

for (const debug of [false, true]) {
  const mode = debug ? 'debug' : 'non-debug';

  test(`${mode}: frees on a foreign CPU fill its cross-free bucket, counted as frees and XDOMAIN; used stays exact`, () => {
    const uma = testUma({ debug });
    const done = leakCheck(uma);
    const a = uma.zcreate('xf', { size: 256 });
    const b = secondCpu(uma, 'xf').zone;
    const bs = a.bucketSize;
    const items = allocN(a, bs - 1);
    const cachedA = a.cachedHere;
    for (const it of items) b.free(it);
    assert.equal(b.crossCachedHere, bs - 1, 'every foreign free is in the cross-free bucket');
    assert.equal(b.cachedHere, bs - 1, 'and nothing in its own buckets');
    assert.equal(a.cachedHere, cachedA, "the allocating CPU's cache is untouched");
    const st = zoneStats(a);
    assert.equal(st.used, 0);
    assert.equal(st.xdomain, bs - 1);
    assert.equal(st.requests, bs - 1);
    // vmstat -z from either CPU reads the same row.
    const row = (text: string) => text.split('\n').find((l) => l.startsWith('xf:'));
    assert.equal(row(vmstatZ(uma)), row(vmstatZ(secondCpu(uma, 'xf').uma)));
    assert.match(row(vmstatZ(uma))!, new RegExp(`^xf:\\s+256,\\s+0,\\s+0,`));
    a.drain();
    b.drain();
    a.drain();
    assert.equal(a.items, 0, 'drains collect the cross-free bucket');
    assert.equal(a.keg.pagesHeld, 0);
    done();
  });

  test(`${mode}: a full cross-free bucket goes whole to the zone's list and the allocating CPU reuses its items`, () => {
    const uma = testUma({ debug });
    const done = leakCheck(uma);
    const a = uma.zcreate('xr', { size: 256 });
    const b = secondCpu(uma, 'xr').zone;
    const bs = a.bucketSize;
    a.flushCpuCache();
    // Allocate more than A caches, so that the reuse below cannot come from A's own buckets.
    const items = allocN(a, 4 * bs);
    a.flushCpuCache();
    a.drain();
    for (const it of items) b.free(it);
    // A full bucket leaves at the next foreign free (the one that finds no room).
    assert.ok(b.crossCachedHere <= bs, 'full cross-free buckets left the CPU');
    const handed = 4 * bs - b.crossCachedHere;
    assert.equal(handed % bs, 0, 'whole buckets only');
    const freed = new Set(items);
    const again = allocN(a, handed);
    assert.ok(again.every((it) => freed.has(it)), 'the items came back from the handed-over buckets');
    assert.equal(zoneStats(a).used, handed);
    assert.equal(zoneStats(a).xdomain, 4 * bs);
    for (const it of again) a.free(it);
    b.flushCpuCache();
    a.drain();
    assert.equal(a.items, 0);
    done();
  });

  test(`${mode}: a drain request reaches the cross-free bucket; trim and destroy collect it`, () => {
    const uma = testUma({ debug });
    const done = leakCheck(uma);
    const a = uma.zcreate('xd', { size: 128 });
    const cpu2 = secondCpu(uma, 'xd');
    const b = cpu2.zone;
    for (const it of allocN(a, 10)) b.free(it);
    assert.equal(b.crossCachedHere, 10);
    a.drain(); // asks the other CPU
    assert.equal(b.crossCachedHere, 10, 'a request only, until that CPU acts');
    b.poll();
    assert.equal(b.crossCachedHere, 0, 'poll() honoured the request');
    a.trim();
    a.trim();
    assert.equal(a.items, a.cachedHere, 'trim released the idle handed-over bucket');
    // The next foreign free after a request also honours it (its gate was shut).
    for (const it of allocN(a, 5)) b.free(it);
    a.requestCpuDrain(b.cpu);
    const one = a.alloc(M_NOWAIT);
    b.free(one);
    assert.equal(b.crossCachedHere, 1, 'the flush ran before the free went into a fresh bucket');
    a.flushCpuCache(); // zdestroy flushes the caller's CPU only
    cpu2.uma.zdestroy(b);
    assert.equal(a.keg.pagesHeld, 0, 'destroy gave every item back');
    done();
  });

  test(`${mode}: at the zone limit, a drain request moves foreign frees where the allocating CPU finds them`, () => {
    const uma = testUma({ debug });
    const a = uma.zcreate('xs', { size: 256 });
    const b = secondCpu(uma, 'xs').zone;
    a.setMaxItems(64);
    const items = allocN(a, 64 - a.cachedHere);
    a.flushCpuCache();
    a.drain();
    assert.equal(a.alloc(M_NOWAIT), 0, 'at the limit');
    b.free(items.pop()!);
    assert.equal(b.crossCachedHere, 1);
    assert.equal(a.alloc(M_NOWAIT), 0, 'a free held in a cross-free bucket is not on the list yet');
    // What a sleeper at the limit does: ask every other CPU to flush; b honours it at its next free.
    a.requestDrainOthers();
    b.free(items.pop()!);
    assert.equal(b.crossCachedHere, 1, 'flushed, then the free went into a fresh bucket');
    const again = a.alloc(M_NOWAIT);
    assert.notEqual(again, 0, 'the flushed item can be allocated at the limit');
    items.push(again);
    for (const it of items) b.free(it);
    b.flushCpuCache();
    a.drain();
    assert.equal(zoneStats(a).used, 0);
    assert.equal(a.items, 0);
  });
}

test('debug mode: a double free of an item in a cross-free bucket is caught, and so is a use after free', () => {
  const uma = testUma({ debug: true });
  const done = leakCheck(uma);
  const a = uma.zcreate('xdbg', { size: 64, flags: 0 });
  const b = secondCpu(uma, 'xdbg').zone;
  const [x, y] = allocN(a, 2);
  b.free(x);
  assert.throws(() => b.free(x), (e: Error & { code?: string }) => e.code === 'ERR_SLABNET_DOUBLE_FREE');
  assert.throws(() => a.free(x), (e: Error & { code?: string }) => e.code === 'ERR_SLABNET_DOUBLE_FREE');
  b.free(y);
  uma.arena.u8[y + 8] = 1; // write after free, while the item waits in the cross-free bucket
  a.flushCpuCache();
  a.drain(); // A's own items go back to the keg: A's next bucket is the cross-free one
  b.flushCpuCache();
  let caught = 0;
  for (let i = 0; i < 2; i++) {
    try {
      const it = a.alloc(M_NOWAIT);
      if (it !== 0) a.free(it);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'ERR_SLABNET_USE_AFTER_FREE');
      caught++;
    }
  }
  assert.equal(caught, 1, 'the modified item was reported once, at its allocation');
  a.drain();
  done();
});

test('NOBUCKET zones: a foreign free goes straight to the keg', () => {
  const uma = testUma({ debug: false });
  const done = leakCheck(uma);
  const a = uma.zcreate('xnb', { size: 256, flags: UMA_ZONE_NOBUCKET });
  const b = secondCpu(uma, 'xnb').zone;
  for (const it of allocN(a, 20)) b.free(it);
  assert.equal(b.crossCachedHere, 0);
  assert.equal(a.items, 0);
  assert.equal(zoneStats(a).xdomain, 20);
  done();
});


for (const debug of [false, true]) {
  test(`${debug ? 'debug' : 'non-debug'}: a worker CPU freeing what the main CPU allocated leaks nothing once it flushes on exit`, async () => {
    const uma = testUma({ debug });
    const done = leakCheck(uma);
    const z = uma.zcreate('xw', { size: 2048 });
    const n = 3 * z.bucketSize + 5;
    const list = new Int32Array(new SharedArrayBuffer(n * 4));
    allocN(z, n).forEach((it, k) => (list[k] = it));
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    const w = new Worker(XFREE_WORKER, { workerData: { sab: uma.arena.sab, ctl: ctl.buffer, list: list.buffer, zone: 'xw' } });
    try {
      const first = await nextMessage(w);
      assert.equal(first.cross, first.cached, 'the worker holds foreign items in its cross-free bucket only');
      assert.ok(first.cross > 0 && first.cross < z.bucketSize);
      const st = zoneStats(z);
      assert.equal(st.used, 0, 'every item counted as freed, cached or not');
      assert.equal(st.xdomain, n);
      const flushed = nextMessage(w);
      signalStep(ctl, 1);
      assert.equal((await flushed).cached, 0);
      z.flushCpuCache();
      z.drain();
      assert.equal(z.items, 0, 'every item is back in the keg');
      assert.equal(z.keg.pagesHeld, 0);
    } finally {
      signalStep(ctl, 2);
      await w.terminate();
    }
    done();
  });
}
