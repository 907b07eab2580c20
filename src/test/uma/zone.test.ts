// Zones: ctor/dtor per allocation, init/fini per slab item, secondary zones,
// per-CPU caches, allocation flags, reserve and prealloc, limits, drain, trim,
// per-CPU drain by request, destroy, and bad frees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { testUma, leakCheck } from '../helpers.js';
import { Uma } from '../../uma/uma.js';
import { zoneStats } from '../../uma/stats.js';
import { WARN_INTERVAL_S, Z_WARN_LAST } from '../../uma/zone.js';
import { ZONE_BYTES } from '../../vm/arena.js';
import { M_NOVM, M_NOWAIT, M_USE_RESERVE, M_WAITOK, M_ZERO, UMA_ZONE_NOBUCKET, TRASH_WORD } from '../../uma/flags.js';

test('ctor/dtor run per allocation, init/fini per slab item; a failing ctor returns 0 and leaks nothing', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const log = { ctor: 0, dtor: 0, init: 0, fini: 0 };
  let failCtor = false;
  const z = uma.zcreate('cb', {
    size: 128,
    ctor: (item, arg) => {
      log.ctor++;
      uma.arena.i32[item >> 2] = arg;
      return !failCtor;
    },
    dtor: (item, arg) => {
      log.dtor++;
      assert.equal(uma.arena.i32[item >> 2], arg, 'dtor sees what the ctor wrote');
    },
    init: (item) => {
      log.init++;
      uma.arena.i32[(item >> 2) + 1] = 0x1717;
      return true;
    },
    fini: (item) => {
      log.fini++;
      assert.equal(uma.arena.i32[(item >> 2) + 1], 0x1717, 'fini sees the init state');
    },
  });
  const a = z.alloc(M_NOWAIT, 42);
  const ipers = z.keg.ipers;
  assert.equal(log.ctor, 1);
  assert.equal(log.init, ipers * z.keg.slabCount, 'init ran once on every item of each new slab');
  assert.equal(uma.arena.i32[(a >> 2) + 1], 0x1717);
  z.free(a, 42);
  assert.equal(log.dtor, 1);
  const inits = log.init;
  const b = z.alloc(M_NOWAIT, 7);
  assert.equal(log.init, inits, 'a cached item is not initialised again');
  z.free(b, 7);
  failCtor = true;
  const fails = zoneStats(z).fails;
  assert.equal(z.alloc(M_NOWAIT, 1), 0);
  assert.equal(zoneStats(z).fails, fails + 1);
  assert.equal(log.dtor, 2, 'no dtor for an item whose ctor failed');
  failCtor = false;
  z.drain();
  assert.equal(log.fini, log.init, 'fini ran on every item when the slabs went');
  assert.equal(z.keg.pagesHeld, 0);
  done();
});

test('a failing keg init fails the allocation cleanly; a ctor failure after M_ZERO is no use after free', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  let initOk = false;
  let finis = 0;
  const z = uma.zcreate('badinit', { size: 64, init: () => initOk, fini: () => void finis++ });
  assert.equal(z.alloc(M_NOWAIT), 0);
  assert.equal(z.keg.pagesHeld, 0, 'the slab whose init failed gave its pages back');
  assert.equal(finis, 0, 'no fini for items never initialised');
  initOk = true;
  const it = z.alloc(M_NOWAIT);
  assert.ok(it > 0);
  z.free(it);
  // Plain zone (trash-checked): a ctor that fails after M_ZERO hands the item back trashed.
  let fail = true;
  const c = uma.zcreate('ctorfail', { size: 64, ctor: () => !fail });
  assert.equal(c.alloc(M_NOWAIT | M_ZERO), 0);
  fail = false;
  const again = c.alloc(M_NOWAIT);
  assert.ok(again > 0, 'next allocation passes the trash check');
  c.free(again);
  z.drain();
  c.drain();
  done();
});

