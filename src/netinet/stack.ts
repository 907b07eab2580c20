/**
 * One instance of the network stack: interfaces, routes, ARP, IPv4 with
 * reassembly, ICMP and UDP, and their statistics. An instance runs in one
 * thread (one CPU); several instances in one process can be joined by
 * in-memory links (two hosts in a test, a client and a server in the demo).
 *
 * Ethernet input and output live here (if_ethersubr.c): check and strip the
 * header, accept our MAC / broadcast, dispatch IPv4 and ARP; on output
 * resolve the next hop, prepend the header and pad to the minimum frame.
 *
 * Configuration is in code (addresses, routes, MTU, limits); every limit is
 * a field of `cfg` or of a protocol's cfg and is listed by sysctlNodes().
 * No lock anywhere: an instance is touched by its own thread only; nothing
 * sleeps.
 */
import { linkVerdicts } from '../net/if_offload.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_DATA, M_FLAGS, M_LEN, M_BCAST, M_MCAST, PH_LEN } from '../kern/mbuf/layout.js';
import { m_append, m_last, M_TRAILINGSPACE } from '../kern/mbuf/ops.js';
import { ArgumentError } from '../kern/errors.js';
import { ETH_HLEN, ETH_MIN_FRAME, ETHERTYPE_ARP, ETHERTYPE_IPV4, ethEmit, ethDst, ethType, MAC_BROADCAST, macIsGroup } from '../wire/ethernet.js';
import { INADDR_BROADCAST, IPDEFTTL, ipFromString, ipToString, prefixToMask } from '../wire/ipv4.js';
import { ArpTable, type ArpConfig } from './if_ether.js';
import { inputFaultReporter } from './if_fault.js';
import { IFC_OQDROPS, IFF_LOOPBACK, IFF_NOARP, IFF_BROADCAST, IFT_PROPVIRTUAL, type Ifnet } from '../net/if.js';
import { ENETDOWN } from '../kern/errno.js';
import { ipDeliver, ipInput, ipOutput, type IpOutOpts } from './ip.js';
import { Icmp, type IcmpConfig } from './ip_icmp.js';
import { Reassembly, type ReassConfig } from './ip_reass.js';
import { RouteTable } from '../net/route.js';
import { HostCache, PMTU_EXPIRE_DEFAULT } from './hostcache.js';
import { ETHS, IPS, formatNetstatS, newStats, type NetStats } from './stats.js';
import { UdpTable, type UdpConfig } from './udp_usrreq.js';
import { TcpTable } from './tcp_subr.js';
import { TcpSockets } from './tcp_usrreq.js';
import type { TcpConfig, TcpSysctlNode } from './tcp_tunables.js';
import { mtod, prepend, pullup, trimFront } from '../net/mchain.js';
import { LocalThread, type NetThread } from '../kern/lwkt/netthread.js';
import type { Callout } from '../kern/lwkt/callout.js';
import { ipRandomId } from '../kern/prng.js';

export interface StackConfig {
  /** net.inet.ip.ttl */
  ttl: number;
  /** Period of the slow timer (ARP and reassembly timeouts), ms. */
  timerMs: number;
  /** net.inet.ip.forwarding: act as a router (forward packets not for us). Off by default, as FreeBSD. */
  forwarding: boolean;
  /** net.inet.ip.pmtu_expire: lifetime of a learned path MTU, seconds (RFC 1191: about 10 minutes). */
  pmtuExpire: number;
}

export interface StackOptions {
  name?: string;
  ttl?: number;
  timerMs?: number;
  forwarding?: boolean;
  pmtuExpire?: number;
  arp?: Partial<ArpConfig>;
  reass?: Partial<ReassConfig>;
  icmp?: Partial<IcmpConfig>;
  udp?: Partial<UdpConfig>;
  tcp?: Partial<TcpConfig>;
  /** Seed of the ephemeral-port and IP-id sources. */
  seed?: number;
  log?: (msg: string) => void;
  /** Count into these (arena views from netstats.ts) instead of thread-local arrays. */
  stats?: NetStats;
  /**
   * The thread this instance runs on: its clock, callouts and poll hooks (a
   * CPU's ProtocolThread, or a LocalThread). Default: a LocalThread of its
   * own on the real clock, scheduled on the event loop.
   */
  thread?: NetThread;
}

