/**
 * Fault injection on any interface (smoltcp's FaultInjector, netem's
 * impairments): loss, duplication, reordering, delay with jitter,
 * corruption and a bandwidth limit with a bounded queue, drawn from a seeded
 * random source so that a run is exactly reproducible from its seed.
 *
 * FaultQueue is the engine: frames go in by submit(), come out at their due
 * time through `sink`. Time is the thread's clock and waiting is one callout
 * on its wheel (never a JS timer), so on a manual clock the outcome of a
 * seed is exact and `advance(ms)` moves frames along.
 *
 * FaultInjector.wrap(ifp) puts an engine between the stack and the
 * interface's driver (transmit side: each frame the stack sends is impaired
 * before the driver sees it); wrapInput(ifp) puts one between the driver and
 * the stack (receive side; the interface must be attached to its stack).
 * Wrapping both ends of a link impairs both directions.
 *
 * Everything belongs to the thread of the interface: no lock; nothing sleeps.
 */
import type { Mbufs } from '../../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN, M_NEXT, PH_CSUM_FLAGS, PH_LEN } from '../../kern/mbuf/layout.js';
import { m_unshare } from '../../kern/mbuf/ops.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { CSUM_REQUESTS, CSUM_VERDICTS, wireFrames } from '../if_offload.js';
import { ArgumentError } from '../../kern/errors.js';
import { Prng } from '../../kern/prng.js';
import type { NetThread } from '../../kern/lwkt/netthread.js';
import type { Callout } from '../../kern/lwkt/callout.js';
import { IFC_OQDROPS, IFC_IQDROPS, IFT_ETHER, type IfDriver, type Ifnet } from '../if.js';
import { dupPacket } from '../mchain.js';

export interface FaultOptions {
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
  /** Probability that one random bit of the frame is flipped (past the link header). */
  corrupt?: number;
  /** Bits per second; frames queue behind each other at this rate. */
  rateBps?: number;
  /** Frames that may wait (delay, rate, held back) before tail drop (default 1024). */
  queueLimit?: number;
}

export interface FaultStats {
  /** Frames submitted. */
  seen: number;
  /** Frames (and copies) handed on. */
  passed: number;
  lost: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  queueDrops: number;
}

const PROBS = ['loss', 'duplicate', 'reorder', 'corrupt'] as const;

/** Check an options object: clear ArgumentErrors for anything out of range. */
export function checkFaultOptions(o: FaultOptions): FaultOptions {
  if (o === null || typeof o !== 'object') throw new ArgumentError('fault options must be an object');
  for (const k of PROBS) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) throw new ArgumentError(`fault ${k} must be a probability in [0, 1], got ${String(v)}`);
  }
  for (const k of ['delayMs', 'jitterMs', 'rateBps'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new ArgumentError(`fault ${k} must be a finite number >= 0, got ${String(v)}`);
  }
  if (o.queueLimit !== undefined && !(Number.isInteger(o.queueLimit) && o.queueLimit >= 1)) throw new ArgumentError(`fault queueLimit must be an integer >= 1, got ${String(o.queueLimit)}`);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new ArgumentError(`fault seed must be an integer, got ${String(o.seed)}`);
  return o;
}

export class FaultQueue {
  readonly stats: FaultStats = { seen: 0, passed: 0, lost: 0, duplicated: 0, reordered: 0, corrupted: 0, queueDrops: 0 };
  private readonly rng: Prng;
  private readonly opts: FaultOptions;
  /** Frames waiting for their due time: parallel arrays ordered by due time (FIFO among equals). */
  private timedM: number[] = [];
  private timedAt: number[] = [];
  private held = 0;
  private lastDeparture = 0;
  private callout: Callout | null = null;
  private closed = false;

