/**
 * Kegs: the slab layer under zones. A keg owns slabs of one item size; each
 * slab is a run of `ppera` pages carved into `ipers` items, with a header that
 * holds a free-item bitset (and, for UMA_ZONE_REFCNT kegs, one counter per
 * item). Several zones may share one keg (uma_zsecond_create).
 *
 * Shared record (KEG_BYTES, Int32 fields K_*) in the arena's keg table.
 * Slab header (Int32 fields S_*), on the slab's first page or off-page:
 *
 *   S_KEG      keg index              S_NEXT/S_PREV  list links (byte offsets)
 *   S_DATA     byte offset of item 0  S_LIST         which keg list it is on
 *   S_FREECNT  free items             S_PAGES        byte offset of the page run
 *   S_BITS..   bitset words, 1 = free, then REFCNT counters (Int32 per item)
 *
 * Locking: each keg has a mutex of class "UMA keg" (UMA's internal kegs use
 * "UMA internal keg"). It is taken after any zone lock and before "vm page".
 * Page allocation happens with the keg lock dropped, because it may reclaim.
 */
import type { Arena } from '../vm/arena.js';
import { KEG_BYTES } from '../vm/arena.js';
import { MIN_ALIGN, PAGE_SIZE } from '../vm/layout.js';
import type { PageAllocator } from '../vm/pages.js';
import { Mutex } from '../kern/lock/mutex.js';
import { ArgumentError, MemoryCorruptionError } from '../kern/errors.js';
import { TRASH_WORD, UMA_ZONE_NOFREE, UMA_ZONE_OFFPAGE, UMA_ZONE_REFCNT, UMA_ZONE_ZINIT, UMA_ZFLAG_INTERNAL } from './flags.js';

// Keg record fields (Int32 index within the record).
export const K_LOCK = 0;
export const K_FLAGS = 1;
export const K_SIZE = 2;
export const K_RSIZE = 3;
export const K_ALIGN = 4;
export const K_IPERS = 5;
export const K_PPERA = 6;
export const K_HDRSIZE = 7;
export const K_OFFPAGE = 8;
export const K_PARTIAL = 9;
export const K_FREE = 10;
export const K_FULL = 11;
export const K_FREEITEMS = 12;
export const K_PAGES = 13;
export const K_RESERVE = 14;
export const K_NSLABS = 15;
export const K_ZONE = 16; // index of the primary zone
export const K_HDRZONE = 17; // zone of off-page slab headers (-1: on page)
export const K_BITWORDS = 18;
export const K_ALIVE = 19;
/** Debug: items of this keg are trash-filled while free (no zone on it has init/fini). */
export const K_TRASH = 20;
export const K_SLAB_FAILS = 21;

// Slab header fields.
export const S_KEG = 0;
export const S_DATA = 1;
export const S_FREECNT = 2;
export const S_NEXT = 3;
export const S_PREV = 4;
export const S_LIST = 5;
export const S_PAGES = 6;
export const S_BITS = 7;

const LIST_FREE = 1;
const LIST_PARTIAL = 2;
const LIST_FULL = 3;

/** Largest item that gets an on-page header; larger items would waste too much of a page. */
const ONPAGE_MAX_ITEM = 512;
const MAX_PPERA = 16;

/** Callbacks run per item when a slab is created (init) or given back (fini). */
export interface KegCallbacks {
  init: ((item: number, flags: number) => boolean) | null;
  fini: ((item: number) => void) | null;
}

