// Wire formats: emit/parse round trips, and fuzzing (truncations, bad lengths,
// bad checksums, random bytes) that must give a parse error code, never a throw
// and never a read past the given length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WIRE_BAD_CKSUM, WIRE_BAD_FRAGMENT, WIRE_BAD_LEN, WIRE_CODE_NAMES, WIRE_OK, WIRE_TRUNCATED, wireCodeName } from '../../wire/codes.js';
import { ETH_HLEN, ETHERTYPE_ARP, ethDst, ethEmit, ethParse, ethSrc, ethType, MAC_BROADCAST, macFromString, macIsGroup, macToString, readMac, writeMac } from '../../wire/ethernet.js';
import { ARP_LEN, ARPOP_REPLY, ARPOP_REQUEST, arpEmit, arpOp, arpParse, arpSha, arpSpa, arpTha, arpTpa } from '../../wire/arp.js';
import {
  IP_DF,
  IP_HLEN_MIN,
  IP_MF,
  IPPROTO_UDP,
  ipDst,
  ipFragOff,
  ipFromString,
  ipHlen,
  ipProto,
  ipSrc,
  ipToString,
  ipTotalLen,
  ipv4Emit,
  ipv4Parse,
  ipv4SetCksum,
  prefixToMask,
} from '../../wire/ipv4.js';
import { ICMP_ECHO, ICMP_HLEN, icmpEmit, icmpId, icmpParse, icmpSeq, icmpType } from '../../wire/icmp.js';
import { UDP_HLEN, udpDport, udpEmit, udpLen, udpParse, udpSport } from '../../wire/udp.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const mac = fc.integer({ min: 0, max: 0xffff_ffff_ffff });
const nCodes = WIRE_CODE_NAMES.length;

/** Run a parser over `len` bytes with two different tails: the result must not depend on bytes past len. */
function parseBoth(bytes: Uint8Array, len: number, at: number, parse: (u8: Uint8Array, off: number, len: number) => number): number {
  const a = new Uint8Array(at + bytes.length + 64).fill(0x00);
  const b = new Uint8Array(at + bytes.length + 64).fill(0xff);
  a.set(bytes, at);
  b.set(bytes, at);
  const ra = parse(a, at, len);
  const rb = parse(b, at, len);
  assert.equal(ra, rb, 'parser read past the given length');
  assert.ok(Number.isInteger(ra) && ra >= 0 && ra < nCodes, `unknown code ${ra}`);
  return ra;
}

test('MAC numbers round-trip through bytes and strings', () => {
  fc.assert(
    fc.property(mac, (m) => {
      const b = new Uint8Array(8);
      writeMac(b, 1, m);
      assert.equal(readMac(b, 1), m);
      assert.equal(macFromString(macToString(m)), m);
    }),
  );
  assert.equal(macToString(0x0200_0000_0001), '02:00:00:00:00:01');
  assert.equal(macFromString('zz:00:00:00:00:01'), -1);
  assert.ok(macIsGroup(MAC_BROADCAST));
  assert.ok(!macIsGroup(0x0200_0000_0001));
});

test('Ethernet header emit and parse', () => {
  fc.assert(
    fc.property(mac, mac, u16, fc.nat(4), (d, s, t, at) => {
      const b = new Uint8Array(at + ETH_HLEN);
      ethEmit(b, at, d, s, t);
      assert.equal(ethParse(b, at, ETH_HLEN), WIRE_OK);
      assert.equal(ethDst(b, at), d);
      assert.equal(ethSrc(b, at), s);
      assert.equal(ethType(b, at), t);
      assert.equal(ethParse(b, at, ETH_HLEN - 1), WIRE_TRUNCATED);
    }),
  );
});