/** An address given as "a.b.c.d" or a number. */
export type Addr = string | number;

export function toAddr(a: Addr): number {
  if (typeof a === 'number') {
    if (!Number.isInteger(a) || a < 0 || a > 0xffffffff) throw new ArgumentError(`bad IPv4 address ${a}`);
    return a >>> 0;
  }
  if (a === lastAddrString) return lastAddrValue;
  const v = ipFromString(a);
  if (v < 0) throw new ArgumentError(`bad IPv4 address "${a}"`);
  lastAddrString = a;
  lastAddrValue = v;
  return v;
}
/** The last address string parsed (a socket sending to one peer parses the same string every time). */
let lastAddrString = '';
let lastAddrValue = 0;

export class Stack {
  readonly name: string;
  readonly mb: Mbufs;
  readonly cfg: StackConfig;
  /** Counters: thread-local, or views of this CPU's block in the arena (netstats.ts). */
  readonly stats: NetStats;
  readonly ifs: Ifnet[] = [];
  readonly routes = new RouteTable();
  readonly arp: ArpTable;
  readonly reass: Reassembly;
  readonly icmp: Icmp;
  readonly udp: UdpTable;
  readonly tcp: TcpTable;
  /** Path MTU per destination, learned from ICMP fragmentation needed. */
  readonly pmtu: HostCache;
  private ipId: number;
  /** The thread that runs this instance (clock, callouts, poll hooks). */
  readonly td: NetThread;
  /** The thread this instance made for itself (no `thread` option): stopped by close(). */
  private readonly ownThread: LocalThread | null;
  private readonly slowCallout: Callout;
  private localQ: number[] = [];
  private closed = false;
  private readonly logFn: (msg: string) => void;
  /**
   * Multi-CPU hook: offered every reassembled datagram; returns true when it
   * took the datagram to another CPU (which then calls ipDeliver there).
   */
  redispatch: ((m: number) => boolean) | null = null;

  constructor(mb: Mbufs, opts: StackOptions = {}) {
    this.mb = mb;
    this.stats = opts.stats ?? newStats();
    this.name = opts.name ?? 'stack';
    this.cfg = { ttl: opts.ttl ?? IPDEFTTL, timerMs: opts.timerMs ?? 100, forwarding: opts.forwarding ?? false, pmtuExpire: opts.pmtuExpire ?? PMTU_EXPIRE_DEFAULT };
    this.ownThread = opts.thread === undefined ? new LocalThread().startRealtime() : null;
    this.td = opts.thread ?? this.ownThread!;
    this.pmtu = new HostCache(() => this.cfg.pmtuExpire);
    this.arp = new ArpTable(this, opts.arp);
    this.reass = new Reassembly(this, opts.reass);
    this.icmp = new Icmp(this, opts.icmp);
    this.udp = new UdpTable(this, opts.udp, opts.seed ?? 0x5eed);
    this.tcp = new TcpTable(this, opts.tcp, opts.seed ?? 0x5eed);
    this.tcp.sockets = new TcpSockets(this);
    this.ipId = ((opts.seed ?? 0x5eed) * 2654435761) & 0xffff;
    this.logFn = opts.log ?? (() => {});
    this.td.addPollHook(this.pollLocal);
    this.slowCallout = this.td.callouts.callout();
    this.armSlowTimer();
  }

  /** The stack clock: monotonic ms of this instance's thread (real or manual). */
  now(): number {
    return this.td.clock.now();
  }

  private armSlowTimer(): void {
    this.slowCallout.reset(Math.max(1, Math.round(this.cfg.timerMs / this.td.callouts.tickMs)), this.slowTick);
  }

