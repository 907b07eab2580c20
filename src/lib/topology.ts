/**
 * The stack as a product: build any network. A System is either one thread
 * (this one: every stack on one LocalThread, on the real clock or a manual
 * one for simulation) or a machine of worker CPUs (every stack exists on
 * every CPU, DragonFly style, configured by messages to each CPU). In it,
 * any number of stacks (vnet-style hosts), each with interfaces:
 *
 *   sys.link(a, b, ...)        an in-memory link between two stacks (MTU up to 64 KiB)
 *   st.addLoopback()           lo0, 127.0.0.1/8
 *   st.addTap(name, ...)       a Linux TAP device (one queue per CPU on the MP system)
 *   st.addUserDevice(name, ...) JS code is the wire (L2 Ethernet or L3 tun-style), single thread
 *
 * and on any interface `fault` (the seeded fault injector, fault.ts) and
 * `pcap` (a capture file). Addresses are strings with prefixes
 * ("10.0.0.1/24"), MACs strings ("02:00:00:00:00:01") or numbers; stacks
 * take routes (a default gateway too) and static ARP entries. Bad arguments
 * throw ArgumentError with a message naming the culprit.
 *
 * Single thread: each call takes effect at once (up() has nothing to do).
 * MP: calls are validated and recorded at once, and up() sends them to
 * every CPU in order (so indices agree everywhere), awaiting each reply.
 * Sockets: sys.socket(stack, ...) is node:dgram-shaped on both (lib/dgram.ts
 * in one thread, lib/udpuser.ts towards the CPUs).
 *
 * Runs in the main thread (or a user worker); the single-thread system's
 * stacks run in the caller's thread. Nothing here sleeps except awaiting
 * the CPUs' replies.
 */
import { fileURLToPath } from 'node:url';
import { ArgumentError } from '../kern/errors.js';
import { Uma } from '../uma/uma.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { LocalThread } from '../kern/lwkt/netthread.js';
import { Machine } from '../kern/lwkt/machine.js';
import { SocketLayer } from '../kern/socket/socket.js';
import { errnoName } from '../kern/errno.js';
import { sockbufZone } from '../kern/socket/sockbuf.js';
import { udpSocketZone } from '../netinet/udp_socket.js';
import { IFT_PROPVIRTUAL, Ifnet, loopbackIf } from '../net/if.js';
import { MemLink } from '../net/phy/memlink.js';
import { FaultInjector, checkFaultOptions, type FaultOptions, type FaultStats } from '../net/phy/fault.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter } from '../net/phy/pcap.js';
import { UserDevice, type FrameDevice } from '../net/phy/userdev.js';
import { RemoteUserDevice } from './mpuserdev.js';
import { TapDriver } from '../net/phy/tap.js';
import { Stack, type StackOptions } from '../netinet/stack.js';
import type { NetStats } from '../netinet/stats.js';
import { registerStackSysctls } from '../netinet/tunables.js';
import { registerTcpSysctls } from '../netinet/tcp_tunables_shared.js';
import { registerRssSysctl, type RssKeyName } from '../net/rss.js';
import { ipFromString, ipToString, prefixToMask } from '../wire/ipv4.js';
import { macToString } from '../wire/ethernet.js';
import { allocStatDir, formatNetstatI, freeStatDir, sumHost } from '../net/netstats.js';
import { sysctlFor } from '../kern/sysctl/vm.js';
import type { Sysctl } from '../kern/sysctl/sysctl.js';
import { createSocket as createStackSocket, type Socket as StackSocket, type RemoteInfo } from './dgram.js';
import { allocBuffer, freeBuffer } from './zcopy.js';
import { createSocket as createUserSocket, type UdpSocket } from './udpuser.js';
import {
  NET_VADDR_ADD,
  NET_VARP_ADD,
  NET_VHOST_ADD,
  NET_VIF_ADD,
  NET_VIF_FAULT,
  NET_VIF_PCAP,
  NET_VROUTE_ADD,
  VIF_LINK,
  VIF_LOOP,
  VIF_TAP,
  VIF_TAP_NOOFFLOAD,
  VIF_USER,
  NET_QUIESCE,
  faultPayload,
} from '../net/vnet.js';

/** Path of the stack's handler module, for Machine.start({ handlers }). */
export const NET_HANDLERS = fileURLToPath(new URL('../net/mpnet.js', import.meta.url));

/** Close every CPU's hosts (before machine.stop(), after the user's sockets are closed). */
export async function netQuiesce(m: Machine): Promise<void> {
  for (let c = 0; c < m.ncpus; c++) await m.call(c, NET_QUIESCE);
}