export interface KegLayout {
  rsize: number;
  ipers: number;
  ppera: number;
  hdrsize: number;
  offpage: boolean;
  bitwords: number;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function headerBytes(ipers: number, refcnt: boolean): number {
  const words = S_BITS + Math.ceil(ipers / 32) + (refcnt ? ipers : 0);
  return alignUp(words * 4, MIN_ALIGN);
}

/**
 * Choose a slab layout for an item size: the page count (1..16) that wastes
 * least, on-page headers for small items and off-page headers for large ones.
 */
export function computeLayout(size: number, align: number, flags: number): KegLayout {
  const rsize = alignUp(Math.max(size, MIN_ALIGN), Math.max(align, MIN_ALIGN));
  const refcnt = (flags & UMA_ZONE_REFCNT) !== 0;
  // UMA's own zones keep their headers on the page: an off-page header would
  // come from an internal zone and recurse.
  const internal = (flags & UMA_ZFLAG_INTERNAL) !== 0;
  const wantOffpage = !internal && ((flags & UMA_ZONE_OFFPAGE) !== 0 || rsize > ONPAGE_MAX_ITEM);
  if (!wantOffpage) {
    let ipers = Math.floor(PAGE_SIZE / rsize);
    while (ipers > 0 && alignUp(headerBytes(ipers, refcnt), rsize) + ipers * rsize > PAGE_SIZE) ipers--;
    const hdrsize = alignUp(headerBytes(ipers, refcnt), rsize);
    return { rsize, ipers, ppera: 1, hdrsize, offpage: false, bitwords: Math.ceil(ipers / 32) };
  }
  let best = 1;
  let bestWaste = Infinity;
  for (let ppera = Math.ceil(rsize / PAGE_SIZE); ppera <= MAX_PPERA; ppera++) {
    const bytes = ppera * PAGE_SIZE;
    const waste = (bytes % rsize) / bytes;
    if (waste < bestWaste - 1e-9) {
      best = ppera;
      bestWaste = waste;
    }
    if (waste === 0) break;
  }
  if (rsize > MAX_PPERA * PAGE_SIZE) throw new ArgumentError(`item size ${size} is larger than a slab (${MAX_PPERA * PAGE_SIZE})`);
  const ipers = Math.floor((best * PAGE_SIZE) / rsize);
  return { rsize, ipers, ppera: best, hdrsize: headerBytes(ipers, refcnt), offpage: true, bitwords: Math.ceil(ipers / 32) };
}

/** Allocates and frees off-page slab headers (an internal zone; set by uma.ts). */
export interface HeaderSource {
  allocHeader(bytes: number): number;
  freeHeader(hdr: number): void;
  headerZoneFor(bytes: number): number;
}

export class Keg {
  readonly index: number;
  readonly rec: number; // Int32 index of the record
  readonly arena: Arena;
  readonly i32: Int32Array;
  readonly lock: Mutex;
  readonly pages: PageAllocator;
  readonly headers: HeaderSource | null;
  callbacks: KegCallbacks = { init: null, fini: null };
  /** Name of the primary zone, for messages. */
  name = '';

  constructor(arena: Arena, pages: PageAllocator, index: number, headers: HeaderSource | null) {
    this.index = index;
    this.arena = arena;
    this.i32 = arena.i32;
    this.rec = (arena.kegTable + index * KEG_BYTES) >> 2;
    this.pages = pages;
    this.headers = headers;
    const internal = (this.i32[this.rec + K_FLAGS] & UMA_ZFLAG_INTERNAL) !== 0;
    this.lock = new Mutex(this.i32, this.rec + K_LOCK, internal ? 'UMA internal keg' : 'UMA keg');
  }

  /** Fill a fresh keg record (creator thread, under the zones lock). */
  static format(arena: Arena, index: number, size: number, align: number, flags: number, headerZone: number): void {
    const lay = computeLayout(size, align, flags);
    const r = (arena.kegTable + index * KEG_BYTES) >> 2;
    const i32 = arena.i32;
    i32.fill(0, r, r + (KEG_BYTES >> 2));
    i32[r + K_FLAGS] = flags;
    i32[r + K_SIZE] = size;
    i32[r + K_RSIZE] = lay.rsize;
    i32[r + K_ALIGN] = Math.max(align, MIN_ALIGN);
    i32[r + K_IPERS] = lay.ipers;
    i32[r + K_PPERA] = lay.ppera;
    i32[r + K_HDRSIZE] = lay.hdrsize;
    i32[r + K_OFFPAGE] = lay.offpage ? 1 : 0;
    i32[r + K_HDRZONE] = lay.offpage ? headerZone : -1;
    i32[r + K_BITWORDS] = lay.bitwords;
    // ZINIT promises zeroed items, which a trash fill would break (FreeBSD: zero_init is the keg init).
    i32[r + K_TRASH] = arena.debug && (flags & UMA_ZONE_ZINIT) === 0 ? 1 : 0;
    i32[r + K_ALIVE] = 1;
  }

