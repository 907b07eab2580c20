/**
 * ifnet: a network interface as the stack sees it. A driver (in-memory link,
 * loopback, TAP) hands received frames to input() and takes frames to send
 * from transmit(); both count packets, bytes, errors and drops per direction
 * (netstat -i) and feed an attached pcap capture.
 *
 * An Ifnet object belongs to one thread (one CPU's stack instance). With
 * several CPUs each has its own Ifnet for the same link, and the driver picks
 * the receiving CPU by the RSS hash of the flow (ifnet rxCpu()).
 * Nothing here takes a lock; transmit may be called from any code of the
 * owning thread and never sleeps.
 */
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_DATA, M_FLAGS, M_LEN, M_NEXT, M_PKTHDR, M_TYPE, MT_NOTMBUF, PH_CSUM_FLAGS, PH_LEN, PH_RCVIF, PH_SPARE } from '../kern/mbuf/layout.js';
import type { PcapWriter } from './phy/pcap.js';
import type { NetThread } from '../kern/lwkt/netthread.js';
import { macToString } from '../wire/ethernet.js';
import { IP_MAXPACKET, ipToString } from '../wire/ipv4.js';
export { IP_MAXPACKET };
import { CSUM_REQUESTS, csumUndone, ifL2Len, inDelayedCksum, linkVerdicts, withTsoCksumShown } from './if_offload.js';

export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_NOARP = 0x80;

// Interface types (if_types.h): how the stack frames packets on it.
/** Ethernet framing and ARP. */
export const IFT_ETHER = 0x06;
/** Loopback (lo0): Ethernet-framed internally, never leaves the host. */
export const IFT_LOOP = 0x18;
/** A tun-style layer-3 device: raw IPv4 packets, no link header, no ARP. */
export const IFT_PROPVIRTUAL = 0x35;

// Interface capabilities (net/if.h IFCAP_*): if_capabilities says what the
// interface can do, if_capenable what is switched on (ifconfig's txcsum,
// rxcsum, tso4, lro). The per-packet requests and results are the
// m_pkthdr.csum_flags of kern/mbuf/layout.ts (CSUM_*).
/**
 * Receive checksum offload: the driver marks each frame it verified (or that
 * crossed a clean link with its checksums left undone) with CSUM_IP_VALID /
 * CSUM_DATA_VALID; input skips only what a frame's marks cover (if_offload.ts
 * l3Verdict / l4Verified), never a whole interface.
 */
export const IFCAP_RXCSUM = 0x1;
/** Transmit checksum offload: the interface (or the link) computes or needs no checksums (CSUM_IP, CSUM_TCP, CSUM_UDP). */
export const IFCAP_TXCSUM = 0x2;
/** TCP segmentation offload over IPv4: the interface takes CSUM_TSO packets up to if_hw_tsomax. */
export const IFCAP_TSO4 = 0x100;
export const IFCAP_TSO6 = 0x200;
/** Large receive offload: the interface may merge in-order TCP segments of a flow (CSUM_COALESCED). */
export const IFCAP_LRO = 0x400;
export const IFCAP_TSO = IFCAP_TSO4 | IFCAP_TSO6;
/** The names ifconfig prints for the capability bits, lowest bit first. */
export const IFCAP_NAMES: readonly (readonly [number, string])[] = [
  [IFCAP_RXCSUM, 'RXCSUM'],
  [IFCAP_TXCSUM, 'TXCSUM'],
  [IFCAP_TSO4, 'TSO4'],
  [IFCAP_TSO6, 'TSO6'],
  [IFCAP_LRO, 'LRO'],
];

// Counter indices (struct if_data).
export const IFC_IPACKETS = 0;
export const IFC_IBYTES = 1;
export const IFC_IERRORS = 2;
export const IFC_IQDROPS = 3;
export const IFC_OPACKETS = 4;
export const IFC_OBYTES = 5;
export const IFC_OERRORS = 6;
export const IFC_OQDROPS = 7;
/** Received frames whose handling threw (contained: see Ifnet.input). */
export const IFC_IFAULTS = 8;
export const IFC_NAMES = ['ipackets', 'ibytes', 'ierrors', 'iqdrops', 'opackets', 'obytes', 'oerrors', 'oqdrops', 'ifaults'] as const;

