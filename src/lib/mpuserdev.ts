/**
 * A user device whose stack runs on the MP system's CPUs while its JS side
 * (callbacks, the Duplex) lives in this user thread. Each CPU appends the
 * frames it sends to its own sockbuf ring (one producer each, this thread
 * the one consumer, no lock), read here by handle, copied into a Buffer
 * and freed; a pushed frame is copied into an mbuf here and sent to the CPU
 * its flow belongs to (netisr's frameCpu / packetCpu) as NET_INPUT, by
 * handle. So the user's wire sees exactly what a single-thread UserDevice
 * would, and the CPUs see frames as from any NIC.
 *
 * Main thread (or a user worker). Never blocks: the readers wait with
 * Atomics.waitAsync. close() stops the readers; destroy() frees the rings
 * (after the CPUs stopped producing).
 */
import type { Duplex } from 'node:stream';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN } from '../kern/mbuf/layout.js';
import type { MsgContext } from '../kern/lwkt/msgport.js';
import { SB_RSEQ, type SockBufs } from '../kern/socket/sockbuf.js';
import { ETH_HLEN } from '../wire/ethernet.js';
import { NET_INPUT, frameCpu, packetCpu } from '../net/netisr.js';
import { USERDEV_MAX_FRAME, frameStream, frameToMbuf, mbufToBuffer, type FrameDevice, type UserDeviceFraming, type UserDeviceStats } from '../net/phy/userdev.js';

/** Bytes each CPU's ring may hold before the CPU drops (within kern.ipc.maxsockbuf's default). */
const RING_BYTES = 1 << 20;

export class RemoteUserDevice implements FrameDevice {
  readonly stats: UserDeviceStats = { txFrames: 0, rxFrames: 0, rxDropped: 0 };
  onFrame: ((frame: Buffer) => void) | null;
  /** One ring per CPU: CPU c appends, this thread reads. */
  readonly rings: number[] = [];
  private readonly listeners: ((frame: Buffer) => void)[] = [];
  private closed = false;
  private destroyed = false;

  constructor(
    private readonly ctx: MsgContext,
    private readonly mb: Mbufs,
    private readonly sbs: SockBufs,
    readonly layer: 2 | 3,
    readonly host: number,
    readonly ifIndex: number,
    onFrame: ((frame: Buffer) => void) | undefined,
  ) {
    this.onFrame = onFrame ?? null;
    for (let c = 0; c < ctx.ncpus; c++) {
      const sb = sbs.sbcreate(RING_BYTES);
      if (sb === 0) {
        this.destroy();
        throw new Error('user device: no memory for its rings');
      }
      this.rings.push(sb);
    }
    for (const sb of this.rings) void this.reader(sb);
  }

  addListener(fn: (frame: Buffer) => void): void {
    this.listeners.push(fn);
  }

  stream(framing: UserDeviceFraming = 'message'): Duplex {
    return frameStream(this, framing);
  }

  /** A frame from the user's side of the wire, to the CPU that owns its flow. False when dropped (counted). */
  push(frame: Uint8Array): boolean {
    if (this.closed || frame.length < (this.layer === 2 ? ETH_HLEN : 20) || frame.length > USERDEV_MAX_FRAME) return this.drop();
    const mb = this.mb;
    const m = frameToMbuf(mb, frame);
    if (m === 0) return this.drop();
    const d = mb.i32[(m + M_DATA) >> 2];
    const len = mb.i32[(m + M_LEN) >> 2];
    const n = this.ctx.ncpus;
    const cpu = this.layer === 3 ? packetCpu(mb.u8, d, d + len, n) : frameCpu(mb.u8, d, len, n);
    const msg = this.ctx.allocmsg(NET_INPUT);
    if (msg === 0) {
      mb.m_freem(m);
      return this.drop();
    }
    this.ctx.setArg(msg, 0, m);
    this.ctx.setArg(msg, 1, this.host);
    this.ctx.setArg(msg, 2, this.ifIndex);
    if (!this.ctx.sendmsg(cpu, msg)) {
      this.ctx.freemsg(msg);
      mb.m_freem(m);
      return this.drop();
    }
    this.stats.rxFrames++;
    return true;
  }

  private drop(): boolean {
    this.stats.rxDropped++;
    return false;
  }

  /** Read one CPU's ring until closed: each chain becomes a Buffer for the user. */
  private async reader(sb: number): Promise<void> {
    const sbs = this.sbs;
    while (!this.closed) {
      for (let m = sbs.sbtake(sb); m !== 0 && !this.closed; m = sbs.sbtake(sb)) {
        const b = mbufToBuffer(this.mb, m);
        this.mb.m_freem(m);
        this.stats.txFrames++;
        this.onFrame?.(b);
        for (const f of this.listeners) f(b);
      }
      if (this.closed) break;
      await sbs.sbwaitReadAsync(sb);
    }
  }

  /** Stop reading and pushing (the readers wake and end). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const i32 = this.ctx.i32;
    for (const sb of this.rings) {
      Atomics.add(i32, (sb >> 2) + SB_RSEQ, 1);
      Atomics.notify(i32, (sb >> 2) + SB_RSEQ);
    }
  }

  /** Free the rings and what they still hold: only once no CPU can append (after the machine stopped). */
  destroy(): void {
    this.close();
    if (this.destroyed) return;
    this.destroyed = true;
    for (const sb of this.rings.splice(0)) this.sbs.sbdestroy(sb);
  }
}
