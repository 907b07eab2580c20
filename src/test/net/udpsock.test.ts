// UDP on the socket layer with real CPU workers: node:dgram-shaped sockets
// in the main thread whose requests are messages to the CPUs owning their
// PCBs and whose datagrams arrive through per-CPU sockbuf rings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { leakCheck, testUma } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { SocketLayer } from '../../kern/socket/socket.js';
import { NET_ECHO_BIND, frameCpu } from '../../net/mpnet.js';
import { rssCpu, toeplitz2 } from '../../net/rss.js';
import { HOST0, HOST1, NET_HANDLERS, formatNetstatAn, netQuiesce, netSetup, pcbList } from '../../lib/netuser.js';
import { connectedCpu } from '../../netinet/udp_socket.js';
import { createSocket, type UdpSocket } from '../../lib/udpuser.js';
import { dnsAnswer, dnsParseAnswer, dnsQuery } from '../../apps/dns.js';
import { UDPS } from '../../netinet/stats.js';

async function withMachine(ncpus: number, fn: (m: Machine, layer: SocketLayer) => Promise<void>): Promise<void> {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const mb = Mbufs.create(uma);
  const m = await Machine.start({ uma, ncpus, handlers: [NET_HANDLERS], spinUs: 0 });
  const layer = new SocketLayer(m.ctx, mb);
  try {
    await netSetup(m);
    await fn(m, layer);
    await netQuiesce(m);
  } finally {
    await m.stop();
  }
  mb.drainPacketCache();
  done();
}

async function closeAll(...ss: UdpSocket[]): Promise<void> {
  for (const s of ss) {
    s.close();
    await s.settled();
  }
}

/** Send `n` requests on a connected socket and wait for n replies. */
async function exchange(s: UdpSocket, n: number): Promise<Buffer[]> {
  const got: Buffer[] = [];
  const all = new Promise<void>((res) => {
    const on = (b: Buffer) => {
      got.push(b);
      if (got.length === n) {
        s.off('message', on);
        res();
      }
    };
    s.on('message', on);
  });
  for (let i = 0; i < n; i++) s.send(Buffer.from(`req ${i}`));
  await all;
  return got;
}

test('main-thread dgram echo server and client on the stack across 2 CPUs; the unconnected server is served by both CPUs', async () => {
  await withMachine(2, async (m, layer) => {
    const srv = createSocket(layer, { type: 'udp4', host: 1 }, (msg, r) => srv.send(msg, r.port, r.address));
    srv.bind(5300);
    await once(srv, 'listening');
    assert.deepEqual(srv.address(), { address: '0.0.0.0', family: 'IPv4', port: 5300 });
    assert.deepEqual(srv.pcbCpus(), [0, 1], 'an unconnected socket has a PCB on every CPU');
    // Clients bound to ports whose requests hash to each server CPU.
    const clients: UdpSocket[] = [];
    for (let want = 0; want < 2; want++) {
      let p = 40000;
      while (connectedCpu(HOST1, 5300, HOST0, p, 2) !== want) p++;
      const c = createSocket(layer, { type: 'udp4', host: 0 });
      c.bind(p);
      c.connect(5300, '10.0.0.2');
      await once(c, 'connect');
      assert.equal(c.address().port, p);
      assert.deepEqual(c.remoteAddress(), { address: '10.0.0.2', family: 'IPv4', port: 5300 });
      clients.push(c);
    }
    for (const c of clients) {
      const got = await exchange(c, 20);
      assert.deepEqual(got.map(String).sort(), Array.from({ length: 20 }, (_, i) => `req ${i}`).sort());
    }
    assert.equal(srv.receivedPerCpu.reduce((a, b) => a + b), 40);
    assert.ok(srv.receivedPerCpu.every((x) => x > 0), `datagrams landed on one CPU only: ${srv.receivedPerCpu}`);
    // netstat -an lists the server on both CPUs and each client on one.
    const rows = await pcbList(layer);
    assert.equal(rows.filter((r) => r.lport === 5300 && r.host === 1).length, 2);
    const text = formatNetstatAn(rows);
    assert.match(text, /udp4 .* \*\.5300 +\*\.\*/);
    assert.match(text, /10\.0\.0\.1\.\d+ +10\.0\.0\.2\.5300/);
    await closeAll(srv, ...clients);
    assert.equal((await pcbList(layer)).filter((r) => r.user).length, 0, 'close detached every PCB');
  });
});