export type ClockKind = 'real' | 'manual';

export interface SystemOptions {
  /** Worker CPUs; 0 (the default): no workers, every stack in this thread. */
  cpus?: number;
  /** 'real' (default) or 'manual' (time moves only by advance(ms)). */
  clock?: ClockKind;
  uma?: Uma;
  /** Arena bytes when no uma is given (default 128 MiB). */
  arenaSize?: number;
  /** kern.mp.spin_us for the CPUs (default 0). */
  spinUs?: number;
  /**
   * The RSS key flows are hashed to CPUs with: 'symmetric' (default: both
   * ends of a connection between two stacks of the system on one CPU, so its
   * segments never cross CPUs) or 'microsoft' (the RSS spec's key, which
   * spreads the two ends of such a connection independently). See net/rss.ts.
   * Systems running at once in one thread must use the same key (the
   * thread computes flow CPUs for them): another one is an ArgumentError.
   */
  rss?: RssKeyName;
}

export interface InterfaceOptions {
  /** Addresses with prefix length: "10.0.0.1/24" (a bare address is a /32). */
  addrs?: string | string[];
  mtu?: number;
  /** "02:00:00:00:00:01" or a 48-bit number; default one derived from the stack and interface. */
  mac?: string | number;
  /** Impair what this interface transmits (the fault injector). */
  fault?: FaultOptions;
  /** Capture this interface to a pcap file (on the MP system: one file per CPU, <path>.cpu<n>). */
  pcap?: string;
}

export interface LinkOptions {
  /** Each end: its interface options, or just its address ("10.0.0.1/24"). */
  a?: InterfaceOptions | string;
  b?: InterfaceOptions | string;
  /** Interface names (default the next free ethN of each stack). */
  names?: [string, string];
  /** MTU of both ends (default 1500; on the MP system the tunable net.link.xl.mtu, 1500; up to 65535). */
  mtu?: number;
  /** Impairment of both directions (each end with its own seed: seed, seed + 1). */
  fault?: FaultOptions;
}

export interface StackSpec {
  /** net.inet.ip.forwarding for this stack (a router). */
  forwarding?: boolean;
  /** Seed of the ephemeral-port and IP-id sources. */
  seed?: number;
  /** More Stack options (single thread only: ttl, arp, reass, icmp, udp limits). */
  options?: Omit<StackOptions, 'thread' | 'stats' | 'name' | 'forwarding' | 'seed'>;
}

export interface UserDeviceSpec extends InterfaceOptions {
  /** 2: Ethernet frames (default); 3: bare IPv4 packets (tun). */
  layer?: 2 | 3;
  onFrame?: (frame: Buffer) => void;
}

export interface TapSpec extends InterfaceOptions {
  /** Frames read per wake-up. */
  batch?: number;
  /** IFF_VNET_HDR with checksum and TCPv4 segmentation offload (default true; false: plain frames, Linux checksums and segments). */
  offload?: boolean;
}

/** A node:dgram-shaped socket of either system. */
export type SystemSocket = StackSocket | UdpSocket;

/** Parse "a.b.c.d/n" (or "a.b.c.d": /32). */
export function parseCidr(s: string, what = 'address'): { addr: number; prefix: number } {
  if (typeof s !== 'string') throw new ArgumentError(`${what} must be a string like "10.0.0.1/24", got ${String(s)}`);
  const m = /^([^/]+)(?:\/(\d{1,2}))?$/.exec(s.trim());
  const addr = m === null ? -1 : ipFromString(m[1]);
  const prefix = m?.[2] === undefined ? 32 : Number(m[2]);
  if (addr < 0 || prefix > 32) throw new ArgumentError(`bad ${what} "${s}": want a.b.c.d/prefix with prefix 0..32`);
  return { addr, prefix };
}

/** Parse a MAC "02:00:00:00:00:01" (or "-" separated) or a 48-bit integer. */
export function parseMac(v: string | number): number {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff_ffff) throw new ArgumentError(`bad MAC ${v}: want a 48-bit integer`);
    return v;
  }
  const m = typeof v === 'string' ? /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(v) : null;
  if (m === null) throw new ArgumentError(`bad MAC "${String(v)}": want six hex bytes like 02:00:00:00:00:01`);
  return m.slice(1).reduce((a, x) => a * 256 + parseInt(x, 16), 0);
}