  private readonly slowTick = (): void => {
    this.slowtimo(this.now());
    if (!this.closed) this.armSlowTimer();
  };

  log(msg: string): void {
    this.logFn(`${this.name}: ${msg}`);
  }

  // ---------------------------------------------------------------- config

  /** Attach an interface, optionally with an address "a.b.c.d" and prefix length (adds the connected route and announces it). */
  addInterface(ifp: Ifnet, addr?: Addr, prefix = 24): Ifnet {
    if (this.ifs.includes(ifp)) throw new ArgumentError(`${ifp.name} is already attached`);
    if (ifp.td !== null && ifp.td !== this.td) throw new ArgumentError(`${ifp.name} belongs to another thread's stack`);
    this.ifs.push(ifp);
    ifp.td = this.td;
    // A layer-3 (tun-style) device carries bare IPv4 packets: no Ethernet, no ARP.
    ifp.inputHandler = ifp.type === IFT_PROPVIRTUAL ? (i, m) => this.l3Input(i, m) : (i, m) => this.etherInput(i, m);
    ifp.onInputFault = inputFaultReporter(this);
    if (addr !== undefined) this.addAddress(ifp, addr, prefix);
    return ifp;
  }

  addAddress(ifp: Ifnet, addr: Addr, prefix = 24): void {
    const a = toAddr(addr);
    const mask = prefixToMask(prefix);
    ifp.addrs.push({ addr: a, mask, broadcast: ((a & mask) | ~mask) >>> 0 });
    this.routes.add(a, prefix, 0, ifp);
    if ((ifp.flags & IFF_NOARP) === 0) this.arp.gratuitous(ifp, a);
  }

  /** Add a route to dst/prefix via gateway (0 or omitted: directly on ifp). */
  addRoute(dst: Addr, prefix: number, gateway: Addr, ifp?: Ifnet): void {
    const gw = toAddr(gateway);
    let out = ifp ?? null;
    if (out === null) {
      const r = this.routes.lookup(gw);
      if (r === null) throw new ArgumentError(`gateway ${ipToString(gw)} is not on a connected network`);
      out = r.ifp;
    }
    this.routes.add(toAddr(dst), prefix, gw, out);
  }

  setDefaultRoute(gateway: Addr, ifp?: Ifnet): void {
    this.addRoute(0, 0, gateway, ifp);
  }

  ifByIndex(index: number): Ifnet | null {
    for (const i of this.ifs) if (i.index === index) return i;
    return null;
  }

