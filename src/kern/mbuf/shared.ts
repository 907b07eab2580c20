/**
 * The mbuf system's shared state in the arena: tunables every worker must
 * see (kern.ipc.m_defragrandomfailures, net.inet.ip.mbuf_frag_size), the
 * m_defrag counters, MAC's "label mbufs" flag, and one 128-byte slot per CPU
 * of per-type counts (mbtypes) that each CPU updates without atomics and
 * readers sum (the seed's TODO on per-type statistics).
 *
 * The region is a page run taken from the page allocator by the first thread;
 * its byte offset is published in one arena header word, MB_REGION_WORD (the
 * last word of the arena's tunables area, H_TUNABLES .. H_TUNABLES_END), so
 * that workers find it by Mbufs.attach.
 *
 * Locking: tunables are single words read with plain loads and written with
 * Atomics.store; counters of rare events use Atomics.add; the per-CPU slots
 * are written only by their CPU.
 */
import { H_TUNABLES_END, MAX_CPUS, PAGE_SIZE, CPU_SLOT_BYTES } from '../../vm/layout.js';
import { ArgumentError, OutOfMemoryError } from '../errors.js';
import type { Uma } from '../../uma/uma.js';
import { MT_NTYPES } from './layout.js';

/** Arena header word holding the byte offset of the mbuf region. */
export const MB_REGION_WORD = H_TUNABLES_END - 1;
export const MB_MAGIC = 0x4d425546; // "MBUF"

// Int32 word indices inside the region.
const R_MAGIC = 0;
export const R_DEFRAG_RANDOM_FAILURES = 1;
export const R_MBUF_FRAG_SIZE = 2;
export const R_DEFRAG_PACKETS = 3;
export const R_DEFRAG_BYTES = 4;
export const R_DEFRAG_USELESS = 5;
export const R_DEFRAG_FAILURE = 6;
export const R_LABEL_MBUFS = 7;
export const R_RECLAIMS = 8;
export const R_DUP_FAILS = 9;
export const R_SFBUF_DENIED = 10;
export const R_SFBUF_DELAYED = 11;
export const R_FRAGMENT_CALLS = 12;
/** Byte offset of the per-CPU type slots from the region start. */
const SLOTS_OFF = 256;

export class MbufShared {
  readonly region: number;
  private readonly base: number; // Int32 index of the region
  private readonly i32: Int32Array;
  private readonly ncpus: number;

  private constructor(uma: Uma, region: number) {
    this.region = region;
    this.base = region >> 2;
    this.i32 = uma.arena.i32;
    // Only as many slots as create() made room for.
    this.ncpus = Math.min(uma.arena.ncpusMax, MAX_CPUS);
    if (this.i32[this.base + R_MAGIC] !== MB_MAGIC) throw new ArgumentError('mbuf shared region is corrupt (bad magic)');
    if (MT_NTYPES * 4 > CPU_SLOT_BYTES) throw new ArgumentError('per-type counters do not fit a CPU slot');
  }

  /** Take and format the region (first thread). */
  static create(uma: Uma): MbufShared {
    const i32 = uma.arena.i32;
    if (i32[MB_REGION_WORD] !== 0) throw new ArgumentError('the mbuf system of this arena is already created (use Mbufs.attach)');
    const bytes = SLOTS_OFF + Math.min(uma.arena.ncpusMax, MAX_CPUS) * CPU_SLOT_BYTES;
    const npages = Math.ceil(bytes / PAGE_SIZE);
    const off = uma.pages.allocRun(npages);
    if (off === 0) throw new OutOfMemoryError('no pages left for the mbuf shared region');
    i32.fill(0, off >> 2, (off + npages * PAGE_SIZE) >> 2);
    i32[(off >> 2) + R_MAGIC] = MB_MAGIC;
    Atomics.store(i32, MB_REGION_WORD, off);
    return new MbufShared(uma, off);
  }

  /** Find the region made by create (any other thread). */
  static attach(uma: Uma): MbufShared {
    const off = Atomics.load(uma.arena.i32, MB_REGION_WORD);
    if (off === 0) throw new ArgumentError('no mbuf system in this arena: call Mbufs.create in the first thread');
    return new MbufShared(uma, off);
  }

  /** Int32 index of a CPU's per-type counter slot. */
  typeSlot(cpu: number): number {
    return (this.region + SLOTS_OFF + cpu * CPU_SLOT_BYTES) >> 2;
  }

  /**
   * Sum every CPU's per-type counts (mbtypes). Each slot is written only by
   * its CPU with plain stores, so one CPU's word goes negative when it frees
   * mbufs another CPU allocated; only the sum means anything. Read without
   * locks: while other CPUs run, the sum may be a few operations stale.
   */
  typeCounts(): number[] {
    const out = new Array<number>(MT_NTYPES).fill(0);
    for (let cpu = 0; cpu < this.ncpus; cpu++) {
      const s = this.typeSlot(cpu);
      for (let t = 0; t < MT_NTYPES; t++) out[t] += this.i32[s + t];
    }
    return out;
  }

  get(word: number): number {
    return Atomics.load(this.i32, this.base + word);
  }
  set(word: number, v: number): void {
    Atomics.store(this.i32, this.base + word, v);
  }
  add(word: number, d: number): void {
    Atomics.add(this.i32, this.base + word, d);
  }

  /** Int32 index of the mac_labelmbufs word (cached by the allocation fast path). */
  get labelIndex(): number {
    return this.base + R_LABEL_MBUFS;
  }

  /** mac_labelmbufs: read without a lock on the allocation path (as MAC does). */
  get labelMbufs(): number {
    return this.i32[this.base + R_LABEL_MBUFS];
  }

  bumpReclaims(): void {
    Atomics.add(this.i32, this.base + R_RECLAIMS, 1);
  }
}