/** Route destination: "default", "a.b.c.d/n" or a host address. */
function parseDest(dst: string): { addr: number; prefix: number } {
  if (dst === 'default') return { addr: 0, prefix: 0 };
  const r = parseCidr(dst, 'route destination');
  return { addr: (r.addr & prefixToMask(r.prefix)) >>> 0, prefix: r.prefix };
}

function checkMtu(mtu: number | undefined, what: string): number {
  const v = mtu ?? 1500;
  if (!Number.isInteger(v) || v < 68 || v > 65535) throw new ArgumentError(`${what}: mtu must be an integer 68..65535, got ${String(mtu)}`);
  return v;
}

function checkName(name: string, what: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new ArgumentError(`${what} name must be 1..15 characters [A-Za-z0-9_.-], got ${JSON.stringify(name)}`);
  return name;
}

function addrList(a: string | string[] | undefined): string[] {
  return a === undefined ? [] : Array.isArray(a) ? a : [a];
}

/** One recorded configuration message for every CPU (MP). */
interface ConfigOp {
  cmd: number;
  args: number[];
  /** Words that differ per CPU (replace args[i] for cpu c with perCpu(c)[i - from]). */
  perCpu?: { from: number; words: (cpu: number) => number[] };
  payload?: Uint8Array;
  what: string;
  /** Called with each CPU's result words. */
  onResult?: (cpu: number, res: number[]) => void;
}

type IfKind = 'link' | 'loopback' | 'tap' | 'user';

export class Interface {
  readonly addrs: { addr: number; prefix: number }[] = [];
  /** The Ifnet (single thread only). */
  readonly ifp: Ifnet | null;
  /** The user device driving it (user devices only): in this thread, or served by the CPUs. */
  readonly device: FrameDevice | null;
  /** Set for link ends: the interface at the other end. */
  peer: Interface | null = null;
  private faults: FaultInjector[] = [];
  /** Stats directory on the MP system. */
  readonly statDir: number;
  private pcapWriter: PcapWriter | null = null;

  /** @internal */
  constructor(
    readonly stack: NetStack,
    readonly name: string,
    readonly index: number,
    readonly kind: IfKind,
    readonly mtu: number,
    readonly mac: number,
    ifp: Ifnet | null,
    device: FrameDevice | null,
    statDir: number,
  ) {
    this.ifp = ifp;
    this.device = device;
    this.statDir = statDir;
  }

  /** Add "a.b.c.d/n" (with its connected route; announced by gratuitous ARP on Ethernet). */
  addAddress(cidr: string): this {
    const { addr, prefix } = parseCidr(cidr);
    if (this.addrs.some((x) => x.addr === addr)) throw new ArgumentError(`${this.stack.name}/${this.name} already has ${ipToString(addr)}`);
    this.addrs.push({ addr, prefix });
    const sys = this.stack.system;
    if (this.ifp !== null) this.stack.stack.addAddress(this.ifp, addr, prefix);
    else {
      sys.record({ cmd: NET_VADDR_ADD, args: [this.stack.index, this.index, addr | 0, prefix], what: `address ${cidr} on ${this.stack.name}/${this.name}` });
      // The CPUs' per-CPU ARP tables stay consistent on a link with static entries for the peer.
      if (this.peer !== null) this.peer.stack.addArp(ipToString(addr), this.mac, this.peer);
    }
    return this;
  }

  /** Impair what this interface transmits (`rx`: what it receives). */
  fault(opts: FaultOptions, dir: { rx?: boolean } = {}): this {
    checkFaultOptions(opts);
    if (this.ifp !== null) {
      if (dir.rx) FaultInjector.wrapInput(this.ifp, opts);
      else this.faults.push(FaultInjector.wrap(this.ifp, opts));
    } else this.stack.system.record({ cmd: NET_VIF_FAULT, args: [this.stack.index, this.index, dir.rx ? 1 : 0], payload: faultPayload(opts), what: `fault on ${this.stack.name}/${this.name}` });
    return this;
  }

  /** The transmit fault injectors' counters (single thread). */
  faultStats(): FaultStats[] {
    return this.faults.map((f) => f.stats);
  }

