/**
 * What one script run shares between the executor and its layers (syscalls,
 * shell commands, code blocks): the stack and wire, the TCP under test, the
 * fd table, packetdrill's socket models and the run's configuration.
 */
import type { Sysctl } from '../kern/sysctl/sysctl.js';
import { PdConn } from './conn.js';
import type { PdNet } from './netif.js';
import type { PdSocket, PdTcp } from './tcpapi.js';

export interface RunConfig {
  toleranceUsecs: number;
  tolerancePercent: number;
  tsTickUsecs: number;
  /** --non_fatal=packet / syscall: mismatches of that kind are warnings. */
  nonFatalPacket: boolean;
  nonFatalSyscall: boolean;
  bindPort: number;
  connectPort: number;
  /** The remote port inbound connections come from (packetdrill picks an ephemeral one). */
  remotePort: number;
}

export const DEFAULT_CONFIG: RunConfig = {
  toleranceUsecs: 4000,
  tolerancePercent: 0,
  tsTickUsecs: 0,
  nonFatalPacket: false,
  nonFatalSyscall: false,
  bindPort: 8080,
  connectPort: 8080,
  remotePort: 49153,
};

export interface FdEntry {
  so: PdSocket;
  nonblock: boolean;
  conn: PdConn;
}

export class RunState {
  readonly fds = new Map<number, FdEntry>();
  readonly conns: PdConn[] = [];
  socketUnderTest: PdConn | null = null;
  constructor(
    readonly net: PdNet,
    readonly tcp: PdTcp | null,
    readonly sysctl: Sysctl,
    readonly cfg: RunConfig,
  ) {}

  newConn(): PdConn {
    const c = new PdConn();
    this.conns.push(c);
    return c;
  }

  /** setup_new_child_socket: a passive child for an inbound packet; it becomes the socket under test. */
  newChild(remoteIsn: number): PdConn {
    const c = this.newConn();
    c.state = 'passive_packet_received';
    c.remote = { addr: this.net.remoteIp, port: this.cfg.remotePort };
    c.local = { addr: this.net.localIp, port: this.cfg.bindPort };
    c.remoteIsn = remoteIsn;
    this.socketUnderTest = c;
    return c;
  }

  /** Microseconds of virtual time since the script started. */
  nowUsecs(): number {
    return Math.round(this.net.now() * 1000);
  }
}
