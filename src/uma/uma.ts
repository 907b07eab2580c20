/**
 * The UMA system of one thread: the registry of zones and kegs in the arena,
 * zone creation (uma_zcreate, uma_zsecond_create), lookup by name from other
 * workers, UMA's internal bucket and slab-header zones, and reclaim.
 *
 * Each thread (the main thread and every worker) makes one Uma over the shared
 * arena with Uma.create() or Uma.attach(); the zone objects it hands out carry
 * that thread's per-CPU caches. Callbacks are code and cannot travel between
 * threads, so a worker registers the same ctor/dtor/init/fini under the zone's
 * name (zone(name, callbacks)).
 *
 * Locking: the registry lock "UMA zones" guards the zone and keg tables; it is
 * taken only for create/destroy/lookup and never while a zone or keg lock is held.
 */
import { Arena, type ArenaOptions } from '../vm/arena.js';
import * as L from '../vm/layout.js';
import { PageAllocator } from '../vm/pages.js';
import { ArgumentError } from '../kern/errors.js';
import { Mutex } from '../kern/lock/mutex.js';
import { witness } from '../kern/lock/witness.js';
import { BUCKET_BYTES, bucketSelect } from './bucket.js';
import {
  M_NOWAIT,
  UMA_RECLAIM_DRAIN,
  UMA_RECLAIM_DRAIN_CPU,
  UMA_RECLAIM_TRIM,
  UMA_ZFLAG_INTERNAL,
  UMA_ZONE_NOBUCKET,
  UMA_ZONE_SECONDARY,
} from './flags.js';
import { Keg, K_ZONE, type HeaderSource } from './keg.js';
import { CB_CTOR, CB_DTOR, CB_FINI, CB_INIT, Z_KEG, Z_SIZE, Z_NAME, Z_NAME_BYTES, Z_ALIVE, Zone, type ZoneCallbacks, type ZoneHost } from './zone.js';
import { ZONE_BYTES } from '../vm/arena.js';
import { zoneStats } from './stats.js';

export interface ZoneOptions extends ZoneCallbacks {
  /** Item size in bytes. */
  size: number;
  /** Alignment in bytes (a power of two; at least 16). */
  align?: number;
  /** UMA_ZONE_* flags. */
  flags?: number;
}

const BUCKET_ZONE = 'UMA Buckets';
/** Empty buckets a thread keeps for its caches before giving them back. */
const BUCKET_STASH = 32;
const HEADER_SIZES = [64, 128, 256, 512, 1024];
const headerZoneName = (bytes: number): string => `UMA Slabs ${bytes}`;

export class Uma implements ZoneHost, HeaderSource {
  readonly arena: Arena;
  readonly pages: PageAllocator;
  readonly zonesLock: Mutex;
  /** Limit warnings and other messages go here (console.warn unless replaced). */
  logger: (message: string) => void = (m) => console.warn(m);
  private readonly zones: (Zone | undefined)[] = [];
  private readonly kegs: (Keg | undefined)[] = [];
  private readonly callbacks = new Map<string, ZoneCallbacks>();
  private bucketZone!: Zone;
  private readonly bucketStash = new Int32Array(BUCKET_STASH);
  private bucketStashCount = 0;
  private readonly headerZones: Zone[] = [];
  /** Hooks run by reclaim() (mbuf's protocol drain hooks register here). */
  readonly lowMemoryHooks: (() => void)[] = [];
  private reclaiming = false;

  private constructor(arena: Arena) {
    if (arena.cpu < 0) throw new ArgumentError('register this thread as a CPU (arena.registerCpu()) before Uma.attach');
    this.arena = arena;
    this.pages = new PageAllocator(arena);
    this.zonesLock = new Mutex(arena.i32, L.H_ZONES_LOCK, 'UMA zones');
    witness.attach(arena.i32, arena.witnessRegion, arena.debug);
    this.pages.reclaimHook = () => this.reclaimForPages();
  }

