/**
 * The network stack on the MP core's CPUs (a handler module loaded in every
 * CPU worker by Machine.start({handlers: [<this file>]})).
 *
 * Each CPU runs its own instance of every host's stack (DragonFly's per-CPU
 * protocol threads): its own ARP cache, reassembly queues, UDP PCBs and
 * counters, all thread-local with no lock. Hosts are joined by a cross-CPU
 * in-memory link: a frame sent by host A is handed, by mbuf handle in a
 * message (zero copy), to the CPU that owns its flow on host B, chosen by the
 * Toeplitz hash of its addresses and ports as RSS does (2-tuple for
 * fragments so every fragment of a datagram meets on one CPU; an ICMP
 * unreachable quoting a UDP datagram by the quoted flow, so its error meets
 * the connected PCB). Transmit happens from any CPU.
 *
 * UDP follows the per-CPU design: an unconnected (server) socket is bound on
 * every CPU, so a busy server is served by all of them; a connected (client)
 * socket lives on exactly one CPU, the one its replies hash to: its local
 * port is chosen so that the 4-tuple of the replies lands on the CPU that
 * owns the socket.
 *
 * Commands (numeric arguments only):
 *   NET_SETUP(host0 ip, host1 ip, dir)  make both hosts on this CPU, with static ARP; counters in
 *                                       the arena blocks of stats directory `dir` (netstats.ts) if nonzero
 *   NET_INPUT(mbuf, host)               a frame for `host` (sent by another CPU)
 *   NET_INPUT_DGRAM(mbuf, host)         a reassembled datagram whose 4-tuple belongs to this CPU
 *   NET_ECHO_BIND(host, port)           an echo server socket on this CPU
 *   NET_LOADGEN(host, dst, port, count, window, size, reqCpu) -> replies, us, lport, misses
 *                                       (reqCpu >= 0: requests must land on that CPU of the peer)
 *   NET_STATS(host) -> udp delivered, udp opackets, frames received from other CPUs, ip fragments
 *   NET_QUIESCE()                       close this CPU's stacks (frames in flight get freed)
 *   NET_DNS_BIND(host, port)            a DNS-like responder (dns.ts) on this CPU
 *   NET_PCBLIST(start) -> total, rows   UDP PCBs of this CPU from row `start`, up to PCB_ROWS rows
 *                                       of PCB_ROW_WORDS ints in the payload (netstat -an)
 *   NET_TAP_OPEN(ip, prefix, macHi, macLo, mtu, statDir, statHost, name0..3, batch)
 *                 -> host, name0..3     a host on a multi-queue Linux TAP: this CPU attaches the next
 *                                       queue of the device (create it on CPU 0 first, then CPUs
 *                                       1..n-1 in order, so queue i is CPU i's); see "TAP" below
 *   NET_TAP_STATS(host, ip) -> queue, TAP_STAT_WORDS counters, handed off, from others,
 *                 ARP mappings forwarded to this CPU, MAC of `ip` in this CPU's ARP table (hi, lo; -1 -1 if none)
 *   NET_TAP_ARP(host, ip, macHi, macLo)  CPU 0 learned a mapping on the TAP host: record it here too
 *
 * TAP (multi-queue, one queue per CPU): each CPU polls its own queue from
 * its own event loop (the addon's uv_poll; the protocol thread's poll hook
 * keeps reading while the CPU is busy) and reads frames into clusters. The
 * kernel picks the queue by its own flow hash (and, once we answered a flow,
 * by the queue we answered on), so a frame may land on a CPU that does not
 * own its flow: that CPU hands the mbuf to the owner by handle (NET_INPUT),
 * as the in-memory link does. Transmit is always on the sending CPU's queue.
 * ARP is per-CPU but kept consistent, DragonFly style: every ARP frame goes
 * to CPU 0 (frameCpu returns 0 for non-IPv4), which answers requests and,
 * whenever it learns or refreshes a mapping, forwards it to every other
 * CPU (NET_TAP_ARP), whose tables then hold the same entries; a CPU that
 * must resolve an address itself asks from its own queue and learns the
 * answer through CPU 0. Only CPU 0 announces the address (gratuitous ARP).
 *
 * Loading this module also loads the socket layer (src/kern/socket/handlers.ts)
 * when it is not loaded yet, and registers UDP in the protocol switch
 * (udpsock.ts), so user threads' sockets reach these stacks through PRU_*
 * messages. List it alone, or after the socket layer's module.
 */
