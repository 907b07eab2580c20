/**
 * Zones: the caching allocator in front of a keg (uma_zone). Every thread that
 * uses a zone has its own Zone object; the zone's shared state lives in a
 * record in the arena and the object adds this thread's per-CPU cache.
 *
 * Per-CPU cache (Bonwick's magazines, as in uma_core.c's cache): a current
 * bucket that both fast paths use as a stack (alloc pops, free pushes), and a
 * spare. A CPU that allocates and frees alike never leaves the current
 * bucket. When it runs dry it is swapped with the spare if that holds items,
 * else exchanged for a full bucket from the zone's shared list (zone lock),
 * else filled from the keg. When it fills up it is swapped with an empty
 * spare, else the spare (full) goes to the shared list and the current
 * bucket becomes the spare. Thread-local; the fast paths take no lock and no
 * atomic.
 *
 * Cross-CPU frees (FreeBSD's cross-domain buckets, uc_crossbucket and
 * zone_free_cross): a free of an item that another CPU allocated goes into a
 * third per-CPU bucket, the cross-free bucket, with the same plain push as an
 * own free (thread-local, no lock, no atomic, the item's owner byte left
 * alone). A full cross-free bucket goes whole onto the zone's shared list
 * (one zone lock per bucket), where the allocating CPU, or any other, takes
 * it as a full bucket and claims its items. So a CPU that only frees (the
 * protocol CPU freeing the mbufs a user CPU built: TCP's send path) never
 * mixes foreign items into its own cache and never writes their owner bytes.
 *
 * Shared record (ZONE_BYTES, Int32 fields Z_*):
 *   Z_LOCK        futex word, class "UMA zone"
 *   Z_FULL_HEAD   full buckets shared by all CPUs (singly linked by B_NEXT)
 *   Z_EMPTY_HEAD  empty buckets waiting for a CPU that hands a full one over
 *   Z_ITEMS       items the zone holds from its keg: in use plus cached
 *   Z_MAX_ITEMS   the limit on Z_ITEMS (0 = none)
 *   Z_SLEEP_HEAD/TAIL  FIFO tickets of M_WAITOK sleepers at the limit
 *   Z_WAKE_SEQ    futex word the sleepers wait on
 * Per-CPU statistics slot (128 bytes; arena.statSlot): Float64 counters
 * ST_ALLOCS.., the Int32 bucket counts and free gates, and the drain-request
 * word ST_DRAIN_WORD.
 */
import type { Arena } from '../vm/arena.js';
import { ZONE_BYTES } from '../vm/arena.js';
import { H_ZONE_WARNINGS, OWNER_SHIFT } from '../vm/layout.js';
import { ArgumentError, MemoryCorruptionError, ZoneBusyError } from '../kern/errors.js';
import { Mutex } from '../kern/lock/mutex.js';
import { witness } from '../kern/lock/witness.js';
import { B_COUNT, B_ENTRIES, B_NEXT, B_TAG, BUCKET_MAX } from './bucket.js';
import { M_NOVM, M_NOWAIT, M_USE_RESERVE, M_WAITOK, M_ZERO, UMA_ZONE_NOBUCKET } from './flags.js';
import { checkTrash, fillTrash, type Keg } from './keg.js';

export const Z_LOCK = 0;
export const Z_FLAGS = 1;
export const Z_KEG = 2;
export const Z_SIZE = 3;
export const Z_BUCKET_SIZE = 4;
export const Z_BUCKET_MAX = 5;
export const Z_FULL_HEAD = 6;
export const Z_FULL_COUNT = 7;
export const Z_FULL_MIN = 8;
export const Z_ITEMS = 9;
export const Z_MAX_ITEMS = 10;
export const Z_SLEEPERS = 11;
export const Z_SLEEP_HEAD = 12;
export const Z_SLEEP_TAIL = 13;
export const Z_WAKE_SEQ = 14;
export const Z_WARN_LAST = 15;
export const Z_LIMIT_HITS = 16;
export const Z_ALIVE = 17;
export const Z_CALLBACKS = 18;
export const Z_SECONDARY = 19;
export const Z_NAME = 20; // 32 bytes
export const Z_NAME_BYTES = 32;
export const Z_WARNING = 28; // 64 bytes
export const Z_WARNING_BYTES = 64;
export const Z_BUCKET_INIT = 44;
/**
 * Empty buckets kept by the zone (uz_free_bucket of older UMA), linked by
 * B_NEXT under the zone lock: a CPU that takes a full bucket leaves its empty
 * one here in the same lock hold, and a CPU that hands a full bucket over
 * takes an empty one back, so a producer/consumer pair moves buckets with
 * one lock acquisition each way and never through the bucket zone's keg.
 */
export const Z_EMPTY_HEAD = 45;
export const Z_EMPTY_COUNT = 46;
/** At most this many empty buckets per registered CPU wait on a zone's list. */
const EMPTY_PER_CPU = 2;

/** Bits of Z_CALLBACKS: which callbacks the creator registered (others must too). */
export const CB_CTOR = 1;
export const CB_DTOR = 2;
export const CB_INIT = 4;
export const CB_FINI = 8;

// Per-CPU statistics slot: Float64 indices relative to the slot.
export const ST_ALLOCS = 0;
export const ST_FREES = 1;
export const ST_FAILS = 2;
export const ST_SLEEPS = 3;
export const ST_XDOMAIN = 4;
/**
 * Int32 indices (relative to the slot) of the per-CPU cache's counts. The
 * current bucket's count itself lives here (not in a field of the Zone
 * object), so a free costs no counter: since the last fold, frees - allocs =
 * CUR_CNT - CUR_BASE. The allocation fast path counts in a field of this
 * thread's Zone object (pendingAllocs), not in the arena: `used` (allocs -
 * frees) does not depend on it, only `requests` does, and that is folded
 * into ST_ALLOCS at every slow path, flush, poll() and reading by this
 * thread. Every slow-path change of the count folds into the Float64 totals
 * first and moves the base with the count, so they cannot overflow.
 */
export const ST_CUR_CNT_WORD = 12;
export const ST_CUR_BASE_WORD = 13;
/**
 * The free gate: the fast free path pushes onto the current bucket only while
 * its count is below this word. The owner sets it to the bucket's capacity; a
 * drain request or a sleeper at the zone limit stores 0 into it, so the next
 * free takes the slow path, which honours the request. That folds three
 * per-free checks (room, drain request, sleepers) into one compare.
 */
export const ST_FREE_GATE_WORD = 15;
/** Int32 index (relative to the slot) of the drain-request word. */
export const ST_DRAIN_WORD = 16;
/**
 * The cross-free bucket's count, its value at the last fold, and its free
 * gate (as ST_CUR_CNT_WORD.. for the current bucket). Every entry is a
 * cross-CPU free: since the last fold, XCNT - XBASE frees were made, all of
 * them counted as XDOMAIN too.
 */
export const ST_X_CNT_WORD = 17;
export const ST_X_BASE_WORD = 18;
export const ST_XFREE_GATE_WORD = 19;

/**
 * Await a pending Atomics.waitAsync while holding a referenced timer: Node does
 * not count a pending waitAsync as work, so without the timer a main thread
 * whose only business is this allocation would simply exit.
 */
export async function keepAlive<T>(p: Promise<T>, timeoutMs: number): Promise<T> {
  const timer = setTimeout(noop, timeoutMs + 10);
  try {
    return await p;
  } finally {
    clearTimeout(timer);
  }
}
function noop(): void {}