  /** Create an arena and its UMA (the first thread; it becomes CPU 0). */
  static create(opts: ArenaOptions = {}): Uma {
    const uma = new Uma(Arena.create(opts));
    uma.bootstrap();
    return uma;
  }

  /** Attach to an arena made by Uma.create in another thread. */
  static attach(arena: Arena): Uma {
    if (arena.cpu < 0) arena.registerCpu();
    const uma = new Uma(arena);
    uma.bucketZone = uma.zone(BUCKET_ZONE);
    for (const b of HEADER_SIZES) uma.headerZones.push(uma.zone(headerZoneName(b)));
    return uma;
  }

  /** Make UMA's own zones: buckets and off-page slab headers (uma_startup). */
  private bootstrap(): void {
    const internal = UMA_ZONE_NOBUCKET | UMA_ZFLAG_INTERNAL;
    this.bucketZone = this.zcreate(BUCKET_ZONE, { size: BUCKET_BYTES, flags: internal });
    for (const b of HEADER_SIZES) this.headerZones.push(this.zcreate(headerZoneName(b), { size: b, flags: internal }));
  }

  // ---- ZoneHost / HeaderSource ----

  /**
   * An empty bucket for a per-CPU cache: from this thread's stash of empty
   * buckets when it has one (no lock), else from the bucket zone (keg lock).
   * The stash spares a bucket exchange the keg lock on every full/empty swap,
   * which is what a producer/consumer pair of CPUs does all the time.
   */
  allocBucket(): number {
    if (this.bucketStashCount > 0) return this.bucketStash[--this.bucketStashCount];
    return this.bucketZone.alloc(M_NOWAIT);
  }
  /** Keep an emptied bucket in the stash, or give it back to the bucket zone. */
  freeBucket(b: number): void {
    if (this.bucketStashCount < BUCKET_STASH) this.bucketStash[this.bucketStashCount++] = b;
    else this.bucketZone.free(b);
  }
  /** Give every stashed empty bucket back to the bucket zone (reclaim, CPU going away). */
  flushBucketStash(): void {
    while (this.bucketStashCount > 0) this.bucketZone.free(this.bucketStash[--this.bucketStashCount]);
  }
  warn(message: string): void {
    this.logger(message);
  }
  headerZoneFor(bytes: number): number {
    const i = HEADER_SIZES.findIndex((b) => b >= bytes);
    if (i < 0) throw new ArgumentError(`slab header of ${bytes} bytes is larger than UMA supports`);
    return i;
  }
  allocHeader(bytes: number): number {
    return this.headerZones[this.headerZoneFor(bytes)].alloc(M_NOWAIT);
  }
  freeHeader(hdr: number): void {
    const slab = this.pages.owner(hdr);
    const kegIdx = this.arena.i32[slab >> 2];
    for (const z of this.headerZones) {
      if (z.keg.index === kegIdx) {
        z.free(hdr);
        return;
      }
    }
    throw new ArgumentError(`0x${hdr.toString(16)} is not an off-page slab header`);
  }

  // ---- creation and lookup ----

  /**
   * uma_zcreate: a new zone on a new keg. ctor/dtor run per allocation,
   * init/fini per item when slabs are made and freed. The name must be unique.
   */
  zcreate(name: string, opts: ZoneOptions): Zone {
    return this.createZone(name, opts, false);
  }

  /**
   * The zone called `name`, created with `opts` if no thread has made it yet.
   * Find and create happen under the registry lock, so CPUs that start
   * together and each set up the same layer race safely. An existing zone of
   * another item size is an error.
   */
  zfindOrCreate(name: string, opts: ZoneOptions): Zone {
    return this.createZone(name, opts, true);
  }

