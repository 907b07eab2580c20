/**
 * Fixture for slabnet TCP against real Linux programs: a single-thread
 * System on the real clock with one stack, whose TAP's kernel side is moved
 * into a network namespace the test creates. Linux is <net>.1/24 inside the
 * namespace, slabnet <net>.2/24; nothing is routed anywhere else, and every
 * name (namespace, TAP) carries this process's pid. close() tears it all
 * down (call it from a finally block) and checks that no zone leaked.
 *
 * Helpers: an HTTP server (Node's own http.Server fed slabnet sockets),
 * commands in the namespace without blocking the event loop (the stack runs
 * in this thread), and the stack's TCP counters by name.
 */
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { leakCheck } from '../helpers.js';
import { NetNs } from './netns.js';
import { System, type NetStack, type Interface } from '../../lib/topology.js';
import { netFor, type BoundNet, type Server, type ServerOptions, type Socket } from '../../lib/net.js';
import type { Stack } from '../../netinet/stack.js';
import { tcpStatObject } from '../../netinet/tcp_stats.js';

export interface LinuxTcp {
  sys: System;
  ns: NetNs;
  host: NetStack;
  stack: Stack;
  tap: Interface;
  /** The kernel's name of the TAP (inside the namespace). */
  tapName: string;
  /** slabnet's address and Linux's. */
  us: string;
  peer: string;
  net: BoundNet;
  /** net.inet.tcp counters by name (struct tcpstat). */
  tcpStats(): Record<string, number>;
  /** Run `fn` first in close() (servers, children the test started). */
  defer(fn: () => unknown): void;
  /** Stop everything; throws if a zone leaked (after the teardown has run). */
  close(): Promise<void>;
}

/**
 * Build the fixture on 10.77.<subnet>.0/24 with a TAP of `mtu`. `tag`
 * names the namespace (slabnet-<tag>-<pid>) and, with the pid, the TAP.
 */
export async function linuxTcp(tag: string, subnet: number, o: { mtu?: number; pcap?: string; offload?: boolean } = {}): Promise<LinuxTcp> {
  const sys = System.local();
  const done = leakCheck(sys.uma);
  const ns = NetNs.create(tag);
  const us = `10.77.${subnet}.2`;
  const peer = `10.77.${subnet}.1`;
  const mtu = o.mtu ?? 1500;
  let closed = false;
  const open = new Set<Socket>();
  const deferred: (() => unknown)[] = [];
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      for (const fn of deferred.reverse()) {
        try {
          await fn();
        } catch {
          // teardown goes on
        }
      }
      // Sockets still open hold the process (node:net ref): close them while the stack still runs.
      for (const so of open) so.destroy();
      await waitFor(() => open.size === 0, 5000, 'slabnet sockets to close').catch(() => undefined);
      await sys.stop();
    } finally {
      ns.destroy();
    }
    done();
  };
  try {
    const host = sys.addStack('slabnet');
    const tapName = `snt${tag.slice(0, 3)}${process.pid % 100000}`;
    const tap = host.addTap(tapName, { mtu, addrs: `${us}/24`, offload: o.offload ?? true, ...(o.pcap ? { pcap: o.pcap } : {}) });
    ns.adopt((tap.ifp?.name ?? tap.name), `${peer}/24`, mtu);
    const stack = host.stack;
    // so_rcv starts at 1 MB, not recvspace's 64 KiB: over TAP, Linux's 64 KiB GSO segments fill a
    // 64 KiB buffer with one segment, so slabnet advertises a zero window before recvbuf_auto's
    // first measurement grows it (which the tshark capture test flags). The transfers pass either way.
    stack.tcp.cfg.recvspace = 1 << 20;
    return {
      sys,
      ns,
      host,
      stack,
      tap,
      tapName: (tap.ifp?.name ?? tap.name),
      us,
      peer,
      net: trackedNet(netFor(stack), open),
      tcpStats: () => tcpStatObject(stack.tcp.stats),
      defer: (fn) => void deferred.push(fn),
      close,
    };
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
}

/** f.net with every accepted or connected socket recorded in `open` until it closes. */
function trackedNet(n: BoundNet, open: Set<Socket>): BoundNet {
  const track = (so: Socket): Socket => {
    open.add(so);
    so.once('close', () => open.delete(so));
    return so;
  };
  return {
    ...n,
    connect: (...args: unknown[]) => track(n.connect(...args)),
    createConnection: (...args: unknown[]) => track(n.connect(...args)),
    createServer(options?: ServerOptions | ((s: Socket) => void), listener?: (s: Socket) => void): Server {
      const srv = n.createServer(options, listener);
      srv.prependListener('connection', track);
      return srv;
    },
  };
}

