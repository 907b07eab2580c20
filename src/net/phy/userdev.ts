/**
 * A user device: an interface whose wire is JavaScript. Frames the stack
 * sends are copied out of the arena into Buffers and given to the user
 * (callback, 'frame' event, or a Node stream); frames the user pushes are
 * copied into mbufs and received by the stack. This is where a VM
 * emulator's NIC, QEMU's socket/stream netdev or a VPN plugs in.
 *
 * Two kinds, as tun/tap: layer 2 (`IFT_ETHER`, Ethernet frames, ARP) and
 * layer 3 (`IFT_PROPVIRTUAL`, tun-style bare IPv4 packets: the stack skips
 * Ethernet and ARP on it).
 *
 * Both directions are deferred to a pass of the interface's thread (poll
 * hooks, no JS timer): the user callback never runs inside the stack's
 * output path, and a push never re-enters the stack from inside one.
 * Belongs to the thread of its stack; no lock; nothing sleeps. The Buffer
 * copies are the edge between arena memory and JS objects (one per frame
 * per direction), as for sockets.
 */
import { Duplex } from 'node:stream';
import type { Mbufs } from '../../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN, M_NEXT, M_PKTHDR, MT_DATA, PH_LEN } from '../../kern/mbuf/layout.js';
import { m_append } from '../../kern/mbuf/ops.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { ArgumentError } from '../../kern/errors.js';
import { IFC_IERRORS, IFC_IQDROPS, IFC_OQDROPS, IFF_BROADCAST, IFF_NOARP, IFF_POINTOPOINT, IFF_UP, IFT_ETHER, IFT_PROPVIRTUAL, IfQueue, Ifnet, type IfDriver } from '../if.js';
import { ETH_HLEN } from '../../wire/ethernet.js';

/** Largest frame a user may push: a 64 KiB IP datagram plus the Ethernet header. */
export const USERDEV_MAX_FRAME = 65535 + ETH_HLEN;

export interface UserDeviceOptions {
  name: string;
  /** 2: Ethernet frames (default); 3: bare IPv4 packets (tun). */
  layer?: 2 | 3;
  mac?: number;
  mtu?: number;
  /** Called with each frame the stack sends (a fresh Buffer the callee may keep). */
  onFrame?: (frame: Buffer) => void;
  /** Frames (each direction) that may wait for the next pass before drops (default 4096). */
  queueLimit?: number;
}

export interface UserDeviceStats {
  /** Frames handed to the user. */
  txFrames: number;
  /** Frames the user pushed that reached the stack. */
  rxFrames: number;
  /** Pushes refused: too short or too long, no memory, queue full, closed. */
  rxDropped: number;
}

/** Stream framing: one frame per chunk (object mode), or QEMU's stream netdev (4-byte big-endian length before each frame). */
export type UserDeviceFraming = 'message' | 'length-prefixed';

/** What a user sees of a device whose wire is JS: this thread's UserDevice, or one served by CPUs (lib/mpuserdev.ts). */
export interface FrameDevice {
  readonly layer: 2 | 3;
  readonly stats: UserDeviceStats;
  onFrame: ((frame: Buffer) => void) | null;
  push(frame: Uint8Array): boolean;
  addListener(fn: (frame: Buffer) => void): void;
  stream(framing?: UserDeviceFraming): Duplex;
}

/**
 * A Duplex over a device: what is written goes in as received frames, what
 * the stack sends can be read. 'message': one frame per chunk, object mode;
 * 'length-prefixed': a byte stream with a 4-byte big-endian length before
 * each frame (QEMU's -netdev stream/socket).
 */
export function frameStream(dev: FrameDevice, framing: UserDeviceFraming = 'message'): Duplex {
  if (framing !== 'message' && framing !== 'length-prefixed') throw new ArgumentError(`framing must be 'message' or 'length-prefixed', got ${String(framing)}`);
  let acc: Buffer = Buffer.alloc(0);
  const d = new Duplex({
    objectMode: framing === 'message',
    read() {},
    write(chunk: Buffer, _enc, cb) {
      if (framing === 'message') {
        dev.push(chunk);
        cb();
        return;
      }
      acc = acc.length === 0 ? chunk : Buffer.concat([acc, chunk]);
      while (acc.length >= 4) {
        const n = acc.readUInt32BE(0);
        if (n > USERDEV_MAX_FRAME) {
          cb(new ArgumentError(`length-prefixed frame of ${n} bytes exceeds ${USERDEV_MAX_FRAME}`));
          return;
        }
        if (acc.length < 4 + n) break;
        dev.push(acc.subarray(4, 4 + n));
        acc = acc.subarray(4 + n);
      }
      cb();
    },
  });
  dev.addListener((f) => {
    if (framing === 'message') d.push(f);
    else {
      const h = Buffer.allocUnsafe(4);
      h.writeUInt32BE(f.length, 0);
      d.push(Buffer.concat([h, f]));
    }
  });
  return d;
}