  private createZone(name: string, opts: ZoneOptions, attachIfExists: boolean): Zone {
    const size = opts.size;
    if (!Number.isInteger(size) || size <= 0) throw new ArgumentError(`zone "${name}": size must be a positive integer, got ${size}`);
    const align = opts.align ?? L.MIN_ALIGN;
    if (!Number.isInteger(align) || align <= 0 || (align & (align - 1)) !== 0) throw new ArgumentError(`zone "${name}": align must be a power of two`);
    const flags = opts.flags ?? 0;
    this.checkName(name);
    let zi = -1;
    let existed = false;
    this.zonesLock.lock();
    try {
      const found = this.findIndexLocked(name);
      if (found >= 0) {
        if (!attachIfExists) throw new ArgumentError(`zone "${name}" already exists`);
        const zr = (this.arena.zoneTable + found * ZONE_BYTES) >> 2;
        const existingSize = this.arena.i32[zr + Z_SIZE];
        if (existingSize !== size) throw new ArgumentError(`zone "${name}" exists with item size ${existingSize}, not ${size}`);
        zi = found;
        existed = true;
        return this.bindAfterCreate(zi, name, opts, existed);
      }
      const i32 = this.arena.i32;
      zi = i32[L.H_NZONES];
      const ki = i32[L.H_NKEGS];
      if (zi >= L.MAX_ZONES || ki >= L.MAX_KEGS) throw new ArgumentError(`no room for zone "${name}": at most ${L.MAX_ZONES} zones`);
      const internal = (flags & UMA_ZFLAG_INTERNAL) !== 0;
      Keg.format(this.arena, ki, size, align, flags, 0);
      const kr = (this.arena.kegTable + ki * 128) >> 2;
      i32[kr + K_ZONE] = zi;
      const bucket = internal ? 0 : bucketSelect(size);
      Zone.format(this.arena, zi, name, ki, size, flags, bucket, callbackBits(opts), false);
      Atomics.store(i32, L.H_NKEGS, ki + 1);
      Atomics.store(i32, L.H_NZONES, zi + 1);
    } finally {
      this.zonesLock.unlock();
    }
    return this.bindAfterCreate(zi, name, opts, existed);
  }

  /** Bind a zone just created (or found) to this thread with its callbacks. */
  private bindAfterCreate(zi: number, name: string, opts: ZoneOptions, existed: boolean): Zone {
    this.callbacks.set(name, opts);
    const zone = this.bind(zi, opts);
    if (!existed && (opts.init || opts.fini)) zone.keg.trash = false;
    return zone;
  }

  /**
   * uma_zsecond_create: a zone stacked on the keg of `master`, with its own
   * ctor/dtor and its own init/fini, run when items move between keg and zone.
   */
  zsecondCreate(name: string, callbacks: ZoneCallbacks, master: Zone): Zone {
    this.checkName(name);
    let zi = -1;
    this.zonesLock.lock();
    try {
      if (this.findIndexLocked(name) >= 0) throw new ArgumentError(`zone "${name}" already exists`);
      const i32 = this.arena.i32;
      zi = i32[L.H_NZONES];
      if (zi >= L.MAX_ZONES) throw new ArgumentError(`no room for zone "${name}"`);
      const flags = (master.flags & ~UMA_ZFLAG_INTERNAL) | UMA_ZONE_SECONDARY;
      Zone.format(this.arena, zi, name, master.keg.index, master.keg.size, flags, bucketSelect(master.keg.size), callbackBits(callbacks), true);
      Atomics.store(i32, L.H_NZONES, zi + 1);
    } finally {
      this.zonesLock.unlock();
    }
    this.callbacks.set(name, callbacks);
    const zone = this.bind(zi, callbacks);
    // Items that carry state between uses cannot be trash-checked by any zone of the keg.
    if (callbacks.init || callbacks.fini || callbacks.ctor || callbacks.dtor) master.keg.trash = false;
    return zone;
  }

  /**
   * Find a zone by name, binding it to this thread with the callbacks given
   * (or registered before with registerCallbacks). A zone whose creator gave
   * callbacks cannot be used without them.
   */
  zone(name: string, callbacks?: ZoneCallbacks): Zone {
    if (callbacks) this.callbacks.set(name, callbacks);
    for (const z of this.zones) if (z !== undefined && z.name === name && z.alive) return z;
    this.zonesLock.lock();
    let zi: number;
    try {
      zi = this.findIndexLocked(name);
    } finally {
      this.zonesLock.unlock();
    }
    if (zi < 0) throw new ArgumentError(`no zone named "${name}"`);
    return this.bind(zi, this.callbacks.get(name) ?? {});
  }