/**
 * Input ownership stamp, in the pkthdr's spare word: input() writes a fresh
 * one into each frame; whoever takes the packet off the input path (a
 * transmit, a queue that keeps it) clears it with ifInputHandoff. After an
 * exception the frame is freed only if its handle is still an allocated
 * mbuf with a packet header and the same stamp, so a packet already freed,
 * reused, queued or sent is never freed twice. Per thread; the random
 * start keeps another thread's stamps from matching ours.
 */
let inputStamp = (Math.random() * 0x7fff_ffff) | 1;

/** The input path no longer owns m (it is being queued or sent): an exception from here on must not free it. */
export function ifInputHandoff(mb: Mbufs, m: number): void {
  mb.i32[(m + PH_SPARE) >> 2] = 0;
}

/** Does the input path still own m, stamped `stamp` when it arrived? */
function inputOwns(mb: Mbufs, m: number, stamp: number): boolean {
  const i32 = mb.i32;
  return i32[(m + M_TYPE) >> 2] !== MT_NOTMBUF && (i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0 && i32[(m + PH_SPARE) >> 2] === stamp;
}

/** What a driver provides: send one frame (the driver owns m afterwards, and frees it). */
export interface IfDriver {
  output(ifp: Ifnet, m: number): void;
  /** Release driver resources; queued frames are freed. */
  detach?(ifp: Ifnet): void;
}

export interface IfAddr {
  addr: number;
  mask: number;
  broadcast: number;
}

let nextIndex = 1;

export class Ifnet {
  readonly index: number;
  readonly name: string;
  readonly mb: Mbufs;
  mac: number;
  mtu: number;
  flags: number;
  /** if_capabilities: the IFCAP_* bits the driver supports (capenable may only hold these). */
  capabilities = 0;
  /** if_capenable: the IFCAP_* bits switched on. */
  capenable = 0;
  /** if_hw_tsomax: the largest CSUM_TSO packet (IP header included) the driver takes. */
  hwTsomax = IP_MAXPACKET;
  /** if_type: IFT_ETHER, IFT_LOOP or IFT_PROPVIRTUAL (layer 3, no Ethernet header). */
  type = IFT_ETHER;
  /** The thread of the stack this interface is attached to (set by Stack.addInterface); drivers defer work on it. */
  td: NetThread | null = null;
  readonly addrs: IfAddr[] = [];
  /** if_data counters: thread-local, or a view of this CPU's block in the arena (netstats.ts). */
  counters: Float64Array<ArrayBufferLike> = new Float64Array(IFC_NAMES.length);
  driver: IfDriver | null = null;
  /** The stack's input routine (ether_input), set when the interface is attached to a stack. */
  inputHandler: ((ifp: Ifnet, m: number) => void) | null = null;
  pcap: PcapWriter | null = null;
  /**
   * Told (after counting) when the input handler threw on a frame: the
   * attaching stack logs it, rate-limited, naming itself and the handler.
   */
  onInputFault: ((ifp: Ifnet, e: unknown, freed: boolean) => void) | null = null;
  /** Run by detach(), after the driver's own detach (wrappers free what they hold). */
  readonly onDetach: (() => void)[] = [];

  constructor(mb: Mbufs, name: string, mac: number, mtu = 1500, flags = IFF_UP | IFF_BROADCAST) {
    this.index = nextIndex++;
    this.mb = mb;
    this.name = name;
    this.mac = mac;
    this.mtu = mtu;
    this.flags = flags;
  }

  /**
   * A frame arrived (the driver built mbuf m with a packet header): count it,
   * capture it and hand it to the stack. The stack owns m from here on.
   */
  input(m: number): void {
    const i32 = this.mb.i32;
    const len = i32[(m + PH_LEN) >> 2];
    this.counters[IFC_IPACKETS]++;
    this.counters[IFC_IBYTES] += len;
    i32[(m + PH_RCVIF) >> 2] = this.index;
    if ((this.flags & IFF_LOOPBACK) !== 0 && (i32[(m + PH_CSUM_FLAGS) >> 2] & CSUM_REQUESTS) !== 0) {
      // if_simloop: nothing on a loop corrupts; what the sender left to the offload is verified.
      m = linkVerdicts(this.mb, m, this, ifL2Len(this), true);
      if (m === 0) return;
    }
    if (this.pcap !== null) {
      m = this.captureFrame(m, len);
      if (m === 0) return;
    }
    if (this.inputHandler === null || (this.flags & IFF_UP) === 0) {
      this.counters[IFC_IQDROPS]++;
      this.mb.m_freem(m);
      return;
    }
    const stamp = (inputStamp = (inputStamp + 1) | 0 || 1);
    i32[(m + PH_SPARE) >> 2] = stamp;
    try {
      this.inputHandler(this, m);
    } catch (e) {
      this.inputFault(m, stamp, e);
    }
  }

  /**
   * Containment of a handler that threw on frame m: one bad packet must not
   * stop the CPU. Count it (ifaults, and ierrors), free m if the input path still owns
   * it (inputOwns), report it. In debug mode (the arena's debug flag, as
   * UMA's checks) rethrow, so tests fail loudly. Never sleeps.
   */
  private inputFault(m: number, stamp: number, e: unknown): void {
    this.counters[IFC_IFAULTS]++;
    this.counters[IFC_IERRORS]++; // seen in netstat -i's Ierrs
    const debug = this.mb.uma.arena.debug;
    const freed = !debug && inputOwns(this.mb, m, stamp);
    if (freed) this.mb.m_freem(m);
    this.onInputFault?.(this, e, freed);
    if (debug) throw e;
  }

  /** Send a complete frame: count, capture, give it to the driver (which owns m afterwards). */
  transmit(m: number): void {
    const len = this.mb.i32[(m + PH_LEN) >> 2];
    ifInputHandoff(this.mb, m);
    if (this.driver === null || (this.flags & IFF_UP) === 0) {
      this.counters[IFC_OQDROPS]++;
      this.mb.m_freem(m);
      return;
    }
    this.counters[IFC_OPACKETS]++;
    this.counters[IFC_OBYTES] += len;
    if (this.pcap !== null) {
      m = this.captureFrame(m, len);
      if (m === 0) return;
    }
    this.driver.output(this, m);
  }

  /**
   * Capture frame m: checksums left to the offload are completed first, so
   * the file shows what a wire would carry (a TSO packet stays one large
   * frame, as tcpdump shows it). Returns m, or 0 when it was freed (no memory).
   */
  private captureFrame(m: number, len: number): number {
    if (csumUndone(this.mb, m)) {
      m = inDelayedCksum(this.mb, m, ifL2Len(this));
      if (m === 0) return 0;
    }
    const pcap = this.pcap!;
    return withTsoCksumShown(this.mb, m, ifL2Len(this), (f) => capture(pcap, this.mb, f, len));
  }

  /** Count an input error (driver or stack found a malformed frame). */
  inputError(): void {
    this.counters[IFC_IERRORS]++;
  }

  /** Start or stop capturing this interface to a pcap writer. */
  setCapture(w: PcapWriter | null): void {
    this.pcap = w;
  }

  /** Primary IPv4 address (0 if none). */
  get addr(): number {
    return this.addrs.length > 0 ? this.addrs[0].addr : 0;
  }

  /** Counters as {name: value}. */
  stats(): Record<string, number> {
    const o: Record<string, number> = {};
    IFC_NAMES.forEach((n, i) => (o[n] = this.counters[i]));
    return o;
  }

  /** One `netstat -i`-style line. */
  describe(): string {
    const a = this.addrs.map((x) => ipToString(x.addr)).join(',') || '-';
    const c = this.counters;
    return `${this.name}\tmtu ${this.mtu}\t${macToString(this.mac)}\t${a}\tin ${c[IFC_IPACKETS]} pkts ${c[IFC_IBYTES]} B err ${c[IFC_IERRORS]} drop ${c[IFC_IQDROPS]}\tout ${c[IFC_OPACKETS]} pkts ${c[IFC_OBYTES]} B err ${c[IFC_OERRORS]} drop ${c[IFC_OQDROPS]}`;
  }

  /** Detach the driver (its queued frames are freed). */
  detach(): void {
    this.driver?.detach?.(this);
    this.driver = null;
    this.inputHandler = null;
    for (const f of this.onDetach.splice(0)) f();
  }
}

/** Copy a frame chain into a capture file. */
function capture(w: PcapWriter, mb: Mbufs, m: number, len: number): void {
  const i32 = mb.i32;
  w.begin(len);
  for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) w.append(mb.u8, i32[(x + M_DATA) >> 2], i32[(x + M_LEN) >> 2]);
  w.end();
}

