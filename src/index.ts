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
// mbufs (the whole mbuf(9) API as a namespace: slabnet.mbuf.m_getcl, ...)
export * as mbuf from './mbuf/index.js';
export { Mbufs } from './mbuf/mbuf.js';
// The MP core and the socket layer
export { Machine } from './mp/machine.js';
export { SocketLayer } from './socket/socket.js';
// The network stack on the MP core: two hosts on the CPUs, node:dgram-shaped sockets
export { startNet, netSetup, netQuiesce, HOST0, HOST1, NET_HANDLERS, type NetSystem } from './net/netuser.js';
export { createSocket, UdpSocket } from './net/udpuser.js';
export { startTapNet, TapNetError, type TapNetOptions } from './net/tapnet.js';
// The stack in one thread (tests, simulations) and its in-memory link
export { Stack, type StackConfig } from './net/stack.js';
export { MemLink, type Impairment } from './net/memlink.js';
export { createSocket as createStackSocket } from './net/dgram.js';
export { PcapWriter } from './pcap/pcap.js';
