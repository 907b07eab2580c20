// Kegs and slabs: layout (on-page / off-page headers, ipers / ppera), free-item
// bitsets, the page table (vtoslab), NOFREE and ZINIT kegs, REFCNT counters,
// and the page allocator's contiguous runs with the reclaim pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testUma, leakCheck } from '../helpers.js';
import { computeLayout, S_BITS, S_DATA, S_FREECNT, S_KEG, S_PAGES } from '../../uma/keg.js';
import { PAGE_SIZE, H_PAGE_FAILS } from '../../vm/layout.js';
import { M_NOWAIT, UMA_ZONE_NOFREE, UMA_ZONE_OFFPAGE, UMA_ZONE_REFCNT, UMA_ZONE_ZINIT } from '../../uma/flags.js';

test('slab layout: small items on-page, large items off-page, ipers maximal for ppera', () => {
  for (const size of [16, 24, 100, 256, 512, 600, 1024, 2048, 4096, 9216, 16384]) {
    for (const flags of [0, UMA_ZONE_REFCNT, UMA_ZONE_OFFPAGE]) {
      const lay = computeLayout(size, 16, flags);
      assert.ok(lay.rsize >= size && lay.rsize % 16 === 0, `rsize of ${size}`);
      assert.ok(lay.ipers >= 1, `ipers of ${size}`);
      const bytes = lay.ppera * PAGE_SIZE;
      const used = lay.ipers * lay.rsize + (lay.offpage ? 0 : lay.hdrsize);
      assert.ok(used <= bytes, `size ${size} flags ${flags}: ${used} > ${bytes}`);
      // One more item would not fit: the slab is packed.
      assert.ok(used + lay.rsize > bytes || !lay.offpage, `size ${size}: room for another item`);
      assert.equal(lay.offpage, size > 512 || (flags & UMA_ZONE_OFFPAGE) !== 0, `offpage of ${size}`);
      assert.equal(lay.bitwords, Math.ceil(lay.ipers / 32));
    }
  }
  // Jumbo 9k clusters: a multi-page slab with no waste.
  const j9 = computeLayout(9216, 16, 0);
  assert.equal((j9.ppera * PAGE_SIZE) % 9216, 0);
  assert.ok(j9.ppera > 1);
  assert.throws(() => computeLayout(17 * PAGE_SIZE, 16, 0), { code: 'ERR_SLABNET_INVALID_ARG' });
});

test('on-page slab: header on the first page, page table maps the page to it, bitset tracks items', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('onpage', { size: 256 });
  const keg = z.keg;
  const i32 = uma.arena.i32;
  const ipers = keg.ipers;
  const dest = new Int32Array(ipers);
  assert.equal(keg.fetch(dest, 0, ipers, false, false), ipers);
  assert.equal(keg.slabCount, 1);
  assert.equal(keg.pagesHeld, 1);
  const slab = keg.slabOf(dest[0]);
  assert.equal(slab % PAGE_SIZE, 0, 'on-page header at the start of the page');
  assert.equal(i32[(slab >> 2) + S_KEG], keg.index);
  assert.equal(i32[(slab >> 2) + S_PAGES], slab);
  assert.ok(i32[(slab >> 2) + S_DATA] > slab, 'items follow the header');
  for (const it of dest) {
    assert.equal(keg.slabOf(it), slab, 'every item of the page maps to its slab');
    assert.equal(keg.isFreeInSlab(it), false);
  }
  assert.equal(i32[(slab >> 2) + S_FREECNT], 0);
  assert.equal(i32[(slab >> 2) + S_BITS], 0, 'no free bit left');
  keg.releaseOne(dest[3]);
  assert.equal(keg.isFreeInSlab(dest[3]), true);
  assert.equal(i32[(slab >> 2) + S_BITS], 1 << 3);
  assert.equal(keg.freeItems, 1);
  assert.throws(() => keg.releaseOne(dest[3]), { code: 'ERR_SLABNET_DOUBLE_FREE' });
  assert.throws(() => keg.releaseOne(dest[4] + 16), { code: 'ERR_SLABNET_BAD_FREE' });
  keg.release(dest, 0, 3);
  keg.release(dest, 4, ipers - 4);
  assert.equal(keg.freeItems, ipers);
  assert.equal(keg.drain(), 1);
  assert.equal(keg.pagesHeld, 0);
  assert.equal(uma.pages.owner(dest[0]), 0, 'page table entry cleared');
  done();
});

test('off-page slab: header in an internal zone, multi-page runs map every page to it', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('jumbo9', { size: 9216 });
  const keg = z.keg;
  const lay = computeLayout(9216, 16, 0);
  assert.equal(keg.ppera, lay.ppera);
  assert.equal(keg.ipers, lay.ipers);
  const a = z.alloc(M_NOWAIT);
  assert.ok(a > 0);
  const slab = keg.slabOf(a);
  const run = uma.arena.i32[(slab >> 2) + S_PAGES];
  assert.notEqual(slab, run, 'header is not on the slab pages');
  assert.ok(slab < run || slab >= run + keg.ppera * PAGE_SIZE);
  for (let p = 0; p < keg.ppera; p++) assert.equal(uma.pages.owner(run + p * PAGE_SIZE), slab);
  // The header itself is an item of an internal "UMA Slabs" zone.
  const hz = uma.zoneOfItem(slab);
  assert.ok(hz !== null && hz.name.startsWith('UMA Slabs'));
  z.free(a);
  z.drain();
  assert.equal(keg.pagesHeld, 0);
  done();
});

