// The topology API on the MP system: real worker CPUs, every stack on every
// CPU, configured by messages to each CPU; frames dispatched to the CPU of
// their flow. UDP across two stacks from flows placed on each CPU, and a
// router between two stacks on the CPUs. No zone leaks after stop().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { leakCheck, testUma } from '../helpers.js';
import { System, parseCidr } from '../../lib/topology.js';
import type { UdpSocket } from '../../lib/udpuser.js';
import { NET_ECHO_BIND, NET_STATS, portForCpu } from '../../net/mpnet.js';
import { statObject, IP_DESC, UDP_DESC } from '../../netinet/stats.js';
import { ArgumentError } from '../../kern/errors.js';
import { IPPROTO_UDP, ipv4Emit } from '../../wire/ipv4.js';
import { udpEmit } from '../../wire/udp.js';

const ip = (s: string): number => parseCidr(s).addr;

async function closeAll(socks: UdpSocket[]): Promise<void> {
  for (const s of socks) {
    s.close();
    await s.settled();
  }
}

test('MP system, 2 CPUs: two stacks, UDP across from a flow on each CPU, every datagram echoed', async () => {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  // Microsoft's key: requests of a flow can land on the other CPU than its replies (symmetric: never).
  const sys = await System.start({ cpus: 2, uma, rss: 'microsoft' });
  const socks: UdpSocket[] = [];
  try {
    const a = sys.addStack('a');
    const b = sys.addStack('b');
    sys.link(a, b, { a: '10.0.0.1/24', b: '10.0.0.2/24' });
    await sys.up();
    const srv = sys.socket(b, 'udp4', (m, r) => srv.send(m, r.port, r.address)) as UdpSocket;
    socks.push(srv);
    srv.bind(7);
    await once(srv, 'listening');
    // One client whose replies hash to each CPU, with requests landing on the other one.
    const replies: string[] = [];
    for (let cpu = 0; cpu < 2; cpu++) {
      const lport = portForCpu(ip('10.0.0.1'), ip('10.0.0.2'), 7, cpu, 2, 100 + cpu * 13, 1 - cpu);
      const c = sys.socket(a, 'udp4', (m) => replies.push(m.toString())) as UdpSocket;
      socks.push(c);
      c.bind(lport);
      await once(c, 'listening');
      for (let k = 0; k < 5; k++) c.send(`cpu${cpu} #${k}`, 7, '10.0.0.2');
    }
    const t0 = Date.now();
    while (replies.length < 10 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(replies.length, 10, `replies: ${replies.join(', ')}`);
    assert.deepEqual([...replies].sort(), ['cpu0 #0', 'cpu0 #1', 'cpu0 #2', 'cpu0 #3', 'cpu0 #4', 'cpu1 #0', 'cpu1 #1', 'cpu1 #2', 'cpu1 #3', 'cpu1 #4']);
    // Each CPU of b served the flow that hashes to it, and frames crossed CPUs both ways.
    const perCpu = await Promise.all([0, 1].map((c) => sys.machine!.call(c, NET_STATS, [b.index], 4)));
    assert.deepEqual(
      perCpu.map((r) => r[1]),
      [5, 5],
      'udp delivered on each CPU of b',
    );
    assert.ok(perCpu.every((r) => r[3] > 0), `frames from other CPUs: ${perCpu.map((r) => r[3])}`);
    assert.equal(statObject(UDP_DESC, b.stats().udp).delivered, 10, 'summed from the arena');
  } finally {
    await closeAll(socks);
    await sys.stop();
  }
  done();
});

test('MP system: a router between two stacks (three stacks, two links, default routes), echo servers on every CPU', async () => {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await System.start({ cpus: 2, uma });
  const socks: UdpSocket[] = [];
  try {
    const a = sys.addStack('a');
    const r = sys.addStack('r', { forwarding: true });
    const b = sys.addStack('b');
    sys.link(a, r, { a: '10.0.1.1/24', b: '10.0.1.254/24' });
    sys.link(r, b, { a: '10.0.2.254/24', b: '10.0.2.1/24' });
    a.setDefaultRoute('10.0.1.254');
    b.setDefaultRoute('10.0.2.254');
    await sys.up();
    for (let c = 0; c < 2; c++) assert.deepEqual(await sys.machine!.call(c, NET_ECHO_BIND, [b.index, 7]), [0]);
    const got: { msg: string; from: string }[] = [];
    const cli = sys.socket(a, 'udp4', (m, ri) => got.push({ msg: m.toString(), from: ri.address })) as UdpSocket;
    socks.push(cli);
    for (let k = 0; k < 4; k++) cli.send(`routed ${k}`, 7, '10.0.2.1');
    const t0 = Date.now();
    while (got.length < 4 && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 5));
    assert.equal(got.length, 4);
    assert.ok(got.every((g) => g.from === '10.0.2.1'));
    assert.equal(statObject(IP_DESC, r.stats().ip).forward, 8, 'four datagrams each way through the router');
    assert.equal(statObject(IP_DESC, a.stats().ip).forward, 0);
    // A configuration the CPUs refuse is an ArgumentError naming it.
    assert.throws(() => a.addRoute('10.9.0.0/16', '192.0.2.1'), ArgumentError);
  } finally {
    await closeAll(socks);
    await sys.stop();
  }
  done();
});

