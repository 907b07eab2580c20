/**
 * Congestion control (src/netinet/cc): each algorithm's cwnd trajectory on
 * a real tcpcb driven by hand on the manual clock (ACKs of known sizes at
 * known times), against RFC 5681/3465/6582 for NewReno and RFC 9438's
 * W_cubic(t) = C (t - K)^3 + W_max and Reno-friendly W_est for CUBIC; the
 * sysctls; and TCP_CONGESTION switching a live connection over two stacks.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { arena, B, closePair, connectPair, tcpLeakCheck, tcpPair } from './tcplink.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';
import { Stack } from '../../netinet/stack.js';
import { TCPS_ESTABLISHED } from '../../netinet/tcp_fsm.js';
import { TCP_MAXWIN, TF_CONGRECOVERY, TF_FASTRECOVERY, type Tcpcb } from '../../netinet/tcp_var.js';
import { CC_ACK, CC_ECN, CC_NDUPACK, CC_RTO, CC_RTO_ERR, CCF_HYSTART_ALLOWED, ccAckReceived, ccAfterIdle, ccCongSignal, ccConnInitAlgo, ccNewRound, ccPostRecovery, ccRttSample } from '../../netinet/cc/cc.js';
import { HystartData, HYSTART_ENABLED, HYSTART_IN_CSS, hystartRttThresh } from '../../netinet/cc/cc_hystart.js';
import { CUBIC_ALPHA_AIMD, CUBIC_C, CUBICFLAG_IN_TF, CubicData, cubicCwnd, cubicData, cubicK } from '../../netinet/cc/cc_cubic.js';
import { ESRCH } from '../../kern/errno.js';
import { IPPROTO_TCP, TCP_CONGESTION, TCP_NODELAY } from '../../netinet/tcp_api.js';
import type { TcpSysctlNode } from '../../netinet/tcp_tunables.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';

const MSS = 1460;

interface Conn {
  st: Stack;
  td: LocalThread;
  tp: Tcpcb;
}

/** An established tcpcb (no peer) with the initial window, for driving an algorithm by hand. */
function conn(algo: string, over: Record<string, number> = {}): Conn {
  const { mb } = arena();
  const td = LocalThread.manual();
  const st = new Stack(mb, { name: 'cc', thread: td, tcp: { cc_algorithm: algo, ...over } });
  const tp = st.tcp.newtcpcb();
  tp.state = TCPS_ESTABLISHED;
  tp.t_maxseg = MSS;
  tp.snd_scale = 14;
  tp.snd_wnd = 1 << 30;
  tp.snd_una = tp.snd_nxt = tp.snd_max = tp.snd_recover = 1000;
  tp.snd_cwnd = 10 * MSS;
  tp.snd_ssthresh = TCP_MAXWIN << 14;
  ccConnInitAlgo(tp);
  return { st, td, tp };
}

function send(tp: Tcpcb, n: number): void {
  tp.snd_nxt = tp.snd_max = (tp.snd_max + n) >>> 0;
}

/** An ACK of n more bytes (cc_ack_received before snd_una moves, as tcp_input). */
function ack(tp: Tcpcb, n: number): void {
  const a = (tp.snd_una + n) >>> 0;
  ccAckReceived(tp, a, n, 1, CC_ACK);
  tp.snd_una = a;
}

/** Give the connection `samples` RTT samples of `rttMs` (what CUBIC needs before leaving slow start). */
function rtt(tp: Tcpcb, rttMs: number, samples = 8): void {
  tp.t_srtt = rttMs << 5;
  tp.t_rttupdated = samples;
}

/** A loss at the current cwnd, recovery with `inflight` bytes still out, then its end (as tcp_input does it). */
function lossAndRecovery(tp: Tcpcb, inflightAfter: number): void {
  ccCongSignal(tp, tp.snd_una, CC_NDUPACK);
  send(tp, inflightAfter);
  const full = (tp.snd_max - inflightAfter) >>> 0;
  ccPostRecovery(tp, full);
  tp.snd_una = full;
}

/**
 * One round trip at cwnd: send cwnd in whole segments, then one ACK per
 * segment spread over `rttMs`.
 */
