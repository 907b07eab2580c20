// The topology API (lib/topology.ts) on one thread and the manual clock:
// routers, default routes, static ARP, user devices exchanging real frames
// (L2 and L3), the fault injector with exact seeded outcomes, pcap on any
// interface, and the argument checks. Nothing here sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leakCheck, testUma } from '../helpers.js';
import { System, parseCidr, parseMac, type SystemSocket } from '../../lib/topology.js';
import { ArgumentError } from '../../kern/errors.js';
import { Prng } from '../../kern/prng.js';
import { statObject, ARP_DESC, IP_DESC, UDP_DESC } from '../../netinet/stats.js';
import { ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, MAC_BROADCAST, ethDst, ethEmit, ethSrc, ethType } from '../../wire/ethernet.js';
import { ARPOP_REPLY, ARPOP_REQUEST, arpEmit, arpOp, arpSha, arpSpa, arpTha, arpTpa } from '../../wire/arp.js';
import { IPPROTO_UDP, ipDst, ipSrc, ipTtl, ipv4Emit } from '../../wire/ipv4.js';
import { UDP_HLEN, udpDport, udpEmit, udpSport } from '../../wire/udp.js';
import { readPcap } from '../../net/phy/pcap.js';
import { IFC_IPACKETS, IFC_OPACKETS, IFC_OQDROPS } from '../../net/if.js';

const ip = (s: string): number => parseCidr(s).addr;

/** A manual-clock system on a fresh arena, with the leak check armed. */
function manual(): { sys: System; done: () => void } {
  const uma = testUma({ size: 64 << 20 });
  const done = leakCheck(uma);
  return { sys: System.local({ clock: 'manual', uma }), done };
}

/** Let nextTick/immediate callbacks (socket 'listening', send callbacks, 'close') run. */
const ticks = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Advance the manual clock by ms, then let the socket layer's deferred
 * wake-ups (microtasks, nextTicks) run and finish what they start at the
 * same instant, until nothing more happens.
 */
async function run(sys: System, ms: number): Promise<void> {
  sys.advance(ms);
  for (let i = 0; i < 4; i++) {
    await ticks();
    sys.runUntilIdle();
  }
}

async function finish(sys: System, done: () => void, socks: SystemSocket[]): Promise<void> {
  for (const s of socks) s.close();
  await ticks();
  await sys.stop();
  sys.mb.drainPacketCache();
  done();
}

/** An IPv4/UDP packet (no link header), checksummed. */
function udpPacket(src: number, dst: number, sport: number, dport: number, data: Uint8Array, ttl = 64): Uint8Array {
  const p = new Uint8Array(20 + UDP_HLEN + data.length);
  p.set(data, 20 + UDP_HLEN);
  udpEmit(p, 20, sport, dport, UDP_HLEN + data.length, src, dst, true);
  ipv4Emit(p, 0, 0, p.length, 0x1234, 0, ttl, IPPROTO_UDP, src, dst, true);
  return p;
}

function ether(dst: number, src: number, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETH_HLEN + payload.length);
  ethEmit(f, 0, dst, src, type);
  f.set(payload, ETH_HLEN);
  return f;
}

test('a router between two stacks: default routes both ways, TTL decremented once, counted as forwarded', async () => {
  const { sys, done } = manual();
  const a = sys.addStack('a');
  const r = sys.addStack('r', { forwarding: true });
  const b = sys.addStack('b');
  sys.link(a, r, { a: '10.0.1.1/24', b: '10.0.1.254/24' });
  sys.link(r, b, { a: '10.0.2.254/24', b: '10.0.2.1/24' });
  a.setDefaultRoute('10.0.1.254');
  b.addRoute('10.0.1.0/24', '10.0.2.254');
  await sys.up();
  const heard: { msg: string; from: string }[] = [];
  const srv = sys.socket(b, 'udp4', (m, ri) => {
    heard.push({ msg: m.toString(), from: ri.address });
    srv.send(m, ri.port, ri.address);
  });
  srv.bind(7);
  const echoes: string[] = [];
  const cli = sys.socket(a, 'udp4', (m) => echoes.push(m.toString()));
  cli.send('through the router', 7, '10.0.2.1');
  await run(sys, 1);
  assert.deepEqual(heard, [{ msg: 'through the router', from: '10.0.1.1' }]);
  assert.deepEqual(echoes, ['through the router']);
  assert.equal(statObject(IP_DESC, r.stack.stats.ip).forward, 2, 'one datagram each way');
  assert.equal(statObject(IP_DESC, a.stack.stats.ip).forward, 0);
  // Without a route the sender is told at once.
  const lost: Error[] = [];
  const c2 = sys.socket(b, 'udp4');
  c2.send('nowhere', 9, '192.0.2.1', (e: Error | null) => e && lost.push(e));
  await run(sys, 1);
  await ticks();
  assert.equal((lost[0] as { code?: string } | undefined)?.code, 'EHOSTUNREACH');
  await finish(sys, done, [srv, cli, c2]);
});

