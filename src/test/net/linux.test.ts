// slabnet against real Linux: the kernel side of our TAP lives in a network
// namespace this test creates (10.78.0.1/24); slabnet is 10.78.0.2. Linux
// ping (small and fragmenting), arping, the kernel's ARP, a UDP echo server
// on slabnet answered to socat and to Node's dgram in the namespace, and a
// pcap capture that tcpdump reads with every checksum good. Needs root; under
// CI=true it must run (skipUnless throws).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leakCheck } from '../helpers.js';
import { finish, testNet } from './harness.js';
import { NetNs } from './netns.js';
import { assertPings, runAsync as run, sh, skipUnless } from './sys.js';
import { TapDriver } from '../../net/phy/tap.js';
import { Stack } from '../../netinet/stack.js';
import { createSocket } from '../../lib/dgram.js';
import { PcapWriter } from '../../net/phy/pcap.js';
import { statObject, ICMP_DESC, ARP_DESC, UDP_DESC, IP_DESC } from '../../netinet/stats.js';
import { macToString } from '../../wire/ethernet.js';

test('Linux peers: ping, arping, socat and node dgram against slabnet over TAP', async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'ping', 'arping', 'socat', 'tcpdump'] });
  if (skip) return t.skip(skip);
  const net = testNet();
  const done = leakCheck(net.uma);
  const dir = mkdtempSync(join(tmpdir(), 'slabnet-linux-'));
  const ns = NetNs.create('linux');
  let tap: TapDriver | null = null;
  let st: Stack | null = null;
  try {
    tap = TapDriver.open(net.mb, { name: `snl${process.pid % 100000}`, queues: 2, mac: 0x0200_5e00_1002 });
    const cap = PcapWriter.open(join(dir, 'tap.pcap'));
    tap.ifp.setCapture(cap);
    ns.adopt(tap.name, '10.78.0.1/24');
    st = new Stack(net.mb, { name: 'slabnet' });
    st.addInterface(tap.ifp, '10.78.0.2', 24);
    const srv = createSocket(st, { type: 'udp4', recvBufferSize: 1 << 20 }, (m, r) => srv.send(m, r.port, r.address));
    await new Promise<void>((r) => srv.bind(7777, r));

    // 1. ping, then a ping that fragments both ways (8000 bytes of data).
    await assertPings(ns, '10.78.0.2', 8000);
    const ip = statObject(IP_DESC, st.stats.ip);
    assert.ok(ip.reassembled >= 2 && ip.fragmented >= 2, JSON.stringify(ip));

    // 2. The kernel resolved our address by ARP, and arping gets our replies.
    const neigh = ns.exec(['ip', 'neigh', 'show', '10.78.0.2']);
    assert.match(neigh, new RegExp(`lladdr ${macToString(tap.ifp.mac)}`));
    let r = await run(ns.argv(['arping', '-c', '2', '-w', '3', '-I', tap.name, '10.78.0.2']));
    assert.equal(r.code, 0, `arping failed:\n${r.out}${r.err}`);
    assert.match(r.out.toLowerCase(), new RegExp(macToString(tap.ifp.mac)));
    assert.ok(statObject(ARP_DESC, st.stats.arp).txreplies >= 3);

    // 3. UDP echo: socat, then Node's own dgram client in the namespace (a datagram that fragments).
    r = await run(ns.argv(['socat', '-t', '2', '-', 'UDP4:10.78.0.2:7777']), 'hello from socat\n');
    assert.equal(r.out, 'hello from socat\n', r.err);
    const script = `
      const d = require('node:dgram'); const s = d.createSocket('udp4');
      const msg = Buffer.alloc(5000, 0x61); msg.write('node-dgram');
      s.on('message', (m) => { console.log(m.length, m.equals(msg)); s.close(); clearTimeout(t); });
      const t = setTimeout(() => { console.log('timeout'); process.exit(1); }, 3000); s.send(msg, 7777, '10.78.0.2');`;
    r = await run(ns.argv([process.execPath, '-e', script]));
    assert.equal(r.out.trim(), '5000 true', r.err);
    // A closed port answers ICMP port unreachable, which socat reports as a refused connection.
    r = await run(ns.argv(['socat', '-t', '1', '-', 'UDP4:10.78.0.2:9']), 'x');
    assert.ok(statObject(UDP_DESC, st.stats.udp).noport >= 1);
    assert.ok(statObject(ICMP_DESC, st.stats.icmp).outhist_unreach >= 1);
    assert.ok(statObject(ICMP_DESC, st.stats.icmp).outhist_echoreply >= 5);

    // 4. The capture of our interface reads back in tcpdump with good checksums.
    cap.close();
    const dump = sh('tcpdump', ['-nn', '-vvv', '-r', join(dir, 'tap.pcap')]);
    assert.equal(dump.status, 0, dump.stderr);
    assert.match(dump.stdout, /10\.78\.0\.2 > 10\.78\.0\.1: ICMP echo reply/);
    assert.match(dump.stdout, /10\.78\.0\.2\.7777 > 10\.78\.0\.1\.\d+: \[udp sum ok\] UDP, length 17/);
    assert.match(dump.stdout, /Reply 10\.78\.0\.2 is-at 02:00:5e:00:10:02/);
    // Judge slabnet's own packets: with TAP offloads Linux hands us frames whose checksum it left
    // for the receiver to skip (NEEDS_CSUM), and the capture shows them as they arrived.
    const badOurs = dump.stdout.split('\n').filter((l) => /bad cksum|bad udp cksum|wrong icmp cksum/i.test(l) && /^\s*10\.78\.0\.2[ .]/.test(l));
    assert.deepEqual(badOurs, []);
    srv.close();
    await new Promise((r2) => setTimeout(r2, 10));
  } finally {
    st?.close();
    tap?.detach();
    ns.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  finish(net, done);
});
