/**
 * In-memory link: two interfaces joined back to back (if_epair). A
 * transmitted frame's mbuf handle is handed to the peer interface as is
 * (zero copy: both ends share the arena), on the next pass of the sending
 * interface's thread (a poll hook: no JS timer), so a sender never re-enters
 * a receiver. The MTU is the interfaces' (up to 64 KiB: chains are passed
 * whole; with TSO a 64 KiB TCP chain crosses as one, see MEMLINK_CAPS).
 *
 * Optional impairment, the fault injector of fault.ts on each direction
 * (seeded; driven by the thread's clock and callouts): loss, duplication,
 * reordering, delay with jitter, corruption, a rate limit with a bounded
 * queue.
 *
 * Both ends of a MemLink live in one thread (two stacks in one process, or
 * two interfaces of one CPU); no lock is taken and nothing sleeps.
 */
import type { Mbufs } from '../../kern/mbuf/mbuf.js';
import { IFC_OQDROPS, IFCAP_LRO, IFCAP_RXCSUM, IFCAP_TSO4, IFCAP_TXCSUM, IfQueue, type IfDriver, type Ifnet } from '../if.js';
import { ifL2Len, linkTransmit } from '../if_offload.js';
import { FaultQueue, checkFaultOptions, type FaultOptions } from './fault.js';
import { ArgumentError } from '../../kern/errors.js';

/** The link's impairment: the fault injector's options (fault.ts), each direction with its own seed. */
export type Impairment = FaultOptions;

export interface LinkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  queueDrops: number;
}

/** One direction of the link: the driver of the sending interface. */
class Direction implements IfDriver {
  private readonly counts = { sent: 0, delivered: 0 };
  /** Frames for the peer, delivered on the next pass of the sender's thread. */
  private readonly q: IfQueue;
  /** The impairment engine, made at the first frame (the interface's thread is known by then). */
  private fault: FaultQueue | null = null;
  private closed = false;

  constructor(
    private readonly mb: Mbufs,
    private readonly self: Ifnet,
    private readonly peer: Ifnet,
    private readonly imp: Impairment | null,
  ) {
    this.q = new IfQueue(mb, () => self.td ?? peer.td, (m) => this.deliver(m));
    this.l2 = ifL2Len(self);
  }

  /** Fast path without impairment: queue for the next pass. */
  output(ifp: Ifnet, m: number): void {
    this.counts.sent++;
    if (this.closed) {
      this.mb.m_freem(m);
      return;
    }
    if (this.imp !== null) {
      if (this.fault === null) {
        const td = ifp.td ?? this.peer.td;
        if (td === null) {
          this.drop(ifp, m);
          return;
        }
        this.fault = new FaultQueue(this.mb, td, this.imp, (x) => this.enqueue(x), () => ifp.counters[IFC_OQDROPS]++, this.l2);
      }
      this.fault.submit(m);
      return;
    }
    linkTransmit(this.mb, m, this.peer, this.l2, this.enqueueFn);
  }

  /** Bytes of link header in front of the IP header (what the offloads skip). */
  private readonly l2: number;
  private readonly enqueueFn = (m: number): void => this.enqueue(m);

  private enqueue(m: number): void {
    if (this.q.length >= (this.imp?.queueLimit ?? 1024) || !this.q.push(m)) this.drop(this.self, m);
  }

  private drop(ifp: Ifnet, m: number): void {
    this.queueDrops++;
    ifp.counters[IFC_OQDROPS]++;
    this.mb.m_freem(m);
  }

  private queueDrops = 0;

  private deliver(m: number): void {
    this.counts.delivered++;
    this.peer.input(m);
  }

  get stats(): LinkStats {
    const f = this.fault?.stats;
    return {
      sent: this.counts.sent,
      delivered: this.counts.delivered,
      lost: f?.lost ?? 0,
      duplicated: f?.duplicated ?? 0,
      reordered: f?.reordered ?? 0,
      corrupted: f?.corrupted ?? 0,
      queueDrops: this.queueDrops + (f?.queueDrops ?? 0),
    };
  }

  /** Frames still in flight (a test waits for 0). */
  get inFlight(): number {
    return this.q.length + (this.fault?.pending ?? 0);
  }

  /** Release a held-back frame (reorder) so the link can drain. */
  releaseHeld(): void {
    this.fault?.releaseHeld();
  }

  detach(): void {
    this.closed = true;
    this.fault?.close();
    this.q.close();
  }
}

/**
 * What the in-memory link offers each end, all on by default: checksum
 * offload both ways, TSO and LRO (a chain of up to 64 KiB crosses by
 * handle; a peer with LRO off gets it cut to its MTU on the way, one with
 * RXCSUM off gets the checksums computed). With an impairment, frames are
 * made real before it (segmented, checksummed: fault.ts), so a corrupting
 * link never claims clean. `ifconfig -tso` etc. (Interface.setCapabilities)
 * turns them off per end.
 */
export const MEMLINK_CAPS = IFCAP_RXCSUM | IFCAP_TXCSUM | IFCAP_TSO4 | IFCAP_LRO;

export class MemLink {
  readonly ab: Direction;
  readonly ba: Direction;
  private constructor(
    readonly a: Ifnet,
    readonly b: Ifnet,
    ab: Direction,
    ba: Direction,
  ) {
    this.ab = ab;
    this.ba = ba;
  }

  /**
   * Join two interfaces. The impairment applies to both directions (each with
   * its own random source: seed and seed + 1).
   */
  static connect(a: Ifnet, b: Ifnet, imp?: Impairment): MemLink {
    if (imp !== undefined) checkFaultOptions(imp);
    const i1 = imp ? { ...imp } : null;
    const i2 = imp ? { ...imp, seed: (imp.seed ?? 1) + 1 } : null;
    for (const ifp of [a, b]) {
      ifp.capabilities |= MEMLINK_CAPS;
      ifp.capenable |= MEMLINK_CAPS;
    }
    const ab = new Direction(a.mb, a, b, i1);
    const ba = new Direction(b.mb, b, a, i2);
    a.driver = ab;
    b.driver = ba;
    return new MemLink(a, b, ab, ba);
  }

  get inFlight(): number {
    return this.ab.inFlight + this.ba.inFlight;
  }

  /**
   * Resolve when nothing is queued in either direction (held-back frames
   * are released). Watched from a poll hook on each end's thread, so it
   * resolves on the pass that empties the link; on a manual clock that is
   * when the owner advances it. No JS timer.
   */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    const tds = [...new Set([this.a.td, this.b.td].filter((t) => t !== null))];
    if (tds.length === 0) return Promise.reject(new ArgumentError('MemLink.idle: neither end is attached to a stack'));
    return new Promise((resolve) => {
      const hook = (): number => {
        this.ab.releaseHeld();
        this.ba.releaseHeld();
        if (this.inFlight !== 0) return 0;
        for (const td of tds) td.removePollHook(hook);
        resolve();
        return 0;
      };
      for (const td of tds) {
        td.addPollHook(hook);
        td.kick();
      }
    });
  }

  /** Cut the link: frames in flight are freed. */
  close(): void {
    this.a.detach();
    this.b.detach();
  }
}
