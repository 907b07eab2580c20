/**
 * apps/tcprr.ts, the TCP request/response load that runs inside a stack
 * thread (the bench's CPU-only scaling case, NET_TCP_RR): on the manual
 * clock of a single-thread system it counts transactions over exactly its
 * run time; on 2 worker CPUs each CPU runs its own, every connection stays
 * on that CPU (no frame handed between CPUs), and stop leaves every zone
 * where it was.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { leakCheck, testUma } from '../helpers.js';
import { System } from '../../lib/topology.js';
import { mpPair } from '../lib/mpsys.js';
import { tcpRR, type TcpRRResult } from '../../apps/tcprr.js';
import { NET_TCP_RR } from '../../apps/handlers.js';
import { NET_STATS } from '../../net/mpnet.js';
import { ipFromString } from '../../wire/ipv4.js';
import { EINVAL } from '../../kern/errno.js';

test('tcpRR on the manual clock: every client connects, transactions counted over exactly the run time, closed after', async () => {
  const uma = testUma({ size: 64 << 20 });
  const done = leakCheck(uma);
  const sys = System.local({ uma, clock: 'manual' });
  const a = sys.addStack('a');
  const b = sys.addStack('b');
  // 1 ms each way: at one instant of virtual time a ping-pong with no delay never ends.
  sys.link(a, b, { a: '10.9.0.1/24', b: '10.9.0.2/24', fault: { delayMs: 1 } });
  let result: TcpRRResult | null = null;
  tcpRR(sys.thread!, a.stack, b.stack, { dst: ipFromString('10.9.0.2'), port: 7200, conns: 4, size: 100, warmMs: 50, runMs: 200 }, (r) => (result = r));
  for (let t = 0; t < 400 && result === null; t += 10) await sys.advance(10);
  const r = result as TcpRRResult | null;
  assert.ok(r !== null, 'the run ended');
  assert.equal(r.connected, 4);
  assert.equal(r.errors, 0);
  // Virtual time is exact: 4 connections x 200 ms / a 2 ms round trip (TCP_NODELAY both ways).
  assert.equal(r.transactions, 400);
  assert.equal(r.us, 200_000, 'counted over the run time of the thread clock');
  assert.equal(a.stack.tcp.sockets!.list().filter((c) => c.state === 4).length, 0, 'no client left established');
  await sys.advance(120_000); // TIME_WAIT and the last timers run out
  await sys.stop();
  sys.mb.drainPacketCache();
  done();
});

test('NET_TCP_RR on 2 CPUs: each CPU runs its own load, both ends of every connection on it, no frame crosses CPUs', { timeout: 60_000 }, async () => {
  const { sys, a, b, stop } = await mpPair();
  try {
    const dst = ipFromString('10.0.7.2') | 0;
    const m = sys.machine!;
    assert.equal((await m.call(0, NET_TCP_RR, [a.index, b.index, dst, 0, 4, 64, 10, 50], 4))[0], EINVAL, 'port 0 refused');
    const runs = await Promise.all([0, 1].map((c) => m.call(c, NET_TCP_RR, [a.index, b.index, dst, 7300, 8, 64, 50, 300], 4)));
    for (const [c, [err, trans, us, connected, errors]] of runs.entries()) {
      assert.equal(err, 0);
      assert.equal(connected, 8, `cpu${c}: every client connected`);
      assert.equal(errors, 0, `cpu${c}: no errors`);
      assert.ok(trans > 50, `cpu${c}: ${trans} transactions`);
      assert.ok(us >= 250_000, `cpu${c}: counted ${us} us`);
    }
    const crossed = await Promise.all([a, b].flatMap((st) => [0, 1].map((c) => m.call(c, NET_STATS, [st.index], 4))));
    assert.equal(crossed.reduce((n, r) => n + r[3], 0), 0, 'no frame handed between CPUs');
  } finally {
    await stop();
  }
});
