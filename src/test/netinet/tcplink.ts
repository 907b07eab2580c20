/**
 * Test fixture: two stacks on one manual-clock LocalThread joined by a
 * link whose frames travel through the thread's callouts (a fixed one-way
 * delay), with seeded loss, duplication and reordering. Everything is
 * deterministic: time only moves with td.advance().
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { FaultInjector, type FaultOptions } from '../../net/phy/fault.js';
import { SHUT_WR } from '../../netinet/tcp_api.js';
import type { TcpConfig } from '../../netinet/tcp_tunables.js';
import { testUma, mbufLeakCheck } from '../helpers.js';
import { EINPROGRESS } from '../../kern/errno.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { Ifnet, type IfDriver } from '../../net/if.js';
import { Stack, type StackOptions } from '../../netinet/stack.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';
import { Prng } from '../../kern/prng.js';
import { dupPacket } from '../../net/mchain.js';
import type { Callout } from '../../kern/lwkt/callout.js';
import type { Uma } from '../../uma/uma.js';

export interface LinkImp {
  seed?: number;
  loss?: number;
  duplicate?: number;
  reorder?: number;
  /** One-way delay in ms (default 1). */
  delayMs?: number;
  /** Drop frames for which this returns true (tests aim at one segment). */
  filter?: (m: number) => boolean;
}

class TimedDir implements IfDriver {
  private q: number[] = [];
  private due: number[] = [];
  private readonly co: Callout;
  private readonly rng: Prng;
  held = 0;
  sent = 0;
  dropped = 0;
  closed = false;
  constructor(
    private readonly mb: Mbufs,
    private readonly td: LocalThread,
    private readonly peer: Ifnet,
    readonly imp: LinkImp,
  ) {
    this.co = td.callouts.callout();
    this.rng = new Prng(imp.seed ?? 1);
  }
  output(_ifp: Ifnet, m: number): void {
    this.sent++;
    if (this.closed) {
      this.mb.m_freem(m);
      return;
    }
    const imp = this.imp;
    if ((imp.filter && imp.filter(m)) || (imp.loss && this.rng.next() < imp.loss)) {
      this.dropped++;
      this.mb.m_freem(m);
      return;
    }
    if (imp.duplicate && this.rng.next() < imp.duplicate) {
      const d = dupPacket(this.mb, m);
      if (d !== 0) this.push(d);
    }
    if (imp.reorder && this.held === 0 && this.rng.next() < imp.reorder) {
      this.held = m;
      return;
    }
    this.push(m);
    if (this.held !== 0) {
      const h = this.held;
      this.held = 0;
      this.push(h);
    }
  }
  private push(m: number): void {
    const at = this.td.clock.now() + (this.imp.delayMs ?? 1);
    this.q.push(m);
    this.due.push(at);
    if (!this.co.pending) this.arm();
  }
  private arm(): void {
    if (this.due.length === 0) return;
    const ms = Math.max(1, Math.ceil(this.due[0] - this.td.clock.now()));
    this.co.reset(ms, this.fire);
  }
  private readonly fire = (): void => {
    const now = this.td.clock.now();
    while (this.q.length > 0 && this.due[0] <= now + 1e-9) {
      this.due.shift();
      const m = this.q.shift()!;
      if (this.closed) this.mb.m_freem(m);
      else this.peer.input(m);
    }
    // A held frame with nothing behind it goes out after a while too.
    if (this.q.length === 0 && this.held !== 0) {
      const h = this.held;
      this.held = 0;
      this.push(h);
    }
    this.arm();
  };
  detach(): void {
    this.closed = true;
    this.co.stop();
    for (const m of this.q) this.mb.m_freem(m);
    if (this.held !== 0) this.mb.m_freem(this.held);
    this.q = [];
    this.due = [];
    this.held = 0;
  }
}

export interface TcpPair {
  uma: Uma;
  mb: Mbufs;
  td: LocalThread;
  a: Stack;
  b: Stack;
  ab: TimedDir;
  ba: TimedDir;
  close(): void;
}

export const A = 0x0a000001;
export const B = 0x0a000002;

let shared: { uma: Uma; mb: Mbufs } | null = null;
/** One arena for the whole test file (UMA creation is the slow part). */
export function arena(): { uma: Uma; mb: Mbufs } {
  if (shared === null) {
    const uma = testUma({ size: 256 << 20 });
    shared = { uma, mb: Mbufs.create(uma) };
  }
  return shared;
}

