/**
 * Idle established TCP connections, measured: the `tcp` suite's "arena
 * bytes per idle established endpoint" case and the test that bounds it
 * (src/test/netinet/tcp_idle.test.ts) both call idleConnections().
 *
 * Two stacks in this thread on one manual clock (nothing times out while
 * the connections sit idle) over an in-memory link; connections are opened
 * with the socket calls, spread over several client addresses and server
 * ports so the 4-tuples stay unique and no ephemeral range runs out. What
 * is counted is endpoints: each connection has both its ends here, so N
 * connections are 2N endpoints (2N tcpcbs, 2N sockets).
 *
 * Figures: UMA zone bytes in use (every zone's used x item size: what the
 * arena holds for the connections outside buffered data, which idle
 * connections have none of), arena pages taken, and the JS heap after a
 * forced full GC, each per endpoint; then everything is closed (SO_LINGER
 * 0: RST, no TIME_WAIT) and the zone bytes still in use against the start
 * are the leak.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Uma } from '../uma/uma.js';
import { zoneStats } from '../uma/stats.js';
import { UMA_ZFLAG_INTERNAL } from '../uma/flags.js';
import { H_PAGE_FREE } from '../vm/layout.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { LocalThread } from '../kern/lwkt/netthread.js';
import { Ifnet } from '../net/if.js';
import { MemLink } from '../net/phy/memlink.js';
import { Stack } from '../netinet/stack.js';
import { TcpSockets } from '../netinet/tcp_usrreq.js';
import { EINPROGRESS } from '../kern/errno.js';
import { TCPS_ESTABLISHED } from '../netinet/tcp_fsm.js';

/** The goal for arena bytes per idle endpoint (outside buffered data). */
export const IDLE_GOAL = 2048;

const NADDR = 4;
const NPORT = 4;
const CLI0 = 0x0a070001;
const SRV = 0x0a070002;
/** Client address i (0: the interface's own). */
const cliAddr = (i: number): number => (i === 0 ? CLI0 : 0x0a070010 + i);

export interface IdleOptions {
  /** Connections to open (each is two endpoints). */
  connections: number;
  /** Stop opening after this much real time even if fewer are open (a safety bound, not a measurement). */
  budgetMs?: number;
}

export interface IdleFigures {
  /** Connections opened and measured, and their endpoints (2 per connection: both ends are here). */
  connections: number;
  endpoints: number;
  /** Endpoints in ESTABLISHED when measured (all of them, or the run is broken). */
  established: number;
  /** UMA zone bytes in use per endpoint (items x size). */
  arenaPerEndpoint: number;
  /** Arena pages taken per endpoint (zones grow by pages; includes caches). */
  pagesPerEndpoint: number;
  /** JS heap per endpoint after a forced full GC (null: no gc() here). */
  heapPerEndpoint: number | null;
  /** Connections opened (handshake and accept included) per second of real time. */
  openRate: number;
  /** Zone bytes in use after closing everything and both stacks, against before the stacks existed (UMA's own bucket zones aside). */
  leakedBytes: number;
}

/** A forced full GC: --expose-gc's gc(), or the same function enabled at run time. */
export function gcFunction(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as unknown;
    return typeof f === 'function' ? (f as () => void) : null;
  } catch {
    return null;
  }
}

/**
 * Bytes of the zones' items in use: every zone's, or with `user` only the
 * zones UMA does not keep for itself (its bucket zones hold per-CPU caches,
 * whose count depends on the cache state, not on what is in use).
 */
export function zoneBytes(uma: Uma, user = false): number {
  let n = 0;
  for (const z of uma.allZones()) {
    if (user && (z.flags & UMA_ZFLAG_INTERNAL) !== 0) continue;
    const s = zoneStats(z);
    n += s.used * s.size;
  }
  return n;
}

/**
 * Open `connections` connections (after a 64-connection warm-up that makes
 * the zones and compiles the code), measure, close everything, report
 * (IdleFigures). Runs on its own manual-clock thread; synchronous; throws
 * if a connect fails or the accepts do not match the connects.
 */