function round(c: Conn, rttMs: number): void {
  const tp = c.tp;
  const segs = Math.max(1, Math.floor(tp.snd_cwnd / MSS));
  send(tp, segs * MSS);
  for (let i = 0; i < segs; i++) {
    c.td.advance(rttMs / segs);
    ack(tp, MSS);
  }
}

test('newreno: slow start with ABC (abc_l_var segments per ACK at most, one while recovering from an RTO)', () => {
  const c = conn('newreno');
  const tp = c.tp;
  assert.equal(tp.cc_algo.name, 'newreno');
  send(tp, 40 * MSS);
  ack(tp, MSS);
  assert.equal(tp.snd_cwnd, 11 * MSS, 'one segment acknowledged: one segment more');
  ack(tp, 2 * MSS);
  assert.equal(tp.snd_cwnd, 13 * MSS, 'a delayed ACK of two: two more');
  ack(tp, 4 * MSS);
  assert.equal(tp.snd_cwnd, 15 * MSS, 'four at once: capped at abc_l_var = 2 segments');
  c.st.tcp.cfg.abc_l_var = 4;
  ack(tp, 4 * MSS);
  assert.equal(tp.snd_cwnd, 19 * MSS, 'net.inet.tcp.abc_l_var read live');
  tp.snd_nxt = tp.snd_una; // retransmitting after an RTO
  ack(tp, 4 * MSS);
  assert.equal(tp.snd_cwnd, 20 * MSS, 'snd_nxt < snd_max: one segment per ACK');
  c.st.close();
});

test('newreno: congestion avoidance grows one segment per cwnd of acknowledged bytes', () => {
  const c = conn('newreno');
  const tp = c.tp;
  tp.snd_cwnd = 20 * MSS;
  tp.snd_ssthresh = 10 * MSS;
  for (let r = 0; r < 5; r++) {
    const before = tp.snd_cwnd;
    const segs = before / MSS;
    send(tp, before);
    for (let i = 0; i < segs - 1; i++) ack(tp, MSS);
    assert.equal(tp.snd_cwnd, before, `round ${r}: no growth before a whole cwnd is acknowledged`);
    ack(tp, MSS);
    assert.equal(tp.snd_cwnd, before + MSS, `round ${r}: one segment after it`);
  }
  // Not cwnd limited (the peer's window is smaller): no growth.
  tp.snd_wnd = tp.snd_cwnd - 1;
  const w = tp.snd_cwnd;
  send(tp, 4 * w);
  for (let i = 0; i < (4 * w) / MSS; i++) ack(tp, MSS);
  assert.equal(tp.snd_cwnd, w);
  c.st.close();
});

test('newreno: fast recovery halves (net.inet.tcp.cc.newreno.beta), no growth inside, RFC 6582 exit window', () => {
  const c = conn('newreno');
  const tp = c.tp;
  tp.snd_cwnd = 21 * MSS;
  send(tp, 21 * MSS);
  lossAndRecovery(tp, 0);
  assert.equal(tp.snd_ssthresh, 10 * MSS, 'half of 21 segments, whole segments');
  assert.equal(tp.snd_recover, ((1000 + 21 * MSS) >>> 0) as number);
  assert.equal(tp.t_flags & (TF_FASTRECOVERY | TF_CONGRECOVERY), 0, 'left recovery');
  assert.equal(tp.snd_cwnd, 2 * MSS, 'nothing in flight at the full ACK: flight + 1 segment, at least 2');

  // Inside recovery an ACK does not open the window.
  tp.snd_cwnd = 30 * MSS;
  send(tp, 30 * MSS);
  ccCongSignal(tp, tp.snd_una, CC_NDUPACK);
  assert.equal(tp.t_flags & (TF_FASTRECOVERY | TF_CONGRECOVERY), TF_FASTRECOVERY | TF_CONGRECOVERY, 'ENTER_RECOVERY sets both');
  const inRec = tp.snd_cwnd;
  ack(tp, 5 * MSS);
  assert.equal(tp.snd_cwnd, inRec);
  ccPostRecovery(tp, tp.snd_una);
  assert.equal(tp.snd_cwnd, 15 * MSS, 'at least ssthresh still in flight: cwnd = ssthresh');

  // beta read live from the sysctl.
  const beta = node(c.st, 'net.inet.tcp.cc.newreno.beta');
  beta.set!(70);
  tp.snd_cwnd = 20 * MSS;
  ccCongSignal(tp, tp.snd_una, CC_NDUPACK);
  assert.equal(tp.snd_ssthresh, 14 * MSS);
  assert.throws(() => beta.set!(0));
  c.st.close();
});

