/**
 * TAP interfaces: Ifnet drivers whose frames come from and go to a Linux TAP
 * device through the native addon (tap-addon.ts). Receive reads each frame
 * straight into a fresh cluster in the arena (no copy through JS); transmit
 * hands the mbuf chain to writev as (offset, length) pairs of the arena (no
 * copy either).
 *
 * The unit is a TapQueue: one fd of a multi-queue TAP (IFF_MULTI_QUEUE),
 * owned by one thread. Readiness comes from the addon's uv_poll handle on the
 * owning thread's event loop: an idle thread sleeps in its loop and a frame
 * wakes it. Each wake-up reads at most `batch` frames, then yields to the
 * loop (the poll is level triggered, so the rest come on the next turn, or
 * from the protocol thread's poll hook, see rxPoll()).
 *
 * Two drivers are built from it:
 *  - TapDriver: one thread owns every queue of the device (the single-thread
 *    stack: tests, tools); it receives on all of them and sends on queue 0.
 *  - TapQueueDriver: one queue per CPU of the MP machine (mpnet.ts): CPU i
 *    attaches queue i of the same device, receives what the kernel steers to
 *    that queue, hands each frame to `deliver` (which dispatches it to the
 *    CPU owning its flow) and transmits on its own queue.
 *
 * No lock anywhere: a queue is touched by its owning thread only; reads and
 * writes never block (the fds are non-blocking).
 */
import { M_NOWAIT } from '../../uma/flags.js';
import { M_DATA, M_LEN, M_NEXT, M_PKTHDR, MCLBYTES, MJUM16BYTES, MJUM9BYTES, MJUMPAGESIZE, MT_DATA, PH_LEN } from '../../kern/mbuf/layout.js';
import type { Mbufs } from '../../kern/mbuf/mbuf.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { EAGAIN, loadTapAddon, type TapAddon, type TapPollHandle } from './tap-addon.js';
import { IFC_IERRORS, IFC_IQDROPS, IFC_OERRORS, IFF_BROADCAST, IFF_UP, Ifnet, type IfDriver } from '../if.js';

export interface TapOptions {
  /** Interface name (at most 15 bytes); "" lets the kernel pick tapN. */
  name?: string;
  /** Queues (fds) to open: IFF_MULTI_QUEUE. */
  queues?: number;
  /** Our MAC address (a locally administered one by default). */
  mac?: number;
  mtu?: number;
  /** Frames read per wake-up before yielding to the event loop. */
  batch?: number;
}

const MAX_IOV = 64;

// Per-queue counters (TapQueue.counters).
export const TQ_RXFRAMES = 0;
export const TQ_RXBYTES = 1;
export const TQ_RXERRORS = 2;
export const TQ_RXNOMEM = 3;
export const TQ_TXFRAMES = 4;
export const TQ_TXBYTES = 5;
export const TQ_TXERRORS = 6;
export const TQ_WAKEUPS = 7;
export const TQ_NAMES = ['rxframes', 'rxbytes', 'rxerrors', 'rxnomem', 'txframes', 'txbytes', 'txerrors', 'wakeups'] as const;

/** A random locally administered unicast MAC (02:00:5e:xx:xx:01). */
export function randomTapMac(): number {
  return 0x0200_5e00_0000 + (Math.floor(Math.random() * 0xffff) << 8) + 1;
}

/** The receive buffer size for an MTU: the smallest cluster that holds a whole frame. */
function rxBufferSize(mtu: number): number {
  const frame = mtu + ETH_HLEN;
  return frame <= MCLBYTES ? MCLBYTES : frame <= MJUMPAGESIZE ? MJUMPAGESIZE : frame <= MJUM9BYTES ? MJUM9BYTES : MJUM16BYTES;
}

/**
 * One queue (fd) of a TAP device, owned by the thread that created it.
 * `deliver` takes each received frame (an mbuf with a packet header; the
 * callee owns it). Counters are thread-local (read by the owner, or sent
 * out by a message); errors and drops also count on the interface (ifp).
 */