  /** Capture to a pcap file (single thread: `path`; MP: `<path>.cpu<n>` per CPU when cpus > 1). */
  capture(path: string): this {
    if (typeof path !== 'string' || path === '') throw new ArgumentError('pcap path must be a non-empty string');
    if (this.ifp !== null) {
      if (this.pcapWriter !== null) throw new ArgumentError(`${this.stack.name}/${this.name} is already captured`);
      // Layer-3 devices are captured as raw IP; a manual-clock system stamps records with its own time.
      const clock = this.stack.system.thread!.clock;
      this.pcapWriter = PcapWriter.open(path, { linktype: this.ifp.type === IFT_PROPVIRTUAL ? LINKTYPE_RAW : LINKTYPE_ETHERNET, ...(clock.manual ? { now: () => clock.now() } : {}) });
      this.ifp.setCapture(this.pcapWriter);
    } else {
      const b = Buffer.from(path, 'utf8');
      if (b.length > 128) throw new ArgumentError(`pcap path longer than 128 bytes: ${path}`);
      this.stack.system.record({ cmd: NET_VIF_PCAP, args: [this.stack.index, this.index], payload: new Uint8Array(b), what: `pcap on ${this.stack.name}/${this.name}` });
    }
    return this;
  }

  /** Flush and close the capture file (single thread; stop() does it too). */
  closeCapture(): void {
    this.pcapWriter?.close();
    this.pcapWriter = null;
  }

  /** if_data counters (summed over CPUs on the MP system). */
  counters(): Float64Array {
    if (this.ifp !== null) return Float64Array.from(this.ifp.counters);
    return sumHost(this.stack.system.uma.arena.sab, this.statDir, 0).ifc;
  }

  /** @internal apply options given at creation */
  applyOptions(o: InterfaceOptions): void {
    for (const a of addrList(o.addrs)) this.addAddress(a);
    if (o.fault !== undefined) this.fault(o.fault);
    if (o.pcap !== undefined) this.capture(o.pcap);
  }
}

export class NetStack {
  readonly interfaces: Interface[] = [];
  /** Stats directory on the MP system. */
  readonly statDir: number;
  private readonly local: Stack | null;

  /** @internal */
  constructor(
    readonly system: System,
    readonly name: string,
    readonly index: number,
    local: Stack | null,
    statDir: number,
  ) {
    this.local = local;
    this.statDir = statDir;
  }

  /** The Stack instance (single-thread system only: on the MP system each CPU has its own). */
  get stack(): Stack {
    if (this.local === null) throw new ArgumentError(`stack ${this.name} runs on the CPUs; use sys.socket(), sys.stats() or messages`);
    return this.local;
  }

  /**
   * stack.allocBuffer(n): a Buffer over arena memory that a Socket's write()
   * sends by reference (zero-copy send, lib/zcopy.ts); single-thread system only.
   */
  allocBuffer(n: number): Buffer {
    return allocBuffer(this.stack, n);
  }

  /** Give back a Buffer from allocBuffer (deferred while the stack still references it). */
  freeBuffer(buf: Uint8Array): void {
    freeBuffer(this.stack, buf);
  }

  /** An interface by name. */
  iface(name: string): Interface {
    const i = this.interfaces.find((x) => x.name === name);
    if (i === undefined) throw new ArgumentError(`stack ${this.name} has no interface ${name} (has: ${this.interfaces.map((x) => x.name).join(', ') || 'none'})`);
    return i;
  }

  /** The next free ethN name. */
  nextName(prefix = 'eth'): string {
    for (let n = 0; ; n++) if (!this.interfaces.some((x) => x.name === `${prefix}${n}`)) return `${prefix}${n}`;
  }

  /** @internal default MAC: locally administered, from the system, stack and interface numbers (unique in this process). */
  defaultMac(): number {
    return 0x0200_0000_0000 + (this.system.id % 0x10000) * 0x1_0000_0000 + ((this.index + 1) % 0x10000) * 0x1_0000 + this.interfaces.length + 1;
  }

  /** lo0 with 127.0.0.1/8 (or the given addresses). */
  addLoopback(o: { name?: string; addrs?: string | string[]; mtu?: number } = {}): Interface {
    const name = checkName(o.name ?? 'lo0', 'interface');
    const mtu = checkMtu(o.mtu ?? 16384, `${this.name}/${name}`);
    return this.system.addIf(this, name, 'loopback', mtu, 0, { addrs: o.addrs ?? '127.0.0.1/8' });
  }

  /** A Linux TAP device (needs root and the native addon). On the MP system queue i is CPU i's. */
  addTap(name: string, o: TapSpec = {}): Interface {
    checkName(name, 'TAP');
    const mtu = checkMtu(o.mtu, `${this.name}/${name}`);
    if (o.offload !== undefined && typeof o.offload !== 'boolean') throw new ArgumentError(`offload of TAP ${name} must be a boolean, got ${String(o.offload)}`);
    return this.system.addIf(this, name, 'tap', mtu, o.mac === undefined ? this.defaultMac() : parseMac(o.mac), o, o.batch, 2, undefined, [0, 0], mtu, o.offload ?? true);
  }