  /** Register callbacks for a zone name before first use in this thread. */
  registerCallbacks(name: string, callbacks: ZoneCallbacks): void {
    this.callbacks.set(name, callbacks);
    const z = this.zones.find((x) => x !== undefined && x.name === name);
    if (z) applyCallbacks(z, callbacks);
  }

  /** Every zone in the arena, bound to this thread (for statistics). */
  allZones(): Zone[] {
    const n = Atomics.load(this.arena.i32, L.H_NZONES);
    const out: Zone[] = [];
    for (let zi = 0; zi < n; zi++) {
      const z = this.zones[zi] ?? this.tryBind(zi);
      if (z !== undefined && z.alive) out.push(z);
    }
    return out;
  }

  /** The zone at a table index, bound to this thread. */
  zoneAt(index: number): Zone {
    return this.zones[index] ?? this.bind(index, this.callbacks.get(this.zoneNameAt(index)) ?? {});
  }

  /** The keg at a table index, as this thread sees it. */
  kegAt(index: number): Keg {
    let k = this.kegs[index];
    if (k === undefined) {
      k = new Keg(this.arena, this.pages, index, this.headerSourceFor(index));
      this.kegs[index] = k;
    }
    return k;
  }

  /** The primary zone of the keg whose slab holds `item` (vtoslab -> keg -> zone). */
  zoneOfItem(item: number): Zone | null {
    const slab = this.pages.owner(item);
    if (slab <= 0) return null;
    const keg = this.kegAt(this.arena.i32[slab >> 2]);
    return this.zoneAt(this.arena.i32[keg.rec + K_ZONE]);
  }

  // ---- reclaim ----

  /**
   * uma_reclaim: TRIM gives back each zone's cache beyond its working set,
   * DRAIN empties every zone cache and frees empty slabs, DRAIN_CPU also asks
   * every CPU to flush its per-CPU caches. Runs low-memory hooks first.
   * Must be called with no lock held; does not sleep.
   */
  reclaim(req: number = UMA_RECLAIM_DRAIN): void {
    if (req !== UMA_RECLAIM_TRIM && req !== UMA_RECLAIM_DRAIN && req !== UMA_RECLAIM_DRAIN_CPU) {
      throw new ArgumentError(`uma reclaim: unknown request ${req}`);
    }
    if (this.reclaiming) return;
    this.reclaiming = true;
    try {
      if (req !== UMA_RECLAIM_TRIM) for (const hook of this.lowMemoryHooks) hook();
      const zones = this.allZones().filter((z) => (z.flags & UMA_ZFLAG_INTERNAL) === 0);
      for (const z of zones) {
        if (req === UMA_RECLAIM_TRIM) z.trim();
        else {
          if (req === UMA_RECLAIM_DRAIN_CPU) z.requestDrainOthers();
          z.drain();
        }
      }
      this.flushBucketStash();
      // Bucket slabs first: freeing them can empty header slabs too.
      this.bucketZone.keg.drain();
      for (const z of this.headerZones) z.keg.drain();
    } finally {
      this.reclaiming = false;
    }
  }

  /** Flush every per-CPU cache this thread holds (a CPU going idle or away). */
  flushCpuCaches(): void {
    for (const z of this.zones) if (z !== undefined) z.flushCpuCache();
    this.flushBucketStash();
  }

  /** Honour pending drain requests (called from a CPU's idle loop). */
  poll(): void {
    for (const z of this.zones) if (z !== undefined) z.poll();
  }

