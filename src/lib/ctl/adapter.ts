/**
 * The control socket's view (CtlSystem, src/kern/ctl/system.ts) of what
 * startNet (netuser.ts) and startTapNet (tapnet.ts) return. The only file
 * that knows their shapes: when the system API changes, re-point this one.
 *
 * Counters come from the arena (the stats directory, the ports' load
 * words, the zones); the PCB list, routes, ARP and capture are one message
 * per CPU (routes and ARP ask CPU 0, whose tables the others mirror).
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Machine } from '../../kern/lwkt/machine.js';
import type { SocketLayer } from '../../kern/socket/socket.js';
import type { Mbufs } from '../../kern/mbuf/mbuf.js';
import type { Uma } from '../../uma/uma.js';
import type { Sysctl } from '../../kern/sysctl/sysctl.js';
import { sysctlFor } from '../../kern/sysctl/vm.js';
import { registerStackSysctls } from '../../netinet/tunables.js';
import { errnoName } from '../../kern/errno.js';
import { MSG_PAYLOAD_MAX, P_STAT, P_STAT_BUSY_US, P_STAT_HANDLED, P_STAT_SLEEPS } from '../../kern/lwkt/layout.js';
import { sumHost } from '../../net/netstats.js';
import { ipToString } from '../../wire/ipv4.js';
import { CTL_ARP_WORDS, CTL_ROUTE_WORDS, NET_CTL_ARP, NET_CTL_PCAP, NET_CTL_ROUTES } from '../../net/ctl_handlers.js';
import { PCAP_GLOBAL_HDR, PCAP_RECORD_HDR, readPcap } from '../../net/phy/pcap.js';
import { CTL_CODES, CtlError } from '../../kern/ctl/protocol.js';
import type { CtlArpEntry, CtlCpuLoad, CtlHost, CtlInterface, CtlRoute, CtlSystem } from '../../kern/ctl/system.js';
import { HOST0, HOST1, pcbList, type NetSystem } from '../netuser.js';
import type { TapNet } from '../tapnet.js';

/** One host of the system: its stats block index, its index on the CPUs, its interface. */
interface HostDesc {
  name: string;
  /** Host index in the stats directory. */
  statHost: number;
  /** The host's own stats directory (topology stacks have one each); else the system's. */
  statDir?: number;
  /** The interface's counters (topology interfaces keep their own block); else the host's block. */
  ifc?: () => Float64Array;
  /** Host index in each CPU's host list (mpnet messages). */
  cpuHost: number;
  ifname: string;
  mtu: number;
  addr: number;
  mac: number;
}

