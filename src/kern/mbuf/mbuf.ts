/**
 * mbuma: the mbuf and cluster allocator on UMA (FreeBSD kern_mbuf.c), one
 * `Mbufs` object per thread over that thread's `Uma`.
 *
 * Zones (created once by Mbufs.create in the first thread, bound by name in
 * every other thread by Mbufs.attach, which registers the same callbacks):
 *
 *   mbuf             MSIZE items, the mbuf keg
 *   mbuf_packet      secondary zone on the mbuf keg: its items carry a cluster
 *                    attached by the zone init (mb_zinit_pack) and given back
 *                    by the zone fini, so m_getcl costs one zone allocation
 *   mbuf_cluster     MCLBYTES
 *   mbuf_jumbo_page  MJUMPAGESIZE   mbuf_jumbo_9k MJUM9BYTES   mbuf_jumbo_16k MJUM16BYTES
 *                    (the keg puts the larger sizes on contiguous page runs)
 *
 * Hot paths (m_get, m_gethdr, m_getcl, m_free, m_freem) do plain integer
 * math on the arena's typed arrays and allocate no JS objects. The mbuf ctor
 * work (mb_ctor_mbuf, mb_ctor_pack) is done inline after the zone allocation
 * rather than through a UMA ctor callback, which saves an indirect call.
 *
 * External storage reference counts: see layout.ts and freeExt() below.
 *
 * Locking: none of its own; zone and keg locks are taken inside UMA. Nothing
 * here sleeps unless the caller passes M_WAITOK.
 */
import { ArgumentError } from '../errors.js';
import { M_NOWAIT, M_WAITOK, UMA_ZONE_CONTIG } from '../../uma/flags.js';
import type { Uma } from '../../uma/uma.js';
import type { Zone, ZoneCallbacks } from '../../uma/zone.js';
import * as L from './layout.js';
import { MbufShared } from './shared.js';
import { ArenaCopier } from './copy.js';
import { tagDeleteChainAll, pkthdrLabelInit, createTagZones, attachTagZones } from './tags.js';

const {
  M_NEXT, M_NEXTPKT, M_DATA, M_LEN, M_FLAGS, M_TYPE, MHSIZE, MPKTHSIZE,
  PH_RCVIF, PH_LEN, PH_TAGS,
  EXT_BUF, EXT_SIZE, EXT_TYPE_OFF, EXT_FLAGS_OFF, EXT_CNT, EXT_FREE, EXT_ARG1, EXT_ARG2, EXT_COUNT,
  M_EXT, M_PKTHDR, M_RDONLY, EXT_FLAG_EMBREF, EXT_FLAG_NOFREE,
  EXT_CLUSTER, EXT_JUMBOP, EXT_JUMBO9, EXT_JUMBO16, EXT_PACKET,
} = L;

export const ZONE_MBUF = 'mbuf';
export const ZONE_PACK = 'mbuf_packet';
export const ZONE_CLUST = 'mbuf_cluster';
export const ZONE_JUMBOP = 'mbuf_jumbo_page';
export const ZONE_JUMBO9 = 'mbuf_jumbo_9k';
export const ZONE_JUMBO16 = 'mbuf_jumbo_16k';

/** A free routine for user-registered external storage (m_extadd), called once when the last reference goes. */
export type ExtFreeFn = (m: number, buf: number, arg1: number, arg2: number) => void;

export interface MbufsOptions {
  /** Seed of this thread's random source (MBUF_STRESS_TEST); default 1. */
  seed?: number;
}

/** Limits derived from the arena size as tunable_mbinit derives them from memory. */
export interface MbufLimits {
  nmbclusters: number;
  nmbjumbop: number;
  nmbjumbo9: number;
  nmbjumbo16: number;
  nmbufs: number;
}

/**
 * tunable_mbinit: maxmbufmem is half of "real memory" (here the arena's data
 * pages); clusters get a quarter of it, jumbo pages a quarter, 9k and 16k
 * jumbos a sixth each, and there are at least as many mbufs as all clusters.
 */