/** An item's Int32 word of the owner map, and the bit offset of its byte in it (x8, little-endian). */
const OWNER_WORD_SHIFT = OWNER_SHIFT + 2;
const OWNER_BYTE_SHIFT = OWNER_SHIFT - 3;
/** The fast free path reads owner bytes as lanes of little-endian words; elsewhere every free takes freeOther. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Seconds between two "limit reached" warnings of one zone (FreeBSD: 300). */
export const WARN_INTERVAL_S = 300;

export type Ctor = (item: number, arg: number, flags: number) => boolean;
export type Dtor = (item: number, arg: number) => void;
export type Init = (item: number, flags: number) => boolean;
export type Fini = (item: number) => void;

export interface ZoneCallbacks {
  ctor?: Ctor | null;
  dtor?: Dtor | null;
  /** Primary zones: per item when a slab is made. Secondary zones: when an item moves keg -> zone. */
  init?: Init | null;
  /** The reverse of init. */
  fini?: Fini | null;
}

/** Hooks the zone needs from the UMA system (bucket memory, logging). */
export interface ZoneHost {
  allocBucket(): number;
  freeBucket(b: number): void;
  warn(message: string): void;
}

const FAIL_NONE = 0;
const FAIL_LIMIT = 1;
const FAIL_NOMEM = 2;

export class Zone {
  readonly name: string;
  readonly index: number;
  readonly arena: Arena;
  readonly keg: Keg;
  readonly lock: Mutex;
  readonly secondary: boolean;
  /** Thread-local: the CPU this object caches for. */
  readonly cpu: number;

  // Arena views and record indices (hot-path fields first). The numeric ones
  // are initialized to 0 where declared: a class field is defined before the
  // constructor runs, and one defined as undefined and then set to a number
  // loses V8's small-integer field representation, which costs the fast
  // paths a tenth of their speed (measured: 0.60 -> 0.67 of a free list).
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly u8: Uint8Array;
  /** The owner map as its own view: a handle beyond the arena reads undefined, not another region. */
  private readonly owner: Uint8Array;
  /** Int32 index of the owner map: the free fast path reads a tag through i32, the view it holds anyway. */
  private readonly ownerWord: number = 0;
  /** arena.size: the fast path's bound, since an i32 read past the owner map lands in other regions. */
  private readonly limit: number = 0;
  /** The tag whose frees take the fast path: this CPU's, or -1 in debug mode (every free checked). */
  private readonly fastTag: number = 0;
  private readonly rec: number = 0;
  private readonly stat: number = 0; // Float64 index of this CPU's slot
  private readonly drainIdx: number = 0; // Int32 index of this CPU's drain word
  private readonly cCnt: number = 0; // Int32 index of this CPU's current bucket count
  private readonly cBase: number = 0; // ... and of its value at the last fold
  private readonly gate: number = 0; // Int32 index of this CPU's free gate
  private readonly xCnt: number = 0; // Int32 index of this CPU's cross-free bucket count
  private readonly xBase: number = 0; // ... of its value at the last fold
  private readonly xGate: number = 0; // ... and of its free gate
  private readonly cpuTag: number = 0;
  private readonly plain: boolean; // !debug: hot paths skip the checks
  private readonly nobucket: boolean;

  // The per-CPU cache (thread-local, no lock).
  private curB = 0;
  private curEntries = 0;
  /** Capacity of the current bucket (0: none); the gate word holds it or 0. */
  private curCap = 0;
  private spareB = 0;
  private spareCnt = 0;
  private spareEntries = 0;
  /** The cross-free bucket (0: none) and its entries' Int32 index, capacity. */
  private crossB = 0;
  private crossEntries = 0;
  private crossCap = 0;
  /** Owner tag of every item in the cross-free bucket; -1: empty, 0: mixed (noteCrossTag). */
  private crossTag = -1;
  /** Fast-path allocations since the last fold (see ST_CUR_CNT_WORD). */
  private pendingAllocs = 0;
  private drainSeen = 0;
  /** Depth of this thread's slow paths on this zone: a reentrant flush is deferred. */
  private inSlow = 0;

  ctor: Ctor | null = null;
  dtor: Dtor | null = null;
  /** Zone-level init/fini (secondary zones); a primary zone's are the keg's. */
  zinit: Init | null = null;
  zfini: Fini | null = null;
  /** uma_zone_set_maxaction: called (in this thread) when an allocation hits the limit. */
  maxAction: ((zone: Zone) => void) | null = null;
  private readonly host: ZoneHost;
  private failReason = FAIL_NONE;
  private lastContended = 0;
  private readonly one = new Int32Array(1);

  constructor(arena: Arena, index: number, keg: Keg, cpu: number, host: ZoneHost) {
    this.arena = arena;
    this.index = index;
    this.keg = keg;
    this.cpu = cpu;
    this.host = host;
    this.i32 = arena.i32;
    this.f64 = arena.f64;
    this.u8 = arena.u8;
    this.owner = new Uint8Array(arena.sab, arena.ownerMap, arena.size >>> OWNER_SHIFT);
    this.rec = (arena.zoneTable + index * ZONE_BYTES) >> 2;
    this.lock = new Mutex(this.i32, this.rec + Z_LOCK, 'UMA zone');
    this.name = arena.readString((this.rec + Z_NAME) * 4, Z_NAME_BYTES);
    this.secondary = this.i32[this.rec + Z_SECONDARY] !== 0;
    const slot = arena.statSlot(index, cpu);
    this.stat = slot >> 3;
    this.drainIdx = (slot >> 2) + ST_DRAIN_WORD;
    this.cCnt = (slot >> 2) + ST_CUR_CNT_WORD;
    this.cBase = (slot >> 2) + ST_CUR_BASE_WORD;
    this.gate = (slot >> 2) + ST_FREE_GATE_WORD;
    this.xCnt = (slot >> 2) + ST_X_CNT_WORD;
    this.xBase = (slot >> 2) + ST_X_BASE_WORD;
    this.xGate = (slot >> 2) + ST_XFREE_GATE_WORD;
    this.ownerWord = arena.ownerMap >> 2;
    this.limit = arena.size;
    this.drainSeen = Atomics.load(this.i32, this.drainIdx);
    this.cpuTag = cpu + 1;
    this.plain = !arena.debug;
    this.fastTag = arena.debug || !LITTLE_ENDIAN ? -1 : this.cpuTag;
    this.nobucket = (this.i32[this.rec + Z_FLAGS] & UMA_ZONE_NOBUCKET) !== 0;
  }

  /** Fill a fresh zone record (creator thread, under the zones lock). */
  static format(arena: Arena, index: number, name: string, kegIndex: number, size: number, flags: number, bucketSize: number, callbacks: number, secondary: boolean): void {
    const r = (arena.zoneTable + index * ZONE_BYTES) >> 2;
    const i32 = arena.i32;
    i32.fill(0, r, r + (ZONE_BYTES >> 2));
    i32[r + Z_FLAGS] = flags;
    i32[r + Z_KEG] = kegIndex;
    i32[r + Z_SIZE] = size;
    i32[r + Z_BUCKET_SIZE] = (flags & UMA_ZONE_NOBUCKET) !== 0 ? 0 : bucketSize;
    i32[r + Z_BUCKET_INIT] = i32[r + Z_BUCKET_SIZE];
    i32[r + Z_BUCKET_MAX] = (flags & UMA_ZONE_NOBUCKET) !== 0 ? 0 : BUCKET_MAX;
    i32[r + Z_CALLBACKS] = callbacks;
    i32[r + Z_SECONDARY] = secondary ? 1 : 0;
    i32[r + Z_ALIVE] = 1;
    arena.writeString((r + Z_NAME) * 4, Z_NAME_BYTES, name);
    arena.writeString((r + Z_WARNING) * 4, Z_WARNING_BYTES, 'limit reached');
    for (let cpu = 0; cpu < arena.ncpusMax; cpu++) {
      const slot = arena.statSlot(index, cpu);
      i32.fill(0, slot >> 2, (slot + 128) >> 2);
    }
  }

