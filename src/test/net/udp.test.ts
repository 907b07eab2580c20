// UDP over the shared PCB module and the one socket record, on a manual
// clock (one stack talking to its own address, driven by
// td.runUntilIdle(): no sleeps, no event-loop turns needed for delivery):
// datagrams land straight in the socket's receive ring, the receive limit
// (net.inet.udp.recvspace / SO_RCVBUF) drops and counts, ephemeral ports
// follow the portrange sysctls, SO_REUSEPORT_LB shares a port, and errors
// carry Node's code / errno / syscall / address / port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakCheck } from '../helpers.js';
import { finish, testNet, type Net } from './harness.js';
import { createSocket, type Socket } from '../../lib/dgram.js';
import { Stack } from '../../netinet/stack.js';
import { Ifnet } from '../../net/if.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';
import { statObject, UDP_DESC } from '../../netinet/stats.js';
import { ErrnoError } from '../../kern/errno.js';

/** The host's own address: datagrams to it loop through the stack's poll hook (the thread's pass). */
const LO = 0x0a000001;
const LOS = '10.0.0.1';

function host(net: Net): { st: Stack; td: LocalThread; sysctl(name: string, v?: number): number } {
  const td = LocalThread.manual();
  const st = new Stack(net.mb, { name: 'lo', thread: td });
  st.addInterface(new Ifnet(net.mb, 'xl0', 0x0200_0000_0001, 1500), LOS, 24);
  const nodes = st.sysctlNodes();
  return {
    st,
    td,
    sysctl(name, v) {
      const n = nodes.find((x) => x.name === name);
      assert.ok(n, name);
      if (v !== undefined) n.set!(v);
      return n.get() as number;
    },
  };
}

const udp = (st: Stack) => statObject(UDP_DESC, st.stats.udp);

test('a dgram echo on the manual clock: delivered by the thread pass alone, straight from the receive ring', () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const { st, td } = host(net);
  const srv = createSocket(st, 'udp4', (m, r) => srv.send(m, r.port, r.address));
  srv.bind(5300, LOS);
  const cli = createSocket(st, 'udp4');
  const got: string[] = [];
  cli.on('message', (m, r) => got.push(`${m}@${r.address}:${r.port === 5300}`));
  for (let i = 0; i < 20; i++) cli.send(`q${i}`, 5300, LOS);
  assert.equal(got.length, 0, 'nothing before the thread runs');
  td.runUntilIdle();
  assert.equal(got.length, 20, 'every echo arrived within the passes, no microtask or timer involved');
  assert.deepEqual(got.slice(0, 3), ['q0@10.0.0.1:true', 'q1@10.0.0.1:true', 'q2@10.0.0.1:true']);
  assert.equal(udp(st).delivered, 40);
  assert.equal(udp(st).fullsock, 0);
  srv.close();
  cli.close();
  st.close();
  finish(net, done);
});

test('the receive limit: net.inet.udp.recvspace bounds what a socket queues, the rest is dropped and counted (udps_fullsock)', () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const { st, td, sysctl } = host(net);
  sysctl('net.inet.udp.recvspace', 1000);
  const rx = st.udp.attach();
  assert.equal(st.udp.bind(rx, 0, 9000), 0);
  assert.equal(st.udp.sbs.hiwat(rx.rcv), 1000);
  const tx = st.udp.attach();
  const data = new Uint8Array(300).fill(7);
  for (let i = 0; i < 10; i++) assert.equal(st.udp.output(tx, data, 0, 300, LO, 9000), 0);
  td.runUntilIdle();
  assert.equal(rx.queued, 3, '3 x 300 bytes fit in 1000');
  assert.equal(udp(st).fullsock, 7);
  assert.equal(udp(st).delivered, 3, 'delivered counts only what was queued');
  assert.equal(rx.drops, 7);
  // Reading makes room again.
  for (let m = rx.dequeue(); m !== 0; m = rx.dequeue()) {
    assert.equal(rx.lastAddr, LO);
    assert.equal(rx.lastPort, tx.lport);
    assert.equal(rx.lastLen, 300);
    net.mb.m_freem(m);
  }
  for (let i = 0; i < 3; i++) st.udp.output(tx, data, 0, 300, LO, 9000);
  td.runUntilIdle();
  assert.equal(rx.queued, 3);
  assert.equal(udp(st).fullsock, 7);
  // SO_RCVBUF on a dgram socket: its own limit.
  const s = createSocket(st, { type: 'udp4', recvBufferSize: 650 });
  assert.equal(s.getRecvBufferSize(), 650);
  let n = 0;
  s.on('message', () => n++);
  s.bind(9001, LOS);
  for (let i = 0; i < 5; i++) st.udp.output(tx, data, 0, 300, LO, 9001);
  td.runUntilIdle();
  assert.equal(n, 2);
  assert.equal(s.drops, 3);
  assert.throws(() => s.setRecvBufferSize(0), { code: 'EINVAL', syscall: 'setsockopt' });
  assert.throws(() => s.setRecvBufferSize(2 << 20), { code: 'ENOBUFS' }, 'above sb_max_adj');
  s.close();
  st.udp.detach(rx);
  st.udp.detach(tx);
  sysctl('net.inet.udp.recvspace', 42080);
  st.close();
  finish(net, done);
});

