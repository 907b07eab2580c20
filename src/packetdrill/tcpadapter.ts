/**
 * The stack's TCP as the runner's PdTcp (tcpapi.ts). slabnet's TCP
 * (src/netinet/tcp_usrreq.ts) is being written on its own branch; until it
 * is in this tree the stack has no TCP and stackTcp() answers null, so every
 * script's socket() fails with EPROTONOSUPPORT and the corpus runs to that
 * point honestly.
 */
import type { SysctlNodeSpec } from '../kern/sysctl/sysctl.js';
import type { PdNet } from './netif.js';
import type { PdTcp } from './tcpapi.js';

export interface TcpUnderTest {
  tcp: PdTcp;
  /** The TCP's sysctl nodes (net.inet.tcp.*), registered on the run's tree. */
  sysctlNodes: SysctlNodeSpec[];
  /** Free the TCP's state (PCBs, timers, queued data) before the stack closes. */
  close(): void;
}

/** Make the TCP under test for one script's stack. */
export type TcpFactory = (net: PdNet) => TcpUnderTest | null;

/** The stack's own TCP, or null while the stack has none. */
export const stackTcp: TcpFactory = () => null;