/**
 * Frames a driver delivers later, on a pass of its thread (a poll hook), so a
 * sender never re-enters a receiver and no JS timer is involved (an MP CPU
 * may block its event loop; a manual-clock thread runs only when driven).
 * The hook is added on the first push, from the thread given by `thread()`
 * (usually the interface's), and removed by close(). Thread-local, no lock.
 */
export class IfQueue {
  private q: number[] = [];
  private td: NetThread | null = null;
  private closed = false;
  private readonly hook = (): number => this.drain();

  constructor(
    private readonly mb: Mbufs,
    private readonly thread: () => NetThread | null,
    private readonly sink: (m: number) => void,
  ) {}

  /** Queue m for the next pass; false (m not taken) when closed or no thread runs this interface. */
  push(m: number): boolean {
    if (this.closed) return false;
    if (this.td === null) {
      const td = this.thread();
      if (td === null) return false;
      this.td = td;
      td.addPollHook(this.hook);
    }
    this.q.push(m);
    if (this.q.length === 1) this.td.kick();
    return true;
  }

  get length(): number {
    return this.q.length;
  }

  /** Deliver what is queued (new pushes wait for the next pass); returns how many. */
  private drain(): number {
    const q = this.q;
    if (q.length === 0) return 0;
    this.q = [];
    for (let i = 0; i < q.length; i++) {
      if (this.closed) this.mb.m_freem(q[i]);
      else this.sink(q[i]);
    }
    return q.length;
  }

