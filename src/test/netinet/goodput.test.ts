/**
 * The goodput harness (src/bench/goodput.ts): its theoretical bounds against
 * hand-computed figures, and runs on the manual clock (virtual time, exact
 * from their seeds) that must land near them: 1% loss at 10 ms within
 * [0.5, 3] x the Mathis bound and below the link, with retransmissions;
 * no loss near the link rate. Every run gives every mbuf back.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { arena, tcpLeakCheck } from './tcplink.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { cubicBps, goodputTable, linkPayloadBps, mathisBps, runGoodput, sweepSvg } from '../../bench/goodput.js';

test('goodput bounds: Mathis, CUBIC response (Reno-friendly max), link payload rate', () => {
  // 1448 B / 10 ms * sqrt(1.5 / 0.01) = 1448 * 8 * 100 * 12.247 bit/s.
  assert.ok(Math.abs(mathisBps(1448, 0.01, 0.01) - 1448 * 800 * Math.sqrt(150)) < 1);
  assert.equal(mathisBps(1448, 0.01, 0.04) * 2, mathisBps(1448, 0.01, 0.01));
  // Short RTT: the Reno-friendly region (CUBIC's own window is smaller).
  assert.equal(cubicBps(1448, 0.01, 0.01), mathisBps(1448, 0.01, 0.01));
  // Long RTT, small loss: CUBIC's window (C (3 + b) / (4 (1 - b)))^(1/4) RTT^(3/4) / p^(3/4) wins.
  const w = ((0.4 * 3.7) / 1.2) ** 0.25 * (0.5 ** 0.75 / 1e-4 ** 0.75);
  assert.ok(Math.abs(cubicBps(1448, 0.5, 1e-4) - (w * 1448 * 8) / 0.5) < 1);
  assert.ok(cubicBps(1448, 0.5, 1e-4) > mathisBps(1448, 0.5, 1e-4));
  assert.ok(Math.abs(linkPayloadBps(100e6, 1448) - (100e6 * 1448) / 1514) < 1e-6);
});

test('goodput: 1% loss, 10 ms RTT, both algorithms near the Mathis bound, below the link, with retransmissions', () => {
  const done = tcpLeakCheck();
  const rs = ['newreno', 'cubic'].map((cc) => runGoodput({ cc, loss: 0.01, rttMs: 10, seconds: 6, mb: arena().mb }));
  done();
  for (const r of rs) {
    const ratio = r.goodputBps / r.mathisBps;
    assert.ok(ratio >= 0.5 && ratio <= 3, `${r.cc}: goodput ${r.goodputBps} = ${ratio} x Mathis`);
    assert.ok(r.goodputBps < r.linkBps, `${r.cc}: below the link rate`);
    assert.ok(r.retransmits > 0 && r.linkLost > 0, `${r.cc}: losses and retransmissions`);
    assert.ok(r.srttMs >= 10 && r.srttMs < 40, `${r.cc}: srtt ${r.srttMs} ms`);
  }
  assert.ok(rs[0].goodputBps / rs[0].mathisBps > 0.8, 'newreno: at least 0.8 of its Mathis bound');
  const cubic = rs[1].goodputBps / rs[1].mathisBps;
  assert.ok(cubic >= 0.8 && cubic <= 1.6, `cubic: ${cubic} x Mathis (the goal is >= 0.8; far above means it does not back off)`);
  for (const r of rs) {
    assert.ok(r.retransmits <= 1.2 * (r.linkLost + r.queueDrops), `${r.cc}: ${r.retransmits} retransmits for ${r.linkLost + r.queueDrops} drops`);
    assert.equal(r.peerStats[TCPS_STAT.rcvreassfull], 0, `${r.cc}: the receiver's reassembly queue never overflows at this window`);
  }
  const md = goodputTable(rs);
  assert.match(md, /\| newreno \| 1\.0% \| 10 ms \|/);
  const svg = sweepSvg(rs);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /goodput, Mbit\/s/);
  assert.equal((svg.match(/<rect x=/g) ?? []).length >= 2, true);
});

test('goodput: no loss fills most of the link', () => {
  const done = tcpLeakCheck();
  const r = runGoodput({ cc: 'cubic', loss: 0, rttMs: 10, seconds: 4, mb: arena().mb });
  done();
  assert.equal(r.linkLost, 0);
  assert.ok(r.goodputBps > 0.8 * r.linkBps && r.goodputBps <= 1.01 * r.linkBps, `goodput ${r.goodputBps} of ${r.linkBps}`);
});