test('ARP emit, parse, truncation and garbage', () => {
  fc.assert(
    fc.property(fc.constantFrom(ARPOP_REQUEST, ARPOP_REPLY), mac, u32, mac, u32, (op, sha, spa, tha, tpa) => {
      const b = new Uint8Array(ARP_LEN);
      arpEmit(b, 0, op, sha, spa, tha, tpa);
      assert.equal(parseBoth(b, ARP_LEN, 3, arpParse), WIRE_OK);
      assert.deepEqual([arpOp(b, 0), arpSha(b, 0), arpSpa(b, 0), arpTha(b, 0), arpTpa(b, 0)], [op, sha, spa, tha, tpa]);
      for (let l = 0; l < ARP_LEN; l++) assert.equal(parseBoth(b, l, 0, arpParse), WIRE_TRUNCATED);
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (junk) => {
      parseBoth(junk, junk.length, 1, arpParse);
    }),
  );
});

/** A valid IPv4 packet: header with optional well-formed options, then payload. */
const ipPacket = fc.record({
  opts: fc.array(fc.oneof(fc.constant([1] as number[]), fc.uint8Array({ minLength: 0, maxLength: 6 }).map((d) => [0x44, d.length + 2, ...d])), { maxLength: 4 }),
  payload: fc.uint8Array({ maxLength: 200 }),
  src: u32,
  dst: u32,
  id: u16,
  ttl: fc.integer({ min: 0, max: 255 }),
  df: fc.boolean(),
});

function buildIp(p: { opts: readonly (readonly number[])[]; payload: Uint8Array; src: number; dst: number; id: number; ttl: number; df: boolean }): Uint8Array {
  const opts = p.opts.flat();
  while (opts.length % 4) opts.push(0);
  const hlen = IP_HLEN_MIN + Math.min(opts.length, 40);
  const total = hlen + p.payload.length;
  const b = new Uint8Array(total);
  ipv4Emit(b, 0, 0, total, p.id, p.df ? IP_DF : 0, p.ttl, IPPROTO_UDP, p.src, p.dst, false);
  b[0] = 0x40 | (hlen >> 2);
  b.set(opts.slice(0, hlen - IP_HLEN_MIN), IP_HLEN_MIN);
  b.set(p.payload, hlen);
  ipv4SetCksum(b, 0);
  return b;
}

test('IPv4 emit and parse with options; every truncation is an error', () => {
  fc.assert(
    fc.property(ipPacket, (p) => {
      const b = buildIp(p);
      const parse = (u8: Uint8Array, off: number, len: number) => ipv4Parse(u8, off, len, true);
      assert.equal(parseBoth(b, b.length, 2, parse), WIRE_OK);
      assert.equal(ipSrc(b, 0), p.src);
      assert.equal(ipDst(b, 0), p.dst);
      assert.equal(ipProto(b, 0), IPPROTO_UDP);
      assert.equal(ipTotalLen(b, 0), b.length);
      assert.equal(ipHlen(b, 0) % 4, 0);
      for (let l = 0; l < b.length; l++) assert.notEqual(parseBoth(b, l, 0, parse), WIRE_OK);
      // Link padding after the datagram is fine.
      const padded = new Uint8Array(b.length + 10);
      padded.set(b);
      assert.equal(ipv4Parse(padded, 0, padded.length, true), WIRE_OK);
    }),
  );
});

test('IPv4: any single-bit flip in the header is rejected', () => {
  fc.assert(
    fc.property(ipPacket, fc.nat(), (p, pick) => {
      const b = buildIp(p);
      const bit = pick % (ipHlen(b, 0) * 8);
      b[bit >> 3] ^= 1 << (bit & 7);
      assert.notEqual(ipv4Parse(b, 0, b.length, true), WIRE_OK);
    }),
  );
});

test('IPv4: bad lengths, bad options and bad fragments give their codes', () => {
  const b = buildIp({ opts: [], payload: new Uint8Array(16), src: 1, dst: 2, id: 3, ttl: 64, df: false });
  // total length larger than the data
  b[2] = 0;
  b[3] = 200;
  ipv4SetCksum(b, 0);
  assert.equal(ipv4Parse(b, 0, b.length, true), WIRE_BAD_LEN);
  // checksum wrong but not verified: offload path accepts the header
  const c = buildIp({ opts: [], payload: new Uint8Array(16), src: 1, dst: 2, id: 3, ttl: 64, df: false });
  c[10] ^= 0xff;
  assert.equal(ipv4Parse(c, 0, c.length, true), WIRE_BAD_CKSUM);
  assert.equal(ipv4Parse(c, 0, c.length, false), WIRE_OK);
  // option whose length runs past the header
  const o = buildIp({ opts: [[0x44, 2, 0, 0]], payload: new Uint8Array(8), src: 1, dst: 2, id: 3, ttl: 64, df: false });
  o[21] = 12;
  ipv4SetCksum(o, 0);
  assert.equal(WIRE_CODE_NAMES[ipv4Parse(o, 0, o.length, true)], 'bad options');
  // an MF fragment whose data is not a multiple of 8
  const f = buildIp({ opts: [], payload: new Uint8Array(13), src: 1, dst: 2, id: 3, ttl: 64, df: false });
  f[6] = IP_MF >> 8;
  ipv4SetCksum(f, 0);
  assert.equal(ipv4Parse(f, 0, f.length, true), WIRE_BAD_FRAGMENT);
  // a fragment that would end beyond 65535
  const g = buildIp({ opts: [], payload: new Uint8Array(16), src: 1, dst: 2, id: 3, ttl: 64, df: false });
  g[6] = 0x1f;
  g[7] = 0xff;
  ipv4SetCksum(g, 0);
  assert.equal(ipFragOff(g, 0), 0x1fff * 8);
  assert.equal(ipv4Parse(g, 0, g.length, true), WIRE_BAD_FRAGMENT);
  assert.equal(wireCodeName(WIRE_BAD_FRAGMENT), 'bad fragment');
});

test('IPv4 parse of random bytes returns a code, never throws', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), fc.boolean(), (junk, v4, ck) => {
      if (v4 && junk.length > 0) junk[0] = 0x40 | (junk[0] & 0x0f);
      parseBoth(junk, junk.length, 1, (u8, off, len) => ipv4Parse(u8, off, len, ck));
    }),
    { numRuns: 2000 },
  );
});