import { MBUF_ARG0, type ProtocolThread } from '../kern/lwkt/protothread.js';
import { EJUSTRETURN, EINVAL } from '../kern/errno.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN } from '../kern/mbuf/layout.js';
import { ETH_HLEN, ETHERTYPE_IPV4, ethType } from '../wire/ethernet.js';
import { IP_MF, IP_OFFMASK, IPPROTO_ICMP, IPPROTO_UDP, ipDst, ipHlen, ipOffField, ipProto, ipSrc, ipToString } from '../wire/ipv4.js';
import { udpDport, udpSport } from '../wire/udp.js';
import { ICMP_HLEN, ICMP_UNREACH } from '../wire/icmp.js';
import { IFC_IQDROPS, IFC_OQDROPS, Ifnet, type IfDriver } from './if.js';
import { Stack } from '../netinet/stack.js';
import { createSocket, type Socket } from '../lib/dgram.js';
import { pullup } from './mchain.js';
import { rssCpu, toeplitz2, toeplitz4 } from './rss.js';
import { UDPS, IPS } from '../netinet/stats.js';
import { register as registerSocketLayer } from '../kern/socket/handlers.js';
import { registerProtocol } from '../kern/socket/protosw.js';
import type { SockBufs } from '../kern/socket/sockbuf.js';
import { udpProtocol, type PcbRow } from '../netinet/udp_socket.js';
import { dnsAnswer } from '../apps/dns.js';
import { statBlock } from './netstats.js';
import { TapQueueDriver, TQ_NAMES } from './phy/tap.js';
import { ETHERTYPE_ARP } from '../wire/ethernet.js';
import { ARP_LEN, arpParse, arpSha, arpSpa } from '../wire/arp.js';
import { WIRE_OK } from '../wire/codes.js';
import { EBUSY, ENOENT, EOPNOTSUPP, EPERM } from '../kern/errno.js';
import { bindStackTunables, registerNetSysctls } from '../netinet/tunables.js';
import { Sysctl } from '../kern/sysctl/sysctl.js';

export const NET_SETUP = 0x5101;
export const NET_INPUT = 0x5102;
export const NET_ECHO_BIND = 0x5103;
export const NET_LOADGEN = 0x5104;
export const NET_STATS = 0x5105;
export const NET_QUIESCE = 0x5106;
export const NET_INPUT_DGRAM = 0x5107;
export const NET_DNS_BIND = 0x5108;
export const NET_PCBLIST = 0x5109;
export const NET_TAP_OPEN = 0x510a;
export const NET_TAP_STATS = 0x510b;
export const NET_TAP_ARP = 0x510c;

/** Per-queue counters returned by NET_TAP_STATS after the queue index (tapif.ts TQ_*). */
export const TAP_STAT_WORDS = TQ_NAMES.length;

/** An interface name (at most 15 ASCII bytes) packed into 4 Int32 message words, and back. */
export function packIfName(name: string): number[] {
  const b = Buffer.alloc(16);
  b.write(name.slice(0, 15), 'latin1');
  return [b.readInt32LE(0), b.readInt32LE(4), b.readInt32LE(8), b.readInt32LE(12)];
}
export function unpackIfName(w: ArrayLike<number>): string {
  const b = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) b.writeInt32LE(w[i] | 0, i * 4);
  const z = b.indexOf(0);
  return b.toString('latin1', 0, z < 0 ? 16 : z);
}

/** errno for a failed TAP open (the coded errors of tap-addon.ts / native/tap.c). */
function tapErrno(e: unknown): number {
  switch ((e as { code?: string }).code) {
    case 'ERR_SLABNET_TAP_PERM':
      return EPERM;
    case 'ERR_SLABNET_TAP_NODEV':
      return ENOENT;
    case 'ERR_SLABNET_TAP_BUSY':
      return EBUSY;
    case 'ERR_SLABNET_TAP_ADDON':
      return EOPNOTSUPP;
    default:
      return EINVAL;
  }
}

