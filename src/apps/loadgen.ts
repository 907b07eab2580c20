/**
 * A closed-loop UDP load generator that runs in a stack's thread: one
 * connected socket keeps `window` requests in flight until `count` replies
 * came back or `timeoutMs` passed. Time is the thread's clock and the
 * timeout a callout on its wheel (never a JS timer or performance.now), so
 * it runs the same on an MP CPU and on a manual-clock thread.
 */
import { createSocket } from '../lib/dgram.js';
import type { Stack } from '../netinet/stack.js';
import type { NetThread } from '../kern/lwkt/netthread.js';
import { ipToString } from '../wire/ipv4.js';

export interface LoadGenOptions {
  dst: number;
  port: number;
  /** Local port (0: ephemeral). */
  lport: number;
  count: number;
  window: number;
  /** Request size in bytes (>= 4: the first 4 carry a sequence number). */
  size: number;
  /** Give up after this long on the thread's clock (default 10 s). */
  timeoutMs?: number;
}

export interface LoadGenResult {
  replies: number;
  /** Elapsed time on the thread's clock, µs. */
  us: number;
  sent: number;
  /** Sends the stack refused, and socket errors. */
  sendErrors: number;
  socketErrors: number;
  timedOut: boolean;
}

/** Start a run; `done` is called once, from the thread, when it ends (or stop() ends it early). */
export function loadGen(td: NetThread, stack: Stack, o: LoadGenOptions, done: (r: LoadGenResult) => void): { stop(): void } {
  const s = createSocket(stack, { type: 'udp4', recvBufferSize: 4 << 20 });
  const window = Math.max(1, o.window);
  const req = Buffer.alloc(Math.max(4, o.size), 0x42);
  const r: LoadGenResult = { replies: 0, us: 0, sent: 0, sendErrors: 0, socketErrors: 0, timedOut: false };
  const t0 = td.clock.now();
  const timer = td.callouts.callout();
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    timer.stop();
    r.us = Math.round((td.clock.now() - t0) * 1000);
    s.close();
    done(r);
  };
  const sent = (err: Error | null): void => {
    if (err !== null) r.sendErrors++;
  };
  const sendOne = (): void => {
    req.writeUInt32BE(r.sent++ >>> 0, 0);
    try {
      s.send(req, sent);
    } catch {
      r.sendErrors++;
    }
  };
  s.on('error', () => r.socketErrors++);
  s.on('message', () => {
    r.replies++;
    if (r.replies >= o.count) finish();
    else if (r.sent < o.count) sendOne();
  });
  s.on('connect', () => {
    for (let i = 0; i < Math.min(window, o.count); i++) sendOne();
  });
  timer.reset(Math.max(1, Math.round((o.timeoutMs ?? 10000) / td.callouts.tickMs)), () => {
    r.timedOut = true;
    finish();
  });
  if (o.lport !== 0) s.bind(o.lport);
  s.connect(o.port, ipToString(o.dst));
  return { stop: finish };
}
