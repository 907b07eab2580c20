/**
 * In-memory link: two interfaces joined back to back. A transmitted frame's
 * mbuf handle is handed to the peer interface as is (zero copy: both ends
 * share the arena), on a later turn of the event loop so a sender never
 * re-enters a receiver.
 *
 * Optional impairment for tests, drawn from a seeded Prng so a failing run
 * can be replayed: loss, duplication (a copy of the frame), reordering (a
 * frame held back behind the next), delay with jitter, corruption (one byte
 * flipped), and a rate limit with a bounded queue (tail drop).
 *
 * Both ends of a MemLink live in one thread (two stacks in one process, or
 * two interfaces of one CPU); no lock is taken and nothing sleeps.
 */
import type { Mbufs } from '../../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN, M_NEXT, PH_LEN } from '../../kern/mbuf/layout.js';
import { IFC_OQDROPS, type IfDriver, type Ifnet } from '../if.js';
import { Prng } from '../../kern/prng.js';
import { dupPacket } from '../mchain.js';

export interface Impairment {
  /** Seed of the random source (default 1). */
  seed?: number;
  /** Probability that a frame is lost. */
  loss?: number;
  /** Probability that a frame is delivered twice. */
  duplicate?: number;
  /** Probability that a frame is held back and delivered after the next one. */
  reorder?: number;
  /** Fixed delay in ms, plus up to jitterMs at random. */
  delayMs?: number;
  jitterMs?: number;
  /** Probability that one random byte of the frame is flipped. */
  corrupt?: number;
  /** Bits per second; frames queue behind each other at this rate. */
  rateBps?: number;
  /** Frames a direction may queue before tail drop (default 1024). */
  queueLimit?: number;
}

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
  readonly stats: LinkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, corrupted: 0, queueDrops: 0 };
  private ready: number[] = [];
  private scheduled = false;
  /** Frames waiting for their due time: parallel arrays, ordered by due time. */
  private timedM: number[] = [];
  private timedAt: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private held = 0;
  private lastDeparture = 0;
  private closed = false;
  private readonly rng: Prng;

  constructor(
    private readonly mb: Mbufs,
    private readonly peer: Ifnet,
    private readonly imp: Impairment,
  ) {
    this.rng = new Prng(imp.seed ?? 1);
  }

  /** Fast path without impairment: queue and schedule delivery. */
  output(ifp: Ifnet, m: number): void {
    this.stats.sent++;
    if (this.closed) {
      this.mb.m_freem(m);
      return;
    }
    if (this.pending() >= (this.imp.queueLimit ?? 1024)) {
      this.stats.queueDrops++;
      ifp.counters[IFC_OQDROPS]++;
      this.mb.m_freem(m);
      return;
    }
    if (this.imp === NO_IMPAIRMENT) {
      this.enqueue(m);
      return;
    }
    this.impaired(m);
  }

  private pending(): number {
    return this.ready.length + this.timedM.length + (this.held !== 0 ? 1 : 0);
  }

  /** The impairment model, in the order a real path would apply it. */
  private impaired(m: number): void {
    const imp = this.imp;
    const r = this.rng;
    if (imp.loss && r.next() < imp.loss) {
      this.stats.lost++;
      this.mb.m_freem(m);
      return;
    }
    if (imp.corrupt && r.next() < imp.corrupt) {
      this.stats.corrupted++;
      flipByte(this.mb, m, r);
    }
    let copies = 1;
    if (imp.duplicate && r.next() < imp.duplicate) copies = 2;
    for (let c = 0; c < copies; c++) {
      let x = m;
      if (c === 1) {
        x = dupPacket(this.mb, m);
        if (x === 0) break;
        this.stats.duplicated++;
      }
      if (imp.reorder && this.held === 0 && r.next() < imp.reorder) {
        this.held = x;
        this.stats.reordered++;
        continue;
      }
      this.schedule(x);
      if (this.held !== 0) {
        const h = this.held;
        this.held = 0;
        this.schedule(h);
      }
    }
  }

  /** Apply rate and delay: due now (ready queue) or later (timed queue). */
  private schedule(m: number): void {
    const imp = this.imp;
    let due = 0;
    const now = performance.now();
    if (imp.rateBps) {
      const len = this.mb.i32[(m + PH_LEN) >> 2];
      const start = Math.max(now, this.lastDeparture);
      this.lastDeparture = start + (len * 8 * 1000) / imp.rateBps;
      due = this.lastDeparture;
    }
    if (imp.delayMs || imp.jitterMs) due = Math.max(due, now) + (imp.delayMs ?? 0) + this.rng.next() * (imp.jitterMs ?? 0);
    if (due <= now) {
      this.enqueue(m);
      return;
    }
    let i = this.timedAt.length;
    while (i > 0 && this.timedAt[i - 1] > due) i--;
    this.timedAt.splice(i, 0, due);
    this.timedM.splice(i, 0, m);
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timer !== null || this.timedAt.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = performance.now();
      while (this.timedAt.length > 0 && this.timedAt[0] <= now + 0.5) {
        this.timedAt.shift();
        this.enqueue(this.timedM.shift()!);
      }
      this.armTimer();
    }, Math.max(0, this.timedAt[0] - performance.now()));
  }

  private enqueue(m: number): void {
    this.ready.push(m);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.deliver());
    }
  }

  private deliver(): void {
    this.scheduled = false;
    const q = this.ready;
    this.ready = [];
    for (const m of q) {
      if (this.closed) {
        this.mb.m_freem(m);
        continue;
      }
      this.stats.delivered++;
      this.peer.input(m);
    }
  }

  /** Frames still in flight (a test waits for 0). */
  get inFlight(): number {
    return this.pending();
  }

  /** Release a held-back frame (reorder) so the link can drain. */
  releaseHeld(): void {
    if (this.held !== 0) {
      const h = this.held;
      this.held = 0;
      this.schedule(h);
    }
  }

  detach(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const m of this.ready) this.mb.m_freem(m);
    for (const m of this.timedM) this.mb.m_freem(m);
    if (this.held !== 0) this.mb.m_freem(this.held);
    this.ready = [];
    this.timedM = [];
    this.timedAt = [];
    this.held = 0;
  }
}

