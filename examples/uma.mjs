// UMA in one thread: a zone, an item as an integer handle, statistics.
import { Uma, M_NOWAIT, zoneStats, vmstatZ } from 'slabnet/uma';

const uma = Uma.create({ size: 64 << 20, ncpus: 4 }); // this thread is CPU 0
const zone = uma.zcreate('packets', { size: 2048 });
const item = zone.alloc(M_NOWAIT); // a byte offset into uma.arena.sab
uma.arena.u8.fill(0xab, item, item + 2048); // views are for the edges
zone.free(item);
console.log(`used ${zoneStats(zone).used}, requests ${zoneStats(zone).requests}`);
console.log(vmstatZ(uma).split('\n').filter((l) => /ITEM|packets/.test(l)).join('\n'));
