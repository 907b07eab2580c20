// Two stacks on an in-memory link: ARP, UDP both ways (with fragmentation),
// ICMP echo and port unreachable, loopback, counters, and no leaked mbufs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakCheck } from '../helpers.js';
import { finish, pair, testNet, until, warm } from './harness.js';
import { createSocket } from '../../lib/dgram.js';
import { statObject, UDP_DESC, IP_DESC, ICMP_DESC, ARP_DESC } from '../../netinet/stats.js';
import { IFC_IPACKETS, IFC_OPACKETS, loopbackIf } from '../../net/if.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';
import { Stack } from '../../netinet/stack.js';
import { ipFromString } from '../../wire/ipv4.js';

test('UDP echo between two stacks, small and fragmented datagrams', async () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const p = pair(net);
  const server = createSocket(p.b, { type: 'udp4', recvBufferSize: 1 << 20 });
  server.on('message', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
  await new Promise<void>((r) => server.bind(5300, r));
  await warm(p);
  const client = createSocket(p.a, { type: 'udp4', recvBufferSize: 1 << 20 });
  const got: Buffer[] = [];
  client.on('message', (m) => got.push(m));
  const sizes = [0, 1, 100, 1472, 1473, 3000, 8000, 20000, 65507];
  const sent: Buffer[] = sizes.map((n, i) => Buffer.from(Array.from({ length: n }, (_, k) => (k * 7 + i) & 0xff)));
  for (const b of sent) client.send(b, 5300, '10.0.0.2');
  await until(() => got.length === sent.length, 5000, 'echoes');
  const bySize = new Map(got.map((g) => [g.length, g]));
  for (const s of sent) assert.deepEqual(bySize.get(s.length), s, `datagram of ${s.length} bytes`);
  const ua = statObject(UDP_DESC, p.a.stats.udp);
  const ub = statObject(UDP_DESC, p.b.stats.udp);
  assert.equal(ua.opackets, sizes.length);
  assert.equal(ub.delivered, sizes.length);
  assert.equal(ua.delivered, sizes.length);
  const ipa = statObject(IP_DESC, p.a.stats.ip);
  assert.ok(ipa.fragmented >= 4 && ipa.reassembled >= 4, JSON.stringify(ipa));
  assert.equal(statObject(ARP_DESC, p.a.stats.arp).txrequests >= 1, true);
  assert.equal(p.a.arp.lookup(p.ifa, ipFromString('10.0.0.2')), 0x0200_0000_000b);
  assert.ok(p.ifa.counters[0] > 0 && p.ifa.counters[4] > 0);
  assert.match(p.a.netstatS(), /datagrams output/);
  client.close();
  server.close();
  await p.link.idle();
  p.close();
  finish(net, done);
});

test('connected sockets, port unreachable, ICMP echo', async () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const p = pair(net);
  // ICMP echo with a reply, and a large one that fragments.
  const replies: number[] = [];
  p.a.icmp.onEchoReply = (_src, _id, seq, len) => replies.push(seq * 100000 + len);
  assert.equal(p.a.icmp.echoRequest(ipFromString('10.0.0.2'), 7, 1, 56), 0);
  assert.equal(p.a.icmp.echoRequest(ipFromString('10.0.0.2'), 7, 2, 4000), 0);
  await until(() => replies.length === 2, 3000, 'echo replies');
  assert.deepEqual(replies.sort(), [100056, 204000]);
  // Closed port: the sender gets ICMP port unreachable.
  const c = createSocket(p.a, 'udp4');
  c.send('anyone?', 9, '10.0.0.2');
  await until(() => statObject(ICMP_DESC, p.a.stats.icmp).inhist_unreach === 1, 3000, 'port unreachable');
  assert.equal(statObject(UDP_DESC, p.b.stats.udp).noport, 1);
  assert.equal(statObject(ICMP_DESC, p.b.stats.icmp).outhist_unreach, 1);
  // Connected socket only hears its peer.
  const srv = createSocket(p.b, 'udp4');
  await new Promise<void>((r) => srv.bind(7000, '10.0.0.2', r));
  const conn = createSocket(p.a, 'udp4');
  await new Promise<void>((r) => conn.connect(7000, '10.0.0.2', r));
  assert.deepEqual(conn.remoteAddress(), { address: '10.0.0.2', family: 'IPv4', port: 7000 });
  const heard: string[] = [];
  conn.on('message', (m) => heard.push(m.toString()));
  srv.on('message', (m, r) => srv.send(Buffer.from('re:' + m), r.port, r.address));
  conn.send('hi');
  const stranger = createSocket(p.b, 'udp4');
  stranger.send('spam', conn.address().port, '10.0.0.1');
  await until(() => heard.length === 1, 3000, 'connected reply');
  await p.link.idle();
  assert.deepEqual(heard, ['re:hi']);
  // Port in use.
  const dup = createSocket(p.b, 'udp4');
  const err = await new Promise<Error>((r) => dup.on('error', r).bind(7000, '10.0.0.2'));
  assert.equal((err as Error & { code: string }).code, 'EADDRINUSE');
  for (const s of [c, srv, conn, stranger, dup]) s.close();
  await p.link.idle();
  p.close();
  finish(net, done);
});

test('loopback interface: a stack talks to itself (manual clock: exact frame counts, close events delivered)', async () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const td = LocalThread.manual();
  const st = new Stack(net.mb, { name: 'lo', thread: td });
  const lo = st.addInterface(loopbackIf(net.mb), '127.0.0.1', 8);
  const srv = createSocket(st, 'udp4', (m, r) => srv.send(m, r.port, r.address));
  srv.bind(53, '127.0.0.1');
  const cli = createSocket(st, 'udp4');
  const got: Buffer[] = [];
  cli.on('message', (m) => got.push(m));
  cli.send(Buffer.alloc(30000, 0x5a), 53, '127.0.0.1');
  cli.send('short', 53, '127.0.0.1');
  // The socket layer wakes readers from a microtask: let it run between passes.
  for (let i = 0; i < 4; i++) {
    td.runUntilIdle();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(got.length, 2);
  assert.equal(got.find((g) => g.length === 30000)?.every((b) => b === 0x5a), true);
  assert.equal(got.find((g) => g.length === 5)?.toString(), 'short');
  // 30000 bytes over lo0's 16384-byte MTU: 2 fragments, plus the short one; each way.
  assert.equal(lo.counters[IFC_OPACKETS], 6);
  assert.equal(lo.counters[IFC_IPACKETS], 6);
  const closed: string[] = [];
  srv.on('close', () => closed.push('srv'));
  cli.on('close', () => closed.push('cli'));
  srv.close();
  cli.close();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(closed.sort(), ['cli', 'srv'], 'both sockets emitted close');
  assert.equal(st.udp.all().length, 0, 'no PCB left');
  st.close();
  finish(net, done);
});