export function defaultLimits(realmem: number): MbufLimits {
  const maxmbufmem = Math.floor(realmem / 2);
  const nmbclusters = Math.floor(maxmbufmem / L.MCLBYTES / 4);
  const nmbjumbop = Math.floor(maxmbufmem / L.MJUMPAGESIZE / 4);
  const nmbjumbo9 = Math.floor(maxmbufmem / L.MJUM9BYTES / 6);
  const nmbjumbo16 = Math.floor(maxmbufmem / L.MJUM16BYTES / 6);
  const nmbufs = Math.max(Math.floor(maxmbufmem / L.MSIZE / 5), nmbclusters + nmbjumbop + nmbjumbo9 + nmbjumbo16);
  return { nmbclusters, nmbjumbop, nmbjumbo9, nmbjumbo16, nmbufs };
}

export class Mbufs {
  readonly uma: Uma;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  /** The arena as doubles: one store of 0.0 clears 8 aligned bytes (pkthdr init). */
  private readonly f64: Float64Array;
  /** Int32 index of the shared mac_labelmbufs word (read on every pkthdr allocation). */
  private readonly labelIdx: number;
  readonly zMbuf: Zone;
  readonly zPack: Zone;
  readonly zClust: Zone;
  readonly zJumbop: Zone;
  readonly zJumbo9: Zone;
  readonly zJumbo16: Zone;
  /** Shared (arena) state: tunables, counters, per-CPU per-type counts. */
  readonly shared: MbufShared;
  /** Int32 index of this CPU's per-type counter slot (mbtypes, no atomics). */
  private readonly typeSlot: number;
  /** Registered external free routines of this thread, by id (m_extadd). */
  private readonly extFree: (ExtFreeFn | undefined)[] = [];
  /** Protocol drain hooks (pr_drain), run by mb_reclaim. */
  private readonly drainHooks: (() => void)[] = [];
  /** A zone hit its limit: run mb_reclaim before the next retry. */
  private reclaimPending = false;
  /** Random state of this thread (xorshift32), for MBUF_STRESS_TEST. */
  rng: number;
  /** Mbuf tag support is attached lazily by tags.ts (per thread). */
  tagZones: Zone[] = [];
  /** Copies JS bytes into the arena at word speed whatever the alignment (copy.ts). */
  readonly copier: ArenaCopier;

  private constructor(uma: Uma, zones: Zone[], shared: MbufShared, opts: MbufsOptions) {
    this.uma = uma;
    this.i32 = uma.arena.i32;
    this.u8 = uma.arena.u8;
    this.f64 = uma.arena.f64;
    this.copier = new ArenaCopier(this.u8);
    this.labelIdx = shared.labelIndex;
    [this.zMbuf, this.zPack, this.zClust, this.zJumbop, this.zJumbo9, this.zJumbo16] = zones;
    this.shared = shared;
    this.typeSlot = shared.typeSlot(uma.arena.cpu);
    this.rng = (opts.seed ?? 1) >>> 0 || 1;
    const action = (): void => {
      this.reclaimPending = true;
    };
    for (const z of zones) z.maxAction = action;
    uma.lowMemoryHooks.push(() => this.runDrainHooks());
  }

  /** Zone callbacks of the packet zone for this thread (mb_zinit_pack / mb_zfini_pack). */
  private static packCallbacks(uma: Uma): ZoneCallbacks {
    const i32 = uma.arena.i32;
    let clust: Zone | null = null;
    return {
      init: (m: number): boolean => {
        if (clust === null) clust = uma.zone(ZONE_CLUST);
        // Always M_NOWAIT: the packet zone is a cache, never a reason to sleep.
        const c = clust.alloc(M_NOWAIT);
        if (c === 0) return false;
        // The whole descriptor is set here, once per trip through the keg: it
        // stays valid while the item cycles through the packet zone (freeExt
        // puts the counter back to 1), so mb_ctor_pack only touches m_hdr.
        i32[(m + EXT_BUF) >> 2] = c;
        i32[(m + EXT_SIZE) >> 2] = L.MCLBYTES;
        i32[(m + EXT_TYPE_OFF) >> 2] = EXT_PACKET;
        i32[(m + EXT_FLAGS_OFF) >> 2] = EXT_FLAG_EMBREF;
        i32[(m + EXT_CNT) >> 2] = m + EXT_COUNT;
        i32[(m + EXT_COUNT) >> 2] = 1;
        i32[(m + EXT_FREE) >> 2] = 0;
        i32[(m + EXT_ARG1) >> 2] = 0;
        i32[(m + EXT_ARG2) >> 2] = 0;
        return true;
      },
      fini: (m: number): void => {
        if (clust === null) clust = uma.zone(ZONE_CLUST);
        clust.free(i32[(m + EXT_BUF) >> 2]);
      },
    };
  }

