/**
 * Internet protocol control blocks (FreeBSD's in_pcb.c), shared by UDP and
 * TCP: binding (in_pcbbind with wildcard and specific addresses,
 * SO_REUSEADDR / SO_REUSEPORT / SO_REUSEPORT_LB), connecting
 * (in_pcbconnect), lookup (in_pcblookup: exact 4-tuple first, then the
 * load-balancing groups, then the best wildcard), ephemeral ports (RFC 6056)
 * and the insert half of a PCB's move between CPUs.
 *
 * One InPcbInfo (struct inpcbinfo) exists per protocol per stack instance,
 * i.e. per CPU in the multi-CPU stack: it is touched only by that CPU's
 * protocol thread, so nothing here locks, uses an atomic or sleeps, and the
 * hot path (lookup) allocates nothing.
 *
 * API (everything returns 0 or a BSD errno, src/kern/errno.ts):
 *
 *   new InPcbInfo<P>(opts)           opts.ports (PortRangeConfig: the
 *                                    net.inet.ip.portrange.* sysctls),
 *                                    opts.isLocal(addr) (bindable address),
 *                                    opts.random() (u32), opts.portOffset
 *                                    (RFC 6056's F: prng.ts's
 *                                    ephemeralPortOffset under the boot
 *                                    secret; without it keyedHash32 under
 *                                    opts.key or a key drawn from random()),
 *                                    opts.lbAtBind (UDP: a
 *                                    SO_REUSEPORT_LB PCB joins its group at
 *                                    bind; TCP calls lbgroupInsert at listen),
 *                                    opts.onTimeWait (TIME_WAIT reuse hook)
 *   bind(inp, laddr, lport, portOk?) in_pcbbind: lport 0 picks an ephemeral port;
 *                                    EINVAL already bound, EADDRNOTAVAIL not a
 *                                    local address or no port left, EADDRINUSE
 *   connect(inp, faddr, fport, laddr, portOk?) in_pcbconnect: laddr is the source the
 *                                    caller's route lookup chose (used when the
 *                                    PCB is bound to INADDR_ANY); binds an
 *                                    ephemeral port unique for the 4-tuple
 *                                    (RFC 6056 algorithm 3); EADDRINUSE when the
 *                                    4-tuple exists (unless onTimeWait recycles it),
 *                                    EISCONN when already connected
 *   disconnect(inp)                  in_pcbdisconnect (+ udp_disconnect's laddr reset)
 *   insertConnected(inp, l, lp, f, fp) the new half of a move to this CPU:
 *                                    enter an already bound and connected PCB;
 *                                    EADDRINUSE when this CPU has the 4-tuple
 *   markMoving(inp)                  the old half: flag it (INP_MOVING) until removed
 *   remove(inp)                      in_pcbremhash + in_pcbdrop (idempotent)
 *   lookup(l, lp, f, fp, flags, hash) in_pcblookup: exact match, else with
 *                                    INPLOOKUP_WILDCARD the LB group member
 *                                    picked by `hash` (the packet's RSS hash),
 *                                    else the unconnected PCB with the specific
 *                                    local address, else the INADDR_ANY one
 *   lookupLocal(laddr, lport, wild)  in_pcblookup_local (bind's conflict search)
 *   lbgroupInsert(inp) / lbgroupRemove(inp)  SO_REUSEPORT_LB group membership
 *   portList(lport)                  every PCB bound to lport (broadcast fan-out)
 *   all(), count                     every PCB in the table
 *
 * A protocol PCB extends InPcb (UdpPcb, Tcpcb). Its `soOptions` is the
 * socket's so_options word as this CPU last saw it (the protocol's
 * ctloutput updates it), which bind reads for the reuse rules; `flags` holds
 * INP_* bits (INP_TIMEWAIT: a TCP PCB in TIME_WAIT, whose soOptions are its
 * tw_so_options).
 *
 * Reuse rules (FreeBSD in_pcbbind_setup, without credentials):
 * - A socket with none of SO_REUSEADDR / SO_REUSEPORT / SO_REUSEPORT_LB
 *   searches wildcard: any PCB on the port whose local address overlaps
 *   (equal, or either is INADDR_ANY; connected ones included) is a conflict.
 * - With any of them the search is exact: only an unconnected PCB bound to
 *   the same local address conflicts. So SO_REUSEADDR allows a specific
 *   address beside INADDR_ANY and a bind beside connected or TIME_WAIT PCBs.
 * - A conflict is forgiven when both sockets have SO_REUSEPORT, or both
 *   SO_REUSEPORT_LB (for a multicast address SO_REUSEADDR counts as
 *   SO_REUSEPORT). Every conflicting PCB is checked, not only the first.
 *
 * Ephemeral ports (in_pcb_lport_dest): the range is first..last, or
 * hifirst..hilast (IP_PORTRANGE_HIGH), or lowlast..lowfirst
 * (IP_PORTRANGE_LOW); FreeBSD accepts either order. With
 * net.inet.ip.portrange.randomized (default 1): a connect with a known
 * destination uses RFC 6056 algorithm 3 (start at next + F(laddr, faddr,
 * fport, secret), F a keyed hash; next advances by the tries), a bind
 * without one algorithm 1 (a random start); each then walks the range
 * once. randomized = 0 walks sequentially from the last port given. A full
 * range is EADDRNOTAVAIL, as FreeBSD.
 *
 * The per-boot secret and keyed hash are src/kern/prng.ts's (bootSecret,
 * ephemeralPortOffset: HalfSipHash), passed in as opts.portOffset; the
 * local keyedHash32 stays as the fallback for tables made without one
 * (unit tests).
 *
 * TCP on this module (tcp_subr.ts): Tcpcb extends InPcb (its so_options is
 * soOptions); lookupConn is lookupExact, lookupListen is lookupWild with
 * the segment's inpFlowHash (a listener is an unconnected bound PCB; with
 * SO_REUSEPORT_LB, listen calls lbgroupInsert and SYNs spread by flow),
 * pcbconnect is connect (after the route picks the source), attachConn
 * (the syncache's new connection) is insertConnected, tcp_close is remove,
 * bind is bind. A TIME_WAIT tcpcb stays a connected PCB with its socket's
 * options, so binds see it as FreeBSD's tw_so_options rules do, and a
 * connect to its 4-tuple is EADDRINUSE (TCP gives no onTimeWait hook;
 * tcp_input's twcheck recycles TIME_WAIT for a new SYN itself). As in
 * FreeBSD, wildcard lookup does not look at TCP state: a bound but not
 * listening PCB on the specific address wins, and tcp_input answers it
 * with a RST.
 *
 * Port partitioning hook: bind and connect take an optional PortPredicate
 * (portOk) that every ephemeral candidate must pass, so a caller can keep
 * to the ports whose 4-tuple hashes to its CPU; the walk still covers the
 * whole range once, so no acceptable port left is EADDRNOTAVAIL.
 */