test('newreno: ECN halves cwnd at once, once per window; with cc.abe it uses beta_ecn', () => {
  const c = conn('newreno');
  const tp = c.tp;
  tp.t_flags |= 0x40000000; // TF_ECN_PERMIT
  tp.snd_cwnd = 20 * MSS;
  send(tp, 20 * MSS);
  ccCongSignal(tp, tp.snd_una, CC_ECN);
  assert.equal(tp.snd_cwnd, 10 * MSS);
  assert.equal(tp.snd_ssthresh, 10 * MSS);
  assert.equal(tp.t_flags & TF_CONGRECOVERY, TF_CONGRECOVERY);
  assert.equal(tp.t_flags2 & 1, 1, 'TF2_ECN_SND_CWR: tell the peer');
  ccCongSignal(tp, (tp.snd_una + MSS) >>> 0, CC_ECN);
  assert.equal(tp.snd_cwnd, 10 * MSS, 'a second ECE in the same window is ignored');
  assert.equal(c.st.tcp.stats[TCPS_STAT.ecn_rcwnd], 1);
  ccPostRecovery(tp, tp.snd_max);
  node(c.st, 'net.inet.tcp.cc.abe').set!(1);
  tp.snd_cwnd = 20 * MSS;
  send(tp, 20 * MSS);
  ccCongSignal(tp, tp.snd_max, CC_ECN);
  assert.equal(tp.snd_cwnd, 16 * MSS, 'ABE: beta_ecn = 80');
  c.st.close();
});

test('newreno: RTO collapses to one segment, ssthresh half the flight on the first; a spurious RTO is undone', () => {
  const c = conn('newreno');
  const tp = c.tp;
  tp.snd_cwnd = 40 * MSS;
  send(tp, 30 * MSS);
  tp.snd_cwnd_prev = tp.snd_cwnd;
  tp.snd_ssthresh_prev = tp.snd_ssthresh;
  tp.t_rxtshift = 1;
  ccCongSignal(tp, -1, CC_RTO);
  assert.equal(tp.snd_cwnd, MSS);
  assert.equal(tp.snd_ssthresh, 15 * MSS, 'half of the 30 segments in flight, not of cwnd');
  tp.t_rxtshift = 2;
  ccCongSignal(tp, -1, CC_RTO);
  assert.equal(tp.snd_ssthresh, 15 * MSS, 'later RTOs keep it');
  ccCongSignal(tp, tp.snd_una, CC_RTO_ERR);
  assert.equal(tp.snd_cwnd, 40 * MSS);
  assert.equal(tp.snd_ssthresh, TCP_MAXWIN << 14);
  c.st.close();
});

test('cubic: slow start is NewReno\'s until 8 RTT samples, and after them until ssthresh', () => {
  const c = conn('cubic');
  const tp = c.tp;
  assert.equal(tp.cc_algo.name, 'cubic');
  tp.snd_ssthresh = 12 * MSS;
  send(tp, 40 * MSS);
  ack(tp, 2 * MSS);
  ack(tp, 2 * MSS);
  assert.equal(tp.snd_cwnd, 14 * MSS, 'past ssthresh but no RTT yet: still slow start');
  rtt(tp, 100);
  ack(tp, 2 * MSS);
  assert.ok(tp.snd_cwnd < 15 * MSS, 'with RTT samples: congestion avoidance');
  c.st.close();
});

/**
 * Run CUBIC from a loss at `wmaxSegs` segments with `rttMs`, returning
 * (t, cwnd in segments, Reno-friendly?) at the start of each round after the epoch began.
 */