/** Copy a frame into a new mbuf chain with a packet header; 0 when memory is short. */
export function frameToMbuf(mb: Mbufs, frame: Uint8Array): number {
  const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  if (m === 0) return 0;
  mb.i32[(m + M_LEN) >> 2] = 0;
  mb.i32[(m + PH_LEN) >> 2] = 0;
  if (!m_append(mb, m, frame.length, frame, 0)) {
    mb.m_freem(m);
    return 0;
  }
  return m;
}

/** Copy a chain out into one Buffer (the chain stays the caller's). */
export function mbufToBuffer(mb: Mbufs, m: number): Buffer {
  const i32 = mb.i32;
  const b = Buffer.allocUnsafe(i32[(m + PH_LEN) >> 2]);
  let o = 0;
  for (let x = m; x !== 0 && o < b.length; x = i32[(x + M_NEXT) >> 2]) {
    const d = i32[(x + M_DATA) >> 2];
    const l = Math.min(i32[(x + M_LEN) >> 2], b.length - o);
    b.set(mb.u8.subarray(d, d + l), o);
    o += l;
  }
  return b;
}

export class UserDevice implements IfDriver, FrameDevice {
  readonly ifp: Ifnet;
  readonly layer: 2 | 3;
  readonly stats: UserDeviceStats = { txFrames: 0, rxFrames: 0, rxDropped: 0 };
  /** Receives each frame the stack sends. */
  onFrame: ((frame: Buffer) => void) | null;
  private readonly listeners: ((frame: Buffer) => void)[] = [];
  private readonly txq: IfQueue;
  private readonly rxq: IfQueue;
  private readonly limit: number;
  private closed = false;

  constructor(
    private readonly mb: Mbufs,
    opts: UserDeviceOptions,
  ) {
    const layer = opts.layer ?? 2;
    if (layer !== 2 && layer !== 3) throw new ArgumentError(`user device layer must be 2 or 3, got ${String(layer)}`);
    const mtu = opts.mtu ?? 1500;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new ArgumentError(`user device mtu must be 68..65535, got ${String(mtu)}`);
    this.layer = layer;
    const flags = layer === 2 ? IFF_UP | IFF_BROADCAST : IFF_UP | IFF_POINTOPOINT | IFF_NOARP;
    this.ifp = new Ifnet(mb, opts.name, layer === 2 ? (opts.mac ?? 0x0200_0000_0000 + Math.floor(Math.random() * 0xffffff)) : 0, mtu, flags);
    if (layer === 3) this.ifp.type = IFT_PROPVIRTUAL;
    else this.ifp.type = IFT_ETHER;
    this.ifp.driver = this;
    this.onFrame = opts.onFrame ?? null;
    this.limit = opts.queueLimit ?? 4096;
    const td = () => this.ifp.td;
    this.txq = new IfQueue(mb, td, (m) => this.toUser(m));
    this.rxq = new IfQueue(mb, td, (m) => this.ifp.input(m));
  }

  /** Also call fn for every frame sent (several listeners: a capture beside the wire). */
  addListener(fn: (frame: Buffer) => void): void {
    this.listeners.push(fn);
  }

  /** IfDriver: the stack sends m; it reaches the user on the next pass. */
  output(ifp: Ifnet, m: number): void {
    if (this.closed || this.txq.length >= this.limit || !this.txq.push(m)) {
      ifp.counters[IFC_OQDROPS]++;
      this.mb.m_freem(m);
    }
  }

  /**
   * A frame from the user's side of the wire (copied; the caller keeps its
   * buffer). Returns false when it was dropped (counted): too short for its
   * layer, longer than USERDEV_MAX_FRAME, no mbufs, queue full, or closed.
   */
  push(frame: Uint8Array): boolean {
    const ifp = this.ifp;
    const min = this.layer === 2 ? ETH_HLEN : 20;
    if (this.closed || frame.length < min || frame.length > USERDEV_MAX_FRAME) {
      this.stats.rxDropped++;
      ifp.counters[this.closed ? IFC_IQDROPS : IFC_IERRORS]++;
      return false;
    }
    const m = frameToMbuf(this.mb, frame);
    if (m === 0) return this.rxDrop();
    if (this.rxq.length >= this.limit || !this.rxq.push(m)) {
      this.mb.m_freem(m);
      return this.rxDrop();
    }
    this.stats.rxFrames++;
    return true;
  }

  private rxDrop(): boolean {
    this.stats.rxDropped++;
    this.ifp.counters[IFC_IQDROPS]++;
    return false;
  }

  /** Copy a sent chain into one Buffer, free it, give it to the user. */
  private toUser(m: number): void {
    const b = mbufToBuffer(this.mb, m);
    this.mb.m_freem(m);
    this.stats.txFrames++;
    this.onFrame?.(b);
    for (const f of this.listeners) f(b);
  }

  /** A Duplex over the device (frameStream). One stream per device. */
  stream(framing: UserDeviceFraming = 'message'): Duplex {
    return frameStream(this, framing);
  }

  /** IfDriver: the interface goes away; queued frames are freed. */
  detach(): void {
    this.closed = true;
    this.txq.close();
    this.rxq.close();
  }
}
