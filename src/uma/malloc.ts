/**
 * malloc(9) over UMA: power-of-two zones `malloc-16` .. `malloc-4096` for small
 * requests and whole page runs from the page allocator above that, as
 * FreeBSD's kern_malloc.c does with its kmemzones and uma_large_malloc.
 *
 * free() needs no size: the page table says what owns the page (vtoslab).
 * A positive entry is a slab header whose keg is one of our zones; a
 * LARGE_HEAD_TAG - npages entry is the first page of a large run; LARGE_CONT
 * is the inside of one; 0 is a free page.
 *
 * Each thread makes its own Malloc over its own Uma (the per-CPU caches of the
 * zones are thread-local); the zones themselves are shared through the arena,
 * so memory malloc'd in one worker may be freed in another.
 *
 * BSD name mapping: malloc(size, type, flags) -> malloc(size, flags) (no
 * malloc types), free(addr, type) -> free(addr), malloc_usable_size -> mallocUsableSize.
 */
import { LARGE_CONT, LARGE_HEAD_TAG, PAGE_SHIFT, PAGE_SIZE } from '../vm/layout.js';
import { ArgumentError, MemoryCorruptionError, OutOfMemoryError } from '../kern/errors.js';
import { M_NOVM, M_NOWAIT, M_WAITOK, M_ZERO } from './flags.js';
import type { Uma } from './uma.js';
import type { Zone } from './zone.js';
import { S_KEG } from './keg.js';

/** Smallest and largest size served by a zone; above MALLOC_MAX_ZONE come page runs. */
export const MALLOC_MIN = 16;
export const MALLOC_MAX_ZONE = 4096;
/** Name of the malloc zone for a power-of-two size. */
export const mallocZoneName = (size: number): string => `malloc-${size}`;

/** Power-of-two sizes of the malloc zones, 16 .. 4096. */
export const MALLOC_SIZES: readonly number[] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/** Largest request accepted at all (the arena is at most 2 GiB). */
const MALLOC_MAX = 0x7fff_0000;

export class Malloc {
  readonly uma: Uma;
  /** zones[i] serves sizes up to MALLOC_SIZES[i]. */
  readonly zones: Zone[];
  /** size class by (size + 15) >> 4, for sizes 1..4096: index into zones. */
  private readonly classOf: Uint8Array;
  /** keg index -> our zone, or undefined when the keg is not a malloc keg. */
  private readonly zoneByKeg: (Zone | undefined)[] = [];
  /** This thread's large-run counters (page runs are not zones, so not in vmstat -z). */
  largeAllocs = 0;
  largeFrees = 0;
  largeFails = 0;

  /**
   * Bind the malloc zones in this thread, creating them if no thread has yet.
   * Takes the UMA registry lock; may allocate zone records; does not sleep.
   */
  constructor(uma: Uma) {
    this.uma = uma;
    this.zones = MALLOC_SIZES.map((size) => findOrCreate(uma, size));
    this.classOf = new Uint8Array((MALLOC_MAX_ZONE >> 4) + 1);
    for (let c = 0; c < this.classOf.length; c++) {
      const bytes = Math.max(c << 4, MALLOC_MIN);
      this.classOf[c] = MALLOC_SIZES.findIndex((s) => s >= bytes);
    }
    for (const z of this.zones) this.zoneByKeg[z.keg.index] = z;
  }

  /**
   * malloc(9): `size` bytes; returns a handle (byte offset into the arena) or 0
   * when M_NOWAIT cannot be satisfied. M_WAITOK sleeps until memory comes back
   * and never returns 0 (a size larger than the arena is an error instead).
   * M_ZERO zeroes the memory. No lock held on return; may sleep with M_WAITOK.
   */
  malloc(size: number, flags: number = M_NOWAIT): number {
    if (size > 0 && size <= MALLOC_MAX_ZONE && (size | 0) === size) {
      return this.zones[this.classOf[(size + 15) >> 4]].alloc(flags);
    }
    return this.mallocLarge(size, flags);
  }

  /**
   * free(9): give back memory from malloc(). 0 is ignored. The size comes
   * from the page table. A foreign, interior or already-freed address is an
   * error with a stable code. May take zone/keg/page locks; does not sleep.
   */
  free(addr: number): void {
    if (addr === 0) return;
    const pages = this.uma.pages;
    if (!pages.isDataAddress(addr)) {
      throw new ArgumentError(`free: ${addr} is not an address inside the arena's data pages`);
    }
    const owner = pages.owner(addr);
    if (owner > 0) {
      this.zoneOfSlab(addr, owner, 'free').free(addr);
      return;
    }
    this.freeLarge(addr, owner);
  }

