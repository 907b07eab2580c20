/**
 * TCP by the 4-tuple on 2 worker CPUs (netisr.ts, vnet.ts's port
 * partitioning, lib/netmp.ts): connections of ONE address pair spread over
 * the CPUs; every PCB is in the table of the CPU its 4-tuple hashes to; the
 * listener has a replica on every CPU and each CPU's syncache makes the
 * connections whose SYN hashed to it (per-CPU accepts / connects counters);
 * every accepted connection reaches the server's one 'connection' stream;
 * kern.ipc.soacceptqueue set in the main thread bounds each CPU's accept
 * queue (listen queue overflows counted on the CPUs).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mpPair, mpSys, until } from './mpsys.js';
import type { System, NetStack } from '../../lib/topology.js';
import { NET_STATS } from '../../net/mpnet.js';
import { connect, createServer, MpTcp, type MpSocket } from '../../lib/netmp.js';
import { rssFlowCpu } from '../../net/rss.js';
import { toAddr } from '../../netinet/stack.js';
import { controlView } from '../../lib/ctl/adapter.js';
import { SOL_SOCKET, SO_REUSEADDR } from '../../netinet/tcp_api.js';
import { NET_TCP, TCP_ACCEPT, TCP_BIND, TCP_CLOSE, TCP_LISTEN, TCP_SETSOCKOPT, TCP_SOCKET } from '../../lib/tcpcpu.js';

const N = 16;
const flowOf = (s: MpSocket) => rssFlowCpu(toAddr(s.remoteAddress!), toAddr(s.localAddress!), s.remotePort!, s.localPort!, 2);

test('one address pair, 16 connections: spread over both CPUs by 4-tuple, every segment on the owning CPU', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  const accepted: MpSocket[] = [];
  const srv = createServer({ stack: m.b }, (s) => {
    accepted.push(s);
    s.on('data', (d: Buffer) => s.write(d));
  });
  srv.listen(7);
  await once(srv, 'listening');
  const clients: MpSocket[] = [];
  const echoed = new Map<MpSocket, number>();
  for (let i = 0; i < N; i++) {
    // Half opened on a chosen CPU, half round robin: all from 10.0.1.1 to 10.0.1.2:7.
    const s = connect({ stack: m.a, host: '10.0.1.2', port: 7, ...(i % 2 === 0 ? { cpu: (i >> 1) % 2 } : {}) });
    echoed.set(s, 0);
    s.on('data', (d: Buffer) => echoed.set(s, echoed.get(s)! + d.length));
    clients.push(s);
  }
  await Promise.all(clients.map((s) => once(s, 'connect')));
  for (const s of clients) s.write(Buffer.alloc(10_000, 3));
  assert.ok(await until(() => [...echoed.values()].every((n) => n === 10_000), 30_000), 'every connection echoed');
  try {
    assert.equal(accepted.length, N, "one accept stream: every CPU's accepted connections reach 'connection'");
    for (let i = 0; i < N; i += 2) assert.equal(clients[i].ownerCpu, (i >> 1) % 2, 'connect({cpu}) opened there');
    for (const s of [...clients, ...accepted]) assert.equal(s.ownerCpu, flowOf(s), 'on the CPU of its 4-tuple');
    const perCpu = [0, 1].map((c) => clients.filter((s) => s.ownerCpu === c).length);
    assert.ok(perCpu.every((n) => n > 0), `clients on both CPUs: ${perCpu}`);
    const srvCpu = [0, 1].map((c) => accepted.filter((s) => s.ownerCpu === c).length);
    assert.ok(srvCpu.every((n) => n > 0), `accepted on both CPUs: ${srvCpu}`);

    // Every PCB is in the table of its CPU; the listener on every CPU.
    const rows = await controlView(m.sys).tcpConns();
    for (const r of rows.filter((x) => x.faddr !== 0)) assert.equal(r.cpu, rssFlowCpu(r.faddr, r.laddr, r.fport, r.lport, 2), `PCB ${r.lport}->${r.fport} on cpu${r.cpu}`);
    assert.deepEqual(rows.filter((x) => x.faddr === 0 && x.lport === 7).map((x) => x.cpu).sort(), [0, 1], 'a listener replica on each CPU');
    // Per-CPU counters: each CPU's syncache made exactly its connections; each CPU connected its clients.
    const ta = MpTcp.of(m.a);
    const tb = MpTcp.of(m.b);
    for (const c of [0, 1]) {
      const sb = await tb.stats(c);
      const sa = await ta.stats(c);
      assert.equal(sb.accepts, srvCpu[c], `cpu${c}: accepts`);
      assert.equal(sa.connects, perCpu[c], `cpu${c}: client connects`);
      assert.ok(sb.rcvpack > 0 && sa.rcvpack > 0, `cpu${c}: data received there`);
      assert.equal(sb.rcvbadsum + sb.rcvshort, 0);
    }
  } finally {
    for (const s of [...clients, ...accepted]) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
    await srv.settled();
    for (const s of [...clients, ...accepted]) await s.settled();
    await m.stop();
  }
});

test('kern.ipc.soacceptqueue set in the main thread bounds each CPU accept queue; overflows are counted there', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  const t = m.sys.sysctl;
  const tb = MpTcp.of(m.b);
  const op = async (cpu: number, o: number, id: number, args: number[] = []) => (await m.sys.layer!.request(cpu, NET_TCP, [o, m.b.index, id, ...args], undefined, 5)).res;
  t.set('kern.ipc.soacceptqueue', 2);
  const lids: number[] = [];
  const clients: MpSocket[] = [];
  const got: number[][] = [[], []];
  try {
    // A listener replica on each CPU with backlog 100 (capped to 2) that nobody accepts from.
    for (const c of [0, 1]) {
      const id = (await op(c, TCP_SOCKET, 0))[0];
      lids.push(id);
      await op(c, TCP_SETSOCKOPT, id, [SOL_SOCKET, SO_REUSEADDR, 1, 0]);
      assert.equal((await op(c, TCP_BIND, id, [0, 8000]))[0], 0);
      assert.equal((await op(c, TCP_LISTEN, id, [100]))[0], 0);
    }
    for (let i = 0; i < 12; i++) {
      const s = connect({ stack: m.a, host: '10.0.1.2', port: 8000 });
      s.on('error', () => {});
      clients.push(s);
    }
    const drops = async () => (await tb.stats(0)).listendrop + (await tb.stats(1)).listendrop;
    assert.ok(await until(async () => (await drops()) > 0, 20_000), 'listen queue overflows counted on the CPUs');
    for (const c of [0, 1]) {
      for (;;) {
        const r = await op(c, TCP_ACCEPT, lids[c]);
        if (r[0] < 0) break;
        got[c].push(r[0]);
      }
      assert.ok(got[c].length <= 2, `cpu${c}: at most kern.ipc.soacceptqueue queued, got ${got[c].length}`);
    }
    assert.ok(got[0].length + got[1].length >= 1 && got[0].length + got[1].length <= 4);
  } finally {
    t.set('kern.ipc.soacceptqueue', 128);
    for (const s of clients) s.destroy();
    for (const c of [0, 1]) for (const id of got[c]) await op(c, TCP_CLOSE, id);
    for (let c = 0; c < lids.length; c++) await op(c, TCP_CLOSE, lids[c]);
    for (const s of clients) await s.settled();
    await m.stop();
  }
});

/** Frames each CPU of `stack` was handed by the other CPU (netisr's handoffs), summed. */
async function handoffs(sys: System, stack: NetStack): Promise<number> {
  const r = await Promise.all([0, 1].map((c) => sys.machine!.call(c, NET_STATS, [stack.index], 4)));
  return r.reduce((n, x) => n + x[3], 0);
}

