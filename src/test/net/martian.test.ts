// The martian battery over TAP, against the MP stack on 2 CPUs with the demo
// servers (UDP echo and DNS on every CPU). The kernel side of the TAP lives
// in a namespace this test creates (10.81.0.1/24; slabnet is 10.81.0.2),
// names suffixed with the pid; frames are written raw (AF_PACKET, python3)
// from inside the namespace and go nowhere else. Spoofed sources (127.0.0.1,
// 0.0.0.0, 224.0.0.1, the subnet broadcast) to the servers' ports, echo
// requests to the broadcast addresses and in broadcast frames, UDP to a closed
// port in a broadcast frame, ARP with a broadcast sender and from off the
// subnet: nothing is delivered or answered, every drop is counted under its
// name, the stack still answers ping and UDP afterwards, and no zone leaked.
// Needs root, /dev/net/tun, ip, ping, python3; under CI=true it must run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakCheck, testUma } from '../helpers.js';
import { NetNs } from './netns.js';
import { assertPings, runAsync as run, skipUnless } from './sys.js';
import { until } from './harness.js';
import { startTapNet, type TapNet } from '../../lib/tapnet.js';
import { NET_DNS_BIND, NET_ECHO_BIND, NET_STATS } from '../../net/mpnet.js';
import { ARP_DESC, ICMP_DESC, IP_DESC, UDP_DESC, statObject, type NetStats } from '../../netinet/stats.js';
import { ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ethEmit, macFromString, MAC_BROADCAST } from '../../wire/ethernet.js';
import { IP_HLEN_MIN, IPPROTO_ICMP, IPPROTO_UDP, ipFromString, ipv4Emit } from '../../wire/ipv4.js';
import { UDP_HLEN, udpEmit } from '../../wire/udp.js';
import { ICMP_ECHO, ICMP_HLEN } from '../../wire/icmp.js';
import { ARPOP_REQUEST, arpEmit } from '../../wire/arp.js';
import { cksum } from '../../wire/checksum.js';
import { write16 } from '../../wire/bytes.js';

const US = ipFromString('10.81.0.2');
const PEER = ipFromString('10.81.0.1');
const BCAST = ipFromString('10.81.0.255');
const ECHO_PORT = 7777;
const DNS_PORT = 5353;
const MAC = 0x0200_5e00_1081;

/** Writes hex frames (stdin, one a line) on the interface, then for 1.5 s collects IPv4 frames from `ours`; prints them as JSON hex. */
const PY = `
import json, socket, sys, time
ifn, ours = sys.argv[1], bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifn, 0))
for line in sys.stdin.read().split():
    s.send(bytes.fromhex(line))
s.settimeout(0.1)
seen = []
end = time.time() + 1.5
while time.time() < end:
    try:
        d = s.recv(65535)
    except socket.timeout:
        continue
    if d[6:12] == ours and d[12:14] == b'\\x08\\x00':
        seen.append(d.hex())
print(json.dumps(seen))
`;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const macHex = (m: number) => m.toString(16).padStart(12, '0');

function ipFrame(dmac: number, smac: number, src: number, dst: number, proto: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(Math.max(60, ETH_HLEN + IP_HLEN_MIN + payload.length));
  ethEmit(f, 0, dmac, smac, ETHERTYPE_IPV4);
  ipv4Emit(f, ETH_HLEN, 0, IP_HLEN_MIN + payload.length, 0x4242, 0, 64, proto, src, dst, true);
  f.set(payload, ETH_HLEN + IP_HLEN_MIN);
  return f;
}

function udpTo(dmac: number, smac: number, src: number, dst: number, dport: number): Uint8Array {
  const u = new Uint8Array(UDP_HLEN + 12);
  u.set(Buffer.from('martian test'), UDP_HLEN);
  udpEmit(u, 0, 40000, dport, u.length, src, dst, true);
  return ipFrame(dmac, smac, src, dst, IPPROTO_UDP, u);
}

function echoTo(dmac: number, smac: number, src: number, dst: number): Uint8Array {
  const c = new Uint8Array(ICMP_HLEN + 16);
  c[0] = ICMP_ECHO;
  write16(c, 4, 0x77);
  write16(c, 6, 1);
  write16(c, 2, cksum(c, 0, c.length));
  return ipFrame(dmac, smac, src, dst, IPPROTO_ICMP, c);
}

function arpRequest(smac: number, sha: number, spa: number, tpa: number): Uint8Array {
  const f = new Uint8Array(60);
  ethEmit(f, 0, MAC_BROADCAST, smac, ETHERTYPE_ARP);
  arpEmit(f, ETH_HLEN, ARPOP_REQUEST, sha, spa, 0, tpa);
  return f;
}

/** Counter deltas between two netstat snapshots, by protocol. */
function delta(a: NetStats, b: NetStats) {
  const d = (desc: Parameters<typeof statObject>[0], k: keyof NetStats) => {
    const x = statObject(desc, a[k]);
    const y = statObject(desc, b[k]);
    const o: Record<string, number> = {};
    for (const n of Object.keys(y)) o[n] = y[n] - x[n];
    return o;
  };
  return { ip: d(IP_DESC, 'ip'), icmp: d(ICMP_DESC, 'icmp'), udp: d(UDP_DESC, 'udp'), arp: d(ARP_DESC, 'arp') };
}

