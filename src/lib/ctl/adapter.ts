/**
 * The control socket's view (CtlSystem, src/kern/ctl/system.ts) of a running
 * system: the topology System (lib/topology.ts; on worker CPUs or in one
 * thread), what startNet returns (its System), and what startTapNet returns.
 * The only file that knows their shapes: when the system API changes,
 * re-point this one.
 *
 * Counters come from the arena (the stacks' stats blocks, the ports' load
 * words, the zones) or, in a single-thread system, from the stacks
 * themselves. On worker CPUs the PCB list, routes, ARP and capture are one
 * message per CPU (routes and ARP ask CPU 0, whose tables the others mirror).
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { Machine } from '../../kern/lwkt/machine.js';
import { Mbufs as MbufsClass } from '../../kern/mbuf/mbuf.js';
import type { SocketLayer } from '../../kern/socket/socket.js';
import type { Mbufs } from '../../kern/mbuf/mbuf.js';
import type { Uma } from '../../uma/uma.js';
import type { Sysctl } from '../../kern/sysctl/sysctl.js';
import { sysctlFor } from '../../kern/sysctl/vm.js';
import { registerStackSysctls } from '../../netinet/tunables.js';
import { registerTcpSysctls } from '../../netinet/tcp_tunables_shared.js';
import type { NetStats } from '../../netinet/stats.js';
import type { Stack } from '../../netinet/stack.js';
import type { PcbRow } from '../../netinet/udp_socket.js';
import { errnoName, ESRCH } from '../../kern/errno.js';
import { MSG_PAYLOAD_MAX, P_STAT, P_STAT_BUSY_US, P_STAT_HANDLED, P_STAT_SLEEPS } from '../../kern/lwkt/layout.js';
import { ipToString } from '../../wire/ipv4.js';
import { CTL_ARP_WORDS, CTL_ROUTE_WORDS, CTL_TCP_WORDS, NET_CTL_ARP, NET_CTL_PCAP, NET_CTL_ROUTES, NET_CTL_TCPDROP, NET_CTL_TCPLIST, NET_CTL_TCPSTATS } from '../../net/ctl_handlers.js';
import { PCAP_GLOBAL_HDR, PCAP_RECORD_HDR, PcapWriter, readPcap } from '../../net/phy/pcap.js';
import { CTL_CODES, CtlError } from '../../kern/ctl/protocol.js';
import type { CtlArpEntry, CtlCpuLoad, CtlHost, CtlInterface, CtlRoute, CtlSystem, CtlTcpConn } from '../../kern/ctl/system.js';
import { pcbList, type NetSystem } from '../netuser.js';
import type { TapNet } from '../tapnet.js';
import type { System } from '../topology.js';

/** One interface as the control socket names it. */
interface IfDesc {
  name: string;
  mtu: number;
  addr: number;
  mac: number;
  counters(): Float64Array;
}

/** One host: its index on the CPUs (or its Stack in one thread), its counters, its interfaces. */
interface HostDesc {
  name: string;
  cpuHost: number;
  stats(): NetStats;
  ifs: IfDesc[];
  /** Single thread: the stack itself. */
  local?: Stack;
}

interface Base {
  kind: string;
  uma: Uma;
  mb: Mbufs;
  sysctl: Sysctl;
  /** Worker CPUs (null: a single-thread system). */
  machine: Machine | null;
  layer: SocketLayer | null;
  hosts: () => HostDesc[];
}

function cpuError(what: string, err: number): CtlError {
  return new CtlError(CTL_CODES.CPU_ERROR, `${what}: ${errnoName(err)}`);
}

/** Page through a CPU table command whose reply is (total, n) and n rows of `words` ints. */
async function rowsFrom(layer: SocketLayer, cpu: number, cmd: number, host: number, words: number, what: string): Promise<Int32Array[]> {
  const out: Int32Array[] = [];
  for (let start = 0; ; ) {
    const r = await layer.request(cpu, cmd, [host, start], new Uint8Array(MSG_PAYLOAD_MAX), 2);
    if (r.err !== 0 || r.out === null) throw cpuError(what, r.err);
    const [total, n] = r.res;
    const v = new Int32Array(r.out.buffer.slice(r.out.byteOffset, r.out.byteOffset + n * words * 4));
    for (let i = 0; i < n; i++) out.push(v.subarray(i * words, (i + 1) * words));
    start += n;
    if (n === 0 || start >= total) return out;
  }
}

