/** slabnet: public entry point. */
export * from './kern/errors.js';
export { Arena, type ArenaOptions } from './vm/arena.js';
export { PageAllocator } from './vm/pages.js';
export { Mutex } from './kern/lock/mutex.js';
export { witness } from './kern/lock/witness.js';
export * from './uma/flags.js';
export { Uma, type ZoneOptions } from './uma/uma.js';
export { Zone, type ZoneCallbacks } from './uma/zone.js';
export { Keg } from './uma/keg.js';
export { zoneStats, type ZoneStats } from './uma/stats.js';
export { Malloc, MALLOC_SIZES, mallocZoneName } from './uma/malloc.js';
export { vmstatZ, formatVmstatZ, formatVmstatRow, VMSTAT_Z_HEADER } from './uma/vmstat.js';
export { Sysctl, SysctlError, ctlName, formatEntries, type SysctlNodeSpec, type SysctlEntry, type SysctlType, type SysctlValue } from './kern/sysctl/sysctl.js';
export { registerTunable, tunableIndex, type Tunable, type TunableSpec } from './kern/sysctl/tunables.js';
export { sysctlFor, registerVmNodes } from './kern/sysctl/vm.js';
// mbufs (the whole mbuf(9) API as a namespace: slabnet.mbuf.m_getcl, ...)
export * as mbuf from './kern/mbuf/index.js';
export { Mbufs } from './kern/mbuf/mbuf.js';
// The MP core and the socket layer
export { Machine } from './kern/lwkt/machine.js';
export { SocketLayer } from './kern/socket/socket.js';
// The network stack on the MP core: two hosts on the CPUs, node:dgram-shaped sockets
export { startNet, netSetup, netQuiesce, HOST0, HOST1, NET_HANDLERS, type NetSystem } from './lib/netuser.js';
export { createSocket, UdpSocket } from './lib/udpuser.js';
export { startTapNet, TapNetError, type TapNetOptions } from './lib/tapnet.js';
// The stack in one thread (tests, simulations) and its in-memory link
export { Stack, type StackConfig } from './netinet/stack.js';
export { MemLink, type Impairment } from './net/phy/memlink.js';
export { createSocket as createStackSocket } from './lib/dgram.js';
export { PcapWriter } from './net/phy/pcap.js';
// The control socket (slabnet netstat/vmstat/sysctl/top attach to it)
export { openControl, ControlServer, CtlClient, CtlRemoteError, attach, listControlSockets, ctlDir, controlView, type CtlSystem, type ControlServerOptions } from './lib/ctl/index.js';
export { CTL_CODES, CTL_VERSION } from './kern/ctl/protocol.js';