/** Echo 20 KB over each of `clients` (connected to an echo server on b) and wait for all of it. */
async function echoAll(clients: MpSocket[]): Promise<void> {
  const got = new Map<MpSocket, number>(clients.map((s) => [s, 0]));
  for (const s of clients) s.on('data', (d: Buffer) => got.set(s, got.get(s)! + d.length));
  await Promise.all(clients.map((s) => once(s, 'connect')));
  for (const s of clients) s.write(Buffer.alloc(20_000, 5));
  assert.ok(await until(() => [...got.values()].every((n) => n === 20_000), 30_000), 'every connection echoed');
}

for (const rss of ['symmetric', 'microsoft'] as const) {
  test(`RSS key ${rss}: ${rss === 'symmetric' ? 'both ends of every connection on one CPU, no segment crosses CPUs' : 'ends apart where the hash says, segments handed across'}`, { timeout: 60_000 }, async () => {
    const { sys, a, b, stop } = await mpPair({ link: { a: '10.0.1.1/24', b: '10.0.1.2/24' }, system: rss === 'microsoft' ? { rss } : {} });
    assert.equal(sys.sysctl.get('net.inet.rss.key'), rss === 'symmetric' ? '6d5a'.repeat(20) : '6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa');
    assert.throws(() => sys.sysctl.set('net.inet.rss.key', '00'), 'read-only while the machine runs');
    const accepted: MpSocket[] = [];
    const srv = createServer({ stack: b }, (s) => {
      accepted.push(s);
      s.on('data', (d: Buffer) => s.write(d));
    });
    srv.listen(7);
    await once(srv, 'listening');
    const A = toAddr('10.0.1.1');
    const B = toAddr('10.0.1.2');
    // With Microsoft's key, local ports chosen so that 4 connections have their ends on different CPUs.
    const apart = (p: number) => rssFlowCpu(B, A, 7, p, 2) !== rssFlowCpu(A, B, p, 7, 2);
    const ports = rss === 'microsoft' ? Array.from({ length: 4000 }, (_, i) => 20000 + i).filter(apart).slice(0, 4) : [];
    const clients: MpSocket[] = [];
    const before = (await handoffs(sys, a)) + (await handoffs(sys, b));
    try {
      for (let i = 0; i < 8; i++) clients.push(connect({ stack: a, host: '10.0.1.2', port: 7, ...(i < ports.length ? { localPort: ports[i] } : {}) }));
      await echoAll(clients);
      const crossed = (await handoffs(sys, a)) + (await handoffs(sys, b)) - before;
      const peerOf = (c: MpSocket) => accepted.find((s) => s.remotePort === c.localPort)!;
      const split = clients.filter((c) => c.ownerCpu !== peerOf(c).ownerCpu).length;
      if (rss === 'symmetric') {
        assert.equal(split, 0, 'every accepted connection on its client\'s CPU');
        assert.equal(crossed, 0, 'no frame handed between CPUs');
        assert.equal(new Set(clients.map((c) => c.ownerCpu)).size, 2, 'connections still spread over the CPUs');
      } else {
        assert.ok(split >= 4, `${split} connections with their ends on different CPUs`);
        assert.ok(crossed > 4 * 4, `${crossed} frames handed between CPUs`);
      }
    } finally {
      for (const s of [...clients, ...accepted]) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
      await srv.settled();
      for (const s of [...clients, ...accepted]) await s.settled();
      await stop();
    }
  });
}
