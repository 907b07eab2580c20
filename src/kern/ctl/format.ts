/**
 * Text reports of the control socket in FreeBSD's formats, for what no
 * other layer formats yet: `arp -a` (usr.sbin/arp), `netstat -rn`
 * (usr.bin/netstat/route.c), `sockstat` (usr.bin/sockstat) and
 * `netstat -s -p proto` (one protocol's section). Pure functions.
 */
import { ipToString } from '../../wire/ipv4.js';
import { macToString } from '../../wire/ethernet.js';
import { ARP_DESC, ETHER_DESC, ICMP_DESC, IP_DESC, UDP_DESC, type NetStats } from '../../netinet/stats.js';
import type { PcbRow } from '../../netinet/udp_socket.js';
import type { CtlArpEntry, CtlRoute, CtlTcpConn } from './system.js';
import { TCP_STATE_NAMES } from '../../netinet/tcp_fsm.js';

/** Protocols `netstat -p` knows, and their counters. */
export const NETSTAT_PROTOS = {
  ether: { desc: ETHER_DESC, key: 'ether' },
  arp: { desc: ARP_DESC, key: 'arp' },
  ip: { desc: IP_DESC, key: 'ip' },
  icmp: { desc: ICMP_DESC, key: 'icmp' },
  udp: { desc: UDP_DESC, key: 'udp' },
} as const;
export type NetstatProto = keyof typeof NETSTAT_PROTOS | 'tcp';

/** One protocol's `netstat -s -p proto` section (zero lines left out, as netstat does). */
export function formatProtoSection(proto: keyof typeof NETSTAT_PROTOS, s: NetStats): string {
  const { desc, key } = NETSTAT_PROTOS[proto];
  const v = s[key];
  const out = [`${proto}:`];
  desc.forEach(([, text], i) => {
    if (v[i] !== 0) out.push('\t' + text.replace('%d', String(v[i])));
  });
  return out.join('\n');
}

/** `arp -a`: "? (ip) at mac on ifname expires in N seconds [ethernet]" per entry. */
export function formatArp(rows: readonly CtlArpEntry[]): string {
  return rows
    .map((e) => {
      const mac = e.incomplete ? '(incomplete)' : macToString(e.mac);
      const life = e.expires < 0 ? 'permanent' : `expires in ${e.expires} seconds`;
      return `? (${ipToString(e.ip)}) at ${mac} on ${e.ifname} ${life} [ethernet]`;
    })
    .join('\n');
}

/** `netstat -rn`: the Internet table; flags U (up), G (gateway), S (static), H (host). */
export function formatRoutes(rows: readonly CtlRoute[]): string {
  const out = ['Routing tables', '', 'Internet:', `${'Destination'.padEnd(19)}${'Gateway'.padEnd(19)}${'Flags'.padEnd(10)}${'Netif'.padStart(5)} Expire`];
  for (const r of rows) {
    const dst = r.prefix === 0 ? 'default' : r.prefix === 32 ? ipToString(r.dst) : `${ipToString(r.dst)}/${r.prefix}`;
    const gw = r.gateway === 0 ? `link#${r.host + 1}` : ipToString(r.gateway);
    const flags = 'U' + (r.gateway !== 0 ? 'G' : '') + (r.prefix === 32 ? 'H' : '') + 'S';
    out.push(`${dst.padEnd(19)}${gw.padEnd(19)}${flags.padEnd(10)}${r.ifname.padStart(5)}`);
  }
  return out.join('\n');
}

/**
 * `sockstat -4`: USER COMMAND PID FD PROTO LOCAL ADDRESS FOREIGN ADDRESS, then
 * the CPU whose PCB table holds the socket. A user socket's command is the
 * process; a socket the stack itself holds (a server on every CPU) is "stack".
 * Sockets have no file descriptor here: FD is "?" as sockstat prints for one
 * it cannot attribute.
 */
