/**
 * Receive-buffer autosizing (FreeBSD's tcp_autorcvbuf, net.inet.tcp.recvbuf_auto / recvbuf_max):
 * on a path whose bandwidth-delay product is larger than net.inet.tcp.recvspace, a receiver that
 * reads everything sees so_rcv grow by half whenever more than 3/8 of it arrived in half an RTT,
 * so the window the sender sees keeps ahead of its congestion window, and the goodput follows.
 * With recvbuf_auto=0, after SO_RCVBUF, at recvbuf_max, or where a growth would pass sb_max_adj
 * the buffer stays. Two stacks on the manual clock; the data direction goes through the fault
 * injector's rate limit (src/net/phy/fault.ts), both directions through the link's one-way delay.
 * Assertions are on sizes and on bytes per virtual second (deterministic); every run ends with
 * every mbuf back.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { connectPair, tcpLeakCheck, tcpPair, type TcpPair } from './tcplink.js';
import { FaultInjector } from '../../net/phy/fault.js';
import { SOL_SOCKET, SO_RCVBUF } from '../../netinet/tcp_api.js';
import type { TcpConfig, TcpSysctlNode } from '../../netinet/tcp_tunables.js';
import type { Stack } from '../../netinet/stack.js';

/** 40 Mbit/s a -> b, 25 ms each way: a 250 KB bandwidth-delay product, about 4 x the default recvspace. */
const RATE = 40_000_000;
const DELAY = 25;
/** so_rcv after the handshake: recvspace 65536 rounded up to a multiple of the MSS (1460). */
const START = 65700;

interface Bulk {
  /** so_rcv's size at the end (getsockopt SO_RCVBUF on the receiver). */
  hiwat: number;
  /** The sizes so_rcv took, in order, and the virtual ms of the run at which each came. */
  steps: number[];
  times: number[];
  /** Bytes the receiver read in the last `measureMs` of the run, per virtual second. */
  goodput: number;
}

interface BulkOpts {
  ms: number;
  measureMs: number;
  /** SO_RCVBUF on the listener (the accepted socket inherits the size and loses SB_AUTOSIZE). */
  rcvbuf?: number;
  /** Runs every virtual millisecond with the receiving stack (sysctl writes mid-transfer). */
  tick?: (t: number, b: Stack) => void;
}

const out = new Int32Array(2);
const chunk = new Uint8Array(65536).fill(5);
const buf = new Uint8Array(1 << 16);

function rcvbuf(st: Stack, id: number): number {
  assert.equal(st.tcp.sockets!.getsockopt(id, SOL_SOCKET, SO_RCVBUF, out), 0);
  return out[0];
}

function node(st: Stack, name: string): TcpSysctlNode {
  const n = st.sysctlNodes().find((x) => x.name === name);
  assert.ok(n, name);
  return n;
}

/**
 * Bulk transfer a -> b for `ms` of virtual time, the application writing as much as so_snd
 * takes and the reader draining so_rcv every millisecond; the goodput is measured over the
 * last `measureMs` (past slow start and the growth).
 */
function bulk(tcp: Partial<TcpConfig>, o: BulkOpts): Bulk {
  const done = tcpLeakCheck();
  const p: TcpPair = tcpPair({ delayMs: DELAY }, { tcp });
  FaultInjector.wrap(p.a.ifs[0], { rateBps: RATE });
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const setup = o.rcvbuf === undefined ? undefined : (l: number) => assert.equal(sb.setsockopt(l, SOL_SOCKET, SO_RCVBUF, o.rcvbuf!), 0);
  const [c, s, l] = connectPair(p, 80, setup);
  const steps = [rcvbuf(p.b, s)];
  const times = [0];
  let measured = 0;
  for (let t = 0; t < o.ms; t++) {
    if (o.tick) o.tick(t, p.b);
    while (sa.write(c, chunk) > 0);
    p.td.advance(1);
    for (let n = sb.read(s, buf); n > 0; n = sb.read(s, buf)) if (t >= o.ms - o.measureMs) measured += n;
    const h = rcvbuf(p.b, s);
    if (h !== steps[steps.length - 1]) {
      steps.push(h);
      times.push(t);
    }
  }
  const hiwat = rcvbuf(p.b, s);
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(200_000);
  p.close();
  done();
  return { hiwat, steps, times, goodput: Math.round((measured * 1000) / o.measureMs) };
}

/** Each step is the last one grown by half (FreeBSD's hiwat + hiwat / 2), capped at `cap`. */
function assertHalfSteps(steps: number[], cap: number): void {
  for (let i = 1; i < steps.length; i++) assert.equal(steps[i], Math.min(steps[i - 1] + Math.floor(steps[i - 1] / 2), cap), `step ${i}: ${steps.join(' -> ')}`);
}