/** Merge per-CPU capture files into one, records in time order; removes the parts. */
function mergePcaps(parts: string[], path: string): number {
  const recs = parts.flatMap((p) => readPcap(p).records).sort((a, b) => a.tsSec - b.tsSec || a.tsUsec - b.tsUsec);
  const b = Buffer.alloc(PCAP_GLOBAL_HDR + recs.reduce((a, r) => a + PCAP_RECORD_HDR + r.data.length, 0));
  readFileSync(parts[0]).copy(b, 0, 0, PCAP_GLOBAL_HDR);
  let o = PCAP_GLOBAL_HDR;
  for (const r of recs) {
    b.writeUInt32LE(r.tsSec >>> 0, o);
    b.writeUInt32LE(r.tsUsec >>> 0, o + 4);
    b.writeUInt32LE(r.data.length, o + 8);
    b.writeUInt32LE(r.origLen, o + 12);
    b.set(r.data, o + PCAP_RECORD_HDR);
    o += PCAP_RECORD_HDR + r.data.length;
  }
  writeFileSync(path, b);
  for (const p of parts) unlinkSync(p);
  return recs.length;
}

/** The PCBs of a single-thread stack, as NET_PCBLIST reports them. */
function localPcbs(hosts: HostDesc[]): PcbRow[] {
  return hosts.flatMap((h, host) =>
    h.local === undefined ? [] : h.local.udp.all().map((p) => ({ cpu: 0, host, laddr: p.laddr, lport: p.lport, faddr: p.faddr, fport: p.fport, queued: p.rcvBytes, user: true })),
  );
}