export class TapQueue {
  readonly counters = new Float64Array(TQ_NAMES.length);
  deliver: (m: number) => void;
  /** Set when the last receive pass stopped at the batch limit (more frames are likely queued). */
  private more = false;
  private poll: TapPollHandle | null = null;
  private closed = false;
  private readonly iov = new Int32Array(2 * MAX_IOV);

  constructor(
    private readonly mb: Mbufs,
    private readonly ifp: Ifnet,
    private readonly addon: TapAddon,
    readonly fd: number,
    readonly index: number,
    private readonly rxSize: number,
    private readonly batch: number,
    deliver: (m: number) => void,
  ) {
    this.deliver = deliver;
  }

  /** Start watching the fd on this thread's event loop; `onWake` runs after each readiness pass. */
  start(onWake?: () => void): void {
    if (this.poll !== null || this.closed) return;
    this.poll = this.addon.pollStart(this.fd, () => {
      this.counters[TQ_WAKEUPS]++;
      this.rx();
      onWake?.();
    });
  }

  /**
   * Poll-hook form for a busy protocol thread (which does not return to
   * the event loop while it has work): read another batch only when the
   * last pass was cut by the batch limit. Returns frames read.
   */
  rxPoll(): number {
    return this.more ? this.rx() : 0;
  }

  /**
   * Read up to `batch` frames into clusters and deliver them. Returns the
   * frames read. Never blocks, never throws for I/O errors (counted).
   */
  rx(): number {
    const mb = this.mb;
    const i32 = mb.i32;
    const c = this.counters;
    let k = 0;
    this.more = false;
    for (; k < this.batch; k++) {
      if (this.closed) return k;
      const m = this.rxSize === MCLBYTES ? mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR) : mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, this.rxSize);
      if (m === 0) return k + this.rxNoMem();
      const n = this.addon.read(this.fd, mb.u8, i32[(m + M_DATA) >> 2], this.rxSize);
      if (n <= 0) {
        mb.m_freem(m);
        if (n !== -EAGAIN) {
          c[TQ_RXERRORS]++;
          this.ifp.counters[IFC_IERRORS]++;
        }
        return k;
      }
      c[TQ_RXFRAMES]++;
      c[TQ_RXBYTES] += n;
      i32[(m + M_LEN) >> 2] = n;
      i32[(m + PH_LEN) >> 2] = n;
      this.deliver(m);
    }
    this.more = true;
    return k;
  }

  /** Slow path: no cluster. Drop one frame from the kernel queue so the device makes progress. */
  private rxNoMem(): number {
    this.counters[TQ_RXNOMEM]++;
    this.ifp.counters[IFC_IQDROPS]++;
    const scratch = new Uint8Array(this.rxSize);
    return this.addon.read(this.fd, scratch, 0, scratch.length) > 0 ? 1 : 0;
  }

  /**
   * Send one frame on this queue: writev of the chain's pieces straight from
   * the arena. Frees m. Returns false (counted) when the chain has too many
   * pieces or the kernel refused it (e.g. EIO while the link is down).
   */
  send(m: number): boolean {
    const mb = this.mb;
    const i32 = mb.i32;
    if (this.closed) {
      mb.m_freem(m);
      return false;
    }
    let n = 0;
    for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
      const l = i32[(x + M_LEN) >> 2];
      if (l === 0) continue;
      if (n === MAX_IOV) {
        this.counters[TQ_TXERRORS]++;
        mb.m_freem(m);
        return false;
      }
      this.iov[2 * n] = i32[(x + M_DATA) >> 2];
      this.iov[2 * n + 1] = l;
      n++;
    }
    const w = n === 0 ? 0 : this.addon.writev(this.fd, mb.u8, this.iov, n);
    mb.m_freem(m);
    if (w < 0) {
      this.counters[TQ_TXERRORS]++;
      return false;
    }
    this.counters[TQ_TXFRAMES]++;
    this.counters[TQ_TXBYTES] += w;
    return true;
  }

  /** Stop polling and close the fd (the device goes away with its last queue). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.more = false;
    if (this.poll !== null) this.addon.pollStop(this.poll);
    this.poll = null;
    this.addon.close(this.fd);
  }

  /** Counters as {name: value}. */
  stats(): Record<string, number> {
    const o: Record<string, number> = {};
    TQ_NAMES.forEach((n, i) => (o[n] = this.counters[i]));
    return o;
  }
}