  /**
   * mbuf_init: create the six zones with limits from the arena size and set
   * the limit warnings (first thread only). Not to be called twice per arena.
   */
  static create(uma: Uma, opts: MbufsOptions = {}): Mbufs {
    const lim = defaultLimits(uma.pages.dataPages * 4096);
    const zMbuf = uma.zcreate(ZONE_MBUF, { size: L.MSIZE, align: 16 });
    const zPack = uma.zsecondCreate(ZONE_PACK, Mbufs.packCallbacks(uma), zMbuf);
    const zClust = uma.zcreate(ZONE_CLUST, { size: L.MCLBYTES, align: 16 });
    const zJp = uma.zcreate(ZONE_JUMBOP, { size: L.MJUMPAGESIZE, align: 16, flags: UMA_ZONE_CONTIG });
    const zJ9 = uma.zcreate(ZONE_JUMBO9, { size: L.MJUM9BYTES, align: 16, flags: UMA_ZONE_CONTIG });
    const zJ16 = uma.zcreate(ZONE_JUMBO16, { size: L.MJUM16BYTES, align: 16, flags: UMA_ZONE_CONTIG });
    zMbuf.setMaxItems(lim.nmbufs);
    zClust.setMaxItems(lim.nmbclusters);
    zJp.setMaxItems(lim.nmbjumbop);
    zJ9.setMaxItems(lim.nmbjumbo9);
    zJ16.setMaxItems(lim.nmbjumbo16);
    zMbuf.warning = 'kern.ipc.nmbufs limit reached';
    zClust.warning = 'kern.ipc.nmbclusters limit reached';
    zJp.warning = 'kern.ipc.nmbjumbop limit reached';
    zJ9.warning = 'kern.ipc.nmbjumbo9 limit reached';
    zJ16.warning = 'kern.ipc.nmbjumbo16 limit reached';
    const shared = MbufShared.create(uma);
    const mb = new Mbufs(uma, [zMbuf, zPack, zClust, zJp, zJ9, zJ16], shared, opts);
    mb.tagZones = createTagZones(uma);
    return mb;
  }

  /** Bind the mbuf zones in this thread (a worker), registering the same callbacks. */
  static attach(uma: Uma, opts: MbufsOptions = {}): Mbufs {
    const zMbuf = uma.zone(ZONE_MBUF);
    const zClust = uma.zone(ZONE_CLUST);
    const zPack = uma.zone(ZONE_PACK, Mbufs.packCallbacks(uma));
    const zones = [zMbuf, zPack, zClust, uma.zone(ZONE_JUMBOP), uma.zone(ZONE_JUMBO9), uma.zone(ZONE_JUMBO16)];
    const mb = new Mbufs(uma, zones, MbufShared.attach(uma), opts);
    mb.tagZones = attachTagZones(uma);
    return mb;
  }

  // ------------------------------------------------------------------
  // Allocation (fast paths first)
  // ------------------------------------------------------------------

  /**
   * m_get: an mbuf without packet header, m_data at m_dat, m_len 0.
   * Returns 0 when M_NOWAIT cannot be satisfied. Sleeps only with M_WAITOK.
   */
  m_get(how: number, type: number): number {
    if (((how & 3) - 1) >>> 0 > 1) checkHow(how); // exactly one of M_NOWAIT (1) / M_WAITOK (2)
    const m = this.zMbuf.alloc(M_NOWAIT);
    if (m === 0) return this.allocRetry(how, type, 0, 0);
    this.initHdr(m, type, 0);
    return m;
  }

  /**
   * m_gethdr: an mbuf with an initialized packet header (m_pkthdr_init), data
   * at m_pktdat. 0 on M_NOWAIT failure.
   */
  m_gethdr(how: number, type: number): number {
    if (((how & 3) - 1) >>> 0 > 1) checkHow(how); // exactly one of M_NOWAIT (1) / M_WAITOK (2)
    const m = this.zMbuf.alloc(M_NOWAIT);
    if (m === 0) return this.allocRetry(how, type, M_PKTHDR, 0);
    this.initHdr(m, type, M_PKTHDR);
    if (this.i32[this.labelIdx] !== 0 && !pkthdrLabelInit(this, m, how)) {
      this.zMbuf.free(m);
      this.countType(type, -1);
      return 0;
    }
    return m;
  }

