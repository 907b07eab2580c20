/**
 * The runner's packet codec: build/decode round trips for TCP (with every
 * option kind, flags, payload, UDP encapsulation) and ICMP, checksums that
 * verify, decode errors for malformed input, and packetdrill's dump format.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildIcmp, buildTcp, decodePacket, decodeTcpOptions, encodeTcpOptions, ipChecksumOk, packetToString, tcpFlagsFrom, type TcpBuild } from '../../packetdrill/packet.js';
import type { TcpOption } from '../../packetdrill/ast.js';
import { cksumAdd, cksumFold, pseudoHeaderSum } from '../../wire/checksum.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const option: fc.Arbitrary<TcpOption> = fc.oneof(
  fc.constant({ kind: 'nop' } as const),
  fc.constant({ kind: 'eol' } as const),
  u16.map((mss) => ({ kind: 'mss', mss }) as const),
  fc.integer({ min: 0, max: 14 }).map((shift) => ({ kind: 'wscale', shift }) as const),
  fc.constant({ kind: 'sackOK' } as const),
  fc.array(fc.tuple(u32, u32), { minLength: 1, maxLength: 3 }).map((blocks) => ({ kind: 'sack', blocks }) as TcpOption),
  fc.tuple(u32, u32).map(([val, ecr]) => ({ kind: 'ts', val, ecr }) as const),
);
const optionList = fc.array(option, { maxLength: 4 }).filter((o) => encodeTcpOptions(o).length <= 40 && encodeTcpOptions(o).length % 4 === 0);

test('TCP build/decode round trip keeps every field, and the checksums verify', () => {
  fc.assert(
    fc.property(u32, u32, u32, u32, u16, u16, fc.stringMatching(/^[FSRP.UEWA]*$/), optionList, fc.uint8Array({ maxLength: 64 }), fc.boolean(), (src, dst, seq, ack, win, port, flags, options, payload, encap) => {
      const b: TcpBuild = {
        src,
        dst,
        tos: 0x20,
        ttl: 64,
        udp: encap ? { srcPort: 9811, dstPort: 1 } : null,
        tcp: { srcPort: port, dstPort: 8080, seq, ack, ...tcpFlagsFrom(flags), win, urgPtr: 0, options, payload },
      };
      const bytes = buildTcp(b);
      assert.ok(ipChecksumOk(bytes));
      const p = decodePacket(bytes);
      assert.ok(typeof p !== 'string');
      assert.deepEqual([p.ip.src, p.ip.dst, p.ip.tos, p.ip.ttl, p.ip.totalLen], [src, dst, 0x20, 64, bytes.length]);
      assert.deepEqual(p.udp, b.udp);
      const t = p.tcp!;
      assert.deepEqual([t.srcPort, t.dstPort, t.seq, t.ack, t.win], [port, 8080, seq, ack, win]);
      assert.deepEqual(tcpFlagsFrom(flags), { fin: t.fin, syn: t.syn, rst: t.rst, psh: t.psh, ackf: t.ackf, urgf: t.urgf, ece: t.ece, cwr: t.cwr, ae: t.ae });
      assert.deepEqual(t.options, options);
      assert.deepEqual(Array.from(t.payload), Array.from(payload));
      // The TCP checksum verifies over the pseudo-header.
      const off = 20 + (encap ? 8 : 0);
      const seglen = bytes.length - off;
      assert.equal(cksumFold(cksumAdd(bytes, off, seglen, pseudoHeaderSum(src, dst, 6, seglen))), 0xffff);
    }),
  );
});

test('TCP option decode is the inverse of encode and rejects bad lengths', () => {
  fc.assert(fc.property(fc.array(option, { maxLength: 6 }), (o) => assert.deepEqual(decodeTcpOptions(encodeTcpOptions(o)), o)));
  assert.match(decodeTcpOptions(Uint8Array.of(2, 3, 0)) as string, /bad length 3/);
  assert.match(decodeTcpOptions(Uint8Array.of(8)) as string, /no length byte/);
  assert.match(decodeTcpOptions(Uint8Array.of(5, 6, 0, 0, 0, 0)) as string, /bad length 6/);
  assert.deepEqual(decodeTcpOptions(Uint8Array.of(30, 4, 1, 2)), [{ kind: 'generic', code: 30, data: Uint8Array.of(1, 2) }]);
});

test('decode never throws on arbitrary bytes (truncated or garbage datagrams give an error string)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
      const r = decodePacket(b);
      assert.ok(typeof r === 'string' || r.ip.version === 4);
    }),
  );
  const ok = buildTcp({ src: 1, dst: 2, tos: 0, ttl: 1, udp: null, tcp: { srcPort: 1, dstPort: 2, seq: 0, ack: 0, ...tcpFlagsFrom('S'), win: 1, urgPtr: 0, options: [], payload: new Uint8Array(0) } });
  for (let n = 0; n < ok.length; n++) assert.equal(typeof decodePacket(ok.subarray(0, n)), 'string', `truncated to ${n}`);
});

test('ICMP errors quote an IP header and the TCP ports and sequence number', () => {
  const b = buildIcmp({ src: 0xc0000201, dst: 0xc0a80001, tos: 0, ttl: 255, type: 3, code: 4, mtu: 1200, quote: { src: 0xc0a80001, dst: 0xc0000201, proto: 6, srcPort: 40000, dstPort: 8080, seq: 12345, payloadLen: 0 } });
  assert.ok(ipChecksumOk(b));
  const p = decodePacket(b);
  assert.ok(typeof p !== 'string' && p.icmp !== null);
  assert.deepEqual([p.icmp.type, p.icmp.code, p.icmp.mtu], [3, 4, 1200]);
  const q = new DataView(p.icmp.quoted.buffer, p.icmp.quoted.byteOffset);
  assert.deepEqual([q.getUint32(12), q.getUint32(16), q.getUint16(20), q.getUint16(22), q.getUint32(24)], [0xc0a80001, 0xc0000201, 40000, 8080, 12345]);
  assert.equal(cksumFold(cksumAdd(b, 20, b.length - 20, 0)), 0xffff);
});

test('packetToString prints the dialect short form', () => {
  const b = buildTcp({
    src: 1, dst: 2, tos: 0, ttl: 64, udp: { srcPort: 9811, dstPort: 1 },
    tcp: { srcPort: 1, dstPort: 2, seq: 1, ack: 1, ...tcpFlagsFrom('P.'), win: 65535, urgPtr: 0, options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: [[5, 9]] }], payload: new Uint8Array(10) },
  });
  const p = decodePacket(b);
  assert.ok(typeof p !== 'string');
  assert.equal(packetToString(p), 'P. 1:11(10) ack 1 win 65535 <nop,nop,sack 5:9>/udp(9811 > 1)');
  assert.equal(packetToString(p, { showWin: false }), 'P. 1:11(10) ack 1 <nop,nop,sack 5:9>/udp(9811 > 1)');
});
