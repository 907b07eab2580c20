/**
 * Goodput of one long bulk transfer over an impaired link, against the
 * theoretical response of loss-based congestion control: the Mathis bound
 * (Mathis, Semke, Mahdavi, Ott 1997: MSS/RTT * sqrt(3/2) / sqrt(p)),
 * CUBIC's average window (RFC 9438 / RFC 8312 sec 5.1, the Reno-friendly
 * region taking the max) and the link rate.
 *
 * Two single-thread stacks on one LocalThread on the MANUAL clock, joined
 * by the in-memory link (MTU 1500); the fault injector (net/phy/fault.ts)
 * on each end gives the one-way delay, and on the sender's end also the
 * rate limit with a bounded queue (one bandwidth-delay product, at least
 * 32 frames) and the random loss of the data direction. Everything runs in
 * virtual time from seeded random sources, so a run is exact and
 * reproducible, and 60 virtual seconds of a 100 Mbit/s link take a few
 * seconds of CPU.
 *
 * Socket buffers are set with SO_SNDBUF / SO_RCVBUF large enough (several
 * bandwidth-delay products) not to limit the window: what is measured is
 * the congestion control and loss recovery (FreeBSD defaults: SACK, PRR,
 * delayed ACKs, timestamps, ABC).
 *
 * CLI: `node dist/bench/goodput.js [--quick] [--write-docs]` prints the table
 * and with --write-docs regenerates docs/goodput.md and docs/goodput.svg
 * (`npm run goodput`). The `tcp` bench suite uses runGoodput() for its
 * "goodput, 1% loss, 10 ms RTT" cases.
 *
 * Everything in the calling thread; nothing sleeps; every mbuf is back when
 * a run returns.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Uma } from '../uma/uma.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { LocalThread } from '../kern/lwkt/netthread.js';
import { Ifnet } from '../net/if.js';
import { MemLink } from '../net/phy/memlink.js';
import { FaultInjector } from '../net/phy/fault.js';
import { Stack } from '../netinet/stack.js';
import { EINPROGRESS } from '../kern/errno.js';
import { SOL_SOCKET, SO_RCVBUF, SO_SNDBUF } from '../netinet/tcp_api.js';
import { TCPS_STAT } from '../netinet/tcp_stats.js';
import type { TcpConfig } from '../netinet/tcp_tunables.js';
import { goodputSvg, type PlotCurve } from './goodput_svg.js';

/** The link and the run. */
export interface GoodputConfig {
  /** Congestion control (net.inet.tcp.cc.algorithm): 'newreno' or 'cubic'. */
  cc: string;
  /** Random loss probability of the data direction (0 .. 1). */
  loss: number;
  /** Round-trip propagation delay in ms (half each way). */
  rttMs: number;
  /** Link rate of the data direction, bit/s (default 100 Mbit/s). */
  rateBps?: number;
  /** Virtual seconds of transfer (default 60); the first warmupS are not counted. */
  seconds?: number;
  /** Virtual seconds of warm-up (slow start) left out of the figures (default seconds / 6). */
  warmupS?: number;
  seed?: number;
  /** More TCP tunables for both stacks. */
  tcp?: Partial<TcpConfig>;
  /** Run in this arena (a test's); default one of this module's own. */
  mb?: Mbufs;
}

export interface GoodputResult {
  /** The sender's TCP counters over the counted interval (TCPS_STAT order). */
  stats: Float64Array;
  /** The receiver's, likewise. */
  peerStats: Float64Array;
  cc: string;
  loss: number;
  rttMs: number;
  rateBps: number;
  /** Virtual seconds counted (after the warm-up). */
  seconds: number;
  /** Bytes the receiving application read in the counted interval. */
  bytes: number;
  /** Goodput, bit/s of payload. */
  goodputBps: number;
  /** Payload bytes per full segment (MSS less the timestamp option). */
  segBytes: number;
  /** Data segments sent, retransmitted (tcps_sndrexmitpack) and retransmit timeouts, in the counted interval. */
  segments: number;
  retransmits: number;
  timeouts: number;
  /** Frames the link lost at random and dropped at its queue. */
  linkLost: number;
  queueDrops: number;
  /** The sender's smoothed RTT at the end, ms. */
  srttMs: number;
  /** The configured link's bounds, bit/s of payload. */
  mathisBps: number;
  cubicBps: number;
  linkBps: number;
}