/** Two hosts 10.0.0.1 (a) and 10.0.0.2 (b) on a timed link. */
export function tcpPair(imp: LinkImp = {}, opts: StackOptions = {}, mtu = 1500): TcpPair {
  const { uma, mb } = arena();
  const td = LocalThread.manual();
  const a = new Stack(mb, { name: 'a', thread: td, ...opts });
  const b = new Stack(mb, { name: 'b', thread: td, ...opts, seed: 77 });
  const ifa = new Ifnet(mb, 'mem0', 0x0200_0000_000a, mtu);
  const ifb = new Ifnet(mb, 'mem0', 0x0200_0000_000b, mtu);
  const ab = new TimedDir(mb, td, ifb, imp);
  const ba = new TimedDir(mb, td, ifa, { ...imp, seed: (imp.seed ?? 1) + 1 });
  ifa.driver = ab;
  ifb.driver = ba;
  a.addInterface(ifa, A, 24);
  b.addInterface(ifb, B, 24);
  // Resolve ARP both ways before the tests send anything.
  a.icmp.echoRequest(B, 1, 0, 8);
  td.advance(20);
  return {
    uma,
    mb,
    td,
    a,
    b,
    ab,
    ba,
    close() {
      a.close();
      b.close();
      ab.detach();
      ba.detach();
    },
  };
}

/** Leak check from a drained packet cache (an earlier test may have left items cached). */
export function tcpLeakCheck(): () => void {
  const { uma, mb } = arena();
  mb.drainPacketCache();
  return mbufLeakCheck(uma, mb);
}

/**
 * A listener on b (port), a connection from a, accepted: [client id, accepted id, listener id].
 * Waits on the manual clock until the handshake completes (losses included). `setup` runs on the
 * listener before listen() (socket options the accepted connection inherits).
 */
export function connectPair(p: TcpPair, port = 80, setup?: (listener: number) => void): [number, number, number] {
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const l = sb.socket();
  if (setup) setup(l);
  assert.equal(sb.bind(l, 0, port), 0);
  assert.equal(sb.listen(l, 8), 0);
  const c = sa.socket();
  assert.equal(sa.connect(c, B, port), -EINPROGRESS);
  let s = -1;
  for (let i = 0; i < 200 && s < 0; i++) {
    p.td.advance(50);
    s = sb.accept(l);
  }
  assert.ok(s > 0, `accept: ${s}`);
  return [c, s, l];
}

/**
 * The end of a connectPair test: close the client, the accepted socket and
 * the listener, let the connections finish for `ms` of clock time, close
 * the pair, then run the leak check `done`.
 */
export function closePair(p: TcpPair, [c, s, l]: [number, number, number], ms: number, done: () => void): void {
  p.a.tcp.sockets!.close(c);
  p.b.tcp.sockets!.close(s);
  p.b.tcp.sockets!.close(l);
  p.td.advance(ms);
  p.close();
  done();
}

export interface Run {
  stats: Float64Array;
  ms: number;
}

/**
 * Send `size` bytes a -> b over a link (5 ms each way) whose a -> b
 * direction has `fault`; check them (SHA-256); close, check for leaks and
 * return a's counters. `probe` runs every 5 ms of clock with the pair and
 * the sending connection's id.
 */
export function transfer(size: number, fault: FaultOptions, tcp: Partial<TcpConfig>, limitMs = 600_000, probe?: (p: TcpPair, c: number, t: number) => void): Run {
  const done = tcpLeakCheck();
  const p: TcpPair = tcpPair({ delayMs: 5 }, { tcp });
  FaultInjector.wrap(p.a.ifs[0], fault);
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const ids = connectPair(p);
  const [c, s] = ids;
  const data = new Uint8Array(size);
  let x = fault.seed ?? 1;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  let sent = 0;
  let eof = false;
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  let t = 0;
  for (; !eof && t < limitMs; t += 5) {
    if (sent < size) {
      const n = sa.write(c, data.subarray(sent));
      if (n > 0) sent += n;
      if (sent === size) sa.shutdown(c, SHUT_WR);
    }
    for (;;) {
      const n = sb.read(s, buf);
      if (n > 0) parts.push(buf.slice(0, n));
      else {
        if (n === 0) eof = true;
        break;
      }
    }
    p.td.advance(5);
    if (probe) probe(p, c, t);
  }
  assert.ok(eof, `EOF within ${limitMs} ms`);
  assert.equal(createHash('sha256').update(Buffer.concat(parts)).digest('hex'), createHash('sha256').update(data).digest('hex'), 'same bytes');
  const stats = p.a.tcp.stats.slice();
  const [cc, ss, l] = ids;
  sa.close(cc);
  sb.close(ss);
  sb.close(l);
  p.td.advance(2000);
  p.close();
  done();
  return { stats, ms: t };
}