/** netstat -an rows per NET_PCBLIST reply, and ints per row: host, laddr, lport, faddr, fport, queued, user. */
export const PCB_ROWS = 4;
export const PCB_ROW_WORDS = 7;

const MAC_BASE = 0x0200_0000_1000;

/**
 * The CPU that owns a frame's flow among n: by the RSS hash of the IPv4
 * addresses and, for unfragmented UDP, the ports; CPU 0 for anything else.
 * Reads only bytes inside the frame's first mbuf.
 */
export function frameCpu(u8: Uint8Array, f: number, len: number, ncpus: number): number {
  if (ncpus === 1 || len < ETH_HLEN + 20 || ethType(u8, f) !== ETHERTYPE_IPV4) return 0;
  const ip = f + ETH_HLEN;
  const src = ipSrc(u8, ip);
  const dst = ipDst(u8, ip);
  const hl = ipHlen(u8, ip);
  if ((ipOffField(u8, ip) & (IP_MF | IP_OFFMASK)) === 0 && ipProto(u8, ip) === IPPROTO_UDP && len >= ETH_HLEN + hl + 8) {
    return rssCpu(toeplitz4(src, dst, udpSport(u8, ip + hl), udpDport(u8, ip + hl)), ncpus);
  }
  const q = icmpQuotedUdp(u8, ip, hl, f + len);
  if (q >= 0) return rssCpu(q, ncpus);
  return rssCpu(toeplitz2(src, dst), ncpus);
}

/**
 * DragonFly's udp_ctlport: an ICMP destination unreachable about a UDP
 * datagram we sent must reach the CPU that owns the quoted flow, since a
 * connected PCB exists on that CPU only (the ICMP's own 2-tuple would pick
 * an arbitrary CPU whose stack has no such PCB, and the ECONNREFUSED would
 * be lost). The quoted datagram went laddr:lport -> faddr:fport; its replies,
 * which decide the owning CPU (connectedCpu), hash as faddr:fport ->
 * laddr:lport. Returns that hash, or -1 when the frame is not an
 * unfragmented ICMP unreachable quoting the ports of a first UDP fragment
 * within [ip, end). Reads bytes only; no lock, never sleeps.
 */
function icmpQuotedUdp(u8: Uint8Array, ip: number, hl: number, end: number): number {
  if ((ipOffField(u8, ip) & (IP_MF | IP_OFFMASK)) !== 0 || ipProto(u8, ip) !== IPPROTO_ICMP) return -1;
  const icmp = ip + hl;
  const q = icmp + ICMP_HLEN;
  if (q + 20 > end || u8[icmp] !== ICMP_UNREACH || u8[q] >> 4 !== 4) return -1;
  const qhl = ipHlen(u8, q);
  if (qhl < 20 || q + qhl + 4 > end || ipProto(u8, q) !== IPPROTO_UDP || (ipOffField(u8, q) & IP_OFFMASK) !== 0) return -1;
  return toeplitz4(ipDst(u8, q), ipSrc(u8, q), udpDport(u8, q + qhl), udpSport(u8, q + qhl));
}

interface Host {
  stack: Stack;
  ifp: Ifnet;
  closed: boolean;
  /** Frames that arrived from another CPU. */
  fromOthers: number;
  /** TAP hosts: this CPU's queue, and frames it read for other CPUs. */
  tap?: TapQueueDriver;
  handedOff?: number;
  /** ARP mappings CPU 0 forwarded to this CPU (NET_TAP_ARP). */
  arpForwarded?: number;
}

/** Transmit side of the cross-CPU link: dispatch each frame to its flow's CPU on the peer host. */
class CrossCpuDriver implements IfDriver {
  private localQ: number[] = [];
  /**
   * Frames for this same CPU are delivered by the protocol thread's own pass
   * (a poll hook, as for any interface the CPU owns), never by a JS timer: an
   * idle CPU may block its event loop (kern.mp.idle_block_us), and a
   * setImmediate would then wait out the whole block.
   */
  private readonly pollLocal = (): number => this.drainLocal();
  constructor(
    private readonly td: ProtocolThread,
    private readonly mb: Mbufs,
    private readonly hosts: Host[],
    private readonly peer: number,
  ) {
    td.pollHooks.push(this.pollLocal);
  }