test('a packet through the router arrives with TTL one less (frames seen on a user device behind it)', async () => {
  const { sys, done } = manual();
  const a = sys.addStack('a');
  const r = sys.addStack('r', { forwarding: true });
  sys.link(a, r, { a: '10.0.1.1/24', b: '10.0.1.254/24' });
  a.setDefaultRoute('10.0.1.254');
  const seen: Buffer[] = [];
  r.addUserDevice('tun0', { layer: 3, addrs: '10.8.0.1/24', onFrame: (f) => seen.push(f) });
  await sys.up();
  const cli = sys.socket(a, 'udp4');
  cli.send('hop', 5000, '10.8.0.2');
  await run(sys, 1);
  assert.equal(seen.length, 1);
  const p = seen[0];
  assert.equal(p[0] >> 4, 4, 'a bare IPv4 packet on a layer-3 device');
  assert.equal(ipTtl(p, 0), 63);
  assert.equal(ipSrc(p, 0), ip('10.0.1.1'));
  assert.equal(ipDst(p, 0), ip('10.8.0.2'));
  assert.equal(p.subarray(28).toString(), 'hop');
  await finish(sys, done, [cli]);
});

test('static ARP: no request is sent for a static entry, and the frame carries the configured MAC', async () => {
  const { sys, done } = manual();
  const a = sys.addStack('a');
  const dev = a.addUserDevice('ud0', { addrs: '10.5.0.1/24', mac: '02:00:00:00:05:01' });
  a.addArp('10.5.0.9', '02:00:00:00:05:09', 'ud0');
  await sys.up();
  const frames: Buffer[] = [];
  dev.device!.onFrame = (f) => frames.push(f);
  const cli = sys.socket(a, 'udp4');
  cli.send('static', 4000, '10.5.0.9');
  await run(sys, 1);
  const udp = frames.filter((f) => ethType(f, 0) === ETHERTYPE_IPV4);
  assert.equal(udp.length, 1);
  assert.equal(ethDst(udp[0], 0), parseMac('02:00:00:00:05:09'));
  assert.equal(ethSrc(udp[0], 0), parseMac('02:00:00:00:05:01'));
  assert.equal(statObject(ARP_DESC, a.stack.stats.arp).txrequests, 0);
  // The only ARP frame is the gratuitous announcement of our own address (delivered on the first pass).
  const arp = frames.filter((f) => ethType(f, 0) === ETHERTYPE_ARP);
  assert.equal(arp.length, 1);
  assert.equal(arpSpa(arp[0], ETH_HLEN), ip('10.5.0.1'));
  assert.equal(arpTpa(arp[0], ETH_HLEN), ip('10.5.0.1'));
  await finish(sys, done, [cli]);
});