test('secondary zones share the keg and run their own init/fini as items move keg <-> zone', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const i32 = uma.arena.i32;
  const master = uma.zcreate('clusters', { size: 2048 });
  let sinit = 0;
  let sfini = 0;
  let initOk = true;
  const pkt = uma.zsecondCreate(
    'packets',
    {
      init: (item) => {
        sinit++;
        if (!initOk) return false;
        i32[item >> 2] = 0x5ec0;
        return true;
      },
      fini: (item) => {
        sfini++;
        assert.equal(i32[item >> 2], 0x5ec0);
        i32[item >> 2] = 0;
      },
      ctor: (item) => i32[item >> 2] === 0x5ec0,
    },
    master,
  );
  assert.equal(pkt.keg, master.keg);
  assert.ok(pkt.secondary);
  const items: number[] = [];
  for (let i = 0; i < 40; i++) items.push(pkt.alloc(M_NOWAIT));
  assert.ok(items.every((x) => x > 0));
  assert.ok(sinit >= 40, 'secondary init ran on import');
  const m = master.alloc(M_NOWAIT);
  assert.ok(m > 0 && !items.includes(m), 'both zones draw on one keg');
  master.free(m);
  for (const it of items) pkt.free(it);
  // Some items are cached in the secondary zone: fini runs only when they go back.
  pkt.drain();
  assert.equal(sfini, sinit, 'every item imported into the zone was finied when it left');
  // A failing secondary init: the item goes straight back to the keg, nothing is charged.
  initOk = false;
  const before = pkt.items;
  assert.equal(pkt.alloc(M_NOWAIT), 0);
  assert.equal(pkt.items, before, 'no item charged for a failed init');
  assert.equal(zoneStats(pkt).fails, 1);
  initOk = true;
  assert.throws(() => uma.zdestroy(master), { code: 'ERR_SLABNET_INVALID_ARG' }, 'primary with a live secondary');
  uma.zdestroy(pkt);
  master.drain();
  assert.equal(master.keg.pagesHeld, 0);
  done();
});

test('per-CPU cache: alloc and free buckets, full-bucket exchange through the zone list', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('pcpu', { size: 256 });
  const bs = z.bucketSize;
  assert.ok(bs >= 8);
  const items: number[] = [];
  for (let i = 0; i < bs * 4; i++) items.push(z.alloc(M_NOWAIT));
  for (const it of items) z.free(it);
  // One free bucket and an (emptied) alloc bucket stay here; the rest went to the zone list.
  assert.ok(z.cachedHere <= 2 * bs, `cached here ${z.cachedHere} <= ${2 * bs}`);
  const st = zoneStats(z);
  assert.equal(st.used, 0);
  assert.equal(st.items, bs * 4, 'every item still cached by the zone');
  // Allocating again takes the same items back (LIFO from the caches), no new slab.
  const slabs = z.keg.slabCount;
  const again: number[] = [];
  for (let i = 0; i < bs * 4; i++) again.push(z.alloc(M_NOWAIT));
  assert.equal(z.keg.slabCount, slabs);
  assert.deepEqual(new Set(again), new Set(items));
  for (const it of again) z.free(it);
  z.flushCpuCache();
  assert.equal(z.cachedHere, 0);
  z.drain();
  assert.equal(z.items, 0);
  done();
});

test('allocation flags: M_ZERO, M_NOVM only from caches, NOWAIT|WAITOK rejected, WAITOK|NOVM rejected', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('flags', { size: 96 });
  assert.equal(z.alloc(M_NOVM), 0, 'no cache and no pages allowed: fails');
  const a = z.alloc(M_NOWAIT);
  const u8 = uma.arena.u8;
  u8.fill(0xab, a, a + 96);
  z.free(a);
  const b = z.alloc(M_NOWAIT | M_ZERO);
  for (let i = 0; i < 96; i++) assert.equal(u8[b + i], 0);
  const c = z.alloc(M_NOVM);
  assert.ok(c > 0, 'M_NOVM is served from the cache');
  const pages = z.keg.pagesHeld;
  const more: number[] = [];
  for (let x = z.alloc(M_NOVM); x !== 0; x = z.alloc(M_NOVM)) more.push(x);
  assert.equal(z.keg.pagesHeld, pages, 'M_NOVM never took a page');
  assert.throws(() => z.alloc(M_NOWAIT | M_WAITOK), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => z.alloc(M_WAITOK | M_NOVM), { code: 'ERR_SLABNET_INVALID_ARG' });
  const d = z.alloc(M_WAITOK);
  assert.ok(d > 0);
  for (const x of [b, c, d, ...more]) z.free(x);
  z.drain();
  done();
});