export function idleConnections(o: IdleOptions): IdleFigures {
  const uma = Uma.create({ size: 256 << 20, ncpus: 4 });
  uma.logger = () => {};
  const mb = Mbufs.create(uma);
  const zStart = zoneBytes(uma, true);
  const td = LocalThread.manual();
  const a = new Stack(mb, { name: 'client', thread: td, udp: { portFirst: 1024 } });
  const b = new Stack(mb, { name: 'server', thread: td, seed: 9 });
  const ifa = new Ifnet(mb, 'mem0', 0x0200_0000_0001, 65535);
  const ifb = new Ifnet(mb, 'mem0', 0x0200_0000_0002, 65535);
  const link = MemLink.connect(ifa, ifb);
  a.addInterface(ifa, '10.7.0.1', 24);
  for (let i = 1; i < NADDR; i++) a.addAddress(ifa, cliAddr(i), 24);
  b.addInterface(ifb, '10.7.0.2', 24);
  for (let i = 0; i < NADDR; i++) b.arp.set(ifb, cliAddr(i), 0x0200_0000_0001);
  a.arp.set(ifa, SRV, 0x0200_0000_0002);
  const sa = new TcpSockets(a);
  const sb = new TcpSockets(b);
  const listeners: number[] = [];
  for (let p = 0; p < NPORT; p++) {
    const l = sb.socket();
    sb.bind(l, 0, 6000 + p);
    sb.listen(l, 4096);
    listeners.push(l);
  }
  const clients: number[] = [];
  const servers: number[] = [];
  /** Open k connections, run the handshakes, accept them all. */
  const open = (k: number): void => {
    for (let i = 0; i < k; i++) {
      const n = clients.length;
      const c = sa.socket();
      sa.bind(c, cliAddr(n % NADDR), 0);
      const r = sa.connect(c, SRV, 6000 + ((n >> 2) % NPORT));
      if (r !== -EINPROGRESS) throw new Error(`idle connections: connect ${n} failed (${r})`);
      clients.push(c);
    }
    td.runUntilIdle();
    for (const l of listeners) {
      for (let s = sb.accept(l); s > 0; s = sb.accept(l)) servers.push(s);
    }
  };
  open(64);
  td.runUntilIdle();
  const gc = gcFunction();
  gc?.();
  const z0 = zoneBytes(uma);
  const p0 = Atomics.load(uma.arena.i32, H_PAGE_FREE);
  const h0 = process.memoryUsage().heapUsed;
  const c0 = clients.length;
  const budget = o.budgetMs ?? Infinity;
  const t0 = performance.now();
  while (clients.length - c0 < o.connections && performance.now() - t0 < budget) open(Math.min(256, o.connections - (clients.length - c0)));
  const dt = performance.now() - t0;
  td.runUntilIdle();
  if (servers.length !== clients.length) throw new Error(`idle connections: ${clients.length} connects, ${servers.length} accepted`);
  gc?.();
  const connections = clients.length - c0;
  const endpoints = 2 * connections;
  const res: IdleFigures = {
    connections,
    endpoints,
    established: 0,
    arenaPerEndpoint: (zoneBytes(uma) - z0) / endpoints,
    pagesPerEndpoint: ((p0 - Atomics.load(uma.arena.i32, H_PAGE_FREE)) * 4096) / endpoints,
    heapPerEndpoint: gc === null ? null : (process.memoryUsage().heapUsed - h0) / endpoints,
    openRate: connections / (dt / 1000),
    leakedBytes: 0,
  };
  for (let i = c0; i < clients.length; i++) {
    if (sa.info(clients[i])?.tcpi_state === TCPS_ESTABLISHED) res.established++;
    if (sb.info(servers[i])?.tcpi_state === TCPS_ESTABLISHED) res.established++;
  }
  for (const c of clients) sa.setsockopt(c, 0xffff, 0x0080, 1, 0); // SO_LINGER {on, 0}: RST, no TIME_WAIT
  for (const c of clients) sa.close(c);
  for (const s of servers) sb.close(s);
  for (const l of listeners) sb.close(l);
  td.advance(1000);
  a.close();
  b.close();
  link.close();
  td.runUntilIdle();
  res.leakedBytes = zoneBytes(uma, true) - zStart;
  return res;
}
