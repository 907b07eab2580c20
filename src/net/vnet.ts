/**
 * Per-CPU host instances on the MP core (vnet-style: a "host" is a stack
 * instance with its interfaces, routes and ARP table; every CPU has its own
 * copy of every host, DragonFly style) and the configuration messages that
 * build them. The user thread (lib/topology.ts) sends each configuration
 * message to every CPU, in the same order, so host and interface indices
 * agree everywhere; values travel in the message words and payload (early
 * copy-in), never as shared objects.
 *
 * Commands (args are message words; "payload" is the message's byte payload):
 *   NET_VHOST_ADD(host, forwarding, statDir, statSlot, seed)  payload: name
 *   NET_VIF_ADD(host, ifindex, kind, mtu, macHi, macLo, statDir, statSlot, peerHost, peerIf, batch, layer, ring, tapFlags)
 *               (a link with mtu 0 follows the tunable net.link.xl.mtu; a user device's `ring` is the
 *               sockbuf this CPU appends its sent frames to, a different one per CPU; a TAP's
 *               tapFlags: VIF_TAP_NOOFFLOAD opens it without IFF_VNET_HDR and offloads)
 *               payload: name   -> (TAP) the kernel's name in words 1..4
 *   NET_VADDR_ADD(host, ifindex, addr, prefix)  CPU 0 announces it (gratuitous ARP)
 *   NET_VROUTE_ADD(host, dst, prefix, gateway, ifindex | -1)
 *   NET_VARP_ADD(host, ifindex, ip, macHi, macLo)  a static ARP entry
 *   NET_VIF_FAULT(host, ifindex, rx)  payload: FAULT_WORDS Float64 options; seed + cpu on each CPU
 *   NET_VIF_PCAP(host, ifindex)  payload: file path; CPU n writes <path>.cpu<n> (one CPU: <path>)
 *   NET_TAP_ARP(host, ip, macHi, macLo, ifindex)  CPU 0 learned a mapping: record it here too
 *   NET_QUIESCE()  close this CPU's hosts (frames in flight are freed)
 *
 * Interfaces kinds: VIF_LINK (cross-CPU in-memory link to (peerHost,
 * peerIf), whose frames netisr dispatches to the CPU of their flow),
 * VIF_LOOP (lo0), VIF_TAP (one queue of a multi-queue Linux TAP per CPU,
 * queue i on CPU i: create on CPU 0 first), VIF_USER (a user device whose
 * JS side is in a user thread: each CPU appends the frames it sends to its
 * own sockbuf ring, read by the user; frames the user pushes arrive as
 * NET_INPUT on the CPU of their flow). ARP on a layer-2 interface of a
 * machine with several CPUs: every ARP frame goes to CPU 0 (netisr), which
 * forwards each mapping it learns to every other CPU (NET_TAP_ARP, DragonFly
 * arp_update_msghandler); the user API also installs static entries for the
 * peers of in-memory links.
 *
 * Everything here is the CPU's own (thread-local, no lock); handlers never sleep.
 */
import type { ProtocolThread } from '../kern/lwkt/protothread.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN } from '../kern/mbuf/layout.js';
import { EBUSY, EINVAL, ENOENT, EOPNOTSUPP, EPERM } from '../kern/errno.js';
import { ETH_HLEN, ETHERTYPE_ARP, ethType } from '../wire/ethernet.js';
import { ARP_LEN, arpParse, arpSha, arpSpa } from '../wire/arp.js';
import { WIRE_OK } from '../wire/codes.js';
import { prefixToMask } from '../wire/ipv4.js';
import { IFC_IQDROPS, IFC_OQDROPS, IFF_BROADCAST, IFF_NOARP, IFF_POINTOPOINT, IFF_UP, IFT_ETHER, IFT_PROPVIRTUAL, Ifnet, loopbackIf, type IfDriver } from './if.js';
import type { SockBufs } from '../kern/socket/sockbuf.js';
import { Stack } from '../netinet/stack.js';
import { bindStackTunables } from '../netinet/tunables.js';
import { bindTcpTunables } from '../netinet/tcp_tunables_shared.js';
import type { PortPredicate } from '../netinet/in_pcb.js';
import { rssFlowCpu } from './rss.js';
import { statBlock } from './netstats.js';
import { TapQueueDriver } from './phy/tap.js';
import { FaultInjector, type FaultOptions } from './phy/fault.js';
import { PcapWriter } from './phy/pcap.js';
import { MEMLINK_CAPS } from './phy/memlink.js';
import { CrossCpuDriver, Netisr, type NetisrHosts, type NetisrIf } from './netisr.js';