test('reserve: kept for M_USE_RESERVE callers, ordinary callers get new slabs; prealloc fills the keg', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('resv', { size: 512, flags: UMA_ZONE_NOBUCKET });
  z.prealloc(40);
  assert.ok(z.keg.freeItems >= 40);
  const slabs = z.keg.slabCount;
  z.reserve(z.keg.freeItems);
  const a = z.alloc(M_NOWAIT);
  assert.ok(a > 0);
  assert.equal(z.keg.slabCount, slabs + 1, 'ordinary caller got a new slab, not a reserve item');
  const freeNow = z.keg.freeItems;
  const r = z.alloc(M_NOWAIT | M_USE_RESERVE);
  assert.ok(r > 0);
  assert.equal(z.keg.freeItems, freeNow - 1);
  // With M_NOVM an ordinary caller cannot make a slab and finds only the reserve: it fails.
  const drained: number[] = [];
  for (let x = z.alloc(M_NOVM); x !== 0; x = z.alloc(M_NOVM)) drained.push(x);
  assert.equal(z.keg.freeItems, z.keg.reserve, 'ordinary M_NOVM stopped at the reserve');
  const r2 = z.alloc(M_NOVM | M_USE_RESERVE);
  assert.ok(r2 > 0, 'the reserve serves M_USE_RESERVE');
  for (const x of [a, r, r2, ...drained]) z.free(x);
  z.reserve(0);
  z.drain();
  assert.equal(z.keg.pagesHeld, 0);
  done();
});

test('reserve items never reach a per-CPU bucket where ordinary callers would find them', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('resvb', { size: 256 });
  z.prealloc(30);
  z.reserve(z.keg.freeItems);
  const pages = z.keg.pagesHeld;
  const r = z.alloc(M_NOVM | M_USE_RESERVE);
  assert.ok(r > 0);
  assert.equal(z.keg.freeItems, z.keg.reserve - 1, 'exactly one item left the reserve');
  assert.equal(z.alloc(M_NOVM), 0, 'nothing from the reserve is cached for ordinary callers');
  assert.equal(z.keg.pagesHeld, pages);
  z.free(r);
  z.reserve(0);
  z.drain();
  done();
});

test('limits: NOWAIT fails at the limit and counts; 0 = unlimited; rate-limited warning; max action', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const warnings: string[] = [];
  uma.logger = (m) => warnings.push(m);
  const z = uma.zcreate('lim', { size: 64 });
  let actions = 0;
  z.maxAction = (zone) => {
    assert.equal(zone, z);
    actions++;
  };
  z.setMaxItems(100);
  assert.ok(z.bucketSize * 4 * uma.arena.ncpusMax <= 100, 'buckets shrunk for a small limit');
  const items: number[] = [];
  for (let x = z.alloc(M_NOWAIT); x !== 0; x = z.alloc(M_NOWAIT)) items.push(x);
  assert.equal(items.length, 100, 'exactly the limit');
  assert.equal(z.alloc(M_NOWAIT), 0);
  const st = zoneStats(z);
  assert.ok(st.fails >= 2);
  assert.equal(st.used, 100);
  assert.equal(warnings.length, 1, 'one warning for several hits');
  assert.equal(warnings[0], '[zone: lim] limit reached');
  assert.ok(actions >= 2, 'max action on every hit');
  z.warning = 'mbuf clusters exhausted, see kern.ipc.nmbclusters';
  // Pretend the last warning was WARN_INTERVAL_S ago: the next hit warns again.
  const rec = (uma.arena.zoneTable + z.index * ZONE_BYTES) >> 2;
  Atomics.sub(uma.arena.i32, rec + Z_WARN_LAST, WARN_INTERVAL_S);
  assert.equal(z.alloc(M_NOWAIT), 0);
  assert.equal(warnings.length, 2);
  assert.equal(warnings[1], '[zone: lim] mbuf clusters exhausted, see kern.ipc.nmbclusters');
  // Raise at run time, then unlimited.
  z.setMaxItems(150);
  for (let i = 0; i < 50; i++) items.push(z.alloc(M_NOWAIT));
  assert.ok(items.every((x) => x > 0));
  assert.equal(z.alloc(M_NOWAIT), 0);
  z.setMaxItems(0);
  const extra = z.alloc(M_NOWAIT);
  assert.ok(extra > 0, '0 = unlimited');
  items.push(extra);
  // Lower below the current use: nothing is taken away, new allocations fail.
  z.setMaxItems(10);
  for (const it of items.splice(0, 100)) z.free(it);
  assert.throws(() => z.setMaxItems(-1), { code: 'ERR_SLABNET_INVALID_ARG' });
  for (const it of items) z.free(it);
  z.drain();
  assert.equal(z.items, 0);
  done();
});