function cubicRun(wmaxSegs: number, rttMs: number, rounds: number): { c: Conn; d: CubicData; pts: [number, number, boolean][] } {
  const c = conn('cubic');
  const tp = c.tp;
  rtt(tp, rttMs);
  tp.snd_cwnd = wmaxSegs * MSS;
  send(tp, wmaxSegs * MSS);
  lossAndRecovery(tp, wmaxSegs * MSS);
  const d = tp.t_ccv.cc_data as CubicData;
  const pts: [number, number, boolean][] = [];
  round(c, rttMs); // the epoch begins in this round
  for (let r = 0; r < rounds; r++) {
    pts.push([(c.td.clock.now() - d.t_epoch) / 1000, tp.snd_cwnd / MSS, (d.flags & CUBICFLAG_IN_TF) !== 0]);
    round(c, rttMs);
  }
  return { c, d, pts };
}

test('cubic: after a loss, ssthresh = 0.7 cwnd and cwnd follows max(W_cubic(t) = C(t-K)^3 + W_max, W_est(t)): concave up to W_max, Reno-friendly plateau, then convex', () => {
  const W = 100;
  const { c, d, pts } = cubicRun(W, 100, 100);
  const tp = c.tp;
  assert.equal(tp.snd_ssthresh, Math.floor(W * MSS * 0.7), 'beta_cubic = 0.7');
  // The epoch began with the first ACK past ssthresh (cwnd = ssthresh is still slow start, as FreeBSD's <=).
  assert.equal(d.cwnd_epoch, 71 * MSS);
  const K = Math.cbrt((W - 71) / CUBIC_C);
  assert.ok(Math.abs(d.K - K) < 1e-9, `K = cbrt((W_max - cwnd_epoch)/C) = ${K}`);
  assert.ok(Math.abs(cubicK(W * MSS, 71 * MSS, MSS) - K) < 1e-9);
  // Against RFC 9438: cwnd = max(W_cubic(t), W_est(t)), W_est growing alpha_aimd segments per RTT
  // from cwnd_epoch until it passes cwnd_prior (the 100 before the loss), then one.
  const tPrior = ((W - 71) / CUBIC_ALPHA_AIMD) * 0.1;
  const west = (t: number) => (t < tPrior ? 71 + (CUBIC_ALPHA_AIMD * t) / 0.1 : W + (t - tPrior) / 0.1);
  const wcub = (t: number) => CUBIC_C * (t - K) ** 3 + W;
  for (const [t, w, tf] of pts) {
    const model = Math.max(wcub(t), west(t));
    if (process.env.CC_TRACE) console.log(t.toFixed(2), w.toFixed(2), model.toFixed(2), tf);
    assert.ok(Math.abs(w - model) <= 2.5, `t=${t.toFixed(1)}s: cwnd ${w.toFixed(1)} vs model ${model.toFixed(1)} segments`);
    // Which region the algorithm says it is in matches the model (away from the crossings).
    if (Math.abs(wcub(t) - west(t)) > 3) assert.equal(tf, wcub(t) < west(t), `t=${t.toFixed(1)}s: Reno-friendly region ${tf}`);
  }
  // Concave below W_max (growth per round shrinks toward t = K), convex past the Reno-friendly stretch.
  const at = (t: number) => pts.find((x) => x[0] >= t)!;
  const inc = (t: number) => at(t + 0.1)[1] - at(t)[1];
  assert.ok(inc(0.2) > inc(2) && inc(2) > inc(3.8), 'concave below W_max');
  assert.ok(Math.abs(at(K)[1] - W) < 1.5, 'at t = K cwnd is back at W_max');
  assert.ok(inc(8.8) < inc(9.4) && inc(9.4) < inc(9.8), 'convex above W_max');
  assert.ok(at(9.9)[1] > 140, 'and probing well past W_max');
  assert.ok(Math.abs(cubicCwnd(K, W * MSS, MSS, K) - W * MSS) < 1e-6);
  c.st.close();
});

test('cubic: the Reno-friendly region: on a short RTT cwnd follows W_est (alpha = 3(1-b)/(1+b) per RTT, then 1)', () => {
  const W = 20;
  const { c, d, pts } = cubicRun(W, 10, 60);
  assert.ok((d.flags & CUBICFLAG_IN_TF) !== 0, 'in the Reno-friendly region');
  const K = Math.cbrt((W - 14) / CUBIC_C);
  // Below cwnd_prior W_est grows alpha_aimd segments per RTT, above it one.
  const early = pts[6][1] - pts[1][1];
  assert.ok(Math.abs(early / 5 - CUBIC_ALPHA_AIMD) < 0.12, `early growth ${(early / 5).toFixed(2)} per RTT`);
  const late = pts[55][1] - pts[35][1];
  assert.ok(Math.abs(late / 20 - 1) < 0.12, `late growth ${(late / 20).toFixed(2)} per RTT`);
  for (const [t, w] of pts.slice(2)) assert.ok(w >= CUBIC_C * (t - K) ** 3 + W - 1, `t=${t}: above W_cubic`);
  c.st.close();
});

