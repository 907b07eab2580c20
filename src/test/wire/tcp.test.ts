/**
 * wire/tcp.ts: FreeBSD's option layout byte for byte, emit/parse round
 * trips, and malformed input (any bytes, any lengths) never throws.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TcpOpt, tcpEmit, tcpEmitOptions, tcpParseHeader, tcpParseOptions, tcpHlen, tcpFlags, tcpSeq, tcpAck, TOF_MSS, TOF_SACK, TOF_SACKPERM, TOF_SCALE, TOF_TS, TH_SYN, TH_ACK, TH_ECE, TH_CWR } from '../../wire/tcp.js';
import { WIRE_OK, WIRE_BAD_HLEN, WIRE_TRUNCATED, WIRE_BAD_OPTIONS } from '../../wire/codes.js';

function emit(to: TcpOpt): number[] {
  const u8 = new Uint8Array(64);
  const n = tcpEmitOptions(u8, 0, to);
  return [...u8.subarray(0, n)];
}

test('tcp options: the SYN layout <mss,nop,wscale,sackOK,TS> and the bare <mss,sackOK,eol,eol>', () => {
  const to = new TcpOpt();
  to.flags = TOF_MSS | TOF_SCALE | TOF_SACKPERM | TOF_TS;
  to.mss = 1460;
  to.wscale = 6;
  to.tsval = 100;
  to.tsecr = 0;
  assert.deepEqual(emit(to), [2, 4, 5, 180, 1, 3, 3, 6, 4, 2, 8, 10, 0, 0, 0, 100, 0, 0, 0, 0]);
  to.flags = TOF_MSS | TOF_SACKPERM;
  assert.deepEqual(emit(to), [2, 4, 5, 180, 4, 2, 0, 0]);
  to.flags = TOF_TS;
  assert.deepEqual(emit(to).slice(0, 3), [1, 1, 8], 'nop,nop,TS');
  to.flags = TOF_SACK;
  to.nsacks = 1;
  to.sacks[0] = 200;
  to.sacks[1] = 300;
  assert.deepEqual(emit(to), [1, 1, 5, 10, 0, 0, 0, 200, 0, 0, 1, 44]);
  // With timestamps, at most 3 SACK blocks fit in 40 bytes.
  to.flags = TOF_TS | TOF_SACK;
  to.nsacks = 4;
  const b = emit(to);
  assert.equal(b.length, 40);
  assert.equal(b[15], 2 + 3 * 8, 'three blocks');
});

test('tcp options: emit then parse gives the same values (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 14 }), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (mss, ws, sack, ts, tsval, tsecr) => {
      const to = new TcpOpt();
      to.flags = TOF_MSS | TOF_SCALE | (sack ? TOF_SACKPERM : 0) | (ts ? TOF_TS : 0);
      to.mss = mss;
      to.wscale = ws;
      to.tsval = tsval;
      to.tsecr = tsecr;
      const u8 = new Uint8Array(60);
      const n = tcpEmitOptions(u8, 20, to);
      assert.equal(n % 4, 0);
      const got = new TcpOpt();
      assert.equal(tcpParseOptions(u8, 20, n, true, got), WIRE_OK);
      assert.equal(got.flags, to.flags);
      assert.equal(got.mss, mss);
      assert.equal(got.wscale, ws);
      if (ts) assert.deepEqual([got.tsval, got.tsecr], [tsval, tsecr]);
    }),
  );
});

test('tcp header: emit/parse, flags including ECE/CWR, bad offsets are codes not throws', () => {
  const u8 = new Uint8Array(64);
  tcpEmit(u8, 0, 1234, 80, 0xfffffff0, 7, 24, TH_SYN | TH_ACK | TH_ECE | TH_CWR, 65535, 0);
  assert.equal(tcpHlen(u8, 0), 24);
  assert.equal(tcpFlags(u8, 0), TH_SYN | TH_ACK | TH_ECE | TH_CWR);
  assert.equal(tcpSeq(u8, 0), 0xfffffff0);
  assert.equal(tcpAck(u8, 0), 7);
  assert.equal(tcpParseHeader(u8, 0, 24), WIRE_OK);
  assert.equal(tcpParseHeader(u8, 0, 19), WIRE_TRUNCATED);
  assert.equal(tcpParseHeader(u8, 0, 22), WIRE_BAD_HLEN);
  u8[12] = 4 << 4;
  assert.equal(tcpParseHeader(u8, 0, 40), WIRE_BAD_HLEN);
  const to = new TcpOpt();
  assert.equal(tcpParseOptions(new Uint8Array([2, 1, 0, 0]), 0, 4, true, to), WIRE_BAD_OPTIONS);
  assert.equal(tcpParseOptions(new Uint8Array([8, 10, 0]), 0, 3, false, to), WIRE_BAD_OPTIONS);
});

test('tcp options: any bytes parse without throwing and fill at most 4 SACK blocks (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), (bytes, syn) => {
      const to = new TcpOpt();
      const r = tcpParseOptions(bytes, 0, bytes.length, syn, to);
      assert.ok(r === WIRE_OK || r === WIRE_BAD_OPTIONS);
      assert.ok(to.nsacks <= 4);
      if (to.flags & TOF_SCALE) assert.ok(to.wscale <= 14);
    }),
    { numRuns: 2000 },
  );
});