async function udpEcho(ns: NetNs, n: number): Promise<number> {
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    let ok = 0, i = 0;
    const t = setTimeout(() => { console.log(ok); process.exit(0); }, 5000);
    s.on('message', (m) => { if (m.toString() === 'ping ' + i) ok++; if (++i < ${n}) send(); else { clearTimeout(t); console.log(ok); s.close(); } });
    const send = () => s.send('ping ' + i, ${ECHO_PORT}, '10.81.0.2');
    s.bind(0, send);`;
  const r = await run(ns.argv([process.execPath, '-e', script]));
  assert.equal(r.code, 0, r.err);
  return Number(r.out.trim());
}

test('martian battery over TAP: spoofed and broadcast traffic is dropped and counted, the stack keeps serving, nothing leaks', async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'ping', 'python3'] });
  if (skip) return t.skip(skip);
  const uma = testUma({ size: 128 << 20 }); // debug: a fault in a CPU's input path throws there, loudly
  const done = leakCheck(uma);
  const ns = NetNs.create('martian');
  let net: TapNet | null = null;
  try {
    net = await startTapNet({ ncpus: 2, uma, name: `snm${process.pid % 100000}`, addr: '10.81.0.2', prefix: 24, mac: MAC });
    ns.adopt(net.name, '10.81.0.1/24');
    for (let c = 0; c < 2; c++) {
      assert.deepEqual(await net.machine.call(c, NET_ECHO_BIND, [net.host, ECHO_PORT]), [0]);
      assert.deepEqual(await net.machine.call(c, NET_DNS_BIND, [net.host, DNS_PORT]), [0]);
    }
    // Working before: ping and UDP echo.
    await assertPings(ns, '10.81.0.2', 3000);
    assert.equal(await udpEcho(ns, 5), 5);
    const kmac = macFromString(/link\/ether ([0-9a-f:]{17})/.exec(ns.exec(['ip', 'link', 'show', net.name]))![1]);
    const served0 = await servedByCpus(net);
    const before = net.stats();

    const frames: Uint8Array[] = [];
    const martians = ['127.0.0.1', '0.0.0.0', '224.0.0.1', '10.81.0.255'].map(ipFromString);
    for (const src of martians) {
      for (const port of [ECHO_PORT, DNS_PORT]) {
        frames.push(udpTo(MAC, kmac, src, US, port));
        frames.push(udpTo(MAC_BROADCAST, kmac, src, US, port));
      }
    }
    const nMartianUdp = frames.length;
    frames.push(echoTo(MAC_BROADCAST, kmac, PEER, BCAST));
    frames.push(echoTo(MAC_BROADCAST, kmac, PEER, 0xffffffff));
    frames.push(echoTo(MAC, kmac, PEER, BCAST));
    frames.push(echoTo(MAC_BROADCAST, kmac, PEER, US)); // unicast IP in a broadcast frame
    frames.push(udpTo(MAC_BROADCAST, kmac, PEER, US, 9)); // closed port, broadcast frame: no port unreachable
    frames.push(arpRequest(kmac, MAC_BROADCAST, PEER, US)); // broadcast sender hardware address
    frames.push(arpRequest(kmac, 0x0200_0bad_0001, ipFromString('100.64.0.1'), US)); // sender off the subnet

    const r = await run(ns.argv(['python3', '-c', PY, net.name, macHex(MAC)]), frames.map(hex).join('\n') + '\n', 20000);
    assert.equal(r.code, 0, `python3: ${r.err}`);
    const answered: string[] = JSON.parse(r.out);
    assert.deepEqual(answered, [], 'the stack answered a martian or a broadcast');

    await until(() => delta(before, net!.stats()).ip.badaddr >= nMartianUdp, 5000, 'the martians to be counted');
    const d = delta(before, net.stats());
    t.diagnostic(JSON.stringify(d));
    assert.equal(d.ip.badaddr, nMartianUdp, 'each spoofed source counted as ips_badaddr');
    assert.equal(d.icmp.bmcastecho, 4, 'each broadcast echo counted (icps_bmcastecho)');
    assert.equal(d.icmp.outhist_echoreply, 0);
    assert.equal(d.icmp.outhist_unreach, 0);
    assert.equal(d.icmp.noerror, 1, 'no port unreachable for a link-layer broadcast');
    assert.equal(d.udp.delivered, 0, 'no martian reached a socket');
    assert.equal(d.arp.badsha, 1);
    assert.equal(d.arp.offlink, 1);
    assert.deepEqual(await servedByCpus(net), served0, 'the servers saw none of it');

    // Still serving.
    await assertPings(ns, '10.81.0.2', 3000);
    assert.equal(await udpEcho(ns, 5), 5);
  } finally {
    await net?.stop();
    ns.destroy();
  }
  done();
});

async function servedByCpus(net: TapNet): Promise<number[]> {
  const out: number[] = [];
  for (let c = 0; c < 2; c++) out.push((await net.machine.call(c, NET_STATS, [net.host], 4))[0]);
  return out;
}
