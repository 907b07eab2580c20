/**
 * A machine whose CPUs serve one multi-queue Linux TAP, the short form of
 * the topology API (one System of `ncpus` CPUs, one stack, one TAP
 * interface: queue i of the device on CPU i, in order, so the kernel's
 * queue numbers match the CPUs): start it, read the per-queue counters,
 * sum the protocol and interface counters, and stop. Runs in the main
 * thread (or a user worker); every call to the CPUs is an awaited message.
 */
import type { Machine } from '../kern/lwkt/machine.js';
import type { SocketLayer } from '../kern/socket/socket.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { Uma } from '../uma/uma.js';
import { SlabnetError } from '../kern/errors.js';
import { EBUSY, ENOENT, EOPNOTSUPP, EPERM, errnoName } from '../kern/errno.js';
import { ipToString } from '../wire/ipv4.js';
import { formatNetstatI } from '../net/netstats.js';
import type { NetStats } from '../netinet/stats.js';
import { NET_TAP_STATS, TAP_STAT_WORDS } from '../net/mpnet.js';
import { randomTapMac, TQ_NAMES } from '../net/phy/tap.js';
import { loadTapAddon } from '../net/phy/tap-addon.js';
import { toAddr, type Addr } from '../netinet/stack.js';
import { RefusedError, System, type Interface, type NetStack } from './topology.js';

/** A TAP queue failed to open on a CPU; `code` as the addon's (ERR_SLABNET_TAP_PERM, _NODEV, _BUSY, _ADDON, ERR_SLABNET_TAP). */
export class TapNetError extends SlabnetError {
  readonly cpu: number;
  constructor(code: string, cpu: number, message: string) {
    super(code, message);
    this.cpu = cpu;
  }
}

function tapError(errno: number, cpu: number, name: string): TapNetError {
  const what = `TAP ${name} queue ${cpu} on cpu${cpu}: ${errnoName(errno)}`;
  switch (errno) {
    case EPERM:
      return new TapNetError('ERR_SLABNET_TAP_PERM', cpu, `${what} (TAP devices need root or CAP_NET_ADMIN)`);
    case ENOENT:
      return new TapNetError('ERR_SLABNET_TAP_NODEV', cpu, `${what} (no /dev/net/tun: is the tun module loaded or the device passed into this container?)`);
    case EBUSY:
      return new TapNetError('ERR_SLABNET_TAP_BUSY', cpu, `${what} (the interface exists and is not a multi-queue TAP we may attach to)`);
    case EOPNOTSUPP:
      return new TapNetError('ERR_SLABNET_TAP_ADDON', cpu, `${what} (the native TAP addon is not built: npm run build:native)`);
    default:
      return new TapNetError('ERR_SLABNET_TAP', cpu, what);
  }
}

export interface TapNetOptions {
  ncpus: number;
  /** Our address on the TAP link and its prefix length. */
  addr: Addr;
  prefix?: number;
  /** Device name (at most 15 bytes); "" or none: slabnet<pid><n>. */
  name?: string;
  mac?: number;
  mtu?: number;
  /** Frames read per queue wake-up. */
  batch?: number;
  /** IFF_VNET_HDR with checksum and segmentation offload (default true). */
  offload?: boolean;
  uma?: Uma;
  arenaSize?: number;
}

/** One CPU's queue counters (tap.ts TQ_NAMES) and its handoffs. */
export interface TapQueueStats {
  cpu: number;
  queue: number;
  counters: Record<(typeof TQ_NAMES)[number], number>;
  /** Frames this CPU read for a flow another CPU owns, and handed over. */
  handedOff: number;
  /** Frames other CPUs read for flows this CPU owns. */
  fromOthers: number;
  /** ARP mappings CPU 0 forwarded to this CPU. */
  arpForwarded: number;
  /** The MAC this CPU's ARP table holds for the address asked about (-1: none). */
  arpMac: number;
}

