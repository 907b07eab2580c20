/**
 * The arena: one SharedArrayBuffer that holds every packet, every slab and every
 * shared allocator structure, cut into 4 KiB pages. The creating thread lays out
 * the header; any other worker attaches by receiving the same buffer and
 * registers itself as a CPU.
 */
import { ArgumentError } from '../kern/errors.js';
import * as L from './layout.js';

export interface ArenaOptions {
  /** Bytes to reserve; rounded up to whole pages. Untouched pages cost nothing. */
  size?: number;
  /** Highest number of CPUs (worker threads, main thread included) that may register. */
  ncpus?: number;
  /** Debug mode: witness, trash fill and use-after-free checks. */
  debug?: boolean;
}

export const DEFAULT_ARENA_SIZE = 256 * 1024 * 1024;

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export class Arena {
  readonly sab: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly size: number;
  readonly npages: number;
  readonly ncpusMax: number;
  readonly debug: boolean;
  /** Byte offsets of the fixed regions (see layout.ts). */
  readonly pageTable: number;
  readonly freeBitmap: number;
  readonly ownerMap: number;
  readonly kegTable: number;
  readonly zoneTable: number;
  readonly stats: number;
  readonly witnessRegion: number;
  /** This thread's CPU id, or -1 until registerCpu(). */
  cpu = -1;

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.u8 = new Uint8Array(sab);
    this.i32 = new Int32Array(sab);
    this.f64 = new Float64Array(sab);
    const h = this.i32;
    if (h[L.H_MAGIC] !== L.ARENA_MAGIC || h[L.H_VERSION] !== L.ARENA_VERSION) {
      throw new ArgumentError('buffer is not a slabnet arena (bad magic or version)');
    }
    this.size = sab.byteLength;
    this.npages = h[L.H_NPAGES];
    this.ncpusMax = h[L.H_NCPUS_MAX];
    this.debug = (h[L.H_FLAGS] & L.ARENA_F_DEBUG) !== 0;
    this.pageTable = h[L.H_PAGE_TABLE];
    this.freeBitmap = h[L.H_FREE_BITMAP];
    this.ownerMap = h[L.H_OWNER_MAP];
    this.kegTable = h[L.H_KEG_TABLE];
    this.zoneTable = h[L.H_ZONE_TABLE];
    this.stats = h[L.H_STATS];
    this.witnessRegion = h[L.H_WITNESS];
  }

  /**
   * Create a new arena: allocate the SharedArrayBuffer, lay out the regions and
   * mark every data page free. Registers the calling thread as CPU 0.
   */
  static create(opts: ArenaOptions = {}): Arena {
    const size = align(opts.size ?? DEFAULT_ARENA_SIZE, L.PAGE_SIZE);
    const ncpus = opts.ncpus ?? 8;
    if (!Number.isInteger(ncpus) || ncpus < 1 || ncpus > L.MAX_CPUS) {
      throw new ArgumentError(`ncpus must be an integer in 1..${L.MAX_CPUS}, got ${ncpus}`);
    }
    if (size < 64 * L.PAGE_SIZE || size > 0x7fff_f000) {
      throw new ArgumentError(`arena size must be between 256 KiB and 2 GiB, got ${size}`);
    }
    const npages = size / L.PAGE_SIZE;
    const sab = new SharedArrayBuffer(size);
    const h = new Int32Array(sab);
    let off = L.PAGE_SIZE;
    const region = (bytes: number): number => {
      const at = off;
      off = align(off + bytes, L.PAGE_SIZE);
      return at;
    };
    const witnessBytes =
      L.WITNESS_MAX_CLASSES * L.WITNESS_NAME_BYTES +
      L.WITNESS_MAX_CLASSES * L.WITNESS_MAX_CLASSES * (1 + L.WITNESS_SITE_BYTES);
    h[L.H_WITNESS] = region(witnessBytes);
    h[L.H_PAGE_TABLE] = region(npages * 4);
    h[L.H_FREE_BITMAP] = region(Math.ceil(npages / 32) * 4);
    h[L.H_OWNER_MAP] = region(size >>> L.OWNER_SHIFT);
    h[L.H_KEG_TABLE] = region(L.MAX_KEGS * KEG_BYTES);
    h[L.H_ZONE_TABLE] = region(L.MAX_ZONES * ZONE_BYTES);
    h[L.H_STATS] = region(L.MAX_ZONES * ncpus * L.CPU_SLOT_BYTES);
    const firstData = off / L.PAGE_SIZE;
    if (firstData >= npages - 16) {
      throw new ArgumentError(`arena of ${size} bytes leaves no room for data pages`);
    }
    h[L.H_MAGIC] = L.ARENA_MAGIC;
    h[L.H_VERSION] = L.ARENA_VERSION;
    h[L.H_NPAGES] = npages;
    h[L.H_NCPUS_MAX] = ncpus;
    h[L.H_FLAGS] = opts.debug ? L.ARENA_F_DEBUG : 0;
    h[L.H_DATA_START_PAGE] = firstData;
    h[L.H_ZONE_WARNINGS] = 1;
    const bitmap = h[L.H_FREE_BITMAP] >> 2;
    for (let p = firstData; p < npages; p++) h[bitmap + (p >>> 5)] |= 1 << (p & 31);
    h[L.H_PAGE_FREE] = npages - firstData;
    h[L.H_PAGE_HINT] = firstData;
    const arena = new Arena(sab);
    arena.registerCpu();
    return arena;
  }

  /** Attach to an arena created elsewhere (typically in a worker). Call registerCpu() next. */
  static attach(sab: SharedArrayBuffer): Arena {
    if (!(sab instanceof SharedArrayBuffer)) throw new ArgumentError('attach() needs a SharedArrayBuffer');
    return new Arena(sab);
  }

  /**
   * Take the next free CPU id (0 .. ncpusMax-1) for this thread, or the id
   * given (a machine that assigns ids itself). Ids are never reused.
   */
  registerCpu(id?: number): number {
    if (this.cpu >= 0) return this.cpu;
    if (id === undefined) {
      id = Atomics.add(this.i32, L.H_CPU_NEXT, 1);
    } else {
      let cur = Atomics.load(this.i32, L.H_CPU_NEXT);
      while (cur <= id) {
        const seen = Atomics.compareExchange(this.i32, L.H_CPU_NEXT, cur, id + 1);
        if (seen === cur) break;
        cur = seen;
      }
    }
    if (id < 0 || id >= this.ncpusMax) {
      throw new ArgumentError(`no CPU slot left: arena was created for ${this.ncpusMax} CPUs`);
    }
    this.cpu = id;
    return id;
  }

  /** Number of CPU ids handed out so far. */
  get ncpusRegistered(): number {
    return Math.min(Atomics.load(this.i32, L.H_CPU_NEXT), this.ncpusMax);
  }

  /** A Uint8Array view of [off, off + len): for the edges, never the packet path. */
  view(off: number, len: number): Uint8Array {
    return new Uint8Array(this.sab, off, len);
  }

  /** Byte offset of a zone's per-CPU statistics slot. */
  statSlot(zoneIndex: number, cpu: number): number {
    return this.stats + (zoneIndex * this.ncpusMax + cpu) * L.CPU_SLOT_BYTES;
  }

  /** Read a NUL-terminated ASCII string stored at a byte offset. */
  readString(off: number, max: number): string {
    let s = '';
    for (let i = 0; i < max; i++) {
      const c = this.u8[off + i];
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  }

  /** Store an ASCII string (truncated to max-1 bytes) NUL-terminated at a byte offset. */
  writeString(off: number, max: number, s: string): void {
    const n = Math.min(s.length, max - 1);
    for (let i = 0; i < n; i++) this.u8[off + i] = s.charCodeAt(i) & 0x7f;
    for (let i = n; i < max; i++) this.u8[off + i] = 0;
  }
}

/** Size of one keg record and one zone record (see uma/keg.ts and uma/zone.ts). */
export const KEG_BYTES = 128;
export const ZONE_BYTES = 256;