  // ------------------------------------------------------------------
  // Fast paths
  // ------------------------------------------------------------------

  /**
   * uma_zalloc_arg: allocate one item. Returns its handle, or 0 when M_NOWAIT
   * (the default) cannot be satisfied. M_WAITOK sleeps and never returns 0.
   * Fast path: pop from this CPU's current bucket; no lock, no atomic. The
   * item's owner tag was set when it entered this CPU's cache (claimCur, or
   * the free that put it there); the count is a field of this object. Drain requests are not looked at here: the
   * free gate, the next bucket exchange or poll() honours them. Debug mode
   * takes the slow path for every item.
   */
  alloc(flags: number = M_NOWAIT, arg = 0): number {
    const i32 = this.i32;
    const c = this.cCnt;
    const n = i32[c];
    if (n > 0 && this.plain) {
      const item = i32[this.curEntries + n - 1];
      i32[c] = n - 1;
      this.pendingAllocs++;
      if ((flags & M_ZERO) !== 0 || this.ctor !== null) return this.finishAlloc(item, flags, arg);
      return item;
    }
    return this.allocSlow(flags, arg);
  }

  /**
   * uma_zfree_arg: free one item (0 is ignored, as free(NULL)). Fast path: an
   * item this CPU allocated (its owner byte holds this CPU's tag, read as a
   * byte of an Int32 word of the owner map) is pushed onto this CPU's current
   * bucket while its count is below the free gate (room, no drain request, no
   * sleeper). Any other item goes to freeOther: another CPU's item to the
   * cross-free bucket, anything else to the checked path. Outside debug mode
   * the tag is read, not cleared; debug mode checks every free (fastTag -1).
   */
  free(item: number, arg = 0): void {
    const i32 = this.i32;
    const tag = (i32[this.ownerWord + (item >>> OWNER_WORD_SHIFT)] >>> ((item >>> OWNER_BYTE_SHIFT) & 24)) & 255;
    if (tag !== this.fastTag || (item & 15) !== 0 || item >= this.limit) {
      this.freeOther(item, arg, tag);
      return;
    }
    if (this.dtor !== null) this.dtor(item, arg);
    const c = this.cCnt;
    const n = i32[c];
    if (n < i32[this.gate]) {
      i32[this.curEntries + n] = item;
      i32[c] = n + 1;
      return;
    }
    this.freeSlow(item);
  }

  /**
   * A free that is not a plain own free (`laneTag`: the owner byte as free()
   * read it): outside debug mode, an item another CPU allocated (a valid
   * tag, aligned, inside the arena) goes to the
   * cross-free bucket unchecked; everything else (debug mode, no tag, a bad
   * handle) to freeChecked. No lock on the way to the bucket.
   */
  private freeOther(item: number, arg: number, laneTag: number): void {
    // The lane read is a tag only on little-endian machines (else fastTag is -1).
    const tag = LITTLE_ENDIAN ? laneTag : this.owner[item >>> OWNER_SHIFT];
    if (!(tag > 0) || (item & 15) !== 0 || item >= this.limit || !this.plain) {
      this.freeChecked(item, arg);
      return;
    }
    if (this.dtor !== null) this.dtor(item, arg);
    if (tag !== this.crossTag && this.crossTag !== 0) this.noteCrossTag(tag);
    this.pushCross(item);
  }

  /**
   * The cross-free bucket's owner tag: the first item's, then 0 (mixed) at
   * the first item of another CPU. A bucket whose items all carry one tag
   * goes back to that CPU without a claim pass (takeFullBucket).
   */
  private noteCrossTag(tag: number): void {
    this.crossTag = this.crossTag === -1 ? tag : 0;
  }

  /**
   * Push a freed foreign item onto the cross-free bucket while its count is
   * below its gate (plain stores: the count word is the statistic), else
   * take freeCrossSlow. Thread-local; no lock.
   */
  private pushCross(item: number): void {
    const i32 = this.i32;
    const n = i32[this.xCnt];
    if (n < i32[this.xGate]) {
      i32[this.crossEntries + n] = item;
      i32[this.xCnt] = n + 1;
      return;
    }
    this.freeCrossSlow(item);
  }

  // ------------------------------------------------------------------
  // The per-CPU counts (arena words; see ST_CUR_CNT_WORD)
  // ------------------------------------------------------------------

  /** Entries in the current bucket. */
  private get curCnt(): number {
    return this.i32[this.cCnt];
  }
  /** A slow-path change: fold the fast paths' counts, then move count and base together. */
  private set curCnt(n: number) {
    this.foldPending();
    this.i32[this.cCnt] = n;
    this.i32[this.cBase] = n;
  }

  /** Entries in the cross-free bucket. */
  private get crossCnt(): number {
    return this.i32[this.xCnt];
  }
  /** A slow-path change: fold, then move count and base together. */
  private set crossCnt(n: number) {
    this.foldPending();
    this.i32[this.xCnt] = n;
    this.i32[this.xBase] = n;
  }

  /**
   * Fold the fast paths' counts into the Float64 totals (the bucket counts
   * stay): pending allocations, the current bucket's net frees and the
   * cross-free bucket's frees (which are XDOMAIN frees as well). This CPU only.
   */
  private foldPending(): void {
    const i32 = this.i32;
    const allocs = this.pendingAllocs;
    const net = i32[this.cCnt] - i32[this.cBase];
    const cross = i32[this.xCnt] - i32[this.xBase];
    if (allocs === 0 && net === 0 && cross === 0) return;
    const st = this.stat;
    this.f64[st + ST_ALLOCS] += allocs;
    this.f64[st + ST_FREES] += net + allocs + cross;
    this.f64[st + ST_XDOMAIN] += cross;
    this.pendingAllocs = 0;
    i32[this.cBase] = i32[this.cCnt];
    i32[this.xBase] = i32[this.xCnt];
  }

  /**
   * Make this CPU's counters exact in the arena (zoneStats calls it for the
   * reading thread's own CPU; other CPUs fold at their slow paths and polls).
   */
  foldStats(): void {
    this.foldPending();
  }

  /**
   * Open the free gates to the current and cross-free buckets' capacities, unless a drain
   * request or a sleeper is pending. Store, then load (seq-cst): a requester
   * stores its request, then 0 into the gate, so either we see the request
   * here or its 0 lands after our store. Owner CPU only; no lock.
   */
  private armFree(): void {
    const i32 = this.i32;
    // A gate already open at the capacity needs no store (a seq-cst store is
    // the slow path's dearest instruction): a request made since then has
    // shut it, and we do not overwrite that.
    if (i32[this.gate] !== this.curCap) Atomics.store(i32, this.gate, this.curCap);
    if (i32[this.xGate] !== this.crossCap) Atomics.store(i32, this.xGate, this.crossCap);
    if (Atomics.load(i32, this.drainIdx) !== this.drainSeen || Atomics.load(i32, this.rec + Z_SLEEPERS) > 0) {
      Atomics.store(i32, this.gate, 0);
      Atomics.store(i32, this.xGate, 0);
    }
  }