/** Bytes of a frame besides the payload: Ethernet 14, IPv4 20, TCP 20, timestamps 12. */
const FRAME_OVERHEAD = 14 + 20 + 20 + 12;
const MTU = 1500;
/** Socket buffers: several bandwidth-delay products of the fastest link here (100 Mbit/s x 50 ms = 625 KB). */
const SOCKBUF = 1536 * 1024;
/** Bytes per write. */
const CHUNK = 64 * 1024;
/** Clock steps of the driving loop, ms. */
const STEP_MS = 2;
/** Frames the propagation stages may hold (never the limit: the bottleneck queue in front is). */
const WIRE_LIMIT = 1 << 20;
/** RFC 9438 constants. */
const CUBIC_C = 0.4;
const CUBIC_BETA = 0.7;

/**
 * The Mathis bound: MSS/RTT * sqrt(3/2) / sqrt(p), in bit/s, for `segBytes`
 * of payload per segment (Infinity at p = 0).
 */
export function mathisBps(segBytes: number, rttS: number, p: number): number {
  return ((segBytes * 8) / rttS) * Math.sqrt(1.5 / p);
}

/**
 * CUBIC's response function (RFC 8312 sec 5.1, RFC 9438): the average
 * window AVG_W = (C (3 + beta) / (4 (1 - beta)))^(1/4) * RTT^(3/4) / p^(3/4)
 * segments, or the Reno-friendly region's (the Mathis window, which CUBIC's
 * alpha_aimd = 3 (1 - beta) / (1 + beta) matches) when that is larger; bit/s.
 */
export function cubicBps(segBytes: number, rttS: number, p: number): number {
  const w = ((CUBIC_C * (3 + CUBIC_BETA)) / (4 * (1 - CUBIC_BETA))) ** 0.25 * (rttS ** 0.75 / p ** 0.75);
  return Math.max((w * segBytes * 8) / rttS, mathisBps(segBytes, rttS, p));
}

/** The link rate as payload bit/s: full frames of segBytes payload. */
export function linkPayloadBps(rateBps: number, segBytes: number): number {
  return (rateBps * segBytes) / (segBytes + FRAME_OVERHEAD);
}

let own: Mbufs | null = null;
/** This module's arena (made once: UMA creation is the slow part). */
function arena(): Mbufs {
  if (own === null) {
    const uma = Uma.create({ size: 256 << 20, ncpus: 4 });
    uma.logger = () => {};
    own = Mbufs.create(uma);
  }
  return own;
}

const A = 0x0a090001;
const B = 0x0a090002;

/** The two stacks and the link of one run. */
interface Rig {
  td: LocalThread;
  a: Stack;
  b: Stack;
  link: MemLink;
  fwd: FaultInjector;
  close(): void;
}

/**
 * Stacks a (sender) and b on a manual clock, the link between them: rate,
 * queue and loss on a's transmit side, the one-way delay both ways.
 */
function rig(cfg: GoodputConfig, mb: Mbufs): Rig {
  const rate = cfg.rateBps ?? 100e6;
  const oneWay = cfg.rttMs / 2;
  const bdpFrames = Math.ceil((rate * cfg.rttMs) / 1000 / 8 / MTU);
  const td = LocalThread.manual();
  const tcp = { cc_algorithm: cfg.cc, ...cfg.tcp };
  const a = new Stack(mb, { name: 'sender', thread: td, tcp });
  const b = new Stack(mb, { name: 'receiver', thread: td, tcp, seed: 9 });
  const ifa = new Ifnet(mb, 'mem0', 0x0200_0000_0901, MTU);
  const ifb = new Ifnet(mb, 'mem0', 0x0200_0000_0902, MTU);
  const link = MemLink.connect(ifa, ifb);
  a.addInterface(ifa, A, 24);
  b.addInterface(ifb, B, 24);
  a.arp.set(ifa, B, 0x0200_0000_0902);
  b.arp.set(ifb, A, 0x0200_0000_0901);
  const seed = cfg.seed ?? 1;
  // The propagation delay (its own stage, so that frames on the wire do not count against the queue), then
  // in front of it the bottleneck: loss, then the rate with its queue.
  FaultInjector.wrap(ifa, { seed: seed + 2, delayMs: oneWay, queueLimit: WIRE_LIMIT });
  const fwd = FaultInjector.wrap(ifa, { seed, loss: cfg.loss, rateBps: rate, queueLimit: Math.max(32, bdpFrames) });
  FaultInjector.wrap(ifb, { seed: seed + 1, delayMs: oneWay, queueLimit: WIRE_LIMIT });
  return {
    td,
    a,
    b,
    link,
    fwd,
    close() {
      a.close();
      b.close();
      link.close();
      td.runUntilIdle();
    },
  };
}

