// pcap writer: the files it writes are read back by our reader and by
// tcpdump/tshark, which must see well-formed Ethernet, ARP, IPv4, UDP and ICMP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter, readPcap, LINKTYPE_ETHERNET } from '../../net/phy/pcap.js';
import { ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ethEmit, MAC_BROADCAST } from '../../wire/ethernet.js';
import { ARP_LEN, ARPOP_REQUEST, arpEmit } from '../../wire/arp.js';
import { IP_HLEN_MIN, IPPROTO_ICMP, IPPROTO_UDP, ipFromString, ipv4Emit } from '../../wire/ipv4.js';
import { UDP_HLEN, udpEmit } from '../../wire/udp.js';
import { ICMP_ECHO, ICMP_HLEN, icmpEmit } from '../../wire/icmp.js';
import { sh, skipUnless } from './sys.js';

const A = 0x0200_0000_0001;
const B = 0x0200_0000_0002;
const ipA = ipFromString('10.9.0.1');
const ipB = ipFromString('10.9.0.2');

function frames(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const arp = new Uint8Array(60);
  ethEmit(arp, 0, MAC_BROADCAST, A, ETHERTYPE_ARP);
  arpEmit(arp, ETH_HLEN, ARPOP_REQUEST, A, ipA, 0, ipB);
  out.push(arp);
  const payload = new TextEncoder().encode('hello pcap');
  const udpLen = UDP_HLEN + payload.length;
  const u = new Uint8Array(ETH_HLEN + IP_HLEN_MIN + udpLen);
  ethEmit(u, 0, B, A, ETHERTYPE_IPV4);
  ipv4Emit(u, ETH_HLEN, 0, IP_HLEN_MIN + udpLen, 7, 0, 64, IPPROTO_UDP, ipA, ipB, true);
  u.set(payload, ETH_HLEN + IP_HLEN_MIN + UDP_HLEN);
  udpEmit(u, ETH_HLEN + IP_HLEN_MIN, 5353, 53, udpLen, ipA, ipB, true);
  out.push(u);
  const icmpLen = ICMP_HLEN + 56;
  const e = new Uint8Array(ETH_HLEN + IP_HLEN_MIN + icmpLen);
  ethEmit(e, 0, B, A, ETHERTYPE_IPV4);
  ipv4Emit(e, ETH_HLEN, 0, IP_HLEN_MIN + icmpLen, 8, 0, 64, IPPROTO_ICMP, ipA, ipB, true);
  for (let i = 0; i < 56; i++) e[ETH_HLEN + IP_HLEN_MIN + ICMP_HLEN + i] = i;
  icmpEmit(e, ETH_HLEN + IP_HLEN_MIN, ICMP_ECHO, 0, (0x1234 << 16) | 1, icmpLen);
  out.push(e);
  return out;
}

function capture(dir: string, snaplen?: number): { path: string; frames: Uint8Array[] } {
  const path = join(dir, 'cap.pcap');
  const w = PcapWriter.open(path, { snaplen });
  const fs = frames();
  // Write the frames out of a bigger buffer at an offset, as from the arena.
  const arena = new Uint8Array(4096);
  for (const f of fs) {
    arena.set(f, 100);
    w.write(arena, 100, f.length);
  }
  // The UDP frame again in three pieces, as an mbuf chain.
  const u = fs[1];
  w.begin(u.length);
  w.append(u, 0, 10);
  w.append(u, 10, 30);
  w.append(u, 40, u.length - 40);
  w.end();
  w.close();
  assert.equal(w.packets, 4);
  return { path, frames: [...fs, u] };
}

test('pcap file round-trips through our reader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slabnet-pcap-'));
  try {
    const { path, frames: fs } = capture(dir);
    const r = readPcap(path);
    assert.equal(r.linktype, LINKTYPE_ETHERNET);
    assert.equal(r.records.length, fs.length);
    r.records.forEach((rec, i) => {
      assert.deepEqual(rec.data, fs[i]);
      assert.equal(rec.origLen, fs[i].length);
      assert.ok(rec.tsUsec < 1e6 && rec.tsSec > 1.6e9);
    });
    // Snap length cuts the captured bytes but keeps the original length.
    const cut = capture(dir, 40);
    const rc = readPcap(cut.path);
    assert.equal(rc.records[2].data.length, 40);
    assert.equal(rc.records[2].origLen, cut.frames[2].length);
    assert.equal(rc.records[3].data.length, 40);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tcpdump reads the capture and finds every checksum good', (t) => {
  const skip = skipUnless({ tools: ['tcpdump'] });
  if (skip) return t.skip(skip);
  const dir = mkdtempSync(join(tmpdir(), 'slabnet-pcap-'));
  try {
    const { path } = capture(dir);
    const r = sh('tcpdump', ['-nn', '-vvv', '-r', path]);
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout;
    assert.match(out, /ARP, Ethernet \(len 6\), IPv4 \(len 4\), Request who-has 10\.9\.0\.2 tell 10\.9\.0\.1/);
    assert.match(out, /10\.9\.0\.1\.5353 > 10\.9\.0\.2\.53: \[udp sum ok\]/);
    assert.match(out, /10\.9\.0\.1 > 10\.9\.0\.2: ICMP echo request, id 4660, seq 1, length 64/);
    assert.doesNotMatch(out, /bad cksum|truncated|malformed/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tshark reads the capture with valid IP/UDP/ICMP checksums', (t) => {
  const skip = skipUnless({ tools: ['tshark'] });
  if (skip) return t.skip(skip);
  const dir = mkdtempSync(join(tmpdir(), 'slabnet-pcap-'));
  try {
    const { path } = capture(dir);
    const r = sh('tshark', ['-r', path, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-e', 'frame.protocols', '-e', 'ip.checksum.status', '-e', 'udp.checksum.status', '-e', 'icmp.checksum.status'], 30000);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0], /^eth:ethertype:arp/);
    assert.match(lines[1], /^eth:ethertype:ip:udp/);
    assert.match(lines[2], /^eth:ethertype:ip:icmp/);
    // Wireshark's checksum status: 1 = good (0 = bad, 2 = unverified).
    const f = lines.map((l) => l.split('\t'));
    assert.deepEqual([f[1][1], f[1][2]], ['1', '1'], lines[1]);
    assert.deepEqual([f[2][1], f[2][3]], ['1', '1'], lines[2]);
    assert.deepEqual([f[3][1], f[3][2]], ['1', '1'], lines[3]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