  get flags(): number {
    return this.i32[this.rec + K_FLAGS];
  }
  get rsize(): number {
    return this.i32[this.rec + K_RSIZE];
  }
  get size(): number {
    return this.i32[this.rec + K_SIZE];
  }
  get ipers(): number {
    return this.i32[this.rec + K_IPERS];
  }
  get ppera(): number {
    return this.i32[this.rec + K_PPERA];
  }
  get freeItems(): number {
    return Atomics.load(this.i32, this.rec + K_FREEITEMS);
  }
  get pagesHeld(): number {
    return Atomics.load(this.i32, this.rec + K_PAGES);
  }
  get slabCount(): number {
    return Atomics.load(this.i32, this.rec + K_NSLABS);
  }
  get reserve(): number {
    return this.i32[this.rec + K_RESERVE];
  }
  set reserve(n: number) {
    Atomics.store(this.i32, this.rec + K_RESERVE, n);
  }
  get trash(): boolean {
    return this.i32[this.rec + K_TRASH] !== 0;
  }
  set trash(on: boolean) {
    Atomics.store(this.i32, this.rec + K_TRASH, on ? 1 : 0);
  }

  /**
   * Take up to `want` items into dest[destIdx..] (Int32 indices into the arena)
   * and return how many were taken. Slab allocation drops the keg lock.
   * `useReserve` lets the caller take the reserved free items.
   * `novm` forbids new pages. Does not sleep.
   */
  fetch(dest: Int32Array, destIdx: number, want: number, useReserve: boolean, novm: boolean): number {
    let got = 0;
    const r = this.rec;
    const i32 = this.i32;
    while (got < want) {
      this.lock.lock();
      const avail = i32[r + K_FREEITEMS] - (useReserve ? 0 : i32[r + K_RESERVE]);
      if (avail > 0) {
        const n = Math.min(want - got, avail);
        for (let k = 0; k < n; k++) dest[destIdx + got++] = this.takeItemLocked();
        this.lock.unlock();
        continue;
      }
      this.lock.unlock();
      if (novm || !this.newSlab()) break;
    }
    return got;
  }

  /** Give `n` items back (Int32 indices src[srcIdx..]). Lock: takes the keg lock once. */
  release(src: Int32Array, srcIdx: number, n: number): void {
    if (n === 0) return;
    this.lock.lock();
    try {
      for (let k = 0; k < n; k++) this.returnItemLocked(src[srcIdx + k]);
    } finally {
      this.lock.unlock();
    }
  }