/**
 * Run one transfer (see the file comment) and measure it. Throws when the
 * connection cannot be set up or dies.
 */
export function runGoodput(cfg: GoodputConfig): GoodputResult {
  const mb = cfg.mb ?? arena();
  const seconds = cfg.seconds ?? 60;
  const warm = cfg.warmupS ?? seconds / 6;
  const rate = cfg.rateBps ?? 100e6;
  const r = rig(cfg, mb);
  const sa = r.a.tcp.sockets!;
  const sb = r.b.tcp.sockets!;
  const l = sb.socket();
  sb.setsockopt(l, SOL_SOCKET, SO_RCVBUF, SOCKBUF);
  sb.setsockopt(l, SOL_SOCKET, SO_SNDBUF, SOCKBUF);
  sb.bind(l, 0, 5001);
  sb.listen(l, 4);
  const c = sa.socket();
  sa.setsockopt(c, SOL_SOCKET, SO_SNDBUF, SOCKBUF);
  sa.setsockopt(c, SOL_SOCKET, SO_RCVBUF, SOCKBUF);
  if (sa.connect(c, B, 5001) !== -EINPROGRESS) throw new Error('goodput: connect failed');
  let s = -1;
  // The handshake may lose its SYN too: up to a minute of retransmitted SYNs (1 s, 2 s, 4 s...).
  for (let i = 0; i < 60_000 / STEP_MS && s < 0; i++) {
    r.td.advance(STEP_MS);
    s = sb.accept(l);
  }
  if (s < 0) throw new Error(`goodput: no connection (${s})`);
  const chunk = new Uint8Array(CHUNK).fill(0x5a);
  const rbuf = new Uint8Array(256 * 1024);
  let got = 0;
  let off = 0;
  /** Keep so_snd full, read everything, move the clock, for `ms`. */
  const pump = (ms: number): void => {
    for (let t = 0; t < ms; t += STEP_MS) {
      for (;;) {
        const n = sa.write(c, off === 0 ? chunk : chunk.subarray(off));
        if (n <= 0) break;
        off = (off + n) % CHUNK;
      }
      for (;;) {
        const n = sb.read(s, rbuf);
        if (n <= 0) break;
        got += n;
      }
      r.td.advance(STEP_MS);
    }
  };
  const st = r.a.tcp.stats;
  pump(warm * 1000);
  const s0 = st.slice();
  const p0 = r.b.tcp.stats.slice();
  const q0 = { ...r.fwd.stats };
  const b0 = got;
  pump((seconds - warm) * 1000);
  const info = sa.info(c);
  const bytes = got - b0;
  const counted = seconds - warm;
  const segBytes = MTU - FRAME_OVERHEAD + 14;
  const rttS = cfg.rttMs / 1000;
  const res: GoodputResult = {
    stats: st.map((v, i) => v - s0[i]),
    peerStats: r.b.tcp.stats.map((v, i) => v - p0[i]),
    cc: cfg.cc,
    loss: cfg.loss,
    rttMs: cfg.rttMs,
    rateBps: rate,
    seconds: counted,
    bytes,
    goodputBps: (bytes * 8) / counted,
    segBytes,
    segments: st[TCPS_STAT.sndpack] - s0[TCPS_STAT.sndpack] + st[TCPS_STAT.sndrexmitpack] - s0[TCPS_STAT.sndrexmitpack],
    retransmits: st[TCPS_STAT.sndrexmitpack] - s0[TCPS_STAT.sndrexmitpack],
    timeouts: st[TCPS_STAT.rexmttimeo] - s0[TCPS_STAT.rexmttimeo],
    linkLost: r.fwd.stats.lost - q0.lost,
    queueDrops: r.fwd.stats.queueDrops - q0.queueDrops,
    srttMs: info === null ? NaN : info.tcpi_rtt / 1000,
    mathisBps: Math.min(mathisBps(segBytes, rttS, cfg.loss), linkPayloadBps(rate, segBytes)),
    cubicBps: Math.min(cubicBps(segBytes, rttS, cfg.loss), linkPayloadBps(rate, segBytes)),
    linkBps: linkPayloadBps(rate, segBytes),
  };
  if (info === null || info.tcpi_state !== 4) throw new Error(`goodput: the connection died (state ${info?.tcpi_state})`);
  sa.setsockopt(c, SOL_SOCKET, 0x0080, 1, 0); // SO_LINGER {on, 0}: RST, nothing left to drain
  sa.close(c);
  sb.close(s);
  sb.close(l);
  r.td.advance(50);
  r.close();
  return res;
}

