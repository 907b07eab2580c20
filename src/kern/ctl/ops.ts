/**
 * The control socket's operations: each checks its arguments (BAD_ARGS on
 * anything unexpected) and answers from a CtlSystem. Reports come back
 * both as data and as `text` in FreeBSD's format, so a client prints the
 * text and a program reads the data. Runs in the serving thread; reading
 * counters takes no lock and sends no message (pcbs, routes, arp and pcap
 * send one small message per CPU, see system.ts).
 */
import { userInfo } from 'node:os';
import { SysctlError, type SysctlEntry } from '../sysctl/sysctl.js';
import { netstatM, mbufStats } from '../mbuf/stats.js';
import { zoneStats } from '../../uma/stats.js';
import { formatVmstatZ } from '../../uma/vmstat.js';
import { formatNetstatS, statObject, ARP_DESC, ETHER_DESC, ICMP_DESC, IP_DESC, UDP_DESC, type NetStats } from '../../netinet/stats.js';
import { formatNetstatI } from '../../net/netstats.js';
import { IFC_NAMES } from '../../net/if.js';
import { formatNetstatAn } from '../../lib/netuser.js';
import { argBool, argInt, argsOnly, argString, CTL_CODES, CTL_VERSION, CtlError } from './protocol.js';
import { formatArp, formatProtoSection, formatRoutes, formatSockstat, NETSTAT_PROTOS, parseEndpoint, tcpState, withTcpRows, withTcpSockstat, type NetstatProto } from './format.js';
import { TCPS_CLOSED, TCPS_LISTEN } from '../../netinet/tcp_fsm.js';
import { formatTcpStats, TCP_DESC } from '../../netinet/tcp_stats.js';
import { ipToString } from '../../wire/ipv4.js';
import { formatMetrics } from './metrics.js';
import type { CtlInterface, CtlSystem } from './system.js';

/** Who is serving: told to clients by "hello". */
export interface CtlIdentity {
  name: string;
  pid: number;
  started: number;
  argv: string[];
}

export type CtlOp = (sys: CtlSystem, args: Record<string, unknown>, me: CtlIdentity) => unknown | Promise<unknown>;

function sysctlError(e: unknown): never {
  if (e instanceof SysctlError) {
    const code = e.errno === 'ENOENT' ? CTL_CODES.ENOENT : e.errno === 'EPERM' ? CTL_CODES.EPERM : CTL_CODES.EINVAL;
    throw new CtlError(code, e.message);
  }
  throw e;
}

const entryJson = (e: SysctlEntry) => ({ name: e.name, type: e.type, value: e.value, writable: e.writable, description: e.description });

function protoObjects(s: NetStats): Record<string, Record<string, number>> {
  return { ether: statObject(ETHER_DESC, s.ether), arp: statObject(ARP_DESC, s.arp), ip: statObject(IP_DESC, s.ip), icmp: statObject(ICMP_DESC, s.icmp), udp: statObject(UDP_DESC, s.udp) };
}

function ifJson(i: CtlInterface) {
  const c: Record<string, number> = {};
  IFC_NAMES.forEach((n, k) => (c[n] = i.counters[k]));
  return { name: i.name, host: i.host, mtu: i.mtu, addr: i.addr, mac: i.mac, counters: c };
}

function findInterface(sys: CtlSystem, name: string | undefined): CtlInterface {
  const ifs = sys.interfaces();
  if (ifs.length === 0) throw new CtlError(CTL_CODES.BAD_ARGS, 'this system has no interfaces');
  if (name === undefined) {
    if (ifs.length === 1) return ifs[0];
    throw new CtlError(CTL_CODES.BAD_ARGS, `"interface" is required: one of ${ifs.map((i) => i.name).join(', ')}`);
  }
  const i = ifs.find((x) => x.name === name);
  if (i === undefined) throw new CtlError(CTL_CODES.BAD_ARGS, `no interface "${name}" (have ${ifs.map((x) => x.name).join(', ')})`);
  return i;
}

/** The hosts a report covers: the one named by "host" (index or name), or all. */
function pickHosts(sys: CtlSystem, args: Record<string, unknown>): number[] {
  const hs = sys.hosts();
  const v = args.host;
  if (v === undefined) return hs.map((h) => h.index);
  const h = hs.find((x) => x.index === v || x.name === v);
  if (h === undefined) throw new CtlError(CTL_CODES.BAD_ARGS, `no host ${JSON.stringify(v)} (have ${hs.map((x) => `${x.index} (${x.name})`).join(', ')})`);
  return [h.index];
}

const REPORTS = ['m', 's', 'i', 'an', 'r'] as const;

