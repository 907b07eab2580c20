/**
 * The `vm.*` branch: one `vm.uma.<zone>` subtree per zone (after FreeBSD's
 * zone_alloc_sysctl), `vm.zone_warnings`, page statistics, and the CPU count.
 *
 * Every value is read from (and written to) the arena, so the tree of any
 * thread shows the same numbers; zones made by other threads appear at the
 * next lookup. Zone names become sysctl names with `./\ -` replaced by `_`
 * and a `_N` suffix for duplicates, as in FreeBSD.
 *
 * Locking: reads take no lock (Atomics loads, per-CPU counters summed);
 * limit.max_items takes the zone lock through Zone.setMaxItems. No sleeping.
 */
import { H_PAGE_FAILS, H_PAGE_FREE, H_PAGES_INUSE, H_ZONE_WARNINGS, PAGE_SIZE } from '../../vm/layout.js';
import { BUCKET_MAX } from '../../uma/bucket.js';
import {
  UMA_ZFLAG_INTERNAL,
  UMA_ZONE_CONTIG,
  UMA_ZONE_NOBUCKET,
  UMA_ZONE_NOFREE,
  UMA_ZONE_OFFPAGE,
  UMA_ZONE_REFCNT,
  UMA_ZONE_SECONDARY,
  UMA_ZONE_ZINIT,
} from '../../uma/flags.js';
import { zoneStats } from '../../uma/stats.js';
import type { Uma } from '../../uma/uma.js';
import type { Zone } from '../../uma/zone.js';
import { ctlName, Sysctl, type SysctlNodeSpec } from './sysctl.js';

const FLAG_NAMES: [number, string][] = [
  [UMA_ZONE_ZINIT, 'ZINIT'],
  [UMA_ZONE_OFFPAGE, 'OFFPAGE'],
  [UMA_ZONE_NOFREE, 'NOFREE'],
  [UMA_ZONE_NOBUCKET, 'NOBUCKET'],
  [UMA_ZONE_REFCNT, 'REFCNT'],
  [UMA_ZONE_CONTIG, 'CONTIG'],
  [UMA_ZONE_SECONDARY, 'SECONDARY'],
  [UMA_ZFLAG_INTERNAL, 'INTERNAL'],
];

/** Zone flags as FreeBSD's sysctl_handle_uma_zone_flags prints them: names joined by ','. */
export function zoneFlagsString(flags: number): string {
  return FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0)
    .map(([, n]) => n)
    .join(',');
}

/** sysctl names of the zones, in creation order, with `_N` suffixes for duplicates. */
export function zoneCtlNames(zones: readonly Zone[]): string[] {
  const seen = new Map<string, number>();
  return zones.map((z) => {
    const base = ctlName(z.name);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return n === 0 ? base : ctlName(`${z.name}_${n}`);
  });
}