test('cubic: fast convergence lowers W_max when a loss comes before the last W_max; RTO then K = 0', () => {
  const { c, d } = cubicRun(100, 100, 20);
  const tp = c.tp;
  const cw = tp.snd_cwnd;
  assert.ok(cw < 100 * MSS);
  lossAndRecovery(tp, cw);
  assert.ok(Math.abs(d.W_max - cw * 0.85) < 1, 'W_max = cwnd (1 + beta) / 2');
  assert.equal(tp.snd_ssthresh, Math.floor(cw * 0.7));
  // RTO: ssthresh 0.7 of the flight, one segment, slow start, then an epoch from cwnd with K = 0.
  send(tp, 50 * MSS);
  tp.t_rxtshift = 1;
  ccCongSignal(tp, -1, CC_RTO);
  assert.equal(tp.snd_cwnd, MSS);
  const flight = (tp.snd_max - tp.snd_una) >>> 0;
  assert.equal(tp.snd_ssthresh, Math.floor((flight * 0.7) / MSS) * MSS);
  tp.t_rxtshift = 0;
  tp.snd_nxt = tp.snd_max;
  while (tp.snd_cwnd <= tp.snd_ssthresh) round(c, 100);
  assert.equal(d.K, 0, 'after the RTO the epoch starts from cwnd with K = 0');
  assert.equal(d.W_max, d.cwnd_epoch);
  c.st.close();
});

function node(st: Stack, name: string): TcpSysctlNode {
  const n = st.sysctlNodes().find((x) => x.name === name);
  assert.ok(n, name);
  return n;
}

test('net.inet.tcp.cc.algorithm: cubic by default, writable, new connections take it; cc.available lists them', () => {
  const c = conn('cubic');
  const alg = node(c.st, 'net.inet.tcp.cc.algorithm');
  assert.equal(alg.type, 'string');
  assert.equal(new Stack(arena().mb, { name: 'x', thread: LocalThread.manual() }).tcp.cfg.cc_algorithm, 'cubic', 'FreeBSD 14 default');
  alg.set!('newreno');
  assert.equal(alg.get(), 'newreno');
  const tp2 = c.st.tcp.newtcpcb();
  assert.equal(tp2.cc_algo.name, 'newreno', 'a new connection uses the new default');
  assert.equal(c.tp.cc_algo.name, 'cubic', 'existing ones keep theirs');
  assert.throws(() => alg.set!('vegas'), /ESRCH/);
  assert.equal(alg.get(), 'newreno');
  const av = String(node(c.st, 'net.inet.tcp.cc.available').get());
  assert.match(av, /CCmod\s+D PCB count/);
  assert.match(av, /\nnewreno\s+\* 1/);
  assert.match(av, /\ncubic\s+ 1/);
  assert.equal(node(c.st, 'net.inet.tcp.cc.available').set, undefined, 'read only');
  c.st.close();
});