async function netstat(sys: CtlSystem, args: Record<string, unknown>): Promise<unknown> {
  argsOnly(args, ['report', 'proto', 'host', 'bytype']);
  const report = argString(args, 'report', 's')!;
  if (!(REPORTS as readonly string[]).includes(report)) throw new CtlError(CTL_CODES.BAD_ARGS, `"report" must be one of ${REPORTS.join(', ')}`);
  const proto = argString(args, 'proto');
  if (proto !== undefined && proto !== 'tcp' && !(proto in NETSTAT_PROTOS)) throw new CtlError(CTL_CODES.BAD_ARGS, `unknown protocol "${proto}" (know ${[...Object.keys(NETSTAT_PROTOS), 'tcp'].join(', ')})`);
  const hosts = pickHosts(sys, args);
  const names = new Map(sys.hosts().map((h) => [h.index, h.name]));
  switch (report) {
    case 'm': {
      const st = mbufStats(sys.mb);
      return { text: netstatM(sys.mb, st, { byType: argBool(args, 'bytype') }).trimEnd(), data: st };
    }
    case 's': {
      const per = await Promise.all(hosts.map(async (h) => ({ host: h, name: names.get(h)!, stats: sys.stats(h), tcp: await sys.tcpStats(h) })));
      const one = (p: (typeof per)[number]): string => {
        if (proto === 'tcp') return formatTcpStats(p.tcp);
        if (proto !== undefined) return formatProtoSection(proto as Exclude<NetstatProto, 'tcp'>, p.stats);
        return formatNetstatS(p.stats) + '\n' + formatTcpStats(p.tcp);
      };
      const text = per.length === 1 ? one(per[0]) : per.map((p) => `${p.name}:\n${one(p)}`).join('\n');
      return { text, data: per.map((p) => ({ host: p.host, name: p.name, ...protoObjects(p.stats), tcp: statObject(TCP_DESC, p.tcp) })) };
    }
    case 'i': {
      const ifs = sys.interfaces().filter((i) => hosts.includes(i.host));
      return { text: formatNetstatI(ifs.map((i) => ({ name: i.name, mtu: i.mtu, addr: i.addr, ifc: i.counters }))), data: ifs.map(ifJson) };
    }
    case 'an': {
      const rows = (await sys.pcbs()).filter((r) => hosts.includes(r.host));
      const tcp = (await sys.tcpConns()).filter((c) => hosts.includes(c.host));
      return { text: withTcpRows(formatNetstatAn(rows), tcp), data: rows, tcp: tcp.map((c) => ({ ...c, stateName: tcpState(c.state) })) };
    }
    default: {
      const rows = (await Promise.all(hosts.map((h) => sys.routes(h)))).flat();
      return { text: formatRoutes(rows), data: rows };
    }
  }
}

/** Drops by reason, summed over hosts and interfaces: what `top` shows. */
function drops(sys: CtlSystem): Record<string, number> {
  const d: Record<string, number> = {};
  const add = (k: string, v: number) => (d[k] = (d[k] ?? 0) + v);
  for (const h of sys.hosts()) {
    const s = protoObjects(sys.stats(h.index));
    add('udp.noport', s.udp.noport);
    add('udp.fullsock', s.udp.fullsock);
    add('udp.badsum', s.udp.badsum);
    add('udp.badlen', s.udp.badlen);
    add('udp.odropped', s.udp.odropped);
    add('ip.badsum', s.ip.badsum);
    add('ip.fragdropped', s.ip.fragdropped);
    add('ip.fragtimeout', s.ip.fragtimeout);
    add('ip.odropped', s.ip.odropped);
    add('ip.noroute', s.ip.noroute);
    add('ip.nobufs', s.ip.nobufs);
    add('arp.dropped', s.arp.dropped);
    add('ether.notours', s.ether.notours);
    add('icmp.ratelimited', s.icmp.ratelimited);
  }
  for (const i of sys.interfaces()) {
    add('if.iqdrops', i.counters[3]);
    add('if.oqdrops', i.counters[7]);
    add('if.ierrors', i.counters[2]);
  }
  return d;
}

/** The structured snapshot `top` and programs poll. */
async function snapshot(sys: CtlSystem, args: Record<string, unknown>): Promise<unknown> {
  argsOnly(args, ['sockets']);
  const out: Record<string, unknown> = {
    time: Date.now(),
    ncpus: sys.ncpus,
    cpus: sys.cpuLoad(),
    interfaces: sys.interfaces().map(ifJson),
    zones: sys.uma.allZones().map(zoneStats),
    mbuf: mbufStats(sys.mb),
    nmbclusters: sys.mb.zClust.getMaxItems(),
    hosts: sys.hosts().map((h) => ({ ...h, ...protoObjects(sys.stats(h.index)) })),
    drops: drops(sys),
  };
  if (argBool(args, 'sockets')) {
    // UDP has no connection states: a PCB is bound (a server) or connected.
    const rows = await sys.pcbs();
    const states: Record<string, number> = { 'udp4 bound': 0, 'udp4 connected': 0 };
    for (const r of rows) states[r.faddr === 0 ? 'udp4 bound' : 'udp4 connected']++;
    for (const c of await sys.tcpConns()) {
      const k = `tcp4 ${tcpState(c.state)}`;
      states[k] = (states[k] ?? 0) + 1;
    }
    out.sockets = states;
  }
  return out;
}

/**
 * tcpdrop(8): `local` and `foreign` ("addr port", "addr:port" or
 * "addr.port") drop one connection (ESRCH when no host has it); `all: true`
 * drops every connection (listeners stay). Text lines as tcpdrop prints them.
 */