/**
 * Node's http.Server serving connections accepted by a slabnet listener on
 * `port`: each slabnet Socket is handed to the http server as a
 * 'connection'. Returns both (close the slabnet one; the http one has no
 * listener of its own).
 */
export function httpOnSlabnet(f: LinuxTcp, port: number, handler: http.RequestListener, o: { allowHalfOpen?: boolean } = {}): Promise<{ http: http.Server; tcp: Server }> {
  const hs = http.createServer({ keepAliveTimeout: 5000 }, handler);
  const tcp = f.net.createServer({ allowHalfOpen: o.allowHalfOpen ?? false }, (s: Socket) => hs.emit('connection', s));
  f.defer(() => {
    hs.closeAllConnections();
    tcp.close();
  });
  return new Promise((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, () => resolve({ http: hs, tcp }));
  });
}

/** Close a slabnet server and its http.Server's idle connections; resolves when every connection is gone. */
export async function closeHttp(s: { http: http.Server; tcp: Server }): Promise<void> {
  s.http.closeAllConnections();
  await new Promise<void>((r) => s.tcp.close(() => r()));
}

export interface Proc {
  child: ChildProcess;
  /** Resolves at exit with the code (null: killed), stdout and stderr. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
}

/**
 * Spawn argv (already wrapped in `ip netns exec` by the caller) without
 * blocking this thread; stdout is collected as text unless `onStdout` takes
 * it. Killed with SIGKILL after `timeoutMs`.
 */
export function spawnIn(argv: string[], timeoutMs: number, o: { onStdout?: (d: Buffer) => void; stdin?: 'pipe' | 'ignore'; fixture?: LinuxTcp } = {}): Proc {
  // Its own process group, so that killing it also kills what it started (timeout's child, a pipeline).
  const child = spawn(argv[0], argv.slice(1), { stdio: [o.stdin ?? 'ignore', 'pipe', 'pipe'], detached: true });
  let exited = false;
  const kill = (): void => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  o.fixture?.defer(kill);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (o.onStdout ? o.onStdout(d) : (out += d)));
  child.stderr!.on('data', (d) => (err += d));
  const t = setTimeout(kill, timeoutMs);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    child.on('close', (code, signal) => {
      exited = true;
      clearTimeout(t);
      resolve({ code, signal, out, err });
    });
  });
  return { child, done };
}

/**
 * A deterministic pseudo-random byte stream (xorshift32 from `seed`): the
 * same seed gives the same bytes, so a receiver can hash what a sender
 * produces without either side holding the whole of it.
 */
export class PatternSource {
  private x: number;
  constructor(seed: number) {
    this.x = seed | 0 || 1;
  }

  /** The next n bytes. */
  next(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let x = this.x;
    for (let i = 0; i + 4 <= n; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b.writeInt32LE(x | 0, i);
    }
    for (let i = n & ~3; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    this.x = x;
    return b;
  }
}

/** SHA-256 (hex) and length of `total` bytes of PatternSource(seed). */
export function patternDigest(seed: number, total: number, chunk = 1 << 16): { sha256: string; bytes: number } {
  const src = new PatternSource(seed);
  const h = createHash('sha256');
  for (let left = total; left > 0; left -= chunk) h.update(src.next(Math.min(chunk, left)));
  return { sha256: h.digest('hex'), bytes: total };
}

/** Write the file of `total` bytes of PatternSource(seed) to `path` (for tools that upload a file). */
export async function writePatternFile(path: string, seed: number, total: number): Promise<void> {
  const { createWriteStream } = await import('node:fs');
  const src = new PatternSource(seed);
  const ws = createWriteStream(path);
  for (let left = total; left > 0; left -= 1 << 20) {
    if (!ws.write(src.next(Math.min(1 << 20, left)))) await new Promise<void>((r) => ws.once("drain", () => r()));
  }
  await new Promise<void>((r, j) => ws.end((e?: Error | null) => (e ? j(e) : r())));
}

/** Poll `cond` every few ms on the real clock until it holds (or throw after `ms`). */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