  /**
   * `linkHdr`: bytes at the front that corruption spares (14 on Ethernet,
   * so a corrupted frame still reaches the stack, which must catch it).
   */
  constructor(
    private readonly mb: Mbufs,
    private readonly td: NetThread,
    opts: FaultOptions,
    private readonly sink: (m: number) => void,
    private readonly onDrop: () => void = () => {},
    private readonly linkHdr = 14,
  ) {
    this.opts = { ...checkFaultOptions(opts) };
    this.rng = new Prng(opts.seed ?? 1);
  }

  /** Frames waiting inside (delayed, rate-limited or held back). */
  get pending(): number {
    return this.timedM.length + (this.held !== 0 ? 1 : 0);
  }

  /**
   * Take m (always: it is passed on, queued or freed). The wire carries
   * real frames only: a TSO packet is segmented and checksums left to the
   * offload are completed first (if_offload.ts wireFrames), so a frame
   * corrupted here is caught by the receiver's check, never waved through.
   */
  submit(m: number): void {
    if ((this.mb.i32[(m + PH_CSUM_FLAGS) >> 2] & (CSUM_REQUESTS | CSUM_VERDICTS)) !== 0) wireFrames(this.mb, m, this.linkHdr, this.frame);
    else this.submitFrame(m);
  }

  private readonly frame = (m: number): void => this.submitFrame(m);

  /** One real frame through the impairments. */
  private submitFrame(m: number): void {
    this.stats.seen++;
    if (this.closed) {
      this.mb.m_freem(m);
      return;
    }
    const o = this.opts;
    const r = this.rng;
    if (o.loss && r.next() < o.loss) {
      this.stats.lost++;
      this.mb.m_freem(m);
      return;
    }
    if (o.corrupt && r.next() < o.corrupt) {
      // The bit flips in this frame only: data shared with the sender (so_snd's clusters, m_copym) is copied first.
      m = m_unshare(this.mb, m, M_NOWAIT);
      if (m === 0) {
        this.stats.queueDrops++;
        this.onDrop();
        return;
      }
      this.stats.corrupted++;
      flipBit(this.mb, m, r, this.linkHdr);
    }
    const copies = o.duplicate && r.next() < o.duplicate ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      let x = m;
      if (c === 1) {
        x = dupPacket(this.mb, m);
        if (x === 0) break;
        this.stats.duplicated++;
      }
      if (o.reorder && this.held === 0 && r.next() < o.reorder) {
        if (this.pending >= (o.queueLimit ?? 1024)) {
          this.drop(x);
          continue;
        }
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

  /** Release a held-back frame now (a drain before close, or no next frame will come). */
  releaseHeld(): void {
    if (this.held === 0) return;
    const h = this.held;
    this.held = 0;
    this.schedule(h);
  }

  /** Free everything waiting and stop. */
  close(): void {
    this.closed = true;
    this.callout?.stop();
    for (const m of this.timedM) this.mb.m_freem(m);
    if (this.held !== 0) this.mb.m_freem(this.held);
    this.timedM = [];
    this.timedAt = [];
    this.held = 0;
  }

  private drop(m: number): void {
    this.stats.queueDrops++;
    this.onDrop();
    this.mb.m_freem(m);
  }

  /** Apply rate and delay: pass on now, or wait in the timed queue. */
  private schedule(m: number): void {
    const o = this.opts;
    const now = this.td.clock.now();
    let due = now;
    if (o.rateBps) {
      const len = this.mb.i32[(m + PH_LEN) >> 2];
      this.lastDeparture = Math.max(now, this.lastDeparture) + (len * 8 * 1000) / o.rateBps;
      due = this.lastDeparture;
    }
    if (o.delayMs || o.jitterMs) due += (o.delayMs ?? 0) + this.rng.next() * (o.jitterMs ?? 0);
    if (due <= now && this.timedM.length === 0) {
      this.pass(m);
      return;
    }
    if (this.timedM.length >= (o.queueLimit ?? 1024)) {
      this.drop(m);
      return;
    }
    let i = this.timedAt.length;
    while (i > 0 && this.timedAt[i - 1] > due) i--;
    this.timedAt.splice(i, 0, due);
    this.timedM.splice(i, 0, m);
    if (i === 0) this.arm();
  }

  private pass(m: number): void {
    this.stats.passed++;
    this.sink(m);
  }

  /** Arm the callout for the earliest due frame. */
  private arm(): void {
    if (this.timedAt.length === 0) return;
    if (this.callout === null) this.callout = this.td.callouts.callout();
    const tick = this.td.callouts.tickMs;
    const ms = this.timedAt[0] - this.td.clock.now();
    this.callout.reset(Math.max(1, Math.ceil(ms / tick - 1e-9)), this.due);
  }

  /** Callout: pass on every frame whose time has come, re-arm for the rest. */
  private readonly due = (): void => {
    const now = this.td.clock.now();
    let n = 0;
    while (n < this.timedAt.length && this.timedAt[n] <= now + 1e-9) n++;
    const ms = this.timedM.splice(0, n);
    this.timedAt.splice(0, n);
    for (const m of ms) this.pass(m);
    this.arm();
  };
}

/** Flip one random bit of a frame past its first `skip` bytes. */
function flipBit(mb: Mbufs, m: number, r: Prng, skip: number): void {
  const i32 = mb.i32;
  const len = i32[(m + PH_LEN) >> 2];
  if (len <= skip) return;
  let off = skip + r.below(len - skip);
  const bit = 1 << r.below(8);
  for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
    const l = i32[(x + M_LEN) >> 2];
    if (off < l) {
      mb.u8[i32[(x + M_DATA) >> 2] + off] ^= bit;
      return;
    }
    off -= l;
  }
}

/** The thread an interface runs on, or a clear error. */
function threadOf(ifp: Ifnet): NetThread {
  if (ifp.td === null) throw new ArgumentError(`${ifp.name}: attach the interface to a stack before adding a fault injector`);
  return ifp.td;
}

/**
 * The transmit-side wrapper: a driver that impairs each frame, then hands it
 * to the driver it wraps. unwrap() puts the inner driver back.
 */
export class FaultInjector implements IfDriver {
  readonly queue: FaultQueue;
  private constructor(
    readonly ifp: Ifnet,
    readonly inner: IfDriver,
    opts: FaultOptions,
  ) {
    this.queue = new FaultQueue(ifp.mb, threadOf(ifp), opts, (m) => this.inner.output(ifp, m), () => ifp.counters[IFC_OQDROPS]++, ifp.type === IFT_ETHER ? 14 : 0);
  }