// ---------------------------------------------------------------- the sweep, the docs

/** The sweep of docs/goodput.md: both algorithms, RTT 10 and 50 ms, loss 0, 0.1%, 1%, 5%. */
export const SWEEP = { ccs: ['newreno', 'cubic'], rtts: [10, 50], losses: [0, 0.001, 0.01, 0.05] };

const mbps = (b: number): string => (b / 1e6).toFixed(2);

/** Run the sweep; `seconds` of virtual time each. */
export function sweep(seconds: number, log: (s: string) => void = () => {}): GoodputResult[] {
  const out: GoodputResult[] = [];
  for (const rtt of SWEEP.rtts) {
    for (const loss of SWEEP.losses) {
      for (const cc of SWEEP.ccs) {
        const r = runGoodput({ cc, loss, rttMs: rtt, seconds });
        log(`${cc} loss ${loss} rtt ${rtt}: ${mbps(r.goodputBps)} Mbit/s`);
        out.push(r);
      }
    }
  }
  return out;
}

/** The table (markdown) of a sweep. */
export function goodputTable(rs: readonly GoodputResult[]): string {
  const rows = ['| algorithm | loss | RTT | goodput (Mbit/s) | Mathis bound | ratio | CUBIC response | ratio | retransmits | RTOs | link drops (random + queue) | srtt (ms) |', '|---|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of rs) {
    rows.push(
      `| ${r.cc} | ${(r.loss * 100).toFixed(1)}% | ${r.rttMs} ms | ${mbps(r.goodputBps)} | ${mbps(r.mathisBps)} | ${(r.goodputBps / r.mathisBps).toFixed(2)} | ${mbps(r.cubicBps)} | ${(r.goodputBps / r.cubicBps).toFixed(2)} | ${r.retransmits} | ${r.timeouts} | ${r.linkLost} + ${r.queueDrops} | ${r.srttMs.toFixed(1)} |`,
    );
  }
  return rows.join('\n') + '\n';
}

/** The plot of a sweep. */
export function sweepSvg(rs: readonly GoodputResult[]): string {
  const seg = rs[0]?.segBytes ?? 1448;
  const rate = rs[0]?.rateBps ?? 100e6;
  const link = linkPayloadBps(rate, seg);
  const curves: PlotCurve[] = [];
  for (const rtt of SWEEP.rtts) {
    curves.push({ label: 'Mathis', rttMs: rtt, kind: 'mathis', f: (p) => Math.min(mathisBps(seg, rtt / 1000, p), link) / 1e6 });
    curves.push({ label: 'CUBIC', rttMs: rtt, kind: 'cubic', f: (p) => Math.min(cubicBps(seg, rtt / 1000, p), link) / 1e6 });
  }
  curves.push({ label: 'link', rttMs: 0, kind: 'link', f: () => link / 1e6 });
  const pts = rs.map((r) => ({ cc: r.cc, rttMs: r.rttMs, loss: r.loss, mbps: r.goodputBps / 1e6 }));
  return goodputSvg(`Goodput vs random loss, ${rate / 1e6} Mbit/s bottleneck, 1-BDP queue, MSS ${seg} B`, pts, curves);
}