test('a small limit with items cached on the shared list still serves NOWAIT callers', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('limshared', { size: 64 });
  const items: number[] = [];
  for (let i = 0; i < 600; i++) items.push(z.alloc(M_NOWAIT));
  for (const it of items) z.free(it);
  // Shrink to a limit whose bucket size is 0: the cached buckets are flushed, not lost.
  z.setMaxItems(20);
  assert.equal(z.bucketSize, 0);
  assert.equal(z.cachedHere, 0, 'own cache flushed when buckets shrank');
  const got: number[] = [];
  for (let i = 0; i < 20; i++) got.push(z.alloc(M_NOWAIT));
  assert.ok(got.every((x) => x > 0), 'items on the full list count against the limit and are handed out');
  for (const it of got) z.free(it);
  z.setMaxItems(0);
  z.drain();
  done();
});

test('drain, trim to the working set, per-CPU drain by request honoured at the next op or poll()', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('reclaim', { size: 128 });
  const bs = z.bucketSize;
  const items: number[] = [];
  for (let i = 0; i < bs * 10; i++) items.push(z.alloc(M_NOWAIT));
  for (const it of items) z.free(it);
  const held = z.items;
  assert.equal(held, bs * 10);
  // First trim sets the working-set mark, the second gives back what was idle since.
  z.trim();
  assert.equal(z.items, held, 'the first trim only marks the working set');
  // Traffic since the mark is the working set: the next trim gives back only the
  // buckets that sat idle below the mark. A pair would stay in the current bucket;
  // three buckets' worth of allocations empty it and the spare, and take one full
  // bucket from the zone's list (freeing them pushes one back).
  const ys: number[] = [];
  for (let i = 0; i < bs * 3; i++) ys.push(z.alloc(M_NOWAIT));
  for (const y of ys) z.free(y);
  z.trim();
  assert.ok(z.cachedHere > 0, 'trim keeps the per-CPU cache');
  assert.ok(z.items > z.cachedHere, 'trim kept the buckets of the working set');
  z.trim(); // nothing touched since: every shared bucket is idle and goes back
  assert.equal(z.items, z.cachedHere, 'only the per-CPU cache is left');
  // A drain request for this CPU is honoured at the next operation.
  const x = z.alloc(M_NOWAIT);
  assert.ok(x > 0);
  assert.ok(z.cachedHere > 1);
  z.requestCpuDrain(uma.arena.cpu);
  z.free(x);
  assert.equal(z.cachedHere, 1, 'the cache was flushed before the free went into a fresh bucket');
  // ... or by poll() when idle.
  assert.ok(z.cachedHere > 0);
  z.requestCpuDrain(uma.arena.cpu);
  z.poll();
  assert.equal(z.cachedHere, 0);
  z.drain();
  assert.equal(z.items, 0);
  assert.equal(z.keg.pagesHeld, 0);
  done();
});