  // ------------------------------------------------------------------
  // Slow paths
  // ------------------------------------------------------------------

  /** Everything the fast path does not: checks, bucket exchange, keg, sleeping. */
  private allocSlow(flags: number, arg: number): number {
    this.foldPending();
    this.inSlow++;
    try {
      return this.allocSlowLocked(flags, arg);
    } finally {
      this.inSlow--;
    }
  }

  /** allocSlow's body: this CPU's cache is being worked on (inSlow > 0). */
  private allocSlowLocked(flags: number, arg: number): number {
    this.checkFlags(flags);
    if ((flags & M_WAITOK) !== 0 && witness.enabled) witness.checkSleepable(`M_WAITOK allocation from zone "${this.name}"`);
    if (this.i32[this.drainIdx] !== this.drainSeen) this.honourDrain();
    for (;;) {
      const item = this.allocFromCache(flags);
      if (item !== 0) {
        this.f64[this.stat + ST_ALLOCS]++;
        this.owner[item >>> OWNER_SHIFT] = this.cpuTag;
        return this.finishAlloc(item, flags, arg);
      }
      if ((flags & M_WAITOK) === 0) {
        this.f64[this.stat + ST_FAILS]++;
        if (this.failReason === FAIL_LIMIT) this.limitReached();
        return 0;
      }
      const got = this.failReason === FAIL_LIMIT ? this.sleepAtLimit(flags) : this.sleepForMemory();
      if (got !== 0) {
        this.f64[this.stat + ST_ALLOCS]++;
        this.owner[got >>> OWNER_SHIFT] = this.cpuTag;
        return this.finishAlloc(got, flags, arg);
      }
    }
  }

  /** One item from the per-CPU buckets, the zone's full list or the keg; 0 and failReason set if none. */
  private allocFromCache(flags: number): number {
    this.failReason = FAIL_NONE;
    for (;;) {
      if (this.curCnt > 0) return this.i32[this.curEntries + --this.curCnt];
      if (this.spareCnt > 0) {
        this.swapBuckets();
        continue;
      }
      // Past this CPU's own cache every item is owed to the sleepers at the limit
      // (the shared full buckets and the room a free makes alike): a newcomer that
      // took one would overtake them, so it queues (WAITOK) or fails (NOWAIT).
      if (this.i32[this.rec + Z_SLEEPERS] > 0 && (flags & M_USE_RESERVE) === 0) {
        this.failReason = FAIL_LIMIT;
        return 0;
      }
      if (this.nobucket || this.i32[this.rec + Z_BUCKET_SIZE] === 0) {
        // Buckets flushed before the size dropped to 0 still count against the limit.
        if (Atomics.load(this.i32, this.rec + Z_FULL_HEAD) !== 0) {
          const item = this.popSharedItem();
          if (item !== 0) return item;
        }
        return this.allocDirect(flags);
      }
      if (this.takeFullBucket()) continue;
      if (this.fillFromKeg(flags & ~M_USE_RESERVE)) continue;
      // No bucket memory, or only the keg's reserve is left for an M_USE_RESERVE
      // caller: one item around the cache, so reserve items never land in a bucket.
      if (this.failReason === FAIL_NONE || (flags & M_USE_RESERVE) !== 0) return this.allocDirect(flags);
      return 0;
    }
  }

  /** Zone init, trash check, M_ZERO and ctor on a freshly taken item. */
  private finishAlloc(item: number, flags: number, arg: number): number {
    if (!this.plain && this.keg.trash) {
      const bad = checkTrash(this.i32, item, this.keg.size);
      if (bad >= 0) {
        // Report, but leave the zone consistent: the item is not counted as handed
        // out and goes back to its slab trashed again.
        this.owner[item >>> OWNER_SHIFT] = 0;
        this.f64[this.stat + ST_ALLOCS]--;
        fillTrash(this.i32, item, this.keg.size);
        this.releaseItem(item);
        throw new MemoryCorruptionError('ERR_SLABNET_USE_AFTER_FREE', `use after free: item 0x${item.toString(16)} of zone "${this.name}" was modified at offset ${bad} while free`);
      }
    }
    if ((flags & M_ZERO) !== 0) this.u8.fill(0, item, item + this.keg.size);
    const ctor = this.ctor;
    if (ctor !== null && !ctor(item, arg, flags)) {
      // A failing ctor hands the item back without running the dtor (item_ctor).
      this.owner[item >>> OWNER_SHIFT] = 0;
      this.f64[this.stat + ST_ALLOCS]--;
      this.f64[this.stat + ST_FAILS]++;
      // The ctor (or M_ZERO) may have written the item: trash it again, or its next
      // allocation would report a use after free that never happened.
      if (!this.plain && this.keg.trash) fillTrash(this.i32, item, this.keg.size);
      this.releaseItem(item);
      return 0;
    }
    return item;
  }

  /** Free with every check: null, alignment, ownership, double free, trash. */
  private freeChecked(item: number, arg: number): void {
    if (item === 0) return;
    if (!Number.isInteger(item) || item <= 0 || item >= this.arena.size || (item & 15) !== 0) {
      throw new ArgumentError(`zone "${this.name}": free of invalid handle ${item}`);
    }
    const o = item >>> OWNER_SHIFT;
    const tag = this.owner[o];
    const slab = this.keg.slabOf(item);
    if (slab <= 0 || this.i32[(slab >> 2)] !== this.keg.index) {
      throw new MemoryCorruptionError('ERR_SLABNET_BAD_FREE', `zone "${this.name}": free of 0x${item.toString(16)}, which is not an item of this zone's keg`);
    }
    this.keg.itemIndex(slab, item);
    if (tag === 0) {
      throw new MemoryCorruptionError('ERR_SLABNET_DOUBLE_FREE', `double free of 0x${item.toString(16)} in zone "${this.name}"`);
    }
    this.owner[o] = 0;
    if (this.dtor !== null) this.dtor(item, arg);
    if (!this.plain && this.keg.trash) fillTrash(this.i32, item, this.keg.size);
    if (tag !== this.cpuTag) {
      this.crossTag = 0; // tags are cleared in debug mode: nothing to spare a claim pass for
      this.pushCross(item); // counted as a free and an XDOMAIN free by its bucket
      return;
    }
    const n = this.curCnt;
    if (n < this.i32[this.gate]) {
      this.i32[this.curEntries + n] = item;
      this.curCnt = n + 1;
      this.f64[this.stat + ST_FREES]++;
      return;
    }
    this.freeSlow(item);
  }

  /** The current bucket is full (or absent), a drain is requested, or sleepers wait. */
  private freeSlow(item: number): void {
    this.foldPending();
    this.inSlow++;
    try {
      this.freeSlowLocked(item);
    } finally {
      this.inSlow--;
    }
  }