function doc(rs: readonly GoodputResult[], seconds: number): string {
  return `# Goodput under random loss

Regenerate with \`npm run build && node dist/bench/goodput.js --write-docs\`
(\`--seconds N\` for another length; this file and [goodput.svg](goodput.svg) are its output).
The harness is src/bench/goodput.ts; the \`tcp\` bench suite (\`npm run bench -- tcp\`) runs its
"goodput, 1% loss, 10 ms RTT" cases against the Mathis bound.

Setup: two slabnet stacks in one thread on the manual clock (virtual time, deterministic,
seeded), one bulk transfer a -> b, ${seconds} virtual seconds each (the first sixth, slow start,
not counted). The in-memory link (MTU 1500) carries the data direction through a
${(rs[0]?.rateBps ?? 100e6) / 1e6} Mbit/s bottleneck whose queue holds one bandwidth-delay product
(at least 32 frames), random loss p in front of it, and half the RTT of propagation delay each
way (ACKs see no loss). FreeBSD defaults otherwise: SACK, PRR, delayed ACK, timestamps
(${rs[0]?.segBytes ?? 1448} payload bytes per segment), ABC; socket buffers set to
${SOCKBUF / 1024} KiB with SO_SNDBUF / SO_RCVBUF so that they never limit the window.

Bounds, for the configured link (not the measured RTT), all capped at the link's payload rate:

- Mathis: MSS/RTT * sqrt(3/2) / sqrt(p).
- CUBIC response (RFC 8312 5.1, RFC 9438): AVG_W = (C (3 + beta) / (4 (1 - beta)))^(1/4) * RTT^(3/4) / p^(3/4)
  segments with C = 0.4, beta = 0.7, or the Reno-friendly (Mathis) window when larger; at
  these RTTs and losses it is the Reno-friendly region, so it equals the Mathis bound.

Retransmits are tcps_sndrexmitpack, RTOs tcps_rexmttimeo, both in the counted interval;
link drops are the bottleneck's random losses plus its tail drops.

${goodputTable(rs)}
![goodput vs loss](goodput.svg)

## Reading

- Where random loss sets the window (0.1% to 5%), NewReno sits at or a little under the Mathis
  bound (timeouts at 5% cost it more) and CUBIC a little above it: CUBIC's beta = 0.7 keeps more
  of the window per loss than Reno's 0.5, and its Reno-friendly alpha only matches Reno's
  average when losses are periodic, not random. Retransmissions match the link's drops:
  nothing is retransmitted that arrived.
- Without random loss the link is full: the 1-BDP queue's tail drops set the window.
- Two bugs this harness found, fixed with it: slow start counted the bytes that the full ACK
  ending a recovery covered (SACKed long before) as delivered segments and doubled cwnd after
  every episode (CUBIC ran at 5x the Mathis bound, thousands of spurious retransmissions); and
  the receiver's reassembly queue limit (net.inet.tcp.reass.maxqueuelen, 100) counted segments
  where FreeBSD counts runs of contiguous data, dropping most of a large window after one loss.

Machine: figures are virtual-time results, the same on any machine (Node ${process.version}).
`;
}

/** CLI: `node dist/bench/goodput.js [--seconds N] [--write-docs]`. */
function main(argv: string[]): void {
  let seconds = 30;
  let write = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--write-docs') write = true;
    else if (argv[i] === '--quick') seconds = 6;
    else if (argv[i] === '--seconds') seconds = Number(argv[++i]);
    else throw new Error(`usage: goodput.js [--seconds N] [--quick] [--write-docs] (unknown ${argv[i]})`);
  }
  if (!(seconds >= 3)) throw new Error('goodput: --seconds must be >= 3');
  const rs = sweep(seconds, (s) => process.stderr.write(s + '\n'));
  process.stdout.write(goodputTable(rs));
  if (write) {
    const docs = new URL('../../docs/', import.meta.url);
    writeFileSync(new URL('goodput.md', docs), doc(rs, seconds));
    writeFileSync(new URL('goodput.svg', docs), sweepSvg(rs));
    process.stderr.write('goodput: wrote docs/goodput.md and docs/goodput.svg\n');
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
