/**
 * net.inet.tcp.* on the worker CPUs (netinet/tcp_tunables_shared.ts): the
 * values are arena words, so one write in the main thread's tree
 * (sys.sysctl) is what TCP on every CPU reads at its next use. Observed as
 * behaviour on both CPUs: the congestion control new connections get
 * (net.inet.tcp.cc.algorithm), and whether a lone segment's ACK waits for
 * the delayed-ACK timer (net.inet.tcp.delayed_ack, counted per CPU).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mpSys, until } from './mpsys.js';
import { connect, createServer, MpTcp, type MpSocket } from '../../lib/netmp.js';
import { SYSCTL_EINVAL } from '../../kern/sysctl/sysctl.js';

test('net.inet.tcp.* set in the main thread is what TCP on every CPU uses', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  const { a, b, c } = m;
  const t = m.sys.sysctl;
  const accepted: MpSocket[] = [];
  const received = new Map<MpSocket, number>();
  const srv = createServer({ stack: b }, (s) => {
    accepted.push(s);
    received.set(s, 0);
    s.on('data', (d: Buffer) => received.set(s, received.get(s)! + d.length));
  });
  srv.listen(7);
  await once(srv, 'listening');
  const clients: MpSocket[] = [];
  const open = async (): Promise<[MpSocket, MpSocket][]> => {
    const n0 = accepted.length;
    const cs = [connect({ stack: a, host: '10.0.1.2', port: 7, cpu: 0 }), connect({ stack: c, host: '10.0.0.2', port: 7, cpu: 1 })];
    clients.push(...cs);
    await Promise.all(cs.map((s) => once(s, 'connect')));
    assert.ok(await until(() => accepted.length === n0 + 2));
    return cs.map((s) => [s, accepted.slice(n0).find((x) => x.remotePort === s.localPort)!]);
  };
  const tcpB = MpTcp.of(b);
  const delacks = async (cpu: number) => (await tcpB.stats(cpu)).delack;

  try {
    assert.equal(t.get('net.inet.tcp.cc.algorithm'), 'cubic');
    assert.equal(t.get('net.inet.tcp.delayed_ack'), 1);
    assert.throws(() => t.set('net.inet.tcp.cc.algorithm', 'bbr'), { code: SYSCTL_EINVAL });
    assert.throws(() => t.set('net.inet.tcp.mssdflt', 10), { code: SYSCTL_EINVAL }, 'ranges are FreeBSD-like');

    // The default algorithm, for connections made after the write, on both CPUs.
    t.set('net.inet.tcp.cc.algorithm', 'newreno');
    const p1 = await open();
    assert.deepEqual(p1.map(([s]) => s.ownerCpu).sort(), [0, 1]);
    for (const [s, srvSide] of p1) {
      assert.equal(await s.getCongestion(), 'newreno', `client on cpu${s.ownerCpu}`);
      // An accepted connection inherits the listener's (tcp_newtcpcb with the listening tcpcb).
      assert.equal(await srvSide.getCongestion(), 'cubic', `server on cpu${srvSide.ownerCpu}: the listener's algorithm`);
    }
    t.set('net.inet.tcp.cc.algorithm', 'cubic');
    const p2 = await open();
    for (const [s, srvSide] of p2) {
      assert.equal(await s.getCongestion(), 'cubic');
      assert.equal(await srvSide.getCongestion(), 'cubic');
    }
    for (const [s] of p1) assert.equal(await s.getCongestion(), 'newreno', 'an existing connection keeps its algorithm');

    // A lone 100-byte segment: its ACK waits for the delayed-ACK timer, or goes at once.
    for (const [s, srvSide] of p2) {
      const cpu = srvSide.ownerCpu;
      for (const on of [1, 0]) {
        t.set('net.inet.tcp.delayed_ack', on);
        const d0 = await delacks(cpu);
        const got = received.get(srvSide)!;
        s.write(Buffer.alloc(100, 1));
        assert.ok(await until(() => received.get(srvSide) === got + 100));
        if (on === 1) assert.ok(await until(async () => (await delacks(cpu)) > d0, 5000), `cpu${cpu}: the delayed-ACK timer sent the ACK`);
        else {
          // The client's data is acknowledged (nothing left in flight) with no delayed ACK.
          await new Promise((r) => setTimeout(r, 300));
          assert.equal(await delacks(cpu), d0, `cpu${cpu}: delayed_ack=0 acks at once`);
        }
      }
    }
  } finally {
    t.set('net.inet.tcp.delayed_ack', 1);
    t.set('net.inet.tcp.cc.algorithm', 'cubic');
    for (const s of [...clients, ...accepted]) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
    await srv.settled();
    for (const s of [...clients, ...accepted]) await s.settled();
    await m.stop();
  }
});