  /** Limits and tunables as sysctl-style nodes, to register with src/kern/sysctl. */
  sysctlNodes(): TcpSysctlNode[] {
    const n = (name: string, o: Record<string, unknown>, k: string, description: string) => ({
      name,
      description,
      get: () => Number(o[k]),
      set: (v: number | string) => {
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ArgumentError(`${name}: bad value ${v}`);
        o[k] = typeof o[k] === 'boolean' ? v !== 0 : v;
      },
    });
    const c = this.cfg as unknown as Record<string, unknown>;
    const a = this.arp.cfg as unknown as Record<string, unknown>;
    const r = this.reass.cfg as unknown as Record<string, unknown>;
    const i = this.icmp.cfg as unknown as Record<string, unknown>;
    const u = this.udp.cfg as unknown as Record<string, unknown>;
    return [
      n('net.inet.ip.ttl', c, 'ttl', 'Maximum TTL on IP packets'),
      n('net.inet.ip.forwarding', c, 'forwarding', 'Enable IP forwarding between interfaces'),
      n('net.inet.ip.pmtu_expire', c, 'pmtuExpire', 'Lifetime of a learned path MTU (seconds)'),
      n('net.inet.ip.maxfragpackets', r, 'maxFragPackets', 'Maximum number of IPv4 fragment reassembly queue entries'),
      n('net.inet.ip.maxfragsperpacket', r, 'maxFragsPerPacket', 'Maximum number of IPv4 fragments allowed per packet'),
      n('net.inet.ip.maxfragbytes', r, 'maxFragBytes', 'Maximum bytes held in IPv4 fragment queues'),
      n('net.inet.ip.fragttl', r, 'fragTtlMs', 'IP fragment life time on reassembly queue (ms)'),
      n('net.link.ether.inet.max_age', a, 'maxAgeMs', 'ARP entry lifetime (ms)'),
      n('net.link.ether.inet.maxtries', a, 'maxTries', 'ARP resolution attempts before returning error'),
      n('net.link.ether.inet.maxhold', a, 'maxHold', 'Number of packets to hold per ARP entry'),
      n('net.link.ether.inet.max_entries', a, 'maxEntries', 'Maximum number of ARP entries'),
      n('net.inet.icmp.icmplim', i, 'icmplim', 'Maximum number of ICMP responses per second'),
      n('net.inet.icmp.bmcastecho', i, 'bmcastecho', 'Reply to broadcast echo requests'),
      n('net.inet.icmp.quotelen', i, 'quotelen', 'Number of bytes from original packet to quote in ICMP reply'),
      n('net.inet.udp.recvspace', u, 'recvspace', 'Maximum space for incoming UDP datagrams'),
      n('net.inet.udp.maxdgram', u, 'maxdgram', 'Maximum outgoing UDP datagram size'),
      n('net.inet.udp.checksum', u, 'checksum', 'compute udp checksum'),
      n('net.inet.ip.portrange.first', u, 'portFirst', 'First ephemeral port'),
      n('net.inet.ip.portrange.last', u, 'portLast', 'Last ephemeral port'),
      n('net.inet.ip.portrange.hifirst', u, 'portHiFirst', 'First port of IP_PORTRANGE_HIGH'),
      n('net.inet.ip.portrange.hilast', u, 'portHiLast', 'Last port of IP_PORTRANGE_HIGH'),
      n('net.inet.ip.portrange.lowfirst', u, 'portLowFirst', 'First port of IP_PORTRANGE_LOW'),
      n('net.inet.ip.portrange.lowlast', u, 'portLowLast', 'Last port of IP_PORTRANGE_LOW'),
      n('net.inet.ip.portrange.randomized', u, 'portRandomized', 'Enable random port allocation'),
      ...this.tcp.sysctlNodes(),
    ];
  }

  // ------------------------------------------------------------ addressing

  /** Is `a` one of our addresses (any interface)? */
  isLocal(a: number): boolean {
    for (const i of this.ifs) for (const x of i.addrs) if (x.addr === a) return true;
    return false;
  }

  isLocalOn(ifp: Ifnet, a: number): boolean {
    for (const x of ifp.addrs) if (x.addr === a) return true;
    return false;
  }

  /** Is `a` the subnet broadcast address of one of our networks? */
  isBroadcast(a: number): boolean {
    if (a === INADDR_BROADCAST) return true;
    for (const i of this.ifs) for (const x of i.addrs) if (x.broadcast === a && x.mask !== 0xffffffff) return true;
    return false;
  }

  /** A socket bound to broadcast address `laddr` receives datagrams sent to `dst`. */
  broadcastMatches(laddr: number, dst: number): boolean {
    return laddr === dst || (laddr === INADDR_BROADCAST && this.isBroadcast(dst));
  }

  /** Does ifp accept an IP packet for dst: our address, limited or subnet broadcast (we do not forward). */
  acceptsDst(ifp: Ifnet, dst: number): boolean {
    if (dst === INADDR_BROADCAST) return true;
    for (const x of ifp.addrs) if (x.addr === dst || x.broadcast === dst) return true;
    // Weak host model: any of our addresses on any interface.
    return this.isLocal(dst) || (ifp.flags & IFF_LOOPBACK) !== 0;
  }

