// The network stack on worker CPUs: stops in the middle of full-speed traffic, the load generator on virtual time, 32 CPUs.
import { test } from 'node:test';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { testUma, leakCheck } from '../helpers.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { HOST1, NET_HANDLERS, netSetup, startNet } from '../../lib/netuser.js';
import { NET_ECHO_BIND, NET_LOADGEN, NET_STATS } from '../../net/mpnet.js';
import { allocStatDir, freeStatDir, NSD_MAX_BLOCKS } from '../../net/netstats.js';
import { ESHUTDOWN } from '../../kern/errno.js';

/** Echo servers on host 1 of every CPU, and a load generator on host 0 of every CPU (not awaited). */
function load(m: Machine, count: number, window: number): Promise<number[]>[] {
  return Array.from({ length: m.ncpus }, (_, c) => m.call(c, NET_LOADGEN, [0, HOST1, 7, count, window, 200, -1], 4));
}

test('20 stops in the middle of full-speed UDP traffic on 2 worker CPUs leak nothing', async () => {
  for (let round = 0; round < 20; round++) {
    const uma = testUma({ ncpus: 8, size: 64 << 20 });
    const done = leakCheck(uma);
    const sys = await startNet({ ncpus: 2, uma });
    for (let c = 0; c < 2; c++) assert.deepEqual(await sys.machine.call(c, NET_ECHO_BIND, [1, 7]), [0]);
    const runs = load(sys.machine, 1_000_000, 64);
    // Wait until datagrams flow on every CPU (by asking the CPUs, not by sleeping).
    for (let c = 0; c < 2; c++) {
      for (;;) {
        const [e, delivered] = await sys.machine.call(c, NET_STATS, [1], 1);
        assert.equal(e, 0);
        if (delivered >= 50) break;
      }
    }
    // Odd rounds: the machine is stopped under the stack's feet (no quiesce), then the system.
    if (round % 2 === 1) await sys.machine.stop();
    await sys.stop();
    for (const [e, replies] of await Promise.all(runs)) {
      assert.ok(e === 0 || e === ESHUTDOWN, `load generator answered: errno ${e}`);
      if (e === 0) assert.ok(replies < 1_000_000);
    }
    assert.equal(sys.machine.failures.length, 0);
    done();
  }
});

test('NET_LOADGEN runs on the CPU clock: on a manual clock, a generator with no server gives up after exactly 10 s of virtual time', async () => {
  const uma = testUma({ ncpus: 8, size: 64 << 20 });
  const mb = Mbufs.create(uma);
  const done = leakCheck(uma);
  const dir = allocStatDir(uma, 2, 2);
  const m = await Machine.start({ uma, ncpus: 2, handlers: [NET_HANDLERS], spinUs: 0, clock: 'manual' });
  try {
    await netSetup(m, undefined, undefined, dir);
    let answered: number[] | null = null;
    const run = m.call(1, NET_LOADGEN, [0, HOST1, 9, 100, 4, 64, -1], 4).then((r) => (answered = r));
    await m.advance(9999);
    assert.equal(answered, null, 'still waiting for replies at 9.999 s');
    await m.advance(1);
    const [e, replies, us] = await run;
    assert.deepEqual([e, replies, us], [0, 0, 10_000_000], 'no replies, 10 s exactly on the CPU clock');
  } finally {
    await m.stop();
    freeStatDir(uma, dir);
    mb.drainPacketCache();
  }
  done();
});

test('32 CPUs: the stats directory has room (it ended in ENOBUFS from 31), traffic flows on every CPU, stop leaks nothing', async () => {
  assert.ok(NSD_MAX_BLOCKS >= 200 * 2, 'every machine size with two hosts');
  const uma = testUma({ ncpus: 40, size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await startNet({ ncpus: 32, uma });
  try {
    for (let c = 0; c < 32; c++) assert.deepEqual(await sys.machine.call(c, NET_ECHO_BIND, [1, 7]), [0]);
    const runs = await Promise.all(load(sys.machine, 3, 1));
    for (const [e, replies] of runs) assert.deepEqual([e, replies], [0, 3]);
    assert.equal(sys.stats(1).udp.length > 0, true);
  } finally {
    await sys.stop();
  }
  done();
});

test('stop with user sockets still open (one with a datagram queued): their requests then fail, close still frees them, nothing leaks', async () => {
  const { createSocket } = await import('../../lib/udpuser.js');
  const uma = testUma({ ncpus: 8, size: 64 << 20 });
  const before = leakCheck(uma);
  const sys = await startNet({ ncpus: 2, uma });
  const done = () => (sys.mb.drainPacketCache(), before());
  const server = createSocket(sys.layer, { type: 'udp4', host: 1 });
  server.bind(7);
  await once(server, 'listening');
  const client = createSocket(sys.layer, { type: 'udp4', host: 0 });
  const sent = new Promise<Error | null>((res) => client.send(Buffer.from('left in the buffer'), 7, '10.0.0.2', (e: Error | null) => res(e)));
  assert.equal(await sent, null);
  await sys.stop(); // sockets still open; the server's buffer may hold the datagram
  const late = await new Promise<Error | null>((res) => client.send(Buffer.from('late'), 7, '10.0.0.2', (e: Error | null) => res(e)));
  assert.ok(late !== null, 'a send after stop fails');
  for (const s of [client, server]) {
    s.on('error', () => {});
    s.close();
    await s.settled();
  }
  done();
});
