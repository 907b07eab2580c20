/**
 * The stack under test and the wire the runner holds: one Stack on a manual
 * LocalThread with one IFF_NOARP interface at the script's local address
 * (packetdrill's defaults: 192.168.0.1, the remote end 192.0.2.1 routed over
 * the same interface, MTU 1500 unless --mtu says otherwise).
 *
 * The interface driver is ours: every frame the stack transmits is copied
 * out (Ethernet header stripped), stamped with the virtual time and queued
 * for the matcher; inject() hands a datagram to the interface as a received
 * frame. Runs on the caller's thread; nothing here sleeps.
 */
import { Ifnet, IFF_UP, IFF_NOARP, type IfDriver } from '../net/if.js';
import { LocalThread } from '../kern/lwkt/netthread.js';
import { Stack } from '../netinet/stack.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_NOWAIT } from '../uma/flags.js';
import { M_DATA, M_LEN, M_NEXT, M_PKTHDR, MCLBYTES, MJUM16BYTES, MJUMPAGESIZE, MT_DATA, PH_LEN } from '../kern/mbuf/layout.js';
import { ETH_HLEN } from '../wire/ethernet.js';
import { ipFromString } from '../wire/ipv4.js';

export const DEFAULT_LOCAL_IP = '192.168.0.1';
export const DEFAULT_REMOTE_IP = '192.0.2.1';
/** packetdrill's tun device MTU. */
export const DEFAULT_MTU = 1500;
const LOCAL_MAC = 0x0200_00c0_a801;

/** A datagram the stack sent: IP bytes and the virtual time (ms) it left. */
export interface Captured {
  bytes: Uint8Array;
  timeMs: number;
}

/** The driver: capture every transmitted frame. */
class CaptureDriver implements IfDriver {
  readonly queue: Captured[] = [];
  constructor(private readonly td: LocalThread) {}
  output(ifp: Ifnet, m: number): void {
    const mb = ifp.mb;
    const i32 = mb.i32;
    const len = i32[(m + PH_LEN) >> 2];
    const frame = new Uint8Array(len);
    let at = 0;
    for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
      const d = i32[(x + M_DATA) >> 2];
      const n = i32[(x + M_LEN) >> 2];
      frame.set(mb.u8.subarray(d, d + n), at);
      at += n;
    }
    mb.m_freem(m);
    const ip = frame.subarray(ETH_HLEN);
    // Trim Ethernet padding: the IP total length says where the datagram ends.
    const total = ip.length >= 4 ? (ip[2] << 8) | ip[3] : ip.length;
    this.queue.push({ bytes: ip.slice(0, Math.min(total, ip.length)), timeMs: this.td.clock.now() });
  }
  detach(): void {
    this.queue.length = 0;
  }
}

export interface PdNetOptions {
  localIp?: string;
  remoteIp?: string;
  mtu?: number;
}

export class PdNet {
  readonly td: LocalThread;
  readonly stack: Stack;
  readonly ifp: Ifnet;
  readonly localIp: number;
  readonly remoteIp: number;
  private readonly driver: CaptureDriver;
  private readonly mb: Mbufs;
  /**
   * Test hook: offered every injected datagram before the stack; returns
   * true when it took it (a stand-in protocol in the runner's own tests).
   */
  inputTap: ((ip: Uint8Array) => boolean) | null = null;

  constructor(mb: Mbufs, o: PdNetOptions = {}) {
    this.mb = mb;
    this.td = LocalThread.manual();
    this.localIp = ipFromString(o.localIp ?? DEFAULT_LOCAL_IP) >>> 0;
    this.remoteIp = ipFromString(o.remoteIp ?? DEFAULT_REMOTE_IP) >>> 0;
    this.stack = new Stack(mb, { name: 'packetdrill', thread: this.td });
    this.ifp = new Ifnet(mb, 'tun0', LOCAL_MAC, o.mtu ?? DEFAULT_MTU, IFF_UP | IFF_NOARP);
    this.driver = new CaptureDriver(this.td);
    this.ifp.driver = this.driver;
    this.stack.addInterface(this.ifp, this.localIp, 16);
    this.stack.addRoute((this.remoteIp & 0xffffff00) >>> 0, 24, 0, this.ifp);
  }

  /** The virtual clock, ms. */
  now(): number {
    return this.td.clock.now();
  }

  /** Captured datagrams not yet taken. */
  get pending(): number {
    return this.driver.queue.length;
  }

  /** Take the oldest captured datagram, or null. */
  take(): Captured | null {
    return this.driver.queue.shift() ?? null;
  }

  /** Hand an IPv4 datagram to the stack as a frame received on the interface; runs the stack to idle. */
  inject(ip: Uint8Array): boolean {
    if (this.inputTap !== null && this.inputTap(ip)) {
      this.td.runUntilIdle();
      return true;
    }
    const mb = this.mb;
    const len = ETH_HLEN + ip.length;
    const size = len <= MCLBYTES ? MCLBYTES : len <= MJUMPAGESIZE ? MJUMPAGESIZE : MJUM16BYTES;
    if (len > MJUM16BYTES) return false;
    const m = mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, size);
    if (m === 0) return false;
    const d = mb.i32[(m + M_DATA) >> 2];
    const u8 = mb.u8;
    const mac = this.ifp.mac;
    for (let k = 0; k < 6; k++) u8[d + k] = Math.floor(mac / 2 ** (8 * (5 - k))) & 255;
    for (let k = 6; k < 12; k++) u8[d + k] = 0x02;
    u8[d + 12] = 0x08;
    u8[d + 13] = 0x00;
    u8.set(ip, d + ETH_HLEN);
    mb.i32[(m + M_LEN) >> 2] = len;
    mb.i32[(m + PH_LEN) >> 2] = len;
    this.ifp.input(m);
    this.td.runUntilIdle();
    return true;
  }

  /** Run everything due now. */
  settle(): void {
    this.td.runUntilIdle();
  }

  /** Milliseconds until the next callout, or -1 when none is armed. */
  msUntilNextTimer(): number {
    return this.td.callouts.msUntilNext();
  }

  /** Advance virtual time by ms (firing timers in order on the way). */
  advance(ms: number): void {
    if (ms > 0) this.td.advance(ms);
    else this.td.runUntilIdle();
  }

  /** Stop the stack and free what it holds. */
  close(): void {
    this.stack.close();
    this.ifp.detach();
  }
}
