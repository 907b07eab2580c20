// UDP on the one socket record with real CPU workers: the receive limit is
// enforced in each CPU's ring of the socket record, the excess is counted
// (udps_fullsock) in the arena, and net.inet.udp.recvspace set from the main
// thread sizes the rings every CPU's pru_attach reserves. A receiver that
// never reads (a record attached and bound by PRU_* messages, no reader)
// makes the counts exact; a node:dgram-shaped socket then shows the same
// limit through SO_RCVBUF by message, and SO_REUSEADDR / bind errors with
// Node's codes across CPUs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { leakCheck, testUma } from '../helpers.js';
import { startNet } from '../../lib/netuser.js';
import { createSocket } from '../../lib/udpuser.js';
import { PRU_ATTACH, PRU_BIND, PRU_CTLOUTPUT, PRU_DETACH, SOCK_DGRAM, SOPT_SET } from '../../kern/socket/protosw.js';
import { SOL_SOCKET, SO_RCVBUF, SO_REUSEADDR } from '../../kern/socket/sockopt.js';
import { IPPROTO_UDP } from '../../wire/ipv4.js';
import { UDPS } from '../../netinet/stats.js';
import { connectedCpu } from '../../netinet/udp_socket.js';

/** Poll until `f` holds (the CPUs work in other threads; 2 ms steps, bounded). */
async function until(f: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!f()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('MP: a socket ring holds at most its SO_RCVBUF; the rest is dropped and counted (udps_fullsock); recvspace sizes new rings', async () => {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await startNet({ ncpus: 2, uma });
  const { layer } = sys;
  const sor = layer.sor;
  try {
    sys.sysctl.set('net.inet.udp.recvspace', 3000);
    // A receiver on host 1 with a ring per CPU that nobody reads.
    const rec = sor.soalloc({ type: SOCK_DGRAM, proto: IPPROTO_UDP, rings: 2, cpu: -1, host: 1, rcvspace: 100000 });
    for (let c = 0; c < 2; c++) {
      const r = await layer.request(c, PRU_ATTACH, [IPPROTO_UDP, 0, rec, 1]);
      assert.equal(r.err, 0);
      assert.equal(layer.sbs.hiwat(sor.rcv(rec, c)), 3000, 'pru_attach reserved net.inet.udp.recvspace');
    }
    const opt = new Uint8Array(Int32Array.of(1200).buffer);
    for (let c = 0; c < 2; c++) {
      assert.equal((await layer.request(c, PRU_CTLOUTPUT, [IPPROTO_UDP, rec, rec, SOPT_SET, SOL_SOCKET, SO_RCVBUF], opt)).err, 0);
      assert.equal((await layer.request(c, PRU_BIND, [IPPROTO_UDP, rec, rec, 0, 6100])).err, 0);
      assert.equal(layer.sbs.hiwat(sor.rcv(rec, c)), 1200);
    }
    const before = sys.stats(1).udp;
    const full0 = before[UDPS.fullsock];
    const del0 = before[UDPS.delivered];
    // One sender: one 4-tuple, so every datagram goes to one CPU's ring.
    const tx = createSocket(layer, { type: 'udp4', host: 0 });
    const N = 20;
    for (let i = 0; i < N; i++) tx.send(Buffer.alloc(500, i), 6100, '10.0.0.2');
    await until(() => sys.stats(1).udp[UDPS.delivered] - del0 + sys.stats(1).udp[UDPS.fullsock] - full0 === N, 5000, 'every datagram delivered or dropped');
    const delivered = sys.stats(1).udp[UDPS.delivered] - del0;
    const full = sys.stats(1).udp[UDPS.fullsock] - full0;
    assert.equal(delivered, 2, '2 x 500 bytes fit in 1200');
    assert.equal(full, N - 2);
    const queued = [0, 1].map((c) => layer.sbs.sbavail(sor.rcv(rec, c)));
    assert.deepEqual(queued.sort(), [0, 1000]);
    for (let c = 0; c < 2; c++) assert.equal((await layer.request(c, PRU_DETACH, [IPPROTO_UDP, rec, rec])).err, 0);
    sor.sofree(rec);
    // The same limit through a dgram socket's SO_RCVBUF (by message to every replica), and it reads.
    const rx = createSocket(layer, { type: 'udp4', host: 1, recvBufferSize: 700 });
    rx.bind(6101);
    await once(rx, 'listening');
    assert.equal(rx.getRecvBufferSize(), 700);
    let got = 0;
    rx.on('message', () => got++);
    for (let i = 0; i < 5; i++) tx.send(Buffer.alloc(300), 6101, '10.0.0.2');
    await until(() => got >= 1 && got + sys.stats(1).udp[UDPS.fullsock] - full0 - full >= 5, 5000, 'the second burst');
    assert.ok(got >= 2, `at least what fits was read: ${got}`);
    rx.close();
    tx.close();
    await rx.settled();
    await tx.settled();
  } finally {
    sys.sysctl.set('net.inet.udp.recvspace', 42080);
    await sys.stop();
  }
  done();
});

test('MP: bind conflicts and SO_REUSEADDR across CPUs carry Node\'s codes; an ephemeral bind finds a port free on every CPU', async () => {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await startNet({ ncpus: 2, uma });
  try {
    const a = createSocket(sys.layer, { type: 'udp4', host: 0 });
    a.bind(7100);
    await once(a, 'listening');
    const b = createSocket(sys.layer, { type: 'udp4', host: 0 });
    b.bind(7100, '10.0.0.1');
    const [e] = (await once(b, 'error')) as [NodeJS.ErrnoException & { address: string; port: number }];
    assert.equal(e.code, 'EADDRINUSE');
    assert.equal(e.errno, 48);
    assert.equal(e.syscall, 'bind');
    assert.equal(e.address, '10.0.0.1');
    assert.equal(e.port, 7100);
    const c = createSocket(sys.layer, { type: 'udp4', host: 0, reuseAddr: true });
    c.bind(7100, '10.0.0.1');
    await once(c, 'listening');
    assert.equal(await c.getsockoptInt(SOL_SOCKET, SO_REUSEADDR), SO_REUSEADDR);
    // Connected sockets hold ports on one CPU each; ephemeral binds still get ports free everywhere.
    const ds = Array.from({ length: 6 }, () => createSocket(sys.layer, { type: 'udp4', host: 0 }));
    for (const d of ds) {
      d.bind(0);
      await once(d, 'listening');
    }
    assert.equal(new Set(ds.map((d) => d.address().port)).size, 6);
    for (const s of [a, b, c, ...ds]) {
      s.close();
      await s.settled();
    }
  } finally {
    await sys.stop();
  }
  done();
});

test('MP: SO_REUSEPORT_LB sockets share a port across CPUs by flow; a move whose insert fails (4-tuple held on the target) is backed out', async () => {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await startNet({ ncpus: 2, uma });
  try {
    const counts = [0, 0];
    const rxs = [0, 1].map((i) => {
      const s = createSocket(sys.layer, { type: 'udp4', host: 1, reusePort: true });
      s.on('message', () => counts[i]++);
      s.bind(7200);
      return s;
    });
    await Promise.all(rxs.map((s) => once(s, 'listening')));
    const txs = Array.from({ length: 16 }, () => createSocket(sys.layer, { type: 'udp4', host: 0 }));
    for (const t of txs) for (let k = 0; k < 2; k++) t.send('x', 7200, '10.0.0.2');
    await until(() => counts[0] + counts[1] === 32, 5000, 'every datagram read');
    assert.ok(counts[0] > 0 && counts[1] > 0, `both group members served: ${counts}`);
    assert.equal(counts[0] % 2, 0, 'a flow stays with its member');
    // Two SO_REUSEPORT sockets on one port connect to one peer: the second 4-tuple is taken.
    // A peer port whose connected PCB lives on CPU 1, so b's select (on CPU 0, where a has no
    // PCB any more) succeeds and only the insert on CPU 1 finds the 4-tuple taken.
    let peerPort = 7300;
    while (connectedCpu(0x0a000001, 7250, 0x0a000002, peerPort, 2) !== 1) peerPort++;
    const a = createSocket(sys.layer, { type: 'udp4', host: 0 });
    await a.setsockoptInt(SOL_SOCKET, 0x0200, 1);
    a.bind(7250);
    await once(a, 'listening');
    const b = createSocket(sys.layer, { type: 'udp4', host: 0 });
    await b.setsockoptInt(SOL_SOCKET, 0x0200, 1);
    b.bind(7250);
    await once(b, 'listening');
    a.connect(peerPort, '10.0.0.2');
    await once(a, 'connect');
    b.connect(peerPort, '10.0.0.2');
    const [e] = (await once(b, 'error')) as [NodeJS.ErrnoException];
    assert.equal(e.code, 'EADDRINUSE');
    assert.equal(e.syscall, 'connect');
    assert.equal(a.cpu, 1);
    assert.equal(b.cpu, -1, 'b stayed unconnected on every CPU');
    assert.deepEqual(b.pcbCpus(), [0, 1]);
    // b still works unconnected, from both CPUs' replicas: sends that leave from each CPU
    // (the CPU the answer would hash to) arrive, and so do datagrams to b on each CPU.
    const before = counts[0] + counts[1];
    const ports = [7200];
    let n = 0;
    const leaving = new Set<number>();
    for (let p = 7201; leaving.size < 2; p++) {
      const c = connectedCpu(0x0a000001, 7250, 0x0a000002, p, 2);
      if (leaving.has(c)) continue;
      leaving.add(c);
      ports.push(p);
    }
    const extra = ports.slice(1).map(() => createSocket(sys.layer, { type: 'udp4', host: 1 }));
    extra.forEach((x, i) => {
      x.on('message', (m: Buffer, r: { port: number }) => {
        n++;
        x.send(m, r.port, '10.0.0.1');
      });
      x.bind(ports[i + 1]);
    });
    await Promise.all(extra.map((x) => once(x, 'listening')));
    let back = 0;
    b.on('message', () => back++);
    for (const p of ports) await new Promise<void>((res, rej) => b.send('after', p, '10.0.0.2', (err: Error | null) => (err ? rej(err) : res())));
    await until(() => counts[0] + counts[1] === before + 1 && n === 2 && back === 2, 5000, 'datagrams from and to the backed-out socket on both CPUs');
    for (const x of extra) {
      x.close();
      await x.settled();
    }
    for (const s of [...rxs, ...txs, a, b]) {
      s.close();
      await s.settled();
    }
  } finally {
    await sys.stop();
  }
  done();
});