async function tcpdrop(sys: CtlSystem, args: Record<string, unknown>): Promise<unknown> {
  argsOnly(args, ['local', 'foreign', 'all']);
  const word = (a: number, p: number): string => `${ipToString(a)} ${p}`;
  if (argBool(args, 'all')) {
    const done: string[] = [];
    for (const c of await sys.tcpConns()) {
      if (c.state === TCPS_LISTEN || c.state === TCPS_CLOSED) continue;
      if (await sys.tcpDrop(c.host, c.laddr, c.lport, c.faddr, c.fport)) done.push(`${word(c.laddr, c.lport)} ${word(c.faddr, c.fport)}: dropped`);
    }
    return { text: done.join('\n'), dropped: done.length };
  }
  const l = parseEndpoint(argString(args, 'local') ?? '');
  const f = parseEndpoint(argString(args, 'foreign') ?? '');
  if (l === null || f === null) throw new CtlError(CTL_CODES.BAD_ARGS, '"local" and "foreign" must be "address port" (or all: true)');
  const what = `${word(l.addr, l.port)} ${word(f.addr, f.port)}`;
  for (const h of sys.hosts()) {
    if (await sys.tcpDrop(h.index, l.addr, l.port, f.addr, f.port)) return { text: `${what}: dropped`, dropped: 1 };
  }
  throw new CtlError(CTL_CODES.ESRCH, `${what}: No such process`);
}

export const CTL_OPS: Record<string, CtlOp> = {
  hello: (sys, args, me) => {
    argsOnly(args, []);
    return { v: CTL_VERSION, name: me.name, pid: me.pid, started: me.started, argv: me.argv, kind: sys.kind, ncpus: sys.ncpus, hosts: sys.hosts(), ops: Object.keys(CTL_OPS).sort() };
  },
  'sysctl.get': (sys, args) => {
    argsOnly(args, ['name']);
    const name = argString(args, 'name');
    if (name === undefined) throw new CtlError(CTL_CODES.BAD_ARGS, '"name" is required');
    try {
      return entryJson(sys.sysctl.describe(name));
    } catch (e) {
      return sysctlError(e);
    }
  },
  'sysctl.set': (sys, args) => {
    argsOnly(args, ['name', 'value']);
    const name = argString(args, 'name');
    const value = args.value;
    if (name === undefined) throw new CtlError(CTL_CODES.BAD_ARGS, '"name" is required');
    if (typeof value !== 'number' && typeof value !== 'string') throw new CtlError(CTL_CODES.BAD_ARGS, '"value" must be a number or a string');
    try {
      const old = sys.sysctl.get(name);
      sys.sysctl.set(name, value);
      return { name, old, new: sys.sysctl.get(name) };
    } catch (e) {
      return sysctlError(e);
    }
  },
  'sysctl.list': (sys, args) => {
    argsOnly(args, ['prefix']);
    try {
      return { entries: sys.sysctl.list(argString(args, 'prefix', '')).map(entryJson) };
    } catch (e) {
      return sysctlError(e);
    }
  },
  netstat,
  route: (sys, args) => netstat(sys, { ...args, report: 'r' }),
  vmstat: (sys, args) => {
    argsOnly(args, ['z']);
    if (args.z !== undefined && args.z !== true) throw new CtlError(CTL_CODES.BAD_ARGS, 'only the zone report (z: true) exists');
    const zones = sys.uma.allZones().map(zoneStats);
    return { text: formatVmstatZ(zones).trimEnd(), data: zones };
  },
  arp: async (sys, args) => {
    argsOnly(args, ['host']);
    const rows = (await Promise.all(pickHosts(sys, args).map((h) => sys.arp(h)))).flat();
    return { text: formatArp(rows), data: rows };
  },
  sockstat: async (sys, args, me) => {
    argsOnly(args, []);
    const rows = await sys.pcbs();
    const tcp = await sys.tcpConns();
    const user = userInfo().username;
    return { text: withTcpSockstat(formatSockstat(rows, user, me.name, me.pid), tcp, user, me.name, me.pid), data: rows, tcp };
  },
  tcpdrop,
  'pcap.start': async (sys, args) => {
    argsOnly(args, ['interface', 'path', 'snaplen']);
    const ifp = findInterface(sys, argString(args, 'interface'));
    const path = argString(args, 'path');
    if (path === undefined || path === '') throw new CtlError(CTL_CODES.BAD_ARGS, '"path" is required');
    if (!path.startsWith('/')) throw new CtlError(CTL_CODES.BAD_ARGS, '"path" must be absolute (the server runs in another directory)');
    const snaplen = argInt(args, 'snaplen', 14, 262144);
    await sys.pcapStart(ifp.host, path, snaplen);
    return { interface: ifp.name, path };
  },
  'pcap.stop': async (sys, args) => {
    argsOnly(args, ['interface']);
    const ifp = findInterface(sys, argString(args, 'interface'));
    return { interface: ifp.name, ...(await sys.pcapStop(ifp.host)) };
  },
  stats: snapshot,
  metrics: async (sys, args) => {
    argsOnly(args, []);
    return { text: await formatMetrics(sys) };
  },
};