  /** Free what is queued, stop taking frames and leave the thread. */
  close(): void {
    this.closed = true;
    for (const m of this.q) this.mb.m_freem(m);
    this.q = [];
    this.td?.removePollHook(this.hook);
    this.td = null;
  }
}

/**
 * Loopback driver: a frame sent is received again by the same interface on
 * the next pass of its thread (never re-entering the sender).
 */
export class LoopbackDriver implements IfDriver {
  private q: IfQueue | null = null;
  output(ifp: Ifnet, m: number): void {
    if (this.q === null) this.q = new IfQueue(ifp.mb, () => ifp.td, (x) => ifp.input(x));
    if (!this.q.push(m)) {
      ifp.counters[IFC_OQDROPS]++;
      ifp.mb.m_freem(m);
    }
  }
  detach(): void {
    this.q?.close();
    this.q = null;
  }
}

/** Make a loopback interface lo0 (IFF_LOOPBACK, no ARP, checksum offload on: nothing to check on a loop). */
export function loopbackIf(mb: Mbufs, name = 'lo0', mtu = 16384): Ifnet {
  const ifp = new Ifnet(mb, name, 0, mtu, IFF_UP | IFF_LOOPBACK | IFF_NOARP);
  ifp.type = IFT_LOOP;
  ifp.capabilities = IFCAP_RXCSUM | IFCAP_TXCSUM;
  ifp.capenable = IFCAP_RXCSUM | IFCAP_TXCSUM;
  ifp.driver = new LoopbackDriver();
  return ifp;
}
