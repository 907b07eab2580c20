// The stack on the MP core: two hosts, each with a stack instance per CPU
// worker, joined by the cross-CPU link (frames travel by handle to the CPU
// their flow hashes to). A UDP echo server bound on every CPU answers a load
// generator on every CPU whose connected socket sits on the CPU its replies
// hash to. Every request is answered, frames really cross CPUs, and no zone
// leaks after the machine stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { leakCheck, testUma } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { NET_ECHO_BIND, NET_LOADGEN, NET_QUIESCE, NET_SETUP, NET_STATS, portForCpu } from '../../net/mpnet.js';
import { rssCpu, toeplitz4, useRssKey } from '../../net/rss.js';

const HANDLERS = fileURLToPath(new URL('../../net/mpnet.js', import.meta.url));
const IP0 = 0x0a000001;
const IP1 = 0x0a000002;

test('per-CPU port choice puts a connected socket on the CPU its replies hash to', () => {
  // Microsoft's key: the two directions of a flow hash apart, so requests can be sent to another CPU.
  const release = useRssKey('microsoft');
  try {
    for (let n = 1; n <= 4; n++) {
      for (let cpu = 0; cpu < n; cpu++) {
        const p = portForCpu(IP0, IP1, 7, cpu, n, cpu * 31);
        assert.ok(p >= 49152);
        assert.equal(rssCpu(toeplitz4(IP1, IP0, 7, p), n), cpu);
        const q = portForCpu(IP0, IP1, 7, cpu, n, cpu * 31, (cpu + 1) % n);
        assert.equal(rssCpu(toeplitz4(IP1, IP0, 7, q), n), cpu);
        assert.equal(rssCpu(toeplitz4(IP0, IP1, q, 7), n), (cpu + 1) % n);
      }
    }
  } finally {
    release();
  }
});

test('UDP echo across CPUs: servers on every CPU, one client per CPU', async () => {
  const ncpus = 2;
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const mb = Mbufs.create(uma);
  // Microsoft's key, so a client's requests can land on the other CPU (symmetric: never).
  const m = await Machine.start({ uma, ncpus, handlers: [HANDLERS], spinUs: 0, rss: 'microsoft' });
  try {
    for (let c = 0; c < ncpus; c++) assert.deepEqual(await m.call(c, NET_SETUP, [IP0, IP1]), [0]);
    for (let c = 0; c < ncpus; c++) assert.deepEqual(await m.call(c, NET_ECHO_BIND, [1, 7]), [0]);
    const COUNT = 300;
    const runs = await Promise.all(Array.from({ length: ncpus }, (_, c) => m.call(c, NET_LOADGEN, [0, IP1, 7, COUNT, 8, 64, (c + 1) % ncpus], 4)));
    for (const [err, replies, , lport, misses] of runs) {
      assert.equal(err, 0);
      assert.equal(replies, COUNT, `client on port ${lport} got ${replies} of ${COUNT}`);
      assert.equal(misses, 0, 'a reply was delivered to another socket on the client CPU');
    }
    // Servers on every CPU answered, and frames crossed between CPUs.
    let served = 0;
    let crossed = 0;
    const perCpu: number[] = [];
    for (let c = 0; c < ncpus; c++) {
      const [, delivered, , fromOthers] = await m.call(c, NET_STATS, [1], 4);
      perCpu.push(delivered);
      served += delivered;
      crossed += fromOthers;
    }
    assert.equal(served, COUNT * ncpus);
    assert.ok(perCpu.every((x) => x > 0), `a CPU served nothing: ${perCpu}`);
    assert.ok(crossed > 0, 'no frame crossed CPUs');
    // A datagram that fragments: 2-tuple hashing brings every fragment to one CPU.
    const [e2, r2] = await m.call(0, NET_LOADGEN, [0, IP1, 7, 5, 1, 6000, -1], 1);
    assert.deepEqual([e2, r2], [0, 5]);
    for (let c = 0; c < ncpus; c++) await m.call(c, NET_QUIESCE);
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    await m.stop();
  }
  mb.drainPacketCache();
  done();
});
