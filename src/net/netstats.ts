/**
 * Network counters in the arena: every CPU's stack instance of every host
 * counts into its own block (zone "net stats", 128-byte aligned items whose
 * size is a multiple of 128, so no two CPUs ever write one cache line), with
 * plain Float64 increments and no lock or atomic. A reader in any thread
 * finds the blocks through a directory item (zone "net stats dir") and sums
 * them, as FreeBSD's counter(9) readers sum per-CPU counters.
 *
 * Block layout (Float64 slots, in this order): ipstat (IP_DESC), icmpstat
 * (ICMP_DESC), udpstat (UDP_DESC), arpstat (ARP_DESC), ether (ETHER_DESC),
 * then the interface counters (IFC_NAMES) of the host's interface; padded
 * to a multiple of 128 bytes.
 *
 * Directory (Int32 words): 0 magic "NSTD", 1 ncpus, 2 nhosts, 3 block bytes,
 * then the block handle of (host, cpu) at word 4 + host * ncpus + cpu.
 */
import type { Uma } from '../uma/uma.js';
import type { Zone } from '../uma/zone.js';
import { M_NOWAIT } from '../uma/flags.js';
import { ARP_DESC, ETHER_DESC, ICMP_DESC, IP_DESC, UDP_DESC, type NetStats, newStats } from '../netinet/stats.js';
import { IFC_NAMES } from './if.js';
import { ErrnoError, EINVAL, ENOBUFS } from '../kern/errno.js';

export const NS_ZONE = 'net stats';
export const NSD_ZONE = 'net stats dir';
/**
 * Bytes of a directory: room for 1020 block handles, so every machine size
 * (up to MC_MAX_CPUS = 200 CPUs) with up to 5 hosts fits. It was 256 bytes
 * (60 handles), which failed `--cpus 31` with two hosts.
 */
export const NSD_BYTES = 4096;
const NSD_MAGIC = 0x4e535444; // "NSTD"
const D_MAGIC = 0;
const D_NCPUS = 1;
const D_NHOSTS = 2;
const D_BLOCK = 3;
const D_HANDLES = 4;
export const NSD_MAX_BLOCKS = NSD_BYTES / 4 - D_HANDLES;

const SECTIONS = [IP_DESC.length, ICMP_DESC.length, UDP_DESC.length, ARP_DESC.length, ETHER_DESC.length, IFC_NAMES.length];
const SLOTS = SECTIONS.reduce((a, b) => a + b, 0);
/** Bytes of one CPU's block: a multiple of the 128-byte padding. */
export const NS_BLOCK_BYTES = Math.ceil((SLOTS * 8) / 128) * 128;

function zoneOf(uma: Uma, name: string, size: number, align: number): Zone {
  return uma.zfindOrCreate(name, { size, align });
}

/** The views of one block: the stack's counters and the interface's. */
export interface StatBlock {
  stats: NetStats;
  ifc: Float64Array;
}

/** Float64 views over the block at `h` (any thread). */
export function blockViews(sab: SharedArrayBuffer, h: number): StatBlock {
  let o = h;
  const take = (n: number): Float64Array => {
    const v = new Float64Array(sab, o, n);
    o += n * 8;
    return v;
  };
  const stats: NetStats = { ip: take(SECTIONS[0]), icmp: take(SECTIONS[1]), udp: take(SECTIONS[2]), arp: take(SECTIONS[3]), ether: take(SECTIONS[4]) };
  return { stats, ifc: take(SECTIONS[5]) };
}