test('a connect that changes the hash moves the PCB to the new CPU', async () => {
  await withMachine(2, async (m, layer) => {
    for (let c = 0; c < 2; c++) {
      assert.deepEqual(await m.call(c, NET_ECHO_BIND, [1, 7]), [0]);
    }
    const s = createSocket(layer, { type: 'udp4', host: 0 });
    s.bind(0);
    await once(s, 'listening');
    assert.equal(s.cpu, -1);
    const lport = s.address().port;
    s.connect(7, '10.0.0.2');
    await once(s, 'connect');
    const first = connectedCpu(HOST0, lport, HOST1, 7, 2);
    assert.equal(s.cpu, first);
    assert.deepEqual(s.pcbCpus(), [first]);
    assert.equal((await exchange(s, 5)).length, 5);
    // A peer port whose replies hash to the other CPU.
    let p2 = 8;
    while (connectedCpu(HOST0, lport, HOST1, p2, 2) === first) p2++;
    for (let c = 0; c < 2; c++) assert.deepEqual(await m.call(c, NET_ECHO_BIND, [1, p2]), [0]);
    s.connect(p2, '10.0.0.2');
    await once(s, 'connect');
    assert.equal(s.cpu, 1 - first, 'the PCB moved');
    const mine = (await pcbList(layer)).filter((r) => r.user && r.host === 0 && r.lport === lport);
    assert.equal(mine.length, 1, 'old PCB deleted, new one inserted');
    assert.equal(mine[0].cpu, 1 - first);
    assert.equal(mine[0].fport, p2);
    assert.equal(mine[0].laddr, HOST0);
    const got = await exchange(s, 10);
    assert.equal(got.length, 10);
    assert.ok(s.receivedPerCpu[1 - first] >= 10);
    await closeAll(s);
  });
});

test('bad requests: send on a closed socket throws, sendto on a connected socket fails, bind twice throws', async () => {
  await withMachine(1, async (_m, layer) => {
    const s = createSocket(layer, 'udp4');
    s.connect(9, '10.0.0.2');
    await once(s, 'connect');
    const err = await new Promise<Error | null>((res) => s.send('x', 9, '10.0.0.2', (e: Error | null) => res(e)));
    assert.equal((err as NodeJS.ErrnoException).code, 'EISCONN');
    assert.throws(() => s.bind(1), /EINVAL/);
    const b = createSocket(layer, 'udp4');
    b.bind(7777);
    await once(b, 'listening');
    const c = createSocket(layer, 'udp4');
    c.bind(7777);
    const [e] = await once(c, 'error');
    assert.equal((e as NodeJS.ErrnoException).code, 'EADDRINUSE');
    await closeAll(s, b, c);
    assert.throws(() => s.send('x'), /closed/);
  });
});

test('DNS-like query/answer codec round-trips and rejects malformed input', () => {
  const q = dnsQuery(0x1234, 'host42.example.com');
  const a = dnsAnswer(q);
  assert.ok(a);
  const p = dnsParseAnswer(a);
  assert.equal(p?.id, 0x1234);
  assert.match(p!.addr, /^10\.53\.\d+\.\d+$/);
  assert.equal(dnsAnswer(q.subarray(0, 11)), null, 'shorter than a header');
  assert.equal(dnsAnswer(q.subarray(0, 14))![3] & 0xf, 1, 'truncated: FORMERR (src/test/tools/dns.test.ts has the rest)');
  assert.equal(dnsAnswer(a), null, 'an answer is not a query');
  const bad = Buffer.from(q);
  bad[12] = 200;
  assert.equal(dnsAnswer(bad)![3] & 0xf, 1);
  assert.equal(dnsParseAnswer(q), null);
});

test('stack tunables are sysctls shared through the arena: a limit set in the main thread applies on every CPU', async () => {
  const { startNet } = await import('../../lib/netuser.js');
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await startNet({ ncpus: 2, uma });
  const s = createSocket(sys.layer, { type: 'udp4', host: 0 });
  try {
    assert.equal(sys.sysctl.get('net.inet.udp.maxdgram'), 65507);
    assert.equal(sys.sysctl.get('net.inet.ip.maxfragpackets'), 256);
    sys.sysctl.set('net.inet.udp.maxdgram', 100);
    s.connect(9, '10.0.0.2');
    await once(s, 'connect');
    const err = await new Promise<Error | null>((res) => s.send(Buffer.alloc(200), (e: Error | null) => res(e)));
    assert.equal((err as NodeJS.ErrnoException | null)?.code, 'EMSGSIZE');
    const ok = await new Promise<Error | null>((res) => s.send(Buffer.alloc(50), (e: Error | null) => res(e)));
    assert.equal(ok, null);
    assert.equal(sys.stats(0).udp[UDPS.odropped], 1, 'the drop is counted in the arena and summed over CPUs');
    assert.throws(() => sys.sysctl.set('net.inet.ip.ttl', 0));
  } finally {
    sys.sysctl.set('net.inet.udp.maxdgram', 65507);
    s.close();
    await s.settled();
    await sys.stop();
  }
  done();
});

