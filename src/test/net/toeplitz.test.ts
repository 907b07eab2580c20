// RSS Toeplitz hash against the verification values of Microsoft's RSS spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toeplitz2, toeplitz4, rssCpu, rssAddrCpu, rssFlowCpu, rssKey } from '../../net/rss.js';
import { packetCpu } from '../../net/netisr.js';
import { ipFromString } from '../../wire/ipv4.js';

const cases: [string, number, string, number, number, number][] = [
  // destination, dport, source, sport, IPv4-only hash, IPv4 with TCP/UDP ports hash
  ['161.142.100.80', 1766, '66.9.149.187', 2794, 0x323e8fc2, 0x51ccc178],
  ['65.69.140.83', 4739, '199.92.111.2', 14230, 0xd718262a, 0xc626b0ea],
  ['12.22.207.184', 38024, '24.19.198.95', 12898, 0xd2d0a5de, 0x5c2b394a],
  ['209.142.163.6', 2217, '38.27.205.30', 48228, 0x82989176, 0xafc7327f],
  ['202.188.127.2', 1303, '153.39.163.191', 44251, 0x5d1809c5, 0x10e828a2],
];

test('Toeplitz hash matches the RSS verification suite', () => {
  for (const [dst, dport, src, sport, h2, h4] of cases) {
    const s = ipFromString(src);
    const d = ipFromString(dst);
    assert.equal(toeplitz2(s, d, 'microsoft'), h2, `2-tuple ${src} -> ${dst}`);
    assert.equal(toeplitz4(s, d, sport, dport, 'microsoft'), h4, `4-tuple ${src}:${sport} -> ${dst}:${dport}`);
  }
});

test('the symmetric key (the default) hashes both directions of a flow alike; Microsoft\'s does not', () => {
  assert.equal(rssKey(), 'symmetric');
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const u16 = fc.integer({ min: 0, max: 0xffff });
  fc.assert(
    fc.property(u32, u32, u16, u16, (a, b, p, q) => {
      assert.equal(toeplitz4(a, b, p, q), toeplitz4(b, a, q, p));
      assert.equal(toeplitz2(a, b), toeplitz2(b, a));
      for (let n = 2; n <= 16; n++) assert.equal(rssFlowCpu(a, b, p, q, n), rssFlowCpu(b, a, q, p, n));
    }),
  );
  // The RSS suite's first flow, reversed, hashes elsewhere with Microsoft's key.
  const [dst, dport, src, sport, , h4] = cases[0];
  assert.notEqual(toeplitz4(ipFromString(dst), ipFromString(src), dport, sport, 'microsoft'), h4);
});

test('rssCpu spreads flows over every CPU and is stable', () => {
  const seen = new Set<number>();
  for (let p = 1000; p < 1200; p++) {
    const c = rssCpu(toeplitz4(0x0a000001, 0x0a000002, p, 53), 4);
    assert.ok(c >= 0 && c < 4);
    assert.equal(c, rssCpu(toeplitz4(0x0a000001, 0x0a000002, p, 53), 4));
    seen.add(c);
  }
  assert.equal(seen.size, 4);
});

test('packetCpu: TCP by its 4-tuple; an ICMP unreachable quoting TCP to the quoted flow; a TCP fragment by the 2-tuple', () => {
  const A = ipFromString('10.0.0.1');
  const B = ipFromString('10.0.0.2');
  const p = new Uint8Array(20 + 8 + 20 + 8);
  const dv = new DataView(p.buffer);
  const ip = (o: number, proto: number, src: number, dst: number) => {
    p[o] = 0x45;
    p[o + 9] = proto;
    dv.setUint32(o + 12, src);
    dv.setUint32(o + 16, dst);
  };
  // A TCP segment B:80 -> A:lport (the first 20 + 4 bytes are enough for the ports).
  ip(0, 6, B, A);
  for (let n = 2; n <= 8; n++) {
    for (let lport = 50000; lport < 50040; lport++) {
      dv.setUint16(20, 80);
      dv.setUint16(22, lport);
      assert.equal(packetCpu(p, 0, 40, n), rssFlowCpu(B, A, 80, lport, n));
    }
  }
  // A fragment (MF set): the 2-tuple, so every fragment meets on one CPU.
  dv.setUint16(6, 0x2000);
  assert.equal(packetCpu(p, 0, 40, 8), rssAddrCpu(B, A, 8));
  dv.setUint16(6, 0);
  // ICMP unreachable from B quoting our segment A:lport -> B:80: the CPU of B:80 -> A:lport.
  ip(0, 1, B, A);
  p[20] = 3;
  p[21] = 3;
  ip(28, 6, A, B);
  for (let lport = 50000; lport < 50040; lport++) {
    dv.setUint16(48, lport);
    dv.setUint16(50, 80);
    assert.equal(packetCpu(p, 0, p.length, 4), rssFlowCpu(B, A, 80, lport, 4));
  }
});