  /** freeSlow's body: this CPU's cache is being worked on (inSlow > 0). May take the zone lock. */
  private freeSlowLocked(item: number): void {
    this.f64[this.stat + ST_FREES]++;
    if (this.i32[this.drainIdx] !== this.drainSeen) this.honourDrain();
    if (Atomics.load(this.i32, this.rec + Z_SLEEPERS) > 0 || this.nobucket || this.i32[this.rec + Z_BUCKET_SIZE] === 0) {
      this.releaseItem(item);
      // Reopen the gate if the sleepers have gone (armFree keeps it shut while they wait).
      if (this.curB !== 0) this.armFree();
      return;
    }
    for (;;) {
      if (this.curB !== 0 && this.curCnt < this.curCap) {
        this.i32[this.curEntries + this.curCnt++] = item;
        return;
      }
      if (this.spareB !== 0 && (this.curB === 0 || this.spareCnt === 0)) {
        this.swapBuckets(); // an empty spare takes the next frees
        continue;
      }
      // The current bucket is full and the spare (if any) too: the spare goes to
      // the zone's list (an empty bucket coming back in the same lock hold),
      // the full current bucket becomes the spare.
      const empty = this.spareB !== 0 ? this.pushSpare(true) : 0;
      if (this.curB !== 0) {
        this.installSpare(this.curB, this.curCnt);
        this.installCur(0, 0);
      }
      const b = empty !== 0 ? empty : this.host.allocBucket();
      if (b === 0) {
        this.releaseItem(item);
        return;
      }
      this.installCur(b, 0);
    }
  }

  /**
   * The cross-free bucket is full (or absent), a drain is requested, or
   * sleepers wait (zone_free_cross). Hands a full cross-free bucket whole to
   * the zone's shared list (one zone lock) and starts an empty one. Without
   * buckets, or while sleepers wait at the limit, the item goes to the keg.
   */
  private freeCrossSlow(item: number): void {
    this.foldPending();
    this.inSlow++;
    try {
      this.freeCrossSlowLocked(item);
    } finally {
      this.inSlow--;
    }
  }

  /** freeCrossSlow's body (inSlow > 0). May take the zone lock. */
  private freeCrossSlowLocked(item: number): void {
    if (this.i32[this.drainIdx] !== this.drainSeen) this.honourDrain();
    if (Atomics.load(this.i32, this.rec + Z_SLEEPERS) > 0 || this.nobucket || this.i32[this.rec + Z_BUCKET_SIZE] === 0) {
      this.f64[this.stat + ST_FREES]++;
      this.f64[this.stat + ST_XDOMAIN]++;
      this.releaseItem(item);
      this.armFree(); // reopen the gates once the sleepers have gone
      return;
    }
    if (this.crossB !== 0 && this.crossCnt >= this.crossCap) {
      const empty = this.pushCross0(true);
      if (empty !== 0) this.installCross(empty, 0);
    }
    if (this.crossB === 0) {
      const b = this.host.allocBucket();
      if (b === 0) {
        this.f64[this.stat + ST_FREES]++;
        this.f64[this.stat + ST_XDOMAIN]++;
        this.releaseItem(item);
        return;
      }
      this.installCross(b, 0);
    }
    const n = this.crossCnt;
    this.i32[this.crossEntries + n] = item;
    this.i32[this.xCnt] = n + 1; // counted by the next fold, like a fast-path push
  }

  // ------------------------------------------------------------------
  // Bucket movement (zone lock where the shared list is touched)
  // ------------------------------------------------------------------

  /** Exchange the current bucket and the spare. */
  private swapBuckets(): void {
    const b = this.curB;
    const c = this.curCnt;
    this.installCur(this.spareB, this.spareCnt);
    this.installSpare(b, c);
  }

  /**
   * Outside debug mode, tag every item of a bucket that just entered this CPU's
   * cache from outside (the zone's list, the keg) with this CPU, once per
   * bucket instead of once per allocation: whatever the fast path pops is
   * allocated by this CPU. Debug mode tags per item.
   */
  private claimCur(): void {
    if (!this.plain) return;
    const i32 = this.i32;
    const owner = this.owner;
    const tag = this.cpuTag;
    const e = this.curEntries;
    for (let k = this.curCnt - 1; k >= 0; k--) owner[i32[e + k] >>> OWNER_SHIFT] = tag;
  }

  private installCur(b: number, count: number): void {
    this.curB = b;
    this.curCnt = count;
    this.curEntries = (b >> 2) + B_ENTRIES;
    this.curCap = b === 0 ? 0 : Math.max(1, Math.min(BUCKET_MAX, this.i32[this.rec + Z_BUCKET_SIZE]));
    this.armFree();
  }

  private installCross(b: number, count: number): void {
    this.crossB = b;
    this.crossCnt = count;
    this.crossTag = -1;
    this.crossEntries = (b >> 2) + B_ENTRIES;
    this.crossCap = b === 0 ? 0 : Math.max(1, Math.min(BUCKET_MAX, this.i32[this.rec + Z_BUCKET_SIZE]));
    this.armFree();
  }

  private installSpare(b: number, count: number): void {
    this.spareB = b;
    this.spareCnt = count;
    this.spareEntries = (b >> 2) + B_ENTRIES;
  }

  private lockZone(): void {
    this.lock.lock();
    // Contention grows the bucket size, so each CPU visits the lock less often.
    if (this.lock.contended !== this.lastContended) {
      this.lastContended = this.lock.contended;
      const r = this.rec;
      if (this.i32[r + Z_BUCKET_SIZE] > 0 && this.i32[r + Z_BUCKET_SIZE] < this.i32[r + Z_BUCKET_MAX]) this.i32[r + Z_BUCKET_SIZE]++;
    }
  }

  /**
   * Exchange our empty current bucket for a full one from the zone's list
   * (the spare is empty or absent here: allocFromCache tried it first).
   */
  private takeFullBucket(): boolean {
    const i32 = this.i32;
    const r = this.rec;
    if (Atomics.load(i32, r + Z_FULL_HEAD) === 0) return false;
    // Our empty current bucket is left on the zone's empty list in the same
    // lock hold when the spare slot is taken (else it becomes the spare).
    let give = this.spareB !== 0 ? this.curB : 0;
    this.lockZone();
    const full = i32[r + Z_FULL_HEAD];
    if (full !== 0) {
      i32[r + Z_FULL_HEAD] = i32[(full >> 2) + B_NEXT];
      const count = --i32[r + Z_FULL_COUNT];
      if (count < i32[r + Z_FULL_MIN]) i32[r + Z_FULL_MIN] = count;
      if (give !== 0 && i32[r + Z_EMPTY_COUNT] < EMPTY_PER_CPU * this.arena.ncpusRegistered) {
        i32[(give >> 2) + B_NEXT] = i32[r + Z_EMPTY_HEAD];
        i32[r + Z_EMPTY_HEAD] = give;
        i32[r + Z_EMPTY_COUNT]++;
        give = -1; // given
      }
    }
    this.lock.unlock();
    if (full === 0) return false;
    const empty = give === -1 ? 0 : this.curB;
    this.installCur(full, i32[(full >> 2) + B_COUNT]);
    // A cross-free bucket of our own items (a consumer CPU handing back what we
    // allocated) needs no claim pass: every item already carries our tag.
    if (i32[(full >> 2) + B_TAG] !== this.cpuTag) this.claimCur();
    if (empty !== 0) {
      if (this.spareB === 0) this.installSpare(empty, 0);
      else this.host.freeBucket(empty);
    }
    return true;
  }

  /** Put the spare on the zone's list (an empty one is freed); `wantEmpty` as for pushCross0. Zone lock. */
  private pushSpare(wantEmpty = false): number {
    const b = this.spareB;
    const n = this.spareCnt;
    this.installSpare(0, 0);
    return this.pushFull(b, n, this.plain ? this.cpuTag : 0, wantEmpty); // own items carry our tag outside debug mode
  }