test('SO_SNDBUF bounds the datagram size (EMSGSIZE), as sosend_dgram', () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const { st, td } = host(net);
  const s = createSocket(st, { type: 'udp4', sendBufferSize: 100 });
  assert.equal(s.getSendBufferSize(), 100);
  const errs: unknown[] = [];
  s.send(Buffer.alloc(101), 9, LOS, (e: Error | null) => errs.push(e));
  s.send(Buffer.alloc(100), 9, LOS, (e: Error | null) => errs.push(e));
  td.runUntilIdle();
  return new Promise<void>((res) =>
    process.nextTick(() => {
      assert.equal((errs[0] as ErrnoError).code, 'EMSGSIZE');
      assert.equal(errs[1], null);
      s.close();
      st.close();
      finish(net, done);
      res();
    }),
  );
});

test('ephemeral ports follow net.inet.ip.portrange.*; a used-up range is EADDRNOTAVAIL with Node\'s error shape', async () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const { st, sysctl } = host(net);
  sysctl('net.inet.ip.portrange.first', 50000);
  sysctl('net.inet.ip.portrange.last', 50001);
  assert.equal(sysctl('net.inet.ip.portrange.randomized'), 1);
  const a = createSocket(st, 'udp4').bind(0);
  const b = createSocket(st, 'udp4').bind(0);
  assert.deepEqual([a.address().port, b.address().port].sort(), [50000, 50001]);
  const c = createSocket(st, 'udp4');
  c.bind(0);
  const [e] = (await new Promise((res) => c.once('error', (x) => res([x])))) as [ErrnoError];
  assert.ok(e instanceof ErrnoError);
  assert.equal(e.code, 'EADDRNOTAVAIL');
  assert.equal(e.errno, 49);
  assert.equal(e.syscall, 'bind');
  assert.equal(e.address, '0.0.0.0');
  assert.equal(e.port, 0);
  assert.equal(e.message, 'bind EADDRNOTAVAIL 0.0.0.0:0');
  // Sequential when not randomized.
  sysctl('net.inet.ip.portrange.randomized', 0);
  sysctl('net.inet.ip.portrange.first', 50010);
  sysctl('net.inet.ip.portrange.last', 50020);
  const seq = [0, 1, 2].map(() => createSocket(st, 'udp4').bind(0) as Socket);
  assert.deepEqual(
    seq.map((s) => s.address().port),
    [50010, 50011, 50012],
  );
  // A port in use: EADDRINUSE with the address and port of the request.
  const d = createSocket(st, 'udp4');
  d.bind(50011, LOS);
  const [e2] = (await new Promise((res) => d.once('error', (x) => res([x])))) as [ErrnoError];
  assert.equal(e2.code, 'EADDRINUSE');
  assert.equal(e2.message, 'bind EADDRINUSE 10.0.0.1:50011');
  sysctl('net.inet.ip.portrange.randomized', 1);
  sysctl('net.inet.ip.portrange.first', 49152);
  sysctl('net.inet.ip.portrange.last', 65535);
  for (const s of [a, b, c, d, ...seq]) s.close();
  st.close();
  finish(net, done);
});

test('reuseAddr / reusePort (SO_REUSEADDR / SO_REUSEPORT_LB): two servers share a port, flows spread over both', () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const { st, td } = host(net);
  const counts = [0, 0];
  const srvs = [0, 1].map((i) => {
    const s = createSocket(st, { type: 'udp4', reusePort: true });
    s.on('message', () => counts[i]++);
    s.bind(7000);
    return s;
  });
  const plain = createSocket(st, 'udp4');
  const errs: string[] = [];
  plain.on('error', (e: ErrnoError) => errs.push(e.code));
  plain.bind(7000);
  const clients = Array.from({ length: 24 }, () => createSocket(st, 'udp4'));
  for (const c of clients) for (let k = 0; k < 3; k++) c.send('x', 7000, LOS);
  td.runUntilIdle();
  assert.equal(counts[0] + counts[1], 72);
  assert.ok(counts[0] > 0 && counts[1] > 0, `both members served: ${counts}`);
  assert.equal(counts[0] % 3, 0, 'a flow always goes to the same member');
  // SO_REUSEADDR: a specific address beside the wildcard group.
  const spec = createSocket(st, { type: 'udp4', reuseAddr: true });
  let specN = 0;
  spec.on('message', () => specN++);
  spec.bind(7000, LOS);
  clients[0].send('y', 7000, LOS);
  td.runUntilIdle();
  return new Promise<void>((res) =>
    process.nextTick(() => {
      assert.deepEqual(errs, ['EADDRINUSE'], 'a socket without the option cannot join');
      assert.equal(specN, 0, 'as FreeBSD: LB groups are searched before the wildcard list');
      for (const s of [...srvs, plain, spec, ...clients]) s.close();
      st.close();
      finish(net, done);
      res();
    }),
  );
});

test('ICMP port unreachable: a connected socket gets so_error ECONNREFUSED once, through the record', async () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const { st, td } = host(net);
  const s = createSocket(st, 'udp4');
  const errs: ErrnoError[] = [];
  s.on('error', (e: ErrnoError) => errs.push(e));
  s.connect(9, LOS);
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.send('knock');
  td.runUntilIdle();
  assert.equal(errs.length, 1);
  assert.equal(errs[0].code, 'ECONNREFUSED');
  assert.equal(errs[0].errno, 61);
  assert.equal(errs[0].syscall, 'recvmsg');
  td.runUntilIdle();
  assert.equal(errs.length, 1);
  s.close();
  st.close();
  finish(net, done);
});