/**
 * Single-thread TAP driver: this thread owns every queue it opened, receives
 * on all of them (straight into ifp.input) and sends on the first.
 */
export class TapDriver implements IfDriver {
  readonly name: string;
  readonly fds: number[];
  readonly queues: TapQueue[];
  private closed = false;

  private constructor(
    private readonly mb: Mbufs,
    readonly ifp: Ifnet,
    name: string,
    queues: TapQueue[],
  ) {
    this.name = name;
    this.queues = queues;
    this.fds = queues.map((q) => q.fd);
  }

  /**
   * Create (or attach to) the TAP device and an Ifnet driven by it, and start
   * polling. Throws the addon's coded errors (ERR_SLABNET_TAP_PERM when not
   * root, ERR_SLABNET_TAP_NODEV without /dev/net/tun, ERR_SLABNET_TAP_ADDON
   * when the addon is not built).
   */
  static open(mb: Mbufs, opts: TapOptions = {}): TapDriver {
    const addon = loadTapAddon();
    const mtu = opts.mtu ?? 1500;
    const tap = addon.open(opts.name ?? '', opts.queues ?? 1);
    const ifp = new Ifnet(mb, tap.name, opts.mac ?? randomTapMac(), mtu, IFF_UP | IFF_BROADCAST);
    const rxSize = rxBufferSize(mtu);
    const input = (m: number): void => ifp.input(m);
    const queues = tap.fds.map((fd, i) => new TapQueue(mb, ifp, addon, fd, i, rxSize, opts.batch ?? 64, input));
    const d = new TapDriver(mb, ifp, tap.name, queues);
    ifp.driver = d;
    for (const q of queues) q.start();
    return d;
  }

  /** Send a frame on queue 0 (this thread's queue). Frees m. */
  output(ifp: Ifnet, m: number): void {
    if (this.closed) {
      this.mb.m_freem(m);
      return;
    }
    if (!this.queues[0].send(m)) ifp.counters[IFC_OERRORS]++;
  }

  /** Stop polling and close the device (the kernel interface goes away with the last fd). */
  detach(): void {
    if (this.closed) return;
    this.closed = true;
    for (const q of this.queues) q.close();
  }
}

/**
 * One CPU's queue of a multi-queue TAP shared by the machine's CPUs. CPU i
 * calls attach() with the device's name and gets queue i (the kernel numbers
 * queues in attach order). Received frames go to `deliver` (mpnet.ts
 * dispatches them to the CPU that owns the flow, by handle); transmit always
 * uses this CPU's own queue, which also teaches the kernel (tun's automq
 * flow table) to steer the flow's next frames to this queue.
 */
export class TapQueueDriver implements IfDriver {
  readonly name: string;
  readonly ifp: Ifnet;
  readonly queue: TapQueue;

  private constructor(ifp: Ifnet, name: string, queue: TapQueue) {
    this.ifp = ifp;
    this.name = name;
    this.queue = queue;
  }

  /**
   * Create the device (first caller, name "" lets the kernel choose) or
   * attach one more queue to it, and make this thread's Ifnet for it.
   * Polling starts with start(). Throws the addon's coded errors.
   */
  static attach(mb: Mbufs, opts: { name: string; index: number; mac: number; mtu?: number; batch?: number }, deliver: (m: number) => void): TapQueueDriver {
    const addon = loadTapAddon();
    const mtu = opts.mtu ?? 1500;
    const tap = addon.open(opts.name, 1);
    const ifp = new Ifnet(mb, tap.name, opts.mac, mtu, IFF_UP | IFF_BROADCAST);
    const q = new TapQueue(mb, ifp, addon, tap.fds[0], opts.index, rxBufferSize(mtu), opts.batch ?? 64, deliver);
    const d = new TapQueueDriver(ifp, tap.name, q);
    ifp.driver = d;
    return d;
  }

  /** Send on this CPU's queue. Frees m. */
  output(ifp: Ifnet, m: number): void {
    if (!this.queue.send(m)) ifp.counters[IFC_OERRORS]++;
  }

  /** Close this CPU's queue. */
  detach(): void {
    this.queue.close();
  }
}
