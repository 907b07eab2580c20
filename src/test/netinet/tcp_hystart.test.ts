/**
 * HyStart++ (RFC 9406, cc_hystart.ts) end to end: a bulk transfer a -> b
 * through a bottleneck (the fault injector's rate limit with a bounded
 * queue) on the manual clock. As the queue builds the RTT rises; with
 * net.inet.tcp.cc.hystartplusplus.allowed=1 slow start notices it and
 * enters Conservative Slow Start before the first loss, then congestion
 * avoidance, so the slow-start overshoot loses less than plain slow start
 * on the same path. Byte-exact (SHA-256), every mbuf back after each run.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { transfer, type Run, type TcpPair } from './tcplink.js';
import type { FaultOptions } from '../../net/phy/fault.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import type { TcpConfig } from '../../netinet/tcp_tunables.js';
import { HystartData, HYSTART_IN_CSS } from '../../netinet/cc/cc_hystart.js';
import { CubicData, cubicData } from '../../netinet/cc/cc_cubic.js';
import { TCP_MAXWIN, type Tcpcb } from '../../netinet/tcp_var.js';

/** The HyStart++ state of a connection, under NewReno or CUBIC. */
function hystartOf(tp: Tcpcb): HystartData {
  const d = tp.t_ccv.cc_data;
  if (d instanceof HystartData) return d;
  if (d instanceof CubicData) return d.hs;
  // CUBIC makes its state (and the HyStart++ state in it) on first use: make what cb_init would have.
  if (d === null && tp.cc_algo.name === 'cubic') return cubicData(tp.t_ccv).hs;
  throw new Error('no HyStart++ state');
}

interface Seen {
  run: Run;
  /** Clock (ms) of the first CSS entry, of the first retransmission, and when slow start ended (ssthresh set); -1 if never. */
  cssAt: number;
  rexmitAt: number;
  caAt: number;
  cwndAtCss: number;
  /** cwnd when the first retransmission went out. */
  cwndAtLoss: number;
  entries: number;
  exits: number;
}

function watch(size: number, fault: FaultOptions, tcp: Partial<TcpConfig>): Seen {
  const seen = { cssAt: -1, rexmitAt: -1, caAt: -1, cwndAtCss: 0, cwndAtLoss: 0, entries: 0, exits: 0 };
  const probe = (p: TcpPair, c: number, t: number): void => {
    const tp = [...p.a.tcp.all].find((x) => x.sockId === c);
    if (tp === undefined) return;
    const h = hystartOf(tp);
    if (seen.cssAt < 0 && (h.flags & HYSTART_IN_CSS) !== 0) {
      seen.cssAt = t;
      seen.cwndAtCss = tp.snd_cwnd;
    }
    if (seen.rexmitAt < 0 && p.a.tcp.stats[TCPS_STAT.sndrexmitpack] > 0) seen.rexmitAt = t;
    if (seen.rexmitAt < 0) seen.cwndAtLoss = tp.snd_cwnd;
    if (seen.caAt < 0 && tp.snd_ssthresh < TCP_MAXWIN << 14) seen.caAt = t;
    seen.entries = h.css_entries;
    seen.exits = h.css_exits;
  };
  const run = transfer(size, fault, tcp, 600_000, probe);
  return { run, ...seen };
}

const st = (r: Run, k: keyof typeof TCPS_STAT) => r.stats[TCPS_STAT[k]];

const fmt = (x: Seen) => `CSS at ${x.cssAt} ms, first retransmission at ${x.rexmitAt} ms, CA at ${x.caAt} ms, ${st(x.run, 'sndrexmitpack')} retransmitted`;

for (const algo of ['newreno', 'cubic']) {
  const base = { cc_algorithm: algo, sendspace: 1 << 21, recvspace: 1 << 21 };

  test(`hystart++ (${algo}): a deep bottleneck queue: the RTT rise moves slow start into CSS, then CA after css_rounds rounds, with no loss; plain slow start overflows the queue`, () => {
    // 20 Mbit/s, 10 ms RTT (25 KB in flight) and 300 frames of queue (438 KB).
    const fault: FaultOptions = { seed: 7, rateBps: 20_000_000, queueLimit: 300 };
    const off = watch(2_000_000, fault, base);
    const on = watch(2_000_000, fault, { ...base, hystart_allowed: 1 });
    assert.equal(off.entries, 0, 'not allowed: no CSS');
    assert.ok(st(off.run, 'sndrexmitpack') > 0, `plain slow start overshoots: ${fmt(off)}`);
    assert.ok(on.cssAt >= 0 && on.entries === 1 && on.exits === 1, `HyStart++: ${fmt(on)}`);
    assert.ok(on.caAt > on.cssAt, `CSS comes before CA: ${fmt(on)}`);
    assert.equal(st(on.run, 'sndrexmitpack'), 0, `no loss with HyStart++: ${fmt(on)}`);
    assert.ok(on.cwndAtCss < 300 * 1460, 'CSS began before the queue was full');
  });

  test(`hystart++ (${algo}): a shallower queue: CSS begins before the first loss, and the overshoot retransmits less than plain slow start`, () => {
    // 150 frames (219 KB): CSS's quarter growth still reaches the queue's end before its 5 rounds are over.
    const fault: FaultOptions = { seed: 7, rateBps: 20_000_000, queueLimit: 150 };
    const off = watch(2_000_000, fault, base);
    const on = watch(2_000_000, fault, { ...base, hystart_allowed: 1 });
    assert.ok(on.cssAt >= 0 && on.rexmitAt > on.cssAt, `CSS before the first loss: ${fmt(on)}`);
    assert.ok(on.cwndAtLoss < off.cwndAtLoss, `cwnd at the first loss: HyStart++ ${on.cwndAtLoss} < plain ${off.cwndAtLoss}`);
    assert.ok(st(on.run, 'sndrexmitpack') < st(off.run, 'sndrexmitpack'), `retransmissions: HyStart++ ${fmt(on)}; plain ${fmt(off)}`);
    // The loss ends HyStart++ for the connection: recovery set ssthresh, no more CSS.
    assert.equal(on.entries, 1);
  });
}
