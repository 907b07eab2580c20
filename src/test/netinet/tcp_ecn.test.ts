/**
 * ECN (RFC 3168) over two stacks on the in-memory link: negotiation by
 * net.inet.tcp.ecn.enable (1 asks and accepts, 2 only accepts, 0 off),
 * ECT(0) on new data, and the loop CE mark -> ECE on the receiver's ACKs ->
 * one window reduction at the sender (cc_cong_signal CC_ECN) -> CWR on its
 * next new data -> the echo stops; with the counters netstat -s prints.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { closePair, connectPair, tcpLeakCheck, tcpPair, type TcpPair } from './tcplink.js';
import { M_DATA, M_LEN, PH_LEN } from '../../kern/mbuf/layout.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { TF_ECN_PERMIT, type Tcpcb } from '../../netinet/tcp_var.js';
import { TH_CWR, TH_ECE } from '../../wire/tcp.js';
import { TCPS_ESTABLISHED } from '../../netinet/tcp_fsm.js';

const ETH = 14;

/** The IPv4 TCP frame's first-mbuf data offset, or -1 (Ethernet 14 + IP 20 in the first mbuf, as our stack builds them). */
function tcpFrame(p: TcpPair, m: number): number {
  const d = p.mb.i32[(m + M_DATA) >> 2];
  if (p.mb.i32[(m + M_LEN) >> 2] < ETH + 40 || p.mb.u8[d + ETH + 9] !== 6) return -1;
  return d;
}

const payload = (p: TcpPair, m: number, d: number) => p.mb.i32[(m + PH_LEN) >> 2] - ETH - 20 - (p.mb.u8[d + ETH + 32] >> 4) * 4;
const tcpFlagsOf = (p: TcpPair, d: number) => p.mb.u8[d + ETH + 33];