  output(ifp: Ifnet, m: number): void {
    const mb = this.mb;
    const i32 = mb.i32;
    const ctx = this.td.ctx;
    const cpu = frameCpu(mb.u8, i32[(m + M_DATA) >> 2], i32[(m + M_LEN) >> 2], ctx.ncpus);
    if (cpu === this.td.cpu) {
      // Same CPU: deliver on a later turn, never re-entering the sender.
      this.localQ.push(m);
      // Usually called from the loop's pass, which polls again; from elsewhere
      // (a device callback) the loop may be asleep and must be woken.
      if (this.localQ.length === 1) this.td.kick();
      return;
    }
    const msg = ctx.allocmsg(NET_INPUT);
    if (msg === 0) {
      ifp.counters[IFC_OQDROPS]++;
      mb.m_freem(m);
      return;
    }
    ctx.setArg(msg, 0, m);
    ctx.setArg(msg, 1, this.peer);
    if (!ctx.sendmsg(cpu, msg)) {
      // Port full (backpressure) or machine stopping: drop, as a full NIC ring does (frees the frame too).
      ctx.dropmsg(msg);
      ifp.counters[IFC_OQDROPS]++;
    }
  }

  /** Deliver the frames queued for this CPU; returns how many (work for the loop). */
  private drainLocal(): number {
    const q = this.localQ;
    if (q.length === 0) return 0;
    this.localQ = [];
    const h = this.hosts[this.peer];
    for (const m of q) {
      if (h.closed) this.mb.m_freem(m);
      else h.ifp.input(m);
    }
    return q.length;
  }

  detach(): void {
    for (const m of this.localQ) this.mb.m_freem(m);
    this.localQ = [];
    const i = this.td.pollHooks.indexOf(this.pollLocal);
    if (i >= 0) this.td.pollHooks.splice(i, 1);
  }
}

/**
 * Find a local port whose replies from (faddr, fport) hash to `cpu` (per-CPU
 * PCB placement); with reqCpu >= 0 the requests must also hash to reqCpu on
 * the peer (tests use it to force frames across CPUs).
 */
export function portForCpu(laddr: number, faddr: number, fport: number, cpu: number, ncpus: number, start: number, reqCpu = -1): number {
  for (let k = 0; k < 16384; k++) {
    const p = 49152 + ((start + k) % 16384);
    if (rssCpu(toeplitz4(faddr, laddr, fport, p), ncpus) !== cpu) continue;
    if (reqCpu >= 0 && rssCpu(toeplitz4(laddr, faddr, p, fport), ncpus) !== reqCpu) continue;
    return p;
  }
  return 0;
}

