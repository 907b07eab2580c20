/** slabnet/uma: the allocator on its own (arena, pages, UMA zones, malloc, statistics, locks, sysctl). */
export { Arena, type ArenaOptions } from '../vm/arena.js';
export { PageAllocator } from '../vm/pages.js';
export { Mutex } from '../kern/lock/mutex.js';
export { witness } from '../kern/lock/witness.js';
export * from './flags.js';
export { Uma, type ZoneOptions } from './uma.js';
export { Zone, type ZoneCallbacks } from './zone.js';
export { Keg } from './keg.js';
export { zoneStats, type ZoneStats } from './stats.js';
export { Malloc, MALLOC_SIZES, mallocZoneName } from './malloc.js';
export { vmstatZ, formatVmstatZ, formatVmstatRow, VMSTAT_Z_HEADER } from './vmstat.js';
export { Sysctl, SysctlError, ctlName, formatEntries, type SysctlNodeSpec, type SysctlEntry, type SysctlType, type SysctlValue } from '../kern/sysctl/sysctl.js';
export { registerTunable, tunableIndex, type Tunable, type TunableSpec } from '../kern/sysctl/tunables.js';
export { sysctlFor, registerVmNodes } from '../kern/sysctl/vm.js';
export * from '../kern/errors.js';