  /** The interface a limited broadcast leaves by: the one owning src, else the first broadcast-capable one. */
  broadcastIf(src: number): Ifnet | null {
    if (src !== 0) for (const i of this.ifs) if (this.isLocalOn(i, src)) return i;
    for (const i of this.ifs) if ((i.flags & IFF_BROADCAST) !== 0 && i.addrs.length > 0) return i;
    return null;
  }

  nextIpId(): number {
    this.ipId = ipRandomId(this.mb.uma.arena); // RFC 6864: random, per CPU, keyed by the boot secret
    return this.ipId;
  }

  // -------------------------------------------------------------- ethernet

  /** ether_input: a frame from ifp (the stack now owns m). */
  etherInput(ifp: Ifnet, m: number): void {
    const mb = this.mb;
    const s = this.stats.ether;
    if (mb.i32[(m + PH_LEN) >> 2] < ETH_HLEN) {
      s[ETHS.tooshort]++;
      ifp.inputError();
      mb.m_freem(m);
      return;
    }
    m = pullup(mb, m, ETH_HLEN);
    if (m === 0) {
      s[ETHS.tooshort]++;
      return;
    }
    const e = mtod(mb, m);
    const u8 = mb.u8;
    const dst = ethDst(u8, e);
    const type = ethType(u8, e);
    if (dst !== ifp.mac && (ifp.flags & IFF_LOOPBACK) === 0) {
      if (!macIsGroup(dst)) {
        s[ETHS.notours]++;
        mb.m_freem(m);
        return;
      }
      mb.i32[(m + M_FLAGS) >> 2] |= dst === MAC_BROADCAST ? M_BCAST : M_MCAST;
    }
    trimFront(mb, m, ETH_HLEN);
    if (type === ETHERTYPE_IPV4) ipInput(this, ifp, m);
    else if (type === ETHERTYPE_ARP && (ifp.flags & IFF_NOARP) === 0) this.arp.input(ifp, m);
    else {
      s[ETHS.noproto]++;
      mb.m_freem(m);
    }
  }

  /** A packet from a layer-3 device (IFT_PROPVIRTUAL): IPv4 from the first byte. */
  l3Input(ifp: Ifnet, m: number): void {
    ipInput(this, ifp, m);
  }

  /**
   * ether_output: an IP packet for nexthop on ifp; resolves the MAC (ARP may
   * hold m). A closed stack sends nothing: the packet is counted and freed,
   * so nothing waits in an ARP hold queue that no timer will ever drain.
   */
  etherOutput(ifp: Ifnet, m: number, nexthop: number): void {
    if (this.closed) {
      this.dropClosed(ifp, m);
      return;
    }
    if ((ifp.flags & IFF_LOOPBACK) === 0 && this.isLocal(nexthop)) {
      this.loopLocal(m);
      return;
    }
    if (ifp.type === IFT_PROPVIRTUAL) {
      ifp.transmit(m); // tunoutput: the packet as it is, no link header
      return;
    }
    if ((ifp.flags & IFF_NOARP) !== 0) {
      this.etherSend(ifp, m, 0);
      return;
    }
    if (nexthop === INADDR_BROADCAST || this.isBroadcast(nexthop)) {
      this.etherSend(ifp, m, MAC_BROADCAST);
      return;
    }
    const mac = this.arp.resolve(ifp, nexthop, m);
    if (mac >= 0) this.etherSend(ifp, m, mac);
  }

  /** Prepend the Ethernet header, pad to the minimum frame, transmit. */
  etherSend(ifp: Ifnet, m: number, dstMac: number): void {
    const mb = this.mb;
    if (this.closed) {
      this.dropClosed(ifp, m);
      return;
    }
    m = prepend(mb, m, ETH_HLEN);
    if (m === 0) {
      ifp.counters[IFC_OQDROPS]++;
      return;
    }
    ethEmit(mb.u8, mtod(mb, m), dstMac, ifp.mac, ETHERTYPE_IPV4);
    const len = mb.i32[(m + PH_LEN) >> 2];
    if (len < ETH_MIN_FRAME && !pad(mb, m, ETH_MIN_FRAME - len)) {
      mb.m_freem(m);
      ifp.counters[IFC_OQDROPS]++;
      return;
    }
    ifp.transmit(m);
  }