test('TCP_CONGESTION: get and set per socket over two stacks; ESRCH for unknown; the accepted socket inherits the listener\'s', () => {
  const done = tcpLeakCheck();
  const p = tcpPair({ delayMs: 5 });
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  // The listener on b runs newreno: its connections do too.
  const l = sb.socket();
  assert.equal(sb.setsockoptString(l, IPPROTO_TCP, TCP_CONGESTION, 'newreno'), 0);
  assert.equal(sb.bind(l, 0, 81), 0);
  assert.equal(sb.listen(l, 4), 0);
  const c0 = sa.socket();
  assert.equal(sa.getsockoptString(c0, IPPROTO_TCP, TCP_CONGESTION), 'cubic');
  assert.equal(sa.setsockoptString(c0, IPPROTO_TCP, TCP_CONGESTION, 'bbr'), -ESRCH);
  assert.equal(sa.setsockoptString(c0, IPPROTO_TCP, TCP_NODELAY, 'x'), -42);
  sa.connect(c0, B, 81);
  let s0 = -1;
  for (let i = 0; i < 40 && s0 < 0; i++) {
    p.td.advance(10);
    s0 = sb.accept(l);
  }
  assert.ok(s0 > 0);
  assert.equal(sb.getsockoptString(s0, IPPROTO_TCP, TCP_CONGESTION), 'newreno');
  sa.close(c0);
  sb.close(s0);
  sb.close(l);

  // Switch a busy connection from cubic to newreno and back: data keeps flowing, the window carries on.
  const [c, s, l2] = connectPair(p);
  const buf = new Uint8Array(200_000);
  const rbuf = new Uint8Array(65536);
  let got = 0;
  let sent = 0;
  const pump = (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      if (sent < buf.length) {
        const n = sa.write(c, buf.subarray(sent));
        if (n > 0) sent += n;
      }
      p.td.advance(5);
      for (let n = sb.read(s, rbuf); n > 0; n = sb.read(s, rbuf)) got += n;
    }
  };
  pump(100);
  const tp = [...p.a.tcp.all].find((x) => x.sockId === c)!;
  assert.equal(tp.cc_algo.name, 'cubic');
  const cw = tp.snd_cwnd;
  assert.equal(sa.setsockoptString(c, IPPROTO_TCP, TCP_CONGESTION, 'newreno'), 0);
  assert.equal(sa.getsockoptString(c, IPPROTO_TCP, TCP_CONGESTION), 'newreno');
  assert.equal(tp.cc_algo.name, 'newreno');
  assert.ok(tp.snd_cwnd >= cw, 'the window carries over');
  pump(100);
  assert.equal(sa.setsockoptString(c, IPPROTO_TCP, TCP_CONGESTION, 'cubic'), 0);
  pump(2000);
  assert.equal(got, buf.length, 'every byte arrived across the switches');
  closePair(p, [c, s, l2], 1000, done);
});

test('cubic: an idle connection carries no CubicData; the first ACK makes it with cb_init\'s epoch tick and conn_init\'s W_max', () => {
  const c = conn('cubic');
  const tp = c.tp;
  const tick0 = c.st.tcp.ticks();
  assert.equal(tp.t_ccv.cc_data, null, 'nothing made by cb_init or conn_init');
  c.td.advance(50);
  ack(tp, 0);
  const d = tp.t_ccv.cc_data as unknown as CubicData;
  assert.ok(d !== null, 'made by the first ACK');
  assert.equal(d.W_max, 10 * MSS, 'W_max from conn_init (the initial window)');
  assert.equal(d.cwnd_prior, 10 * MSS);
  assert.equal(d.t_epoch, tick0, 't_epoch from cb_init, not from the first ACK');
});

/** An ACK of n bytes with an RTT sample of rttMs, in tcp_input's order: round check, sample, cc_ack_received. */
function hsAck(tp: Tcpcb, n: number, rttMs: number): void {
  const a = (tp.snd_una + n) >>> 0;
  ccNewRound(tp, a);
  ccRttSample(tp, rttMs, 1, a);
  ack(tp, n);
}

/** A round of HyStart++: send cwnd in whole segments, ACK them one by one, each sample rttMs. */
function hsRound(tp: Tcpcb, rttMs: number): void {
  const segs = Math.max(1, Math.floor(tp.snd_cwnd / MSS));
  send(tp, segs * MSS);
  for (let i = 0; i < segs; i++) hsAck(tp, MSS, rttMs);
}

/** The HyStart++ state (CUBIC's is inside its CubicData, made on first use: made here as cb_init would have). */
const hsOf = (tp: Tcpcb): HystartData => (tp.t_ccv.cc_data === null && tp.cc_algo.name === 'cubic' ? cubicData(tp.t_ccv).hs : tp.t_ccv.cc_data instanceof CubicData ? tp.t_ccv.cc_data.hs : (tp.t_ccv.cc_data as HystartData));

