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
import type { CtlArpEntry, CtlRoute } from './system.js';

/** Protocols `netstat -p` knows, and their counters. */
export const NETSTAT_PROTOS = {
  ether: { desc: ETHER_DESC, key: 'ether' },
  arp: { desc: ARP_DESC, key: 'arp' },
  ip: { desc: IP_DESC, key: 'ip' },
  icmp: { desc: ICMP_DESC, key: 'icmp' },
  udp: { desc: UDP_DESC, key: 'udp' },
} as const;
export type NetstatProto = keyof typeof NETSTAT_PROTOS;

/** One protocol's `netstat -s -p proto` section (zero lines left out, as netstat does). */
export function formatProtoSection(proto: NetstatProto, s: NetStats): string {
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