  /** A packet for one of our own addresses: input it again on the thread's next pass (as through lo0). */
  private loopLocal(m: number): void {
    if (this.closed) {
      this.mb.m_freem(m);
      return;
    }
    this.localQ.push(m);
    if (this.localQ.length === 1) this.td.kick();
  }

  /** Poll hook: input the packets looped to ourselves; returns how many. */
  private readonly pollLocal = (): number => {
    const q = this.localQ;
    if (q.length === 0) return 0;
    this.localQ = [];
    const lo = this.ifs.find((i) => (i.flags & IFF_LOOPBACK) !== 0) ?? this.ifs[0];
    for (const x of q) {
      // A packet looped to ourselves crossed no wire: what its sender left to the offload is verified.
      const y = linkVerdicts(this.mb, x, lo, 0, true);
      if (y !== 0) ipInput(this, lo, y);
    }
    return q.length;
  };

  // ----------------------------------------------------------------- glue

  /** Deliver a complete datagram (IP header in front) to its protocol on this instance. */
  ipDeliver(m: number): void {
    this.stats.ip[IPS.delivered]++;
    ipDeliver(this, m);
  }

  /** ip_output for the protocols; a closed stack refuses (ENETDOWN), counting and freeing the packet. */
  ipOutput(m: number, src: number, dst: number, proto: number, o: IpOutOpts): number {
    if (this.closed) {
      this.stats.ip[IPS.odropped]++;
      this.mb.m_freem(m);
      return ENETDOWN;
    }
    return ipOutput(this, m, src, dst, proto, o);
  }

  /** Output reached a closed stack (a forward, an ARP release): count on the interface and the stack, free. */
  private dropClosed(ifp: Ifnet, m: number): void {
    this.stats.ip[IPS.odropped]++;
    ifp.counters[IFC_OQDROPS]++;
    this.mb.m_freem(m);
  }

  /** True once close() ran. */
  get isClosed(): boolean {
    return this.closed;
  }

  icmpErrorFromQuote(quote: Uint8Array, src: number, dst: number, type: number, code: number, mtu: number): void {
    this.icmp.errorFromQuote(quote, src, dst, type, code, mtu);
  }

  /** The slow timer (ip_slowtimo + arptimer). */
  slowtimo(now: number): void {
    this.arp.timer(now);
    this.reass.timer(now);
    if (this.pmtu.size !== 0) this.pmtu.timer(now);
  }

  /** `netstat -s` text. */
  netstatS(): string {
    return formatNetstatS(this.stats) + '\n' + this.tcp.netstatS();
  }

  /** Stop timers, close sockets, free every held packet, detach interfaces. */
  close(): void {
    this.closed = true;
    this.slowCallout.stop();
    this.td.removePollHook(this.pollLocal);
    this.udp.flush();
    this.tcp.flush();
    this.arp.flush();
    this.reass.flush();
    this.pmtu.flush();
    for (const m of this.localQ) this.mb.m_freem(m);
    this.localQ = [];
    for (const i of this.ifs) i.detach();
    this.ownThread?.stop();
  }
}

/** Append n zero bytes (Ethernet padding), in place when there is room. */
function pad(mb: Mbufs, m: number, n: number): boolean {
  const last = m_last(mb, m);
  const i32 = mb.i32;
  if (M_TRAILINGSPACE(mb, last) >= n) {
    const end = i32[(last + M_DATA) >> 2] + i32[(last + M_LEN) >> 2];
    mb.u8.fill(0, end, end + n);
    i32[(last + M_LEN) >> 2] += n;
    i32[(m + PH_LEN) >> 2] += n;
    return true;
  }
  return m_append(mb, m, n, ZEROS, 0);
}
const ZEROS = new Uint8Array(ETH_MIN_FRAME);