import { EADDRINUSE, EADDRNOTAVAIL, EINVAL, EISCONN } from '../kern/errno.js';
import { ArgumentError } from '../kern/errors.js';
import { SO_REUSEADDR, SO_REUSEPORT, SO_REUSEPORT_LB } from '../kern/socket/sockopt.js';

export const INADDR_ANY = 0;

const SO_REUSE_ANY = SO_REUSEADDR | SO_REUSEPORT | SO_REUSEPORT_LB;

/** inp_flags (in_pcb.h). INP_MOVING is ours: the PCB is leaving this CPU (DragonFly's mark). */
export const INP_HIGHPORT = 0x0010;
export const INP_LOWPORT = 0x0020;
export const INP_ANONPORT = 0x0040;
export const INP_MOVING = 0x0100_0000;
export const INP_TIMEWAIT = 0x0200_0000;
export const INP_DROPPED = 0x0400_0000;

/** IP_PORTRANGE values (netinet/in.h). */
export const IP_PORTRANGE = 19;
export const IP_PORTRANGE_DEFAULT = 0;
export const IP_PORTRANGE_HIGH = 1;
export const IP_PORTRANGE_LOW = 2;

/**
 * A caller's condition on an ephemeral port (the hook for port
 * partitioning: DragonFly picks, per CPU, only local ports whose 4-tuple
 * hashes to that CPU). Called with the candidate 4-tuple (faddr / fport 0
 * for a bind without destination); true accepts the port. Must not touch
 * the table; no allocation expected (it runs once per candidate).
 */