  /**
   * m_getcl: an mbuf with a 2 KiB cluster attached, from the packet zone (one
   * zone allocation). `flags` may hold M_PKTHDR (and M_EOR etc).
   */
  m_getcl(how: number, type: number, flags: number): number {
    if (((how & 3) - 1) >>> 0 > 1) checkHow(how); // exactly one of M_NOWAIT (1) / M_WAITOK (2)
    const m = this.zPack.alloc(M_NOWAIT);
    if (m === 0) return this.allocRetry(how, type, flags, 1);
    this.initPacket(m, type, flags);
    if ((flags & M_PKTHDR) !== 0 && this.i32[this.labelIdx] !== 0 && !pkthdrLabelInit(this, m, how)) {
      this.m_free(m);
      return 0;
    }
    return m;
  }

  /** Fill the header fields of a fresh mbuf (mb_ctor_mbuf). */
  private initHdr(m: number, type: number, flags: number): void {
    const i32 = this.i32;
    const b = m >> 2;
    this.f64[m >> 3] = 0; // m_next and m_nextpkt (offsets 0 and 4) in one store
    i32[b + (M_LEN >> 2)] = 0;
    i32[b + (M_FLAGS >> 2)] = flags;
    i32[b + (M_TYPE >> 2)] = type;
    if ((flags & M_PKTHDR) !== 0) {
      i32[b + (M_DATA >> 2)] = m + MPKTHSIZE;
      this.zeroPkthdr(m);
    } else {
      i32[b + (M_DATA >> 2)] = m + MHSIZE;
    }
    i32[this.typeSlot + type]++;
  }

  /**
   * m_pkthdr_init without the label: every pkthdr field zero. The pkthdr is
   * bytes 24..63 of the 16-aligned item, so five 8-byte stores of +0.0 (all
   * zero bits) clear it: rcvif|len, tags|flowid, csum_flags|csum_data,
   * tso_vtag|rsstype.., rcv_tstmp|spare.
   */
  private zeroPkthdr(m: number): void {
    const f64 = this.f64;
    const d = (m + PH_RCVIF) >> 3;
    f64[d] = 0;
    f64[d + 1] = 0;
    f64[d + 2] = 0;
    f64[d + 3] = 0;
    f64[d + 4] = 0;
  }

  /** mb_ctor_pack: the cluster is already attached by the zone init. */
  private initPacket(m: number, type: number, flags: number): void {
    const i32 = this.i32;
    const b = m >> 2;
    this.f64[m >> 3] = 0; // m_next, m_nextpkt
    i32[b + (M_LEN >> 2)] = 0;
    i32[b + (M_FLAGS >> 2)] = flags | M_EXT;
    i32[b + (M_TYPE >> 2)] = type;
    i32[b + (M_DATA >> 2)] = i32[b + (EXT_BUF >> 2)];
    // The ext descriptor (flags, counter at 1, no free routine) is still as the
    // zone init left it: see packCallbacks and freeExt.
    if ((flags & M_PKTHDR) !== 0) this.zeroPkthdr(m);
    i32[this.typeSlot + type]++;
  }

  /**
   * Slow path of the allocators: a zone at its limit asked for a reclaim
   * (mb_reclaim: drain the packet zone's clusters, run protocol drains); try
   * again, and for M_WAITOK sleep in the zone that is short. kind 0: plain
   * mbuf, 1: mbuf + cluster.
   */
  private allocRetry(how: number, type: number, flags: number, kind: number): number {
    checkHow(how);
    if (this.reclaimPending) this.mbReclaim();
    if (kind === 1) {
      let m = this.zPack.alloc(M_NOWAIT);
      if (m !== 0) {
        this.initPacket(m, type, flags);
        return m;
      }
      // The packet zone could not make an item: build mbuf + cluster from the
      // primary zones, which sleep properly (FIFO at their limits) for M_WAITOK.
      if (this.reclaimPending) this.mbReclaim();
      m = (flags & M_PKTHDR) !== 0 ? this.m_gethdr(how, type) : this.m_get(how, type);
      if (m === 0) return 0;
      if (flags & ~M_PKTHDR) this.i32[(m + M_FLAGS) >> 2] |= flags & ~M_PKTHDR;
      if (!this.m_clget(m, how)) {
        this.m_free(m);
        return 0;
      }
      return m;
    }
    let m = this.zMbuf.alloc(M_NOWAIT);
    if (m === 0 && (how & M_WAITOK) !== 0) {
      if (this.reclaimPending) this.mbReclaim();
      m = this.zMbuf.alloc(M_WAITOK);
    }
    if (m === 0) return 0;
    this.initHdr(m, type, flags);
    if ((flags & M_PKTHDR) !== 0 && this.shared.labelMbufs !== 0 && !pkthdrLabelInit(this, m, how)) {
      this.m_free(m);
      return 0;
    }
    return m;
  }