export const NET_QUIESCE = 0x5106;
export const NET_TAP_ARP = 0x510c;
export const NET_VHOST_ADD = 0x5110;
export const NET_VIF_ADD = 0x5111;
export const NET_VADDR_ADD = 0x5112;
export const NET_VROUTE_ADD = 0x5113;
export const NET_VARP_ADD = 0x5114;
export const NET_VIF_FAULT = 0x5115;
export const NET_VIF_PCAP = 0x5116;

export const VIF_LINK = 1;
export const VIF_LOOP = 2;
export const VIF_TAP = 3;
/** A user device served by this CPU: sent frames go to the user's ring for this CPU (arg 12), layer in arg 11. */
export const VIF_USER = 4;
/** NET_VIF_ADD tapFlags: a plain TAP (no IFF_VNET_HDR, no checksum or segmentation offload). */
export const VIF_TAP_NOOFFLOAD = 1;

/** Fault options in a NET_VIF_FAULT payload, in this order, as Float64 (-1: not set). */
export const FAULT_KEYS = ['seed', 'loss', 'duplicate', 'reorder', 'delayMs', 'jitterMs', 'corrupt', 'rateBps', 'queueLimit'] as const;

/** Options as the NET_VIF_FAULT payload (user side). */
export function faultPayload(o: FaultOptions): Uint8Array {
  const f = new Float64Array(FAULT_KEYS.length);
  FAULT_KEYS.forEach((k, i) => (f[i] = o[k] ?? -1));
  return new Uint8Array(f.buffer);
}

function faultFromPayload(b: Uint8Array): FaultOptions {
  const f = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + FAULT_KEYS.length * 8));
  const o: Record<string, number> = {};
  FAULT_KEYS.forEach((k, i) => {
    if (f[i] !== -1) o[k] = f[i];
  });
  return o as FaultOptions;
}

/**
 * Transmit side of a user device on the CPUs: the sent frame's chain goes,
 * by handle, into this CPU's ring to the user thread (a full ring drops and
 * counts, as a full NIC ring does). Producer side of the ring only.
 */
class RingDriver implements IfDriver {
  constructor(
    private readonly sbs: SockBufs,
    private readonly ring: number,
  ) {}
  output(ifp: Ifnet, m: number): void {
    if (!this.sbs.sbappendrecord(this.ring, m)) {
      ifp.counters[IFC_OQDROPS]++;
      ifp.mb.m_freem(m);
    }
  }
}

/** One interface of a host on this CPU. */
export interface VIf extends NetisrIf {
  kind: number;
  tap?: TapQueueDriver;
  pcap?: PcapWriter;
}

/** One host on this CPU. */
export interface VHost {
  name: string;
  stack: Stack;
  ifs: VIf[];
  closed: boolean;
  /** ARP mappings CPU 0 forwarded to this CPU. */
  arpForwarded: number;
  /** A router: net.inet.ip.forwarding on for this host whatever the shared word says. */
  forwarding: boolean;
}