  get stats(): FaultStats {
    return this.queue.stats;
  }

  /** Impair what `ifp` transmits. The interface needs a driver and a stack (for its thread). */
  static wrap(ifp: Ifnet, opts: FaultOptions): FaultInjector {
    if (ifp.driver === null) throw new ArgumentError(`${ifp.name} has no driver to wrap`);
    const f = new FaultInjector(ifp, ifp.driver, opts);
    ifp.driver = f;
    return f;
  }

  /** Impair what `ifp` receives, before its stack sees it. The interface must be attached. */
  static wrapInput(ifp: Ifnet, opts: FaultOptions): FaultQueue {
    const inner = ifp.inputHandler;
    if (inner === null) throw new ArgumentError(`${ifp.name}: attach the interface to a stack before impairing its input`);
    const q = new FaultQueue(ifp.mb, threadOf(ifp), opts, (m) => inner(ifp, m), () => ifp.counters[IFC_IQDROPS]++, ifp.type === IFT_ETHER ? 14 : 0);
    ifp.inputHandler = (_i, m) => q.submit(m);
    ifp.onDetach.push(() => q.close());
    return q;
  }

  output(_ifp: Ifnet, m: number): void {
    this.queue.submit(m);
  }

  detach(ifp: Ifnet): void {
    this.queue.close();
    this.inner.detach?.(ifp);
  }
}
