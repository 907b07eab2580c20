/**
 * Layout of the arena's fixed header page. Every field is an Int32 index into
 * the arena's Int32Array view (byte offset = index * 4). The header is the
 * first page of the SharedArrayBuffer; offset 0 is therefore never an item,
 * which lets the handle 0 mean "null" everywhere.
 *
 *   page 0            header (this file)
 *   witness region    lock classes, order matrix, first-seen sites
 *   page table        Int32 per page: owning slab header offset (> 0),
 *                     LARGE_HEAD_TAG - npages / LARGE_CONT for malloc'd runs, 0 free
 *   free bitmap       1 bit per page, 1 = free
 *   owner map         1 byte per 16 bytes of arena: 0 = item free, cpu + 1 = allocated by cpu
 *   keg table         MAX_KEGS records of KEG_WORDS int32
 *   zone table        MAX_ZONES records of ZONE_WORDS int32
 *   stats region      per zone, NCPUS_MAX slots of 128 bytes (one cache line pair each)
 *   data pages        everything else, handed out by the page allocator
 */

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
export const ARENA_MAGIC = 0x534c4142; // "SLAB"
export const ARENA_VERSION = 1;

/** Smallest item alignment: the owner map keeps one byte per 16 bytes. */
export const MIN_ALIGN = 16;
export const OWNER_SHIFT = 4;

export const MAX_KEGS = 256;
export const MAX_ZONES = 256;
export const MAX_CPUS = 64;
/** Per-CPU statistics slot: 128 bytes, so two CPUs never share a cache line pair. */
export const CPU_SLOT_BYTES = 128;

// ---- header fields (Int32 indices) ----
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_NPAGES = 2;
export const H_NCPUS_MAX = 3;
/** Next CPU id to hand out (Atomics.add). */
export const H_CPU_NEXT = 4;
/** Arena flags (ARENA_F_*), fixed at creation. */
export const H_FLAGS = 5;
/** Futex word of the page allocator lock. */
export const H_PAGE_LOCK = 6;
export const H_PAGE_FREE = 7;
export const H_PAGE_HINT = 8;
/** Bumped whenever pages are freed; memory sleepers wait on it. */
export const H_PAGE_SEQ = 9;
export const H_PAGE_SLEEPERS = 10;
/** Futex word of the zone registry lock ("UMA zones"). */
export const H_ZONES_LOCK = 11;
export const H_NZONES = 12;
export const H_NKEGS = 13;
/** Spin word guarding the witness class table (never itself witnessed). */
export const H_WITNESS_CLASS_LOCK = 14;
export const H_WITNESS_NCLASSES = 15;
export const H_PAGE_TABLE = 16; // byte offsets of the regions below
export const H_FREE_BITMAP = 17;
export const H_OWNER_MAP = 18;
export const H_KEG_TABLE = 19;
export const H_ZONE_TABLE = 20;
export const H_STATS = 21;
export const H_WITNESS = 22;
export const H_DATA_START_PAGE = 23;
/** Pages ever handed out minus pages returned, for `vm.stats`. */
export const H_PAGES_INUSE = 24;
/** vm.zone_warnings (1 = print limit warnings). */
export const H_ZONE_WARNINGS = 25;
/** Failed page-run allocations (contig passes exhausted). */
export const H_PAGE_FAILS = 26;
/** Per-subsystem tunables live from here on (mbuf limits etc.), by name in sysctl. */
export const H_TUNABLES = 64;
export const H_TUNABLES_END = 1024;

export const ARENA_F_DEBUG = 1;

// ---- witness region ----
export const WITNESS_MAX_CLASSES = 64;
export const WITNESS_NAME_BYTES = 32;
export const WITNESS_SITE_BYTES = 96;

// ---- page table markers ----
/** First page of a multi-page malloc run: LARGE_HEAD_TAG - npages (always < LARGE_CONT). */
export const LARGE_HEAD_TAG = -2;
/** Any later page of such a run. */
export const LARGE_CONT = -1;