function make(s: Base): CtlSystem {
  const sab = s.uma.arena.sab;
  const ncpus = s.machine?.ncpus ?? 0;
  const host = (i: number): HostDesc => {
    const h = s.hosts()[i];
    if (h === undefined) throw new CtlError(CTL_CODES.BAD_ARGS, `no host ${i}`);
    return h;
  };
  const ifName = (h: HostDesc, pos: number): string => h.ifs[pos]?.name ?? `if${pos}`;
  const captures = new Map<number, { path: string; writer?: PcapWriter }>();
  const pcapCall = async (h: HostDesc, cpu: number, on: number, snaplen: number, path: string): Promise<number> => {
    if (Buffer.byteLength(path) + 1 > MSG_PAYLOAD_MAX) throw new CtlError(CTL_CODES.BAD_ARGS, `capture path longer than ${MSG_PAYLOAD_MAX - 8} bytes`);
    const payload = new Uint8Array(Buffer.byteLength(path) + 1);
    payload.set(Buffer.from(path + '\0'));
    const r = await s.layer!.request(cpu, NET_CTL_PCAP, [h.cpuHost, on, snaplen], payload, 1);
    if (r.err !== 0) throw cpuError(`pcap on cpu${cpu}`, r.err);
    return r.res[0];
  };
  return {
    kind: s.kind,
    ncpus,
    uma: s.uma,
    mb: s.mb,
    sysctl: s.sysctl,
    hosts: (): CtlHost[] => s.hosts().map((h, index) => ({ index, name: h.name })),
    stats: (i) => host(i).stats(),
    interfaces: (): CtlInterface[] =>
      s.hosts().flatMap((h, hi) => h.ifs.map((f) => ({ name: f.name, host: hi, mtu: f.mtu, addr: f.addr === 0 ? '' : ipToString(f.addr), mac: f.mac, counters: f.counters() }))),
    cpuLoad: (): CtlCpuLoad[] => {
      const out: CtlCpuLoad[] = [];
      for (let c = 0; c < ncpus; c++) {
        const f = new Float64Array(sab, s.machine!.ctx.ports[c] + P_STAT * 4, 3);
        out.push({ cpu: c, handled: f[P_STAT_HANDLED], busyUs: f[P_STAT_BUSY_US], sleeps: f[P_STAT_SLEEPS] });
      }
      return out;
    },
    pcbs: async () => {
      const hs = s.hosts();
      if (s.layer === null) return localPcbs(hs);
      const byCpu = new Map(hs.map((h, i) => [h.cpuHost, i]));
      return (await pcbList(s.layer)).filter((r) => byCpu.has(r.host)).map((r) => ({ ...r, host: byCpu.get(r.host)! }));
    },
    tcpStats: async (i) => {
      const h = host(i);
      if (h.local !== undefined) return Float64Array.from(h.local.tcp.stats);
      let sum: Float64Array | null = null;
      for (let c = 0; c < ncpus; c++) {
        for (let start = 0; ; ) {
          const r = await s.layer!.request(c, NET_CTL_TCPSTATS, [h.cpuHost, start], new Uint8Array(MSG_PAYLOAD_MAX), 2);
          if (r.err !== 0 || r.out === null) throw cpuError(`tcp stats on cpu${c}`, r.err);
          const [total, n] = r.res;
          sum ??= new Float64Array(total);
          const v = new Float64Array(r.out.buffer.slice(r.out.byteOffset, r.out.byteOffset + n * 8));
          for (let k = 0; k < n; k++) sum[start + k] += v[k];
          start += n;
          if (n === 0 || start >= total) break;
        }
      }
      return sum ?? new Float64Array(0);
    },
    tcpConns: async (): Promise<CtlTcpConn[]> => {
      const out: CtlTcpConn[] = [];
      const hs = s.hosts();
      for (let hi = 0; hi < hs.length; hi++) {
        const h = hs[hi];
        if (h.local !== undefined) {
          for (const c of (h.local.tcp.sockets?.list() ?? [])) out.push({ cpu: 0, host: hi, laddr: c.laddr, lport: c.lport, faddr: c.faddr, fport: c.fport, state: c.state, recvQ: c.recvQ, sendQ: c.sendQ });
          continue;
        }
        for (let c = 0; c < ncpus; c++) {
          for (const r of await rowsFrom(s.layer!, c, NET_CTL_TCPLIST, h.cpuHost, CTL_TCP_WORDS, 'tcp list')) {
            out.push({ cpu: c, host: hi, laddr: r[0] >>> 0, lport: r[1], faddr: r[2] >>> 0, fport: r[3], state: r[4], recvQ: r[5], sendQ: r[6] });
          }
        }
      }
      return out;
    },
    tcpDrop: async (i, laddr, lport, faddr, fport) => {
      const h = host(i);
      if (h.local !== undefined) return h.local.tcp.sockets?.drop(laddr, lport, faddr, fport) === 0;
      let dropped = false;
      for (let c = 0; c < ncpus; c++) {
        const r = await s.layer!.request(c, NET_CTL_TCPDROP, [h.cpuHost, laddr | 0, lport, faddr | 0, fport]);
        if (r.err === 0) dropped = true;
        else if (r.err !== ESRCH) throw cpuError(`tcpdrop on cpu${c}`, r.err);
      }
      return dropped;
    },
    routes: async (i): Promise<CtlRoute[]> => {
      const h = host(i);
      if (h.local !== undefined) {
        const st = h.local;
        return st.routes.routes.map((r) => ({ host: i, dst: r.dst, prefix: r.prefix, gateway: r.gateway, ifname: ifName(h, st.ifs.indexOf(r.ifp)) }));
      }
      const rows = await rowsFrom(s.layer!, 0, NET_CTL_ROUTES, h.cpuHost, CTL_ROUTE_WORDS, 'routes');
      return rows.map((r) => ({ host: i, dst: r[0] >>> 0, prefix: r[1], gateway: r[2] >>> 0, ifname: ifName(h, r[3]) }));
    },
    arp: async (i): Promise<CtlArpEntry[]> => {
      const h = host(i);
      if (h.local !== undefined) {
        const st = h.local;
        const now = st.now();
        return [...st.arp.entries.values()]
          .map((e) => ({ host: i, ip: e.ip, mac: e.mac, expires: e.expire === Infinity ? -1 : Math.max(0, Math.round((e.expire - now) / 1000)), incomplete: e.state === 0, ifname: ifName(h, st.ifs.indexOf(e.ifp)) }))
          .sort((a, b) => a.ip - b.ip);
      }
      const rows = await rowsFrom(s.layer!, 0, NET_CTL_ARP, h.cpuHost, CTL_ARP_WORDS, 'arp');
      return rows.map((r) => ({ host: i, ip: r[0] >>> 0, mac: (r[1] & 0xffff) * 0x1_0000_0000 + (r[2] >>> 0), expires: r[3], incomplete: r[4] !== 0, ifname: ifName(h, r[5]) }));
    },
    pcapStart: async (i, path, snaplen) => {
      const h = host(i);
      const cur = captures.get(i);
      if (cur !== undefined) throw new CtlError(CTL_CODES.BAD_ARGS, `${h.name} is already being captured to ${cur.path}`);
      if (h.local !== undefined) {
        const w = PcapWriter.open(path, snaplen === undefined ? {} : { snaplen });
        for (const ifp of h.local.ifs) ifp.setCapture(w);
        captures.set(i, { path, writer: w });
        return;
      }
      // Claimed before the first await: a second request meanwhile is refused, not interleaved.
      captures.set(i, { path });
      const started: number[] = [];
      try {
        for (let c = 0; c < ncpus; c++) {
          await pcapCall(h, c, 1, snaplen ?? 0, `${path}.cpu${c}`);
          started.push(c);
        }
      } catch (e) {
        captures.delete(i);
        for (const c of started) {
          await pcapCall(h, c, 0, 0, '').catch(() => 0);
          try {
            unlinkSync(`${path}.cpu${c}`);
          } catch {
            /* not written */
          }
        }
        throw e;
      }
    },
    pcapStop: async (i) => {
      const h = host(i);
      const cur = captures.get(i);
      if (cur === undefined) throw new CtlError(CTL_CODES.BAD_ARGS, `${h.name} is not being captured`);
      captures.delete(i);
      if (cur.writer !== undefined) {
        for (const ifp of h.local!.ifs) if (ifp.pcap === cur.writer) ifp.setCapture(null);
        cur.writer.close();
        return { path: cur.path, packets: cur.writer.packets };
      }
      for (let c = 0; c < ncpus; c++) await pcapCall(h, c, 0, 0, '');
      const packets = mergePcaps(
        Array.from({ length: ncpus }, (_, c) => `${cur.path}.cpu${c}`),
        cur.path,
      );
      return { path: cur.path, packets };
    },
  };
}