  /** The zone holding clusters of a size (m_getzone). Throws on a size that is not one. */
  zoneForSize(size: number): Zone {
    switch (size) {
      case L.MCLBYTES:
        return this.zClust;
      case L.MJUMPAGESIZE:
        return this.zJumbop;
      case L.MJUM9BYTES:
        return this.zJumbo9;
      case L.MJUM16BYTES:
        return this.zJumbo16;
      default:
        throw new ArgumentError(`no cluster zone of size ${size} (MCLBYTES, MJUMPAGESIZE, MJUM9BYTES or MJUM16BYTES)`);
    }
  }

  /**
   * m_cljget(m, how, size): attach a cluster of `size` to m (when m is not 0)
   * or return a bare cluster (m == 0). Returns the storage offset, or 0 on
   * failure (m then unchanged). m must not already have external storage.
   */
  m_cljget(m: number, how: number, size: number): number {
    const zone = this.zoneForSize(size);
    checkHow(how);
    if (m !== 0 && (this.i32[(m + M_FLAGS) >> 2] & M_EXT) !== 0) {
      throw new ArgumentError(`m_cljget: mbuf 0x${m.toString(16)} already has external storage`);
    }
    let c = zone.alloc(M_NOWAIT);
    if (c === 0) {
      if (this.reclaimPending) this.mbReclaim();
      c = zone.alloc(how);
      if (c === 0) return 0;
    }
    if (m !== 0) this.attachExt(m, c, size, extTypeOfSize(size), EXT_FLAG_EMBREF, 0, 0, 0);
    return c;
  }

  /** m_clget: attach a 2 KiB cluster; returns true when m now has M_EXT. */
  m_clget(m: number, how: number): boolean {
    return this.m_cljget(m, how, L.MCLBYTES) !== 0;
  }

  /**
   * m_getjcl: an mbuf (with pkthdr when flags has M_PKTHDR) and a cluster of
   * `size`; MCLBYTES goes through the packet zone. Nothing leaks on failure.
   */
  m_getjcl(how: number, type: number, flags: number, size: number): number {
    if (size === L.MCLBYTES) return this.m_getcl(how, type, flags);
    const zone = this.zoneForSize(size);
    const m = (flags & M_PKTHDR) !== 0 ? this.m_gethdr(how, type) : this.m_get(how, type);
    if (m === 0) return 0;
    if (flags & ~M_PKTHDR) this.i32[(m + M_FLAGS) >> 2] |= flags & ~M_PKTHDR;
    let c = zone.alloc(M_NOWAIT);
    if (c === 0) {
      if (this.reclaimPending) this.mbReclaim();
      c = zone.alloc(how);
    }
    if (c === 0) {
      this.m_free(m);
      return 0;
    }
    this.attachExt(m, c, size, extTypeOfSize(size), EXT_FLAG_EMBREF, 0, 0, 0);
    return m;
  }

  /**
   * m_get2: the smallest mbuf (+ cluster) that holds `size` bytes in one
   * piece, up to MJUMPAGESIZE; 0 when larger (as FreeBSD) or on failure.
   */
  m_get2(size: number, how: number, type: number, flags: number): number {
    checkLen(size, 'm_get2 size');
    if (size <= L.MHLEN || (size <= L.MLEN && (flags & M_PKTHDR) === 0)) {
      return (flags & M_PKTHDR) !== 0 ? this.m_gethdr(how, type) : this.m_get(how, type);
    }
    if (size <= L.MCLBYTES) return this.m_getcl(how, type, flags);
    if (size > L.MJUMPAGESIZE) return 0;
    return this.m_getjcl(how, type, flags, L.MJUMPAGESIZE);
  }