test('zdestroy with items in use throws ZoneBusyError naming the zone and count; the name is reusable', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('busy', { size: 32 });
  const a = z.alloc(M_NOWAIT);
  const b = z.alloc(M_NOWAIT);
  assert.throws(
    () => uma.zdestroy(z),
    (e: Error & { code?: string; zone?: string; inUse?: number }) =>
      e.code === 'ERR_SLABNET_ZONE_BUSY' && e.zone === 'busy' && e.inUse === 2 && /"busy".*2 item/.test(e.message),
  );
  z.free(a);
  z.free(b);
  uma.zdestroy(z);
  assert.equal(z.alive, false);
  assert.equal(z.keg.pagesHeld, 0);
  assert.throws(() => uma.zdestroy(z), { code: 'ERR_SLABNET_INVALID_ARG' });
  const z2 = uma.zcreate('busy', { size: 32 });
  assert.notEqual(uma.zone('busy'), z, 'lookup finds the new zone, not the destroyed one');
  assert.equal(uma.zone('busy'), z2);
  done();
});

test('bad frees give clear errors: foreign, interior, beyond the arena, not integer, double free', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('bad', { size: 64 });
  const other = uma.zcreate('other', { size: 64 });
  const a = z.alloc(M_NOWAIT);
  const o = other.alloc(M_NOWAIT);
  z.free(0); // free(NULL) is a no-op
  assert.throws(() => z.free(a + 16), { code: 'ERR_SLABNET_BAD_FREE' }); // inside an item
  assert.throws(() => z.free(a + 8), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => z.free(uma.arena.size + 4096), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => z.free(-16), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => z.free(1.5), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => z.free(Number.NaN), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => z.free(o), /not an item of this zone's keg/);
  assert.throws(() => z.free(4096), { code: 'ERR_SLABNET_BAD_FREE' }); // header page
  z.free(a);
  assert.throws(() => z.free(a), { code: 'ERR_SLABNET_DOUBLE_FREE' });
  other.free(o);
  done();
});

test('use after free is caught at the next allocation, naming the zone (debug trash check)', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('uaf', { size: 64, flags: UMA_ZONE_NOBUCKET });
  const a = z.alloc(M_NOWAIT);
  z.free(a);
  assert.equal(uma.arena.i32[a >> 2], TRASH_WORD, 'freed item holds the trash pattern');
  uma.arena.u8[a + 12] = 1; // write after free
  assert.throws(() => z.alloc(M_NOWAIT), (e: Error & { code?: string }) => e.code === 'ERR_SLABNET_USE_AFTER_FREE' && /zone "uaf"/.test(e.message) && /offset 12/.test(e.message));
  // The broken item was not handed out; the zone still accounts for it as free.
  z.drain();
  done();
});

test('fast paths (non-debug): a warm cache alloc/free pair takes no lock and allocates nothing', async () => {
  const uma = Uma.create({ size: 16 << 20, ncpus: 2, debug: false });
  uma.logger = () => {};
  const done = leakCheck(uma);
  const z = uma.zcreate('fast', { size: 256 });
  const warm: number[] = [];
  for (let i = 0; i < 8; i++) warm.push(z.alloc());
  for (const it of warm) z.free(it);
  let locks = 0;
  for (const m of [z.lock, z.keg.lock, uma.pages.lock]) {
    const orig = m.lock.bind(m);
    m.lock = () => {
      locks++;
      orig();
    };
  }
  for (let i = 0; i < 10000; i++) {
    const a = z.alloc();
    const b = z.alloc();
    z.free(b);
    z.free(a);
  }
  assert.equal(locks, 0, 'no zone, keg or page lock on the fast path');
  // Allocation-free: 4 million fast-path operations would allocate tens of MB if each
  // made even one small object, forcing young-generation collections. None may happen.
  const gcStarts: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcStarts.push(e.startTime);
  });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  for (let i = 0; i < 2_000_000; i++) {
    const a = z.alloc();
    z.free(a);
  }
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, 100)); // gc entries are delivered late
  obs.disconnect();
  const during = gcStarts.filter((t) => t >= t0 && t <= t1).length;
  assert.equal(during, 0, 'no garbage collection during the fast-path loop');
  // A non-debug free of a handle beyond the arena still fails cleanly.
  assert.throws(() => z.free(uma.arena.size + 16), { code: 'ERR_SLABNET_INVALID_ARG' });
  done();
});
