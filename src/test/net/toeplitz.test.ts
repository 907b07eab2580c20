// RSS Toeplitz hash against the verification values of Microsoft's RSS spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toeplitz2, toeplitz4, rssCpu } from '../../net/rss.js';
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
    assert.equal(toeplitz2(s, d), h2, `2-tuple ${src} -> ${dst}`);
    assert.equal(toeplitz4(s, d, sport, dport), h4, `4-tuple ${src}:${sport} -> ${dst}:${dport}`);
  }
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