/** Allocate a zeroed directory and its blocks for nhosts x ncpus (main thread, before NET_SETUP). */
export function allocStatDir(uma: Uma, ncpus: number, nhosts: number): number {
  if (!Number.isInteger(ncpus) || !Number.isInteger(nhosts) || ncpus < 1 || nhosts < 1) throw new ErrnoError(EINVAL, `net stats for ${ncpus} CPUs x ${nhosts} hosts`);
  if (ncpus * nhosts > NSD_MAX_BLOCKS) throw new ErrnoError(ENOBUFS, `net stats for ${ncpus} CPUs x ${nhosts} hosts: at most ${NSD_MAX_BLOCKS} blocks`);
  const dz = zoneOf(uma, NSD_ZONE, NSD_BYTES, 128);
  const bz = zoneOf(uma, NS_ZONE, NS_BLOCK_BYTES, 128);
  const i32 = new Int32Array(uma.arena.sab);
  const d = dz.alloc(M_NOWAIT);
  if (d === 0) throw new ErrnoError(ENOBUFS, 'net stats directory');
  i32.fill(0, d >> 2, (d + NSD_BYTES) >> 2);
  i32[(d >> 2) + D_NCPUS] = ncpus;
  i32[(d >> 2) + D_NHOSTS] = nhosts;
  i32[(d >> 2) + D_BLOCK] = NS_BLOCK_BYTES;
  for (let k = 0; k < ncpus * nhosts; k++) {
    const b = bz.alloc(M_NOWAIT);
    if (b === 0) {
      freeStatDir(uma, d);
      throw new ErrnoError(ENOBUFS, 'net stats block');
    }
    new Uint8Array(uma.arena.sab, b, NS_BLOCK_BYTES).fill(0);
    i32[(d >> 2) + D_HANDLES + k] = b;
  }
  i32[(d >> 2) + D_MAGIC] = NSD_MAGIC;
  return d;
}

/** Free a directory and its blocks (after every CPU stopped counting into them). */
export function freeStatDir(uma: Uma, d: number): void {
  const i32 = new Int32Array(uma.arena.sab);
  const dz = zoneOf(uma, NSD_ZONE, NSD_BYTES, 128);
  const bz = zoneOf(uma, NS_ZONE, NS_BLOCK_BYTES, 128);
  const n = i32[(d >> 2) + D_NCPUS] * i32[(d >> 2) + D_NHOSTS];
  for (let k = 0; k < n; k++) {
    const b = i32[(d >> 2) + D_HANDLES + k];
    if (b !== 0) bz.free(b);
  }
  i32[(d >> 2) + D_MAGIC] = 0;
  dz.free(d);
}

/** The block of (host, cpu), or null when d is not a directory or out of range. */
export function statBlock(sab: SharedArrayBuffer, d: number, host: number, cpu: number): StatBlock | null {
  const i32 = new Int32Array(sab);
  if (d === 0 || i32[(d >> 2) + D_MAGIC] !== NSD_MAGIC) return null;
  const ncpus = i32[(d >> 2) + D_NCPUS];
  if (host < 0 || host >= i32[(d >> 2) + D_NHOSTS] || cpu < 0 || cpu >= ncpus) return null;
  return blockViews(sab, i32[(d >> 2) + D_HANDLES + host * ncpus + cpu]);
}

/** Sum the counters of `host` over every CPU (any thread, no lock). */
export function sumHost(sab: SharedArrayBuffer, d: number, host: number): StatBlock & { perCpu: StatBlock[] } {
  const ncpus = new Int32Array(sab)[(d >> 2) + D_NCPUS];
  const out: StatBlock & { perCpu: StatBlock[] } = { stats: newStats(), ifc: new Float64Array(IFC_NAMES.length), perCpu: [] };
  for (let c = 0; c < ncpus; c++) {
    const b = statBlock(sab, d, host, c);
    if (b === null) continue;
    out.perCpu.push(b);
    for (const k of Object.keys(out.stats) as (keyof NetStats)[]) for (let i = 0; i < out.stats[k].length; i++) out.stats[k][i] += b.stats[k][i];
    for (let i = 0; i < out.ifc.length; i++) out.ifc[i] += b.ifc[i];
  }
  return out;
}

/** `netstat -i` for the summed interface counters of each host. */
export function formatNetstatI(rows: { name: string; mtu: number; addr: string; ifc: Float64Array }[]): string {
  const h = `${'Name'.padEnd(8)}${'Mtu'.padStart(6)} ${'Address'.padEnd(16)}${'Ipkts'.padStart(10)}${'Ierrs'.padStart(7)}${'Idrop'.padStart(7)}${'Ibytes'.padStart(12)}${'Opkts'.padStart(10)}${'Oerrs'.padStart(7)}${'Odrop'.padStart(7)}${'Obytes'.padStart(12)}`;
  const lines = [h];
  for (const r of rows) {
    const c = r.ifc;
    lines.push(`${r.name.padEnd(8)}${String(r.mtu).padStart(6)} ${r.addr.padEnd(16)}${String(c[0]).padStart(10)}${String(c[2]).padStart(7)}${String(c[3]).padStart(7)}${String(c[1]).padStart(12)}${String(c[4]).padStart(10)}${String(c[6]).padStart(7)}${String(c[7]).padStart(7)}${String(c[5]).padStart(12)}`);
  }
  return lines.join('\n');
}
