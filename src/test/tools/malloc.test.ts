// malloc(9) over UMA: size classes, page runs, M_ZERO, NOWAIT failure, bad frees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { testUma, leakCheck } from '../helpers.js';
import { Malloc, MALLOC_SIZES } from '../../uma/malloc.js';
import { M_NOWAIT, M_WAITOK, M_ZERO } from '../../uma/flags.js';
import { PAGE_SIZE } from '../../vm/layout.js';

test('small sizes go to the power-of-two zone that fits', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const m = new Malloc(uma);
  const cases: [number, number][] = [[1, 16], [16, 16], [17, 32], [100, 128], [256, 256], [257, 512], [1000, 1024], [2049, 4096], [4096, 4096]];
  for (const [size, cls] of cases) {
    const before = uma.zone(`malloc-${cls}`).items;
    const p = m.malloc(size);
    assert.ok(p > 0);
    assert.equal(m.mallocUsableSize(p), cls, `size ${size}`);
    assert.ok(uma.zone(`malloc-${cls}`).items > before || before > 0);
    m.free(p);
  }
  done();
});

test('large sizes are page runs marked in the page table and freed by address alone', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const m = new Malloc(uma);
  const free0 = uma.pages.freePages;
  const p = m.malloc(4097);
  assert.equal(p % PAGE_SIZE, 0);
  assert.equal(m.mallocUsableSize(p), 2 * PAGE_SIZE);
  assert.equal(uma.pages.freePages, free0 - 2);
  const q = m.malloc(64 * 1024);
  assert.equal(m.mallocUsableSize(q), 16 * PAGE_SIZE);
  m.free(p);
  m.free(q);
  assert.equal(uma.pages.freePages, free0);
  assert.equal(m.largeAllocs, 2);
  assert.equal(m.largeFrees, 2);
  done();
});

test('M_ZERO zeroes both zone items and page runs', () => {
  const uma = testUma({ debug: false });
  const done = leakCheck(uma);
  const m = new Malloc(uma);
  const u8 = uma.arena.u8;
  for (const size of [48, 3000, 10000]) {
    const dirty = m.malloc(size);
    u8.fill(0xab, dirty, dirty + size);
    m.free(dirty);
    // Allocate until the dirtied memory comes back (the per-CPU cache hands it out again soon).
    const got: number[] = [];
    for (let i = 0; i < 1000 && !got.includes(dirty); i++) {
      const z = m.malloc(size, M_ZERO);
      assert.ok(u8.subarray(z, z + size).every((b) => b === 0), `size ${size} zeroed`);
      got.push(z);
    }
    assert.ok(got.includes(dirty), 'the dirtied memory was handed out again');
    for (const z of got) m.free(z);
  }
  done();
});

test('NOWAIT returns 0 when the arena cannot hold the request; WAITOK larger than the arena throws', () => {
  const uma = testUma({ size: 1 << 20 });
  const done = leakCheck(uma);
  const m = new Malloc(uma);
  assert.equal(m.malloc(2 << 20, M_NOWAIT), 0);
  assert.throws(() => m.malloc(2 << 20, M_WAITOK), { code: 'ERR_SLABNET_NOMEM' });
  // Fill the arena with page runs until NOWAIT fails, then give everything back.
  const runs: number[] = [];
  for (;;) {
    const p = m.malloc(8 * PAGE_SIZE, M_NOWAIT);
    if (p === 0) break;
    runs.push(p);
  }
  assert.ok(runs.length > 0);
  assert.ok(m.largeFails >= 2);
  for (const p of runs) m.free(p);
  done();
});

test('bad sizes, flags and addresses give clear errors with stable codes', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const m = new Malloc(uma);
  for (const bad of [0, -1, 1.5, NaN, 2 ** 32]) assert.throws(() => m.malloc(bad), { code: 'ERR_SLABNET_INVALID_ARG' }, String(bad));
  assert.throws(() => m.malloc(10, M_NOWAIT | M_WAITOK), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => m.free(8), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => m.free(uma.arena.size + 4096), { code: 'ERR_SLABNET_INVALID_ARG' });
  m.free(0); // free(NULL) is a no-op
  const p = m.malloc(64);
  assert.throws(() => m.free(p + 16), { code: 'ERR_SLABNET_BAD_FREE' }, 'interior of an item');
  m.free(p);
  assert.throws(() => m.free(p), { code: 'ERR_SLABNET_DOUBLE_FREE' });
  const big = m.malloc(3 * PAGE_SIZE);
  assert.throws(() => m.free(big + PAGE_SIZE), { code: 'ERR_SLABNET_BAD_FREE' }, 'inside a run');
  assert.throws(() => m.free(big + 16), { code: 'ERR_SLABNET_BAD_FREE' }, 'unaligned run address');
  m.free(big);
  assert.throws(() => m.free(big), { code: 'ERR_SLABNET_DOUBLE_FREE' });
  // Memory of another zone is not malloc's to free.
  const z = uma.zcreate('not-malloc', { size: 64 });
  const item = z.alloc(M_NOWAIT);
  assert.throws(() => m.free(item), (e: Error & { code?: string }) => e.code === 'ERR_SLABNET_BAD_FREE' && /not-malloc/.test(e.message));
  z.free(item);
  done();
});

test('a second Malloc in the same arena binds the same zones', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const a = new Malloc(uma);
  const b = new Malloc(uma);
  assert.deepEqual(a.zones.map((z) => z.index), b.zones.map((z) => z.index));
  assert.equal(a.zones.length, MALLOC_SIZES.length);
  const p = a.malloc(500);
  b.free(p);
  done();
});

test('property: random malloc/free sequences never overlap and leave nothing behind', () => {
  const uma = testUma({ debug: false });
  const done = leakCheck(uma);
  const m = new Malloc(uma);
  const pagesFree = uma.pages.freePages;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 20000 }), fc.nat()), { maxLength: 200 }), (ops) => {
      const live: { p: number; size: number }[] = [];
      for (const [isAlloc, size, pick] of ops) {
        if (isAlloc || live.length === 0) {
          const p = m.malloc(size);
          assert.ok(p > 0);
          assert.ok(m.mallocUsableSize(p) >= size);
          for (const o of live) assert.ok(p + size <= o.p || o.p + o.size <= p, 'overlap');
          live.push({ p, size });
        } else {
          const [o] = live.splice(pick % live.length, 1);
          m.free(o.p);
        }
      }
      for (const o of live) m.free(o.p);
    }),
    { numRuns: 60, seed: 42 },
  );
  done();
  uma.reclaim();
  for (const z of m.zones) assert.equal(z.keg.pagesHeld, 0, `${z.name} gave its pages back`);
  // Every page in use belongs to some keg: no large run was leaked.
  const kegPages = uma.allZones().filter((z) => !z.secondary).reduce((a, z) => a + z.keg.pagesHeld, 0);
  assert.equal(uma.pages.dataPages - uma.pages.freePages, kegPages);
  assert.ok(uma.pages.freePages <= pagesFree);
});
