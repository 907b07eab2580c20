/**
 * The stack under test and the wire the runner holds: one Stack on a manual
 * LocalThread with a layer-3 user device (src/net/phy/userdev.ts: a tun, as
 * packetdrill's own) at the script's local address. packetdrill's defaults:
 * 192.168.0.1, the remote end 192.0.2.1 routed over the same device, MTU
 * 1500 unless --mtu says otherwise.
 *
 * Every datagram the stack sends is stamped with the virtual time and queued
 * for the matcher; inject() hands a datagram to the device as received and
 * runs the stack to idle. Runs on the caller's thread; nothing sleeps.
 */
import { LocalThread } from '../kern/lwkt/netthread.js';
import { Stack } from '../netinet/stack.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { UserDevice } from '../net/phy/userdev.js';
import type { Ifnet } from '../net/if.js';
import { ipFromString } from '../wire/ipv4.js';

export const DEFAULT_LOCAL_IP = '192.168.0.1';
export const DEFAULT_REMOTE_IP = '192.0.2.1';
/** packetdrill's tun device MTU. */
export const DEFAULT_MTU = 1500;

/** A datagram the stack sent: IP bytes and the virtual time (ms) it left. */
export interface Captured {
  bytes: Uint8Array;
  timeMs: number;
}

export interface PdNetOptions {
  localIp?: string;
  remoteIp?: string;
  mtu?: number;
}

export class PdNet {
  readonly td: LocalThread;
  readonly stack: Stack;
  readonly dev: UserDevice;
  readonly localIp: number;
  readonly remoteIp: number;
  private readonly queue: Captured[] = [];
  /**
   * Test hook: offered every injected datagram before the stack; returns
   * true when it took it (a stand-in protocol in the runner's own tests).
   */
  inputTap: ((ip: Uint8Array) => boolean) | null = null;

  constructor(mb: Mbufs, o: PdNetOptions = {}) {
    this.td = LocalThread.manual();
    this.localIp = ipFromString(o.localIp ?? DEFAULT_LOCAL_IP) >>> 0;
    this.remoteIp = ipFromString(o.remoteIp ?? DEFAULT_REMOTE_IP) >>> 0;
    this.stack = new Stack(mb, { name: 'packetdrill', thread: this.td });
    this.dev = new UserDevice(mb, {
      name: 'tun0',
      layer: 3,
      mtu: o.mtu ?? DEFAULT_MTU,
      onFrame: (f) => this.queue.push({ bytes: new Uint8Array(f.buffer, f.byteOffset, f.length), timeMs: this.td.clock.now() }),
    });
    this.stack.addInterface(this.dev.ifp, this.localIp, 16);
    this.stack.addRoute((this.remoteIp & 0xffffff00) >>> 0, 24, 0, this.dev.ifp);
  }

  get ifp(): Ifnet {
    return this.dev.ifp;
  }

  /** The virtual clock, ms. */
  now(): number {
    return this.td.clock.now();
  }

  /** Captured datagrams not yet taken. */
  get pending(): number {
    return this.queue.length;
  }

  /** Take the oldest captured datagram, or null. */
  take(): Captured | null {
    return this.queue.shift() ?? null;
  }

  /** Hand an IPv4 datagram to the stack as received on the device; runs the stack to idle. */
  inject(ip: Uint8Array): boolean {
    if (this.inputTap !== null && this.inputTap(ip)) {
      this.td.runUntilIdle();
      return true;
    }
    const ok = this.dev.push(ip);
    this.td.runUntilIdle();
    return ok;
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
    this.dev.ifp.detach();
  }
}