export interface TapNet {
  /** The System underneath (one stack, one TAP interface). */
  sys: System;
  stack: NetStack;
  tap: Interface;
  uma: Uma;
  mb: Mbufs;
  machine: Machine;
  layer: SocketLayer;
  /** The kernel's name of the device. */
  name: string;
  /** The stack's host index on every CPU (for NET_ECHO_BIND, NET_DNS_BIND, user sockets). */
  host: number;
  addr: number;
  mac: number;
  mtu: number;
  /** Per-CPU (= per-queue) counters, by message to each CPU; with `arpIp`, each CPU's ARP entry for it. */
  queueStats(arpIp?: Addr): Promise<TapQueueStats[]>;
  /** netstat -s summed over the CPUs from the arena. */
  stats(): NetStats;
  /** The TAP interface's if_data counters summed over the CPUs (IFC_* order). */
  ifCounters(): Float64Array;
  /** netstat -i row of the TAP interface, summed over the CPUs. */
  netstatI(): string;
  /** Close the user's sockets first; then this closes every queue (the device goes away) and stops the machine. */
  stop(): Promise<void>;
}

let nextName = 0;

/**
 * Start `ncpus` CPUs and attach each to its own queue of one multi-queue
 * TAP. Throws TapAddonError when the addon is not built and TapNetError
 * (with the addon's code) when a queue cannot be opened; nothing is left
 * running then.
 */
export async function startTapNet(o: TapNetOptions): Promise<TapNet> {
  loadTapAddon(); // a missing addon is reported here, before any CPU starts
  const uma = o.uma ?? Uma.create({ size: o.arenaSize ?? 128 << 20, ncpus: o.ncpus + 4 });
  const addr = toAddr(o.addr);
  const prefix = o.prefix ?? 24;
  const mac = o.mac ?? randomTapMac();
  const mtu = o.mtu ?? 1500;
  const name = o.name || `slabnet${process.pid % 100000}${nextName++}`.slice(0, 15);
  const sys = await System.start({ cpus: o.ncpus, uma });
  let stack: NetStack;
  let tap: Interface;
  try {
    stack = sys.addStack(name);
    tap = stack.addTap(name, { addrs: `${ipToString(addr)}/${prefix}`, mac, mtu, batch: o.batch, offload: o.offload });
    await sys.up();
  } catch (e) {
    await sys.stop();
    throw e instanceof RefusedError ? tapError(e.errno, e.cpu, name) : e;
  }
  const machine = sys.machine!;
  const host = stack.index;
  return {
    sys,
    stack,
    tap,
    uma,
    mb: sys.mb,
    machine,
    layer: sys.layer!,
    name,
    host,
    addr,
    mac,
    mtu,
    async queueStats(arpIp?: Addr) {
      const out: TapQueueStats[] = [];
      const ip = arpIp === undefined ? 0 : toAddr(arpIp) | 0;
      for (let c = 0; c < machine.ncpus; c++) {
        const [e, queue, ...r] = await machine.call(c, NET_TAP_STATS, [host, ip], 6 + TAP_STAT_WORDS);
        if (e !== 0) throw tapError(e, c, name);
        const counters = {} as TapQueueStats['counters'];
        TQ_NAMES.forEach((n, i) => (counters[n] = r[i]));
        const [handedOff, fromOthers, arpForwarded, macHi, macLo] = r.slice(TAP_STAT_WORDS);
        const arpMac = macHi < 0 ? -1 : macHi * 0x1_0000_0000 + (macLo >>> 0);
        out.push({ cpu: c, queue, counters, handedOff, fromOthers, arpForwarded, arpMac });
      }
      return out;
    },
    stats: () => stack.stats(),
    ifCounters: () => tap.counters(),
    netstatI: () => formatNetstatI([{ name, mtu, addr: ipToString(addr), ifc: tap.counters() }]),
    stop: () => sys.stop(),
  };
}

/** The per-queue table: one row per CPU. */
export function formatTapQueues(rows: TapQueueStats[]): string {
  const h = `${'CPU'.padStart(3)} ${'Queue'.padStart(5)} ${'RxFrames'.padStart(9)} ${'Rx->Other'.padStart(9)} ${'FromOther'.padStart(9)} ${'TxFrames'.padStart(9)} ${'RxErr'.padStart(6)} ${'TxErr'.padStart(6)} ${'Wakeups'.padStart(8)}`;
  return [
    h,
    ...rows.map(
      (r) =>
        `${String(r.cpu).padStart(3)} ${String(r.queue).padStart(5)} ${String(r.counters.rxframes).padStart(9)} ${String(r.handedOff).padStart(9)} ${String(r.fromOthers).padStart(9)} ${String(r.counters.txframes).padStart(9)} ${String(r.counters.rxerrors).padStart(6)} ${String(r.counters.txerrors).padStart(6)} ${String(r.counters.wakeups).padStart(8)}`,
    ),
  ].join('\n');
}