  /** Give one item back. */
  releaseOne(item: number): void {
    this.lock.lock();
    try {
      this.returnItemLocked(item);
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * Free every completely free slab above the reserve (keg_drain). NOFREE kegs
   * keep theirs. Item fini runs with no lock held. Returns pages freed.
   */
  drain(): number {
    if ((this.flags & UMA_ZONE_NOFREE) !== 0) return 0;
    const i32 = this.i32;
    const r = this.rec;
    const victims: number[] = [];
    this.lock.lock();
    try {
      const ipers = i32[r + K_IPERS];
      let slab = i32[r + K_FREE];
      while (slab !== 0 && i32[r + K_FREEITEMS] - ipers >= i32[r + K_RESERVE]) {
        const next = i32[(slab >> 2) + S_NEXT];
        this.unlinkLocked(slab);
        i32[r + K_FREEITEMS] -= ipers;
        i32[r + K_NSLABS]--;
        i32[r + K_PAGES] -= i32[r + K_PPERA];
        victims.push(slab);
        slab = next;
      }
    } finally {
      this.lock.unlock();
    }
    for (const slab of victims) this.destroySlab(slab);
    return victims.length * this.ppera;
  }

  /** Byte offset of the slab header owning an item (via the page table). */
  slabOf(item: number): number {
    return this.pages.owner(item);
  }

  /** Index of the item inside its slab; validates that it is an item boundary. */
  itemIndex(slab: number, item: number): number {
    const s = slab >> 2;
    const rel = item - this.i32[s + S_DATA];
    const rsize = this.rsize;
    const idx = (rel / rsize) | 0;
    if (rel < 0 || rel % rsize !== 0 || idx >= this.ipers) {
      throw new MemoryCorruptionError('ERR_SLABNET_BAD_FREE', `free of 0x${item.toString(16)}: not an item boundary of keg "${this.name}"`);
    }
    return idx;
  }

  /** Int32 index of an item's reference counter (uma_find_refcnt). */
  refcntIndex(item: number): number {
    const slab = this.slabOf(item);
    const idx = this.itemIndex(slab, item);
    return (slab >> 2) + S_BITS + this.i32[this.rec + K_BITWORDS] + idx;
  }

  /** Is this item currently free in its slab (not handed to any zone)? */
  isFreeInSlab(item: number): boolean {
    const slab = this.slabOf(item);
    const idx = this.itemIndex(slab, item);
    return (this.i32[(slab >> 2) + S_BITS + (idx >>> 5)] & (1 << (idx & 31))) !== 0;
  }

  // ---- internals (keg lock held unless said otherwise) ----

  private takeItemLocked(): number {
    const i32 = this.i32;
    const r = this.rec;
    let slab = i32[r + K_PARTIAL];
    if (slab === 0) slab = i32[r + K_FREE];
    const s = slab >> 2;
    const words = i32[r + K_BITWORDS];
    for (let w = 0; w < words; w++) {
      const bits = i32[s + S_BITS + w];
      if (bits === 0) continue;
      const bit = 31 - Math.clz32(bits & -bits);
      i32[s + S_BITS + w] = bits & ~(1 << bit);
      const idx = w * 32 + bit;
      const free = --i32[s + S_FREECNT];
      i32[r + K_FREEITEMS]--;
      const list = i32[s + S_LIST];
      const want = free === 0 ? LIST_FULL : LIST_PARTIAL;
      if (list !== want) {
        this.unlinkLocked(slab);
        this.linkLocked(slab, want);
      }
      return i32[s + S_DATA] + idx * i32[r + K_RSIZE];
    }
    throw new MemoryCorruptionError('ERR_SLABNET_SLAB_CORRUPT', `keg "${this.name}": slab 0x${slab.toString(16)} has a free count but no free bit`);
  }

  private returnItemLocked(item: number): void {
    const i32 = this.i32;
    const r = this.rec;
    const slab = this.pages.owner(item);
    if (slab <= 0 || i32[(slab >> 2) + S_KEG] !== this.index) {
      throw new MemoryCorruptionError('ERR_SLABNET_BAD_FREE', `free of 0x${item.toString(16)}: not an item of keg "${this.name}"`);
    }
    const s = slab >> 2;
    const idx = this.itemIndex(slab, item);
    const w = s + S_BITS + (idx >>> 5);
    const bit = 1 << (idx & 31);
    if ((i32[w] & bit) !== 0) {
      throw new MemoryCorruptionError('ERR_SLABNET_DOUBLE_FREE', `double free of 0x${item.toString(16)} in keg "${this.name}"`);
    }
    i32[w] |= bit;
    const free = ++i32[s + S_FREECNT];
    i32[r + K_FREEITEMS]++;
    const want = free === i32[r + K_IPERS] ? LIST_FREE : LIST_PARTIAL;
    if (i32[s + S_LIST] !== want) {
      this.unlinkLocked(slab);
      this.linkLocked(slab, want);
    }
  }

  private listHead(list: number): number {
    return this.rec + (list === LIST_FREE ? K_FREE : list === LIST_PARTIAL ? K_PARTIAL : K_FULL);
  }

  private linkLocked(slab: number, list: number): void {
    const i32 = this.i32;
    const s = slab >> 2;
    const head = this.listHead(list);
    const first = i32[head];
    i32[s + S_NEXT] = first;
    i32[s + S_PREV] = 0;
    if (first !== 0) i32[(first >> 2) + S_PREV] = slab;
    i32[head] = slab;
    i32[s + S_LIST] = list;
  }

  private unlinkLocked(slab: number): void {
    const i32 = this.i32;
    const s = slab >> 2;
    const next = i32[s + S_NEXT];
    const prev = i32[s + S_PREV];
    if (prev !== 0) i32[(prev >> 2) + S_NEXT] = next;
    else i32[this.listHead(i32[s + S_LIST])] = next;
    if (next !== 0) i32[(next >> 2) + S_PREV] = prev;
    i32[s + S_LIST] = 0;
  }

  /**
   * Allocate and format a new slab (keg_alloc_slab), then put it on the free
   * list. No lock held on entry; takes "vm page" and then the keg lock.
   * Returns false when no pages could be had.
   */
  private newSlab(): boolean {
    const i32 = this.i32;
    const r = this.rec;
    const ppera = i32[r + K_PPERA];
    const run = this.pages.allocRunWithReclaim(ppera);
    if (run === 0) {
      Atomics.add(i32, r + K_SLAB_FAILS, 1);
      return false;
    }
    const offpage = i32[r + K_OFFPAGE] !== 0;
    const hdrsize = i32[r + K_HDRSIZE];
    let slab = run;
    if (offpage) {
      slab = this.headers!.allocHeader(hdrsize);
      if (slab === 0) {
        this.pages.freeRun(run, ppera);
        Atomics.add(i32, r + K_SLAB_FAILS, 1);
        return false;
      }
    }
    const s = slab >> 2;
    const ipers = i32[r + K_IPERS];
    const rsize = i32[r + K_RSIZE];
    i32.fill(0, s, s + (hdrsize >> 2));
    i32[s + S_KEG] = this.index;
    i32[s + S_DATA] = offpage ? run : run + hdrsize;
    i32[s + S_FREECNT] = ipers;
    i32[s + S_PAGES] = run;
    const words = i32[r + K_BITWORDS];
    for (let w = 0; w < words; w++) {
      const bitsHere = Math.min(32, ipers - w * 32);
      i32[s + S_BITS + w] = bitsHere === 32 ? -1 : (1 << bitsHere) - 1;
    }
    const data = i32[s + S_DATA];
    const u8 = this.arena.u8;
    if ((this.flags & UMA_ZONE_ZINIT) !== 0) u8.fill(0, data, data + ipers * rsize);
    if (this.trash) for (let k = 0; k < ipers; k++) fillTrash(i32, data + k * rsize, rsize);
    this.pages.setOwner(run, ppera, slab);
    const init = this.callbacks.init;
    if (init !== null) {
      for (let k = 0; k < ipers; k++) {
        if (!init(data + k * rsize, 0)) {
          const fini = this.callbacks.fini;
          if (fini !== null) for (let j = 0; j < k; j++) fini(data + j * rsize);
          this.releasePages(slab, run, ppera, offpage);
          Atomics.add(i32, r + K_SLAB_FAILS, 1);
          return false;
        }
      }
    }
    this.lock.lock();
    this.linkLocked(slab, LIST_FREE);
    i32[r + K_FREEITEMS] += ipers;
    i32[r + K_NSLABS]++;
    i32[r + K_PAGES] += ppera;
    this.lock.unlock();
    return true;
  }

  /** Run fini on every item and give the pages (and off-page header) back. No lock held. */
  private destroySlab(slab: number): void {
    const i32 = this.i32;
    const s = slab >> 2;
    const fini = this.callbacks.fini;
    if (fini !== null) {
      const data = i32[s + S_DATA];
      const rsize = this.rsize;
      for (let k = 0, n = this.ipers; k < n; k++) fini(data + k * rsize);
    }
    this.releasePages(slab, i32[s + S_PAGES], this.ppera, i32[this.rec + K_OFFPAGE] !== 0);
  }

  private releasePages(slab: number, run: number, ppera: number, offpage: boolean): void {
    this.pages.freeRun(run, ppera);
    if (offpage) this.headers!.freeHeader(slab);
  }
}

/** Fill an item with the trash pattern (debug mode). */
export function fillTrash(i32: Int32Array, item: number, size: number): void {
  i32.fill(TRASH_WORD, item >> 2, (item + size) >> 2);
}

/** Offset of the first word that is not trash, or -1 when the whole item is intact. */
export function checkTrash(i32: Int32Array, item: number, size: number): number {
  const start = item >> 2;
  const end = (item + size) >> 2;
  for (let w = start; w < end; w++) if (i32[w] !== TRASH_WORD) return (w - start) * 4;
  return -1;
}