  /**
   * Put the cross-free bucket on the zone's list (an empty one is freed):
   * its items keep their allocating CPUs' tags until a CPU takes the bucket
   * and claims them. With `wantEmpty`, returns an empty bucket from the
   * zone's list taken in the same lock hold (0: none). Zone lock.
   */
  private pushCross0(wantEmpty = false): number {
    const b = this.crossB;
    const n = this.crossCnt;
    const tag = this.crossTag;
    this.installCross(0, 0);
    return this.pushFull(b, n, tag, wantEmpty);
  }

  /**
   * Put bucket b holding n items on the zone's full list (n = 0: free it),
   * noting `tag`, the owner tag all its items carry (0: mixed or unknown).
   * With `wantEmpty`, also takes an empty bucket off the zone's empty list in
   * the same lock hold and returns it (0: none, or not wanted). Zone lock.
   */
  private pushFull(b: number, n: number, tag: number, wantEmpty: boolean): number {
    if (n === 0) {
      if (wantEmpty) return b; // an empty bucket wanted, and this one is empty
      this.host.freeBucket(b);
      return 0;
    }
    const i32 = this.i32;
    const r = this.rec;
    i32[(b >> 2) + B_COUNT] = n;
    i32[(b >> 2) + B_TAG] = tag;
    let empty = 0;
    this.lockZone();
    i32[(b >> 2) + B_NEXT] = i32[r + Z_FULL_HEAD];
    Atomics.store(i32, r + Z_FULL_HEAD, b);
    i32[r + Z_FULL_COUNT]++;
    if (wantEmpty && i32[r + Z_EMPTY_HEAD] !== 0) {
      empty = i32[r + Z_EMPTY_HEAD];
      i32[r + Z_EMPTY_HEAD] = i32[(empty >> 2) + B_NEXT];
      i32[r + Z_EMPTY_COUNT]--;
    }
    this.lock.unlock();
    // A flush answering a sleeper's drain request: tell the sleepers there is stock.
    if (Atomics.load(i32, r + Z_SLEEPERS) > 0) this.wakeSleepers();
    return empty;
  }

  /** Fill the empty current bucket from the keg (zone_import). */
  private fillFromKeg(flags: number): boolean {
    if (this.curB === 0) {
      const b = this.host.allocBucket();
      if (b === 0) return false;
      this.installCur(b, 0);
    }
    const want = Math.max(1, Math.min(BUCKET_MAX, this.i32[this.rec + Z_BUCKET_SIZE]));
    const got = this.importItems(this.curEntries, want, flags);
    this.curCnt = got;
    this.claimCur();
    return got > 0;
  }

  /** No cache: one item straight from the keg (zone_alloc_item). */
  private allocDirect(flags: number): number {
    const got = this.importItems(0, 1, flags, this.one);
    return got === 1 ? this.one[0] : 0;
  }

  /**
   * Take up to `want` items from the keg into dest[idx..], charging them to the
   * zone's item count under its limit and running the zone's init on each.
   * Sets failReason when none could be had.
   */
  private importItems(idx: number, want: number, flags: number, dest: Int32Array = this.i32): number {
    const i32 = this.i32;
    const r = this.rec;
    let take = want;
    for (;;) {
      const cur = Atomics.load(i32, r + Z_ITEMS);
      const max = Atomics.load(i32, r + Z_MAX_ITEMS);
      if (max > 0) take = Math.min(want, max - cur);
      if (take <= 0) {
        this.failReason = FAIL_LIMIT;
        return 0;
      }
      if (Atomics.compareExchange(i32, r + Z_ITEMS, cur, cur + take) === cur) break;
    }
    let got = this.keg.fetch(dest, idx, take, (flags & M_USE_RESERVE) !== 0, (flags & M_NOVM) !== 0);
    const zinit = this.zinit;
    if (zinit !== null) {
      let kept = 0;
      for (let k = 0; k < got; k++) {
        const item = dest[idx + k];
        if (zinit(item, flags)) dest[idx + kept++] = item;
        else this.keg.releaseOne(item);
      }
      got = kept;
    }
    if (got < take) this.uncharge(take - got);
    if (got === 0) this.failReason = FAIL_NOMEM;
    return got;
  }

  /** Items leave the zone: drop them from Z_ITEMS and wake sleepers at the limit. */
  private uncharge(n: number): void {
    const i32 = this.i32;
    const r = this.rec;
    Atomics.sub(i32, r + Z_ITEMS, n);
    if (Atomics.load(i32, r + Z_SLEEPERS) > 0) this.wakeSleepers();
  }

  private wakeSleepers(): void {
    Atomics.add(this.i32, this.rec + Z_WAKE_SEQ, 1);
    Atomics.notify(this.i32, this.rec + Z_WAKE_SEQ);
  }

  /** Give one item back to the keg (zone_release): zone fini, then the slab. */
  private releaseItem(item: number): void {
    if (this.zfini !== null) this.zfini(item);
    this.keg.releaseOne(item);
    this.uncharge(1);
  }

  /** Give a whole bucket's items back to the keg and free the bucket. */
  private releaseBucket(b: number, count: number): void {
    const idx = (b >> 2) + B_ENTRIES;
    const zfini = this.zfini;
    if (zfini !== null) for (let k = 0; k < count; k++) zfini(this.i32[idx + k]);
    this.keg.release(this.i32, idx, count);
    this.host.freeBucket(b);
    if (count > 0) this.uncharge(count);
  }

  // ------------------------------------------------------------------
  // Sleeping (M_WAITOK)
  // ------------------------------------------------------------------

  /**
   * Wait in FIFO order for an item at the zone limit. The first ticket is served
   * first: it takes a cached full bucket or imports one item when a free or a
   * raised limit makes room. Other CPUs are asked to flush their caches.
   */
  private sleepAtLimit(flags: number): number {
    const r = this.rec;
    const ticket = this.joinSleepQueue();
    let item = 0;
    try {
      for (;;) {
        const seq = Atomics.load(this.i32, r + Z_WAKE_SEQ);
        item = this.sleeperTurn(ticket, flags);
        if (item !== 0) return item;
        Atomics.wait(this.i32, r + Z_WAKE_SEQ, seq, 50);
      }
    } finally {
      this.leaveSleepQueue(ticket, item !== 0);
    }
  }

  /** Async twin of sleepAtLimit for the main thread's event loop. */
  private async sleepAtLimitAsync(flags: number): Promise<number> {
    const r = this.rec;
    const ticket = this.joinSleepQueue();
    let item = 0;
    try {
      for (;;) {
        const seq = Atomics.load(this.i32, r + Z_WAKE_SEQ);
        item = this.sleeperTurn(ticket, flags);
        if (item !== 0) return item;
        const w = Atomics.waitAsync(this.i32, r + Z_WAKE_SEQ, seq, 50);
        if (w.async) await keepAlive(w.value, 50);
      }
    } finally {
      this.leaveSleepQueue(ticket, item !== 0);
    }
  }

  /**
   * Take a FIFO ticket at the limit: count the sleep, warn, run the max
   * action and ask the other CPUs to flush their caches. Returns the ticket.
   */
  private joinSleepQueue(): number {
    const i32 = this.i32;
    const r = this.rec;
    const ticket = Atomics.add(i32, r + Z_SLEEP_TAIL, 1);
    Atomics.add(i32, r + Z_SLEEPERS, 1);
    this.f64[this.stat + ST_SLEEPS]++;
    this.limitReached();
    // Every CPU's frees must reach the keg while we wait: shut every free gate
    // (this CPU's too, which an async sleeper's thread keeps using).
    this.requestDrainOthers();
    Atomics.store(i32, this.gate, 0);
    Atomics.store(i32, this.xGate, 0);
    return ticket;
  }