interface Base {
  kind: string;
  uma: Uma;
  mb: Mbufs;
  machine: Machine;
  layer: SocketLayer;
  statDir: number;
  sysctl: Sysctl;
  hosts: HostDesc[];
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
  const files = parts.map((p) => readPcap(p));
  const recs = files.flatMap((f) => f.records).sort((a, b) => a.tsSec - b.tsSec || a.tsUsec - b.tsUsec);
  const size = PCAP_GLOBAL_HDR + recs.reduce((a, r) => a + PCAP_RECORD_HDR + r.data.length, 0);
  const b = Buffer.alloc(size);
  const first = readFileSync(parts[0]);
  first.copy(b, 0, 0, PCAP_GLOBAL_HDR);
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

function make(s: Base): CtlSystem {
  const sab = s.uma.arena.sab;
  const ncpus = s.machine.ncpus;
  const host = (i: number): HostDesc => {
    const h = s.hosts[i];
    if (h === undefined) throw new CtlError(CTL_CODES.BAD_ARGS, `no host ${i}`);
    return h;
  };
  const captures = new Map<number, string>();
  const pcapCall = async (h: HostDesc, cpu: number, on: number, snaplen: number, path: string): Promise<number> => {
    const payload = new Uint8Array(Math.min(MSG_PAYLOAD_MAX, Buffer.byteLength(path) + 1));
    if (Buffer.byteLength(path) + 1 > MSG_PAYLOAD_MAX) throw new CtlError(CTL_CODES.BAD_ARGS, `capture path longer than ${MSG_PAYLOAD_MAX - 8} bytes`);
    payload.set(Buffer.from(path + '\0'));
    const r = await s.layer.request(cpu, NET_CTL_PCAP, [h.cpuHost, on, snaplen], payload, 1);
    if (r.err !== 0) throw cpuError(`pcap on cpu${cpu}`, r.err);
    return r.res[0];
  };
  return {
    kind: s.kind,
    ncpus,
    uma: s.uma,
    mb: s.mb,
    sysctl: s.sysctl,
    hosts: (): CtlHost[] => s.hosts.map((h, index) => ({ index, name: h.name })),
    stats: (i) => sumHost(sab, host(i).statDir ?? s.statDir, host(i).statHost).stats,
    interfaces: (): CtlInterface[] =>
      s.hosts.map((h, i) => ({ name: h.ifname, host: i, mtu: h.mtu, addr: ipToString(h.addr), mac: h.mac, counters: h.ifc !== undefined ? h.ifc() : sumHost(sab, h.statDir ?? s.statDir, h.statHost).ifc })),
    cpuLoad: (): CtlCpuLoad[] => {
      const out: CtlCpuLoad[] = [];
      for (let c = 0; c < ncpus; c++) {
        const f = new Float64Array(sab, s.machine.ctx.ports[c] + P_STAT * 4, 3);
        out.push({ cpu: c, handled: f[P_STAT_HANDLED], busyUs: f[P_STAT_BUSY_US], sleeps: f[P_STAT_SLEEPS] });
      }
      return out;
    },
    pcbs: async () => {
      const rows = await pcbList(s.layer);
      const byCpu = new Map(s.hosts.map((h, i) => [h.cpuHost, i]));
      return rows.filter((r) => byCpu.has(r.host)).map((r) => ({ ...r, host: byCpu.get(r.host)! }));
    },
    routes: async (i): Promise<CtlRoute[]> => {
      const h = host(i);
      const rows = await rowsFrom(s.layer, 0, NET_CTL_ROUTES, h.cpuHost, CTL_ROUTE_WORDS, 'routes');
      return rows.map((r) => ({ host: i, dst: r[0] >>> 0, prefix: r[1], gateway: r[2] >>> 0, ifname: h.ifname }));
    },
    arp: async (i): Promise<CtlArpEntry[]> => {
      const h = host(i);
      const rows = await rowsFrom(s.layer, 0, NET_CTL_ARP, h.cpuHost, CTL_ARP_WORDS, 'arp');
      return rows.map((r) => ({ host: i, ip: r[0] >>> 0, mac: (r[1] & 0xffff) * 0x1_0000_0000 + (r[2] >>> 0), expires: r[3], incomplete: r[4] !== 0, ifname: h.ifname }));
    },
    pcapStart: async (i, path, snaplen) => {
      const h = host(i);
      if (captures.has(i)) throw new CtlError(CTL_CODES.BAD_ARGS, `${h.ifname} is already being captured to ${captures.get(i)}`);
      const started: number[] = [];
      try {
        for (let c = 0; c < ncpus; c++) {
          await pcapCall(h, c, 1, snaplen ?? 0, `${path}.cpu${c}`);
          started.push(c);
        }
      } catch (e) {
        for (const c of started) await pcapCall(h, c, 0, 0, '').catch(() => 0);
        for (const c of started) {
          try {
            unlinkSync(`${path}.cpu${c}`);
          } catch {
            /* not written */
          }
        }
        throw e;
      }
      captures.set(i, path);
    },
    pcapStop: async (i) => {
      const h = host(i);
      const path = captures.get(i);
      if (path === undefined) throw new CtlError(CTL_CODES.BAD_ARGS, `${h.ifname} is not being captured`);
      captures.delete(i);
      for (let c = 0; c < ncpus; c++) await pcapCall(h, c, 0, 0, '');
      const packets = mergePcaps(
        Array.from({ length: ncpus }, (_, c) => `${path}.cpu${c}`),
        path,
      );
      return { path, packets };
    },
  };
}

/** The control view of a startNet system (two hosts on the in-memory link). */
export function netSystemControl(sys: NetSystem): CtlSystem {
  const stacks = sys.system.stacks;
  const hosts = [HOST0, HOST1].map((addr, h) => ({ name: `host${h}`, statHost: 0, statDir: stacks[h].statDir, ifc: () => stacks[h].interfaces[0].counters(), cpuHost: h, ifname: `xl0/h${h}`, mtu: 1500, addr, mac: stacks[h].interfaces[0].mac }));
  return make({ kind: 'net', uma: sys.uma, mb: sys.mb, machine: sys.machine, layer: sys.layer, statDir: stacks[0].statDir, sysctl: sys.sysctl, hosts });
}

/** The control view of a startTapNet system (one host on a multi-queue TAP). */
export function tapNetControl(net: TapNet): CtlSystem {
  const sysctl = sysctlFor(net.uma);
  registerStackSysctls(sysctl, net.uma.arena, net.mb);
  const hosts = [{ name: net.name, statHost: 0, cpuHost: net.host, ifname: net.name, mtu: net.mtu, addr: net.addr, mac: net.mac }];
  return make({ kind: 'tap', uma: net.uma, mb: net.mb, machine: net.machine, layer: net.layer, statDir: net.statDir, sysctl, hosts });
}

/** Either kind, told apart by shape. */
export function controlView(x: NetSystem | TapNet): CtlSystem {
  return 'queueStats' in x ? tapNetControl(x) : netSystemControl(x);
}