const NO_IMPAIRMENT: Impairment = {};

/** Flip one random byte of a frame (never the Ethernet header, so the frame still reaches the stack). */
function flipByte(mb: Mbufs, m: number, r: Prng): void {
  const i32 = mb.i32;
  const len = i32[(m + PH_LEN) >> 2];
  if (len <= 14) return;
  let off = 14 + r.below(len - 14);
  for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
    const l = i32[(x + M_LEN) >> 2];
    if (off < l) {
      mb.u8[i32[(x + M_DATA) >> 2] + off] ^= 1 << r.below(8) || 1;
      return;
    }
    off -= l;
  }
}

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
    const i1 = imp ? { ...imp } : NO_IMPAIRMENT;
    const i2 = imp ? { ...imp, seed: (imp.seed ?? 1) + 1 } : NO_IMPAIRMENT;
    const ab = new Direction(a.mb, b, i1);
    const ba = new Direction(b.mb, a, i2);
    a.driver = ab;
    b.driver = ba;
    return new MemLink(a, b, ab, ba);
  }

  get inFlight(): number {
    return this.ab.inFlight + this.ba.inFlight;
  }

  /** Resolve when nothing is queued in either direction (held-back frames are released). */
  async idle(timeoutMs = 5000): Promise<void> {
    const t0 = performance.now();
    while (this.inFlight > 0) {
      this.ab.releaseHeld();
      this.ba.releaseHeld();
      if (performance.now() - t0 > timeoutMs) throw new Error(`link still has ${this.inFlight} frames after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Cut the link: frames in flight are freed. */
  close(): void {
    this.a.detach();
    this.b.detach();
  }
}