test('MP system on the manual clock: a 50 ms link delay on the CPUs delivers at exactly 50 ms of machine time', async () => {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await System.start({ cpus: 2, uma, clock: 'manual' });
  const socks: UdpSocket[] = [];
  try {
    const a = sys.addStack('a');
    const b = sys.addStack('b');
    sys.link(a, b, { a: { addrs: '10.0.0.1/24', fault: { delayMs: 50 } }, b: '10.0.0.2/24' });
    await sys.up();
    await sys.advance(1); // the announcements (gratuitous ARP) arrive
    const srv = sys.socket(b, 'udp4') as UdpSocket;
    socks.push(srv);
    srv.bind(9);
    await once(srv, 'listening');
    const cli = sys.socket(a, 'udp4') as UdpSocket;
    socks.push(cli);
    const delivered = (): number => statObject(UDP_DESC, b.stats().udp).delivered;
    await new Promise<void>((res, rej) => cli.send('late', 9, '10.0.0.2', (e: Error | null) => (e ? rej(e) : res())));
    const t0 = sys.now();
    await sys.advance(0);
    assert.equal(delivered(), 0);
    await sys.advance(49);
    assert.equal(delivered(), 0, `nothing before 50 ms (t = ${sys.now() - t0})`);
    await sys.advance(1);
    assert.equal(delivered(), 1, 'delivered at 50 ms');
  } finally {
    await closeAll(socks);
    await sys.stop();
  }
  done();
});

/** An IPv4/UDP packet (no link header), checksummed. */
function udpPacket(src: number, dst: number, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const p = new Uint8Array(28 + data.length);
  p.set(data, 28);
  udpEmit(p, 20, sport, dport, 8 + data.length, src, dst, true);
  ipv4Emit(p, 0, 0, p.length, 0x4321, 0, 64, IPPROTO_UDP, src, dst, true);
  return p;
}

test('MP system: a layer-3 user device served by 2 CPUs; flows pushed from JS reach their CPUs, echoes come back through both rings', async () => {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await System.start({ cpus: 2, uma });
  try {
    const st = sys.addStack('vpn');
    const out: Buffer[] = [];
    const tun = st.addUserDevice('tun0', { layer: 3, addrs: '10.7.0.1/24', onFrame: (f) => out.push(f) });
    await sys.up();
    for (let c = 0; c < 2; c++) assert.deepEqual(await sys.machine!.call(c, NET_ECHO_BIND, [st.index, 7]), [0]);
    // One flow whose packets land on each CPU.
    const sports = [0, 1].map((cpu) => portForCpu(ip('10.7.0.1'), ip('10.7.0.2'), 7, cpu, 2, 50 + cpu));
    for (const [i, sp] of sports.entries()) for (let k = 0; k < 3; k++) assert.equal(tun.device!.push(udpPacket(ip('10.7.0.2'), ip('10.7.0.1'), sp, 7, Buffer.from(`f${i} #${k}`))), true);
    const t0 = Date.now();
    while (out.length < 6 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(out.length, 6);
    assert.ok(out.every((p) => p[0] === 0x45));
    assert.deepEqual(out.map((p) => p.subarray(28).toString()).sort(), ['f0 #0', 'f0 #1', 'f0 #2', 'f1 #0', 'f1 #1', 'f1 #2']);
    const served = await Promise.all([0, 1].map((c) => sys.machine!.call(c, NET_STATS, [st.index], 4)));
    assert.deepEqual(served.map((r) => r[1]), [3, 3], 'each CPU served the flow that hashes to it');
    assert.equal(tun.device!.stats.txFrames, 6);
  } finally {
    await sys.stop();
  }
  done();
});