/** Set the IP ECN field to CE and fix the header checksum (a router marking congestion). */
function markCe(p: TcpPair, d: number): void {
  const u8 = p.mb.u8;
  const ip = d + ETH;
  u8[ip + 1] |= 0x03;
  u8[ip + 10] = 0;
  u8[ip + 11] = 0;
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (u8[ip + i] << 8) | u8[ip + i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  u8[ip + 10] = c >>> 8;
  u8[ip + 11] = c & 0xff;
}

function established(tcpAll: Set<Tcpcb>): Tcpcb {
  const tp = [...tcpAll].find((x) => x.state === TCPS_ESTABLISHED);
  assert.ok(tp);
  return tp;
}

test('ECN negotiation: ecn.enable=1 asks, 2 accepts (FreeBSD default), 0 refuses; TCPI_OPT_ECN', () => {
  for (const [ea, eb, want] of [
    [1, 2, true],
    [1, 1, true],
    [2, 2, false],
    [1, 0, false],
    [0, 1, false],
  ] as const) {
    const done = tcpLeakCheck();
    const p = tcpPair();
    p.a.tcp.cfg.ecn_enable = ea;
    p.b.tcp.cfg.ecn_enable = eb;
    const ids = connectPair(p);
    const ta = established(p.a.tcp.all);
    const tb = established(p.b.tcp.all);
    assert.equal((ta.t_flags & TF_ECN_PERMIT) !== 0, want, `a ${ea} b ${eb}: client`);
    assert.equal((tb.t_flags & TF_ECN_PERMIT) !== 0, want, `a ${ea} b ${eb}: server`);
    assert.equal(p.a.tcp.stats[TCPS_STAT.ecn_shs], want ? 1 : 0);
    assert.equal(p.b.tcp.stats[TCPS_STAT.ecn_shs], want ? 1 : 0);
    assert.equal((p.a.tcp.sockets!.info(ids[0])!.tcpi_options & 0x08) !== 0, want);
    closePair(p, ids, 1000, done);
  }
});

test('ECN: CE on a data segment -> ECE on the ACKs until CWR -> one cwnd reduction per window', () => {
  const done = tcpLeakCheck();
  const p = tcpPair({ delayMs: 5 });
  p.a.tcp.cfg.ecn_enable = 1;
  const ids = connectPair(p);
  const [c, s] = ids;
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const ta = established(p.a.tcp.all);
  const tb = established(p.b.tcp.all);

  let dataSegs = 0;
  let ect0 = 0;
  let cwrs = 0;
  let markAt = -1;
  const cwrAt: number[] = [];
  p.ab.imp.filter = (m) => {
    const d = tcpFrame(p, m);
    if (d < 0 || payload(p, m, d) === 0) return false;
    dataSegs++;
    if ((p.mb.u8[d + ETH + 1] & 3) === 2) ect0++;
    if ((tcpFlagsOf(p, d) & TH_CWR) !== 0) {
      cwrs++;
      cwrAt.push(dataSegs);
    }
    if (dataSegs === markAt) markCe(p, d);
    return false;
  };
  let eceAcks = 0;
  p.ba.imp.filter = (m) => {
    const d = tcpFrame(p, m);
    if (d >= 0 && (tcpFlagsOf(p, d) & TH_ECE) !== 0) eceAcks++;
    return false;
  };
  // The sender always has data (a bulk transfer) until `total` bytes.
  const buf = new Uint8Array(65536);
  const rbuf = new Uint8Array(65536);
  let total = Infinity;
  let sent = 0;
  let got = 0;
  const pump = (ms: number) => {
    for (let t = 0; t < ms; t += 2) {
      while (sent < total) {
        const n = sa.write(c, buf.subarray(0, Math.min(buf.length, total - sent)));
        if (n <= 0) break;
        sent += n;
      }
      p.td.advance(2);
      for (let n = sb.read(s, rbuf); n > 0; n = sb.read(s, rbuf)) got += n;
    }
  };
  pump(200);
  assert.ok(dataSegs > 20 && ect0 === dataSegs, `every new data segment is ECT(0) (${ect0}/${dataSegs})`);
  assert.equal(p.a.tcp.stats[TCPS_STAT.ecn_sndect0], dataSegs);
  const rcvEct0 = p.b.tcp.stats[TCPS_STAT.ecn_ect0];
  assert.ok(rcvEct0 > 0 && rcvEct0 <= dataSegs, 'the receiver counts them as they arrive');
  assert.equal(eceAcks, 0);

  // A router marks the next data segment.
  markAt = dataSegs + 1;
  const cwndBefore = ta.snd_cwnd;
  pump(40);
  assert.equal(p.b.tcp.stats[TCPS_STAT.ecn_ce], 1, 'the receiver counted the CE mark');
  assert.ok(eceAcks >= 1, 'and echoed ECE');
  assert.equal(p.a.tcp.stats[TCPS_STAT.ecn_rcwnd], 1, 'the sender reduced once, however many ECEs came');
  assert.ok(ta.snd_cwnd < cwndBefore, `cwnd ${cwndBefore} -> ${ta.snd_cwnd}`);
  assert.equal(cwrs, 1, 'CWR went out once, on new data');
  assert.ok(cwrAt[0] > markAt);
  assert.equal(tb.t_flags2 & 2, 0, 'the CWR stopped the echo (TF2_ECN_SND_ECE clear)');
  const eceSoFar = eceAcks;
  pump(100);
  assert.equal(eceAcks, eceSoFar, 'no ECE after the CWR');
  assert.equal(p.a.tcp.stats[TCPS_STAT.ecn_rcwnd], 1);

  // A later mark, a window on: a second reduction.
  markAt = dataSegs + 1;
  pump(100);
  assert.equal(p.b.tcp.stats[TCPS_STAT.ecn_ce], 2);
  assert.equal(p.a.tcp.stats[TCPS_STAT.ecn_rcwnd], 2);
  assert.equal(cwrs, 2);
  assert.equal(p.a.tcp.stats[TCPS_STAT.rexmttimeo], 0, 'no loss involved');
  assert.equal(p.a.tcp.stats[TCPS_STAT.sndrexmitpack], 0);
  total = sent;
  pump(3000);
  assert.equal(got, total);
  assert.match(p.b.tcp.netstatS(), /2 packets with ECN CE bit set/);
  assert.match(p.a.tcp.netstatS(), /2 times ECN reduced the congestion window/);
  assert.match(p.a.tcp.netstatS(), /\d+ packets sent with ECN ECT\(0\) bit set/);
  p.ab.imp.filter = undefined;
  p.ba.imp.filter = undefined;
  closePair(p, ids, 1000, done);
});
