/**
 * The system a CLI command works on: one arena with its UMA, the malloc zones,
 * the demo's packet zone and this thread's sysctl tree. Later layers (mbuf,
 * the MP core, the network stack) add their setup here, so that `vmstat -z`,
 * `sysctl` and `netstat` all look at the same kind of system the demo runs.
 */
import { Uma } from '../uma/uma.js';
import { Malloc } from '../uma/malloc.js';
import { UMA_ZFLAG_INTERNAL } from '../uma/flags.js';
import { zoneStats } from '../uma/stats.js';
import { sysctlFor } from '../kern/sysctl/vm.js';
import type { Sysctl } from '../kern/sysctl/sysctl.js';
import type { Zone } from '../uma/zone.js';
import { DEMO_ITEM, DEMO_ZONE } from './demo-protocol.js';
import { registerStackSysctls } from '../netinet/tunables.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';

export interface SystemOptions {
  /** Arena bytes (default 64 MiB). */
  size?: number;
  /** CPUs the arena is made for (main thread + workers). */
  ncpus?: number;
  debug?: boolean;
}

export interface System {
  uma: Uma;
  malloc: Malloc;
  sysctl: Sysctl;
  /** The demo's packet zone (256-byte items). */
  packets: Zone;
  /** The mbuf zones (their limits are kern.ipc.* sysctls). */
  mb: Mbufs;
  /** Pages outside any keg once set up (layers' shared state): the leak baseline. */
  pagesOutsideKegsAtStart: number;
}

/** Make the arena, UMA, malloc, the demo zone and the sysctl tree (main thread = CPU 0). */
export function createSystem(opts: SystemOptions = {}): System {
  const uma = Uma.create({ size: opts.size ?? 64 << 20, ncpus: opts.ncpus ?? 8, debug: opts.debug ?? false });
  const malloc = new Malloc(uma);
  const packets = uma.zcreate(DEMO_ZONE, { size: DEMO_ITEM });
  const mb = Mbufs.create(uma);
  const sysctl = sysctlFor(uma);
  // Every layer's limits and tunables (arena words every CPU reads).
  registerStackSysctls(sysctl, uma.arena, mb);
  const sys = { uma, malloc, packets, sysctl, mb, pagesOutsideKegsAtStart: 0 };
  sys.pagesOutsideKegsAtStart = pagesOutsideKegs(uma);
  return sys;
}

/** Zones other than UMA's own, with items still in use: a leak when the system should be idle. */
export function leakedZones(sys: System): { name: string; used: number }[] {
  return sys.uma
    .allZones()
    .filter((z) => (z.flags & UMA_ZFLAG_INTERNAL) === 0)
    .map((z) => ({ name: z.name, used: zoneStats(z).used }))
    .filter((x) => x.used !== 0);
}

/** Pages in use that no keg accounts for (malloc page runs, layers' shared state). */
function pagesOutsideKegs(uma: Uma): number {
  const kegPages = uma.allZones().filter((z) => !z.secondary).reduce((a, z) => a + z.keg.pagesHeld, 0);
  return uma.pages.dataPages - uma.pages.freePages - kegPages;
}

/** Pages outside any keg beyond those the system started with: leaked malloc page runs. */
export function leakedPages(sys: System): number {
  return pagesOutsideKegs(sys.uma) - sys.pagesOutsideKegsAtStart;
}