  /**
   * uma_zdestroy: the zone must have nothing in use (counted from the per-CPU
   * statistics unless the caller knows better) and, for a primary zone, no
   * secondary zone left on its keg. Flushes caches, gives every item back and
   * frees the empty slabs. Throws ZoneBusyError naming the zone and the count.
   * Takes the zone, keg and page locks in turn; does not sleep.
   */
  zdestroy(zone: Zone, inUse: number = zoneStats(zone).used): void {
    if (!zone.alive) throw new ArgumentError(`zone "${zone.name}" is already destroyed`);
    if (!zone.secondary) {
      for (const z of this.allZones()) {
        if (z !== zone && z.secondary && z.keg === zone.keg) {
          throw new ArgumentError(`zone "${zone.name}": secondary zone "${z.name}" still uses its keg; destroy it first`);
        }
      }
    }
    zone.flushCpuCache();
    zone.markDestroyed(inUse);
    zone.drain();
    this.zones[zone.index] = undefined; // a new zone of the same name must not find this one
  }

  private reclaimForPages(): void {
    this.reclaim(UMA_RECLAIM_DRAIN);
  }

  private bind(zi: number, callbacks: ZoneCallbacks): Zone {
    const existing = this.zones[zi];
    if (existing !== undefined) return existing;
    const i32 = this.arena.i32;
    const zr = (this.arena.zoneTable + zi * ZONE_BYTES) >> 2;
    const keg = this.kegAt(i32[zr + Z_KEG]);
    const zone = new Zone(this.arena, zi, keg, this.arena.cpu, this);
    const need = zone.callbackBits;
    const have = callbackBits(callbacks);
    if ((need & ~have) !== 0) {
      throw new ArgumentError(`zone "${zone.name}" has callbacks (ctor/dtor/init/fini mask ${need}); register them in this thread first`);
    }
    applyCallbacks(zone, callbacks);
    if (!zone.secondary) keg.name = zone.name;
    this.zones[zi] = zone;
    return zone;
  }

  private tryBind(zi: number): Zone | undefined {
    try {
      return this.bind(zi, this.callbacks.get(this.zoneNameAt(zi)) ?? {});
    } catch {
      return undefined; // a zone whose callbacks this thread lacks is not listed
    }
  }

  private zoneNameAt(zi: number): string {
    const zr = (this.arena.zoneTable + zi * ZONE_BYTES) >> 2;
    return this.arena.readString((zr + Z_NAME) * 4, Z_NAME_BYTES);
  }

  private findIndexLocked(name: string): number {
    const n = this.arena.i32[L.H_NZONES];
    for (let zi = 0; zi < n; zi++) {
      const zr = (this.arena.zoneTable + zi * ZONE_BYTES) >> 2;
      if (this.arena.i32[zr + Z_ALIVE] !== 0 && this.zoneNameAt(zi) === name) return zi;
    }
    return -1;
  }

  private headerSourceFor(_kegIndex: number): HeaderSource {
    return this;
  }

  private checkName(name: string): void {
    if (typeof name !== 'string' || name.length === 0 || name.length >= Z_NAME_BYTES || !/^[\x20-\x7e]+$/.test(name)) {
      throw new ArgumentError(`zone name must be 1..${Z_NAME_BYTES - 1} printable ASCII characters, got ${JSON.stringify(name)}`);
    }
  }
}

function callbackBits(cb: ZoneCallbacks): number {
  return (cb.ctor ? CB_CTOR : 0) | (cb.dtor ? CB_DTOR : 0) | (cb.init ? CB_INIT : 0) | (cb.fini ? CB_FINI : 0);
}

/** Primary zones: init/fini belong to the keg; secondary zones keep their own. */
function applyCallbacks(zone: Zone, cb: ZoneCallbacks): void {
  zone.ctor = cb.ctor ?? null;
  zone.dtor = cb.dtor ?? null;
  if (zone.secondary) {
    zone.zinit = cb.init ?? null;
    zone.zfini = cb.fini ?? null;
  } else {
    zone.keg.callbacks = { init: cb.init ?? null, fini: cb.fini ?? null };
  }
}