/** The next 'error' of s, or null if none comes within ms. */
function nextError(s: UdpSocket, ms: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((res) => {
    const t = setTimeout(() => {
      s.off('error', on);
      res(null);
    }, ms);
    const on = (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      s.off('error', on);
      res(e);
    };
    s.on('error', on);
  });
}

test('ICMP port unreachable reaches a connected socket on another CPU as ECONNREFUSED, once per ICMP, and the socket works after', async () => {
  await withMachine(2, async (m, layer) => {
    // The ICMP's own 2-tuple hashes to icmpCpu; pick a local port whose
    // connected PCB lives on the OTHER CPU, so only the dispatch by the
    // quoted 4-tuple (frameCpu) can bring the error to the PCB.
    const icmpCpu = rssCpu(toeplitz2(HOST1, HOST0), 2);
    const dead = 9;
    let lport = 41000;
    while (connectedCpu(HOST0, lport, HOST1, dead, 2) === icmpCpu) lport++;
    const s = createSocket(layer, { type: 'udp4', host: 0 });
    s.bind(lport);
    s.connect(dead, '10.0.0.2');
    await once(s, 'connect');
    assert.equal(s.cpu, 1 - icmpCpu);
    for (let round = 1; round <= 2; round++) {
      const pending = nextError(s, 5000);
      s.send(`knock ${round}`);
      const e = await pending;
      assert.ok(e !== null, `round ${round}: no error`);
      assert.equal(e.code, 'ECONNREFUSED');
      assert.equal(e.errno, 61);
      assert.equal(s.soErrors, round, 'one error per ICMP');
    }
    // Cleared when read: no further error without a new ICMP.
    assert.equal(await nextError(s, 200), null);
    // A send to a listening port works afterwards.
    for (let c = 0; c < 2; c++) assert.deepEqual(await m.call(c, NET_ECHO_BIND, [1, 7]), [0]);
    s.connect(7, '10.0.0.2');
    await once(s, 'connect');
    const got = await exchange(s, 3);
    assert.deepEqual(got.map(String).sort(), ['req 0', 'req 1', 'req 2']);
    assert.equal(s.soErrors, 2);
    // Unconnected sockets are not told (BSD): the datagram is sent, the ICMP comes back, no error.
    const u = createSocket(layer, { type: 'udp4', host: 0 });
    u.on('error', () => assert.fail('unconnected socket got an error'));
    const sent = await new Promise<Error | null>((res) => u.send('knock', dead, '10.0.0.2', (e: Error | null) => res(e)));
    assert.equal(sent, null);
    assert.equal(await nextError(u, 300), null);
    assert.equal(u.soErrors, 0);
    await closeAll(s, u);
  });
});

test('frameCpu sends an ICMP unreachable quoting UDP to the CPU owning the quoted flow', () => {
  // Ethernet + IP(ICMP, 10.0.0.2 -> 10.0.0.1) + ICMP unreach port + quoted IP(UDP, 10.0.0.1 -> 10.0.0.2) + ports.
  const f = new Uint8Array(14 + 20 + 8 + 20 + 8);
  f[12] = 0x08;
  const ip = (o: number, proto: number, src: number, dst: number) => {
    f[o] = 0x45;
    f[o + 9] = proto;
    new DataView(f.buffer).setUint32(o + 12, src);
    new DataView(f.buffer).setUint32(o + 16, dst);
  };
  ip(14, 1, HOST1, HOST0);
  f[34] = 3;
  f[35] = 3;
  ip(42, 17, HOST0, HOST1);
  for (let n = 2; n <= 8; n++) {
    for (let lport = 40000; lport < 40040; lport++) {
      new DataView(f.buffer).setUint16(62, lport);
      new DataView(f.buffer).setUint16(64, 9);
      assert.equal(frameCpu(f, 0, f.length, n), connectedCpu(HOST0, lport, HOST1, 9, n));
    }
  }
  // Truncated quote or another ICMP type: the 2-tuple as before.
  assert.equal(frameCpu(f, 0, 14 + 20 + 8 + 20 + 2, 8), rssCpu(toeplitz2(HOST1, HOST0), 8));
  f[34] = 0;
  assert.equal(frameCpu(f, 0, f.length, 8), rssCpu(toeplitz2(HOST1, HOST0), 8));
});