  /**
   * m_extadd: attach user storage [buf, buf+size) of the arena to m, freed by
   * the routine registered as `freeId` (registerExtFree) when the last
   * reference goes. ext type EXT_EXTREF unless given.
   */
  m_extadd(m: number, buf: number, size: number, freeId: number, arg1: number, arg2: number, flags: number, type: number = L.EXT_EXTREF): void {
    if ((this.i32[(m + M_FLAGS) >> 2] & M_EXT) !== 0) throw new ArgumentError('m_extadd: mbuf already has external storage');
    if (!Number.isInteger(buf) || buf <= 0 || !Number.isInteger(size) || size <= 0 || buf + size > this.uma.arena.size) {
      throw new ArgumentError(`m_extadd: storage [${buf}, +${size}) is not inside the arena`);
    }
    if (type !== L.EXT_DISPOSABLE && type !== L.EXT_EXTREF && type !== L.EXT_NET_DRV && type !== L.EXT_MOD_TYPE && type !== L.EXT_SFBUF) {
      throw new ArgumentError(`m_extadd: ext type ${type} is reserved for the mbuf allocator`);
    }
    if ((flags & EXT_FLAG_NOFREE) === 0 && this.extFree[freeId] === undefined) {
      throw new ArgumentError(`m_extadd: no free routine registered with id ${freeId} in this thread`);
    }
    this.attachExt(m, buf, size, type, EXT_FLAG_EMBREF | (flags & EXT_FLAG_NOFREE), freeId, arg1, arg2);
    this.i32[(m + M_FLAGS) >> 2] |= flags & M_RDONLY;
  }

  /**
   * Register an external free routine under an id, in this thread. Every
   * thread that may drop the last reference must register the same routine
   * under the same id (code cannot travel between workers).
   */
  registerExtFree(id: number, fn: ExtFreeFn): void {
    if (!Number.isInteger(id) || id <= 0 || id > 0xffff) throw new ArgumentError('ext free id must be an integer in 1..65535');
    this.extFree[id] = fn;
  }

  /** Fill the ext descriptor of m (its own counter at 1) and point m_data at the storage. */
  private attachExt(m: number, buf: number, size: number, type: number, eflags: number, freeId: number, a1: number, a2: number): void {
    const i32 = this.i32;
    const b = m >> 2;
    i32[b + (EXT_BUF >> 2)] = buf;
    i32[b + (EXT_SIZE >> 2)] = size;
    i32[b + (EXT_TYPE_OFF >> 2)] = type;
    i32[b + (EXT_FLAGS_OFF >> 2)] = eflags;
    i32[b + (EXT_CNT >> 2)] = m + EXT_COUNT;
    i32[b + (EXT_COUNT >> 2)] = 1;
    i32[b + (EXT_FREE >> 2)] = freeId;
    i32[b + (EXT_ARG1 >> 2)] = a1;
    i32[b + (EXT_ARG2 >> 2)] = a2;
    i32[b + (M_DATA >> 2)] = buf;
    i32[b + (M_FLAGS >> 2)] |= M_EXT;
  }

  // ------------------------------------------------------------------
  // Free
  // ------------------------------------------------------------------

  /**
   * m_free: free one mbuf (its tags with its pkthdr, its reference on any
   * external storage) and return its m_next. m == 0 is not allowed (as in
   * FreeBSD); use m_freem for possibly-null chains.
   */
  m_free(m: number): number {
    const i32 = this.i32;
    const b = m >> 2;
    const n = i32[b + (M_NEXT >> 2)];
    const flags = i32[b + (M_FLAGS >> 2)];
    i32[this.typeSlot + i32[b + (M_TYPE >> 2)]]--;
    // MT_NOTMBUF until allocated again: a holder of a stale handle can tell (ifnet input containment).
    i32[b + (M_TYPE >> 2)] = L.MT_NOTMBUF;
    if ((flags & M_PKTHDR) !== 0 && i32[b + (PH_TAGS >> 2)] !== 0) tagDeleteChainAll(this, m);
    if ((flags & M_EXT) === 0) {
      this.zMbuf.free(m);
    } else if (i32[b + (EXT_COUNT >> 2)] === 1 && i32[b + (EXT_TYPE_OFF >> 2)] === EXT_PACKET) {
      // The common case (mb_free_ext of an unshared packet-zone item, its own
      // counter at 1): nobody else holds a reference, no atomic is needed and
      // the descriptor is already as the packet zone keeps it. (Only an mref's
      // own ext_count word is ever non-zero: mb_dupcl zeroes the copy's.)
      this.zPack.free(m);
    } else {
      this.freeExt(m);
    }
    return n;
  }

  /** m_freem: free a whole chain (m_next links); 0 is allowed. */
  m_freem(m: number): void {
    while (m !== 0) m = this.m_free(m);
  }