test('user device L2: JS is the peer host; ARP request answered, a UDP frame in, the reply frame out', async () => {
  const { sys, done } = manual();
  const st = sys.addStack('vm');
  const out: Buffer[] = [];
  const ifc = st.addUserDevice('ud0', { addrs: '10.9.0.1/24', mac: '02:00:00:00:09:01', onFrame: (f) => out.push(f) });
  await sys.up();
  await run(sys, 1);
  // The stack announced its address (gratuitous ARP) when it came up.
  assert.equal(out.length, 1);
  assert.equal(ethType(out[0], 0), ETHERTYPE_ARP);
  assert.equal(arpSpa(out[0], ETH_HLEN), ip('10.9.0.1'));
  out.length = 0;
  const peerMac = parseMac('02:00:00:00:09:02');
  const peer = ip('10.9.0.2');
  const req = new Uint8Array(28);
  arpEmit(req, 0, ARPOP_REQUEST, peerMac, peer, 0, ip('10.9.0.1'));
  assert.equal(ifc.device!.push(ether(MAC_BROADCAST, peerMac, ETHERTYPE_ARP, req)), true);
  await run(sys, 1);
  assert.equal(out.length, 1);
  const rep = out[0];
  assert.equal(ethDst(rep, 0), peerMac);
  assert.equal(arpOp(rep, ETH_HLEN), ARPOP_REPLY);
  assert.equal(arpSha(rep, ETH_HLEN), parseMac('02:00:00:00:09:01'));
  assert.equal(arpTha(rep, ETH_HLEN), peerMac);
  assert.equal(arpTpa(rep, ETH_HLEN), peer);
  out.length = 0;
  const srv = sys.socket(st, 'udp4', (m, ri) => srv.send(Buffer.concat([Buffer.from('re: '), m]), ri.port, ri.address));
  srv.bind(53);
  ifc.device!.push(ether(parseMac('02:00:00:00:09:01'), peerMac, ETHERTYPE_IPV4, udpPacket(peer, ip('10.9.0.1'), 3333, 53, Buffer.from('query'))));
  await run(sys, 1);
  assert.equal(out.length, 1, 'the reply went out without another ARP (the request taught us the peer)');
  const f = out[0];
  assert.equal(ethType(f, 0), ETHERTYPE_IPV4);
  assert.equal(ethDst(f, 0), peerMac);
  assert.equal(ipSrc(f, ETH_HLEN), ip('10.9.0.1'));
  assert.equal(ipDst(f, ETH_HLEN), peer);
  assert.equal(udpSport(f, ETH_HLEN + 20), 53);
  assert.equal(udpDport(f, ETH_HLEN + 20), 3333);
  assert.equal(f.subarray(ETH_HLEN + 28, ETH_HLEN + 28 + 9).toString(), 're: query');
  assert.equal(ifc.device!.stats.rxFrames, 2);
  // Garbage is refused at the edge, counted, and never reaches the stack.
  assert.equal(ifc.device!.push(new Uint8Array(5)), false);
  assert.equal(ifc.device!.stats.rxDropped, 1);
  await finish(sys, done, [srv]);
});

test('user device L3 (tun): bare IPv4 in and out, no Ethernet and no ARP; the Duplex stream carries the same frames', async () => {
  const { sys, done } = manual();
  const st = sys.addStack('vpn');
  const ifc = st.addUserDevice('tun0', { layer: 3, addrs: '10.7.0.1/24' });
  await sys.up();
  const stream = ifc.device!.stream('message');
  const out: Buffer[] = [];
  stream.on('data', (f: Buffer) => out.push(f));
  const srv = sys.socket(st, 'udp4', (m, ri) => srv.send(m, ri.port, ri.address));
  srv.bind(7);
  stream.write(udpPacket(ip('10.7.0.2'), ip('10.7.0.1'), 4444, 7, Buffer.from('tunnelled')));
  await ticks(); // the stream's write callback
  await run(sys, 1);
  await ticks(); // the readable side
  assert.equal(out.length, 1);
  const p = out[0];
  assert.equal(p[0], 0x45);
  assert.equal(ipDst(p, 0), ip('10.7.0.2'));
  assert.equal(udpDport(p, 20), 4444);
  assert.equal(p.subarray(28).toString(), 'tunnelled');
  assert.equal(statObject(ARP_DESC, st.stack.stats.arp).txrequests, 0);
  // QEMU-style length-prefixed framing on a second device.
  const ifc2 = st.addUserDevice('tun1', { layer: 3, addrs: '10.6.0.1/24' });
  const s2 = ifc2.device!.stream('length-prefixed');
  const bytes: Buffer[] = [];
  s2.on('data', (b: Buffer) => bytes.push(b));
  const pkt = udpPacket(ip('10.6.0.2'), ip('10.6.0.1'), 5555, 7, Buffer.from('qemu'));
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(pkt.length);
  const wire = Buffer.concat([hdr, pkt]);
  s2.write(wire.subarray(0, 7)); // split across writes
  s2.write(wire.subarray(7));
  await ticks();
  await run(sys, 1);
  await ticks();
  const all = Buffer.concat(bytes);
  assert.equal(all.readUInt32BE(0), all.length - 4);
  assert.equal(all.subarray(4 + 28).toString(), 'qemu');
  await finish(sys, done, [srv]);
});

