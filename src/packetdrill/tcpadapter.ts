/**
 * The stack's TCP as the runner's PdTcp (tcpapi.ts): `stack.tcp.sockets`
 * (src/netinet/tcp_usrreq.ts, TcpSockets: integer socket ids, negative
 * errno results, nothing blocks) and `stack.tcp.sysctlNodes()`. The runner
 * keeps its own narrow view of that API (TcpSocketsApi) so tests can plug in
 * a stand-in; stackTcp() checks at compile time that the real one fits it.
 */
import type { SysctlNodeSpec } from '../kern/sysctl/sysctl.js';
import type { TcpSysctlNode } from '../netinet/tcp_tunables.js';
import { EAGAIN, EINPROGRESS, EINVAL } from '../kern/errno.js';
import type { PdNet } from './netif.js';
import type { Endpoint, PdSocket, PdTcp, SockstatRow, TcpInfo } from './tcpapi.js';
import { SOL_SOCKET, SO_ERROR, TCP_STATES } from './symbols.js';

const POLLOUT = 0x0004;
const POLLERR = 0x0008;
const TCPS_ESTABLISHED = 4;

/** The part of src/netinet/tcp_usrreq.ts's TcpSockets the runner calls (its documented API). */
export interface TcpSocketsApi {
  socket(): number;
  bind(id: number, addr: number, port: number): number;
  listen(id: number, backlog: number): number;
  accept(id: number): number;
  connect(id: number, addr: number, port: number): number;
  read(id: number, buf: Uint8Array, flags?: number): number;
  write(id: number, buf: Uint8Array, flags?: number): number;
  shutdown(id: number, how: number): number;
  close(id: number): number;
  setsockopt(id: number, level: number, name: number, value: number, value2?: number): number;
  getsockopt(id: number, level: number, name: number, out: Int32Array): number;
  info(id: number): object | null;
  poll(id: number): number;
  peername(id: number): { addr: number; port: number } | null;
  list(): { id: number; laddr: number; lport: number; faddr: number; fport: number; state: number }[];
  drop(laddr: number, lport: number, faddr: number, fport: number): number;
}

/** What `stack.tcp` provides. */
export interface StackTcpApi {
  sockets: TcpSocketsApi;
  sysctlNodes(): TcpSysctlNode[];
  /** netstat -s -p tcp's text (optional: a stand-in TCP may have no counters). */
  netstatS?(): string;
}

export interface TcpUnderTest {
  tcp: PdTcp;
  /** The TCP's sysctl nodes (net.inet.tcp.*), registered on the run's tree. */
  sysctlNodes: SysctlNodeSpec[];
  /** Close the sockets the script left open (packetdrill's close_all_sockets). */
  close(): void;
}

/** Make the TCP under test for one script's stack. */
export type TcpFactory = (net: PdNet) => TcpUnderTest | null;

/** A negative-errno result as the runner's positive errno (EAGAIN is EWOULDBLOCK on BSD). */
const errno = (r: number) => (r < 0 ? -r : 0);

