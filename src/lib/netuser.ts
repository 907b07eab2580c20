/**
 * The user thread's view of a machine running the network stack (mpnet.ts):
 * bring the two hosts up on every CPU, read the socket table of every CPU
 * (netstat -an) and the protocol counters. Runs in the main thread (or any
 * user worker); every call is a message to the CPUs, awaited asynchronously.
 */
import { Machine } from '../kern/lwkt/machine.js';
import { SocketLayer } from '../kern/socket/socket.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { Uma } from '../uma/uma.js';
import { formatNetstatI, freeStatDir } from '../net/netstats.js';
import type { NetStats } from '../netinet/stats.js';
import type { Sysctl } from '../kern/sysctl/sysctl.js';
import { ipToString } from '../wire/ipv4.js';
import { NET_PCBLIST, NET_SETUP, PCB_ROW_WORDS } from '../net/mpnet.js';
import { NET_HANDLERS, netQuiesce, System } from './topology.js';
import type { PcbRow } from '../netinet/udp_socket.js';

export { NET_HANDLERS, netQuiesce } from './topology.js';

/** Host addresses of the two-host setup (host 0 = client, host 1 = server). */
export const HOST0 = 0x0a000001; // 10.0.0.1
export const HOST1 = 0x0a000002; // 10.0.0.2

/** NET_SETUP on every CPU: both hosts' stacks, joined by the cross-CPU link. */
export async function netSetup(m: Machine, ip0 = HOST0, ip1 = HOST1, statDir = 0): Promise<void> {
  for (let c = 0; c < m.ncpus; c++) {
    const [e] = await m.call(c, NET_SETUP, [ip0, ip1, statDir]);
    if (e !== 0) throw new Error(`net setup on cpu${c}: errno ${e}`);
  }
}


/**
 * Start `ncpus` CPU workers running the stack's handlers (NET_HANDLERS), for
 * startNet and startTapNet. The stats directory, allocated by the caller,
 * is freed when the machine cannot start (the error is rethrown). Main thread.
 */
export async function startNetMachine(uma: Uma, ncpus: number, statDir: number, spinUs: number): Promise<Machine> {
  try {
    return await Machine.start({ uma, ncpus, handlers: [NET_HANDLERS], spinUs });
  } catch (e) {
    freeStatDir(uma, statDir);
    throw e;
  }
}

/**
 * The stop shared by startNet and startTapNet: quiesce every CPU's stacks,
 * then (even when that failed) stop the machine, free the stats directory
 * and drain the packet cache. The user's sockets must be closed first.
 */
export async function stopNetMachine(machine: Machine, uma: Uma, mb: Mbufs, statDir: number): Promise<void> {
  try {
    await netQuiesce(machine);
  } finally {
    await machine.stop();
    freeStatDir(uma, statDir);
    mb.drainPacketCache();
  }
}

/** Every UDP PCB of every CPU, paging through NET_PCBLIST. */
export async function pcbList(layer: SocketLayer): Promise<PcbRow[]> {
  const rows: PcbRow[] = [];
  for (let cpu = 0; cpu < layer.ctx.ncpus; cpu++) {
    for (let start = 0; ; ) {
      const r = await layer.request(cpu, NET_PCBLIST, [start], new Uint8Array(128), 2);
      if (r.err !== 0 || r.out === null) throw new Error(`pcblist on cpu${cpu}: errno ${r.err}`);
      const [total, n] = r.res;
      const v = new Int32Array(r.out.buffer.slice(r.out.byteOffset, r.out.byteOffset + n * PCB_ROW_WORDS * 4));
      for (let i = 0; i < n; i++) {
        const o = i * PCB_ROW_WORDS;
        rows.push({ cpu, host: v[o], laddr: v[o + 1] >>> 0, lport: v[o + 2], faddr: v[o + 3] >>> 0, fport: v[o + 4], queued: v[o + 5], user: v[o + 6] !== 0 });
      }
      start += n;
      if (n === 0 || start >= total) break;
    }
  }
  return rows;
}

/** netstat -an in FreeBSD's layout, with the CPU and host of each PCB. */
export function formatNetstatAn(rows: PcbRow[]): string {
  const ep = (a: number, p: number) => (a === 0 && p === 0 ? '*.*' : `${a === 0 ? '*' : ipToString(a)}.${p === 0 ? '*' : p}`);
  const out = ['Active Internet connections (including servers)', `${'Proto'.padEnd(6)}${'Recv-Q'.padStart(7)} ${'Send-Q'.padStart(6)}  ${'Local Address'.padEnd(22)} ${'Foreign Address'.padEnd(22)} ${'(state)'.padEnd(8)} ${'CPU'.padStart(3)} HOST OWNER`];
  const sorted = [...rows].sort((a, b) => a.host - b.host || a.lport - b.lport || a.cpu - b.cpu);
  for (const r of sorted) {
    out.push(
      `${'udp4'.padEnd(6)}${String(r.queued).padStart(7)} ${'0'.padStart(6)}  ${ep(r.laddr, r.lport).padEnd(22)} ${ep(r.faddr, r.fport).padEnd(22)} ${''.padEnd(8)} ${String(r.cpu).padStart(3)} ${String(r.host).padStart(4)} ${r.user ? 'user' : 'stack'}`,
    );
  }
  return out.join('\n');
}

/** A machine running the two-host stack, seen from the main thread. */
export interface NetSystem {
  uma: Uma;
  mb: Mbufs;
  machine: Machine;
  layer: SocketLayer;
  /** This thread's sysctl tree, with the stack's tunables (shared with every CPU). */
  sysctl: Sysctl;
  /** The system underneath (topology.ts): add stacks and interfaces, then up(). */
  system: System;
  /** netstat -s of a host, summed over every CPU from the arena. */
  stats(host: number): NetStats;
  /** netstat -i rows of both hosts, summed over every CPU. */
  netstatI(): string;
  /** Close the user's sockets first; then this quiesces, stops the machine and frees the counters. */
  stop(): Promise<void>;
}

/**
 * The classic set-up on the topology API: a machine of `ncpus` CPUs with
 * host0 10.0.0.1 and host1 10.0.0.2 on one in-memory link (hosts 0 and 1
 * for createSocket(layer, { host })).
 */
export async function startNet(opts: { ncpus: number; uma?: Uma; arenaSize?: number; spinUs?: number }): Promise<NetSystem> {
  const sys = await System.start({ cpus: opts.ncpus, uma: opts.uma, arenaSize: opts.arenaSize ?? 256 << 20, spinUs: opts.spinUs ?? 0 });
  sys.link(sys.addStack('host0'), sys.addStack('host1'), { a: '10.0.0.1/24', b: '10.0.0.2/24', names: ['xl0', 'xl0'] });
  await sys.up();
  const hosts = sys.stacks;
  return {
    uma: sys.uma,
    mb: sys.mb,
    machine: sys.machine!,
    layer: sys.layer!,
    sysctl: sys.sysctl,
    system: sys,
    stats: (host) => hosts[host].stats(),
    netstatI: () => formatNetstatI(hosts.map((h, i) => ({ name: `xl0/h${i}`, mtu: 1500, addr: ipToString(h.interfaces[0].addrs[0].addr), ifc: h.interfaces[0].counters() }))),
    stop: () => sys.stop(),
  };
}