/** net.inet.ip.forwarding is per host (a vnet sysctl in FreeBSD): a router overrides the shared word. */
function pinForwarding(h: VHost): void {
  if (h.forwarding) Object.defineProperty(h.stack.cfg, 'forwarding', { value: true, writable: true, configurable: true, enumerable: true });
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

const MAC = (hi: number, lo: number): number => (hi & 0xffff) * 0x1_0000_0000 + (lo >>> 0);

export interface IfSpec {
  kind: number;
  /** VIF_USER: 2 or 3, and this CPU's ring. */
  layer?: number;
  ring?: number;
  /** VIF_TAP: VIF_TAP_NOOFFLOAD or 0. */
  tapFlags?: number;
  name: string;
  mtu: number;
  mac: number;
  statDir: number;
  statSlot: number;
  peerHost: number;
  peerIf: number;
  batch: number;
}

/**
 * DragonFly's port partitioning for TCP's active opens on `cpu` of n: an
 * ephemeral port is acceptable when the connection's replies, the segments
 * that will arrive as faddr:fport -> laddr:lport, hash to this CPU (the
 * flow function netisr dispatches by), so the connection is born on the CPU
 * that will run all of it. undefined on one CPU (every port fits).
 */
function cpuPorts(cpu: number, ncpus: number): PortPredicate | undefined {
  if (ncpus < 2) return undefined;
  return (laddr, lport, faddr, fport) => rssFlowCpu(faddr, laddr, fport, lport, ncpus) === cpu;
}

/** This CPU's hosts: the table, the netisr, and the configuration operations. */
export class Vnet implements NetisrHosts {
  readonly hosts: VHost[] = [];
  readonly netisr: Netisr;
  private readonly sab: SharedArrayBuffer;

  constructor(
    readonly td: ProtocolThread,
    readonly mb: Mbufs,
  ) {
    this.sab = td.ctx.i32.buffer as SharedArrayBuffer;
    this.netisr = new Netisr(td, mb, this);
  }

  iface(host: number, ifIndex: number): VIf | null {
    const h = this.hosts[host];
    if (h === undefined || h.closed) return null;
    return h.ifs[ifIndex] ?? null;
  }

  stack(host: number): Stack | null {
    const h = this.hosts[host];
    return h === undefined || h.closed ? null : h.stack;
  }

  /** A new host (index = hosts.length); counters in block (statSlot, cpu) of statDir when given. */
  addHost(name: string, forwarding: boolean, statDir: number, statSlot: number, seed: number): number {
    const td = this.td;
    const hi = this.hosts.length;
    const blk = statBlock(this.sab, statDir, statSlot, td.cpu);
    const stack = new Stack(this.mb, { name: `${name}.cpu${td.cpu}`, seed: seed + td.cpu, stats: blk?.stats, thread: td });
    bindStackTunables(stack, td.ctx.uma.arena, []);
    bindTcpTunables(stack.tcp.cfg, td.ctx.uma.arena); // net.inet.tcp.*: one value on every CPU
    stack.tcp.portOk = cpuPorts(td.cpu, td.ctx.ncpus);
    const h: VHost = { name, stack, ifs: [], closed: false, arpForwarded: 0, forwarding };
    pinForwarding(h);
    stack.redispatch = (m) => this.netisr.redispatch(hi, stack, m);
    this.hosts.push(h);
    return hi;
  }

  /** Add an interface to host `hi`; returns its index, or a negative errno. */
  addIf(hi: number, s: IfSpec): number {
    const h = this.hosts[hi];
    if (h === undefined || h.closed) return -EINVAL;
    const td = this.td;
    const index = h.ifs.length;
    let ifp: Ifnet;
    const vif: VIf = { ifp: null as unknown as Ifnet, kind: s.kind, fromOthers: 0, handedOff: 0 };
    if (s.kind === VIF_LINK) {
      ifp = new Ifnet(this.mb, s.name, s.mac, s.mtu === 0 ? 1500 : s.mtu);
      // MTU 0: the link follows the shared tunable net.link.xl.mtu.
      if (s.mtu === 0) {
        bindStackTunables(h.stack, td.ctx.uma.arena, [ifp]);
        pinForwarding(h);
      }
      // A memory wire, clean as memlink.ts's (netisr.ts CrossCpuDriver gives the verdicts).
      ifp.capabilities |= MEMLINK_CAPS;
      ifp.capenable |= MEMLINK_CAPS;
      ifp.driver = new CrossCpuDriver(this.netisr, () => this.iface(s.peerHost, s.peerIf), s.peerHost, s.peerIf, IFC_OQDROPS);
    } else if (s.kind === VIF_LOOP) {
      ifp = loopbackIf(this.mb, s.name, s.mtu);
    } else if (s.kind === VIF_TAP) {
      if (td.cpu > 0 && s.name === '') return -EINVAL;
      let drv: TapQueueDriver;
      try {
        drv = TapQueueDriver.attach(this.mb, { name: s.name, index: td.cpu, mac: s.mac, mtu: s.mtu, batch: s.batch > 0 ? s.batch : 64, offload: ((s.tapFlags ?? 0) & VIF_TAP_NOOFFLOAD) === 0 }, (m) =>
          this.netisr.dispatch(hi, index, drv.ifp, m, true, drv.ifp, IFC_IQDROPS),
        );
      } catch (e) {
        return -tapErrno(e);
      }
      ifp = drv.ifp;
      vif.tap = drv;
    } else if (s.kind === VIF_USER) {
      const sbs = td.layers.get('sockbufs') as SockBufs | undefined;
      if (sbs === undefined || !(s.ring! > 0) || (s.layer !== 2 && s.layer !== 3)) return -EINVAL;
      ifp = new Ifnet(this.mb, s.name, s.layer === 3 ? 0 : s.mac, s.mtu, s.layer === 3 ? IFF_UP | IFF_POINTOPOINT | IFF_NOARP : IFF_UP | IFF_BROADCAST);
      if (s.layer === 3) ifp.type = IFT_PROPVIRTUAL;
      ifp.driver = new RingDriver(sbs, s.ring!);
    } else return -EINVAL;
    vif.ifp = ifp;
    const blk = statBlock(this.sab, s.statDir, s.statSlot, td.cpu);
    if (blk !== null) ifp.counters = blk.ifc;
    h.stack.addInterface(ifp);
    if (ifp.type === IFT_ETHER && s.kind !== VIF_LOOP && td.cpu === 0 && td.ctx.ncpus > 1) ifp.inputHandler = this.arpForwarder(hi, index, ifp.inputHandler!);
    h.ifs.push(vif);
    if (vif.tap !== undefined) {
      const q = vif.tap.queue;
      // Busy CPU: keep reading between messages (the event loop, hence uv_poll, waits meanwhile).
      td.addPollHook(() => (h.closed ? 0 : q.rxPoll()), true);
      q.start();
    }
    return index;
  }

  /** An address on interface `ii` of host `hi` with its connected route; CPU 0 announces it. */
  addAddr(hi: number, ii: number, addr: number, prefix: number): number {
    const vif = this.iface(hi, ii);
    if (vif === null || prefix < 0 || prefix > 32) return EINVAL;
    const st = this.hosts[hi].stack;
    if (this.td.cpu === 0) st.addAddress(vif.ifp, addr, prefix);
    else {
      const mask = prefixToMask(prefix);
      vif.ifp.addrs.push({ addr, mask, broadcast: ((addr & mask) | ~mask) >>> 0 });
      st.routes.add(addr, prefix, 0, vif.ifp);
    }
    return 0;
  }

  addRoute(hi: number, dst: number, prefix: number, gw: number, ii: number): number {
    const h = this.hosts[hi];
    if (h === undefined || h.closed || prefix < 0 || prefix > 32) return EINVAL;
    const vif = ii >= 0 ? this.iface(hi, ii) : null;
    if (ii >= 0 && vif === null) return EINVAL;
    try {
      h.stack.addRoute(dst, prefix, gw, vif?.ifp);
    } catch {
      return EINVAL; // gateway not on a connected network
    }
    return 0;
  }

  addArp(hi: number, ii: number, ip: number, mac: number): number {
    const vif = this.iface(hi, ii);
    if (vif === null) return EINVAL;
    this.hosts[hi].stack.arp.set(vif.ifp, ip, mac);
    return 0;
  }

  /**
   * CPU 0 of a layer-2 interface with several CPUs: after each ARP frame, if
   * the sender's mapping is (now) in CPU 0's table, forward it to every other
   * CPU so all tables agree. The frame is peeked before input (which frees it).
   */
  private arpForwarder(hi: number, ii: number, inner: (ifp: Ifnet, m: number) => void) {
    const mb = this.mb;
    const ctx = this.td.ctx;
    return (ifp: Ifnet, m: number): void => {
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
      if (spa <= 0 || this.hosts[hi].stack.arp.lookup(ifp, spa) !== sha) return;
      for (let c = 0; c < ctx.ncpus; c++) {
        if (c === this.td.cpu) continue;
        const msg = ctx.allocmsg(NET_TAP_ARP);
        if (msg === 0) return;
        ctx.setArg(msg, 0, hi);
        ctx.setArg(msg, 1, spa | 0);
        ctx.setArg(msg, 2, Math.floor(sha / 0x1_0000_0000));
        ctx.setArg(msg, 3, sha % 0x1_0000_0000 | 0);
        ctx.setArg(msg, 4, ii);
        if (!ctx.sendmsg(c, msg)) ctx.freemsg(msg);
      }
    };
  }

  /** Close every host of this CPU (sockets first: the caller closes its in-CPU servers). */
  quiesce(): void {
    this.netisr.flush();
    for (const h of this.hosts) {
      if (h.closed) continue;
      h.closed = true;
      h.stack.close();
      for (const v of h.ifs) v.pcap?.close();
    }
  }

  /** Register the configuration commands on this CPU. */
  register(): void {
    const td = this.td;
    const ctx = td.ctx;
    const a = (msg: number, i: number): number => ctx.arg(msg, i);
    const text = (msg: number): string => Buffer.from(ctx.copyPayload(msg)).toString('utf8');
    td.register(NET_VHOST_ADD, 'net vhost add', (_td, msg) => {
      if (a(msg, 0) !== this.hosts.length) return EINVAL;
      this.addHost(text(msg) || `host${this.hosts.length}`, a(msg, 1) !== 0, a(msg, 2), a(msg, 3), a(msg, 4));
      return 0;
    });
    td.register(NET_VIF_ADD, 'net vif add', (_td, msg) => {
      const hi = a(msg, 0);
      const h = this.hosts[hi];
      if (h === undefined || a(msg, 1) !== h.ifs.length) return EINVAL;
      const mtu = a(msg, 3);
      if ((mtu < 68 && !(mtu === 0 && a(msg, 2) === VIF_LINK)) || mtu > 65535) return EINVAL;
      const spec: IfSpec = {
        kind: a(msg, 2),
        mtu,
        mac: MAC(a(msg, 4), a(msg, 5)),
        statDir: a(msg, 6),
        statSlot: a(msg, 7),
        peerHost: a(msg, 8),
        peerIf: a(msg, 9),
        batch: a(msg, 10),
        layer: a(msg, 11),
        ring: a(msg, 12),
        tapFlags: a(msg, 13),
        name: text(msg),
      };
      const r = this.addIf(hi, spec);
      if (r < 0) return -r;
      packIfName(this.hosts[hi].ifs[r].ifp.name).forEach((w, i) => ctx.setArg(msg, 1 + i, w));
      return 0;
    });
    td.register(NET_VADDR_ADD, 'net vaddr add', (_td, msg) => this.addAddr(a(msg, 0), a(msg, 1), a(msg, 2) >>> 0, a(msg, 3)));
    td.register(NET_VROUTE_ADD, 'net vroute add', (_td, msg) => this.addRoute(a(msg, 0), a(msg, 1) >>> 0, a(msg, 2), a(msg, 3) >>> 0, a(msg, 4)));
    td.register(NET_VARP_ADD, 'net varp add', (_td, msg) => this.addArp(a(msg, 0), a(msg, 1), a(msg, 2) >>> 0, MAC(a(msg, 3), a(msg, 4))));
    td.register(NET_VIF_FAULT, 'net vif fault', (_td, msg) => {
      const vif = this.iface(a(msg, 0), a(msg, 1));
      if (vif === null) return EINVAL;
      const o = faultFromPayload(ctx.copyPayload(msg));
      o.seed = (o.seed ?? 1) + td.cpu;
      try {
        if (a(msg, 2) !== 0) FaultInjector.wrapInput(vif.ifp, o);
        else FaultInjector.wrap(vif.ifp, o);
      } catch {
        return EINVAL;
      }
      return 0;
    });
    td.register(NET_VIF_PCAP, 'net vif pcap', (_td, msg) => {
      const vif = this.iface(a(msg, 0), a(msg, 1));
      const path = text(msg);
      if (vif === null || path === '' || vif.pcap !== undefined) return EINVAL;
      try {
        vif.pcap = PcapWriter.open(ctx.ncpus === 1 ? path : `${path}.cpu${td.cpu}`);
      } catch {
        return ENOENT;
      }
      vif.ifp.setCapture(vif.pcap);
      return 0;
    });
    td.register(NET_TAP_ARP, 'net tap arp', (_td, msg) => {
      const h = this.hosts[a(msg, 0)];
      const vif = this.iface(a(msg, 0), a(msg, 4));
      if (h === undefined || vif === null) return 0;
      h.arpForwarded++;
      h.stack.arp.update(vif.ifp, a(msg, 1) >>> 0, MAC(a(msg, 2), a(msg, 3)));
      return 0;
    });
  }
}