  /**
   * malloc_usable_size: bytes usable at `addr` (the zone's item size, or the
   * whole page run). Same address checks as free(). Takes no lock.
   */
  mallocUsableSize(addr: number): number {
    const pages = this.uma.pages;
    if (!pages.isDataAddress(addr)) {
      throw new ArgumentError(`mallocUsableSize: ${addr} is not an address inside the arena's data pages`);
    }
    const owner = pages.owner(addr);
    if (owner > 0) {
      const zone = this.zoneOfSlab(addr, owner, 'mallocUsableSize');
      zone.keg.itemIndex(owner, addr); // throws unless addr is an item boundary
      return zone.keg.size;
    }
    return this.largePages(addr, owner, 'mallocUsableSize') << PAGE_SHIFT;
  }

  // ---- slow paths ----

  /** Sizes above 4096 (and bad sizes): a run of whole pages, marked large in the page table. */
  private mallocLarge(size: number, flags: number): number {
    if (!Number.isInteger(size) || size <= 0 || size > MALLOC_MAX) {
      throw new ArgumentError(`malloc: size must be an integer in 1..${MALLOC_MAX}, got ${size}`);
    }
    if ((flags & (M_NOWAIT | M_WAITOK)) === (M_NOWAIT | M_WAITOK)) {
      throw new ArgumentError('malloc: M_NOWAIT and M_WAITOK are exclusive');
    }
    const n = Math.ceil(size / PAGE_SIZE);
    const pages = this.uma.pages;
    if (n > pages.dataPages) {
      if ((flags & M_WAITOK) !== 0) throw new OutOfMemoryError(`malloc(${size}, M_WAITOK): larger than the whole arena (${pages.dataPages} pages)`);
      this.largeFails++;
      return 0;
    }
    for (;;) {
      // M_NOVM: only cached memory, so no reclaim pass (which would drain caches).
      const off = (flags & M_NOVM) !== 0 ? pages.allocRun(n) : pages.allocRunWithReclaim(n);
      if (off !== 0) {
        pages.setLarge(off, n);
        if ((flags & M_ZERO) !== 0) this.uma.arena.u8.fill(0, off, off + n * PAGE_SIZE);
        this.largeAllocs++;
        return off;
      }
      if ((flags & M_WAITOK) === 0) {
        this.largeFails++;
        return 0;
      }
      pages.waitForPages(50);
    }
  }

  /** Free a large run whose first page-table entry is `owner`. */
  private freeLarge(addr: number, owner: number): void {
    const n = this.largePages(addr, owner, 'free');
    this.uma.pages.freeRun(addr, n);
    this.largeFrees++;
  }

  /** Page count of the large run starting at addr; throws for anything else. */
  private largePages(addr: number, owner: number, what: string): number {
    const hex = `0x${addr.toString(16)}`;
    if (owner === 0) {
      throw new MemoryCorruptionError('ERR_SLABNET_DOUBLE_FREE', `${what}: ${hex} is on a free page (double free, or never allocated)`);
    }
    if (owner === LARGE_CONT || (addr & (PAGE_SIZE - 1)) !== 0) {
      throw new MemoryCorruptionError('ERR_SLABNET_BAD_FREE', `${what}: ${hex} points inside a large allocation, not at its start`);
    }
    if (owner >= LARGE_HEAD_TAG) {
      throw new MemoryCorruptionError('ERR_SLABNET_BAD_FREE', `${what}: ${hex} has an unknown page-table entry ${owner}`);
    }
    return LARGE_HEAD_TAG - owner;
  }

  /** The malloc zone whose keg owns the slab at `slab`; throws for other zones' memory. */
  private zoneOfSlab(addr: number, slab: number, what: string): Zone {
    const kegIndex = this.uma.arena.i32[(slab >> 2) + S_KEG];
    const zone = this.zoneByKeg[kegIndex];
    if (zone === undefined) {
      const other = this.uma.zoneOfItem(addr);
      throw new MemoryCorruptionError(
        'ERR_SLABNET_BAD_FREE',
        `${what}: 0x${addr.toString(16)} was not allocated by malloc (it belongs to zone "${other?.name ?? '?'}")`,
      );
    }
    return zone;
  }
}

/** Bind the zone of one size class, creating it when no thread has (racing creators retry the lookup). */
function findOrCreate(uma: Uma, size: number): Zone {
  const name = mallocZoneName(size);
  try {
    return uma.zone(name);
  } catch {
    try {
      return uma.zcreate(name, { size });
    } catch {
      // Another thread created it between our lookup and our create.
      return uma.zone(name);
    }
  }
}