test('NOFREE kegs are never drained; ZINIT zeroes items when their slab is made', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const nf = uma.zcreate('nofree', { size: 128, flags: UMA_ZONE_NOFREE | UMA_ZONE_ZINIT });
  const items: number[] = [];
  for (let i = 0; i < 100; i++) items.push(nf.alloc(M_NOWAIT));
  const u8 = uma.arena.u8;
  // ZINIT turns the keg's trash fill off, so the first allocation reads zeroes.
  for (const it of items) for (let b = 0; b < 128; b++) assert.equal(u8[it + b], 0);
  for (const it of items) nf.free(it);
  const pages = nf.keg.pagesHeld;
  assert.ok(pages > 0);
  nf.drain();
  uma.reclaim();
  assert.equal(nf.keg.pagesHeld, pages, 'NOFREE keg kept its pages');
  assert.equal(nf.keg.drain(), 0);
  done();
});

test('REFCNT zones: refcntIndex finds a per-item counter kept with the slab via the page table', () => {
  for (const size of [256, 2048]) {
    const uma = testUma();
    const done = leakCheck(uma);
    const z = uma.zcreate(`refcnt${size}`, { size, flags: UMA_ZONE_REFCNT });
    const keg = z.keg;
    const i32 = uma.arena.i32;
    const items: number[] = [];
    for (let i = 0; i < keg.ipers * 2 + 1; i++) items.push(z.alloc(M_NOWAIT));
    const seen = new Set<number>();
    for (const it of items) {
      const idx = keg.refcntIndex(it);
      const slab = keg.slabOf(it);
      const hdrEnd = slab + uma.arena.i32[keg.rec + 7]; // K_HDRSIZE
      assert.ok(idx * 4 >= slab && idx * 4 < hdrEnd, `counter of 0x${it.toString(16)} lies in its slab header`);
      assert.ok(idx * 4 < it || idx * 4 >= it + size, 'counter is not inside the item');
      assert.ok(!seen.has(idx), 'one counter per item');
      seen.add(idx);
      Atomics.store(i32, idx, 1);
    }
    // Counters are independent: bumping one leaves its neighbours alone.
    Atomics.add(i32, keg.refcntIndex(items[1]), 5);
    assert.equal(Atomics.load(i32, keg.refcntIndex(items[0])), 1);
    assert.equal(Atomics.load(i32, keg.refcntIndex(items[1])), 6);
    assert.equal(Atomics.load(i32, keg.refcntIndex(items[2])), 1);
    assert.throws(() => keg.refcntIndex(items[0] + 16), { code: 'ERR_SLABNET_BAD_FREE' });
    for (const it of items) z.free(it);
    z.drain();
    done();
  }
});

test('page allocator: contiguous runs, reclaim pass drains caches, then fails and counts', () => {
  const uma = testUma({ size: 4 << 20 });
  const done = leakCheck(uma);
  const pages = uma.pages;
  const run = pages.allocRun(9);
  assert.ok(run > 0 && run % PAGE_SIZE === 0);
  const before = pages.freePages;
  pages.freeRun(run, 9);
  assert.equal(pages.freePages, before + 9);
  // Fill the arena with cached items: every page ends up in a zone's caches.
  const z = uma.zcreate('filler', { size: 2048 });
  const items: number[] = [];
  for (;;) {
    const it = z.alloc(M_NOWAIT);
    if (it === 0) break;
    items.push(it);
  }
  assert.ok(items.length > 100);
  assert.ok(pages.freePages < 4, `arena full (${pages.freePages} free pages)`);
  for (const it of items) z.free(it);
  // Take every page still free, so that only the zone's caches hold any.
  const hog: number[] = [];
  for (let p = pages.allocRun(1); p !== 0; p = pages.allocRun(1)) hog.push(p);
  assert.ok(z.keg.pagesHeld > 2, 'the freed items sit in caches');
  // Pass 1 (free pages only) finds nothing; pass 2 drains the caches and succeeds.
  assert.equal(pages.allocRun(2), 0);
  const got = pages.allocRunWithReclaim(2);
  assert.ok(got > 0, 'reclaim freed enough pages for the run');
  assert.equal(z.keg.pagesHeld, 0, 'the drain gave every cached slab back');
  pages.freeRun(got, 2);
  for (const p of hog) pages.freeRun(p, 1);
  // Pass 3: more pages than the arena has fails cleanly and is counted.
  const fails = Atomics.load(uma.arena.i32, H_PAGE_FAILS);
  assert.equal(pages.allocRunWithReclaim(pages.dataPages + 1), 0);
  assert.equal(Atomics.load(uma.arena.i32, H_PAGE_FAILS), fails + 1);
  assert.equal(z.keg.pagesHeld, 0);
  done();
});
