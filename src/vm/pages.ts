/**
 * The page allocator (our vm_page layer): single pages and physically
 * contiguous runs out of the arena's data pages, with a page table that maps
 * every page to the slab owning it ("vtoslab"), so that a free needs no size
 * and no zone.
 *
 * Locking: one mutex of class "vm page" guards the free bitmap. It is a leaf:
 * nothing else is acquired while it is held.
 */
import type { Arena } from './arena.js';
import { Mutex } from '../kern/lock/mutex.js';
import * as L from './layout.js';

export class PageAllocator {
  readonly arena: Arena;
  readonly lock: Mutex;
  private readonly bitmap: number; // Int32 index of the free bitmap
  private readonly table: number; // Int32 index of the page table
  private readonly firstData: number;
  /** Called (without locks held) to free cached pages when a run cannot be found. */
  reclaimHook: ((pagesWanted: number) => void) | null = null;

  constructor(arena: Arena) {
    this.arena = arena;
    this.lock = new Mutex(arena.i32, L.H_PAGE_LOCK, 'vm page');
    this.bitmap = arena.freeBitmap >> 2;
    this.table = arena.pageTable >> 2;
    this.firstData = arena.i32[L.H_DATA_START_PAGE];
  }

  get freePages(): number {
    return Atomics.load(this.arena.i32, L.H_PAGE_FREE);
  }

  get dataPages(): number {
    return this.arena.npages - this.firstData;
  }

  /**
   * Allocate `n` contiguous pages; returns the byte offset of the first, or 0.
   * Lock: takes and drops "vm page". Does not sleep.
   */
  allocRun(n: number): number {
    this.lock.lock();
    try {
      const first = this.findRun(n);
      if (first < 0) return 0;
      this.markRun(first, n, false);
      return first * L.PAGE_SIZE;
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * contigmalloc-style allocation in passes: free pages first; then ask the
   * reclaim hook (UMA drains its caches) and look again; then fail. WAITOK
   * callers sleep in waitForPages() and retry, as vm_wait does.
   */
  allocRunWithReclaim(n: number): number {
    let off = this.allocRun(n);
    if (off !== 0 || this.reclaimHook === null) return off;
    this.reclaimHook(n);
    off = this.allocRun(n);
    if (off === 0) Atomics.add(this.arena.i32, L.H_PAGE_FAILS, 1);
    return off;
  }

  /** Return a run of `n` pages starting at byte offset `off`; wakes memory sleepers. */
  freeRun(off: number, n: number): void {
    const first = off >>> L.PAGE_SHIFT;
    this.lock.lock();
    try {
      this.markRun(first, n, true);
      for (let p = first; p < first + n; p++) this.arena.i32[this.table + p] = 0;
    } finally {
      this.lock.unlock();
    }
    const i32 = this.arena.i32;
    Atomics.add(i32, L.H_PAGE_SEQ, 1);
    if (Atomics.load(i32, L.H_PAGE_SLEEPERS) > 0) Atomics.notify(i32, L.H_PAGE_SEQ);
  }

  /**
   * Sleep until pages are freed or `timeoutMs` passes (vm_wait). Never call
   * with a lock held. Main-thread callers should use waitForPagesAsync.
   */
  waitForPages(timeoutMs = 100): void {
    const i32 = this.arena.i32;
    const seq = Atomics.load(i32, L.H_PAGE_SEQ);
    Atomics.add(i32, L.H_PAGE_SLEEPERS, 1);
    try {
      Atomics.wait(i32, L.H_PAGE_SEQ, seq, timeoutMs);
    } finally {
      Atomics.sub(i32, L.H_PAGE_SLEEPERS, 1);
    }
  }

  /**
   * Async twin of waitForPages for the main thread's event loop (keeps the
   * process alive while it waits). Takes no lock.
   */
  async waitForPagesAsync(timeoutMs = 100): Promise<void> {
    const i32 = this.arena.i32;
    const seq = Atomics.load(i32, L.H_PAGE_SEQ);
    Atomics.add(i32, L.H_PAGE_SLEEPERS, 1);
    try {
      const r = Atomics.waitAsync(i32, L.H_PAGE_SEQ, seq, timeoutMs);
      if (r.async) {
        // A pending waitAsync alone does not keep Node's event loop alive: a timer does.
        const timer = setTimeout(() => {}, timeoutMs + 10);
        try {
          await r.value;
        } finally {
          clearTimeout(timer);
        }
      }
    } finally {
      Atomics.sub(i32, L.H_PAGE_SLEEPERS, 1);
    }
  }

  /** Map every page of a run to the slab header at byte offset `slab`. */
  setOwner(off: number, n: number, slab: number): void {
    const first = off >>> L.PAGE_SHIFT;
    for (let p = first; p < first + n; p++) this.arena.i32[this.table + p] = slab;
  }

  /** Page-table entry of the page holding byte offset `addr` (vtoslab). */
  owner(addr: number): number {
    return this.arena.i32[this.table + (addr >>> L.PAGE_SHIFT)];
  }

  /** Mark a run as a large malloc allocation (its length is recovered on free). */
  setLarge(off: number, n: number): void {
    const first = off >>> L.PAGE_SHIFT;
    const t = this.arena.i32;
    t[this.table + first] = L.LARGE_HEAD_TAG - n;
    for (let p = first + 1; p < first + n; p++) t[this.table + p] = L.LARGE_CONT;
  }

  isDataAddress(addr: number): boolean {
    return Number.isInteger(addr) && addr >= this.firstData * L.PAGE_SIZE && addr < this.arena.size;
  }

  private findRun(n: number): number {
    const i32 = this.arena.i32;
    const npages = this.arena.npages;
    const hint = i32[L.H_PAGE_HINT];
    const tryFrom = (start: number, end: number): number => {
      let runStart = -1;
      let runLen = 0;
      for (let p = start; p < end; p++) {
        const word = i32[this.bitmap + (p >>> 5)];
        if (word === 0 && (p & 31) === 0 && n <= 32) {
          p += 31; // whole word allocated: skip it
          runLen = 0;
          continue;
        }
        if ((word & (1 << (p & 31))) !== 0) {
          if (runLen === 0) runStart = p;
          if (++runLen === n) return runStart;
        } else {
          runLen = 0;
        }
      }
      return -1;
    };
    let first = tryFrom(hint, npages);
    if (first < 0) first = tryFrom(this.firstData, Math.min(npages, hint + n));
    return first;
  }

  private markRun(first: number, n: number, free: boolean): void {
    const i32 = this.arena.i32;
    for (let p = first; p < first + n; p++) {
      const w = this.bitmap + (p >>> 5);
      if (free) i32[w] |= 1 << (p & 31);
      else i32[w] &= ~(1 << (p & 31));
    }
    i32[L.H_PAGE_FREE] += free ? n : -n;
    i32[L.H_PAGES_INUSE] += free ? -n : n;
    if (!free) i32[L.H_PAGE_HINT] = first + n < this.arena.npages ? first + n : this.firstData;
    else if (first < i32[L.H_PAGE_HINT]) i32[L.H_PAGE_HINT] = first;
  }
}