/** Which of n frames survive a loss-only injector with this seed: the injector draws one number per frame. */
function survivors(seed: number, loss: number, n: number): number[] {
  const r = new Prng(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (!(r.next() < loss)) out.push(i);
  return out;
}

test('fault injector on a link: the datagrams a seed loses are exactly those its draws say; the same seed gives the same run', async () => {
  for (const seed of [3, 11]) {
    const { sys, done } = manual();
    const a = sys.addStack('a');
    const b = sys.addStack('b');
    const [ea] = sys.link(a, b, { a: { addrs: '10.0.0.1/24', mac: 1 }, b: { addrs: '10.0.0.2/24', mac: 2 } });
    a.addArp('10.0.0.2', 2, ea);
    await sys.up();
    await run(sys, 1); // the announcements (gratuitous ARP) go out before the injector
    ea.fault({ seed, loss: 0.25 });
    const got: number[] = [];
    const srv = sys.socket(b, 'udp4', (m) => got.push(m.readUInt32BE(0)));
    srv.bind(9);
    const cli = sys.socket(a, 'udp4');
    for (let i = 0; i < 200; i++) {
      const d = Buffer.alloc(8);
      d.writeUInt32BE(i);
      cli.send(d, 9, '10.0.0.2');
    }
    await run(sys, 1);
    assert.deepEqual(got, survivors(seed, 0.25, 200), `seed ${seed}`);
    const fs = ea.faultStats()[0];
    assert.equal(fs.seen, 200);
    assert.equal(fs.lost, 200 - got.length);
    assert.equal(statObject(UDP_DESC, b.stack.stats.udp).delivered, got.length);
    await finish(sys, done, [srv, cli]);
  }
});

test('fault injector: delay and bandwidth on the manual clock deliver at exactly the computed times', async () => {
  const { sys, done } = manual();
  const a = sys.addStack('a');
  const b = sys.addStack('b');
  const [ea] = sys.link(a, b, { a: { addrs: '10.0.0.1/24', mac: 1 }, b: { addrs: '10.0.0.2/24', mac: 2 } });
  a.addArp('10.0.0.2', 2, ea);
  await sys.up();
  await run(sys, 1);
  // 1000-byte frames at 800 kbit/s: 10 ms each on the wire, then 50 ms of delay.
  ea.fault({ rateBps: 800_000, delayMs: 50 });
  const srv = sys.socket(b, 'udp4');
  srv.bind(9);
  const cli = sys.socket(a, 'udp4');
  const payload = Buffer.alloc(1000 - ETH_HLEN - 28);
  const arrived = (): number => statObject(UDP_DESC, b.stack.stats.udp).delivered;
  for (let i = 0; i < 3; i++) cli.send(payload, 9, '10.0.0.2');
  const seen: number[] = [];
  for (let t = 1; t <= 85; t++) {
    sys.advance(1);
    seen.push(arrived());
  }
  // Frame k (0-based) leaves the wire at 10(k+1) ms and arrives 50 ms later.
  assert.equal(seen[58], 0, 'nothing before 60 ms');
  assert.equal(seen[59], 1, 'first at 60 ms');
  assert.equal(seen[68], 1);
  assert.equal(seen[69], 2, 'second at 70 ms');
  assert.equal(seen[78], 2);
  assert.equal(seen[79], 3, 'third at 80 ms');
  await finish(sys, done, [srv, cli]);
});

test('fault injector on a user device: loss and duplication with exact seeded outcomes, queue limit drops counted', async () => {
  const { sys, done } = manual();
  const st = sys.addStack('h');
  const out: number[] = [];
  const ifc = st.addUserDevice('tun0', { layer: 3, addrs: '10.4.0.1/24', onFrame: (f) => out.push(f.readUInt32BE(28)) });
  await sys.up();
  ifc.fault({ seed: 5, duplicate: 0.5 });
  const cli = sys.socket(st, 'udp4');
  for (let i = 0; i < 50; i++) {
    const d = Buffer.alloc(4);
    d.writeUInt32BE(i);
    cli.send(d, 9, '10.4.0.2');
  }
  await run(sys, 1);
  // Model: one draw per frame; below 0.5 the frame goes out twice, back to back.
  const r = new Prng(5);
  const want: number[] = [];
  for (let i = 0; i < 50; i++) {
    want.push(i);
    if (r.next() < 0.5) want.push(i);
  }
  assert.deepEqual(out, want);
  assert.equal(ifc.faultStats()[0].duplicated, want.length - 50);
  await finish(sys, done, [cli]);
});

test('pcap on any interface: loopback and a layer-3 device are captured frame for frame', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slabnet-topo-'));
  try {
    const { sys, done } = manual();
    const st = sys.addStack('h');
    st.addLoopback({ addrs: '127.0.0.1/8' }).capture(join(dir, 'lo0.pcap'));
    const tun = st.addUserDevice('tun0', { layer: 3, addrs: '10.3.0.1/24', pcap: join(dir, 'tun0.pcap'), onFrame: () => {} });
    await sys.up();
    const srv = sys.socket(st, 'udp4', (m, ri) => srv.send(m, ri.port, ri.address));
    srv.bind(7, '127.0.0.1');
    const cli = sys.socket(st, 'udp4');
    cli.send('loop', 7, '127.0.0.1');
    const c2 = sys.socket(st, 'udp4');
    c2.send('out', 53, '10.3.0.2');
    await run(sys, 1);
    await finish(sys, done, [srv, cli, c2]); // stop() closes the captures
    const lo = readPcap(join(dir, 'lo0.pcap'));
    // Each frame is captured on transmit and again on receive: request and echo.
    assert.equal(lo.records.length, 4);
    assert.ok(lo.records.every((x) => Buffer.from(x.data).includes('loop')));
    const t = readPcap(join(dir, 'tun0.pcap'));
    assert.equal(lo.linktype, 1, 'Ethernet');
    assert.equal(t.linktype, 101, 'a layer-3 device is captured as raw IP');
    assert.equal(t.records.length, 1);
    // Stamped with the manual clock: the first millisecond of the simulation.
    assert.equal(t.records[0].tsSec, 0);
    assert.ok(t.records[0].tsUsec < 2000);
    assert.equal(t.records[0].data[0], 0x45);
    assert.equal(Buffer.from(t.records[0].data.subarray(28)).toString(), 'out');
    assert.equal(tun.counters()[IFC_OPACKETS], 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a 64 KiB MTU link carries a 60 KiB datagram unfragmented', async () => {
  const { sys, done } = manual();
  const a = sys.addStack('a');
  const b = sys.addStack('b');
  const [ea, eb] = sys.link(a, b, { a: '10.0.0.1/24', b: '10.0.0.2/24', mtu: 65535 });
  await sys.up();
  const got: Buffer[] = [];
  const srv = sys.socket(b, { type: 'udp4', recvBufferSize: 1 << 20 }, (m) => got.push(m));
  srv.bind(9);
  const cli = sys.socket(a, 'udp4');
  cli.send(Buffer.alloc(60000, 7), 9, '10.0.0.2');
  await run(sys, 1);
  assert.equal(got.length, 1);
  assert.equal(got[0].length, 60000);
  assert.equal(statObject(IP_DESC, a.stack.stats.ip).fragmented, 0);
  assert.ok(eb.counters()[IFC_IPACKETS] >= 1 && ea.counters()[IFC_OQDROPS] === 0);
  await finish(sys, done, [srv, cli]);
});

test('a closed stack refuses output: held ARP packets are freed, later sends fail, nothing leaks', async () => {
  const { sys, done } = manual();
  const a = sys.addStack('a');
  const b = sys.addStack('b');
  sys.link(a, b, { a: '10.0.0.1/24', b: '10.0.0.2/24' });
  await sys.up();
  const cli = sys.socket(a, 'udp4');
  // No ARP answer yet: the datagram waits in the hold queue ...
  cli.send('held', 9, '10.0.0.77');
  a.stack.close();
  // ... and output after close is counted and freed, never queued.
  const errs: Error[] = [];
  cli.send('late', 9, '10.0.0.2', (e: Error | null) => e && errs.push(e));
  await ticks();
  assert.equal((errs[0] as { code?: string } | undefined)?.code, 'ENETDOWN');
  assert.ok(statObject(IP_DESC, a.stack.stats.ip).odropped >= 1);
  await finish(sys, done, [cli]);
});

test('argument errors are clear ArgumentErrors', () => {
  const sys = System.local({ clock: 'manual', uma: testUma({ size: 16 << 20 }) });
  const a = sys.addStack('a');
  const b = sys.addStack('b');
  const bad = (f: () => unknown, re: RegExp): void => assert.throws(f, (e: unknown) => e instanceof ArgumentError && re.test((e as Error).message));
  bad(() => sys.addStack('a'), /exists already/);
  bad(() => sys.addStack(''), /name/);
  bad(() => sys.link(a, b, { a: '10.0.0.300/24' }), /bad address "10\.0\.0\.300\/24"/);
  bad(() => sys.link(a, b, { a: '10.0.0.1/33' }), /prefix 0\.\.32/);
  bad(() => sys.link(a, b, { mtu: 70000 }), /mtu must be an integer 68\.\.65535/);
  bad(() => sys.link(a, a), /itself/);
  bad(() => a.addUserDevice('ud0', { mac: '02:00:zz:00:00:01' }), /bad MAC/);
  bad(() => a.addRoute('default', '192.168.9.1'), /not on a connected network/);
  bad(() => a.addRoute('10.1.0.0/16'), /needs a gateway or an interface/);
  bad(() => a.iface('nope'), /no interface nope/);
  bad(() => a.addLoopback().fault({ loss: 2 }), /probability/);
  bad(() => sys.advance(-1), /advance/);
  bad(() => System.local({ clock: 'sundial' as 'manual' }), /clock must be/);
  void sys.stop();
});