export type PortPredicate = (laddr: number, lport: number, faddr: number, fport: number) => boolean;

/**
 * The flow hash of a 4-tuple for choosing among a SO_REUSEPORT_LB group's
 * members (what the packet's RSS hash is in FreeBSD): the same flow always
 * picks the same member. Pure; no allocation.
 */
export function inpFlowHash(laddr: number, lport: number, faddr: number, fport: number): number {
  let h = Math.imul(faddr ^ Math.imul(laddr, 0x9e3779b1), 0x85ebca6b) ^ ((fport << 16) | lport);
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35);
  return (h ^ (h >>> 13)) >>> 0;
}

/** IP_PORTRANGE get (ip_ctloutput): the range inp's ephemeral ports come from. */
export function inpPortrange(inp: InPcb): number {
  return (inp.flags & INP_HIGHPORT) !== 0 ? IP_PORTRANGE_HIGH : (inp.flags & INP_LOWPORT) !== 0 ? IP_PORTRANGE_LOW : IP_PORTRANGE_DEFAULT;
}

/** IP_PORTRANGE set (ip_ctloutput): 0, or EINVAL for a value not IP_PORTRANGE_DEFAULT / HIGH / LOW. */
export function inpSetPortrange(inp: InPcb, v: number): number {
  if (v !== IP_PORTRANGE_DEFAULT && v !== IP_PORTRANGE_HIGH && v !== IP_PORTRANGE_LOW) return EINVAL;
  inp.flags = (inp.flags & ~(INP_HIGHPORT | INP_LOWPORT)) | (v === IP_PORTRANGE_HIGH ? INP_HIGHPORT : v === IP_PORTRANGE_LOW ? INP_LOWPORT : 0);
  return 0;
}

/** Lookup flags. */
export const INPLOOKUP_WILDCARD = 1;

/** The net.inet.ip.portrange.* sysctls (the object's fields may be bound to shared arena words). */
export interface PortRangeConfig {
  portFirst: number;
  portLast: number;
  portHiFirst: number;
  portHiLast: number;
  portLowFirst: number;
  portLowLast: number;
  /** net.inet.ip.portrange.randomized */
  portRandomized: boolean;
}

/** Defaults: the IANA dynamic range (49152..65535) for both first/last and hifirst/hilast; FreeBSD's low range. */
export const PORTRANGE_DEFAULTS: PortRangeConfig = {
  portFirst: 49152,
  portLast: 65535,
  portHiFirst: 49152,
  portHiLast: 65535,
  portLowFirst: 1023,
  portLowLast: 600,
  portRandomized: true,
};

/** The protocol-independent part of a PCB (struct inpcb). */
export class InPcb {
  laddr = 0;
  lport = 0;
  faddr = 0;
  fport = 0;
  /** INP_* bits. */
  flags = 0;
  /** so_options of the socket (SO_REUSEADDR ...), as the protocol last set them. */
  soOptions = 0;
  /** @internal next PCB in the same exact-hash bucket. */
  hashNext: InPcb | null = null;
  /** @internal where the PCB is hashed: 0 nowhere, 1 wild list, 2 exact hash. */
  hashed = 0;
  /** @internal member of its port's LB group. */
  inLbGroup = false;
  /** @internal index in its port's list (byPort), so remove is O(1) however many share the port. */
  portIdx = -1;

  get connected(): boolean {
    return this.faddr !== INADDR_ANY;
  }
}