test('UDP emit, checksum verification, bit flips, bad lengths', () => {
  fc.assert(
    fc.property(u32, u32, u16, u16, fc.uint8Array({ maxLength: 300 }), fc.nat(), (src, dst, sp, dp, data, pick) => {
      const len = UDP_HLEN + data.length;
      const b = new Uint8Array(len);
      b.set(data, UDP_HLEN);
      udpEmit(b, 0, sp, dp, len, src, dst, true);
      const parse = (u8: Uint8Array, off: number, l: number) => udpParse(u8, off, l, src, dst, true);
      assert.equal(parseBoth(b, len, 1, parse), WIRE_OK);
      assert.deepEqual([udpSport(b, 0), udpDport(b, 0), udpLen(b, 0)], [sp, dp, len]);
      for (let l = 0; l < len; l++) assert.notEqual(parseBoth(b, l, 0, parse), WIRE_OK);
      const bit = pick % (len * 8);
      b[bit >> 3] ^= 1 << (bit & 7);
      const zeroSum = b[6] === 0 && b[7] === 0; // flipped to "no checksum": legal
      if (!zeroSum) assert.notEqual(udpParse(b, 0, len, src, dst, true), WIRE_OK);
    }),
  );
  const b = new Uint8Array(20);
  udpEmit(b, 0, 1, 2, 20, 1, 2, false);
  assert.equal(udpParse(b, 0, 20, 9, 9, true), WIRE_OK, 'zero checksum means none');
  b[5] = 4;
  assert.equal(udpParse(b, 0, 20, 1, 2, true), WIRE_BAD_LEN);
  b[5] = 30;
  assert.equal(udpParse(b, 0, 20, 1, 2, true), WIRE_BAD_LEN);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), u32, u32, (junk, s, d) => {
      parseBoth(junk, junk.length, 0, (u8, off, l) => udpParse(u8, off, l, s, d, true));
    }),
  );
});

test('ICMP emit and parse, bad checksum', () => {
  fc.assert(
    fc.property(u16, u16, fc.uint8Array({ maxLength: 100 }), (id, seq, data) => {
      const len = ICMP_HLEN + data.length;
      const b = new Uint8Array(len);
      b.set(data, ICMP_HLEN);
      icmpEmit(b, 0, ICMP_ECHO, 0, (id << 16) | seq, len);
      const parse = (u8: Uint8Array, off: number, l: number) => icmpParse(u8, off, l, true);
      assert.equal(parseBoth(b, len, 0, parse), WIRE_OK);
      assert.deepEqual([icmpType(b, 0), icmpId(b, 0), icmpSeq(b, 0)], [ICMP_ECHO, id, seq]);
      b[len - 1] ^= 0x10;
      assert.equal(icmpParse(b, 0, len, true), WIRE_BAD_CKSUM);
      for (let l = 0; l < ICMP_HLEN; l++) assert.equal(icmpParse(b, 0, l, true), WIRE_TRUNCATED);
    }),
  );
});

test('address helpers', () => {
  assert.equal(ipFromString('10.0.0.1'), 0x0a000001);
  assert.equal(ipToString(0xc0a80101), '192.168.1.1');
  assert.equal(ipFromString('256.0.0.1'), -1);
  assert.equal(ipFromString('1.2.3'), -1);
  assert.equal(prefixToMask(24), 0xffffff00);
  assert.equal(prefixToMask(0), 0);
  assert.equal(prefixToMask(32), 0xffffffff);
  assert.equal(ETHERTYPE_ARP, 0x0806);
});