export function register(td: ProtocolThread): void {
  const ctx = td.ctx;
  if (!td.layers.has('sockbufs')) registerSocketLayer(td);
  const mb = td.layers.get('mbufs') as Mbufs;
  const sbs = td.layers.get('sockbufs') as SockBufs;
  const hosts: Host[] = [];
  const sockets: Socket[] = [];
  /** Running NET_LOADGENs: each one's finish (answers its message). */
  const loadgens = new Set<() => void>();
  const udpsw = udpProtocol(td, mb, sbs, (h) => (hosts[h] !== undefined && !hosts[h].closed ? hosts[h].stack : null));
  registerProtocol(udpsw);
  // The stack's tunables are arena words: a sysctl set in any thread reaches every CPU's stacks.
  let sysctl = td.layers.get('sysctl') as Sysctl | undefined;
  if (sysctl === undefined) td.layers.set('sysctl', (sysctl = new Sysctl()));
  registerNetSysctls(sysctl, ctx.uma.arena);

  td.register(NET_SETUP, 'net setup', (_td, msg) => {
    if (hosts.length > 0) return EINVAL;
    const ips = [ctx.arg(msg, 0) >>> 0, ctx.arg(msg, 1) >>> 0];
    for (let h = 0; h < 2; h++) {
      // Counters in the arena when the user gave a directory (NET_SETUP arg 2), so any thread can sum them.
      const blk = statBlock(ctx.i32.buffer as SharedArrayBuffer, ctx.arg(msg, 2), h, td.cpu);
      const stack = new Stack(mb, { name: `host${h}.cpu${td.cpu}`, seed: 1 + h * 64 + td.cpu, stats: blk?.stats, thread: td });
      const ifp = new Ifnet(mb, 'xl0', MAC_BASE + h);
      if (blk !== null) ifp.counters = blk.ifc;
      bindStackTunables(stack, ctx.uma.arena, [ifp]);
      hosts.push({ stack, ifp, closed: false, fromOthers: 0 });
    }
    for (let h = 0; h < 2; h++) {
      const { stack, ifp } = hosts[h];
      stack.redispatch = (m) => redispatch(h, m);
      ifp.driver = new CrossCpuDriver(td, mb, hosts, 1 - h);
      stack.addInterface(ifp);
      // Address without a gratuitous announcement: every CPU has static ARP for the peer.
      ifp.addrs.push({ addr: ips[h], mask: 0xffffff00, broadcast: (ips[h] | 0xff) >>> 0 });
      stack.routes.add(ips[h], 24, 0, ifp);
      stack.arp.set(ifp, ips[1 - h], MAC_BASE + 1 - h);
    }
    return 0;
  });

  /** A reassembled UDP datagram goes to the CPU of its 4-tuple (where its PCB lives). */
  const redispatch = (host: number, m: number): boolean => {
    if (ctx.ncpus === 1) return false;
    const i32 = mb.i32;
    m = pullup(mb, m, 28);
    if (m === 0) return true; // freed (too short): counted as consumed
    const ip = i32[(m + M_DATA) >> 2];
    const u8 = mb.u8;
    if (ipProto(u8, ip) !== IPPROTO_UDP || i32[(m + M_LEN) >> 2] < ipHlen(u8, ip) + 8) {
      hosts[host].stack.ipDeliver(m);
      return true;
    }
    const hl = ipHlen(u8, ip);
    const cpu = rssCpu(toeplitz4(ipSrc(u8, ip), ipDst(u8, ip), udpSport(u8, ip + hl), udpDport(u8, ip + hl)), ctx.ncpus);
    if (cpu === td.cpu) {
      hosts[host].stack.ipDeliver(m);
      return true;
    }
    const msg = ctx.allocmsg(NET_INPUT_DGRAM);
    if (msg === 0) {
      mb.m_freem(m);
      return true;
    }
    ctx.setArg(msg, 0, m);
    ctx.setArg(msg, 1, host);
    if (!ctx.sendmsg(cpu, msg)) ctx.dropmsg(msg); // frees the datagram too
    return true;
  };

  td.register(NET_INPUT_DGRAM, 'net input dgram', (_td, msg) => {
    const m = ctx.arg(msg, 0);
    const h = hosts[ctx.arg(msg, 1)];
    if (h === undefined || h.closed) mb.m_freem(m);
    else h.stack.ipDeliver(m);
    return 0;
  }, undefined, MBUF_ARG0);

  td.register(NET_INPUT, 'net input', (_td, msg) => {
    const m = ctx.arg(msg, 0);
    const h = hosts[ctx.arg(msg, 1)];
    if (h === undefined || h.closed) {
      mb.m_freem(m);
      return 0;
    }
    h.fromOthers++;
    h.ifp.input(m);
    return 0;
  }, undefined, MBUF_ARG0);

  td.register(NET_ECHO_BIND, 'net echo bind', (_td, msg) => {
    const h = hosts[ctx.arg(msg, 0)];
    if (h === undefined) return EINVAL;
    const s = createSocket(h.stack, { type: 'udp4', recvBufferSize: 4 << 20 }, (m, r) => s.send(m, r.port, r.address));
    sockets.push(s);
    s.bind(ctx.arg(msg, 1));
    return 0;
  });

  td.register(NET_DNS_BIND, 'net dns bind', (_td, msg) => {
    const h = hosts[ctx.arg(msg, 0)];
    if (h === undefined) return EINVAL;
    const s = createSocket(h.stack, { type: 'udp4', recvBufferSize: 4 << 20 }, (q, r) => {
      const a = dnsAnswer(q);
      if (a !== null) s.send(a, r.port, r.address);
      else h.stack.stats.udp[UDPS.badlen]++;
    });
    sockets.push(s);
    s.bind(ctx.arg(msg, 1));
    return 0;
  });

  /** The socket table of this CPU: in-stack sockets and user sockets' PCBs alike. */
  td.register(NET_PCBLIST, 'net pcblist', (_td, msg) => {
    const rows: PcbRow[] = [];
    const user = new Set(udpsw.rows().map((r) => `${r.host}:${r.lport}:${r.faddr}:${r.fport}`));
    rows.push(...udpsw.rows());
    hosts.forEach((h, host) => {
      for (const p of h.stack.udp.all()) {
        if (user.has(`${host}:${p.lport}:${p.faddr}:${p.fport}`)) continue;
        rows.push({ cpu: td.cpu, host, laddr: p.laddr, lport: p.lport, faddr: p.faddr, fport: p.fport, queued: p.rcvBytes, user: false });
      }
    });
    const start = ctx.arg(msg, 0);
    const out = new Int32Array(PCB_ROWS * PCB_ROW_WORDS);
    let n = 0;
    for (let i = start; i < rows.length && n < PCB_ROWS; i++, n++) {
      const r = rows[i];
      out.set([r.host, r.laddr | 0, r.lport, r.faddr | 0, r.fport, r.queued, r.user ? 1 : 0], n * PCB_ROW_WORDS);
    }
    ctx.setArg(msg, 0, rows.length);
    ctx.setArg(msg, 1, n);
    ctx.setPayload(msg, new Uint8Array(out.buffer, 0, n * PCB_ROW_WORDS * 4));
    return 0;
  });

  td.register(NET_LOADGEN, 'net loadgen', (_td, msg) => {
    const h = hosts[ctx.arg(msg, 0)];
    if (h === undefined) return EINVAL;
    const dst = ctx.arg(msg, 1) >>> 0;
    const port = ctx.arg(msg, 2);
    const count = ctx.arg(msg, 3);
    const window = Math.max(1, ctx.arg(msg, 4));
    const size = ctx.arg(msg, 5);
    const laddr = h.ifp.addr;
    const reqCpu = ctx.arg(msg, 6);
    const lport = portForCpu(laddr, dst, port, td.cpu, ctx.ncpus, (td.cpu * 7919) & 0x3fff, reqCpu);
    if (lport === 0) return EINVAL;
    const s = createSocket(h.stack, { type: 'udp4', recvBufferSize: 4 << 20 });
    sockets.push(s);
    s.bind(lport);
    s.connect(port, ipToString(dst));
    const req = Buffer.alloc(Math.max(4, size), 0x42);
    let sent = 0;
    let replies = 0;
    // The thread's clock and a callout, never performance.now() or a JS timer:
    // on a manual clock the run is deterministic, and stop cancels it.
    const t0 = td.clock.now();
    const timer = td.callouts.callout();
    const finish = (): void => {
      timer.stop();
      loadgens.delete(finish);
      ctx.setArg(msg, 0, replies);
      ctx.setArg(msg, 1, Math.round((td.clock.now() - t0) * 1000));
      ctx.setArg(msg, 2, lport);
      ctx.setArg(msg, 3, h.stack.stats.udp[UDPS.delivered] - replies);
      s.close();
      ctx.replymsg(msg, 0);
    };
    loadgens.add(finish);
    timer.reset(10000, finish);
    const sendOne = (): void => {
      req.writeUInt32BE(sent++, 0);
      s.send(req);
    };
    s.on('message', () => {
      replies++;
      if (replies === count) finish();
      else if (sent < count) sendOne();
    });
    s.on('connect', () => {
      for (let i = 0; i < Math.min(window, count); i++) sendOne();
    });
    // A refused request (ICMP port unreachable) is a miss, not a reason to fail the CPU.
    s.on('error', () => {});
    return EJUSTRETURN;
  });

  /**
   * A received TAP frame on this CPU: input here when this CPU owns its
   * flow, else hand the mbuf to the owner (NET_INPUT, by handle, no copy).
   * A full port or no message counts an input queue drop. Never sleeps.
   */
  const tapDeliver = (host: number, m: number): void => {
    const h = hosts[host];
    const i32 = mb.i32;
    const cpu = frameCpu(mb.u8, i32[(m + M_DATA) >> 2], i32[(m + M_LEN) >> 2], ctx.ncpus);
    if (cpu === td.cpu) {
      h.ifp.input(m);
      return;
    }
    const msg = ctx.allocmsg(NET_INPUT);
    if (msg === 0) {
      h.ifp.counters[IFC_IQDROPS]++;
      mb.m_freem(m);
      return;
    }
    ctx.setArg(msg, 0, m);
    ctx.setArg(msg, 1, host);
    if (!ctx.sendmsg(cpu, msg)) {
      ctx.dropmsg(msg); // frees the frame too
      h.ifp.counters[IFC_IQDROPS]++;
      return;
    }
    h.handedOff = (h.handedOff ?? 0) + 1;
  };

  /**
   * CPU 0 of a TAP host with several CPUs: after each ARP frame, if the
   * sender's mapping is (now) in CPU 0's table, forward it to every other
   * CPU so all tables agree. The frame is peeked before input (which frees it).
   */
  const arpForwarder = (host: number, inner: (ifp: Ifnet, m: number) => void) => (ifp: Ifnet, m: number): void => {
    const i32 = mb.i32;
    const u8 = mb.u8;
    const f = i32[(m + M_DATA) >> 2];
    const len = i32[(m + M_LEN) >> 2];
    let spa = -1;
    let sha = 0;
    if (len >= ETH_HLEN + ARP_LEN && ethType(u8, f) === ETHERTYPE_ARP && arpParse(u8, f + ETH_HLEN, len - ETH_HLEN) === WIRE_OK) {
      spa = arpSpa(u8, f + ETH_HLEN);
      sha = arpSha(u8, f + ETH_HLEN);
    }
    inner(ifp, m);
    if (spa <= 0 || hosts[host].stack.arp.lookup(ifp, spa) !== sha) return;
    for (let c = 0; c < ctx.ncpus; c++) {
      if (c === td.cpu) continue;
      const msg = ctx.allocmsg(NET_TAP_ARP);
      if (msg === 0) return;
      ctx.setArg(msg, 0, host);
      ctx.setArg(msg, 1, spa | 0);
      ctx.setArg(msg, 2, Math.floor(sha / 0x1_0000_0000));
      ctx.setArg(msg, 3, sha % 0x1_0000_0000 | 0);
      if (!ctx.sendmsg(c, msg)) ctx.freemsg(msg);
    }
  };

  td.register(NET_TAP_OPEN, 'net tap open', (_td, msg) => {
    const a = (i: number): number => ctx.arg(msg, i);
    const ip = a(0) >>> 0;
    const prefix = a(1);
    const mac = (a(2) & 0xffff) * 0x1_0000_0000 + (a(3) >>> 0);
    const mtu = a(4);
    const name = unpackIfName([a(7), a(8), a(9), a(10)]);
    if (prefix < 1 || prefix > 32 || mtu < 576 || mtu > 9000 || (td.cpu > 0 && name === '')) return EINVAL;
    const hi = hosts.length;
    let drv: TapQueueDriver;
    try {
      drv = TapQueueDriver.attach(mb, { name, index: td.cpu, mac, mtu, batch: a(11) > 0 ? a(11) : 64 }, (m) => tapDeliver(hi, m));
    } catch (e) {
      return tapErrno(e);
    }
    const ifp = drv.ifp;
    const blk = statBlock(ctx.i32.buffer as SharedArrayBuffer, a(5), a(6), td.cpu);
    const stack = new Stack(mb, { name: `${drv.name}.cpu${td.cpu}`, seed: 1 + hi * 64 + td.cpu, stats: blk?.stats, thread: td });
    if (blk !== null) ifp.counters = blk.ifc;
    bindStackTunables(stack, ctx.uma.arena, []);
    stack.addInterface(ifp);
    if (td.cpu === 0) stack.addAddress(ifp, ip, prefix); // announces it (gratuitous ARP) once
    else {
      const mask = prefix === 32 ? 0xffffffff : (0xffffffff << (32 - prefix)) >>> 0;
      ifp.addrs.push({ addr: ip, mask, broadcast: ((ip & mask) | ~mask) >>> 0 });
      stack.routes.add(ip, prefix, 0, ifp);
    }
    if (td.cpu === 0 && ctx.ncpus > 1) ifp.inputHandler = arpForwarder(hi, ifp.inputHandler!);
    stack.redispatch = (m) => redispatch(hi, m);
    const h: Host = { stack, ifp, closed: false, fromOthers: 0, tap: drv, handedOff: 0 };
    hosts.push(h);
    // Busy CPU: keep reading between messages (the event loop, hence uv_poll, waits meanwhile).
    td.pollHooks.push(() => (h.closed ? 0 : drv.queue.rxPoll()));
    drv.queue.start();
    ctx.setArg(msg, 0, hi);
    packIfName(drv.name).forEach((w, i) => ctx.setArg(msg, 1 + i, w));
    return 0;
  });

  td.register(NET_TAP_STATS, 'net tap stats', (_td, msg) => {
    const h = hosts[ctx.arg(msg, 0)];
    if (h === undefined || h.tap === undefined) return EINVAL;
    const mac = h.stack.arp.lookup(h.ifp, ctx.arg(msg, 1) >>> 0); // before the results overwrite the arguments
    const c = h.tap.queue.counters;
    ctx.setArg(msg, 0, h.tap.queue.index);
    for (let i = 0; i < TAP_STAT_WORDS; i++) ctx.setArg(msg, 1 + i, Math.min(c[i], 0x7fffffff));
    ctx.setArg(msg, 1 + TAP_STAT_WORDS, h.handedOff ?? 0);
    ctx.setArg(msg, 2 + TAP_STAT_WORDS, h.fromOthers);
    ctx.setArg(msg, 3 + TAP_STAT_WORDS, h.arpForwarded ?? 0);
    ctx.setArg(msg, 4 + TAP_STAT_WORDS, mac < 0 ? -1 : Math.floor(mac / 0x1_0000_0000));
    ctx.setArg(msg, 5 + TAP_STAT_WORDS, mac < 0 ? -1 : mac % 0x1_0000_0000 | 0);
    return 0;
  });

  td.register(NET_TAP_ARP, 'net tap arp', (_td, msg) => {
    const h = hosts[ctx.arg(msg, 0)];
    if (h === undefined || h.closed || h.tap === undefined) return 0;
    h.arpForwarded = (h.arpForwarded ?? 0) + 1;
    h.stack.arp.update(h.ifp, ctx.arg(msg, 1) >>> 0, (ctx.arg(msg, 2) & 0xffff) * 0x1_0000_0000 + (ctx.arg(msg, 3) >>> 0));
    return 0;
  });

  td.register(NET_STATS, 'net stats', (_td, msg) => {
    const h = hosts[ctx.arg(msg, 0)];
    if (h === undefined) return EINVAL;
    ctx.setArg(msg, 0, h.stack.stats.udp[UDPS.delivered]);
    ctx.setArg(msg, 1, h.stack.stats.udp[UDPS.opackets]);
    ctx.setArg(msg, 2, h.fromOthers);
    ctx.setArg(msg, 3, h.stack.stats.ip[IPS.reassembled]);
    return 0;
  });

  const quiesce = (): void => {
    // A load generator still running answers with what it counted so far.
    for (const finish of [...loadgens]) finish();
    for (const s of sockets.splice(0)) s.close();
    for (const h of hosts) {
      if (h.closed) continue;
      h.closed = true;
      h.stack.close();
    }
  };
  td.register(NET_QUIESCE, 'net quiesce', () => {
    quiesce();
    return 0;
  });
  td.shutdownHooks.push(() => {
    quiesce();
    mb.drainPacketCache();
  });
}