export interface InPcbInfoOptions<P extends InPcb> {
  ports: PortRangeConfig;
  /** May `addr` be bound (one of ours, or a broadcast address the protocol accepts)? */
  isLocal: (addr: number) => boolean;
  /** Uniform 32-bit random values (algorithm 1 starts, the secret when `key` is absent). */
  random: () => number;
  /** RFC 6056 algorithm 3's F(laddr, faddr, fport, secret) (prng.ts ephemeralPortOffset under the boot secret). */
  portOffset?: (laddr: number, faddr: number, fport: number) => number;
  /** The fallback keyedHash32's secret (4 words) when portOffset is absent. */
  key?: Uint32Array;
  /** Put SO_REUSEPORT_LB PCBs in their group at bind (UDP); TCP adds listeners itself. */
  lbAtBind?: boolean;
  /**
   * TIME_WAIT reuse: `t` (INP_TIMEWAIT) holds the 4-tuple `inp` wants.
   * Return true after recycling t (removed from the table) to let the
   * connect proceed; false keeps EADDRINUSE.
   */
  onTimeWait?: (t: P, inp: P) => boolean;
  /** Initial exact-hash buckets (a power of two; the table doubles as it fills). */
  hashSize?: number;
}

/** One SO_REUSEPORT_LB group: the unconnected PCBs sharing (laddr, lport). */
interface LbGroup<P> {
  laddr: number;
  members: P[];
}

/**
 * Keyed 32-bit hash of three words (the fallback of opts.portOffset): four rounds of multiply-xorshift mixing with the key folded
 * in between, so outputs for different secrets are unrelated. Pure; no
 * allocation.
 */
export function keyedHash32(key: Uint32Array, a: number, b: number, c: number): number {
  let h = (key[0] ^ Math.imul(a | 0, 0x9e3779b1)) >>> 0;
  h = mix32(h ^ key[1]);
  h = mix32((h + Math.imul(b | 0, 0x85ebca77)) ^ key[2]);
  h = mix32((h + Math.imul(c | 0, 0xc2b2ae3d)) ^ key[3]);
  return mix32(h ^ key[0]);
}

