/**
 * A closed-loop TCP request/response load that runs entirely in one
 * stack thread (an MP CPU, or a single-thread system): a server listening
 * on one stack echoes, `conns` clients on another each keep one request of
 * `size` bytes in flight (netperf's TCP_RR). It drives TcpSockets directly:
 * wakeups from TCP only note the socket (they come from inside tcp_input),
 * and a poll hook of the thread does the reads and writes after the input
 * is over. Time is the thread's clock and the end a callout, so the run is
 * the same on a CPU and on a manual clock; nothing here uses the event loop
 * (an idle CPU may block it).
 *
 * On the MP core every CPU runs its own instance (the hosts have an
 * instance per CPU): port partitioning opens each client on this CPU and,
 * with the symmetric RSS key, its SYN reaches this CPU's replica of the
 * listener, so a run measures what one CPU does without the main thread.
 */
import type { NetThread } from '../kern/lwkt/netthread.js';
import type { Stack } from '../netinet/stack.js';
import { EAGAIN, EINPROGRESS } from '../kern/errno.js';
import { IPPROTO_TCP, POLLERR, POLLHUP, POLLOUT, SOL_SOCKET, SO_REUSEADDR, TCP_NODELAY } from '../netinet/tcp_api.js';

export interface TcpRROptions {
  /** The server's address on the client stack's link, and its port. */
  dst: number;
  port: number;
  conns: number;
  /** Request (and response) bytes, 1..65536. */
  size: number;
  /** Transactions in the first warmMs are not counted. */
  warmMs: number;
  /** Counted time after the warm-up. */
  runMs: number;
}

export interface TcpRRResult {
  /** Transactions completed in the counted time. */
  transactions: number;
  /** The counted time on the thread's clock, µs. */
  us: number;
  /** Clients that connected (of conns). */
  connected: number;
  /** Socket calls that failed other than EAGAIN, and connections that ended early. */
  errors: number;
}

/** Start a run; `done` is called once, from the thread, when it ends (or stop() ends it early). */
export function tcpRR(td: NetThread, cli: Stack, srv: Stack, o: TcpRROptions, done: (r: TcpRRResult) => void): { stop(): void } {
  const cs = cli.tcp.sockets!;
  const ss = srv.tcp.sockets!;
  const r: TcpRRResult = { transactions: 0, us: 0, connected: 0, errors: 0 };
  const buf = new Uint8Array(Math.max(o.size, 65536)).fill(0x52);
  const req = buf.subarray(0, o.size);
  /** Per client id: bytes of the current response still to come (-1: not connected yet). */
  const clients = new Map<number, number>();
  const servers = new Set<number>();
  const ready = new Set<number>();
  const readySrv = new Set<number>();
  let listener = 0;
  let counting = false;
  let finished = false;
  let t0 = 0;
  const timer = td.callouts.callout();

  const fail = (): void => {
    r.errors++;
  };
  // Wakeups only note the id: they come from inside tcp_input or tcp_output.
  const prevC = cs.onwakeup;
  const prevS = ss.onwakeup;
  const onC = (id: number): void => {
    if (!finished && clients.has(id)) {
      ready.add(id);
      td.kick();
    } else prevC?.(id);
  };
  const onS = (id: number): void => {
    if (!finished && (id === listener || servers.has(id))) {
      readySrv.add(id);
      td.kick();
    } else prevS?.(id);
  };

  const sendReq = (id: number): void => {
    const n = cs.write(id, req);
    if (n === o.size) clients.set(id, o.size);
    else fail();
  };
  const serviceClient = (id: number): void => {
    let left = clients.get(id)!;
    if (left < 0) {
      const bits = cs.poll(id);
      if ((bits & (POLLERR | POLLHUP)) !== 0) return void (clients.delete(id), fail());
      if ((bits & POLLOUT) === 0) return;
      r.connected++;
      sendReq(id);
      return;
    }
    for (;;) {
      const n = cs.read(id, buf);
      if (n === -EAGAIN) break;
      if (n <= 0) return void (clients.delete(id), fail());
      left -= n;
      if (left <= 0) {
        if (counting) r.transactions++;
        sendReq(id);
        left = clients.get(id)!;
      } else clients.set(id, left);
    }
  };
  const serviceServer = (id: number): void => {
    if (id === listener) {
      for (let a = ss.accept(listener); a > 0; a = ss.accept(listener)) {
        ss.setsockopt(a, IPPROTO_TCP, TCP_NODELAY, 1);
        servers.add(a);
        readySrv.add(a);
      }
      return;
    }
    for (;;) {
      const n = ss.read(id, buf);
      if (n === -EAGAIN) return;
      if (n <= 0) return void (servers.delete(id), ss.close(id));
      if (ss.write(id, buf.subarray(0, n)) !== n) fail();
    }
  };
  const hook = (): number => {
    let work = 0;
    for (const id of readySrv) {
      readySrv.delete(id);
      serviceServer(id);
      work++;
    }
    for (const id of ready) {
      ready.delete(id);
      if (clients.has(id)) serviceClient(id);
      work++;
    }
    return work;
  };

  const finish = (): void => {
    if (finished) return;
    finished = true;
    timer.stop();
    r.us = counting ? Math.round((td.clock.now() - t0) * 1000) : 0;
    td.removePollHook(hook);
    for (const id of clients.keys()) cs.close(id);
    for (const id of servers) ss.close(id);
    if (listener > 0) ss.close(listener);
    if (cs.onwakeup === onC) cs.onwakeup = prevC;
    if (ss.onwakeup === onS) ss.onwakeup = prevS;
    done(r);
  };

  cs.onwakeup = onC;
  ss.onwakeup = onS;
  td.addPollHook(hook);
  listener = ss.socket();
  if (listener < 0 || ss.setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, 1) < 0 || ss.bind(listener, 0, o.port) < 0 || ss.listen(listener, 1024) < 0) {
    fail();
    finish();
    return { stop: finish };
  }
  for (let i = 0; i < o.conns; i++) {
    const id = cs.socket();
    if (id < 0) {
      fail();
      continue;
    }
    cs.setsockopt(id, IPPROTO_TCP, TCP_NODELAY, 1);
    clients.set(id, -1);
    if (cs.connect(id, o.dst, o.port) !== -EINPROGRESS) {
      clients.delete(id);
      cs.close(id);
      fail();
    }
  }
  const ticks = (ms: number): number => Math.max(1, Math.round(ms / td.callouts.tickMs));
  timer.reset(ticks(o.warmMs), () => {
    counting = true;
    t0 = td.clock.now();
    timer.reset(ticks(o.runMs), finish);
  });
  return { stop: finish };
}