/**
 * The control view of a topology System (worker CPUs or one thread). Stacks
 * added later appear at the next request. Interfaces are named
 * `<interface>/<stack>` as System.netstatI() prints them.
 */
export function systemControl(sys: System): CtlSystem {
  const hosts = (): HostDesc[] =>
    sys.stacks.map((st) => ({
      name: st.name,
      cpuHost: st.index,
      stats: () => st.stats(),
      ifs: st.interfaces.map((i) => ({ name: `${i.name}/${st.name}`, mtu: i.mtu, addr: i.addrs[0]?.addr ?? 0, mac: i.mac, counters: () => i.counters() })),
      local: sys.machine === null ? st.stack : undefined,
    }));
  return make({ kind: sys.machine === null ? 'local' : 'mp', uma: sys.uma, mb: sys.mb, sysctl: sys.sysctl, machine: sys.machine, layer: sys.layer, hosts });
}

/** The control view of a startTapNet system (one host on a multi-queue TAP). */
export function tapNetControl(net: TapNet): CtlSystem {
  const sysctl = sysctlFor(net.uma);
  registerStackSysctls(sysctl, net.uma.arena, net.mb);
  registerTcpSysctls(sysctl, net.uma.arena);
  const h: HostDesc = {
    name: net.name,
    cpuHost: net.host,
    stats: () => net.stats(),
    ifs: [{ name: net.name, mtu: net.mtu, addr: net.addr, mac: net.mac, counters: () => net.ifCounters() }],
  };
  return make({ kind: 'tap', uma: net.uma, mb: net.mb, sysctl, machine: net.machine, layer: net.layer, hosts: () => [h] });
}

/**
 * A bare Machine (CPUs without the network stack's hosts): sysctl, vmstat -z,
 * netstat -m, the CPUs' load and metrics; no hosts, sockets, routes or ARP.
 * The PCB and TCP lists come from the hosts, so they are empty here.
 */
export function machineControl(m: Machine): CtlSystem {
  const mb = MbufsClass.create(m.uma);
  const sysctl = sysctlFor(m.uma);
  registerStackSysctls(sysctl, m.uma.arena, mb);
  const v = make({ kind: 'machine', uma: m.uma, mb, sysctl, machine: m, layer: null, hosts: () => [] });
  return { ...v, ncpus: m.ncpus, pcbs: async () => [], tcpConns: async () => [] };
}

/** What startNet, startTapNet, System.start or Machine.start return, told apart by shape. */
export function controlView(x: NetSystem | TapNet | System | Machine): CtlSystem {
  if (x instanceof Machine) return machineControl(x);
  if ('queueStats' in x) return tapNetControl(x);
  if ('system' in x) return systemControl(x.system);
  return systemControl(x);
}
