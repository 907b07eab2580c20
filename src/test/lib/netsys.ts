/**
 * Test fixture for the node:net layer: a single-thread System on the manual
 * clock with two stacks, a (10.0.0.1) and b (10.0.0.2), joined by an
 * in-memory link (optionally impaired), and a pump that moves the clock in
 * small steps and lets the event loop run Node's stream callbacks between
 * them, until a condition holds. Time only moves in pump(), so timing is
 * deterministic; nothing sleeps on the wall clock.
 */
import { after } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket, type SocketOptions } from '../../lib/net.js';
import { setImmediate as tick } from 'node:timers/promises';
import { System, type LinkOptions } from '../../lib/topology.js';
import type { Stack } from '../../netinet/stack.js';
import { testUma, mbufLeakCheck } from '../helpers.js';
import type { Uma } from '../../uma/uma.js';

export interface NetSys {
  sys: System;
  a: Stack;
  b: Stack;
  /** Advance the manual clock `stepMs` at a time (running the event loop between steps) until cond() or maxMs. */
  pump(cond: () => boolean, maxMs?: number, stepMs?: number): Promise<boolean>;
  /** Let the event loop run `n` turns without moving time. */
  settle(n?: number): Promise<void>;
  /** Stop the system and assert every zone's `used` is back where it started. */
  stop(): Promise<void>;
}

/** A fresh debug-mode arena per system (a System makes its own mbuf zones in it). */
function uma(): Uma {
  return testUma({ size: 128 << 20 });
}

/** Systems not stopped yet: a failed test's system is stopped at the end of the file, so its sockets let the process exit. */
const live = new Set<System>();
after(async () => {
  for (const s of live) await s.stop();
});

export async function netSys(link: LinkOptions = {}): Promise<NetSys> {
  const u = uma();
  const sys = System.local({ clock: 'manual', uma: u });
  live.add(sys);
  sys.mb.drainPacketCache();
  const done = mbufLeakCheck(u, sys.mb);
  const sa = sys.addStack('a');
  const sb = sys.addStack('b', { seed: 99 });
  sys.link(sa, sb, { a: '10.0.0.1/24', b: '10.0.0.2/24', ...link });
  sa.addLoopback();
  sys.advance(10);
  const settle = async (n = 3) => {
    for (let i = 0; i < n; i++) await tick();
  };
  return {
    sys,
    a: sa.stack,
    b: sb.stack,
    settle,
    async pump(cond, maxMs = 10_000, stepMs = 1) {
      for (let t = 0; t <= maxMs; t += stepMs) {
        await settle(2);
        if (cond()) return true;
        sys.advance(stepMs);
      }
      await settle(2);
      return cond();
    },
    async stop() {
      await settle(3);
      await sys.stop();
      live.delete(sys);
      await settle(3);
      done();
    },
  };
}

/** SHA-256 of bytes, hex. */
export function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Collect a socket's data until 'end'. */
export function collect(s: Socket): { data: () => Buffer; ended: () => boolean } {
  const parts: Buffer[] = [];
  let ended = false;
  s.on('data', (d: Buffer) => parts.push(d));
  s.on('end', () => (ended = true));
  return { data: () => Buffer.concat(parts), ended: () => ended };
}

/** Listen on b:port and connect from a (allowHalfOpen on both ends, more client options); both ends once connected. */
export async function pair(n: NetSys, port: number, opts: { allowHalfOpen?: boolean } & SocketOptions = {}) {
  let server: Socket | null = null;
  const srv = createServer({ stack: n.b, allowHalfOpen: opts.allowHalfOpen }, (s) => (server = s));
  srv.listen(port);
  await n.settle();
  let connected = false;
  const client = connect({ ...opts, stack: n.a, host: '10.0.0.2', port }, () => (connected = true));
  assert.ok(await n.pump(() => connected && server !== null));
  return { srv, client, server: server! as Socket };
}

/** Close a server and pump until it has closed. */
export async function closeServer(n: NetSys, srv: Server) {
  let done = false;
  srv.close(() => (done = true));
  assert.ok(await n.pump(() => done), 'server closed');
}
