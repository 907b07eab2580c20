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