  /** A user device: JS code receives what the stack sends and pushes what it receives (on the MP system the JS side stays in this thread). */
  addUserDevice(name: string, o: UserDeviceSpec = {}): Interface {
    checkName(name, 'user device');
    const mtu = checkMtu(o.mtu, `${this.name}/${name}`);
    if (o.layer !== undefined && o.layer !== 2 && o.layer !== 3) throw new ArgumentError(`user device layer must be 2 or 3, got ${String(o.layer)}`);
    const mac = (o.layer ?? 2) === 3 ? 0 : o.mac === undefined ? this.defaultMac() : parseMac(o.mac);
    return this.system.addIf(this, name, 'user', mtu, mac, o, 0, o.layer ?? 2, o.onFrame);
  }

  /** A route: dst "default" | "a.b.c.d/n"; via a gateway on a connected network, and/or out of `dev`. */
  addRoute(dst: string, via?: string, dev?: string | Interface): this {
    const d = parseDest(dst);
    const gw = via === undefined ? 0 : parseCidr(via, 'gateway').addr;
    const ifc = dev === undefined ? null : typeof dev === 'string' ? this.iface(dev) : dev;
    if (ifc !== null && ifc.stack !== this) throw new ArgumentError(`${ifc.stack.name}/${ifc.name} is not an interface of ${this.name}`);
    if (gw === 0 && ifc === null) throw new ArgumentError(`route ${dst} on ${this.name} needs a gateway or an interface`);
    if (gw !== 0 && ifc === null && !this.interfaces.some((i) => i.addrs.some((a) => ((a.addr ^ gw) & prefixToMask(a.prefix)) === 0))) {
      throw new ArgumentError(`gateway ${ipToString(gw)} of route ${dst} is not on a connected network of ${this.name}`);
    }
    if (this.local !== null) {
      if (gw === 0) this.local.routes.add(d.addr, d.prefix, 0, ifc!.ifp!);
      else this.local.addRoute(d.addr, d.prefix, gw, ifc?.ifp ?? undefined);
    } else this.system.record({ cmd: NET_VROUTE_ADD, args: [this.index, d.addr | 0, d.prefix, gw | 0, ifc?.index ?? -1], what: `route ${dst} on ${this.name}` });
    return this;
  }

  /** The default route via `gateway`. */
  setDefaultRoute(gateway: string, dev?: string | Interface): this {
    return this.addRoute('default', gateway, dev);
  }

  /** A static ARP entry (never expires) for `ip` on interface `dev`. */
  addArp(ip: string, mac: string | number, dev: string | Interface): this {
    const a = parseCidr(ip, 'ARP address');
    if (a.prefix !== 32) throw new ArgumentError(`ARP address must be a host address, got ${ip}`);
    const m = parseMac(mac);
    const ifc = typeof dev === 'string' ? this.iface(dev) : dev;
    if (ifc.stack !== this) throw new ArgumentError(`${ifc.stack.name}/${ifc.name} is not an interface of ${this.name}`);
    if (this.local !== null) this.local.arp.set(ifc.ifp!, a.addr, m);
    else this.system.record({ cmd: NET_VARP_ADD, args: [this.index, ifc.index, a.addr | 0, Math.floor(m / 0x1_0000_0000), m % 0x1_0000_0000 | 0], what: `arp ${ip} on ${this.name}` });
    return this;
  }

  /** netstat -s counters (summed over the CPUs on the MP system). */
  stats(): NetStats {
    if (this.local !== null) return this.local.stats;
    return sumHost(this.system.uma.arena.sab, this.statDir, 0).stats;
  }
}

let nextSystemId = 0;

/** up(): a CPU refused a configuration item; `errno` (BSD) and `cpu` say which and why. */
export class RefusedError extends ArgumentError {
  constructor(
    message: string,
    readonly errno: number,
    readonly cpu: number,
  ) {
    super(message);
  }
}

export class System {
  readonly stacks: NetStack[] = [];
  /** This process's number for the system (distinct default MACs across systems joined by user devices). */
  readonly id = nextSystemId++;
  /** The one thread of a single-thread system (null on the MP system). */
  readonly thread: LocalThread | null;
  readonly machine: Machine | null;
  /** The user side of the CPUs' socket layer (MP only). */
  readonly layer: SocketLayer | null;
  /** This thread's sysctl tree with the stack's tunables (shared with every CPU). */
  readonly sysctl: Sysctl;
  private pending: ConfigOp[] = [];
  private readonly statDirs: number[] = [];
  private readonly links: MemLink[] = [];
  private readonly userDevs: RemoteUserDevice[] = [];
  private stopped = false;