export function formatSockstat(rows: readonly PcbRow[], user: string, command: string, pid: number): string {
  const ep = (a: number, p: number): string => `${a === 0 ? '*' : ipToString(a)}:${p === 0 ? '*' : p}`;
  const out = [`${'USER'.padEnd(9)}${'COMMAND'.padEnd(11)}${'PID'.padStart(6)} ${'FD'.padStart(3)} ${'PROTO'.padEnd(6)} ${'LOCAL ADDRESS'.padEnd(21)} ${'FOREIGN ADDRESS'.padEnd(21)} CPU`];
  const sorted = [...rows].sort((a, b) => a.host - b.host || a.lport - b.lport || a.cpu - b.cpu);
  for (const r of sorted) {
    out.push(
      `${user.slice(0, 8).padEnd(9)}${(r.user ? command : 'stack').slice(0, 10).padEnd(11)}${String(pid).padStart(6)} ${'?'.padStart(3)} ${'udp4'.padEnd(6)} ${ep(r.laddr, r.lport).padEnd(21)} ${ep(r.faddr, r.fport).padEnd(21)} ${r.cpu}`,
    );
  }
  return out.join('\n');
}

const tcpState = (s: number): string => TCP_STATE_NAMES[s] ?? String(s);

/**
 * netstat -an with the TCP PCBs first (as FreeBSD lists tcp before udp):
 * `an` is the UDP table of formatNetstatAn (header lines first); the tcp4
 * rows use its columns, the state in (state), no owner.
 */
export function withTcpRows(an: string, conns: readonly CtlTcpConn[]): string {
  if (conns.length === 0) return an;
  const ep = (a: number, p: number) => (a === 0 && p === 0 ? '*.*' : `${a === 0 ? '*' : ipToString(a)}.${p === 0 ? '*' : p}`);
  const sorted = [...conns].sort((a, b) => a.host - b.host || a.lport - b.lport || a.fport - b.fport || a.cpu - b.cpu);
  const rows = sorted.map(
    (c) =>
      `${'tcp4'.padEnd(6)}${String(c.recvQ).padStart(7)} ${String(c.sendQ).padStart(6)}  ${ep(c.laddr, c.lport).padEnd(22)} ${ep(c.faddr, c.fport).padEnd(22)} ${tcpState(c.state).padEnd(8)} ${String(c.cpu).padStart(3)} ${String(c.host).padStart(4)} -`,
  );
  const lines = an.split('\n');
  return [...lines.slice(0, 2), ...rows, ...lines.slice(2)].join('\n');
}

/** sockstat rows of the TCP PCBs (after the header of formatSockstat). */
export function withTcpSockstat(text: string, conns: readonly CtlTcpConn[], user: string, command: string, pid: number): string {
  if (conns.length === 0) return text;
  const ep = (a: number, p: number): string => `${a === 0 ? '*' : ipToString(a)}:${p === 0 ? '*' : p}`;
  const rows = conns.map(
    (c) => `${user.slice(0, 8).padEnd(9)}${command.slice(0, 10).padEnd(11)}${String(pid).padStart(6)} ${'?'.padStart(3)} ${'tcp4'.padEnd(6)} ${ep(c.laddr, c.lport).padEnd(21)} ${ep(c.faddr, c.fport).padEnd(21)} ${c.cpu}`,
  );
  const lines = text.split('\n');
  return [lines[0], ...rows, ...lines.slice(1)].join('\n');
}

/** "a.b.c.d port" (tcpdrop's two words), "a.b.c.d:port" or "a.b.c.d.port": address and port, or null. */
export function parseEndpoint(s: string): { addr: number; port: number } | null {
  const m = /^\s*(\d+\.\d+\.\d+\.\d+)(?:\s+|:|\.)(\d+)\s*$/.exec(s);
  if (m === null) return null;
  const parts = m[1].split('.').map(Number);
  const port = Number(m[2]);
  if (parts.some((x) => x > 255) || port < 1 || port > 65535) return null;
  return { addr: ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0, port };
}

export { tcpState };
