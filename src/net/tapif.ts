/**
 * TAP interface: an Ifnet whose frames come from and go to a Linux TAP
 * device through the native addon. Receive reads each frame straight into a
 * fresh cluster in the arena (no copy through JS); transmit hands the mbuf
 * chain to writev as (offset, length) pairs of the arena (no copy either).
 *
 * Readiness comes from the addon's uv_poll handle on this thread's event
 * loop: an idle CPU sleeps in the loop and a frame wakes it. Each wake-up
 * reads at most `batch` frames, then yields to the loop (the poll is level
 * triggered, so the rest come on the next turn).
 *
 * One TapDriver per thread; every fd of the multi-queue device it opened is
 * polled here (with several CPUs each would own one queue). No lock; reads
 * and writes never block (the fds are non-blocking).
 */
import { M_NOWAIT } from '../uma/flags.js';
import { M_DATA, M_LEN, M_NEXT, M_PKTHDR, MCLBYTES, MJUM16BYTES, MJUM9BYTES, MJUMPAGESIZE, MT_DATA, PH_LEN } from '../mbuf/layout.js';
import type { Mbufs } from '../mbuf/mbuf.js';
import { ETH_HLEN } from '../wire/ethernet.js';
import { EAGAIN, loadTapAddon, type TapAddon, type TapPollHandle } from './tap-addon.js';
import { IFC_IERRORS, IFC_IQDROPS, IFC_OERRORS, IFF_BROADCAST, IFF_UP, Ifnet, type IfDriver } from './ifnet.js';

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

export class TapDriver implements IfDriver {
  readonly name: string;
  readonly fds: number[];
  private readonly addon: TapAddon;
  private readonly polls: TapPollHandle[] = [];
  private readonly iov = new Int32Array(2 * MAX_IOV);
  private readonly rxSize: number;
  private readonly batch: number;
  private closed = false;

  private constructor(
    private readonly mb: Mbufs,
    readonly ifp: Ifnet,
    addon: TapAddon,
    name: string,
    fds: number[],
    batch: number,
  ) {
    this.addon = addon;
    this.name = name;
    this.fds = fds;
    this.batch = batch;
    const frame = ifp.mtu + ETH_HLEN;
    this.rxSize = frame <= MCLBYTES ? MCLBYTES : frame <= MJUMPAGESIZE ? MJUMPAGESIZE : frame <= MJUM9BYTES ? MJUM9BYTES : MJUM16BYTES;
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
    const mac = opts.mac ?? 0x0200_5e00_0000 + (Math.floor(Math.random() * 0xffff) << 8) + 1;
    const ifp = new Ifnet(mb, tap.name, mac, mtu, IFF_UP | IFF_BROADCAST);
    const d = new TapDriver(mb, ifp, addon, tap.name, tap.fds, opts.batch ?? 64);
    ifp.driver = d;
    for (const fd of tap.fds) d.polls.push(addon.pollStart(fd, () => d.rx(fd)));
    return d;
  }

  /** Read up to `batch` frames from one queue into clusters and input them. */
  private rx(fd: number): void {
    const mb = this.mb;
    const i32 = mb.i32;
    const ifp = this.ifp;
    for (let k = 0; k < this.batch && !this.closed; k++) {
      const m = this.rxSize === MCLBYTES ? mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR) : mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, this.rxSize);
      if (m === 0) {
        // No memory: leave the frame in the kernel queue and drop one so we make progress.
        ifp.counters[IFC_IQDROPS]++;
        this.discardOne(fd);
        return;
      }
      const n = this.addon.read(fd, mb.u8, i32[(m + M_DATA) >> 2], this.rxSize);
      if (n <= 0) {
        mb.m_freem(m);
        if (n !== -EAGAIN) ifp.counters[IFC_IERRORS]++;
        return;
      }
      i32[(m + M_LEN) >> 2] = n;
      i32[(m + PH_LEN) >> 2] = n;
      ifp.input(m);
    }
  }

  private discardOne(fd: number): void {
    const scratch = new Uint8Array(MJUM16BYTES);
    this.addon.read(fd, scratch, 0, scratch.length);
  }

  /** Send a frame: writev of the chain's pieces. Frees m. */
  output(ifp: Ifnet, m: number): void {
    const mb = this.mb;
    const i32 = mb.i32;
    if (this.closed) {
      mb.m_freem(m);
      return;
    }
    let n = 0;
    for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
      const l = i32[(x + M_LEN) >> 2];
      if (l === 0) continue;
      if (n === MAX_IOV) {
        ifp.counters[IFC_OERRORS]++;
        mb.m_freem(m);
        return;
      }
      this.iov[2 * n] = i32[(x + M_DATA) >> 2];
      this.iov[2 * n + 1] = l;
      n++;
    }
    // One queue per CPU: this thread sends on its first queue.
    const w = n === 0 ? 0 : this.addon.writev(this.fds[0], mb.u8, this.iov, n);
    if (w < 0) ifp.counters[IFC_OERRORS]++;
    mb.m_freem(m);
  }

  /** Stop polling and close the device (the kernel interface goes away with the last fd). */
  detach(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.polls) this.addon.pollStop(p);
    for (const fd of this.fds) this.addon.close(fd);
  }
}