  /** m_freem every packet of an m_nextpkt list. */
  m_freem_list(m: number): void {
    const i32 = this.i32;
    while (m !== 0) {
      const next = i32[(m + M_NEXTPKT) >> 2];
      this.m_freem(m);
      m = next;
    }
  }

  /**
   * mb_free_ext: drop m's reference on its storage. The thread whose
   * decrement takes the counter from 1 to 0 frees the storage and the mbuf
   * holding the counter (mref), exactly once: a reference we hold keeps the
   * counter's mbuf alive, and after our decrement we read nothing of it unless
   * we were last. A counter of 1 needs no atomic (nobody else can hold a
   * reference to add or drop). m itself is freed now unless it is the mref
   * of storage still referenced elsewhere.
   */
  private freeExt(m: number): void {
    const i32 = this.i32;
    const b = m >> 2;
    const eflags = i32[b + (EXT_FLAGS_OFF >> 2)];
    const cnt = i32[b + (EXT_CNT >> 2)];
    const mref = (eflags & EXT_FLAG_EMBREF) !== 0 ? m : cnt - EXT_COUNT;
    const ci = cnt >> 2;
    if (i32[ci] === 1 || Atomics.sub(i32, ci, 1) === 1) {
      const type = i32[b + (EXT_TYPE_OFF >> 2)];
      if (type === EXT_PACKET) {
        // Back to the packet zone with its descriptor intact (counter 1), as
        // mb_ctor_pack expects; an atomic release left the counter at 0.
        i32[ci] = 1;
        this.zPack.free(mref);
      } else {
        this.freeStorage(m, type);
        this.zMbuf.free(mref);
      }
    }
    if (m !== mref) this.zMbuf.free(m);
  }

  /** Give the external storage of m back (the last reference is gone). */
  private freeStorage(m: number, type: number): void {
    const i32 = this.i32;
    const b = m >> 2;
    const buf = i32[b + (EXT_BUF >> 2)];
    switch (type) {
      case EXT_CLUSTER:
        this.zClust.free(buf);
        return;
      case EXT_JUMBOP:
        this.zJumbop.free(buf);
        return;
      case EXT_JUMBO9:
        this.zJumbo9.free(buf);
        return;
      case EXT_JUMBO16:
        this.zJumbo16.free(buf);
        return;
      default: {
        if ((i32[b + (EXT_FLAGS_OFF >> 2)] & EXT_FLAG_NOFREE) !== 0) return;
        const id = i32[b + (EXT_FREE >> 2)];
        const fn = this.extFree[id];
        if (fn === undefined) throw new ArgumentError(`external storage of type ${type}: free routine ${id} is not registered in this thread`);
        fn(m, buf, i32[b + (EXT_ARG1 >> 2)], i32[b + (EXT_ARG2 >> 2)]);
      }
    }
  }

  /**
   * mb_dupcl: make n share m's external storage (one more reference). n must
   * have no storage of its own. The counter is m's (or the one m uses).
   */
  dupExt(n: number, m: number): void {
    const i32 = this.i32;
    const mb = m >> 2;
    const nb = n >> 2;
    const eflags = i32[mb + (EXT_FLAGS_OFF >> 2)];
    const cnt = i32[mb + (EXT_CNT >> 2)];
    for (let off = EXT_BUF; off < EXT_COUNT; off += 4) i32[nb + (off >> 2)] = i32[mb + (off >> 2)];
    i32[nb + (EXT_FLAGS_OFF >> 2)] = eflags & ~EXT_FLAG_EMBREF;
    i32[nb + (EXT_CNT >> 2)] = cnt;
    i32[nb + (EXT_COUNT >> 2)] = 0;
    const ci = cnt >> 2;
    if (i32[ci] === 1) i32[ci] = 2;
    else Atomics.add(i32, ci, 1);
    i32[nb + (M_FLAGS >> 2)] |= M_EXT | (i32[mb + (M_FLAGS >> 2)] & M_RDONLY);
  }

  /** Current reference count of m's external storage (0 without M_EXT). */
  extRefs(m: number): number {
    if ((this.i32[(m + M_FLAGS) >> 2] & M_EXT) === 0) return 0;
    return Atomics.load(this.i32, this.i32[(m + EXT_CNT) >> 2] >> 2);
  }

  // ------------------------------------------------------------------
  // Reclaim and limits
  // ------------------------------------------------------------------