  private constructor(
    readonly uma: Uma,
    readonly mb: Mbufs,
    readonly clock: ClockKind,
    thread: LocalThread | null,
    machine: Machine | null,
  ) {
    this.thread = thread;
    this.machine = machine;
    this.layer = machine === null ? null : new SocketLayer(machine.ctx, mb);
    this.sysctl = sysctlFor(uma);
    registerStackSysctls(this.sysctl, uma.arena, mb);
    // The CPUs' stacks read net.inet.tcp.* from the arena (tcp_tunables_shared.ts); a local stack keeps its own.
    if (machine !== null) {
      registerTcpSysctls(this.sysctl, uma.arena);
      registerRssSysctl(this.sysctl, machine.rss);
    }
  }

  /** Worker CPUs (0: a single-thread system). */
  get cpus(): number {
    return this.machine?.ncpus ?? 0;
  }

  /** A single-thread system: every stack on one thread here (real clock, or manual for simulation). */
  static local(o: { clock?: ClockKind; uma?: Uma; arenaSize?: number } = {}): System {
    const clock = checkClock(o.clock);
    const uma = o.uma ?? Uma.create({ size: o.arenaSize ?? 128 << 20, ncpus: 4 });
    const td = clock === 'manual' ? LocalThread.manual() : new LocalThread().startRealtime();
    return new System(uma, Mbufs.create(uma), clock, td, null);
  }

  /** A system of `cpus` worker CPUs (0: System.local). */
  static async start(o: SystemOptions = {}): Promise<System> {
    const cpus = o.cpus ?? 0;
    if (!Number.isInteger(cpus) || cpus < 0 || cpus > 64) throw new ArgumentError(`cpus must be an integer 0..64, got ${String(o.cpus)}`);
    if (cpus === 0) return System.local(o);
    const clock = checkClock(o.clock);
    const uma = o.uma ?? Uma.create({ size: o.arenaSize ?? 128 << 20, ncpus: cpus + 4 });
    const mb = Mbufs.create(uma);
    // Created here: CPUs that start together would race to create the socket layer's zones.
    sockbufZone(uma);
    udpSocketZone(uma);
    const machine = await Machine.start({ uma, ncpus: cpus, handlers: [NET_HANDLERS], spinUs: o.spinUs ?? 0, clock, rss: o.rss });
    return new System(uma, mb, clock, null, machine);
  }

  /** Add a stack (a host). */
  addStack(name: string, spec: StackSpec = {}): NetStack {
    checkName(name, 'stack');
    if (this.stopped) throw new ArgumentError('the system is stopped');
    if (this.stacks.some((s) => s.name === name)) throw new ArgumentError(`a stack named ${name} exists already`);
    const index = this.stacks.length;
    const seed = spec.seed ?? 1 + index * 64;
    if (this.thread !== null) {
      const st = new Stack(this.mb, { ...spec.options, name, seed, forwarding: spec.forwarding ?? false, thread: this.thread });
      const s = new NetStack(this, name, index, st, 0);
      this.stacks.push(s);
      return s;
    }
    if (spec.options !== undefined) throw new ArgumentError('stack options other than forwarding and seed are sysctls on the MP system (sys.sysctl)');
    const dir = this.statDir();
    const s = new NetStack(this, name, index, null, dir);
    this.stacks.push(s);
    this.record({ cmd: NET_VHOST_ADD, args: [index, spec.forwarding ? 1 : 0, dir, 0, seed], payload: new Uint8Array(Buffer.from(name)), what: `stack ${name}` });
    return s;
  }

  /** A stack by name. */
  stack(name: string): NetStack {
    const s = this.stacks.find((x) => x.name === name);
    if (s === undefined) throw new ArgumentError(`no stack named ${name} (have: ${this.stacks.map((x) => x.name).join(', ') || 'none'})`);
    return s;
  }

