/**
 * slabnet: the network stack as a product. A System (one thread, or worker
 * CPUs) holds stacks with interfaces (in-memory links, loopback, TAP, user
 * devices), each with addresses, routes, static ARP, fault injection and
 * pcap; node:dgram-shaped sockets; the errors; the tools (netstat, vmstat,
 * sysctl). The allocator has its own entries: 'slabnet/uma' and 'slabnet/mbuf'.
 */
// Errors
export * from './kern/errors.js';
export { ErrnoError, errnoName } from './kern/errno.js';
export { MachineError } from './kern/lwkt/machine.js';
// The system API
export {
  System,
  NetStack,
  Interface,
  parseCidr,
  parseMac,
  type SystemOptions,
  type ClockKind,
  type InterfaceOptions,
  type LinkOptions,
  type StackSpec,
  type UserDeviceSpec,
  type TapSpec,
  type SystemSocket,
} from './lib/topology.js';
// Sockets: towards the CPUs (createSocket) and on a single-thread stack (createStackSocket)
export { createSocket, UdpSocket } from './lib/udpuser.js';
export { createSocket as createStackSocket, Socket as StackSocket, type RemoteInfo } from './lib/dgram.js';
// The building blocks, for hand-made set-ups
export { Stack, type StackConfig, type StackOptions } from './netinet/stack.js';
export { Ifnet, loopbackIf, IFT_ETHER, IFT_LOOP, IFT_PROPVIRTUAL } from './net/if.js';
export { MemLink, type Impairment } from './net/phy/memlink.js';
export { FaultInjector, FaultQueue, type FaultOptions, type FaultStats } from './net/phy/fault.js';
export { UserDevice, type UserDeviceOptions, type UserDeviceFraming } from './net/phy/userdev.js';
export { PcapWriter, readPcap } from './net/phy/pcap.js';
export { LocalThread, type NetThread } from './kern/lwkt/netthread.js';
export { ManualClock, realClock, type Clock } from './kern/clock.js';
export { Machine } from './kern/lwkt/machine.js';
export { SocketLayer } from './kern/socket/socket.js';
export { Uma } from './uma/uma.js';
// The classic two-host and TAP set-ups (thin wrappers of System)
export { startNet, netSetup, netQuiesce, pcbList, formatNetstatAn, HOST0, HOST1, NET_HANDLERS, type NetSystem } from './lib/netuser.js';
export { startTapNet, TapNetError, formatTapQueues, type TapNetOptions } from './lib/tapnet.js';
// Applications that run in a stack's thread
export { echoServer, dnsServer, udpServer, type UdpServer, type ServerStats } from './apps/servers.js';
export { loadGen, type LoadGenOptions, type LoadGenResult } from './apps/loadgen.js';
export { dnsQuery, dnsAnswer, dnsParseAnswer } from './apps/dns.js';
// Tools
export { formatNetstatS, statObject, IP_DESC, ICMP_DESC, UDP_DESC, ARP_DESC, type NetStats } from './netinet/stats.js';
export { formatNetstatI } from './net/netstats.js';
export { netstatM } from './kern/mbuf/stats.js';
export { vmstatZ } from './uma/vmstat.js';
export { Sysctl, SysctlError } from './kern/sysctl/sysctl.js';
export { sysctlFor } from './kern/sysctl/vm.js';
// Back-compat: the allocator and mbufs as before (prefer 'slabnet/uma' and 'slabnet/mbuf')
export * as uma from './uma/index.js';
export * as mbuf from './kern/mbuf/index.js';
export { Mbufs } from './kern/mbuf/mbuf.js';
export { M_NOWAIT, M_WAITOK, M_ZERO } from './uma/flags.js';
export { zoneStats } from './uma/stats.js';
// TCP for Node code: node:net-shaped sockets (net.createServer, net.connect) and Node's http on them
export * as net from './lib/net.js';
export { serveHttp, Agent as HttpAgent, createConnectionFor } from './lib/http.js';
// The control socket (slabnet netstat/vmstat/sysctl/top attach to it)
export { openControl, ControlServer, CtlClient, CtlRemoteError, attach, listControlSockets, ctlDir, controlView, serveMetrics, type CtlSystem, type ControlServerOptions } from './lib/ctl/index.js';
export { CTL_CODES, CTL_VERSION } from './kern/ctl/protocol.js';