  /** An item if `ticket` is at the head of the queue and one can be had, else 0. */
  private sleeperTurn(ticket: number, flags: number): number {
    if (Atomics.load(this.i32, this.rec + Z_SLEEP_HEAD) !== ticket) return 0;
    return this.takeForSleeper(flags);
  }

  /** Leave the queue; the head (served, or giving up by an exception) passes the turn on. */
  private leaveSleepQueue(ticket: number, served: boolean): void {
    const i32 = this.i32;
    const r = this.rec;
    Atomics.sub(i32, r + Z_SLEEPERS, 1);
    if (served || Atomics.load(i32, r + Z_SLEEP_HEAD) === ticket) Atomics.add(i32, r + Z_SLEEP_HEAD, 1);
    this.wakeSleepers();
  }

  /**
   * What the head sleeper may take: its own cache (cross-free bucket included), then ONE item from a shared
   * full bucket (the rest stays there for the next sleeper, which may run on
   * another CPU), then room under the limit. Takes the zone lock; no sleep.
   */
  private takeForSleeper(flags: number): number {
    if (this.curCnt > 0) return this.i32[this.curEntries + --this.curCnt];
    if (this.spareCnt > 0) return this.i32[this.spareEntries + --this.spareCnt];
    if (this.crossCnt > 0) return this.i32[this.crossEntries + --this.crossCnt];
    if (Atomics.load(this.i32, this.rec + Z_FULL_HEAD) !== 0) {
      const item = this.popSharedItem();
      if (item !== 0) return item;
    }
    const got = this.importItems(0, 1, flags & ~M_USE_RESERVE, this.one);
    return got === 1 ? this.one[0] : 0;
  }

  /** One item off the first shared full bucket; an emptied bucket is freed. Zone lock. */
  private popSharedItem(): number {
    const i32 = this.i32;
    const r = this.rec;
    let item = 0;
    let emptied = 0;
    this.lockZone();
    const b = i32[r + Z_FULL_HEAD];
    if (b !== 0) {
      const n = --i32[(b >> 2) + B_COUNT];
      item = i32[(b >> 2) + B_ENTRIES + n];
      if (n === 0) {
        i32[r + Z_FULL_HEAD] = i32[(b >> 2) + B_NEXT];
        const count = --i32[r + Z_FULL_COUNT];
        if (count < i32[r + Z_FULL_MIN]) i32[r + Z_FULL_MIN] = count;
        emptied = b;
      }
    }
    this.lock.unlock();
    if (emptied !== 0) this.host.freeBucket(emptied);
    return item;
  }

  /** No pages: let the page allocator reclaim and wait for a free (vm_wait). */
  private sleepForMemory(): number {
    this.f64[this.stat + ST_SLEEPS]++;
    this.keg.pages.waitForPages(20);
    return 0;
  }

  /**
   * Allocate from the main thread without blocking its event loop: M_NOWAIT
   * first, then wait with Atomics.waitAsync (which keeps the process alive).
   */
  async allocAsync(flags: number = M_WAITOK, arg = 0): Promise<number> {
    const nowait = (flags & ~M_WAITOK) | M_NOWAIT;
    for (;;) {
      const item = this.alloc(nowait, arg);
      if (item !== 0) return item;
      this.f64[this.stat + ST_FAILS]--; // the NOWAIT probe is not a failure of this request
      // No limit and no memory shortage: the ctor refused. That is final, as for
      // a synchronous M_WAITOK allocation; waiting would only retry it forever.
      if ((flags & M_WAITOK) === 0 || this.failReason === FAIL_NONE) {
        this.f64[this.stat + ST_FAILS]++;
        return 0;
      }
      let got = 0;
      if (this.failReason === FAIL_LIMIT) got = await this.sleepAtLimitAsync(flags);
      else {
        this.f64[this.stat + ST_SLEEPS]++;
        await this.keg.pages.waitForPagesAsync(20);
      }
      if (got !== 0) {
        this.f64[this.stat + ST_ALLOCS]++;
        this.owner[got >>> OWNER_SHIFT] = this.cpuTag;
        const item2 = this.finishAlloc(got, flags, arg);
        if (item2 !== 0) return item2;
      }
    }
  }

  /** Warning (rate-limited across all CPUs by the shared timestamp) and max action. */
  private limitReached(): void {
    const i32 = this.i32;
    const r = this.rec;
    Atomics.add(i32, r + Z_LIMIT_HITS, 1);
    const now = Math.floor(Date.now() / 1000);
    const last = Atomics.load(i32, r + Z_WARN_LAST);
    if (Atomics.load(i32, H_ZONE_WARNINGS) !== 0 && (last === 0 || now - last >= WARN_INTERVAL_S)) {
      if (Atomics.compareExchange(i32, r + Z_WARN_LAST, last, now) === last) {
        this.host.warn(`[zone: ${this.name}] ${this.warning}`);
      }
    }
    if (this.maxAction !== null) this.maxAction(this);
  }

  // ------------------------------------------------------------------
  // Drain, trim, limits, reserve
  // ------------------------------------------------------------------

  /**
   * Flush this CPU's cache to the zone's list (a drain request, or before a zone
   * drain). Deferred to the next operation when called from inside this zone's
   * own slow path. Zone lock; no sleep.
   */
  flushCpuCache(): void {
    if (this.inSlow > 0) {
      // Reentered from our own slow path (a page shortage there ran uma_reclaim):
      // the bucket being filled or emptied must stay put, so flush at the next op.
      this.requestCpuDrain(this.cpu);
      return;
    }
    this.flushNow();
  }

  /**
   * Move this CPU's buckets (current, spare, cross-free) to the zone's shared
   * list (items stay charged to the zone) and mark every drain request so far
   * as honoured. Zone lock; no sleep.
   */
  private flushNow(): void {
    this.drainSeen = Atomics.load(this.i32, this.drainIdx);
    if (this.crossB !== 0) this.pushCross0();
    if (this.spareB !== 0) this.pushSpare();
    if (this.curB !== 0) {
      const b = this.curB;
      const n = this.curCnt;
      this.installCur(0, 0);
      this.installSpare(b, n);
      this.pushSpare();
    }
    this.armFree();
  }

  private honourDrain(): void {
    this.flushNow();
  }

  /** Ask every other CPU to flush its cache of this zone at its next operation or when idle. */
  requestDrainOthers(): void {
    for (let cpu = 0; cpu < this.arena.ncpusRegistered; cpu++) {
      if (cpu !== this.cpu) this.requestCpuDrain(cpu);
    }
  }

  /**
   * Ask one CPU to flush its cache of this zone: bump its drain word, then
   * shut its free gates so that its next free takes a slow path (see armFree).
   */
  requestCpuDrain(cpu: number): void {
    const slot = this.arena.statSlot(this.index, cpu) >> 2;
    Atomics.add(this.i32, slot + ST_DRAIN_WORD, 1);
    Atomics.store(this.i32, slot + ST_FREE_GATE_WORD, 0);
    Atomics.store(this.i32, slot + ST_XFREE_GATE_WORD, 0);
  }

  /** Honour a pending drain request now, and fold the statistics (the idle loop of a CPU calls this). */
  poll(): void {
    this.foldPending(); // readers on other CPUs see this CPU's requests up to now
    if (this.i32[this.drainIdx] !== this.drainSeen) this.honourDrain();
  }