  /** Join two stacks by an in-memory link (on the MP system, the cross-CPU link). Returns both ends. */
  link(a: NetStack | string, b: NetStack | string, o: LinkOptions = {}): [Interface, Interface] {
    const sa = typeof a === 'string' ? this.stack(a) : a;
    const sb = typeof b === 'string' ? this.stack(b) : b;
    if (sa.system !== this || sb.system !== this) throw new ArgumentError('link: both stacks must belong to this system');
    if (sa === sb) throw new ArgumentError(`link: ${sa.name} cannot be linked to itself`);
    if (o.fault !== undefined) checkFaultOptions(o.fault);
    const ends = [o.a, o.b].map((e) => (typeof e === 'string' ? { addrs: e } : (e ?? {}))) as [InterfaceOptions, InterfaceOptions];
    const names = o.names ?? [sa.nextName(), sb.nextName()];
    const mtus = ends.map((e) => checkMtu(e.mtu ?? o.mtu, `link ${sa.name}-${sb.name}`));
    // On the CPUs a link without an explicit MTU follows net.link.xl.mtu (0 in the message).
    const wire = ends.map((e, i) => (this.thread === null && e.mtu === undefined && o.mtu === undefined ? 0 : mtus[i]));
    const macs = ends.map((e, i) => (e.mac === undefined ? [sa, sb][i].defaultMac() : parseMac(e.mac)));
    names.forEach((n) => checkName(n, 'interface'));
    const ia = this.addIf(sa, names[0], 'link', mtus[0], macs[0], {}, 0, 2, undefined, [sb.index, sb.interfaces.length], wire[0]);
    const ib = this.addIf(sb, names[1], 'link', mtus[1], macs[1], {}, 0, 2, undefined, [sa.index, ia.index], wire[1]);
    ia.peer = ib;
    ib.peer = ia;
    if (ia.ifp !== null && ib.ifp !== null) this.links.push(MemLink.connect(ia.ifp, ib.ifp));
    if (o.fault !== undefined) {
      ia.fault(o.fault);
      ib.fault({ ...o.fault, seed: (o.fault.seed ?? 1) + 1 });
    }
    ia.applyOptions(ends[0]);
    ib.applyOptions(ends[1]);
    return [ia, ib];
  }

  /** @internal make an interface of any kind on stack s. */
  addIf(
    s: NetStack,
    name: string,
    kind: IfKind,
    mtu: number,
    mac: number,
    o: InterfaceOptions,
    batch = 0,
    layer: 2 | 3 = 2,
    onFrame?: (f: Buffer) => void,
    peer: [number, number] = [0, 0],
    wireMtu = mtu,
    offload = true,
  ): Interface {
    if (this.stopped) throw new ArgumentError('the system is stopped');
    if (s.interfaces.some((x) => x.name === name)) throw new ArgumentError(`stack ${s.name} has an interface ${name} already`);
    const index = s.interfaces.length;
    let ifc: Interface;
    if (this.thread !== null) {
      let ifp: Ifnet;
      let dev: UserDevice | null = null;
      if (kind === 'link') ifp = new Ifnet(this.mb, name, mac, mtu);
      else if (kind === 'loopback') ifp = loopbackIf(this.mb, name, mtu);
      else if (kind === 'tap') ifp = TapDriver.open(this.mb, { name, mac, mtu, batch: batch || 64, offload }).ifp;
      else {
        dev = new UserDevice(this.mb, { name, layer, mac, mtu, onFrame });
        ifp = dev.ifp;
      }
      s.stack.addInterface(ifp);
      ifc = new Interface(s, name, index, kind, mtu, mac, ifp, dev, 0);
    } else {
      const dir = this.statDir();
      let dev: RemoteUserDevice | null = null;
      if (kind === 'user') {
        dev = new RemoteUserDevice(this.machine!.ctx, this.mb, this.layer!.sbs, layer, s.index, index, onFrame);
        this.userDevs.push(dev);
      }
      ifc = new Interface(s, name, index, kind, mtu, mac, null, dev, dir);
      const k = kind === 'link' ? VIF_LINK : kind === 'loopback' ? VIF_LOOP : kind === 'tap' ? VIF_TAP : VIF_USER;
      const rings = dev?.rings;
      this.record({
        cmd: NET_VIF_ADD,
        args: [s.index, index, k, wireMtu, Math.floor(mac / 0x1_0000_0000), mac % 0x1_0000_0000 | 0, dir, 0, peer[0], peer[1], batch, layer, 0, offload ? 0 : VIF_TAP_NOOFFLOAD],
        perCpu: rings === undefined ? undefined : { from: 12, words: (c) => [rings[c]] },
        payload: new Uint8Array(Buffer.from(name)),
        what: `interface ${s.name}/${name}`,
      });
    }
    s.interfaces.push(ifc);
    ifc.applyOptions(o);
    return ifc;
  }

  /** @internal */
  record(op: ConfigOp): void {
    if (this.stopped) throw new ArgumentError('the system is stopped');
    this.pending.push(op);
  }

  private statDir(): number {
    const d = allocStatDir(this.uma, this.machine!.ncpus, 1);
    this.statDirs.push(d);
    return d;
  }