class AdaptedSocket implements PdSocket {
  constructor(
    private readonly so: TcpSocketsApi,
    readonly id: number,
    private readonly open: Set<number>,
  ) {}
  bind(local: Endpoint): number {
    return errno(this.so.bind(this.id, local.addr, local.port));
  }
  listen(backlog: number): number {
    return errno(this.so.listen(this.id, backlog));
  }
  accept(): { so: PdSocket; peer: Endpoint } | number {
    const r = this.so.accept(this.id);
    if (r < 0) return -r;
    this.open.add(r);
    return { so: new AdaptedSocket(this.so, r, this.open), peer: this.so.peername(r) ?? { addr: 0, port: 0 } };
  }
  connect(remote: Endpoint): number {
    return errno(this.so.connect(this.id, remote.addr, remote.port));
  }
  connectStatus(): number {
    const ev = this.so.poll(this.id);
    if ((ev & POLLERR) !== 0) {
      const out = new Int32Array(2);
      this.so.getsockopt(this.id, SOL_SOCKET, SO_ERROR, out);
      return out[0] !== 0 ? out[0] : EINVAL;
    }
    const info = this.so.info(this.id) as { tcpi_state?: number } | null;
    if ((ev & POLLOUT) !== 0 || (info !== null && (info.tcpi_state ?? 0) >= TCPS_ESTABLISHED)) return 0;
    return EINPROGRESS;
  }
  send(data: Uint8Array, flags: number): number {
    return this.so.write(this.id, data, flags);
  }
  recv(len: number, flags: number): Uint8Array | number {
    const buf = new Uint8Array(len);
    const r = this.so.read(this.id, buf, flags);
    if (r < 0) return r === -EAGAIN ? -EAGAIN : r;
    return buf.subarray(0, r);
  }
  shutdown(how: number): number {
    return errno(this.so.shutdown(this.id, how));
  }
  close(): number {
    this.open.delete(this.id);
    return errno(this.so.close(this.id));
  }
  getsockopt(level: number, name: number): number {
    const out = new Int32Array(2);
    const r = this.so.getsockopt(this.id, level, name, out);
    return r < 0 ? r : out[0];
  }
  getsockoptPair(level: number, name: number): [number, number] | number {
    const out = new Int32Array(2);
    const r = this.so.getsockopt(this.id, level, name, out);
    return r < 0 ? r : [out[0], out[1]];
  }
  setsockopt(level: number, name: number, value: number, value2 = 0): number {
    return errno(this.so.setsockopt(this.id, level, name, value, value2));
  }
  poll(): number {
    return this.so.poll(this.id);
  }
  tcpInfo(): TcpInfo | number {
    const i = this.so.info(this.id);
    return i === null ? EINVAL : (i as TcpInfo);
  }
}

/** FreeBSD's tcpstates[] names, as sockstat prints them. */
const SOCKSTAT_STATES = TCP_STATES.map((s) => (s === 'SYN_RECEIVED' ? 'SYN_RCVD' : s));

/** Adapt a TcpSockets-shaped object (the stack's, or a test's). */
export function adaptTcp(tcp: StackTcpApi): TcpUnderTest {
  const so = tcp.sockets;
  const open = new Set<number>();
  const pd: PdTcp = {
    socket() {
      const id = so.socket();
      if (id < 0) return -id;
      open.add(id);
      return new AdaptedSocket(so, id, open);
    },
    sockstat(): SockstatRow[] {
      return so.list().map((c) => ({
        local: { addr: c.laddr, port: c.lport },
        foreign: c.faddr === 0 && c.fport === 0 ? null : { addr: c.faddr, port: c.fport },
        state: SOCKSTAT_STATES[c.state] ?? String(c.state),
        hasSocket: c.id > 0,
      }));
    },
    drop(l: Endpoint, f: Endpoint): number {
      return errno(so.drop(l.addr, l.port, f.addr, f.port));
    },
  };
  if (tcp.netstatS !== undefined) pd.netstat = () => tcp.netstatS!();
  return {
    tcp: pd,
    sysctlNodes: tcp.sysctlNodes().map(sysctlSpec),
    close() {
      for (const id of [...open]) so.close(id);
      open.clear();
    },
  };
}

/** A TCP sysctl node as the run's tree takes it (int unless the node says string). */
export function sysctlSpec(n: TcpSysctlNode): SysctlNodeSpec {
  const type = n.type ?? 'int';
  const set = n.set;
  return {
    name: n.name,
    description: n.description,
    type,
    get: n.get,
    set: set === undefined ? undefined : (v) => set(type === 'int' ? Number(v) : String(v)),
  };
}

/** The stack's own TCP (`stack.tcp`). */
export const stackTcp: TcpFactory = (net) => {
  const sockets: TcpSocketsApi | null = net.stack.tcp.sockets;
  if (sockets === null) return null;
  return adaptTcp({ sockets, sysctlNodes: () => net.stack.tcp.sysctlNodes(), netstatS: () => net.stack.tcp.netstatS() });
};