  /**
   * zone_drain: flush this CPU's cache, hand every bucket on the shared list
   * back to the keg, then free the keg's empty slabs. Other CPUs' caches are
   * flushed by request. Takes the zone lock, then keg locks; does not sleep.
   */
  drain(): void {
    this.flushCpuCache();
    this.requestDrainOthers();
    this.releaseFullBuckets(Infinity);
    this.releaseEmptyBuckets();
    this.keg.drain();
  }

  /**
   * Trim to the working set: release the full buckets that were not touched
   * since the last trim (the minimum list length seen since then).
   */
  trim(): void {
    const i32 = this.i32;
    const r = this.rec;
    this.lockZone();
    const idle = i32[r + Z_FULL_MIN];
    this.lock.unlock();
    if (idle > 0) this.releaseFullBuckets(idle);
    this.lockZone();
    i32[r + Z_FULL_MIN] = i32[r + Z_FULL_COUNT];
    this.lock.unlock();
    this.releaseEmptyBuckets();
    this.keg.drain();
  }

  /** Give the zone's empty buckets back (to this thread's stash, then the bucket zone). Zone lock. */
  private releaseEmptyBuckets(): void {
    const i32 = this.i32;
    const r = this.rec;
    if (i32[r + Z_EMPTY_HEAD] === 0) return;
    this.lockZone();
    let b = i32[r + Z_EMPTY_HEAD];
    i32[r + Z_EMPTY_HEAD] = 0;
    i32[r + Z_EMPTY_COUNT] = 0;
    this.lock.unlock();
    while (b !== 0) {
      const next = i32[(b >> 2) + B_NEXT];
      this.host.freeBucket(b);
      b = next;
    }
  }

  private releaseFullBuckets(limit: number): void {
    const i32 = this.i32;
    const r = this.rec;
    const taken: number[] = [];
    this.lockZone();
    while (taken.length < limit && i32[r + Z_FULL_HEAD] !== 0) {
      const b = i32[r + Z_FULL_HEAD];
      i32[r + Z_FULL_HEAD] = i32[(b >> 2) + B_NEXT];
      i32[r + Z_FULL_COUNT]--;
      taken.push(b);
    }
    if (i32[r + Z_FULL_MIN] > i32[r + Z_FULL_COUNT]) i32[r + Z_FULL_MIN] = i32[r + Z_FULL_COUNT];
    this.lock.unlock();
    for (const b of taken) this.releaseBucket(b, i32[(b >> 2) + B_COUNT]);
  }

  /**
   * uma_zone_set_max: limit the items the zone may hold (0 = unlimited). Takes
   * effect at once on every CPU; raising it wakes sleepers. Small limits shrink
   * the per-CPU buckets so that caches cannot hold the whole limit.
   */
  setMaxItems(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new ArgumentError(`zone "${this.name}": limit must be an integer >= 0, got ${n}`);
    const i32 = this.i32;
    const r = this.rec;
    this.lockZone();
    const before = i32[r + Z_BUCKET_SIZE];
    Atomics.store(i32, r + Z_MAX_ITEMS, n);
    if (!this.nobucket) {
      const init = i32[r + Z_BUCKET_INIT];
      let size = init;
      if (n > 0) size = Math.min(init, Math.floor(n / (4 * this.arena.ncpusMax)));
      i32[r + Z_BUCKET_SIZE] = size;
      i32[r + Z_BUCKET_MAX] = n > 0 ? Math.max(size, Math.min(BUCKET_MAX, Math.floor(n / (2 * this.arena.ncpusMax)))) : BUCKET_MAX;
    }
    const shrunk = i32[r + Z_BUCKET_SIZE] < before;
    this.lock.unlock();
    if (shrunk) {
      // Buckets sized for the old limit could hide the whole new one in caches:
      // every CPU flushes (this one now, the others at their next operation).
      this.flushCpuCache();
      this.requestDrainOthers();
    }
    this.wakeSleepers();
  }

  getMaxItems(): number {
    return Atomics.load(this.i32, this.rec + Z_MAX_ITEMS);
  }

  /** Items the zone holds from its keg (in use plus cached), uz_items. */
  get items(): number {
    return Atomics.load(this.i32, this.rec + Z_ITEMS);
  }

  get sleepers(): number {
    return Atomics.load(this.i32, this.rec + Z_SLEEPERS);
  }

  get bucketSize(): number {
    return this.i32[this.rec + Z_BUCKET_SIZE];
  }
  set bucketSize(n: number) {
    if (!Number.isInteger(n) || n < 0 || n > BUCKET_MAX) throw new ArgumentError(`bucket size must be 0..${BUCKET_MAX}`);
    if (this.nobucket) return;
    Atomics.store(this.i32, this.rec + Z_BUCKET_SIZE, n);
  }
  get bucketMax(): number {
    return this.i32[this.rec + Z_BUCKET_MAX];
  }

  get limitHits(): number {
    return Atomics.load(this.i32, this.rec + Z_LIMIT_HITS);
  }

  /** uma_zone_set_warning: the text after "[zone: NAME] " when the limit is hit. */
  get warning(): string {
    return this.arena.readString((this.rec + Z_WARNING) * 4, Z_WARNING_BYTES);
  }
  set warning(text: string) {
    this.arena.writeString((this.rec + Z_WARNING) * 4, Z_WARNING_BYTES, text);
  }

  /**
   * uma_zone_reserve: keep `n` free items in the keg for M_USE_RESERVE callers.
   * Ordinary allocations take new pages instead of these.
   */
  reserve(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new ArgumentError('reserve must be an integer >= 0');
    this.keg.reserve = n;
  }

  /** uma_prealloc: make slabs now so that `n` items are free in the keg. */
  prealloc(n: number): void {
    const tmp = new Int32Array(Math.max(n, 1));
    const got = this.keg.fetch(tmp, 0, n, true, false);
    this.keg.release(tmp, 0, got);
    if (got < n) throw new ArgumentError(`zone "${this.name}": prealloc of ${n} items got only ${got} (arena full)`);
  }

  /** Is the zone record still alive (not destroyed)? */
  get alive(): boolean {
    return this.i32[this.rec + Z_ALIVE] !== 0;
  }

  /** Mark destroyed after checking nothing is in use; the caller frees the keg. */
  markDestroyed(inUse: number): void {
    if (inUse > 0) throw new ZoneBusyError(this.name, inUse);
    this.i32[this.rec + Z_ALIVE] = 0;
  }

  /** Flags as passed to creation. */
  get flags(): number {
    return this.i32[this.rec + Z_FLAGS];
  }

  /** Callbacks bits the creator registered. */
  get callbackBits(): number {
    return this.i32[this.rec + Z_CALLBACKS];
  }

  /** Float64 index of a CPU's statistics slot for this zone. */
  statIndex(cpu: number): number {
    return this.arena.statSlot(this.index, cpu) >> 3;
  }

  /** Items in this thread's per-CPU cache (for tests and stats of the own CPU). */
  get cachedHere(): number {
    return this.curCnt + this.spareCnt + this.crossCnt;
  }

  /** Items in this thread's cross-free bucket (for tests). */
  get crossCachedHere(): number {
    return this.crossCnt;
  }

  private checkFlags(flags: number): void {
    if ((flags & (M_NOWAIT | M_WAITOK)) === (M_NOWAIT | M_WAITOK)) {
      throw new ArgumentError(`zone "${this.name}": M_NOWAIT and M_WAITOK are exclusive`);
    }
    if ((flags & M_WAITOK) !== 0 && (flags & M_NOVM) !== 0) {
      throw new ArgumentError(`zone "${this.name}": M_WAITOK with M_NOVM could sleep forever`);
    }
  }
}