for (const algo of ['newreno', 'cubic']) {
  test(`hystart++ (${algo}): CSS on an RTT rise of clamp(min/8, 4, 16) ms, a quarter of the growth, undone by a lower RTT, CA after css_rounds; a loss ends it, idle restores it`, () => {
    const off = conn(algo);
    assert.equal(off.tp.t_ccv.flags & CCF_HYSTART_ALLOWED, 0, 'not allowed by default (FreeBSD 14 default stack)');
    hsRound(off.tp, 10);
    hsRound(off.tp, 10);
    hsRound(off.tp, 40);
    assert.equal(hsOf(off.tp).css_entries, 0, 'not allowed: plain slow start');
    off.st.close();

    const c = conn(algo, { hystart_allowed: 1 });
    const tp = c.tp;
    const h = hsOf(tp);
    assert.ok((tp.t_ccv.flags & CCF_HYSTART_ALLOWED) !== 0);
    hsRound(tp, 10);
    hsRound(tp, 13); // +3 ms: under the 4 ms floor of the threshold
    assert.equal(h.flags & HYSTART_IN_CSS, 0);
    assert.equal(tp.snd_cwnd, 40 * MSS, 'slow start doubles per round');
    // +8 ms: the round's minimum (after n_rttsamples = 8 samples) is over 13 + 4 ms.
    hsRound(tp, 21);
    assert.ok((h.flags & HYSTART_IN_CSS) !== 0 && h.css_entries === 1);
    // 7 ACKs at a full segment; the 8th sample decides, so it and the 32 after grow a quarter (css_growth_div = 4).
    assert.equal(tp.snd_cwnd, 40 * MSS + 7 * MSS + 33 * Math.floor(MSS / 4));
    // A round back below the baseline: the entry was spurious, slow start again.
    hsRound(tp, 12);
    assert.equal(h.flags & HYSTART_IN_CSS, 0);
    assert.ok((h.flags & HYSTART_ENABLED) !== 0);
    hsRound(tp, 30);
    assert.equal(h.css_entries, 2);
    const inf = TCP_MAXWIN << 14;
    for (let i = 0; i < 4; i++) {
      hsRound(tp, 30);
      assert.equal(tp.snd_ssthresh, inf, `still in CSS after ${i + 1} rounds`);
    }
    hsRound(tp, 30);
    assert.equal(h.css_exits, 1, 'css_rounds (5) rounds in CSS: congestion avoidance');
    assert.ok(tp.snd_ssthresh < inf && tp.snd_ssthresh <= tp.snd_cwnd);
    assert.equal(h.flags & (HYSTART_ENABLED | HYSTART_IN_CSS), 0, 'done until an idle restart');
    ccAfterIdle(tp);
    assert.ok((h.flags & HYSTART_ENABLED) !== 0, 'after idle: allowed again');
    ccCongSignal(tp, tp.snd_una, CC_NDUPACK);
    assert.equal(h.flags & HYSTART_ENABLED, 0, 'a loss ends it');
    c.st.close();
  });
}

test('net.inet.tcp.cc.hystartplusplus.*: FreeBSD\'s defaults, writable, bounds; the threshold clamp', () => {
  const c = conn('newreno');
  const want: Record<string, number> = { allowed: 0, minrtt_thresh: 4000, maxrtt_thresh: 16000, n_rttsamples: 8, css_growth_div: 4, css_rounds: 5 };
  for (const [k, v] of Object.entries(want)) assert.equal(node(c.st, `net.inet.tcp.cc.hystartplusplus.${k}`).get(), v, k);
  const cfg = c.st.tcp.cfg;
  assert.equal(hystartRttThresh(cfg, 100_000), 12_500);
  assert.equal(hystartRttThresh(cfg, 1000), 4000);
  assert.equal(hystartRttThresh(cfg, 1_000_000), 16_000);
  node(c.st, 'net.inet.tcp.cc.hystartplusplus.maxrtt_thresh').set!(8000);
  assert.equal(hystartRttThresh(cfg, 1_000_000), 8000, 'read live');
  assert.throws(() => node(c.st, 'net.inet.tcp.cc.hystartplusplus.css_growth_div').set!(0));
  assert.throws(() => node(c.st, 'net.inet.tcp.cc.hystartplusplus.allowed').set!(2));
  c.st.close();
});