test('tcp: so_rcv grows with the bandwidth-delay product (recvbuf_auto) and the goodput with it', () => {
  const fixed = bulk({ recvbuf_auto: 0 }, { ms: 4000, measureMs: 2000 });
  const auto = bulk({}, { ms: 4000, measureMs: 2000 });
  assert.deepEqual(fixed.steps, [START], 'recvbuf_auto=0: so_rcv keeps its size');
  assert.ok(auto.hiwat > fixed.hiwat, `autosized ${auto.hiwat} > fixed ${fixed.hiwat}`);
  assertHalfSteps(auto.steps, 2097152);
  assert.ok(Math.max(...auto.steps) <= 2097152, 'never above net.inet.tcp.recvbuf_max');
  // The window now covers the path: the goodput nears the 5 MB/s link, the fixed 64 KiB window gets a fifth.
  assert.ok(auto.goodput > 3 * fixed.goodput, `goodput ${auto.goodput} B/s > 3 x ${fixed.goodput} B/s`);
  assert.ok(auto.goodput > 0.9 * (RATE / 8), `goodput ${auto.goodput} B/s > 90% of the link`);
  console.log(`# recvbuf_auto=1: so_rcv ${auto.steps.join(' -> ')}, goodput ${auto.goodput} B/s; recvbuf_auto=0: ${fixed.hiwat}, ${fixed.goodput} B/s`);
});

test('tcp: a receive buffer sized with SO_RCVBUF is not autosized', () => {
  const r = bulk({}, { ms: 1500, measureMs: 500, rcvbuf: 70000 });
  // tcp_mss rounds it up to a multiple of the MSS at the handshake (48 x 1460); then it stays.
  assert.deepEqual(r.steps, [70080], 'SO_RCVBUF clears SB_AUTOSIZE: the size stays as set');
  const auto = bulk({}, { ms: 1500, measureMs: 500 });
  assert.ok(auto.steps.length > 1, 'the same run without SO_RCVBUF grows');
});

test('tcp: net.inet.tcp.recvbuf_max caps the growth; a growth past sb_max_adj ends autosizing', () => {
  const capped = bulk({ recvbuf_max: 150000 }, { ms: 1500, measureMs: 500 });
  assertHalfSteps(capped.steps, 150000);
  assert.equal(capped.hiwat, 150000, `stops at recvbuf_max: ${capped.steps.join(' -> ')}`);
  // kern.ipc.maxsockbuf 400000: sb_max_adj 355555; 332605 + 166302 would pass it, so sbreserve
  // refuses and SB_AUTOSIZE is cleared (FreeBSD's "give up when limit is reached").
  const adj = bulk({ maxsockbuf: 400000 }, { ms: 1500, measureMs: 500 });
  assert.deepEqual(adj.steps, [START, 98550, 147825, 221737, 332605]);
});

test('tcp: net.inet.tcp.recvbuf_auto and recvbuf_max read and write at run time', () => {
  const WRITE_AT = 450;
  const free = bulk({}, { ms: 1500, measureMs: 500 });
  const r = bulk(
    {},
    {
      ms: 1500,
      measureMs: 500,
      tick: (t, b) => {
        if (t !== WRITE_AT) return;
        const auto = node(b, 'net.inet.tcp.recvbuf_auto');
        const max = node(b, 'net.inet.tcp.recvbuf_max');
        assert.equal(auto.get(), 1, 'FreeBSD default 1');
        assert.equal(max.get(), 2097152, 'FreeBSD default 2 MiB');
        assert.throws(() => auto.set!(2), /bad value/);
        assert.throws(() => max.set!(0), /bad value/);
        max.set!(1 << 20);
        assert.equal(max.get(), 1 << 20);
        assert.equal(b.tcp.cfg.recvbuf_max, 1 << 20, 'the write reaches the stack config');
        auto.set!(0);
        assert.equal(auto.get(), 0);
      },
    },
  );
  // Without the write the buffer grows past WRITE_AT; with it, a live connection's growth stops there.
  assert.ok(free.times[free.times.length - 1] > WRITE_AT, `free run grows after ${WRITE_AT} ms: ${free.times.join(', ')}`);
  assert.ok(r.steps.length >= 2, `grew before the write: ${r.steps.join(' -> ')}`);
  assert.ok(r.times[r.times.length - 1] <= WRITE_AT, `no growth after recvbuf_auto=0: ${r.steps.join(' -> ')} at ${r.times.join(', ')} ms`);
  assert.ok(r.hiwat < free.hiwat);
});