  /**
   * Apply what was configured: on the MP system every recorded message goes
   * to every CPU in order (CPU 0 first, so TAP queue i is CPU i's); a CPU's
   * refusal is an ArgumentError naming the item. Single thread: nothing to do.
   */
  async up(): Promise<void> {
    const ops = this.pending;
    this.pending = [];
    if (this.layer === null) return;
    for (const op of ops) {
      for (let c = 0; c < this.cpus; c++) {
        const args = op.perCpu === undefined ? op.args : [...op.args.slice(0, op.perCpu.from), ...op.perCpu.words(c)];
        const r = await this.layer.request(c, op.cmd, args, op.payload ?? new Uint8Array(0), 5);
        if (r.err !== 0) throw new RefusedError(`${op.what}: refused by cpu${c}: ${errnoName(r.err)}`, r.err, c);
        op.onResult?.(c, r.res);
      }
    }
  }

  /** A node:dgram-shaped UDP socket on stack `s` (call after up()). */
  socket(s: NetStack | string, type: 'udp4' | { type: 'udp4'; recvBufferSize?: number }, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): SystemSocket {
    const st = typeof s === 'string' ? this.stack(s) : s;
    const opts = typeof type === 'string' ? { type } : type;
    if (opts.type !== 'udp4') throw new ArgumentError(`only udp4 sockets are supported, got ${String(opts.type)}`);
    if (this.layer === null) return createStackSocket(st.stack, opts, listener);
    return createUserSocket(this.layer, { ...opts, host: st.index }, listener);
  }

  /**
   * Manual clock: move time by ms, running what comes due (timers, delayed
   * frames) in order, and resolve when everything is idle at the new time.
   * Single thread: the work is done before this returns (awaiting is
   * optional); MP: every CPU settles at each due time (Machine.advance).
   */
  advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new ArgumentError(`advance: ms must be finite and >= 0, got ${ms}`);
    if (this.clock !== 'manual') throw new ArgumentError('advance() needs a system on the manual clock');
    if (this.thread === null) return this.machine!.advance(ms);
    this.thread.advance(ms);
    return Promise.resolve();
  }

  /** The system's clock now, ms (the thread's, or the CPUs'). */
  now(): number {
    return this.thread !== null ? this.thread.clock.now() : this.machine!.clock.now();
  }

  /** Manual clock, single thread: run until nothing is left to do at the current time. */
  runUntilIdle(): void {
    if (this.thread === null || this.clock !== 'manual') throw new ArgumentError('runUntilIdle() needs a single-thread system on the manual clock');
    this.thread.runUntilIdle();
  }

  /** netstat -i of every interface. */
  netstatI(): string {
    const rows = this.stacks.flatMap((s) => s.interfaces.map((i) => ({ name: `${i.name}/${s.name}`, mtu: i.mtu, addr: i.addrs.length > 0 ? ipToString(i.addrs[0].addr) : '-', ifc: i.counters() })));
    return formatNetstatI(rows);
  }

  /** A one-line description of each interface (ip -br addr). */
  describe(): string {
    return this.stacks
      .flatMap((s) => s.interfaces.map((i) => `${s.name}/${i.name}\t${i.kind}\tmtu ${i.mtu}\t${i.mac === 0 ? '-' : macToString(i.mac)}\t${i.addrs.map((a) => `${ipToString(a.addr)}/${a.prefix}`).join(' ') || '-'}`))
      .join('\n');
  }

  /**
   * Close the user's sockets first. Single thread: close every stack (their
   * interfaces, links, captures) and stop the thread. MP: quiesce and stop
   * the CPUs, free the counters. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pending = [];
    for (const s of this.stacks) for (const i of s.interfaces) i.closeCapture();
    if (this.thread !== null) {
      for (const s of this.stacks) s.stack.close();
      for (const l of this.links) l.close();
      if (this.clock === 'manual') this.thread.runUntilIdle();
      this.thread.stop();
      this.mb.drainPacketCache();
      return;
    }
    for (const d of this.userDevs) d.close();
    try {
      await netQuiesce(this.machine!);
    } finally {
      await this.machine!.stop();
      for (const d of this.userDevs) d.destroy();
      for (const d of this.statDirs) freeStatDir(this.uma, d);
      this.mb.drainPacketCache();
    }
  }
}

function checkClock(c: ClockKind | undefined): ClockKind {
  if (c === undefined) return 'real';
  if (c !== 'real' && c !== 'manual') throw new ArgumentError(`clock must be 'real' or 'manual', got ${String(c)}`);
  return c;
}

