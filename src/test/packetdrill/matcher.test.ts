/**
 * Mapping between script and live sequence space and the field-by-field
 * match of outbound packets, with synthetic packets: the dialect's ISN
 * offsets, SACK and TS ecr translation, and the mismatch wording.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PdConn } from '../../packetdrill/conn.js';
import { buildInbound, mapOutbound, scriptWire, verifyOutbound } from '../../packetdrill/matcher.js';
import { buildTcp, decodePacket, tcpFlagsFrom, type WirePacket } from '../../packetdrill/packet.js';
import { parseScript } from '../../packetdrill/parser.js';
import type { PacketSpec, TcpOption } from '../../packetdrill/ast.js';

const LOCAL = 0xc0a80001;
const REMOTE = 0xc0000201;

function spec(line: string): PacketSpec {
  const a = parseScript(`0 ${line}\n`).events[0].action;
  assert.ok(a.kind === 'packet');
  return a.packet;
}

function conn(): PdConn {
  const c = new PdConn();
  c.local = { addr: LOCAL, port: 8080 };
  c.remote = { addr: REMOTE, port: 49153 };
  c.scriptLocalIsn = 0;
  c.liveLocalIsn = 3_000_000_000;
  c.remoteIsn = 0;
  return c;
}

function live(flags: string, seq: number, ack: number, win: number, options: TcpOption[], len = 0, tos = 0): { p: WirePacket; bytes: Uint8Array } {
  const bytes = buildTcp({ src: LOCAL, dst: REMOTE, tos, ttl: 64, udp: null, tcp: { srcPort: 8080, dstPort: 49153, seq, ack, ...tcpFlagsFrom(flags), win, urgPtr: 0, options, payload: new Uint8Array(len) } });
  const p = decodePacket(bytes);
  assert.ok(typeof p !== 'string');
  return { p, bytes };
}

const ctx = { tsTickUsecs: 0, toleranceUsecs: 4000 };

function check(line: string, l: { p: WirePacket; bytes: Uint8Array }, c = conn()): string | null {
  const s = spec(line);
  return verifyOutbound(s, scriptWire(s), mapOutbound(c, l.p, s.tcp!), l.bytes, ctx);
}

test('outbound: live sequence numbers are mapped through the ISNs before matching', () => {
  const c = conn();
  // A SYN-ACK: local offset live ISN - script ISN.
  assert.equal(check('> S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>', live('S.', 3_000_000_000, 1, 65535, [{ kind: 'mss', mss: 1460 }, { kind: 'sackOK' }, { kind: 'eol' }, { kind: 'eol' }]), c), null);
  // Data: offset = live ISN; the SACK blocks move by the remote offset (0 here).
  assert.equal(check('> P. 1:11(10) ack 1 win 65535', live('P.', 3_000_000_001, 1, 65535, [], 10), c), null);
  assert.equal(check('> . 1:1(0) ack 1 win 100 <nop,nop,sack 5:9>', live('.', 3_000_000_001, 1, 100, [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: [[5, 9]] }]), c), null);
});

test('outbound: the first mismatching field is named the way packetdrill names it', () => {
  const base = '> . 1:1(0) ack 1 win 65535';
  assert.equal(check(base, live('.', 3_000_000_001, 1, 1000, [])), 'live packet field tcp_window: expected: 65535 (0xffff) vs actual: 1000 (0x3e8)');
  assert.equal(check(base, live('.', 3_000_000_002, 1, 65535, [])), 'live packet field tcp_seq: expected: 1 (0x1) vs actual: 2 (0x2)');
  assert.equal(check(base, live('.', 3_000_000_001, 7, 65535, [])), 'live packet field tcp_ack_seq: expected: 1 (0x1) vs actual: 7 (0x7)');
  assert.equal(check(base, live('F.', 3_000_000_001, 1, 65535, [])), 'live packet field tcp_fin: expected: 0 (0x0) vs actual: 1 (0x1)');
  assert.equal(check(base, live('.', 3_000_000_001, 1, 65535, [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'ts', val: 1, ecr: 2 }])), 'live packet field ipv4_total_length: expected: 40 (0x28) vs actual: 52 (0x34)');
  assert.equal(check('> . 1:1(0) ack 1 <...>', live('.', 3_000_000_001, 1, 9, [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'ts', val: 1, ecr: 2 }])), null, '<...> and no win: neither checked');
  assert.equal(check('> S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>', live('S.', 3_000_000_000, 1, 65535, [{ kind: 'mss', mss: 1460 }, { kind: 'eol' }, { kind: 'sackOK' }, { kind: 'eol' }])), 'bad outbound TCP options');
  assert.equal(check('> S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>', live('S.', 3_000_000_000, 1, 65535, [{ kind: 'mss', mss: 536 }, { kind: 'sackOK' }, { kind: 'eol' }, { kind: 'eol' }])), 'bad value outbound TCP option 2');
  assert.equal(check('> (tos 0x20) . 1:1(0) ack 1', live('.', 3_000_000_001, 1, 5, [], 0, 0xe0)), 'live packet field tos: expected: 32 (0x20) vs actual: 224 (0xe0)');
  assert.equal(check('>[ect01] . 1:1(0) ack 1', live('.', 3_000_000_001, 1, 5, [], 0, 0)), 'live packet field ip_ecn: expected: 0x1 or 0x2 vs actual: 0x0');
  assert.equal(check('>[ect0] . 1:1(0) ack 1', live('.', 3_000_000_001, 1, 5, [], 0, 2)), null);
  const l = live('.', 3_000_000_001, 1, 65535, []);
  l.bytes[10] ^= 1;
  assert.equal(check(base, l), 'bad outbound IP checksum');
  const t = live('.', 3_000_000_001, 1, 65535, []);
  t.bytes[36] ^= 1;
  assert.equal(check(base, t), 'bad outbound TCP checksum');
});

test('outbound TS val is rebased on the first one seen; inbound ecr maps back to the live value', () => {
  const c = conn();
  const syn = spec('> S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>');
  const opts = (val: number): TcpOption[] => [{ kind: 'mss', mss: 1460 }, { kind: 'nop' }, { kind: 'wscale', shift: 6 }, { kind: 'sackOK' }, { kind: 'ts', val, ecr: 0 }];
  const a = mapOutbound(c, live('S.', 3_000_000_000, 1, 65535, opts(777_000)).p, syn.tcp!);
  assert.deepEqual(a.tcp!.options[4], { kind: 'ts', val: 100, ecr: 0 });
  const b = mapOutbound(c, live('S.', 3_000_000_000, 1, 65535, opts(778_000)).p, spec('> S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 1100 ecr 0>').tcp!);
  assert.deepEqual(b.tcp!.options[4], { kind: 'ts', val: 1100, ecr: 0 });
  // Inbound: ecr 100 is the live 777000; seq/ack move into live space.
  const bytes = buildInbound(c, spec('< . 1:1(0) ack 1 win 1000 <nop,nop,TS val 5 ecr 100>'));
  assert.ok(typeof bytes !== 'string');
  const p = decodePacket(bytes);
  assert.ok(typeof p !== 'string');
  assert.deepEqual([p.ip.src, p.ip.dst, p.tcp!.srcPort, p.tcp!.dstPort, p.tcp!.seq, p.tcp!.ack], [REMOTE, LOCAL, 49153, 8080, 1, 3_000_000_001]);
  assert.deepEqual(p.tcp!.options[2], { kind: 'ts', val: 5, ecr: 777_000 });
  assert.equal(buildInbound(c, spec('< . 1:1(0) ack 1 win 1000 <nop,nop,TS val 5 ecr 42>')), 'unable to find mapping for timestamp ecr 42');
  const abs = buildInbound(c, spec('< . 1:1(0) ack 1 win 1000 <nop,nop,TS val 5 ecr 42!>'));
  assert.ok(typeof abs !== 'string');
});

test('inbound SACK blocks and acks move by the local offset; absolute seq (!) is left alone', () => {
  const c = conn();
  c.remoteIsn = 1000;
  const bytes = buildInbound(c, spec('< . 1:1(0) ack 101 win 9 <sack 201:301, nop, nop>'));
  assert.ok(typeof bytes !== 'string');
  const p = decodePacket(bytes);
  assert.ok(typeof p !== 'string');
  // The dialect's quirk: non-SYN remote offset is the remote ISN itself.
  assert.equal(p.tcp!.seq, 1001);
  assert.equal(p.tcp!.ack, 3_000_000_101);
  assert.deepEqual(p.tcp!.options[0], { kind: 'sack', blocks: [[3_000_000_201, 3_000_000_301]] });
  const r = decodePacket(buildInbound(c, spec('< R 5:5(0)! win 0')) as Uint8Array);
  assert.ok(typeof r !== 'string');
  assert.equal(r.tcp!.seq, 5);
});

test('--tcp_ts_tick_usecs checks outbound TS vals within the tolerance', () => {
  const opts = (val: number): TcpOption[] => [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'ts', val, ecr: 0 }];
  const s1 = spec('> . 1:1(0) ack 1 <nop,nop,TS val 100 ecr 0>');
  const s2 = spec('> . 1:1(0) ack 1 <nop,nop,TS val 200 ecr 0>');
  const tick = { tsTickUsecs: 1000, toleranceUsecs: 4000 };
  const c = conn();
  const first = live('.', 3_000_000_001, 1, 1, opts(5000));
  assert.equal(verifyOutbound(s1, scriptWire(s1), mapOutbound(c, first.p, s1.tcp!), first.bytes, tick), null);
  // 103 ticks later in the live clock against 100 in the script: 3 ms off, within 4 ms.
  const ok = live('.', 3_000_000_001, 1, 1, opts(5103));
  assert.equal(verifyOutbound(s2, scriptWire(s2), mapOutbound(c, ok.p, s2.tcp!), ok.bytes, tick), null);
  const off = live('.', 3_000_000_001, 1, 1, opts(5110));
  assert.equal(verifyOutbound(s2, scriptWire(s2), mapOutbound(c, off.p, s2.tcp!), off.bytes, tick), 'bad outbound TCP timestamp value, tolerance 4000');
  // Without a tick the TS val is not checked (packetdrill's default).
  assert.equal(verifyOutbound(s2, scriptWire(s2), mapOutbound(c, off.p, s2.tcp!), off.bytes, ctx), null);
});