function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Bucket of a 4-tuple in the exact hash (no key: the hash only spreads, it decides nothing). */
function tupleHash(laddr: number, lport: number, faddr: number, fport: number): number {
  let h = Math.imul(faddr ^ 0x27d4eb2d, 0x9e3779b1) ^ laddr;
  h = Math.imul(h ^ (h >>> 15) ^ ((fport << 16) | lport), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

const isMulticast = (a: number): boolean => a >>> 28 === 0xe;

export class InPcbInfo<P extends InPcb> {
  readonly ports: PortRangeConfig;
  private readonly opts: InPcbInfoOptions<P>;
  private readonly portOffset: (laddr: number, faddr: number, fport: number) => number;
  /** Every bound PCB by local port (the porthash: bind conflicts, broadcast fan-out). */
  private readonly byPort = new Map<number, P[]>();
  /** Unconnected bound PCBs by local port (ipi_hash_wild). */
  private readonly wild = new Map<number, P[]>();
  /** SO_REUSEPORT_LB groups by local port. */
  private readonly lbgroups = new Map<number, LbGroup<P>[]>();
  /** Connected PCBs by 4-tuple (ipi_hash_exact): buckets of intrusive lists. */
  private exact: (P | null)[];
  private exactCount = 0;
  /** RFC 6056 "next_ephemeral" and the sequential cursor per range (randomized = 0). */
  private nextEphemeral = 0;
  private readonly lastPort = new Map<number, number>();
  /** PCBs bound or connected (netstat). */
  count = 0;

  constructor(opts: InPcbInfoOptions<P>) {
    this.opts = opts;
    this.ports = opts.ports;
    const size = opts.hashSize ?? 256;
    if (!Number.isInteger(size) || size < 1 || (size & (size - 1)) !== 0) throw new ArgumentError(`hashSize must be a power of two, got ${size}`);
    this.exact = new Array<P | null>(size).fill(null);
    if (opts.portOffset !== undefined) this.portOffset = opts.portOffset;
    else {
      const key = opts.key ?? Uint32Array.of(opts.random(), opts.random(), opts.random(), opts.random());
      this.portOffset = (l, f, p) => keyedHash32(key, l, f, p);
    }
  }

  // ------------------------------------------------------------ lookup (hot)

  /**
   * in_pcblookup: the PCB a segment/datagram (faddr:fport -> laddr:lport)
   * belongs to. Exact 4-tuple first; with INPLOOKUP_WILDCARD then the LB
   * group member `hash` picks (specific laddr group before INADDR_ANY), then
   * the unconnected PCB bound to laddr, then one bound to INADDR_ANY.
   * Protocol thread only; no allocation; never sleeps.
   */
  lookup(laddr: number, lport: number, faddr: number, fport: number, flags = INPLOOKUP_WILDCARD, hash = 0): P | null {
    const e = this.lookupExact(laddr, lport, faddr, fport);
    if (e !== null || (flags & INPLOOKUP_WILDCARD) === 0) return e;
    return this.lookupWild(laddr, lport, hash);
  }

  /** The connected PCB of exactly this 4-tuple, or null. */
  lookupExact(laddr: number, lport: number, faddr: number, fport: number): P | null {
    if (this.exactCount === 0) return null;
    let p = this.exact[tupleHash(laddr, lport, faddr, fport) & (this.exact.length - 1)];
    for (; p !== null; p = p.hashNext as P | null) {
      if (p.lport === lport && p.fport === fport && p.faddr === faddr && p.laddr === laddr) return p;
    }
    return null;
  }

  /** The wildcard half of lookup (listeners, unconnected UDP sockets). */
  lookupWild(laddr: number, lport: number, hash = 0): P | null {
    const groups = this.lbgroups.get(lport);
    if (groups !== undefined) {
      let any: LbGroup<P> | null = null;
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g.laddr === laddr) return g.members[(hash >>> 0) % g.members.length];
        if (g.laddr === INADDR_ANY) any = g;
      }
      if (any !== null) return any.members[(hash >>> 0) % any.members.length];
    }
    const l = this.wild.get(lport);
    if (l === undefined) return null;
    let any: P | null = null;
    for (let i = 0; i < l.length; i++) {
      const p = l[i];
      if (p.laddr === laddr) return p;
      if (p.laddr === INADDR_ANY && any === null) any = p;
    }
    return any;
  }

  /** Every PCB bound to `lport` (broadcast and multicast fan-out). Do not modify. */
  portList(lport: number): readonly P[] {
    return this.byPort.get(lport) ?? EMPTY;
  }

  /** Every PCB in the table (netstat -an). Cold. */
  all(): P[] {
    const out: P[] = [];
    for (const l of this.byPort.values()) out.push(...l);
    return out;
  }

  // ------------------------------------------------------------ bind

  /**
   * in_pcblookup_local: a bound PCB that conflicts with binding
   * (laddr, lport). `wild`: overlapping addresses match and connected PCBs
   * count; else only an unconnected PCB with exactly laddr. Skips `self`.
   * Cold path; never sleeps.
   */
  lookupLocal(laddr: number, lport: number, wild: boolean, self: InPcb | null = null): P | null {
    const l = this.byPort.get(lport);
    if (l === undefined) return null;
    for (let i = 0; i < l.length; i++) {
      const t = l[i];
      if (t !== self && this.overlaps(t, laddr, wild)) return t;
    }
    return null;
  }

  private overlaps(t: InPcb, laddr: number, wild: boolean): boolean {
    if (!wild) return t.faddr === INADDR_ANY && t.laddr === laddr;
    return t.laddr === laddr || t.laddr === INADDR_ANY || laddr === INADDR_ANY;
  }

  /** Would binding inp to (laddr, lport) conflict with a PCB there (reuse rules above)? */
  private conflicts(inp: InPcb, laddr: number, lport: number): boolean {
    const l = this.byPort.get(lport);
    if (l === undefined) return false;
    const o = inp.soOptions;
    const wild = (o & SO_REUSE_ANY) === 0;
    let reuseport = o & SO_REUSEPORT;
    const reuseportLb = o & SO_REUSEPORT_LB;
    if (isMulticast(laddr) && (o & SO_REUSEADDR) !== 0) reuseport = SO_REUSEADDR | SO_REUSEPORT;
    for (let i = 0; i < l.length; i++) {
      const t = l[i];
      if (t === inp || !this.overlaps(t, laddr, wild)) continue;
      if ((reuseport & t.soOptions) === 0 && (reuseportLb & t.soOptions) === 0) return true;
    }
    return false;
  }

  /**
   * in_pcbbind: bind inp to (laddr, lport); lport 0 takes an ephemeral port
   * (algorithm 1, or sequential), only one `portOk` accepts when given.
   * Returns 0 or EINVAL (already bound),
   * EADDRNOTAVAIL (not a local address; no free port), EADDRINUSE.
   * Protocol thread only; cold; never sleeps.
   */
  bind(inp: P, laddr: number, lport: number, portOk?: PortPredicate): number {
    laddr >>>= 0;
    if (inp.lport !== 0 || inp.laddr !== INADDR_ANY || (inp.flags & INP_DROPPED) !== 0) return EINVAL;
    if (!Number.isInteger(lport) || lport < 0 || lport > 65535) return EINVAL;
    if (laddr !== INADDR_ANY && !isMulticast(laddr) && !this.opts.isLocal(laddr)) return EADDRNOTAVAIL;
    if (lport === 0) {
      lport = this.ephemeral(inp, laddr, INADDR_ANY, 0, portOk);
      if (lport === 0) return EADDRNOTAVAIL;
      inp.flags |= INP_ANONPORT;
    } else if (this.conflicts(inp, laddr, lport)) {
      return EADDRINUSE;
    }
    inp.laddr = laddr;
    inp.lport = lport;
    this.insert(inp);
    return 0;
  }

  /** The ephemeral range of inp as [lo, hi] (either sysctl order accepted). */
  private range(inp: InPcb): [number, number, number] {
    const c = this.ports;
    let a: number;
    let b: number;
    let which: number;
    if ((inp.flags & INP_HIGHPORT) !== 0) [a, b, which] = [c.portHiFirst, c.portHiLast, 1];
    else if ((inp.flags & INP_LOWPORT) !== 0) [a, b, which] = [c.portLowFirst, c.portLowLast, 2];
    else [a, b, which] = [c.portFirst, c.portLast, 0];
    return a <= b ? [a, b, which] : [b, a, which];
  }

  /**
   * in_pcb_lport_dest: a free local port for inp at laddr, 0 when the range
   * is used up. With a destination (faddr != 0) a port is free when the
   * 4-tuple is unused (a TIME_WAIT holder may be recycled by onTimeWait);
   * without one when bind's reuse rules allow it; and `portOk` (when
   * given) must accept it. Cold; never sleeps.
   */
  private ephemeral(inp: P, laddr: number, faddr: number, fport: number, portOk?: PortPredicate): number {
    const [lo, hi, which] = this.range(inp);
    if (lo < 1 || hi > 65535) return 0;
    const n = hi - lo + 1;
    let start: number;
    const randomized = Boolean(this.ports.portRandomized);
    if (!randomized) start = ((this.lastPort.get(which) ?? lo - 1) - lo + 1) % n;
    else if (faddr !== INADDR_ANY) start = ((this.portOffset(laddr, faddr, fport) >>> 0) + this.nextEphemeral) % n;
    else start = this.opts.random() % n;
    for (let k = 0; k < n; k++) {
      const port = lo + ((start + k) % n);
      if (portOk !== undefined && !portOk(laddr, port, faddr, fport)) continue;
      const free = faddr !== INADDR_ANY ? this.tupleFree(inp, laddr, port, faddr, fport) : !this.conflicts(inp, laddr, port);
      if (!free) continue;
      if (!randomized) this.lastPort.set(which, port);
      else if (faddr !== INADDR_ANY) this.nextEphemeral = (this.nextEphemeral + k + 1) >>> 0;
      return port;
    }
    return 0;
  }

  /** No PCB holds the 4-tuple (a TIME_WAIT one the hook recycled does not count). */
  private tupleFree(inp: P, laddr: number, lport: number, faddr: number, fport: number): boolean {
    const t = this.lookupExact(laddr, lport, faddr, fport);
    if (t === null || t === inp) return true;
    if ((t.flags & INP_TIMEWAIT) !== 0 && this.opts.onTimeWait !== undefined && this.opts.onTimeWait(t, inp)) {
      this.remove(t);
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------ connect

  /**
   * in_pcbconnect: fix the foreign address. `laddr` is the source address
   * the protocol's route lookup chose, used when inp is bound to
   * INADDR_ANY. An unbound inp gets an ephemeral port unique for the
   * 4-tuple (algorithm 3). Returns 0, EADDRNOTAVAIL (no foreign address or
   * port, no source, no port left), EADDRINUSE (4-tuple taken) or EINVAL.
   * `portOk` narrows the ephemeral choice (PortPredicate). Protocol thread
   * only; never sleeps.
   */
  connect(inp: P, faddr: number, fport: number, laddr: number, portOk?: PortPredicate): number {
    faddr >>>= 0;
    if ((inp.flags & INP_DROPPED) !== 0) return EINVAL;
    if (inp.faddr !== INADDR_ANY) return EISCONN;
    if (faddr === INADDR_ANY || !Number.isInteger(fport) || fport <= 0 || fport > 65535) return EADDRNOTAVAIL;
    const src = inp.laddr !== INADDR_ANY ? inp.laddr : laddr >>> 0;
    if (src === INADDR_ANY) return EADDRNOTAVAIL;
    let lport = inp.lport;
    if (lport === 0) {
      lport = this.ephemeral(inp, src, faddr, fport, portOk);
      if (lport === 0) return EADDRNOTAVAIL;
      inp.flags |= INP_ANONPORT;
    } else if (!this.tupleFree(inp, src, lport, faddr, fport)) {
      return EADDRINUSE;
    }
    const wasBound = inp.hashed !== 0;
    if (wasBound) this.unhash(inp);
    inp.laddr = src;
    inp.lport = lport;
    inp.faddr = faddr;
    inp.fport = fport;
    if (wasBound) this.hash(inp);
    else this.insert(inp);
    return 0;
  }

  /**
   * in_pcbdisconnect (with udp_disconnect's reset of the local address):
   * back to an unconnected PCB bound to INADDR_ANY on the same port.
   */
  disconnect(inp: P): void {
    if (inp.faddr === INADDR_ANY || (inp.flags & INP_DROPPED) !== 0) return;
    this.unhash(inp);
    inp.faddr = INADDR_ANY;
    inp.fport = 0;
    inp.laddr = INADDR_ANY;
    this.hash(inp);
  }

  // ------------------------------------------------------------ moves between CPUs

  /** The old half of a move: inp stays findable until remove(); the flag tells what is going on. */
  markMoving(inp: P): void {
    inp.flags |= INP_MOVING;
  }

  /**
   * The new half of a move (in_pcbinshash on the target CPU): enter inp,
   * bound and connected on the CPU it came from, with no bind checks (the
   * port was reserved there) but refusing a 4-tuple this CPU already has.
   */
  insertConnected(inp: P, laddr: number, lport: number, faddr: number, fport: number): number {
    if (inp.hashed !== 0 || (inp.flags & INP_DROPPED) !== 0) return EINVAL;
    if (faddr === INADDR_ANY || lport <= 0 || lport > 65535 || fport <= 0 || fport > 65535) return EINVAL;
    if (!this.tupleFree(inp, laddr >>> 0, lport, faddr >>> 0, fport)) return EADDRINUSE;
    inp.laddr = laddr >>> 0;
    inp.lport = lport;
    inp.faddr = faddr >>> 0;
    inp.fport = fport;
    this.insert(inp);
    return 0;
  }

  /** in_pcbremhash + in_pcbdrop: take inp out of every list (idempotent). */
  remove(inp: P): void {
    if ((inp.flags & INP_DROPPED) !== 0) return;
    inp.flags |= INP_DROPPED;
    if (inp.lport === 0) return;
    this.unhash(inp);
    const l = this.byPort.get(inp.lport);
    if (l === undefined) return;
    // portIdx is this table's unless the same PCB object was entered in another table since (a move): search then.
    const i = l[inp.portIdx] === inp ? inp.portIdx : l.indexOf(inp);
    if (i >= 0) {
      // The last PCB of the port takes the hole: a listener's port can hold
      // thousands of connections and TIME_WAIT PCBs, and order in the list
      // means nothing (FreeBSD's porthash list is unordered too).
      const last = l.pop()!;
      if (last !== inp) {
        l[i] = last;
        last.portIdx = i;
      }
      inp.portIdx = -1;
      this.count--;
      if (l.length === 0) this.byPort.delete(inp.lport);
    }
  }

  // ------------------------------------------------------------ LB groups

  /** Join inp's SO_REUSEPORT_LB group (unconnected, bound). */
  lbgroupInsert(inp: P): void {
    if (inp.inLbGroup || inp.faddr !== INADDR_ANY || inp.lport === 0) return;
    let gs = this.lbgroups.get(inp.lport);
    if (gs === undefined) this.lbgroups.set(inp.lport, (gs = []));
    let g = gs.find((x) => x.laddr === inp.laddr);
    if (g === undefined) gs.push((g = { laddr: inp.laddr, members: [] }));
    g.members.push(inp);
    inp.inLbGroup = true;
  }

  lbgroupRemove(inp: P): void {
    if (!inp.inLbGroup) return;
    inp.inLbGroup = false;
    const gs = this.lbgroups.get(inp.lport);
    if (gs === undefined) return;
    const gi = gs.findIndex((x) => x.laddr === inp.laddr);
    if (gi < 0) return;
    const m = gs[gi].members;
    const i = m.indexOf(inp);
    if (i >= 0) m.splice(i, 1);
    if (m.length === 0) gs.splice(gi, 1);
    if (gs.length === 0) this.lbgroups.delete(inp.lport);
  }

  // ------------------------------------------------------------ lists

  /** Enter a freshly bound or connected PCB in the port list and its hash. */
  private insert(inp: P): void {
    let l = this.byPort.get(inp.lport);
    if (l === undefined) this.byPort.set(inp.lport, (l = []));
    inp.portIdx = l.length;
    l.push(inp);
    this.count++;
    this.hash(inp);
  }

  /** in_pcbinshash: the exact hash for a connected PCB, the wild list (and LB group) otherwise. */
  private hash(inp: P): void {
    if (inp.faddr !== INADDR_ANY) {
      if (this.exactCount >= this.exact.length * 2) this.grow();
      const b = tupleHash(inp.laddr, inp.lport, inp.faddr, inp.fport) & (this.exact.length - 1);
      inp.hashNext = this.exact[b];
      this.exact[b] = inp;
      this.exactCount++;
      inp.hashed = 2;
      return;
    }
    let l = this.wild.get(inp.lport);
    if (l === undefined) this.wild.set(inp.lport, (l = []));
    // Specific addresses first: lookupWild returns the first exact match, so order only matters for INADDR_ANY ties.
    l.push(inp);
    inp.hashed = 1;
    if (this.opts.lbAtBind === true && (inp.soOptions & SO_REUSEPORT_LB) !== 0) this.lbgroupInsert(inp);
  }

  private unhash(inp: P): void {
    if (inp.hashed === 2) {
      const b = tupleHash(inp.laddr, inp.lport, inp.faddr, inp.fport) & (this.exact.length - 1);
      let prev: P | null = null;
      for (let p = this.exact[b]; p !== null; prev = p, p = p.hashNext as P | null) {
        if (p !== inp) continue;
        if (prev === null) this.exact[b] = p.hashNext as P | null;
        else prev.hashNext = p.hashNext;
        this.exactCount--;
        break;
      }
      inp.hashNext = null;
    } else if (inp.hashed === 1) {
      this.lbgroupRemove(inp);
      const l = this.wild.get(inp.lport);
      if (l !== undefined) {
        const i = l.indexOf(inp);
        if (i >= 0) l.splice(i, 1);
        if (l.length === 0) this.wild.delete(inp.lport);
      }
    }
    inp.hashed = 0;
  }

  /** Double the exact hash (cold: once per doubling of the connected PCBs). */
  private grow(): void {
    const old = this.exact;
    this.exact = new Array<P | null>(old.length * 2).fill(null);
    const mask = this.exact.length - 1;
    for (let b = 0; b < old.length; b++) {
      for (let p = old[b]; p !== null; ) {
        const next = p.hashNext as P | null;
        const nb = tupleHash(p.laddr, p.lport, p.faddr, p.fport) & mask;
        p.hashNext = this.exact[nb];
        this.exact[nb] = p;
        p = next;
      }
    }
  }
}

const EMPTY: readonly never[] = Object.freeze([]);
