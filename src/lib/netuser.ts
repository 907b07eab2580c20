/**
 * The user thread's view of a machine running the network stack (mpnet.ts):
 * bring the two hosts up on every CPU, read the socket table of every CPU
 * (netstat -an) and the protocol counters. Runs in the main thread (or any
 * user worker); every call is a message to the CPUs, awaited asynchronously.
 */
import { fileURLToPath } from 'node:url';
import { Machine } from '../kern/lwkt/machine.js';
import { SocketLayer } from '../kern/socket/socket.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { Uma } from '../uma/uma.js';
import { allocStatDir, formatNetstatI, freeStatDir, sumHost } from '../net/netstats.js';
import type { NetStats } from '../netinet/stats.js';
import { registerStackSysctls } from '../netinet/tunables.js';
import { sysctlFor } from '../kern/sysctl/vm.js';
import type { Sysctl } from '../kern/sysctl/sysctl.js';
import { ipToString } from '../wire/ipv4.js';
import { NET_PCBLIST, NET_QUIESCE, NET_SETUP, PCB_ROW_WORDS } from '../net/mpnet.js';
import type { PcbRow } from '../netinet/udp_socket.js';

/** Path of the stack's handler module, for Machine.start({ handlers }). */
export const NET_HANDLERS = fileURLToPath(new URL('../net/mpnet.js', import.meta.url));

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

/** Close every CPU's stacks (before machine.stop(), after the user's sockets are closed). */
export async function netQuiesce(m: Machine): Promise<void> {
  for (let c = 0; c < m.ncpus; c++) await m.call(c, NET_QUIESCE);
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
  /** Stats directory in the arena (netstats.ts). */
  statDir: number;
  /** netstat -s of a host, summed over every CPU from the arena. */
  stats(host: number): NetStats;
  /** netstat -i rows of both hosts, summed over every CPU. */
  netstatI(): string;
  /** Close the user's sockets first; then this quiesces, stops the machine and frees the counters. */
  stop(): Promise<void>;
}

/** Start a machine of `ncpus` CPUs with the stack, both hosts up, counters in the arena. */
export async function startNet(opts: { ncpus: number; uma?: Uma; arenaSize?: number; spinUs?: number }): Promise<NetSystem> {
  const uma = opts.uma ?? Uma.create({ size: opts.arenaSize ?? 256 << 20, ncpus: opts.ncpus + 4 });
  const mb = Mbufs.create(uma);
  const statDir = allocStatDir(uma, opts.ncpus, 2);
  const machine = await startNetMachine(uma, opts.ncpus, statDir, opts.spinUs ?? 0);
  const layer = new SocketLayer(machine.ctx, mb);
  const sab = uma.arena.sab;
  const sysctl = sysctlFor(uma);
  registerStackSysctls(sysctl, uma.arena, mb);
  await netSetup(machine, HOST0, HOST1, statDir);
  let stopped = false;
  return {
    uma,
    mb,
    machine,
    layer,
    sysctl,
    statDir,
    stats: (host) => sumHost(sab, statDir, host).stats,
    netstatI: () =>
      formatNetstatI(
        [HOST0, HOST1].map((a, h) => ({ name: `xl0/h${h}`, mtu: 1500, addr: ipToString(a), ifc: sumHost(sab, statDir, h).ifc })),
      ),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopNetMachine(machine, uma, mb, statDir);
    },
  };
}