  /** Register a protocol drain routine (pr_drain), run when mbuf memory is short. */
  registerDrain(fn: () => void): void {
    this.drainHooks.push(fn);
  }

  private runDrainHooks(): void {
    for (const fn of this.drainHooks) fn();
  }

  /**
   * mb_reclaim: run every protocol drain hook, then give the packet zone's
   * cached items (and so their clusters) back; other CPUs are asked to flush
   * theirs at their next operation. No lock held; does not sleep.
   */
  mbReclaim(): void {
    this.reclaimPending = false;
    this.shared.bumpReclaims();
    this.runDrainHooks();
    this.zPack.drain();
    this.zClust.drain();
  }

  /** Give this thread's packet-zone cache back (and with it the clusters it holds). */
  drainPacketCache(): void {
    this.zPack.drain();
  }

  // ------------------------------------------------------------------
  // Accessors (hot, no checks)
  // ------------------------------------------------------------------

  m_next(m: number): number {
    return this.i32[(m + M_NEXT) >> 2];
  }
  setNext(m: number, n: number): void {
    this.i32[(m + M_NEXT) >> 2] = n;
  }
  m_nextpkt(m: number): number {
    return this.i32[(m + M_NEXTPKT) >> 2];
  }
  setNextpkt(m: number, n: number): void {
    this.i32[(m + M_NEXTPKT) >> 2] = n;
  }
  m_len(m: number): number {
    return this.i32[(m + M_LEN) >> 2];
  }
  setLen(m: number, len: number): void {
    this.i32[(m + M_LEN) >> 2] = len;
  }
  /** m_data: arena byte offset of the first data byte. */
  m_data(m: number): number {
    return this.i32[(m + M_DATA) >> 2];
  }
  setData(m: number, off: number): void {
    this.i32[(m + M_DATA) >> 2] = off;
  }
  m_flags(m: number): number {
    return this.i32[(m + M_FLAGS) >> 2];
  }
  setFlags(m: number, flags: number): void {
    this.i32[(m + M_FLAGS) >> 2] = flags;
  }
  m_type(m: number): number {
    return this.i32[(m + M_TYPE) >> 2];
  }
  /** m_chtype: change the type (keeps the per-type counters right). */
  m_chtype(m: number, type: number): void {
    const i32 = this.i32;
    i32[this.typeSlot + i32[(m + M_TYPE) >> 2]]--;
    i32[(m + M_TYPE) >> 2] = type;
    i32[this.typeSlot + type]++;
  }
  pkthdrLen(m: number): number {
    return this.i32[(m + PH_LEN) >> 2];
  }
  setPkthdrLen(m: number, len: number): void {
    this.i32[(m + PH_LEN) >> 2] = len;
  }
  rcvif(m: number): number {
    return this.i32[(m + PH_RCVIF) >> 2];
  }
  setRcvif(m: number, ifindex: number): void {
    this.i32[(m + PH_RCVIF) >> 2] = ifindex;
  }
  extBuf(m: number): number {
    return this.i32[(m + EXT_BUF) >> 2];
  }
  extSize(m: number): number {
    return this.i32[(m + EXT_SIZE) >> 2];
  }
  extType(m: number): number {
    return this.i32[(m + EXT_TYPE_OFF) >> 2];
  }

  /** Per-type counts summed over every CPU (mbtypes). */
  typeCounts(): number[] {
    return this.shared.typeCounts();
  }

  /** Adjust the per-CPU count of a type (used when an mbuf is freed outside m_free). */
  countType(type: number, d: number): void {
    this.i32[this.typeSlot + type] += d;
  }

  /** Next value of this thread's seeded random source (xorshift32), in [0, 2^32). */
  random(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }
}

function extTypeOfSize(size: number): number {
  switch (size) {
    case L.MCLBYTES:
      return EXT_CLUSTER;
    case L.MJUMPAGESIZE:
      return EXT_JUMBOP;
    case L.MJUM9BYTES:
      return EXT_JUMBO9;
    default:
      return EXT_JUMBO16;
  }
}

/** Exactly one of M_NOWAIT / M_WAITOK (mbuf(9) requires a `how`). */
export function checkHow(how: number): void {
  const w = how & (M_NOWAIT | M_WAITOK);
  if (w !== M_NOWAIT && w !== M_WAITOK) throw new ArgumentError(`how must be M_NOWAIT or M_WAITOK, got ${how}`);
}

export function checkLen(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new ArgumentError(`${what} must be an integer >= 0, got ${n}`);
}
