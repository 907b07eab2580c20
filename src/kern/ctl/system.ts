/**
 * What the control socket needs of a running slabnet system: the small
 * interface a system provides (sysctl tree, the arena's counters, the PCB
 * list, interfaces, routes, ARP, per-CPU load, capture). The control server
 * (server.ts, ops.ts) knows nothing else; src/lib/ctl/adapter.ts implements
 * it for what startNet / startTapNet return.
 *
 * Readers of the arena (stats, interfaces, cpuLoad, the zones behind
 * vmstat -z and netstat -m) run in the serving thread with no lock and
 * never message a CPU. pcbs, routes, arp and pcap ask the CPUs (one small
 * message each) and are async.
 */
import type { Sysctl } from '../sysctl/sysctl.js';
import type { Uma } from '../../uma/uma.js';
import type { Mbufs } from '../mbuf/mbuf.js';
import type { NetStats } from '../../netinet/stats.js';
import type { PcbRow } from '../../netinet/udp_socket.js';

/** A host (one stack, instantiated on every CPU). */
export interface CtlHost {
  index: number;
  /** A label (e.g. "host1", the TAP's name). */
  name: string;
}

/** An interface of a host, with its if_data counters summed over the CPUs (IFC_NAMES order). */
export interface CtlInterface {
  name: string;
  host: number;
  mtu: number;
  /** Dotted quad of the primary address ('' if none). */
  addr: string;
  /** 48-bit MAC as a number. */
  mac: number;
  counters: Float64Array;
}

export interface CtlRoute {
  host: number;
  dst: number;
  prefix: number;
  /** 0 for a directly connected network. */
  gateway: number;
  ifname: string;
}

export interface CtlArpEntry {
  host: number;
  ip: number;
  mac: number;
  /** Seconds until it expires; -1 for a permanent entry. */
  expires: number;
  incomplete: boolean;
  ifname: string;
}

/** A TCP connection (or listener) of a host, from the CPU that owns it. */
export interface CtlTcpConn {
  cpu: number;
  host: number;
  laddr: number;
  lport: number;
  faddr: number;
  fport: number;
  /** TCPS_* (tcp_fsm.ts). */
  state: number;
  recvQ: number;
  sendQ: number;
}

/** Cumulative load counters of one CPU's protocol thread (lwkt layout P_STAT_*), uint32 that wrap. */
export interface CtlCpuLoad {
  cpu: number;
  handled: number;
  busyUs: number;
  sleeps: number;
}

export interface CtlSystem {
  /** What kind of system this is ("net", "tap", ...). */
  readonly kind: string;
  readonly ncpus: number;
  readonly uma: Uma;
  readonly mb: Mbufs;
  /** The serving thread's sysctl tree (values are arena words every CPU reads). */
  readonly sysctl: Sysctl;
  hosts(): CtlHost[];
  /** netstat -s counters of a host summed over every CPU from the arena. */
  stats(host: number): NetStats;
  interfaces(): CtlInterface[];
  cpuLoad(): CtlCpuLoad[];
  pcbs(): Promise<PcbRow[]>;
  /** struct tcpstat of a host (TCP_DESC order), summed over the CPUs. */
  tcpStats(host: number): Promise<Float64Array>;
  /** Every TCP PCB of every host (listeners, connections, TIME_WAIT). */
  tcpConns(): Promise<CtlTcpConn[]>;
  /** tcpdrop: drop the connection wherever it lives; false when no CPU has it. */
  tcpDrop(host: number, laddr: number, lport: number, faddr: number, fport: number): Promise<boolean>;
  routes(host: number): Promise<CtlRoute[]>;
  arp(host: number): Promise<CtlArpEntry[]>;
  /** Start capturing every interface of `host` to `path` (one file; packets of every CPU). */
  pcapStart(host: number, path: string, snaplen?: number): Promise<void>;
  /** Stop that capture: the packets written. */
  pcapStop(host: number): Promise<{ path: string; packets: number }>;
}