/** The leaves of one zone's subtree `vm.uma.<ctl>.*`. */
export function zoneNodes(zone: Zone, ctl: string): SysctlNodeSpec[] {
  const p = `vm.uma.${ctl}`;
  const keg = zone.keg;
  const st = () => zoneStats(zone);
  const int = (name: string, description: string, get: () => number, extra: Partial<SysctlNodeSpec> = {}): SysctlNodeSpec => ({
    name: `${p}.${name}`,
    type: 'int',
    description,
    get,
    ...extra,
  });
  return [
    int('size', 'Allocation size', () => keg.size),
    { name: `${p}.flags`, type: 'string', description: 'Allocator configuration flags', get: () => zoneFlagsString(zone.flags) },
    int('bucket_size', 'Desired per-cpu cache size', () => zone.bucketSize, {
      min: 0,
      max: BUCKET_MAX,
      set: (v) => {
        zone.bucketSize = v as number;
      },
    }),
    int('bucket_size_max', 'Maximum allowed per-cpu cache size', () => zone.bucketMax),
    int('limit.max_items', 'Maximum number of allocated and cached items (0: no limit)', () => zone.getMaxItems(), {
      min: 0,
      max: 0x7fff_ffff,
      set: (v) => zone.setMaxItems(v as number),
    }),
    int('limit.items', 'Current number of allocated and cached items', () => zone.items),
    int('limit.sleepers', 'Number of threads sleeping at limit', () => zone.sleepers),
    int('limit.sleeps', 'Total zone limit sleeps', () => st().sleeps),
    int('limit.hits', 'Times an allocation found the zone at its limit', () => zone.limitHits),
    {
      name: `${p}.limit.warning`,
      type: 'string',
      description: 'Text of the limit warning (uma_zone_set_warning)',
      get: () => zone.warning,
      set: (v) => {
        zone.warning = v as string;
      },
    },
    { name: `${p}.keg.name`, type: 'string', description: 'Keg name', get: () => keg.name },
    int('keg.rsize', 'Real object size with alignment', () => keg.rsize),
    int('keg.ppera', 'pages per-slab allocation', () => keg.ppera),
    int('keg.ipers', 'items available per-slab', () => keg.ipers),
    int('keg.pages', 'Total pages currently allocated from VM', () => keg.pagesHeld),
    int('keg.free_items', 'Items free in the slab layer', () => keg.freeItems),
    int('keg.efficiency', 'Slab utilization (100 - internal fragmentation %)', () =>
      Math.floor((100 * keg.ipers * keg.rsize) / (keg.ppera * PAGE_SIZE)),
    ),
    int('keg.reserve', 'number of reserved items', () => keg.reserve, {
      min: 0,
      max: 0x7fff_ffff,
      set: (v) => zone.reserve(v as number),
    }),
    int('stats.current', 'Current number of allocated items', () => st().used),
    int('stats.allocs', 'Total allocation calls', () => st().requests),
    int('stats.frees', 'Total free calls', () => {
      const s = st();
      return s.requests - s.used;
    }),
    int('stats.fails', 'Number of allocation failures', () => st().fails),
    int('stats.sleeps', 'Number of sleeps', () => st().sleeps),
    int('stats.xdomain', 'Free calls from the wrong CPU', () => st().xdomain),
  ];
}

/**
 * Register the vm branch for `uma` on a tree: the per-zone provider and the
 * global nodes. Called once per tree (sysctlFor does it).
 */
export function registerVmNodes(sysctl: Sysctl, uma: Uma): void {
  const arena = uma.arena;
  const i32 = arena.i32;
  sysctl.registerProvider('vm.uma', () => {
    const zones = uma.allZones();
    const names = zoneCtlNames(zones);
    return zones.flatMap((z, k) => zoneNodes(z, names[k]));
  });
  sysctl.registerNode({
    name: 'vm.zone_warnings',
    type: 'int',
    description: 'Warn when UMA zones becomes full',
    min: 0,
    max: 1,
    get: () => Atomics.load(i32, H_ZONE_WARNINGS),
    set: (v) => Atomics.store(i32, H_ZONE_WARNINGS, v as number),
  });
  const ro = (name: string, description: string, get: () => number) => sysctl.registerNode({ name, type: 'int', description, get });
  ro('vm.stats.page.size', 'Page size in bytes', () => PAGE_SIZE);
  ro('vm.stats.page.count', 'Data pages in the arena', () => uma.pages.dataPages);
  ro('vm.stats.page.free', 'Free data pages', () => Atomics.load(i32, H_PAGE_FREE));
  ro('vm.stats.page.inuse', 'Data pages in use (slabs and large runs)', () => Atomics.load(i32, H_PAGES_INUSE));
  ro('vm.stats.page.fails', 'Failed page-run allocations after reclaim', () => Atomics.load(i32, H_PAGE_FAILS));
  ro('hw.ncpu', 'Number of CPUs the arena was made for', () => arena.ncpusMax);
  ro('kern.smp.cpus', 'Number of CPUs registered so far', () => arena.ncpusRegistered);
  ro('vm.debug', 'Debug mode of the arena (witness, trash checks)', () => (arena.debug ? 1 : 0));
}

const trees = new WeakMap<Uma, Sysctl>();

/**
 * This thread's sysctl tree for a UMA, made on first use with the vm branch
 * registered. Other layers given the same Uma register their nodes on it.
 */
export function sysctlFor(uma: Uma): Sysctl {
  let t = trees.get(uma);
  if (t === undefined) {
    t = new Sysctl();
    registerVmNodes(t, uma);
    trees.set(uma, t);
  }
  return t;
}
