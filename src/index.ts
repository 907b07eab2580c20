/** slabnet: public entry point. */
export * from './errors.js';
export { Arena, type ArenaOptions } from './arena/arena.js';
export { PageAllocator } from './arena/pages.js';
export { Mutex } from './sync/mutex.js';
export { witness } from './sync/witness.js';
export * from './uma/flags.js';
export { Uma, type ZoneOptions } from './uma/uma.js';
export { Zone, type ZoneCallbacks } from './uma/zone.js';
export { Keg } from './uma/keg.js';
export { zoneStats, type ZoneStats } from './uma/stats.js';
export { Malloc, MALLOC_SIZES, mallocZoneName } from './uma/malloc.js';
export { vmstatZ, formatVmstatZ, formatVmstatRow, VMSTAT_Z_HEADER } from './uma/vmstat.js';
export { Sysctl, SysctlError, ctlName, formatEntries, type SysctlNodeSpec, type SysctlEntry, type SysctlType, type SysctlValue } from './sysctl/sysctl.js';
export { registerTunable, tunableIndex, type Tunable, type TunableSpec } from './sysctl/tunables.js';
export { sysctlFor, registerVmNodes } from './sysctl/vm.js';
